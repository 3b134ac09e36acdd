"""GitHub-flavoured Markdown: a one-line verdict, then tables (fit for a CI step summary)."""

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
from xavinit.render.sweep import markdown_sweep
from xavinit.results import VERDICTS


def _mark(passed: Any) -> str:
    return "✅" if passed else "❌"


def markdown_init(document: dict[str, Any]) -> Blocks:
    """Verdict line and one row per (scheme, layer) or checked array; a ranking per array."""
    out = Blocks()
    out.verdict(init_summary(document), document.get("passed"))
    if document.get("mode") == "rank":
        for ranking in document.get("rankings", []):
            out.heading(
                f"`{ranking['array']}` ({ranking['fan_in']} x {ranking['fan_out']}): "
                f"{ranking['verdict']}"
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
                for c in ranking["candidates"]
            ]
            header = ["scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)", "fits"]
            out.table(header, rows)
        return out
    check = document.get("config", {}).get("check")
    where = f"File `{check}`" if check else f"Layers `{layer_names(document)}`"
    out.text(f"{where}, seed {document.get('seed')}.")
    header = [
        "scheme", "layer", "fan_in x fan_out", "expected Var", "observed Var", "rel. error",
        "CI", "p (Var)", "p (KS)", "fan_in·Var", "fan_out·Var", "ok",
    ]  # fmt: skip
    rows = []
    for row in document.get("layers", []):
        name = f"`{row['scheme']}`" + (f" `{row['array']}`" if row.get("array") else "")
        interval = (
            f"{sci(row['ci_low'], 4)}..{sci(row['ci_high'], 4)}"
            if row.get("ci_low") is not None
            else "-"
        )
        rows.append(
            [
                name,
                str(row["layer"]),
                f"{row['fan_in']} x {row['fan_out']}",
                sci(row["expected_var"], 4),
                sci(row["observed_var"], 4),
                pct(row["rel_error"]),
                interval,
                pval(row.get("p_value")),
                pval(row.get("ks_p_value")),
                fixed(row["fan_in_var"]),
                fixed(row["fan_out_var"]),
                _mark(row["passed"])
                + (" " + ", ".join(row["failures"]) if row.get("failures") else ""),
            ]
        )
    out.table(header, rows)
    return out


MARKDOWN: dict[str, Callable[[dict[str, Any]], Blocks]] = {"init": markdown_init}


def blocks(document: dict[str, Any]) -> Blocks:
    """The document's blocks, by its ``command``."""
    if document["command"] == "report":
        from xavinit.render.report import markdown_report

        return markdown_report(document)
    return MARKDOWN[document["command"]](document)


def render_markdown(document: dict[str, Any]) -> str:
    """The document as Markdown, by its ``command``."""
    return to_markdown(blocks(document))


