"""Rich tables for the terminal: schemes side by side, failures in red.

One ``table_<command>(result, console)`` per command, each taking its typed result
(:mod:`xavinit.results`) and printing on a console that reads no markup.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.render.format import (
    check_groups,
    check_summary,
    decimals,
    depth_scale_text,
    fans_text,
    fixed,
    gain_names_note,
    gain_summary,
    init_summary,
    layer_names,
    num,
    pct,
    propagate_summary,
    pval,
    sci,
    series,
    shape_text,
    signed,
    sparkline,
    train_summary,
)
from xavinit.render.longtable import print_table_fast
from xavinit.results import (
    CheckResult,
    GainResult,
    InitResult,
    PropagateResult,
    PropagateRun,
    SchemesResult,
    TrainResult,
)


def _ok(passed: bool) -> Text:
    return Text("✓", style="green") if passed else Text("✗", style="bold red")


def _verdict(passed: bool, line: str) -> Text:
    return Text(line, style="bold green" if passed else "bold red")


def table_init(result: InitResult, console: Console) -> None:
    """Sampling: one row per layer, one column group per scheme; check: one row per array."""
    mode = result.mode
    if mode == "rank":
        for ranking in result.rankings:
            table = Table(
                title=f"{ranking.array} ({ranking.fan_in} x {ranking.fan_out}): {ranking.verdict}",
                title_justify="left",
            )
            for column in ("scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)"):
                table.add_column(column, justify="left" if column == "scheme" else "right")
            table.add_column("fits")
            for c in ranking.candidates:
                table.add_row(
                    c["scheme"], pval(c["score"]), sci(c["expected_var"]), pct(c["rel_error"]),
                    pval(c["p_value"]), pval(c["ks_p_value"]), _ok(c["explains"]),
                )  # fmt: skip
            print_table_fast(console, table)
        console.print(Text(init_summary(result)))
        return
    rows = result.layers
    schemes = list(dict.fromkeys(r.scheme for r in rows))
    keyed = {(r.scheme, r.layer, r.array): r for r in rows}
    units = list(dict.fromkeys((r.layer, r.array, r.fan_in, r.fan_out) for r in rows))
    title = (
        f"xavinit init: {layer_names(result)}, seed {result.seed}"
        if mode == "sample"
        else f"xavinit init --check {result.config.get('check')}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("layer" if mode == "sample" else "array", justify="right", no_wrap=True)
    table.add_column("shape", justify="right", no_wrap=True)
    for spec in schemes:
        table.add_column(f"{spec}\nVar", justify="right", no_wrap=True)
        table.add_column("vs exp.", justify="right", no_wrap=True)
        table.add_column("n_in·Var", justify="right", no_wrap=True)
        table.add_column("n_out·Var", justify="right", no_wrap=True)
    for layer, array, fan_in, fan_out in units:
        cells: list[Any] = [str(layer) if array is None else array, f"{fan_in}→{fan_out}"]
        for spec in schemes:
            row = keyed.get((spec, layer, array))
            if row is None:
                cells += ["-"] * 4
                continue
            mark = "✓" if row.passed else "✗"
            cells += [
                sci(row.observed_var),
                Text(f"{pct(row.rel_error)} {mark}", style="green" if row.passed else "bold red"),
                fixed(row.fan_in_var),
                fixed(row.fan_out_var),
            ]
        table.add_row(*cells)
    print_table_fast(console, table)
    for spec in schemes:
        description = result.scheme_descriptions.get(spec)
        if description is not None:
            console.print(Text(f"  {spec}: {description}", style="dim"))
    console.print(
        Text(
            "  n_in·Var = 1 keeps activations' variance, n_out·Var = 1 keeps gradients' variance; "
            "normalized's 2/(n_in+n_out) is the compromise (paper eq. 10-16).",
            style="dim",
        )
    )
    for row in rows:
        if row.passed:
            continue
        where = f"layer {row.layer}" if row.array is None else row.array
        console.print(
            Text(
                f"  ✗ {row.scheme} {where}: {', '.join(row.failures or ['failed'])} "
                f"(p={pval(row.p_value)}, KS p={pval(row.ks_p_value)})",
                style="red",
            )
        )
    console.print(_verdict(result.passed, init_summary(result)))


def _runs_by_activation(result: PropagateResult) -> dict[str, list[PropagateRun]]:
    grouped: dict[str, list[PropagateRun]] = {}
    for run in result.runs:
        grouped.setdefault(run.activation, []).append(run)
    return grouped


def _measured(value: Any, predicted: Any) -> str:
    return f"{sci(value)} ({sci(predicted)})"


def table_propagate(result: PropagateResult, console: Console) -> None:
    """Per activation: one row per layer, one column group per scheme, prediction in brackets;
    a ``--model`` result's modules (:func:`xavinit.render.propagate_model.table_models`)."""
    if result.models:
        from xavinit.render.propagate_model import table_models

        table_models(result, console)
        return
    config = result.config
    for activation, runs in _runs_by_activation(result).items():
        table = Table(
            title=f"xavinit propagate: {layer_names(result)} {activation}, batch "
            f"{config.get('batch')}, {config.get('input')} inputs, seed {result.seed}",
            title_justify="left",
            caption=(
                "measured (mean-field prediction); Var[dC/ds] per example; J σ̄: mean "
                "singular value of W·diag(f')"
            ),
            caption_justify="left",
        )
        table.add_column("layer", justify="right", no_wrap=True)
        for run in runs:
            table.add_column(f"{run.scheme}\nVar[z]", justify="right", no_wrap=True)
            table.add_column("Var[dC/ds]", justify="right", no_wrap=True)
            table.add_column("Var[dC/dW]", justify="right", no_wrap=True)
            table.add_column("sat.", justify="right", no_wrap=True)
            table.add_column("J σ̄", justify="right", no_wrap=True)
        depth = max((len(r.layers) for r in runs), default=0)
        for k in range(depth):
            label = str(k + 1)
            cells: list[Any] = [label]
            for run in runs:
                if k >= len(run.layers):
                    cells += ["-"] * 5
                    continue
                row = run.layers[k]
                if row.kind == "output":
                    cells[0] = f"{label} (out)"
                sat = row.saturated_fraction
                cells += [
                    _measured(row.activation_var, row.predicted_activation_var),
                    _measured(row.backprop_var, row.predicted_backprop_var),
                    sci(row.weight_grad_var),
                    "-" if sat is None else f"{100 * sat:.1f}%",
                    num(row.jacobian_sv_mean, 3),
                ]
            table.add_row(*cells)
        print_table_fast(console, table)
        for run in runs:
            if not run.passed:
                console.print(Text(f"  ✗ {run.scheme}: {run.failure}", style="bold red"))
                continue
            console.print(
                Text(
                    f"  {run.scheme}: layer 1 / last hidden: Var[dC/ds] x"
                    f"{fixed(run.backprop_var_ratio)}, Var[z] x"
                    f"{fixed(run.activation_var_ratio)}, Var[dC/dW] x"
                    f"{fixed(run.weight_grad_var_ratio)}{_weight_grad_agreement(run)}",
                )
            )
        notes = dict.fromkeys(
            note
            for run in runs
            for key, note in run.prediction_notes.items()
            if key.startswith("predicted_")
        )
        for note in notes:
            console.print(Text(f"  ≈ Var[dC/dW] prediction: {note}", style="dim"))
        if config.get("histograms"):
            _histograms(runs, console)
    console.print(_verdict(result.passed, propagate_summary(result)))


