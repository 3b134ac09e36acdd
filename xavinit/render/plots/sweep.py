"""The figures of ``sweep`` results: test error against updates, per model and per learning rate.

- ``sweep-<dataset>-test-error``: for each model at its chosen learning rate, the test error
  (mean over seeds, the band from the lowest to the highest seed) against SGD updates on a log
  axis, with the paper's Table 1 value as a dotted line of the same colour (the paper's
  figures 11 and 12 and its Table 1 in one picture);
- ``sweep-<dataset>-learning-rates``: one panel per model, one line per learning rate (mean
  over seeds), the chosen one thick, the update where it was chosen marked.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from xavinit.paper import table_1_value
from xavinit.render.plots.base import as_float, figure_title, file_slug, new_figure
from xavinit.render.sweep import model_name, models_in_order
from xavinit.results import SweepEntry, SweepResult, SweepRun

MODEL_COLOURS = ("#9467bd", "#17becf", "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#8c564b")
"""One colour per model, in Table 1's order (Softsign, Softsign N, Tanh, Tanh N, Sigmoid...)."""


def _mean_curve(
    runs: list[SweepRun],
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Updates > 0 (for the log axis) with the mean, lowest and highest test error over the
    runs that reached each evaluation."""
    by_update: dict[int, list[float]] = {}
    for run in runs:
        for point in run.curve:
            error = as_float(point["test_error"])
            if point["update"] > 0 and math.isfinite(error):
                by_update.setdefault(point["update"], []).append(error)
    updates = sorted(by_update)
    means = [sum(by_update[u]) / len(by_update[u]) for u in updates]
    lows = [min(by_update[u]) for u in updates]
    highs = [max(by_update[u]) for u in updates]
    return [float(u) for u in updates], means, lows, highs


def _updates_label(value: float, _position: Any = None) -> str:
    """An update count for a tick: 500, 2k, 50k, 1M."""
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if value >= 1e3 else f"{value:g}"


def _log_x(ax: Any) -> None:
    """A log x axis with ticks at 1, 2 and 5 times each power of ten, labelled 2k, 50k, 1M."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(_updates_label))
    ax.xaxis.set_minor_formatter(NullFormatter())


def sweep_figures(result: SweepResult, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    entries = result.table
    runs = result.runs
    out = []
    for dataset in dict.fromkeys(e["dataset"] for e in entries):
        mine = [e for e in entries if e["dataset"] == dataset]
        order = models_in_order(mine)
        colours = {m: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(order)}
        keyed = {(e["activation"], e["scheme"]): e for e in mine}
        out.append(_error_figure(mpl, dataset, order, keyed, runs, colours))
        out.append(_rates_figure(mpl, dataset, order, keyed, runs, colours))
    return out


def _runs_of(runs: list[SweepRun], dataset: str, model: tuple[str, str]) -> list[SweepRun]:
    return [r for r in runs if r.dataset == dataset and (r.activation, r.scheme) == model]


def _error_figure(
    mpl: SimpleNamespace,
    dataset: str,
    order: list[tuple[str, str]],
    keyed: dict[tuple[str, str], SweepEntry],
    runs: list[SweepRun],
    colours: dict[tuple[str, str], str],
) -> tuple[str, str, Any]:
    fig, (ax,) = new_figure(mpl, 1, panel_size=(8.0, 5.0))
    for model in order:
        entry = keyed[model]
        name, colour = model_name(*model), colours[model]
        chosen = [
            r
            for r in _runs_of(runs, dataset, model)
            if r.lr == entry["lr"] and r.status != "failed"
        ]
        x, mean, low, high = _mean_curve(chosen)
        if x:
            label = f"{name} (lr {as_float(entry['lr']):g})"
            ax.plot(x, mean, color=colour, linewidth=1.8, marker=".", label=label)
            if len(chosen) > 1:
                ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
        paper = table_1_value(model[0], model[1], dataset)
        if paper is not None:
            ax.axhline(
                paper / 100, color=colour, linestyle=":", linewidth=1.4, label=f"{name}, paper"
            )
    _log_x(ax)
    ax.set_xlabel("update (SGD steps, log scale)")
    ax.set_ylabel("test error (fraction misclassified)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    title = (
        f"Test error during training at each model's chosen learning rate ({dataset}; mean over "
        "seeds, band: lowest to highest seed; dotted: the paper's Table 1)"
    )
    figure_title(fig, title)
    return f"sweep-{file_slug(dataset)}-test-error", title, fig


def _rates_figure(
    mpl: SimpleNamespace,
    dataset: str,
    order: list[tuple[str, str]],
    keyed: dict[tuple[str, str], SweepEntry],
    runs: list[SweepRun],
    colours: dict[tuple[str, str], str],
) -> tuple[str, str, Any]:
    fig, axes = new_figure(mpl, len(order), sharex=True, sharey=True)
    cmap = mpl.colormaps["viridis"]
    for ax, model in zip(axes, order, strict=True):
        entry = keyed[model]
        mine = _runs_of(runs, dataset, model)
        rates = list(dict.fromkeys(r.lr for r in mine))
        for i, lr in enumerate(rates):
            x, mean, _, _ = _mean_curve([r for r in mine if r.lr == lr])
            if not x:
                continue
            best = lr == entry["lr"]
            colour = mpl.to_hex(cmap(0.85 * i / max(len(rates) - 1, 1)))
            ax.plot(
                x, mean, color=colour, linewidth=2.6 if best else 1.2, marker=".",
                label=f"lr {as_float(lr):g}" + (" (chosen)" if best else ""),
            )  # fmt: skip
        ax.axvline(entry["selected_at"], color="grey", linestyle="--", linewidth=1)
        ax.set_title(model_name(*model), color=colours[model], fontweight="bold")
        _log_x(ax)
        ax.set_xlabel("update (log scale)")
        ax.set_ylabel("test error")
        ax.legend(fontsize="small", loc="lower left")
    title = (
        f"Test error per learning rate ({dataset}; mean over seeds; dashed: where the rate was "
        "chosen on validation error)"
    )
    figure_title(fig, title)
    return f"sweep-{file_slug(dataset)}-learning-rates", title, fig
