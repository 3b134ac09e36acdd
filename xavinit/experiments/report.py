"""``xavinit report``: read saved results back, validate them, and gather them in one document.

Each file is read into its result dataclass (so a file that is not a result, a truncated one, an
unknown ``schema_version`` or a field of the wrong type is refused with a clear message) and
written back out as its document, with the file it came from. Figures (``--plots DIR``) are
drawn by the renderers, not here: an experiment never renders.
"""

from __future__ import annotations

from xavinit.commands import REPORT_ORDER
from xavinit.config import ReportConfig
from xavinit.experiments import Progress
from xavinit.loading import load_result
from xavinit.results import ReportResult


def run_report(config: ReportConfig, progress: Progress | None = None) -> ReportResult:
    """Load every file and order the documents by command.

    Raises:
        XavinitError: a missing or unreadable file, or one that is not a valid result.
    """
    documents = []
    for position, path in enumerate(config.files):
        if progress is not None:
            progress(position, len(config.files), path)
        result = load_result(path)
        if result.command == "report":
            documents.extend(result.documents)
        else:
            documents.append({"file": path, **result.to_dict()})
    documents.sort(key=lambda d: REPORT_ORDER.index(d["command"]))
    return ReportResult(
        config=config.to_dict(),
        passed=all(d["passed"] for d in documents),
        documents=documents,
        paper=config.paper,
    )
