"""GitHub-flavoured Markdown: a one-line verdict, then tables (fit for a CI step summary).

Each command's result becomes :class:`Blocks` (``<command>_blocks``, picked by :func:`blocks`),
which ``markdown_<command>`` writes as Markdown and the HTML page (:mod:`xavinit.render.html`)
as HTML: the two say the same thing. Sweep's blocks live in :mod:`xavinit.render.sweep`,
``propagate --model``'s in :mod:`xavinit.render.propagate_model`, the report's in
:mod:`xavinit.render.report` (which gathers the blocks of each included result from here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xavinit.render.blocks import Blocks, to_markdown
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
    shape_text,
    signed,
    train_summary,
)
from xavinit.render.propagate_model import markdown_models
from xavinit.render.sweep import sweep_blocks
from xavinit.results import (
    VERDICTS,
    CheckResult,
    GainResult,
    InitResult,
    PropagateResult,
    SchemesResult,
    TrainResult,
)


def _mark(passed: bool | None) -> str:
    return "✅" if passed else "❌"


def init_blocks(result: InitResult) -> Blocks:
    """Verdict line and one row per (scheme, layer) or checked array; a ranking per array."""
    out = Blocks()
    out.verdict(init_summary(result), result.passed)
    if result.mode == "rank":
        for ranking in result.rankings:
            out.heading(
                f"`{ranking.array}` ({ranking.fan_in} x {ranking.fan_out}): {ranking.verdict}"
            )
            rows = [
                [
                    f"`{c['scheme']}`",
                    pval(c["score"]),
                    sci(c["expected_var"], 4),
                    pct(c["rel_error"]),
                    pval(c["p_value"]),
                    pval(c["ks_p_value"]),
                    _mark(c["explains"]),
                ]
                for c in ranking.candidates
            ]
            header = ["scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)", "fits"]
            out.table(header, rows)
        return out
    check = result.config.get("check")
    where = f"File `{check}`" if check else f"Layers `{layer_names(result)}`"
    out.text(f"{where}, seed {result.seed}.")
    header = [
        "scheme", "layer", "fan_in x fan_out", "expected Var", "observed Var", "rel. error",
        "CI", "p (Var)", "p (KS)", "fan_in·Var", "fan_out·Var", "ok",
    ]  # fmt: skip
    rows = []
    for row in result.layers:
        name = f"`{row.scheme}`" + (f" `{row.array}`" if row.array else "")
        interval = f"{sci(row.ci_low, 4)}..{sci(row.ci_high, 4)}" if row.ci_low is not None else "-"
        rows.append(
            [
                name,
                str(row.layer),
                f"{row.fan_in} x {row.fan_out}",
                sci(row.expected_var, 4),
                sci(row.observed_var, 4),
                pct(row.rel_error),
                interval,
                pval(row.p_value),
                pval(row.ks_p_value),
                fixed(row.fan_in_var),
                fixed(row.fan_out_var),
                _mark(row.passed) + (" " + ", ".join(row.failures) if row.failures else ""),
            ]
        )
    out.table(header, rows)
    return out


def propagate_blocks(result: PropagateResult) -> Blocks:
    """Verdict line, the first/last ratios per run, then one row per (run, layer)."""
    if result.models:
        return markdown_models(result)
    out = Blocks()
    out.verdict(propagate_summary(result), result.passed)
    config = result.config
    out.text(
        f"Layers `{layer_names(result)}`, batch {config.get('batch')}, "
        f"{config.get('input')} inputs, seed {result.seed}. Predictions in brackets "
        "(mean field)."
    )
    header = ["scheme", "activation", "Var[dC/ds] 1/last", "Var[z] 1/last", "Var[dC/dW] 1/last"]
    rows = [
        [
            f"`{r.scheme}`",
            r.activation,
            fixed(r.backprop_var_ratio),
            fixed(r.activation_var_ratio),
            fixed(r.weight_grad_var_ratio),
        ]
        for r in result.runs
    ]
    out.table(header, rows)
    header = [
        "scheme", "activation", "layer", "Var[z]", "Var[dC/ds]", "Var[dC/dW]", "saturated",
        "J mean sv",
    ]  # fmt: skip
    rows = []
    for run in result.runs:
        if not run.passed:
            rows.append([f"`{run.scheme}`", run.activation, "-", run.failure or "", "", "", "", ""])
            continue
        for row in run.layers:
            sat = row.saturated_fraction
            rows.append(
                [
                    f"`{run.scheme}`",
                    run.activation,
                    str(row.layer) + (" (out)" if row.kind == "output" else ""),
                    f"{sci(row.activation_var)} ({sci(row.predicted_activation_var)})",
                    f"{sci(row.backprop_var)} ({sci(row.predicted_backprop_var)})",
                    f"{sci(row.weight_grad_var)} ({sci(row.predicted_weight_grad_var)})",
                    "-" if sat is None else f"{100 * sat:.1f}%",
                    num(row.jacobian_sv_mean, 3),
                ]
            )
    out.table(header, rows)
    notes = dict.fromkeys(
        note
        for run in result.runs
        for key, note in run.prediction_notes.items()
        if key.startswith("predicted_")
    )
    for note in notes:
        out.text(f"≈ Var[dC/dW] prediction: {note}.")
    return out


def train_blocks(result: TrainResult) -> Blocks:
    """Verdict line, one row per run, then the last tracked statistics per layer."""
    config = result.config
    out = Blocks()
    out.verdict(train_summary(result), result.passed)
    out.text(
        f"Dataset `{result.dataset}`, layers `{layer_names(result)}`, lr "
        f"{config.get('lr')}, batch {config.get('batch_size')}, seed {result.seed}."
    )
    rows = []
    for run in result.runs:
        errors = [row["test_error"] for row in run.curve]
        rows.append(
            [
                f"`{run.scheme}`",
                run.activation,
                str(run.updates),
                f"diverged at {run.diverged_at}" if run.diverged else num(run.final_test_error, 3),
                num(run.final_valid_error, 3),
                f"{num(errors[0], 3)} → {num(errors[-1], 3)}" if errors else "-",
            ]
        )
    header = ["scheme", "activation", "updates", "test error", "valid error", "test error curve"]
    out.table(header, rows)
    header = [
        "scheme",
        "activation",
        "update",
        "layer",
        "mean",
        "std",
        "p98",
        "saturated",
        "dW std",
    ]
    rows = []
    for run in result.runs:
        stats = run.layer_stats
        last_update = max((row["update"] for row in stats), default=None)
        for row in stats:
            if row["update"] != last_update:
                continue
            rows.append(
                [
                    f"`{run.scheme}`",
                    run.activation,
                    str(row["update"]),
                    str(row["layer"]),
                    decimals(row["mean"], "+.3f"),
                    decimals(row["std"], ".3f"),
                    decimals(row["p98"], "+.3f"),
                    f"{100 * row['saturated_fraction']:.1f}%",
                    sci(row["weight_grad_std"]),
                ]
            )
    out.table(header, rows)
    return out


def schemes_blocks(result: SchemesResult) -> Blocks:
    """One row per scheme: name, aliases, distribution, formula; numbers when fans are given."""
    rows = result.schemes
    numbers = bool(rows) and "variance" in rows[0]
    header = ["name", "aliases", "distribution", "Var formula", "known as"]
    if numbers:
        header += ["Var", "bound", "std"]
    lines = []
    for r in rows:
        cells = [f"`{r['name']}`", ", ".join(r["aliases"]), r["distribution"], r["formula"]]
        cells.append(r["known_as"])
        if numbers:
            cells += [num(r.get("variance")), num(r.get("bound")), num(r.get("std"))]
        lines.append(cells)
    out = Blocks()
    out.table(header, lines)
    note = gain_names_note(result)
    if result.config.get("spec") is None and note:
        out.text(note)
    return out


def check_blocks(result: CheckResult) -> Blocks:
    """Verdict line, a count per verdict, then one table per verdict (fit for a CI summary)."""
    out = Blocks()
    expect = result.expect is not None
    out.verdict(check_summary(result), result.passed if expect else None)
    files = ", ".join(f"`{f}`" for f in result.files)
    out.text(f"Files {files}; family-wise alpha {result.alpha}, seed {result.seed}.")
    out.table(["verdict", "tensors"], [[v, str(result.counts.get(v, 0))] for v in VERDICTS])
    several = len(result.files) > 1
    for verdict, rows in check_groups(result):
        out.heading(f"{verdict} ({len(rows)})")
        header = ["tensor", "role", "shape", "fans"]
        if verdict == "init":
            header += ["scheme", "p", "runner-up"]
        header += ["σ1/edge", "reason"]
        if expect:
            header.append("fits")
        lines = []
        for row in rows:
            name = f"`{row.file}:{row.name}`" if several else f"`{row.name}`"
            cells = [name, row.role, shape_text(row.shape), fans_text(row)]
            if verdict == "init":
                cells += [f"`{row.scheme}`", pval(row.p_value), f"`{row.runner_up or '-'}`"]
            cells += [num(row.top_singular_ratio, 3), row.reason]
            if expect:
                cells.append(_mark(row.matches))
            lines.append(cells)
        out.table(header, lines)
    return out


def gain_blocks(result: GainResult) -> Blocks:
    """The gains table, then the depth checks; a verdict line when there are checks."""
    out = Blocks()
    checks = result.depth_checks
    if checks:
        out.verdict(gain_summary(result), result.passed)
    else:
        out.text(gain_summary(result) + ".")
    header = [
        "activation", "forward", "backward", "fixed point", "slope", "χ1", "phase", "depth",
        "PyTorch", "PyTorch/ours", "E[f(z)]", "E[f(z)²]",
    ]  # fmt: skip
    rows = [
        [
            f"`{r['activation']}`", decimals(r['forward_gain'], ".4f"), decimals(r['backward_gain'], ".4f"),
            decimals(r['fixed_point_gain'], ".4f"), decimals(r['fixed_point_slope'], ".3f"), decimals(r['chi1'], ".4f"),
            r["phase"], depth_scale_text(r["depth_scale"]), num(r["torch_gain"]),
            num(r["torch_ratio"]), signed(r["mean"]), decimals(r['second_moment'], ".4f"),
        ]
        for r in result.gains
    ]  # fmt: skip
    out.table(header, rows)
    if checks:
        first = checks[0]
        out.text(
            f"Depth check: one network, {first['depth']} layers of {first['width']}, one "
            f"example; Var[z] of the last hidden layer over the first, against the range of "
            f"{first['replicas']} Monte-Carlo replicas of the finite-width chain."
        )
        rows = [
            [
                f"`{c['activation']}`", decimals(c['gain'], ".4f"), num(c["variance_ratio"], 3),
                f"{num(c['interval'][0], 3)} .. {num(c['interval'][1], 3)}",
                num(c["median_ratio"], 3), _mark(c["passed"]),
            ]
            for c in checks
        ]  # fmt: skip
        out.table(["activation", "gain", "ratio", "interval", "median", "ok"], rows)
    return out


BLOCKS: dict[str, Callable[[Any], Blocks]] = {
    "init": init_blocks,
    "propagate": propagate_blocks,
    "train": train_blocks,
    "schemes": schemes_blocks,
    "check": check_blocks,
    "gain": gain_blocks,
    "sweep": sweep_blocks,
}
"""Each command's blocks (a report's are :func:`xavinit.render.report.report_blocks`)."""


def blocks(result: Any) -> Blocks:
    """A result's blocks, by its ``command`` (any command but ``report``)."""
    return BLOCKS[result.command](result)


def markdown_init(result: InitResult) -> str:
    """An ``init`` result as Markdown."""
    return to_markdown(init_blocks(result))


def markdown_propagate(result: PropagateResult) -> str:
    """A ``propagate`` result (``--model`` included) as Markdown."""
    return to_markdown(propagate_blocks(result))


def markdown_train(result: TrainResult) -> str:
    """A ``train`` result as Markdown."""
    return to_markdown(train_blocks(result))


def markdown_schemes(result: SchemesResult) -> str:
    """The ``schemes`` listing as Markdown."""
    return to_markdown(schemes_blocks(result))


def markdown_check(result: CheckResult) -> str:
    """A ``check`` result as Markdown."""
    return to_markdown(check_blocks(result))


def markdown_gain(result: GainResult) -> str:
    """A ``gain`` result as Markdown."""
    return to_markdown(gain_blocks(result))
