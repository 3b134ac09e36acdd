"""Rich tables for the terminal: schemes side by side, failures in red."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.core.schemes import get_scheme
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
from xavinit.render.sweep import table_sweep


def _ok(passed: Any) -> Text:
    return Text("✓", style="green") if passed else Text("✗", style="bold red")


def _verdict(document: dict[str, Any], line: str) -> Text:
    return Text(line, style="bold green" if document.get("passed") else "bold red")


def table_init(document: dict[str, Any], console: Console) -> None:
    """Sampling: one row per layer, one column group per scheme; check: one row per array."""
    mode = document.get("mode", "sample")
    if mode == "rank":
        for ranking in document.get("rankings", []):
            table = Table(
                title=f"{ranking['array']} ({ranking['fan_in']} x {ranking['fan_out']}): "
                f"{ranking['verdict']}",
                title_justify="left",
            )
            for column in ("scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)"):
                table.add_column(column, justify="left" if column == "scheme" else "right")
            table.add_column("fits")
            for c in ranking["candidates"]:
                table.add_row(
                    c["scheme"], pval(c["score"]), sci(c["expected_var"]), pct(c["rel_error"]),
                    pval(c["p_value"]), pval(c["ks_p_value"]), _ok(c["explains"]),
                )  # fmt: skip
            print_table_fast(console, table)
        console.print(Text(init_summary(document)))
        return
    rows = document.get("layers", [])
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    keyed = {(r["scheme"], r["layer"], r.get("array")): r for r in rows}
    units = list(
        dict.fromkeys((r["layer"], r.get("array"), r["fan_in"], r["fan_out"]) for r in rows)
    )
    title = (
        f"xavinit init: {layer_names(document)}, seed {document.get('seed')}"
        if mode == "sample"
        else f"xavinit init --check {document['config'].get('check')}"
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
            mark = "✓" if row["passed"] else "✗"
            cells += [
                sci(row["observed_var"]),
                Text(
                    f"{pct(row['rel_error'])} {mark}",
                    style="green" if row["passed"] else "bold red",
                ),
                fixed(row["fan_in_var"]),
                fixed(row["fan_out_var"]),
            ]
        table.add_row(*cells)
    print_table_fast(console, table)
    for spec in schemes:
        console.print(Text(f"  {spec}: {get_scheme(spec).describe()}", style="dim"))
    console.print(
        Text(
            "  n_in·Var = 1 keeps activations' variance, n_out·Var = 1 keeps gradients' variance; "
            "normalized's 2/(n_in+n_out) is the compromise (paper eq. 10-16).",
            style="dim",
        )
    )
    failed = [r for r in rows if not r["passed"]]
    for row in failed:
        where = f"layer {row['layer']}" if row.get("array") is None else row["array"]
        console.print(
            Text(
                f"  ✗ {row['scheme']} {where}: {', '.join(row.get('failures') or ['failed'])} "
                f"(p={pval(row.get('p_value'))}, KS p={pval(row.get('ks_p_value'))})",
                style="red",
            )
        )
    console.print(_verdict(document, init_summary(document)))


TABLES: dict[str, Callable[[dict[str, Any], Console], None]] = {"init": table_init}


def print_table(document: dict[str, Any], console: Console) -> None:
    """Print a result document as Rich tables, by its ``command``."""
    if document["command"] == "report":
        from xavinit.render.report import table_report

        table_report(document, console)
        return
    TABLES[document["command"]](document, console)


def _runs_by_activation(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in document.get("runs", []):
        grouped.setdefault(run["activation"], []).append(run)
    return grouped


def _measured(value: Any, predicted: Any) -> str:
    return f"{sci(value)} ({sci(predicted)})"


def table_propagate(document: dict[str, Any], console: Console) -> None:
    """Per activation: one row per layer, one column group per scheme, prediction in brackets."""
    if document.get("models"):
        from xavinit.render.propagate_model import table_models

        table_models(document, console)
        return
    config = document.get("config", {})
    for activation, runs in _runs_by_activation(document).items():
        table = Table(
            title=f"xavinit propagate: {layer_names(document)} {activation}, batch "
            f"{config.get('batch')}, {config.get('input')} inputs, seed {document.get('seed')}",
            title_justify="left",
            caption=(
                "measured (mean-field prediction); Var[dC/ds] per example; J σ̄: mean "
                "singular value of W·diag(f')"
            ),
            caption_justify="left",
        )
        table.add_column("layer", justify="right", no_wrap=True)
        for run in runs:
            name = run["scheme"]
            table.add_column(f"{name}\nVar[z]", justify="right", no_wrap=True)
            table.add_column("Var[dC/ds]", justify="right", no_wrap=True)
            table.add_column("Var[dC/dW]", justify="right", no_wrap=True)
            table.add_column("sat.", justify="right", no_wrap=True)
            table.add_column("J σ̄", justify="right", no_wrap=True)
        depth = max((len(r["layers"]) for r in runs), default=0)
        for k in range(depth):
            label = str(k + 1)
            cells: list[Any] = [label]
            for run in runs:
                if k >= len(run["layers"]):
                    cells += ["-"] * 5
                    continue
                row = run["layers"][k]
                if row["kind"] == "output":
                    cells[0] = f"{label} (out)"
                sat = row.get("saturated_fraction")
                cells += [
                    _measured(row["activation_var"], row["predicted_activation_var"]),
                    _measured(row["backprop_var"], row["predicted_backprop_var"]),
                    sci(row["weight_grad_var"]),
                    "-" if sat is None else f"{100 * sat:.1f}%",
                    num(row.get("jacobian_sv_mean"), 3),
                ]
            table.add_row(*cells)
        print_table_fast(console, table)
        for run in runs:
            if not run.get("passed"):
                console.print(Text(f"  ✗ {run['scheme']}: {run.get('failure')}", style="bold red"))
                continue
            console.print(
                Text(
                    f"  {run['scheme']}: layer 1 / last hidden: Var[dC/ds] x"
                    f"{fixed(run.get('backprop_var_ratio'))}, Var[z] x"
                    f"{fixed(run.get('activation_var_ratio'))}, Var[dC/dW] x"
                    f"{fixed(run.get('weight_grad_var_ratio'))}{_weight_grad_agreement(run)}",
                )
            )
        notes = dict.fromkeys(
            note
            for run in runs
            for key, note in (run.get("prediction_notes") or {}).items()
            if key.startswith("predicted_")
        )
        for note in notes:
            console.print(Text(f"  ≈ Var[dC/dW] prediction: {note}", style="dim"))
        if config.get("histograms"):
            _histograms(runs, console)
    console.print(_verdict(document, propagate_summary(document)))


def _weight_grad_agreement(run: dict[str, Any]) -> str:
    """``; Var[dC/dW] / prediction 0.98..1.05`` over the run's layers (the table has no room
    for the prediction beside each measurement)."""
    ratios = [
        row["weight_grad_var"] / row["predicted_weight_grad_var"]
        for row in run.get("layers", [])
        if isinstance(row.get("predicted_weight_grad_var"), float)
        and row["predicted_weight_grad_var"] > 0
    ]
    if not ratios:
        return ""
    return f"; Var[dC/dW] / prediction {min(ratios):.2f}..{max(ratios):.2f}"


def _histograms(runs: list[dict[str, Any]], console: Console) -> None:
    """The paper's figures 6 and 7 in the terminal: one row of blocks per layer."""
    for key, title in (
        ("histogram", "activation histograms (paper's figure 6)"),
        ("backprop_histogram", "back-propagated gradient histograms (figure 7)"),
    ):
        table = Table(title=title, title_justify="left", box=None, pad_edge=False)
        table.add_column("layer", justify="right")
        for run in runs:
            table.add_column(run["scheme"], no_wrap=True)
        depth = max((len(r["layers"]) for r in runs), default=0)
        for k in range(depth):
            cells = [str(k + 1)]
            for run in runs:
                if k >= len(run["layers"]):
                    cells.append("")
                    continue
                hist = run["layers"][k][key]
                edges = hist["edges"]
                cells.append(
                    f"{sparkline(hist['counts'])} [{decimals(edges[0], '.2g')}, {decimals(edges[-1], '.2g')}]"
                )
            table.add_row(*cells)
        print_table_fast(console, table)


