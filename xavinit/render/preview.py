"""Dataset previews: a few images in the terminal (Unicode half blocks) or as a PNG grid.

Two pixel rows per text row: the upper pixel is the foreground colour of ``▀``, the lower one its
background; each image has its label under it. The images are given (the command loads them with
:func:`xavinit.datasets.preview.load_preview_images`): nothing here reads a dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.text import Text

from xavinit.errors import XavinitError
from xavinit.extras import install
from xavinit.fileio import atomic_write

GAP = 2
"""Columns between two images side by side."""


def to_levels(images: np.ndarray) -> np.ndarray:
    """[-1, 1] -> integer grey (or RGB) levels 0..255."""
    return np.clip(np.rint((images + 1) * 127.5), 0, 255).astype(np.int64)


def _colour(level: Any) -> str:
    if np.ndim(level):
        r, g, b = (int(v) for v in level)
        return f"rgb({r},{g},{b})"
    return f"rgb({int(level)},{int(level)},{int(level)})"


def print_preview(images: np.ndarray, names: list[str], console: Console) -> None:
    """Draw images side by side with ``▀`` half blocks, each label name under its image.

    With colour, the upper pixel of a pair is the block's foreground and the lower one its
    background. Without colour (NO_COLOR, or output that is not a terminal), a pixel is
    marked when it differs from its image's median level by more than 16, and each pair
    becomes one of `` ▀▄█``.
    """
    levels = to_levels(images)
    count, height, width = levels.shape[:3]
    colour = console.color_system is not None and not console.no_color
    grey = levels if levels.ndim == 3 else levels.mean(axis=-1)
    marked = np.abs(grey - np.median(grey.reshape(count, -1), axis=1)[:, None, None]) > 16
    per_row = max(1, (console.width + GAP) // (width + GAP))
    for start in range(0, count, per_row):
        group = range(start, min(start + per_row, count))
        text = Text()
        for row in range(0, height, 2):
            for n, i in enumerate(group):
                if n:
                    text.append(" " * GAP)
                for col in range(width):
                    has_lower = row + 1 < height
                    if colour:
                        style = _colour(levels[i, row, col])
                        if has_lower:
                            style += " on " + _colour(levels[i, row + 1, col])
                        text.append("▀", style=style)
                    else:
                        upper = bool(marked[i, row, col])
                        lower = has_lower and bool(marked[i, row + 1, col])
                        text.append(" ▀▄█"[upper + 2 * lower])
            text.append("\n")
        text.append((" " * GAP).join(names[i][:width].center(width) for i in group).rstrip())
        console.print(text, overflow="ignore", crop=False, no_wrap=True)


def save_preview_png(images: np.ndarray, names: list[str], path: Path) -> None:
    """Write the images as a grid with their label names as a PNG (needs matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        raise XavinitError(f"--save needs matplotlib: {install('plot')}") from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    count = len(images)
    columns = min(count, 6)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < count:
            image = (images[k] + 1) / 2
            ax.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(names[k], fontsize=7)
    figure.tight_layout()
    with atomic_write(path, "wb") as stream:
        figure.savefig(stream, format="png", dpi=100)
