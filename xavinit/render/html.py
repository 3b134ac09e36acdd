"""One self-contained HTML page: the Markdown blocks as HTML, and the figures embedded.

``html_<command>`` renders one command's result; a report's page is
:func:`xavinit.render.report.html_report`, built with :func:`page` from here.

No network and no external assets: styles are inline and figures are PNG data URIs. Without
matplotlib the page keeps its tables and says how to get the figures.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from xavinit.render.blocks import Blocks, to_html
from xavinit.render.markdown import blocks
from xavinit.results import (
    CheckResult,
    GainResult,
    InitResult,
    PropagateResult,
    SchemesResult,
    SweepResult,
    TrainResult,
)

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


def figure_section(results: list[Any]) -> str:
    """Every figure of the given typed results as an embedded PNG, or a note on how to get
    them."""
    from xavinit.render.plots import PlotsUnavailable, figure_bytes, figures

    parts = ["<h2>Figures</h2>"]
    try:
        for result in results:
            for name, title, figure in figures(result):
                data = base64.b64encode(figure_bytes(figure, "png")).decode("ascii")
                alt = html.escape(title)
                parts.append(
                    f'<figure id="{html.escape(name)}"><img alt="{alt}" '
                    f'src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'
                )
    except PlotsUnavailable as error:
        parts.append(f'<p class="note">{html.escape(str(error))}</p>')
    return "\n".join(parts)


def page(command: str, body: Blocks, shown: list[Any]) -> str:
    """The whole page of a ``command``'s result: its blocks, then the figures of ``shown`` (the
    result itself, or a report's included results)."""
    title = f"xavinit {command}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"{to_html(body)}\n{figure_section(shown)}\n</body></html>\n"
    )


def _page(result: Any) -> str:
    return page(result.command, blocks(result), [result])


def html_init(result: InitResult) -> str:
    """An ``init`` result as an HTML page."""
    return _page(result)


def html_propagate(result: PropagateResult) -> str:
    """A ``propagate`` result (``--model`` included) as an HTML page."""
    return _page(result)


def html_train(result: TrainResult) -> str:
    """A ``train`` result as an HTML page."""
    return _page(result)


def html_schemes(result: SchemesResult) -> str:
    """The ``schemes`` listing as an HTML page."""
    return _page(result)


def html_check(result: CheckResult) -> str:
    """A ``check`` result as an HTML page."""
    return _page(result)


def html_gain(result: GainResult) -> str:
    """A ``gain`` result as an HTML page."""
    return _page(result)


def html_sweep(result: SweepResult) -> str:
    """A ``sweep`` result as an HTML page."""
    return _page(result)
