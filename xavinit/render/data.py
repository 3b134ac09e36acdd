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
from itertools import chain
from typing import Any

from xavinit.results import Result, document_is_fields
from xavinit.serialize import json_of_fields, plain, to_json, to_yaml, yaml_of_fields


def render_json(result: Result) -> str:
    """The result's document as indented JSON (non-finite floats as strings), written from the
    result's own objects where its document is its fields (:func:`~xavinit.serialize.json_of_fields`)."""
    if document_is_fields(result):
        return json_of_fields(result.fields())
    return to_json(result.to_dict())


def render_yaml(result: Result) -> str:
    """The result's document as block YAML with keys in contract order, written from the
    result's own objects where its document is its fields, not from a copy
    (:func:`xavinit.serialize.yaml_of_fields`)."""
    if document_is_fields(result):
        text = yaml_of_fields(result.fields())
        if text is not None:
            return text
    return to_yaml(result.to_dict())


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
    checks = {c["activation"]: c for c in document["depth_checks"]}
    rows = []
    for row in document["gains"]:
        check = checks.get(row["activation"], {})
        extra = {f"check_{k}": v for k, v in check.items() if k not in ("activation", "variances")}
        rows.append({**row, **extra})
    return rows


def _model_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """``propagate --model``: one row per (model, module), its parameters as compact JSON."""
    return [
        {"model": run["model"], "source": run["source"], **module}
        for run in document.get("models", [])
        for module in run["modules"]
    ]


SWEEP_COLUMNS = (
    "id", "dataset", "activation", "scheme", "lr", "seed", "status", "updates",
    "final_test_error", "final_valid_error", "selection_valid_error", "diverged_at",
    "wall_seconds", "worker", "retries", "error",
)  # fmt: skip
"""A sweep run's fields in its CSV row, before ``chosen``."""


def _sweep_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """``sweep``: one row per run, with whether it is at its model's chosen learning rate."""
    chosen = {(e["dataset"], e["activation"], e["scheme"]): e["lr"] for e in document["table"]}
    rows = []
    for run in document["runs"]:
        row = {key: run[key] for key in SWEEP_COLUMNS}
        row["chosen"] = chosen.get((run["dataset"], run["activation"], run["scheme"])) == run["lr"]
        rows.append(row)
    return rows


CSV_ROWS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "init": lambda d: list(d["layers"]),
    "propagate": lambda d: _run_rows(d, "layers") + _model_rows(d),
    "train": lambda d: _run_rows(d, "curve"),
    "schemes": lambda d: list(d["schemes"]),
    "gain": _gain_rows,
    "report": _report_rows,
    "check": lambda d: [{k: v for k, v in t.items() if k != "candidates"} for t in d["tensors"]],
    "sweep": _sweep_rows,
}
"""Each command's CSV rows, from its document."""


def table_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's rows for CSV (see the module docstring)."""
    return CSV_ROWS[document["command"]](document)


def _cell(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else value


_NESTED = frozenset({dict, list})


def _csv_document(result: Result) -> dict[str, Any]:
    """What :func:`table_rows` reads: the result's document, but for ``check`` without the
    candidate rows its CSV leaves out (15 a tensor, copied for nothing: half of the time)."""
    if result.command != "check":
        return result.to_dict()
    tensors = [
        {key: value for key, value in vars(tensor).items() if key != "candidates"}
        for tensor in getattr(result, "tensors")  # noqa: B009 (Result: a union)
    ]
    return {"command": "check", "tensors": plain(tensors)}


def render_csv(result: Result) -> str:
    """The result's document as CSV rows with a header of every column that occurs (in the
    order they first occur); a missing or None cell is empty."""
    rows = table_rows(_csv_document(result))
    columns = list(dict.fromkeys(chain.from_iterable(rows)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = list(map(row.get, columns))  # csv writes None as an empty cell
        writer.writerow(cells if _NESTED.isdisjoint(map(type, cells)) else map(_cell, cells))
    return out.getvalue()
