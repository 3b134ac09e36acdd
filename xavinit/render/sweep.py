"""Renderings of ``sweep`` results: Table 1 (a row per model, a column per dataset) and the runs.

Rows follow the paper's Table 1: Softsign, Softsign N, Tanh, Tanh N, Sigmoid (N: the normalized
initialization), then any other model of the sweep. A cell is the test error (%) at the chosen
learning rate, mean ± std over seeds; with ``paper`` the paper's value and the difference (ours
minus the paper's, in percentage points) stand beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.paper import SOURCE, table_1_value
from xavinit.render.blocks import Blocks, to_markdown
from xavinit.render.format import decimals, layer_names, num
from xavinit.render.longtable import print_table_fast
from xavinit.results import SweepEntry, SweepResult, SweepRun

PAPER_MODELS = (
    ("softsign", "standard", "Softsign"),
    ("softsign", "normalized", "Softsign N"),
    ("tanh", "standard", "Tanh"),
    ("tanh", "normalized", "Tanh N"),
    ("sigmoid", "standard", "Sigmoid"),
)
"""Table 1's rows: (activation, scheme, the paper's name)."""


def model_name(activation: str, scheme: str) -> str:
    """A model's name as the paper writes it: ``Tanh`` (standard) or ``Tanh N`` (normalized),
    ``activation / scheme`` for other schemes."""
    if scheme in ("standard", "normalized"):
        return activation.capitalize() + (" N" if scheme == "normalized" else "")
    return f"{activation} / {scheme}"


def models_in_order(entries: list[SweepEntry]) -> list[tuple[str, str]]:
    """(activation, scheme) of every model: Table 1's order first, then the others as given."""
    present = list(dict.fromkeys((e["activation"], e["scheme"]) for e in entries))
    paper = [(a, s) for a, s, _ in PAPER_MODELS if (a, s) in present]
    return paper + [m for m in present if m not in paper]


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def cell(entry: SweepEntry | None) -> str:
    """``64.70 ± 1.20 (lr 0.03, 3 seeds)``: test error in %, or why there is none."""
    if entry is None:
        return ""
    if entry["lr"] is None:
        return "no rate finished"
    spread = "" if entry["test_error_std"] is None else f" ± {_percent(entry['test_error_std'])}"
    seeds = f"{entry['seeds']} seed{'s' if entry['seeds'] != 1 else ''}"
    return (
        f"{_percent(entry['test_error_mean'])}{spread} (lr {decimals(entry['lr'], 'g')}, {seeds})"
    )


def table_1(result: SweepResult, paper: bool = False) -> tuple[list[str], list[list[str]]]:
    """Table 1 of a sweep: header and rows of text cells (the paper's beside ours when asked)."""
    entries = result.table
    datasets = list(dict.fromkeys(e["dataset"] for e in entries))
    keyed = {(e["dataset"], e["activation"], e["scheme"]): e for e in entries}
    header = ["model"]
    for dataset in datasets:
        header += [dataset, "paper", "difference"] if paper else [dataset]
    rows = []
    for activation, scheme in models_in_order(entries):
        row = [model_name(activation, scheme)]
        for dataset in datasets:
            entry = keyed.get((dataset, activation, scheme))
            row.append(cell(entry))
            if paper:
                theirs = table_1_value(activation, scheme, dataset)
                ours = None if entry is None else entry["test_error_mean"]
                row.append("-" if theirs is None else f"{theirs:.2f}")
                row.append("-" if theirs is None or ours is None else f"{100 * ours - theirs:+.2f}")
        rows.append(row)
    return header, rows


def sweep_summary(result: SweepResult) -> str:
    """One line: PASSED/FAILED, how many runs finished, diverged, failed."""
    runs = result.runs
    counts = {s: sum(1 for r in runs if r.status == s) for s in ("finished", "diverged", "failed")}
    word = "PASSED" if result.passed else "FAILED"
    line = f"{word}: {counts['finished']} of {len(runs)} runs finished"
    bad = [f"{r.id} {r.status}" for r in runs if r.status != "finished"]
    if bad:
        line += f"; {counts['diverged']} diverged, {counts['failed']} failed: " + ", ".join(bad)
    return line + f" ({result.trained_updates:,} updates trained by this invocation)"


