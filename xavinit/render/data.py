"""Machine-readable renderings: JSON, YAML and CSV (one row per layer entry)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from xavinit.config import dump_yaml


def render_json(document: dict[str, Any]) -> str:
    """The document as indented JSON (non-finite floats already strings)."""
    return json.dumps(document, indent=2) + "\n"


def render_yaml(document: dict[str, Any]) -> str:
    """The document as block YAML with keys in contract order."""
    return dump_yaml(document)


def table_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's per-layer rows, flat: ``init`` layers; for run-based commands, each run's
    layers with the run's ``scheme`` and ``activation`` in front."""
    if "runs" in document:
        rows = []
        for run in document["runs"]:
            head = {k: run.get(k) for k in ("scheme", "activation")}
            for layer in run.get("layers", []):
                rows.append({**head, **layer})
        return rows
    return list(document.get("layers", []))


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else value


def render_csv(document: dict[str, Any]) -> str:
    """One CSV row per layer entry; nested values (histograms) as compact JSON, lists joined
    with ';'."""
    rows = table_rows(document)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()
