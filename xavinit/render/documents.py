"""A report's documents as the typed results they are.

``ReportResult.documents`` keeps each included result as its document (plain data, with the
``file`` it came from: the report's JSON is the contract); the renderers read typed results, so
each document is rebuilt into its command's result type (:data:`RESULT_TYPES`). The report
validated every document when it read it, so this only rebuilds the types
(:func:`xavinit.loading.rebuild`: no JSON round trip, no second strict check).
"""

from __future__ import annotations

from typing import Any

from xavinit.loading import rebuild
from xavinit.results import RESULT_TYPES


def included(document: dict[str, Any]) -> Any:
    """One of a report's documents (a result's document, with or without its ``file``) as its
    typed result."""
    data = {key: value for key, value in document.items() if key != "file"}
    return rebuild(RESULT_TYPES[document["command"]], data)
