"""Figures to files: each figure encoded as PNG or SVG, written atomically into a folder."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from xavinit.errors import XavinitError
from xavinit.fileio import atomic_write
from xavinit.render.documents import included
from xavinit.render.plots.base import DPI
from xavinit.render.plots.draw import figures

FORMATS = ("png", "svg")


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """A figure encoded as ``png`` (at :data:`DPI`) or ``svg``."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise XavinitError(f"unknown figure format {fmt!r}; known: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def write_figures(documents: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Write every figure of every document (a report's ``documents``: each a result's document,
    read as its typed result) as ``NAME.png`` and ``NAME.svg`` into ``directory``.

    The folder is created. A name that more than one document produces gets the 1-based index of
    its document as a prefix (``1-init-variance``, ``2-init-variance``). Files are written
    atomically. Returns the paths written, in order.

    On a failure (a full disk, Ctrl-C) the files this call added are removed, and so are the
    folders it created once they are empty: no half-written or empty figure folder is left;
    what was there before is kept.
    """
    drawn = [figures(included(d)) for d in documents]  # first: no folder without matplotlib
    directory = Path(directory)
    created = [p for p in (directory, *directory.parents) if not p.exists()]  # deepest first
    added: list[Path] = []
    try:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise XavinitError(
                f"cannot create figure folder {str(directory)!r}: {error.strerror or error}"
            ) from None
        return _write_all(drawn, directory, added)
    except BaseException:
        for path in added:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: never what someone else put there
        raise


def _write_all(drawn: list[Any], directory: Path, added: list[Path]) -> list[Path]:
    """Every figure of ``drawn`` (one list per document) into ``directory``; files that did not
    exist before are appended to ``added`` as they are written."""
    counts: dict[str, int] = {}
    for items in drawn:
        for name in {name for name, _, _ in items}:
            counts[name] = counts.get(name, 0) + 1
    written: list[Path] = []
    for index, items in enumerate(drawn, start=1):
        for name, _title, fig in items:
            stem = f"{index}-{name}" if counts[name] > 1 else name
            for fmt in FORMATS:
                path = directory / f"{stem}.{fmt}"
                data = figure_bytes(fig, fmt)
                new = not path.exists()
                with atomic_write(path, "wb") as stream:
                    stream.write(data)
                if new:
                    added.append(path)
                written.append(path)
            fig.clear()  # release the artists now; the figure itself is garbage-collected
    return written