def _weight_grad_agreement(run: PropagateRun) -> str:
    """``; Var[dC/dW] / prediction 0.98..1.05`` over the run's layers (the table has no room
    for the prediction beside each measurement); layers whose prediction is not a positive
    finite number are left out."""
    ratios = [
        row.weight_grad_var / row.predicted_weight_grad_var
        for row in run.layers
        if math.isfinite(row.predicted_weight_grad_var) and row.predicted_weight_grad_var > 0
    ]
    if not ratios:
        return ""
    return f"; Var[dC/dW] / prediction {min(ratios):.2f}..{max(ratios):.2f}"


def _histograms(runs: list[PropagateRun], console: Console) -> None:
    """The paper's figures 6 and 7 in the terminal: one row of blocks per layer."""
    for which, title in (
        ("histogram", "activation histograms (paper's figure 6)"),
        ("backprop_histogram", "back-propagated gradient histograms (figure 7)"),
    ):
        table = Table(title=title, title_justify="left", box=None, pad_edge=False)
        table.add_column("layer", justify="right")
        for run in runs:
            table.add_column(run.scheme, no_wrap=True)
        depth = max((len(r.layers) for r in runs), default=0)
        for k in range(depth):
            cells = [str(k + 1)]
            for run in runs:
                if k >= len(run.layers):
                    cells.append("")
                    continue
                layer = run.layers[k]
                hist = layer.histogram if which == "histogram" else layer.backprop_histogram
                edges = hist["edges"]
                cells.append(
                    f"{sparkline(hist['counts'])} [{decimals(edges[0], '.2g')}, {decimals(edges[-1], '.2g')}]"
                )
            table.add_row(*cells)
        print_table_fast(console, table)


