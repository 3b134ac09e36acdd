"""Renderers: a typed result -> text in one format, chosen from one registry.

``RENDERERS`` maps ``(command, format)`` to the function that renders it; every pair in it
produces non-empty output (a test walks the whole matrix), and a pair not in it is refused
before any work is done (:func:`supported`). Text formats return a string; the ``table`` format
prints Rich tables on the console the command line owns. Renderers are imported on first use,
so choosing one costs nothing at start-up.

Each renderer receives the result's document (``result.to_dict()``): the result was validated
when it was built or loaded, so every field a renderer reads is there with its type. The
renderers for people (:data:`FOR_PEOPLE`: the terminal table, Markdown, HTML) receive it with
every string made one line of visible characters (:func:`xavinit.text.printable_strings`): a
tensor, layer, file or run name read from a file cannot move the cursor, clear the screen or
break a table row there. On top, the table's console reads no Rich markup (``[bold]`` in a
name is shown as it is), Markdown cells escape ``|`` and HTML escapes its entities.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xavinit.commands import RESULT_COMMANDS

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

FOR_PEOPLE = ("table", "markdown", "html")
"""Formats read by people rather than programs: their names are made printable first."""

COMMANDS = tuple(command.name for command in RESULT_COMMANDS)

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


def _document(result: Any, fmt: str) -> dict[str, Any]:
    document = result.to_dict()
    if fmt in FOR_PEOPLE:
        from xavinit.text import printable_strings

        document = printable_strings(document)
    return document


def render(result: Any, fmt: str) -> str:
    """A result (anything with ``command`` and ``to_dict()``) as text in a text format."""
    return str(_renderer(result.command, fmt)(_document(result, fmt)))


def print_table(result: Any, console: Console) -> None:
    """A result as Rich tables on ``console``, which must read no markup (``Console(markup=False,
    emoji=False)``, as the command line's): every string is shown as the text it is."""
    _renderer(result.command, "table")(_document(result, "table"), console)


__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FOR_PEOPLE",
    "RENDERERS",
    "formats",
    "print_table",
    "render",
    "supported",
]
