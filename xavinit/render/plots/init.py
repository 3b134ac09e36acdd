"""The figures of ``init`` results: weight variance per layer, and rank mode's candidate scores."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from xavinit.render.plots.base import (
    as_float,
    figure_title,
    file_slug,
    group_rows,
    log_y_axis,
    network_label,
    new_figure,
    positive_values,
    scheme_colour,
)
from xavinit.results import InitCheck, InitResult, Ranking

MAX_BARS = 2000
"""Above this many matrices per scheme the figure shows points without interval bars."""

MAX_TICKS = 40
"""At most this many labelled layers on the x axis; a file of thousands of matrices shows every
k-th label."""


def init_figures(result: InitResult, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    out = []
    rows = [row for row in result.layers if as_float(row.expected_var) > 0]
    if rows:
        out.append(_init_variance(result, rows, mpl))
    if result.mode == "rank":
        alpha = as_float(result.alpha)
        for ranking in result.rankings:
            if ranking.candidates:
                out.append(_init_ranking(ranking, alpha, mpl))
    return out


def _yerr(values: list[float], low: list[float], high: list[float]) -> list[list[float]]:
    """Asymmetric error bars from interval ends (no bar where an end is missing)."""
    below = [v - lo if math.isfinite(lo) else 0.0 for v, lo in zip(values, low, strict=True)]
    above = [hi - v if math.isfinite(hi) else 0.0 for v, hi in zip(values, high, strict=True)]
    return [[max(b, 0.0) for b in below], [max(a, 0.0) for a in above]]


def _init_variance(
    result: InitResult, rows: list[InitCheck], mpl: SimpleNamespace
) -> tuple[str, str, Any]:
    """Observed variance (CI bars) and expected (dashes) per layer above, deviation in % below."""
    alpha = as_float(result.alpha)
    level = f"{100 * (1 - alpha):g}% CI" if math.isfinite(alpha) else "CI"
    mode = result.mode
    fig, (top, bottom) = new_figure(mpl, 2, ncols=1, panel_size=(8.0, 3.4))
    positions = sorted({row.layer for row in rows})
    ticks: dict[int, str] = {}
    for row in rows:
        ticks.setdefault(row.layer, str(row.array or row.layer))
    groups = group_rows(rows, "scheme")
    width = 0.5 / max(len(groups), 1)
    handles = []
    any_failed = False
    all_values: list[float] = []
    for i, (scheme, group) in enumerate(groups):
        colour = scheme_colour(scheme, result.scheme_names.get(scheme))
        group = sorted(group, key=lambda r: r.layer)
        shift = (i - (len(groups) - 1) / 2) * width
        x = [r.layer + shift for r in group]
        expected = [as_float(r.expected_var) for r in group]
        observed = [as_float(r.observed_var) for r in group]
        low = [as_float(r.ci_low) for r in group]
        high = [as_float(r.ci_high) for r in group]
        all_values += observed + expected
        # Expected: a wide dash per layer (layers of a checked file are unrelated: no line).
        top.plot(
            x, expected, linestyle="none", marker="_", markersize=14, markeredgewidth=2.2,
            color=colour, label=scheme,
        )  # fmt: skip
        many = len(group) > MAX_BARS  # thousands of bars draw for minutes and show nothing
        if many:
            top.plot(x, positive_values(observed), ".", markersize=2, color=colour)
        else:
            top.errorbar(
                x, positive_values(observed), yerr=_yerr(observed, low, high), fmt="o", markersize=5,
                capsize=3, color=colour,
            )  # fmt: skip
        rel = [100 * (o / e - 1) for o, e in zip(observed, expected, strict=True)]
        rel_low = [100 * (lo / e - 1) for lo, e in zip(low, expected, strict=True)]
        rel_high = [100 * (hi / e - 1) for hi, e in zip(high, expected, strict=True)]
        if many:
            bottom.plot(x, rel, ".", markersize=2, color=colour, label=scheme)
        else:
            bottom.errorbar(
                x, rel, yerr=_yerr(rel, rel_low, rel_high), fmt="o", markersize=5, capsize=3,
                color=colour, label=scheme,
            )  # fmt: skip
        handles.append(mpl.Line2D([], [], color=colour, marker="o", linewidth=2, label=scheme))
        failed = [j for j, row in enumerate(group) if not row.passed]
        if failed:
            any_failed = True
            for ax, values in ((top, observed), (bottom, rel)):
                ax.plot(
                    [x[j] for j in failed], [values[j] for j in failed], linestyle="none",
                    marker="o", markersize=11, markerfacecolor="none", markeredgecolor="black",
                    markeredgewidth=1.2,
                )  # fmt: skip
    log_y_axis(top, positive_values(all_values))
    bottom.axhline(0.0, color="black", linewidth=0.8)
    handles += [
        mpl.Line2D([], [], color="grey", marker="o", linestyle="none", label=f"observed ({level})"),
        mpl.Line2D(
            [], [], color="grey", marker="_", markersize=14, markeredgewidth=2.2,
            linestyle="none", label="expected",
        ),
    ]  # fmt: skip
    if any_failed:
        handles.append(
            mpl.Line2D(
                [], [], linestyle="none", marker="o", markersize=11, markerfacecolor="none",
                markeredgecolor="black", label="failed check",
            )
        )  # fmt: skip
    # "best" scans every point for a free corner: quadratic in the layers of a large file.
    top.legend(handles=handles, fontsize="small", loc="best" if len(rows) <= 200 else "upper right")
    xlabel = "layer (weight matrix)" if mode == "sample" else "array (position in file)"
    top.set_ylabel("weight variance Var[W]")
    top.set_title(f"observed (markers, bars: {level}) and expected (dashes)")
    bottom.set_ylabel("observed / expected − 1 (%)")
    bottom.set_title("relative deviation from the expected variance")
    shown = positions[:: math.ceil(len(positions) / MAX_TICKS)]  # every label would overlap
    rotate = any(len(ticks[p]) > 6 for p in shown)
    for ax in (top, bottom):
        ax.set_xlabel(xlabel)
        ax.set_xticks(shown, [ticks[p] for p in shown])
        ax.set_xlim(positions[0] - 0.5, positions[-1] + 0.5)
        if rotate:
            ax.tick_params(axis="x", labelrotation=30)
    what = {
        "rank": "best-fitting scheme per array",
        "check": f"checked file {result.config.get('check') or ''}".strip(),
    }.get(mode, f"sampled, network {network_label(result)}")
    title = f"Weight variance per layer and scheme ({what})"
    figure_title(fig, title)
    return "init-variance", title, fig


def _init_ranking(ranking: Ranking, alpha: float, mpl: SimpleNamespace) -> tuple[str, str, Any]:
    floor = 1e-30
    candidates = ranking.candidates
    fig, (ax,) = new_figure(mpl, 1, panel_size=(8.0, 0.9 + 0.32 * len(candidates)))
    names = [str(c["scheme"]) for c in candidates]
    scores = [as_float(c["score"]) for c in candidates]
    shown = [max(s, floor) if math.isfinite(s) else floor for s in scores]
    y = list(range(len(candidates)))[::-1]  # best at the top
    for yi, name, value, cand in zip(y, names, shown, candidates, strict=True):
        explains = cand["explains"]
        ax.barh(
            yi,
            value - floor,
            left=floor,
            color=scheme_colour(name),
            alpha=1.0 if explains else 0.45,
            edgecolor="black" if explains else "none",
            height=0.7,
        )
        if value <= floor:
            ax.text(floor * 3, yi, f"< {floor:g}", va="center", fontsize="x-small")
    ax.set_xscale("log")
    ax.set_xlim(floor, 2.0)
    if math.isfinite(alpha) and alpha > 0:
        ax.axvline(alpha, color="black", linestyle="--", linewidth=1, label=f"α = {alpha:g}")
    ax.set_yticks(y, names)
    for tick in ax.get_yticklabels():
        tick.set_color(scheme_colour(tick.get_text()))
    ax.set_xlabel("score = min(p variance, p distribution) (probability, log scale)")
    ax.set_ylabel("candidate scheme")
    ax.legend(
        handles=[
            *ax.get_legend_handles_labels()[0],
            mpl.Line2D([], [], color="grey", linewidth=6, label="explains the matrix"),
            mpl.Line2D([], [], color="grey", alpha=0.45, linewidth=6, label="does not"),
        ],
        fontsize="small",
        loc="lower right",
    )
    array = ranking.array
    title = f"Which scheme explains {array} ({ranking.fan_in} x {ranking.fan_out}): {ranking.best}"
    ax.set_title(ranking.verdict, fontsize="small")
    figure_title(fig, title)
    return f"init-rank-{file_slug(array)}", title, fig
