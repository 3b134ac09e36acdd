"""The figures of ``train`` results: layer statistics during training, final histograms and
test error."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
from xavinit.render.plots.propagate import histogram_figure
from xavinit.results import LayerStats, TrainResult, TrainRun

_ACTIVATION_STYLES = ("-", "--", ":", "-.")


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(updates, values)`` of a curve's or a layer's rows, in update order."""
    ordered = sorted(rows, key=lambda r: int(r["update"]))
    return [float(r["update"]) for r in ordered], [as_float(r[key]) for r in ordered]


def _by_layer(run: TrainRun) -> dict[int, list[LayerStats]]:
    layers: dict[int, list[LayerStats]] = {}
    for row in run.layer_stats:
        layers.setdefault(row["layer"], []).append(row)
    return layers


def _diverged(run: TrainRun) -> str:
    if not run.diverged:
        return ""
    at = run.diverged_at
    return f" (diverged at update {at})" if at is not None else " (diverged)"


def train_figures(result: TrainResult, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    runs = list(result.runs)
    network = network_label(result)
    out = []
    for activation, group in group_rows(runs, "activation"):
        slug = file_slug(activation)
        head = f"{activation}, network {network}"
        tracked = [run for run in group if run.layer_stats]
        planned = [
            (tracked, "mean-std", _mean_std_figure,
             "mean (line) and std (bars) of each hidden layer's activations during training "
             "(paper's figure 2)"),
            (tracked, "p98-std", _p98_figure,
             "98th percentile (solid) and std (dashed) of the activations during training "
             "(paper's figure 3)"),
            (tracked, "weight-grad-std", _weight_grad_figure,
             "std of the weight gradients during training (paper's figure 9)"),
        ]  # fmt: skip
        for chosen, name, draw, what in planned:
            if chosen:
                out.append((f"train-{slug}-{name}", *draw(mpl, chosen, f"{head}: {what}")))
        finals = histogram_figure(
            mpl,
            [
                (run.scheme, run.scheme_name, [(h["layer"], h) for h in run.final_histograms])
                for run in group
            ],
            "activation value z = f(s)",
            f"{head}: activation histograms at the end of training (paper's figure 4)",
        )
        if finals is not None:
            out.append((f"train-{slug}-final-histograms", *finals))
    if runs:
        out.append(("train-test-error", *_error_figure(mpl, runs, result, network)))
    return out


_Panels = list[tuple[Any, TrainRun, dict[int, list[LayerStats]]]]


def _layer_panels(
    mpl: SimpleNamespace, runs: list[TrainRun], *, sharey: bool = True
) -> tuple[Any, list[Any], _Panels, dict[int, str]]:
    """One panel per run, axes shared: the figure, its axes, ``(axis, run, rows per layer)``
    triples and the layer colours."""
    per_run = [_by_layer(run) for run in runs]
    count = max((max(layers) for layers in per_run if layers), default=1)
    colours = layer_colours(mpl, count)
    fig, axes = new_figure(mpl, len(runs), sharex=True, sharey=sharey)
    for ax, run in zip(axes, runs, strict=True):
        scheme_title(ax, run.scheme, run.scheme_name, _diverged(run))
        ax.set_xlabel("update (SGD steps)")
    return fig, axes, list(zip(axes, runs, per_run, strict=True)), colours


def _mean_std_figure(mpl: SimpleNamespace, runs: list[TrainRun], title: str) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    for ax, _run, layers in panels:
        shown = pick_rows(sorted(layers))
        for i, k in enumerate(shown):
            x, mean = _series(layers[k], "mean")
            _, std = _series(layers[k], "std")
            # The paper's vertical bars: layers nudged apart, at most ~12 bars per line.
            span = (max(x) - min(x)) if len(x) > 1 else 1.0
            shift = (i - (len(shown) - 1) / 2) * 0.006 * span
            step = max(1, math.ceil(len(x) / 12))
            ax.errorbar(
                [u + shift for u in x], mean, yerr=[abs(v) for v in std], color=colours[k],
                linewidth=1.5, marker=".", capsize=2, elinewidth=1,
                errorevery=(i % step, step), label=f"layer {k}",
            )  # fmt: skip
        ax.set_ylabel("activation value (mean ± std)")
    axes[0].legend(fontsize="small", loc="best", title="mean (line) ± std (bars)")
    figure_title(fig, title)
    return title, fig


def _p98_figure(mpl: SimpleNamespace, runs: list[TrainRun], title: str) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    for ax, _run, layers in panels:
        for k in pick_rows(sorted(layers)):
            x, p98 = _series(layers[k], "p98")
            _, std = _series(layers[k], "std")
            ax.plot(x, p98, color=colours[k], linewidth=1.5, marker=".", label=f"layer {k}")
            ax.plot(x, std, color=colours[k], linewidth=1.2, linestyle="--")
        ax.set_ylabel("activation value")
    handles = [
        *axes[0].get_legend_handles_labels()[0],
        mpl.Line2D([], [], color="grey", marker=".", label="98th percentile"),
        mpl.Line2D([], [], color="grey", linestyle="--", label="standard deviation"),
    ]
    axes[0].legend(handles=handles, fontsize="small", loc="best")
    figure_title(fig, title)
    return title, fig


def _weight_grad_figure(mpl: SimpleNamespace, runs: list[TrainRun], title: str) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    values: list[float] = []
    for ax, _run, layers in panels:
        for k in pick_rows(sorted(layers)):
            x, std = _series(layers[k], "weight_grad_std")
            std = positive_values(std)
            values += std
            ax.plot(x, std, color=colours[k], linewidth=1.5, marker=".", label=f"layer {k}")
        ax.set_ylabel("std of ∂C/∂W")
    log_y_axis(axes[0], values)  # the y axis is shared: one call sets every panel
    axes[0].legend(fontsize="small", loc="best", title="weight matrix")
    figure_title(fig, title)
    return title, fig


def _error_figure(
    mpl: SimpleNamespace, runs: list[TrainRun], result: TrainResult, network: str
) -> tuple[str, Any]:
    fig, (error_ax, cost_ax) = new_figure(mpl, 2, ncols=2, panel_size=(6.0, 4.4), sharex=True)
    styles = {
        a: _ACTIVATION_STYLES[i % 4] for i, (a, _) in enumerate(group_rows(runs, "activation"))
    }
    costs: list[float] = []
    for run in runs:
        colour = scheme_colour(run.scheme, run.scheme_name)
        style = styles[run.activation]
        label = f"{run.scheme}, {run.activation}{_diverged(run)}"
        x, error = _series(run.curve, "test_error")
        _, cost = _series(run.curve, "train_cost")
        costs += positive_values(cost)
        error_ax.plot(x, error, color=colour, linestyle=style, marker=".", label=label)
        cost_ax.plot(
            x, positive_values(cost), color=colour, linestyle=style, marker=".", label=label
        )
        if run.diverged:
            finite = [(u, e) for u, e in zip(x, error, strict=True) if math.isfinite(e)]
            at = as_float(run.diverged_at)
            for ax in (error_ax, cost_ax):
                if math.isfinite(at):
                    ax.axvline(at, color=colour, linestyle=":", linewidth=1)
            if finite:
                error_ax.plot(*finite[-1], marker="X", markersize=9, color=colour)
    cost_name = result.config.get("cost", "nll")
    unit = "NLL, nats" if cost_name == "nll" else str(cost_name)
    error_ax.set_xlabel("update (SGD steps)")
    error_ax.set_ylabel("test error (fraction misclassified)")
    error_ax.set_title("test error")
    cost_ax.set_xlabel("update (SGD steps)")
    cost_ax.set_ylabel(f"training cost ({unit} per example)")
    cost_ax.set_title("training cost since the previous evaluation")
    log_y_axis(cost_ax, costs, min_ratio=30.0)
    error_ax.legend(fontsize="small", loc="best")
    dataset = result.dataset or result.config.get("dataset", "")
    title = f"Test error during training ({dataset}, network {network}; paper's figures 11, 12)"
    figure_title(fig, title)
    return title, fig