def table_train(result: TrainResult, console: Console) -> None:
    """One row per run (final errors and the test-error curve), then the last tracked
    per-layer statistics of each run side by side."""
    config = result.config
    runs = result.runs
    table = Table(
        title=f"xavinit train: {result.dataset} {layer_names(result)}, lr "
        f"{config.get('lr')}, batch {config.get('batch_size')}, seed {result.seed}",
        title_justify="left",
    )
    for column in ("scheme", "activation", "updates", "test error", "valid error"):
        table.add_column(column, justify="left" if column in ("scheme", "activation") else "right")
    table.add_column("test error over updates", no_wrap=True)
    for run in runs:
        errors = [row["test_error"] for row in run.curve]
        final = (
            Text(f"diverged at {run.diverged_at}", style="bold red")
            if run.diverged
            else num(run.final_test_error, 3)
        )
        table.add_row(
            run.scheme, run.activation, str(run.updates), final, num(run.final_valid_error, 3),
            f"{series(errors)} {num(errors[0], 3)}→{num(errors[-1], 3)}" if errors else "",
        )  # fmt: skip
    print_table_fast(console, table)
    stats = Table(
        title="per hidden layer on 300 test examples: activation mean ± std, 98th percentile, "
        "saturated, weight-gradient std (first → last tracked update)",
        title_justify="left",
    )
    stats.add_column("run")
    stats.add_column("layer", justify="right")
    for column in ("mean", "std", "p98", "saturated", "dW std"):
        stats.add_column(column, justify="right", no_wrap=True)
    stats.add_column("mean over updates", no_wrap=True)
    for run in runs:
        rows = run.layer_stats
        layers = sorted({row["layer"] for row in rows})
        for layer in layers:
            mine = [row for row in rows if row["layer"] == layer]
            first, last = mine[0], mine[-1]
            stats.add_row(
                f"{run.scheme}/{run.activation}" if layer == layers[0] else "",
                str(layer),
                f"{decimals(first['mean'], '+.3f')} → {decimals(last['mean'], '+.3f')}",
                f"{decimals(first['std'], '.3f')} → {decimals(last['std'], '.3f')}",
                decimals(last["p98"], "+.3f"),
                f"{100 * last['saturated_fraction']:.1f}%",
                f"{sci(first['weight_grad_std'])} → {sci(last['weight_grad_std'])}",
                series([row["mean"] for row in mine]),
            )
    print_table_fast(console, stats)
    console.print(_verdict(result.passed, train_summary(result)))


def table_schemes(result: SchemesResult, console: Console) -> None:
    """Every scheme: name, aliases, distribution and formula; numbers when fans are given."""
    rows = result.schemes
    numbers = bool(rows) and "variance" in rows[0]
    fans = f" (fan_in={rows[0].get('fan_in')}, fan_out={rows[0].get('fan_out')})" if numbers else ""
    table = Table(title="xavinit schemes" + fans)
    for column in ("name", "aliases", "distribution", "Var formula"):
        table.add_column(column, overflow="fold")
    if numbers:
        for column in ("Var", "bound", "std"):
            table.add_column(column, justify="right")
    for r in rows:
        cells = [r["name"], ", ".join(r["aliases"]), r["distribution"], r["formula"]]
        if numbers:
            cells += [num(r.get("variance")), num(r.get("bound")), num(r.get("std"))]
        table.add_row(*cells)
    print_table_fast(console, table)
    note = gain_names_note(result)
    if note:
        console.print(Text("  " + note, style="dim"))


VERDICT_STYLES = {"trained": "bold", "init": "yellow", "constant": "cyan", "unknown": "dim"}


