"""Renderings of ``propagate --model`` results (a propagate document with ``models``): the
verdict, one row per measured module in network order, the drift checks; CSV rows."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.render.blocks import Blocks
from xavinit.render.format import fixed, num, sci
from xavinit.render.longtable import print_table_fast

HEADER = [
    "#", "module", "type", "Var[y] (theory)", "ch. sq. mean", "ch. var", "sat.",
    "Var[dC/dy]", "/ top", "branch / skip",
]  # fmt: skip


def _drift_text(run: dict[str, Any]) -> list[str]:
    lines = []
    for check in run.get("drift", []):
        what = (
            "activation variance" if check["quantity"] == "activation_var" else "gradient variance"
        )
        ratio = check.get("ratio")
        mark = "ok" if check["passed"] else "DRIFT"
        direction = (
            f"last ({check['last']}) / first ({check['first']})"
            if check["quantity"] == "activation_var"
            else f"first ({check['first']}) / top ({check['last']})"
        )
        text = f"{mark}: {what} {direction} = {num(ratio, 3)} (allowed 1/{run['max_drift']:g}..{run['max_drift']:g})"
        if not check["passed"] and check.get("beyond_from"):
            text += f", beyond the band from {check['beyond_from']} on"
        lines.append(text)
    if run.get("backward", "measured") != "measured":
        lines.append(f"backward {run['backward']}")
    return lines


def model_summary(document: dict[str, Any]) -> str:
    """One line: PASSED/FAILED and, for a failed model, the checks that drifted."""
    runs = document.get("models", [])
    failed = [r for r in runs if not r.get("passed")]
    if not failed:
        names = ", ".join(r["model"] for r in runs)
        return f"PASSED: {names}: no variance drifts beyond its band"
    parts = []
    for run in failed:
        why = [
            f"{c['quantity']} x{num(c.get('ratio'), 3)} from {c['first']} to {c['last']}"
            + (f" (beyond from {c['beyond_from']})" if c.get("beyond_from") else "")
            for c in run.get("drift", [])
            if not c["passed"]
        ]
        parts.append(f"{run['model']}: " + ("; ".join(why) or run.get("failure") or "failed"))
    return "FAILED: " + " | ".join(parts)


def _rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for m in run.get("modules", []):
        sat = m.get("saturated_fraction")
        predicted = m.get("predicted_var")
        branch = m.get("branch_var")
        skip = m.get("skip_var")
        rows.append(
            [
                str(m["index"]),
                m["name"],
                m["type"].rpartition(".")[2]
                + (f" ({m['activation']})" if m.get("activation") else ""),
                sci(m["var"]) + ("" if predicted is None else f" ({sci(predicted)})"),
                sci(m["channel_sq_mean"]),
                sci(m["channel_var"]),
                "-" if sat is None else f"{100 * sat:.1f}%",
                sci(m.get("grad_var")),
                fixed(m.get("grad_ratio_to_top")),
                "-" if branch is None or skip is None else f"{sci(branch)} / {sci(skip)}",
            ]
        )
    return rows


def _title(run: dict[str, Any]) -> str:
    shape = ",".join(map(str, run.get("input_shape", [])))
    return (
        f"xavinit propagate --model {run['model']} ({run['source']}, {run['parameters']:,} "
        f"parameters): batch {run['batch']} x {shape}, {run['input']} inputs, every "
        f"{run['depth_of']}"
    )


def markdown_models(document: dict[str, Any]) -> Blocks:
    """Verdict, then per model its modules and drift checks."""
    out = Blocks()
    out.verdict(model_summary(document), document.get("passed"))
    for run in document.get("models", []):
        out.text(
            f"`{_title(run)}`; seed {document.get('seed')}. Mean-field prediction in brackets."
        )
        out.table(HEADER, [[escape_pipe(c) for c in row] for row in _rows(run)])
        for line in [*_drift_text(run), *run.get("notes", [])]:
            out.text(line + ".")
    return out


def escape_pipe(cell: str) -> str:
    """A module name is text, not Markdown code."""
    return cell.replace("`", "'")


def table_models(document: dict[str, Any], console: Console) -> None:
    """Per model: one row per module, then the drift checks and the verdict."""
    for run in document.get("models", []):
        table = Table(
            title=Text(_title(run)),
            title_justify="left",
            caption=Text(
                "Var[y] (mean-field prediction); ch. sq. mean / ch. var: average channel squared "
                "mean and variance (Brock et al. 2021); Var[dC/dy] per example, / top: ratio to "
                "the top module's"
            ),
            caption_justify="left",
        )
        for position, column in enumerate(HEADER):
            table.add_column(Text(column), justify="left" if position in (1, 2) else "right")
        for row in _rows(run):
            table.add_row(*(Text(c) for c in row))
        print_table_fast(console, table)
        for check, line in zip(run.get("drift", []), _drift_text(run), strict=False):
            console.print(Text(f"  {line}", style="" if check["passed"] else "bold red"))
        for line in _drift_text(run)[len(run.get("drift", [])) :] + run.get("notes", []):
            console.print(Text(f"  {line}", style="dim"))
    style = "bold green" if document.get("passed") else "bold red"
    console.print(Text(model_summary(document), style=style))


def model_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """CSV: one row per (model, module), its parameters as compact JSON."""
    rows = []
    for run in document.get("models", []):
        for m in run.get("modules", []):
            rows.append({"model": run["model"], "source": run["source"], **m})
    return rows
