"""What every command shares: options, config merging, errors -> exit codes, output, progress.

Exit codes: 0 all checks hold, 1 a check failed, 2 bad input (one line on stderr, no traceback,
no output file), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xavinit.config import load_yaml, merge_options
from xavinit.errors import XavinitError
from xavinit.experiments import Progress as ProgressCallback
from xavinit.fileio import atomic_write
from xavinit.render import EXTENSIONS, render
from xavinit.render.table import print_table

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class OutputFormat(str, Enum):
    """``--format`` values."""

    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    markdown = "markdown"
    html = "html"


SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Seed of every random draw (default 0).", min=0)
]
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format", "-f", help="Result format on stdout (default table).", case_sensitive=False
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o",
        help="Also write the result to FILE (.json, .yaml, .csv or .md, by extension); "
        "stdout then stays empty unless --format is given.",
        dir_okay=False,
    ),
]  # fmt: skip
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c",
        help="YAML file whose keys are this command's long option names; options override it.",
        dir_okay=False,
    ),
]  # fmt: skip
LayersOption = Annotated[
    str | None,
    typer.Option(
        "--layers",
        "-l",
        help="Widths input,hidden...,output; AxK repeats A K times (default 1024,1000x5,10).",
    ),
]
DepthOption = Annotated[int | None, typer.Option(help="Hidden layers (with --width; default 5).")]
WidthOption = Annotated[int | None, typer.Option(help="Units per hidden layer (default 1000).")]
InputsOption = Annotated[int | None, typer.Option(help="Input width (default 1024).")]
OutputsOption = Annotated[int | None, typer.Option(help="Output width (default 10).")]
SchemeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--scheme",
        "-s",
        help="Scheme spec, repeatable: standard, normalized, he-normal:mode=fan_out, "
        "normalized:gain=tanh, variance-scaling:scale=2,distribution=normal ... "
        "(default standard and normalized; see 'xavinit schemes').",
    ),
]
ActivationOption = Annotated[
    list[str] | None,
    typer.Option(
        "--activation",
        "-a",
        help="Hidden activation, repeatable: tanh (default), sigmoid, softsign, relu, "
        "leaky-relu[:slope=0.01], linear, selu, gelu.",
    ),
]
TrialsOption = Annotated[
    int | None, typer.Option(help="Independent draws; report the mean and spread.", min=1)
]
DtypeOption = Annotated[str | None, typer.Option(help="float32 (default) or float64.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no notes on stderr.")
]


def stderr_console() -> Console:
    """The console for progress, notes and errors (honours NO_COLOR)."""
    return Console(file=sys.stderr, highlight=False)


def stdout_console() -> Console:
    """The console for the result itself."""
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console.width = 160  # piped or captured: do not squeeze tables to 80 columns
    return console


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``Error: message`` as one line on stderr and exit with ``code``."""
    line = " ".join(str(message).split())
    print(f"Error: {line}", file=sys.stderr)
    raise typer.Exit(code)


@contextlib.contextmanager
def progress_bar(quiet: bool) -> Iterator[ProgressCallback | None]:
    """A Rich progress bar on stderr, or None when quiet or stderr is not a terminal."""
    console = stderr_console()
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield update


def output_format(path: Path) -> str:
    """The format ``--output`` writes, from the file's extension."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        fail(
            f"--output {str(path)!r}: unknown extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(EXTENSIONS)}"
        )
    return fmt


def execute(
    *,
    cli_values: dict[str, Any],
    config_file: Path | None,
    build: Callable[[dict[str, Any], Callable[[str], str]], Any],
    run: Callable[[Any, ProgressCallback | None], Any],
    fmt: OutputFormat | None,
    output: Path | None,
    quiet: bool,
) -> None:
    """Merge the config file and options, build the config, run, render, write, exit.

    ``build(mapping, origin)`` validates into a config dataclass; ``run(config, progress)``
    returns a result with ``to_dict()`` and ``passed``.
    """
    try:
        file_values: dict[str, Any] = {}
        label = ""
        if config_file is not None:
            file_values = load_yaml(config_file)
            label = str(config_file)
            fmt_value = file_values.pop("format", None)
            output_value = file_values.pop("output", None)
            quiet = quiet or bool(file_values.pop("quiet", False))
            if fmt is None and fmt_value is not None:
                try:
                    fmt = OutputFormat(str(fmt_value).lower())
                except ValueError:
                    fail(
                        f"{label}: format must be one of {', '.join(f.value for f in OutputFormat)}"
                    )
            if output is None and output_value is not None:
                output = Path(str(output_value))
        file_fmt = output_format(output) if output is not None else None
        merged, origin = merge_options(file_values, cli_values, label)
        config = build(merged, origin)
        with progress_bar(quiet) as progress:
            result = run(config, progress)
        document = result.to_dict()
        if output is not None and file_fmt is not None:
            with atomic_write(output) as stream:
                stream.write(render(document, file_fmt))
            if not quiet:
                print(f"wrote {output}", file=sys.stderr)
        if output is None or fmt is not None:
            chosen = (fmt or OutputFormat.table).value
            if chosen == "table":
                print_table(document, stdout_console())
            else:
                sys.stdout.write(render(document, chosen))
    except XavinitError as error:
        fail(str(error))
    except MemoryError:
        fail("ran out of memory; use smaller layers or fewer trials")
    except KeyboardInterrupt as stop:
        if hasattr(stop, "checkpoint"):  # training saves its state first; its command says where
            raise
        fail("interrupted", EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)
