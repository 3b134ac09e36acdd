"""Renderers: a typed result -> text in one format, chosen from one registry.

``RENDERERS`` maps each ``(command, format)`` pair that can be rendered to the function that
renders it, written out pair by pair; a pair not in it is refused (:func:`supported`, which the
command line asks before any work is done). Renderers are imported on first use, so choosing one
costs nothing at start-up.

Every renderer takes the command's typed result (:mod:`xavinit.results`): the result was
validated when it was built or loaded, so every field is there with its type. The data formats
(JSON, YAML, CSV) write its document (``result.to_dict()``; JSON and YAML the same text from the
result's own objects, without the copy, where the document is its fields); the table prints Rich
tables on the console the command line owns, Markdown and HTML return text. The renderers for people
(:data:`FOR_PEOPLE`) receive a copy whose strings are each one line of visible characters
(:func:`xavinit.text.printable_strings`): a tensor, layer, file or run name read from a file
cannot move the cursor, clear the screen or break a table row there. On top, the table's console
reads no Rich markup (``[bold]`` in a name is shown as it is), Markdown cells escape ``|`` and
HTML escapes its entities.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from xavinit.commands import RESULT_COMMANDS
from xavinit.errors import XavinitError

if TYPE_CHECKING:
    from rich.console import Console

    from xavinit.results import Result

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
"""Formats read by people rather than programs: their strings are made printable first."""

COMMANDS = tuple(command.name for command in RESULT_COMMANDS)

_TABLE = "xavinit.render.table"
_MARKDOWN = "xavinit.render.markdown"
_HTML = "xavinit.render.html"
_DATA = "xavinit.render.data"
_SWEEP = "xavinit.render.sweep"
_REPORT = "xavinit.render.report"

RENDERERS: dict[tuple[str, str], str] = {
    ("init", "json"): f"{_DATA}:render_json",
    ("init", "yaml"): f"{_DATA}:render_yaml",
    ("init", "csv"): f"{_DATA}:render_csv",
    ("init", "markdown"): f"{_MARKDOWN}:markdown_init",
    ("init", "html"): f"{_HTML}:html_init",
    ("init", "table"): f"{_TABLE}:table_init",
    ("propagate", "json"): f"{_DATA}:render_json",
    ("propagate", "yaml"): f"{_DATA}:render_yaml",
    ("propagate", "csv"): f"{_DATA}:render_csv",
    ("propagate", "markdown"): f"{_MARKDOWN}:markdown_propagate",
    ("propagate", "html"): f"{_HTML}:html_propagate",
    ("propagate", "table"): f"{_TABLE}:table_propagate",
    ("train", "json"): f"{_DATA}:render_json",
    ("train", "yaml"): f"{_DATA}:render_yaml",
    ("train", "csv"): f"{_DATA}:render_csv",
    ("train", "markdown"): f"{_MARKDOWN}:markdown_train",
    ("train", "html"): f"{_HTML}:html_train",
    ("train", "table"): f"{_TABLE}:table_train",
    ("schemes", "json"): f"{_DATA}:render_json",
    ("schemes", "yaml"): f"{_DATA}:render_yaml",
    ("schemes", "csv"): f"{_DATA}:render_csv",
    ("schemes", "markdown"): f"{_MARKDOWN}:markdown_schemes",
    ("schemes", "html"): f"{_HTML}:html_schemes",
    ("schemes", "table"): f"{_TABLE}:table_schemes",
    ("check", "json"): f"{_DATA}:render_json",
    ("check", "yaml"): f"{_DATA}:render_yaml",
    ("check", "csv"): f"{_DATA}:render_csv",
    ("check", "markdown"): f"{_MARKDOWN}:markdown_check",
    ("check", "html"): f"{_HTML}:html_check",
    ("check", "table"): f"{_TABLE}:table_check",
    ("gain", "json"): f"{_DATA}:render_json",
    ("gain", "yaml"): f"{_DATA}:render_yaml",
    ("gain", "csv"): f"{_DATA}:render_csv",
    ("gain", "markdown"): f"{_MARKDOWN}:markdown_gain",
    ("gain", "html"): f"{_HTML}:html_gain",
    ("gain", "table"): f"{_TABLE}:table_gain",
    ("sweep", "json"): f"{_DATA}:render_json",
    ("sweep", "yaml"): f"{_DATA}:render_yaml",
    ("sweep", "csv"): f"{_DATA}:render_csv",
    ("sweep", "markdown"): f"{_SWEEP}:markdown_sweep",
    ("sweep", "html"): f"{_HTML}:html_sweep",
    ("sweep", "table"): f"{_SWEEP}:table_sweep",
    ("report", "json"): f"{_DATA}:render_json",
    ("report", "yaml"): f"{_DATA}:render_yaml",
    ("report", "csv"): f"{_DATA}:render_csv",
    ("report", "markdown"): f"{_REPORT}:markdown_report",
    ("report", "html"): f"{_REPORT}:html_report",
    ("report", "table"): f"{_REPORT}:table_report",
}
"""``(command, format) -> "module:function"``. The function takes the command's typed result
(and, for ``table``, the console): ``table_<command>(result, console)``,
``markdown_<command>(result) -> str``, ``html_<command>(result) -> str``, and the generic
``render_json``/``render_yaml``/``render_csv(result) -> str``."""


def supported(command: str, fmt: str) -> bool:
    """Whether ``command``'s result can be rendered as ``fmt``."""
    return (command, fmt) in RENDERERS


def formats(command: str) -> list[str]:
    """The formats ``command``'s result can be rendered in."""
    return [fmt for (name, fmt) in RENDERERS if name == command]


def require_supported(command: str, fmt: str) -> None:
    """Refuse a pair not in :data:`RENDERERS`, naming the formats ``command`` has.

    Raises:
        XavinitError: ``<command> cannot be rendered as <fmt>; formats: json, yaml, ...``.
    """
    if not supported(command, fmt):
        allowed = ", ".join(formats(command)) or "none"
        raise XavinitError(f"{command} cannot be rendered as {fmt}; formats: {allowed}")


def _renderer(command: str, fmt: str) -> Any:
    """The function registered for ``(command, fmt)``, imported now.

    Raises:
        XavinitError: the pair is not in :data:`RENDERERS`.
    """
    require_supported(command, fmt)
    module, _, function = RENDERERS[(command, fmt)].partition(":")
    return getattr(importlib.import_module(module), function)


def _for(result: Result, fmt: str) -> Result:
    """The result a renderer of ``fmt`` is given: for people, with printable strings."""
    if fmt in FOR_PEOPLE:
        from xavinit.text import printable_strings

        return printable_strings(result)
    return result


def render(result: Result, fmt: str) -> str:
    """A result as text in a text format (every format but ``table``, which
    :func:`print_table` prints on a console).

    Raises:
        XavinitError: the result's command cannot be rendered as ``fmt``.
    """
    if fmt == "table":
        raise XavinitError(f"{result.command}: the table is printed on a console (print_table)")
    return str(_renderer(result.command, fmt)(_for(result, fmt)))


def print_table(result: Result, console: Console) -> None:
    """A result as Rich tables on ``console``, which must read no markup (``Console(markup=False,
    emoji=False)``, as the command line's): every string is shown as the text it is.

    Raises:
        XavinitError: the result's command has no table.
    """
    _renderer(result.command, "table")(_for(result, "table"), console)


__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "FOR_PEOPLE",
    "RENDERERS",
    "formats",
    "print_table",
    "render",
    "require_supported",
    "supported",
]
