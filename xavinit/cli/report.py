"""``xavinit report``: saved results as tables, a CI summary, an HTML report and figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xavinit.cli.common import ConfigOption, FormatOption, OutputOption, QuietOption, execute
from xavinit.config import ReportConfig
from xavinit.experiments.report import run_report


def report(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Result files written by init, propagate or train with --output (.json or .yaml).",
            dir_okay=False,
        ),
    ] = None,
    paper: Annotated[
        bool | None,
        typer.Option(
            "--paper/--no-paper",
            help="Put the paper's reference values (Table 1, the Jacobian's 0.5 and 0.8) beside ours.",
        ),
    ] = None,
    plots: Annotated[
        Path | None,
        typer.Option(
            help="Write every figure as PNG and SVG into this folder (needs matplotlib).",
            file_okay=False,
        ),
    ] = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Read saved results and render them together: tables, Markdown, HTML, JSON, figures.

    Exit 1 when any included result failed its checks, 2 on bad input (a file that is not a
    result, truncated JSON, an unknown schema version, a missing file).

    Examples:

      xavinit report init.json propagate.json train.json

      xavinit report *.json -f markdown >> "$GITHUB_STEP_SUMMARY"

      xavinit report propagate.json train.json --paper -o report.html --plots figures/
    """
    execute(
        cli_values={
            "files": tuple(str(f) for f in files) if files else None,
            "paper": paper,
            "plots": str(plots) if plots else None,
        },
        config_file=config,
        build=ReportConfig.from_mapping,
        run=run_report,
        fmt=fmt,
        output=output,
        quiet=quiet,
    )
