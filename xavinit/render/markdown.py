"""GitHub-flavoured Markdown: a one-line verdict, then tables (fit for a CI step summary)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xavinit.render.format import init_summary, layer_names, num, pct, pval


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _mark(passed: Any) -> str:
    return "✅" if passed else "❌"


def markdown_init(document: dict[str, Any]) -> list[str]:
    """Verdict line and one row per (scheme, layer) or checked array; a ranking per array."""
    lines = [f"**{init_summary(document)}**", ""]
    if document.get("mode") == "rank":
        for ranking in document.get("rankings", []):
            lines += [
                f"### `{ranking['array']}` ({ranking['fan_in']} x {ranking['fan_out']}): "
                f"{ranking['verdict']}",
                "",
            ]
            rows = [
                [
                    f"`{c['scheme']}`",
                    pval(c["score"]),
                    num(c["expected_var"]),
                    pct(c["rel_error"]),
                    pval(c["p_value"]),
                    pval(c["ks_p_value"]),
                    _mark(c["explains"]),
                ]
                for c in ranking["candidates"]
            ]
            header = ["scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)", "fits"]
            lines += [*_table(header, rows), ""]
        return lines
    check = document.get("config", {}).get("check")
    where = f"File `{check}`" if check else f"Layers `{layer_names(document)}`"
    lines += [f"{where}, seed {document.get('seed')}.", ""]
    header = [
        "scheme", "layer", "fan_in x fan_out", "expected Var", "observed Var", "rel. error",
        "CI", "p (Var)", "p (KS)", "fan_in·Var", "fan_out·Var", "ok",
    ]  # fmt: skip
    rows = []
    for row in document.get("layers", []):
        name = f"`{row['scheme']}`" + (f" `{row['array']}`" if row.get("array") else "")
        interval = (
            f"{num(row['ci_low'])}..{num(row['ci_high'])}" if row.get("ci_low") is not None else "-"
        )
        rows.append(
            [
                name,
                str(row["layer"]),
                f"{row['fan_in']} x {row['fan_out']}",
                num(row["expected_var"]),
                num(row["observed_var"]),
                pct(row["rel_error"]),
                interval,
                pval(row.get("p_value")),
                pval(row.get("ks_p_value")),
                num(row["fan_in_var"], 3),
                num(row["fan_out_var"], 3),
                _mark(row["passed"])
                + (" " + ", ".join(row["failures"]) if row.get("failures") else ""),
            ]
        )
    lines += _table(header, rows)
    return lines


MARKDOWN: dict[str, Callable[[dict[str, Any]], list[str]]] = {"init": markdown_init}


def render_markdown(document: dict[str, Any]) -> str:
    """The document as Markdown, by its ``command``."""
    return "\n".join(MARKDOWN[document["command"]](document)).rstrip() + "\n"
