"""One self-contained HTML page: the Markdown blocks as HTML, and the figures embedded.

No network and no external assets: styles are inline and figures are PNG data URIs. Without
matplotlib the page keeps its tables and says how to get the figures.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from xavinit.render.blocks import to_html
from xavinit.render.markdown import blocks

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #1b1f24; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
code { background: #f6f8fa; padding: 0 0.25em; border-radius: 3px; }
.verdict { padding: 0.6em 1em; border-radius: 6px; font-weight: 600; }
.verdict.pass { background: #dafbe1; color: #116329; }
.verdict.fail { background: #ffebe9; color: #a40e26; }
.bad { color: #a40e26; font-weight: 600; } .good { color: #116329; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { font-size: 0.9em; color: #57606a; }
.note { background: #fff8c5; padding: 0.6em 1em; border-radius: 6px; }
"""


def _documents(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document.get("documents", []) if document["command"] == "report" else [document]


def figure_section(document: dict[str, Any]) -> str:
    """Every figure of every included result as an embedded PNG, or a note on how to get them."""
    from xavinit.render.plots import PlotsUnavailable, figure_bytes, figures

    parts = ["<h2>Figures</h2>"]
    try:
        for doc in _documents(document):
            for name, title, figure in figures(doc):
                data = base64.b64encode(figure_bytes(figure, "png")).decode("ascii")
                alt = html.escape(title)
                parts.append(
                    f'<figure id="{html.escape(name)}"><img alt="{alt}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'
                )
    except PlotsUnavailable as error:
        parts.append(f'<p class="note">{html.escape(str(error))}</p>')
    return "\n".join(parts)


def render_html(document: dict[str, Any]) -> str:
    """The whole page for a result document (a report or a single command's result)."""
    title = f"xavinit {document['command']}"
    body = to_html(blocks(document))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"{body}\n{figure_section(document)}\n</body></html>\n"
    )
