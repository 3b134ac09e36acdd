"""``xavinit data``: look at the datasets xavinit trains on.

``xavinit data preview SPEC`` draws a few images in the terminal with Unicode half blocks (two
pixel rows per text row: the upper pixel is the foreground colour of ``▀``, the lower one its
background), each with its label under it, and can save the same grid as a PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from xavinit.cli.consoles import fail, stdout_console
from xavinit.cli.helpscreen import ScreenCommand, ScreenGroup
from xavinit.errors import XavinitError
from xavinit.extras import install

data_app = typer.Typer(
    cls=ScreenGroup,
    help="Look at the datasets xavinit trains on.\n\n"
    "Examples:\n\n"
    "  xavinit data preview shapeset\n\n"
    "  xavinit data preview shapeset --count 12 --seed 3 --save shapeset.png",
    no_args_is_help=True,
)


@data_app.command("preview", cls=ScreenCommand)
def preview(
    dataset: Annotated[
        str, typer.Argument(help="Dataset spec: shapeset (generated; the training stream).")
    ],
    count: Annotated[
        int, typer.Option("--count", "-n", help="Images to show.", min=1, max=200)
    ] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Dataset seed.", min=0)] = 0,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save", help=f"Also write the grid to FILE.png ({install('plot')}).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Show a few images of a dataset in the terminal, each with its label.

    Examples:

      xavinit data preview shapeset

      xavinit data preview shapeset --count 12 --seed 3

      xavinit data preview shapeset --save shapeset.png
    """
    if save is not None and save.suffix.lower() != ".png":
        fail(f"--save {str(save)!r}: the file name must end in .png")
    from xavinit.datasets.preview import load_preview_images
    from xavinit.render.preview import print_preview, save_preview_png

    try:
        images, names = load_preview_images(dataset, count, seed)
        if save is not None:
            save_preview_png(images, names, save)
    except XavinitError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write {str(save)!r}: {error.strerror or error}")
    print_preview(images, names, stdout_console())
    if save is not None:
        print(f"wrote {save}", file=sys.stderr)


def command() -> typer.Typer:
    """The ``data`` command group."""
    return data_app
