"""The figures of ``propagate`` results: histograms per hidden layer, and variance against depth."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from xavinit.render.plots.base import (
    as_float,
    figure_title,
    file_slug,
    group_rows,
    layer_colours,
    log_y_axis,
    network_label,
    new_figure,
    pick_rows,
    positive_values,
    scheme_colour,
    scheme_title,
)
from xavinit.results import PropagateLayer, PropagateResult, PropagateRun

Panel = tuple[str, str | None, list[tuple[int, Any]]]
"""One panel of histograms: the scheme, its canonical name (for its colour) and the
``(layer, histogram)`` pairs to draw, a histogram being a dict of ``edges`` and ``counts``."""

_HISTOGRAMS = (
    # (field, name, x label, what, paper figure)
    ("histogram", "activations", "activation value z = f(s)", "activation values", 6),
    (
        "backprop_histogram",
        "backprop-gradients",
        "back-propagated gradient ∂C/∂s",
        "back-propagated gradients",
        7,
    ),
    ("weight_grad_histogram", "weight-gradients", "weight gradient ∂C/∂W", "weight gradients", 8),
)

_VARIANCES = (
    # (measured, mean field, linear regime, y label, panel title)
    (
        "activation_var",
        "predicted_activation_var",
        "linear_activation_var",
        "variance Var[z]",
        "activations",
    ),
    (
        "backprop_var",
        "predicted_backprop_var",
        "linear_backprop_var",
        "variance Var[∂C/∂s]",
        "back-propagated gradients",
    ),
    (
        "weight_grad_var",
        "predicted_weight_grad_var",
        "linear_weight_grad_var",
        "variance Var[∂C/∂W]",
        "weight gradients",
    ),
)


def _hidden(layers: list[PropagateLayer]) -> list[PropagateLayer]:
    """The hidden layers of a run (all of them when it has none, e.g. a single layer)."""
    hidden = [layer for layer in layers if layer.kind == "hidden"]
    return hidden or layers


def _density(histogram: Any) -> tuple[list[float], list[float]] | None:
    """Bin centres and normalized density (integrates to 1 over the binned range); None for an
    empty histogram (a weight-gradient histogram of a file saved before there were any)."""
    if not histogram:
        return None
    edges = [as_float(e) for e in histogram["edges"]]
    counts = [as_float(c) for c in histogram["counts"]]
    if len(counts) == 0 or len(edges) != len(counts) + 1:
        return None
    total = sum(c for c in counts if math.isfinite(c))
    if not total > 0:
        return None
    centres = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    density = [
        c / (total * (b - a)) if b > a and math.isfinite(c) else math.nan
        for c, a, b in zip(counts, edges, edges[1:], strict=False)
    ]
    return centres, density


def propagate_figures(result: PropagateResult, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    runs = [run for run in result.runs if run.layers]
    out = []
    network = network_label(result)
    for activation, group in group_rows(runs, "activation"):
        slug = file_slug(activation)
        for field, name, xlabel, what, number in _HISTOGRAMS:
            drawn = histogram_figure(
                mpl,
                [
                    (
                        run.scheme,
                        run.scheme_name,
                        [(layer.layer, getattr(layer, field)) for layer in _hidden(run.layers)],
                    )
                    for run in group
                ],
                xlabel,
                f"{activation}, network {network}: {what} at initialization, per hidden layer "
                f"(paper's figure {number})",
            )
            if drawn is not None:
                out.append((f"propagate-{slug}-{name}", *drawn))
        out.append(
            (f"propagate-{slug}-variance", *_variance_figure(mpl, group, activation, network))
        )
    return out


def histogram_figure(
    mpl: SimpleNamespace, panels: list[Panel], xlabel: str, title: str
) -> tuple[str, Any] | None:
    """One panel per scheme, one density line per layer; None when no panel has a histogram."""
    curves = []
    for scheme, scheme_name, histograms in panels:
        lines = {}
        for layer, histogram in histograms:
            curve = _density(histogram)
            if curve is not None:
                lines[layer] = curve
        if lines:
            curves.append((scheme, scheme_name, lines))
    if not curves:
        return None
    count = max(max(lines) for _, _, lines in curves)
    colours = layer_colours(mpl, count)
    spans = [
        max(x[-1] for x, _ in lines.values()) - min(x[0] for x, _ in lines.values())
        for _, _, lines in curves
    ]
    # Share the x axis (so schemes compare at a glance) unless one panel would be crushed.
    share = all(s > 0 for s in spans) and max(spans) / min(spans) <= 5
    fig, axes = new_figure(mpl, len(curves), sharex=share)
    for ax, (scheme, scheme_name, lines) in zip(axes, curves, strict=True):
        for k in pick_rows(sorted(lines)):
            x, density = lines[k]
            ax.plot(x, density, color=colours[k], linewidth=1.4, label=f"layer {k}")
        scheme_title(ax, scheme, scheme_name)
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize="small", loc="upper right")
    figure_title(fig, title)
    return title, fig


def _variance_figure(
    mpl: SimpleNamespace, runs: list[PropagateRun], activation: str, network: str
) -> tuple[str, Any]:
    fig, axes = new_figure(mpl, len(_VARIANCES), panel_size=(5.0, 4.2))
    for ax, (measured, mean_field, linear, ylabel, what) in zip(axes, _VARIANCES, strict=True):
        values: list[float] = []
        for run in runs:
            scheme = run.scheme
            colour = scheme_colour(scheme, run.scheme_name)
            layers = _hidden(run.layers)
            x = [layer.layer for layer in layers]
            y = positive_values(getattr(layer, measured) for layer in layers)
            spread = [as_float(layer.spread.get(measured)) for layer in layers]
            predicted = positive_values(getattr(layer, mean_field) for layer in layers)
            regime = positive_values(getattr(layer, linear) for layer in layers)
            values += y + predicted + regime
            ax.plot(x, predicted, color=colour, linewidth=1.6, label=scheme)
            ax.plot(x, regime, color=colour, linewidth=1.2, linestyle="--")
            if any(math.isfinite(s) and s > 0 for s in spread):
                lower = [
                    min(s, 0.999 * v) if math.isfinite(s) else 0.0
                    for s, v in zip(spread, y, strict=True)
                ]
                upper = [s if math.isfinite(s) else 0.0 for s in spread]
                ax.errorbar(
                    x, y, yerr=[lower, upper], fmt="o", color=colour, markersize=5, capsize=3
                )
            else:
                ax.plot(x, y, linestyle="none", marker="o", color=colour, markersize=5)
        log_y_axis(ax, values)
        ax.set_xlabel("hidden layer (1 = nearest the input)")
        ax.set_ylabel(ylabel)
        ax.set_title(what)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles = [
        *axes[0].get_legend_handles_labels()[0],
        mpl.Line2D([], [], color="grey", linestyle="none", marker="o", label="measured"),
        mpl.Line2D([], [], color="grey", linewidth=1.6, label="mean field"),
        mpl.Line2D([], [], color="grey", linestyle="--", label="linear regime (eq. 5-7)"),
    ]
    axes[0].legend(handles=handles, fontsize="small", loc="best")
    title = f"{activation}, network {network}: variance against depth at initialization"
    figure_title(fig, title)
    return title, fig
