"""Renderers: a typed result -> text in one format, chosen from one registry.

``RENDERERS`` maps ``(command, format)`` to the function that renders it; every pair in it
produces non-empty output (a test walks the whole matrix), and a pair not in it is refused
before any work is done (:func:`supported`). Text formats return a string; the ``table`` format
prints Rich tables on the console the command line owns. Renderers are imported on first use,
so choosing one costs nothing at start-up.

Each renderer receives the result's document (``result.to_dict()``): the result was validated
when it was built or loaded, so every field a renderer reads is there with its type.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "json", "yaml", "csv", "markdown", "html")
EXTENSIONS = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
}
"""``--output`` picks its format from the file's extension."""

COMMANDS = ("init", "propagate", "train", "report", "schemes", "check", "sweep", "gain")

_GENERIC = {
    "json": "xavinit.render.data:render_json",
    "yaml": "xavinit.render.data:render_yaml",
    "csv": "xavinit.render.data:render_csv",
    "markdown": "xavinit.render.markdown:render_markdown",
    "html": "xavinit.render.html:render_html",
    "table": "xavinit.render.table:print_table",
}

RENDERERS: dict[tuple[str, str], str] = {
    (command, fmt): path for command in COMMANDS for fmt, path in _GENERIC.items()
}
"""``(command, format) -> "module:function"``; the function takes the result's document (and,
for ``table``, the console)."""


def supported(command: str, fmt: str) -> bool:
    """Whether ``command``'s result can be rendered as ``fmt``."""
    return (command, fmt) in RENDERERS


def formats(command: str) -> list[str]:
    """The formats ``command``'s result can be rendered in."""
    return [fmt for (name, fmt) in RENDERERS if name == command]


def _renderer(command: str, fmt: str) -> Any:
    module, _, function = RENDERERS[(command, fmt)].partition(":")
    return getattr(importlib.import_module(module), function)


def render(result: Any, fmt: str) -> str:
    """A result (anything with ``command`` and ``to_dict()``) as text in a text format."""
    return str(_renderer(result.command, fmt)(result.to_dict()))


def print_table(result: Any, console: Console) -> None:
    """A result as Rich tables on ``console``."""
    _renderer(result.command, "table")(result.to_dict(), console)


__all__ = ["EXTENSIONS", "FORMATS", "RENDERERS", "formats", "print_table", "render", "supported"]
