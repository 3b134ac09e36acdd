"""``xavinit report``: saved results as tables, a CI summary, an HTML report and figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

DOC = """Read saved results and render them together: tables, Markdown, HTML, JSON, figures.

    Exit 1 when any included result failed its checks, 2 on bad input (a file that is not a
    result, truncated JSON, an unknown schema version, a missing file).

    Examples:

      xavinit report init.json propagate.json train.json

      xavinit report *.json -f markdown >> "$GITHUB_STEP_SUMMARY"

      xavinit report propagate.json train.json --paper -o report.html --plots figures/
    """


def run_and_draw(config: Any, progress: Any) -> Any:
    """Gather the results, then write every figure into ``--plots DIR`` when asked."""
    from xavinit.experiments.report import run_report

    result = run_report(config, progress)
    if config.plots is None:
        return result
    from xavinit.render.plots import PlotsUnavailable, write_figures

    try:
        written = [str(p) for p in write_figures(result.documents, Path(config.plots))]
    except PlotsUnavailable as error:
        return dataclasses.replace(result, plots_note=str(error))
    return dataclasses.replace(result, plots=written)


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.run import result_command
    from xavinit.config import ReportConfig

    def prepare(values: dict[str, Any], extras: dict[str, Any]) -> Any:
        return ReportConfig.from_mapping, lambda: run_and_draw

    return result_command(ReportConfig, "", DOC, prepare=prepare)