def table_check(result: CheckResult, console: Console) -> None:
    """One table per verdict (trained, init, constant, unknown) with its count, then a summary."""
    several = len(result.files) > 1
    for verdict, rows in check_groups(result):
        table = Table(
            title=f"{verdict}: {len(rows)} {'tensor' if len(rows) == 1 else 'tensors'}",
            title_justify="left",
            title_style=VERDICT_STYLES[verdict],
        )
        if several:
            table.add_column("file", overflow="fold")
        table.add_column("tensor", overflow="fold")
        for column in ("role", "shape", "fans"):
            table.add_column(column, no_wrap=True, justify="left" if column == "role" else "right")
        if verdict == "init":
            table.add_column("scheme", overflow="fold")
            table.add_column("p", justify="right", no_wrap=True)
            table.add_column("runner-up", overflow="fold")
        table.add_column("σ1/edge", justify="right", no_wrap=True)
        table.add_column("known as / note" if verdict == "init" else "reason", overflow="fold")
        for row in rows:
            cells: list[Any] = [row.file] if several else []
            cells += [row.name, row.role, shape_text(row.shape), fans_text(row)]
            if verdict == "init":
                cells += [row.scheme or "-", pval(row.p_value), row.runner_up or "-"]
            reason: str | Text = row.reason
            if verdict == "init":
                reason = "; ".join(t for t in (row.known_as, row.note) if t)
            if row.matches is False:
                reason = Text(f"✗ {reason}", style="bold red")
            cells += [num(row.top_singular_ratio, 3), reason]
            table.add_row(*cells)
        print_table_fast(console, table)
    style = "bold red" if not result.passed else "bold green"
    if result.expect is None:
        style = "bold"
    console.print(Text(check_summary(result), style=style))


def table_gain(result: GainResult, console: Console) -> None:
    """One row per activation: the exact gains, chi1, phase and depth scale beside PyTorch's
    gain; then the depth checks, when there are any."""
    table = Table(
        title="xavinit gain: exact gains at z ~ N(0, 1) (Var[W] = gain^2 / fan)",
        title_justify="left",
        caption=(
            "forward: keeps E[s^2] going up; backward: keeps Var[dC/ds] going down; fixed "
            "point: q* = 1 of q -> g^2 E[f(sqrt(q) z)^2] (+ sb^2 with --bias-var), slope < 1 "
            "attracts; chi1 = g^2 E[f'^2] (order < 1 < chaos); depth: -1/ln of the "
            "correlation map's slope at c*"
        ),
        caption_justify="left",
    )
    for column in (
        "activation", "forward", "backward", "fixed point", "slope", "χ1", "phase", "depth",
        "PyTorch", "PyTorch/ours", "E[f(z)]", "E[f(z)²]",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column in ("activation", "phase") else "right")
    for row in result.gains:
        table.add_row(
            row["activation"], decimals(row['forward_gain'], ".4f"), decimals(row['backward_gain'], ".4f"),
            decimals(row['fixed_point_gain'], ".4f"), decimals(row['fixed_point_slope'], ".3f"),
            decimals(row['chi1'], ".4f"), row["phase"], depth_scale_text(row["depth_scale"]),
            num(row["torch_gain"]), num(row["torch_ratio"]), signed(row["mean"]),
            decimals(row['second_moment'], ".4f"),
        )  # fmt: skip
    print_table_fast(console, table)
    checks = result.depth_checks
    if checks:
        first = checks[0]
        table = Table(
            title=(
                f"depth check: one network, {first['depth']} layers of {first['width']}, one "
                "example x ~ N(0, I/g^2); Var[z] of the last hidden layer / the first"
            ),
            title_justify="left",
            caption=(
                f"interval: the range of {first['replicas']} Monte-Carlo replicas of the "
                "finite-width variance chain at the computed gain"
            ),
            caption_justify="left",
        )
        for column in ("activation", "gain", "ratio", "interval", "median", "ok"):
            table.add_column(column, justify="left" if column == "activation" else "right")
        for check in checks:
            low, high = check["interval"]
            table.add_row(
                check["activation"], decimals(check['gain'], ".4f"), num(check["variance_ratio"], 3),
                f"{num(low, 3)} .. {num(high, 3)}", num(check["median_ratio"], 3),
                _ok(check["passed"]),
            )  # fmt: skip
        print_table_fast(console, table)
    console.print(
        _verdict(result.passed, gain_summary(result)) if checks else Text(gain_summary(result))
    )
