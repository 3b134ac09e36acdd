"""Renderings of ``propagate --model`` results (a propagate result with ``models``): the
verdict, one row per measured module in network order, the drift checks; CSV rows (from the
result's document, as every CSV)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.render.blocks import Blocks
from xavinit.render.format import fixed, num, sci
from xavinit.render.longtable import print_table_fast
from xavinit.results import ModelRun, PropagateResult

HEADER = [
    "#", "module", "type", "Var[y] (theory)", "ch. sq. mean", "ch. var", "sat.",
    "Var[dC/dy]", "/ top", "branch / skip",
]  # fmt: skip


def _drift_text(run: ModelRun) -> list[str]:
    lines = []
    for check in run.drift:
        what = (
            "activation variance" if check["quantity"] == "activation_var" else "gradient variance"
        )
        ratio = check["ratio"]
        mark = "ok" if check["passed"] else "DRIFT"
        direction = (
            f"last ({check['last']}) / first ({check['first']})"
            if check["quantity"] == "activation_var"
            else f"first ({check['first']}) / top ({check['last']})"
        )
        text = f"{mark}: {what} {direction} = {num(ratio, 3)} (allowed 1/{run.max_drift:g}..{run.max_drift:g})"
        if not check["passed"] and check["beyond_from"]:
            text += f", beyond the band from {check['beyond_from']} on"
        lines.append(text)
    if run.backward != "measured":
        lines.append(f"backward {run.backward}")
    return lines


def model_summary(result: PropagateResult) -> str:
    """One line: PASSED/FAILED and, for a failed model, the checks that drifted."""
    runs = result.models
    failed = [r for r in runs if not r.passed]
    if not failed:
        names = ", ".join(r.model for r in runs)
        return f"PASSED: {names}: no variance drifts beyond its band"
    parts = []
    for run in failed:
        why = [
            f"{c['quantity']} x{num(c['ratio'], 3)} from {c['first']} to {c['last']}"
            + (f" (beyond from {c['beyond_from']})" if c["beyond_from"] else "")
            for c in run.drift
            if not c["passed"]
        ]
        parts.append(f"{run.model}: " + ("; ".join(why) or run.failure or "failed"))
    return "FAILED: " + " | ".join(parts)


def _rows(run: ModelRun) -> list[list[str]]:
    rows = []
    for m in run.modules:
        sat = m.saturated_fraction
        predicted = m.predicted_var
        branch = m.branch_var
        skip = m.skip_var
        rows.append(
            [
                str(m.index),
                m.name,
                m.type.rpartition(".")[2] + (f" ({m.activation})" if m.activation else ""),
                sci(m.var) + ("" if predicted is None else f" ({sci(predicted)})"),
                sci(m.channel_sq_mean),
                sci(m.channel_var),
                "-" if sat is None else f"{100 * sat:.1f}%",
                sci(m.grad_var),
                fixed(m.grad_ratio_to_top),
                "-" if branch is None or skip is None else f"{sci(branch)} / {sci(skip)}",
            ]
        )
    return rows


def _title(run: ModelRun) -> str:
    shape = ",".join(map(str, run.input_shape))
    return (
        f"xavinit propagate --model {run.model} ({run.source}, {run.parameters:,} "
        f"parameters): batch {run.batch} x {shape}, {run.input} inputs, every "
        f"{run.depth_of}"
    )


def markdown_models(result: PropagateResult) -> Blocks:
    """Verdict, then per model its modules and drift checks."""
    out = Blocks()
    out.verdict(model_summary(result), result.passed)
    for run in result.models:
        out.text(f"`{_title(run)}`; seed {result.seed}. Mean-field prediction in brackets.")
        out.table(HEADER, [[escape_pipe(c) for c in row] for row in _rows(run)])
        for line in [*_drift_text(run), *run.notes]:
            out.text(line + ".")
    return out


def escape_pipe(cell: str) -> str:
    """A module name is text, not Markdown code."""
    return cell.replace("`", "'")


def table_models(result: PropagateResult, console: Console) -> None:
    """Per model: one row per module, then the drift checks and the verdict."""
    for run in result.models:
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
        for check, line in zip(run.drift, _drift_text(run), strict=False):
            console.print(Text(f"  {line}", style="" if check["passed"] else "bold red"))
        for line in _drift_text(run)[len(run.drift) :] + run.notes:
            console.print(Text(f"  {line}", style="dim"))
    style = "bold green" if result.passed else "bold red"
    console.print(Text(model_summary(result), style=style))