TABLES["propagate"] = table_propagate


def table_train(document: dict[str, Any], console: Console) -> None:
    """One row per run (final errors and the test-error curve), then the last tracked
    per-layer statistics of each run side by side."""
    config = document.get("config", {})
    runs = document.get("runs", [])
    table = Table(
        title=f"xavinit train: {document.get('dataset')} {layer_names(document)}, lr "
        f"{config.get('lr')}, batch {config.get('batch_size')}, seed {document.get('seed')}",
        title_justify="left",
    )
    for column in ("scheme", "activation", "updates", "test error", "valid error"):
        table.add_column(column, justify="left" if column in ("scheme", "activation") else "right")
    table.add_column("test error over updates", no_wrap=True)
    for run in runs:
        errors = [row["test_error"] for row in run["curve"]]
        final = (
            Text(f"diverged at {run.get('diverged_at')}", style="bold red")
            if run.get("diverged")
            else num(run.get("final_test_error"), 3)
        )
        table.add_row(
            run["scheme"], run["activation"], str(run["updates"]), final,
            num(run.get("final_valid_error"), 3),
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
        rows = run.get("layer_stats", [])
        layers = sorted({row["layer"] for row in rows})
        for layer in layers:
            mine = [row for row in rows if row["layer"] == layer]
            first, last = mine[0], mine[-1]
            stats.add_row(
                f"{run['scheme']}/{run['activation']}" if layer == layers[0] else "",
                str(layer),
                f"{decimals(first['mean'], '+.3f')} → {decimals(last['mean'], '+.3f')}",
                f"{decimals(first['std'], '.3f')} → {decimals(last['std'], '.3f')}",
                decimals(last["p98"], "+.3f"),
                f"{100 * last['saturated_fraction']:.1f}%",
                f"{sci(first['weight_grad_std'])} → {sci(last['weight_grad_std'])}",
                series([row["mean"] for row in mine]),
            )
    print_table_fast(console, stats)
    console.print(_verdict(document, train_summary(document)))


TABLES["train"] = table_train


def table_schemes(document: dict[str, Any], console: Console) -> None:
    """Every scheme: name, aliases, distribution and formula; numbers when fans are given."""
    rows = document["schemes"]
    config = document["config"]
    numbers = bool(rows) and "variance" in rows[0]
    fans = f" (fan_in={config['fan_in']}, fan_out={config['fan_out']})" if numbers else ""
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
    if config.get("spec") is None:
        console.print(Text("  " + gain_names_note(), style="dim"))


TABLES["schemes"] = table_schemes


VERDICT_STYLES = {"trained": "bold", "init": "yellow", "constant": "cyan", "unknown": "dim"}


def table_check(document: dict[str, Any], console: Console) -> None:
    """One table per verdict (trained, init, constant, unknown) with its count, then a summary."""
    files = document.get("files", [])
    several = len(files) > 1
    for verdict, rows in check_groups(document):
        table = Table(
            title=f"{verdict}: {len(rows)} {'tensor' if len(rows) == 1 else 'tensors'}",
            title_justify="left",
            title_style=VERDICT_STYLES.get(verdict, ""),
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
            cells: list[Any] = [row["file"]] if several else []
            cells += [row["name"], row["role"], shape_text(row["shape"]), fans_text(row)]
            if verdict == "init":
                cells += [
                    row["scheme"] or "-",
                    pval(row["p_value"]),
                    row["runner_up"] or "-",
                ]
            matches = row.get("matches")
            reason: str | Text = row["reason"]
            if verdict == "init":
                reason = "; ".join(t for t in (row.get("known_as"), row.get("note")) if t)
            if matches is False:
                reason = Text(f"✗ {reason}", style="bold red")
            cells += [num(row.get("top_singular_ratio"), 3), reason]
            table.add_row(*cells)
        print_table_fast(console, table)
    style = "bold red" if not document.get("passed") else "bold green"
    if document.get("expect") is None:
        style = "bold"
    console.print(Text(check_summary(document), style=style))


TABLES["check"] = table_check
TABLES["sweep"] = table_sweep


def table_gain(document: dict[str, Any], console: Console) -> None:
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
    for row in document.get("gains", []):
        table.add_row(
            row["activation"], decimals(row['forward_gain'], ".4f"), decimals(row['backward_gain'], ".4f"),
            decimals(row['fixed_point_gain'], ".4f"), decimals(row['fixed_point_slope'], ".3f"),
            decimals(row['chi1'], ".4f"), row["phase"], depth_scale_text(row["depth_scale"]),
            num(row.get("torch_gain")), num(row.get("torch_ratio")), signed(row["mean"]),
            decimals(row['second_moment'], ".4f"),
        )  # fmt: skip
    print_table_fast(console, table)
    checks = document.get("depth_checks", [])
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
        _verdict(document, gain_summary(document)) if checks else Text(gain_summary(document))
    )


TABLES["gain"] = table_gain
