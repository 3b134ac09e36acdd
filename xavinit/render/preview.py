"""Dataset previews: a few images in the terminal (Unicode half blocks) or as a PNG grid.

Two pixel rows per text row: the upper pixel is the foreground colour of ``▀``, the lower one its
background; each image has its label under it.
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


def load_preview_images(spec: str, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The first ``count`` images of a dataset, for showing, with their label names.

    ``shapeset`` gives the first images of the training stream for ``seed``; any other spec
    goes to ``xavinit.datasets.load_dataset`` and gives the first images of its test split.

    Returns:
        ``(images, names)``: images ``(count, H, W)`` (grey) or ``(count, H, W, 3)`` (colour)
        with values in [-1, 1], and one label name per image.
    """
    name = spec.strip().lower()
    if name == "shapeset":
        from xavinit.datasets.shapeset import CLASS_NAMES, SIZE, ShapesetStream

        x, y = ShapesetStream(seed).next_batch(count)
        return x.reshape(count, SIZE, SIZE), [CLASS_NAMES[int(label)] for label in y]
    try:
        from xavinit.datasets import load_dataset
    except ImportError:
        raise XavinitError(
            f"unknown dataset {spec!r}: only 'shapeset' can be previewed here "
            "(no other dataset loader is installed)"
        ) from None
    dataset = load_dataset(spec, "scale", seed)
    x, y = dataset.test.x[:count], dataset.test.y[:count]
    images = _image_layout(np.asarray(x, dtype=np.float64), tuple(dataset.image_shape))
    low, high = float(images.min(initial=0.0)), float(images.max(initial=0.0))
    if low < -1 or high > 1:  # standardized or unscaled inputs: stretch the set to [-1, 1]
        images = 2 * (images - low) / max(high - low, 1e-12) - 1
    names = list(getattr(dataset, "class_names", ()) or ())
    labels = [names[int(k)] if int(k) < len(names) else str(int(k)) for k in y]
    return images, labels


def _image_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``(count, inputs)`` -> ``(count, H, W)`` or ``(count, H, W, 3)``."""
    images = x.reshape(len(x), *shape)
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # channels first -> channels last
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim not in (3, 4):
        raise XavinitError(f"cannot show images of shape {shape}")
    return images


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
