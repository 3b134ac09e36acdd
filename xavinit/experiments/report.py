"""``xavinit report``: read saved results back, validate them, and gather them in one document.

Each file is read into its result dataclass (so a file that is not a result, a truncated one or
an unknown ``schema_version`` is refused with a clear message) and written back out as its
document, with the file it came from. ``--plots DIR`` writes every figure as PNG and SVG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xavinit import __version__
from xavinit.config import ReportConfig
from xavinit.experiments import Progress
from xavinit.results import SCHEMA_VERSION, load_result

COMMAND_ORDER = ("init", "propagate", "train")


@dataclass(frozen=True)
class ReportResult:
    """Every included result, in command order; ``passed`` when all of them passed."""

    config: dict[str, Any]
    passed: bool
    documents: list[dict[str, Any]]
    paper: bool = False
    plots: list[str] = field(default_factory=list)
    plots_note: str | None = None
    command: str = "report"
    schema_version: int = SCHEMA_VERSION
    xavinit_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """The merged document (each included document keeps its own fields, plus ``file``)."""
        return {
            "schema_version": self.schema_version,
            "xavinit_version": self.xavinit_version,
            "command": self.command,
            "config": self.config,
            "passed": self.passed,
            "paper": self.paper,
            "plots": self.plots,
            "plots_note": self.plots_note,
            "documents": self.documents,
        }


def run_report(config: ReportConfig, progress: Progress | None = None) -> ReportResult:
    """Load every file, order by command, and write figures when asked.

    Raises:
        XavinitError: a missing or unreadable file, or one that is not a known result.
    """
    documents = []
    for position, path in enumerate(config.files):
        if progress is not None:
            progress(position, len(config.files), path)
        documents.append({"file": path, **load_result(path).to_dict()})
    documents.sort(key=lambda d: COMMAND_ORDER.index(d["command"]))
    written: list[str] = []
    note = None
    if config.plots is not None:
        from xavinit.render.plots import PlotsUnavailable, write_figures

        try:
            written = [str(p) for p in write_figures(documents, Path(config.plots))]
        except PlotsUnavailable as error:
            note = str(error)
    return ReportResult(
        config=config.to_dict(),
        passed=all(d.get("passed") for d in documents),
        documents=documents,
        paper=config.paper,
        plots=written,
        plots_note=note,
    )