def markdown_propagate(document: dict[str, Any]) -> Blocks:
    """Verdict line, the first/last ratios per run, then one row per (run, layer)."""
    if document.get("models"):
        from xavinit.render.propagate_model import markdown_models

        return markdown_models(document)
    out = Blocks()
    out.verdict(propagate_summary(document), document.get("passed"))
    config = document.get("config", {})
    out.text(
        f"Layers `{layer_names(document)}`, batch {config.get('batch')}, "
        f"{config.get('input')} inputs, seed {document.get('seed')}. Predictions in brackets "
        "(mean field)."
    )
    header = ["scheme", "activation", "Var[dC/ds] 1/last", "Var[z] 1/last", "Var[dC/dW] 1/last"]
    rows = [
        [
            f"`{r['scheme']}`",
            r["activation"],
            fixed(r.get("backprop_var_ratio")),
            fixed(r.get("activation_var_ratio")),
            fixed(r.get("weight_grad_var_ratio")),
        ]
        for r in document.get("runs", [])
    ]
    out.table(header, rows)
    header = [
        "scheme", "activation", "layer", "Var[z]", "Var[dC/ds]", "Var[dC/dW]", "saturated",
        "J mean sv",
    ]  # fmt: skip
    rows = []
    for run in document.get("runs", []):
        if not run.get("passed"):
            rows.append(
                [
                    f"`{run['scheme']}`",
                    run["activation"],
                    "-",
                    run.get("failure") or "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            continue
        for row in run["layers"]:
            sat = row.get("saturated_fraction")
            rows.append(
                [
                    f"`{run['scheme']}`",
                    run["activation"],
                    str(row["layer"]) + (" (out)" if row["kind"] == "output" else ""),
                    f"{sci(row['activation_var'])} ({sci(row['predicted_activation_var'])})",
                    f"{sci(row['backprop_var'])} ({sci(row['predicted_backprop_var'])})",
                    f"{sci(row['weight_grad_var'])} ({sci(row['predicted_weight_grad_var'])})",
                    "-" if sat is None else f"{100 * sat:.1f}%",
                    num(row.get("jacobian_sv_mean"), 3),
                ]
            )
    out.table(header, rows)
    notes = dict.fromkeys(
        note
        for run in document.get("runs", [])
        for key, note in (run.get("prediction_notes") or {}).items()
        if key.startswith("predicted_")
    )
    for note in notes:
        out.text(f"≈ Var[dC/dW] prediction: {note}.")
    return out


MARKDOWN["propagate"] = markdown_propagate


def markdown_train(document: dict[str, Any]) -> Blocks:
    """Verdict line, one row per run, then the last tracked statistics per layer."""
    config = document.get("config", {})
    out = Blocks()
    out.verdict(train_summary(document), document.get("passed"))
    out.text(
        f"Dataset `{document.get('dataset')}`, layers `{layer_names(document)}`, lr "
        f"{config.get('lr')}, batch {config.get('batch_size')}, seed {document.get('seed')}."
    )
    rows = []
    for run in document.get("runs", []):
        errors = [row["test_error"] for row in run["curve"]]
        rows.append(
            [
                f"`{run['scheme']}`",
                run["activation"],
                str(run["updates"]),
                f"diverged at {run.get('diverged_at')}"
                if run.get("diverged")
                else num(run.get("final_test_error"), 3),
                num(run.get("final_valid_error"), 3),
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
    for run in document.get("runs", []):
        stats = run.get("layer_stats", [])
        last_update = max((row["update"] for row in stats), default=None)
        for row in stats:
            if row["update"] != last_update:
                continue
            rows.append(
                [
                    f"`{run['scheme']}`",
                    run["activation"],
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


MARKDOWN["train"] = markdown_train


def markdown_schemes(document: dict[str, Any]) -> Blocks:
    """One row per scheme: name, aliases, distribution, formula; numbers when fans are given."""
    rows = document["schemes"]
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
    if document.get("config", {}).get("spec") is None:
        out.text(gain_names_note())
    return out


MARKDOWN["schemes"] = markdown_schemes


def markdown_check(document: dict[str, Any]) -> Blocks:
    """Verdict line, a count per verdict, then one table per verdict (fit for a CI summary)."""
    out = Blocks()
    passed = document.get("passed") if document.get("expect") is not None else None
    out.verdict(check_summary(document), passed)
    files = ", ".join(f"`{f}`" for f in document.get("files", []))
    out.text(
        f"Files {files}; family-wise alpha {document.get('alpha')}, seed {document.get('seed')}."
    )
    counts = document.get("counts", {})
    out.table(["verdict", "tensors"], [[v, str(counts.get(v, 0))] for v in VERDICTS])
    several = len(document.get("files", [])) > 1
    for verdict, rows in check_groups(document):
        out.heading(f"{verdict} ({len(rows)})")
        header = ["tensor", "role", "shape", "fans"]
        if verdict == "init":
            header += ["scheme", "p", "runner-up"]
        header += ["σ1/edge", "reason"]
        if document.get("expect") is not None:
            header.append("fits")
        lines = []
        for row in rows:
            name = f"`{row['file']}:{row['name']}`" if several else f"`{row['name']}`"
            cells = [name, row["role"], shape_text(row["shape"]), fans_text(row)]
            if verdict == "init":
                cells += [
                    f"`{row['scheme']}`",
                    pval(row["p_value"]),
                    f"`{row['runner_up'] or '-'}`",
                ]
            cells += [num(row.get("top_singular_ratio"), 3), row["reason"]]
            if document.get("expect") is not None:
                cells.append(_mark(row.get("matches")))
            lines.append(cells)
        out.table(header, lines)
    return out


MARKDOWN["check"] = markdown_check
MARKDOWN["sweep"] = markdown_sweep


def markdown_gain(document: dict[str, Any]) -> Blocks:
    """The gains table, then the depth checks; a verdict line when there are checks."""
    out = Blocks()
    checks = document.get("depth_checks", [])
    if checks:
        out.verdict(gain_summary(document), document.get("passed"))
    else:
        out.text(gain_summary(document) + ".")
    header = [
        "activation", "forward", "backward", "fixed point", "slope", "χ1", "phase", "depth",
        "PyTorch", "PyTorch/ours", "E[f(z)]", "E[f(z)²]",
    ]  # fmt: skip
    rows = [
        [
            f"`{r['activation']}`", decimals(r['forward_gain'], ".4f"), decimals(r['backward_gain'], ".4f"),
            decimals(r['fixed_point_gain'], ".4f"), decimals(r['fixed_point_slope'], ".3f"), decimals(r['chi1'], ".4f"),
            r["phase"], depth_scale_text(r["depth_scale"]), num(r.get("torch_gain")),
            num(r.get("torch_ratio")), signed(r["mean"]), decimals(r['second_moment'], ".4f"),
        ]
        for r in document.get("gains", [])
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


MARKDOWN["gain"] = markdown_gain