def describe(result: SweepResult) -> str:
    """The grid in one sentence."""
    config = result.config
    if config.get("layers"):
        network = f"network {layer_names(result)}"
    else:  # the hidden widths, written as a network's layers are
        hidden = dataclasses.replace(result, config={"layers": config.get("hidden", [])})
        network = f"hidden layers {layer_names(hidden) or 'none'}"
    chosen = result.table[0]["selected_at"] if result.table else config.get("updates")
    lrs = ", ".join(f"{lr:g}" for lr in config.get("lrs", []))
    seeds = ",".join(map(str, config.get("seeds", [])))
    return (
        f"Sweep in `{config.get('dir')}`: {network}, learning rates {lrs} (chosen on "
        f"validation error after {chosen} updates), seeds {seeds}, batch "
        f"{config.get('batch_size')}, up to {config.get('updates')} updates."
    )


RUN_COLUMNS = (
    "dataset", "activation", "scheme", "lr", "seed", "status", "updates", "valid error",
    "test error", "wall s", "retries",
)  # fmt: skip
"""The runs table: ``valid error`` is the one the learning rate was chosen on."""


def _run_row(run: SweepRun) -> list[str]:
    status = run.status
    if status == "diverged":
        status = f"diverged at {run.diverged_at}"
    elif status == "failed" and run.error:
        status = f"failed: {run.error}"
    return [
        run.dataset,
        run.activation,
        run.scheme,
        decimals(run.lr, "g"),
        str(run.seed),
        status,
        str(run.updates),
        num(run.selection_valid_error, 3),
        num(run.final_test_error, 3),
        f"{run.wall_seconds:.0f}",
        str(run.retries),
    ]


def sweep_blocks(result: SweepResult, paper: bool = False) -> Blocks:
    """Verdict, the grid, Table 1 (test error %, with the paper's when asked), then every run."""
    out = Blocks()
    out.verdict(sweep_summary(result), result.passed)
    out.text(describe(result))
    header, rows = table_1(result, paper)
    out.text(
        "Test error (%) at each model's chosen learning rate, mean ± std over seeds"
        + (f"; the paper's Table 1 ({SOURCE}) and the difference beside it." if paper else ".")
    )
    out.table(header, rows)
    out.table(list(RUN_COLUMNS), [_run_row(run) for run in result.runs])
    return out


def markdown_sweep(result: SweepResult) -> str:
    """A ``sweep`` result as Markdown."""
    return to_markdown(sweep_blocks(result))


def table_sweep(result: SweepResult, console: Console, paper: bool = False) -> None:
    """Table 1 and the runs as Rich tables, then the verdict."""
    console.print(Text(describe(result).replace("`", "")))
    header, rows = table_1(result, paper)
    console.print(
        Text(
            "Table 1: test error (%) at each model's chosen learning rate, mean ± std over seeds"
            + ("; the paper's value and our difference beside it" if paper else "")
        )
    )
    table = Table()
    for position, column in enumerate(header):
        table.add_column(column, justify="left" if position == 0 else "right")
    for row in rows:
        table.add_row(*row)
    print_table_fast(console, table)
    runs = Table(
        title="runs (valid error: the one the learning rate was chosen on)", title_justify="left"
    )
    for column in RUN_COLUMNS:
        left = column in ("dataset", "activation", "scheme", "status")
        runs.add_column(column, justify="left" if left else "right")
    for run in result.runs:
        cells = _run_row(run)
        style = "" if run.status == "finished" else "bold red"
        runs.add_row(*cells[:5], Text(cells[5], style=style), *cells[6:])
    console.print(runs)
    verdict = sweep_summary(result)
    console.print(Text(verdict, style="bold green" if result.passed else "bold red"))
