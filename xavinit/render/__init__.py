"""Renderers: a result document (the dict of the result contract) -> text in one format.

One module per format; ``render(document, fmt)`` picks it. The table format needs a Rich console
and lives in :mod:`xavinit.render.table`.
"""

from __future__ import annotations

from typing import Any

from xavinit.render import report as _report  # noqa: F401  (registers the report renderers)
from xavinit.render.data import render_csv, render_json, render_yaml
from xavinit.render.html import render_html
from xavinit.render.markdown import render_markdown

FORMATS = ("table", "json", "yaml", "csv", "markdown", "html")
TEXT_RENDERERS = {
    "json": render_json,
    "yaml": render_yaml,
    "csv": render_csv,
    "markdown": render_markdown,
    "html": render_html,
}
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


def render(document: dict[str, Any], fmt: str) -> str:
    """Render a result document as json, yaml, csv or markdown text."""
    return TEXT_RENDERERS[fmt](document)


__all__ = ["EXTENSIONS", "FORMATS", "render"]
