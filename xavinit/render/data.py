"""Machine-readable renderings: JSON, YAML and CSV.

CSV is one table per command: ``init`` one row per (scheme, layer or array); ``propagate`` one
row per (run, layer); ``train`` one row per (run, evaluation) of the learning curve; ``schemes``
one row per scheme; ``sweep`` one row per run; ``gain`` one row per activation, its depth check's
fields prefixed ``check_``; ``report`` the rows of every included result, each with its ``file`` and
``command`` in front. Nested values (histograms) are compact JSON, lists are joined with ';'.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from xavinit.serialize import to_json, to_yaml


def render_json(document: dict[str, Any]) -> str:
    """The document as indented JSON (non-finite floats already strings)."""
    return to_json(document)


def render_yaml(document: dict[str, Any]) -> str:
    """The document as block YAML with keys in contract order."""
    return to_yaml(document)


def _run_rows(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for run in document["runs"]:
        head = {k: run[k] for k in ("scheme", "activation")}
        rows.extend({**head, **row} for row in run[key])
    return rows


def _report_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for inner in document["documents"]:
        head = {"file": inner["file"], "command": inner["command"]}
        rows.extend({**head, **row} for row in table_rows(inner))
    return rows


def _gain_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    checks = {c["activation"]: c for c in document.get("depth_checks", [])}
    rows = []
    for row in document["gains"]:
        check = checks.get(row["activation"], {})
        extra = {f"check_{k}": v for k, v in check.items() if k not in ("activation", "variances")}
        rows.append({**row, **extra})
    return rows


CSV_ROWS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "init": lambda d: list(d["layers"]),
    "propagate": lambda d: _run_rows(d, "layers") + _model_rows(d),
    "train": lambda d: _run_rows(d, "curve"),
    "schemes": lambda d: list(d["schemes"]),
    "gain": _gain_rows,
    "report": _report_rows,
    "check": lambda d: [{k: v for k, v in t.items() if k != "candidates"} for t in d["tensors"]],
    "sweep": lambda d: _sweep_rows(d),
}
"""Each command's CSV rows, from its document."""


def _model_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    if not document.get("models"):
        return []
    from xavinit.render.propagate_model import model_rows  # imports Rich's tables

    return model_rows(document)


def _sweep_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    from xavinit.render.sweep import sweep_rows  # rich tables: only a sweep's CSV needs them

    return sweep_rows(document)


def table_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's rows for CSV (see the module docstring)."""
    return CSV_ROWS[document["command"]](document)


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else value


def render_csv(document: dict[str, Any]) -> str:
    """The document's rows as CSV with a header of every column that occurs."""
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
