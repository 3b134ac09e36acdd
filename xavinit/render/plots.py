"""Figures of result documents (the paper's figures), drawn with matplotlib's Agg backend.

matplotlib is an optional extra (``pip install 'xavinit[plot]'``): it is imported inside the
functions that draw, so importing this module works without it, and drawing without it raises
:class:`PlotsUnavailable`. Figures are built as ``matplotlib.figure.Figure`` objects on an Agg
canvas, never through pyplot, so no global state is touched and nothing needs a display.

What each kind of result gives (names are unique within one document):

- ``init``: ``init-variance``, observed weight variance (error bars: the ``1 - alpha``
  confidence interval) against the expected one per layer and scheme, on a log scale, above the
  relative deviation in percent (where the intervals are visible). Rank-mode results (``init
  --check`` without a scheme) also give ``init-rank-<array>``, a bar chart of every candidate's
  score (log scale) with ``alpha`` marked.
- ``propagate``, per activation: ``propagate-<activation>-activations`` (figure 6),
  ``-backprop-gradients`` (figure 7), ``-weight-gradients`` (figure 8; absent from older
  files), normalized histograms of the hidden layers, one panel per scheme and one line per
  layer; and ``propagate-<activation>-variance``, measured variances per hidden layer (markers)
  with the mean-field (solid) and linear-regime (dashed) predictions, one colour per scheme.
  Runs that failed (no layers) are left out.
- ``train``, per activation: ``train-<activation>-mean-std`` (figure 2),
  ``-p98-std`` (figure 3), ``-weight-grad-std`` (figure 9, log scale) and
  ``-final-histograms`` (figure 4), one panel per scheme and one line per hidden layer; and
  ``train-test-error`` (figures 11 and 12): test error and training cost of every run. A run
  that diverged shows what it recorded before it diverged.

A scheme has the same colour in every figure (:func:`scheme_colour`); layers within a panel go
along the viridis colormap, the same layer in the same colour in every panel. Networks with more
than :data:`MAX_LAYER_LINES` hidden layers show that many layers, evenly spaced, in line plots.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from xavinit.errors import XavinitError
from xavinit.fileio import atomic_write

INSTALL_HINT = "figures need matplotlib: pip install 'xavinit[plot]'"
FORMATS = ("png", "svg")
DPI = 100
MAX_LAYER_LINES = 8
"""Line plots with one line per layer show at most this many layers (first, last, between)."""

SCHEME_COLOURS: dict[str, str] = {
    "standard": "#d62728",
    "normalized": "#1f77b4",
    "xavier-normal": "#17becf",
    "glorot-normal-truncated": "#393b79",
    "he-uniform": "#ff7f0e",
    "he-normal": "#2ca02c",
    "he-normal-truncated": "#8c564b",
    "lecun-uniform": "#9467bd",
    "lecun-normal": "#e377c2",
    "lecun-normal-truncated": "#bcbd22",
    "orthogonal": "#7f7f7f",
}
"""The colour of each named scheme (aliases such as ``xavier-uniform`` share their preset's)."""

_FALLBACK_COLOURS = (
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#3182bd",
    "#a55194",
    "#843c39",
    "#637939",
    "#8c6d31",
    "#7b4173",
    "#5254a3",
    "#ad494a",
)
_ACTIVATION_STYLES = ("-", "--", ":", "-.")


class PlotsUnavailable(XavinitError):  # noqa: N818 (the name the API promises)
    """matplotlib is not installed, so no figure can be drawn."""


def plots_available() -> bool:
    """Whether matplotlib can be imported (figures can be drawn)."""
    try:
        _matplotlib()
    except PlotsUnavailable:
        return False
    return True


def _matplotlib() -> SimpleNamespace:
    """The few matplotlib pieces the figures use, imported on first need."""
    try:
        import matplotlib  # noqa: F401  (first, so a blocked top-level package is seen)
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.colors import to_hex
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError:
        raise PlotsUnavailable(INSTALL_HINT) from None
    return SimpleNamespace(
        Figure=Figure, Canvas=FigureCanvasAgg, Line2D=Line2D, colormaps=colormaps, to_hex=to_hex
    )


def scheme_colour(spec: str) -> str:
    """The colour of a scheme: fixed for known names and aliases, else from a hash of the spec."""
    key = str(spec).strip().lower()
    if key not in SCHEME_COLOURS:
        from xavinit.schemes import ALIASES

        key = ALIASES.get(key, key)
    if key in SCHEME_COLOURS:
        return SCHEME_COLOURS[key]
    digest = hashlib.sha256(str(spec).strip().encode("utf-8")).digest()
    return _FALLBACK_COLOURS[int.from_bytes(digest[:4], "big") % len(_FALLBACK_COLOURS)]


# ----------------------------------------------------------------------------- public entry points


def figures(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The figures of one result document as ``(name, title, figure)`` triples.

    ``name`` is a filesystem-safe slug, unique within the document.

    Raises:
        PlotsUnavailable: matplotlib is not installed.
        XavinitError: the document is not an init, propagate or train result.
    """
    command = document.get("command") if isinstance(document, dict) else None
    builders = {"init": _init_figures, "propagate": _propagate_figures, "train": _train_figures}
    if command not in builders:
        raise XavinitError(
            f"cannot draw figures of a {command!r} result; figures exist for "
            f"{', '.join(builders)} results"
        )
    mpl = _matplotlib()
    drawn = builders[command](document, mpl)
    names = _unique([name for name, _, _ in drawn])
    return [(name, title, fig) for name, (_, title, fig) in zip(names, drawn, strict=True)]


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """A figure encoded as ``png`` (at :data:`DPI`) or ``svg``."""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise XavinitError(f"unknown figure format {fmt!r}; known: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else None
    figure.savefig(buffer, format=fmt, dpi=DPI, metadata=metadata)
    return buffer.getvalue()


def write_figures(documents: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Write every figure of every document as ``NAME.png`` and ``NAME.svg`` into ``directory``.

    The folder is created. A name that more than one document produces gets the 1-based index of
    its document as a prefix (``1-init-variance``, ``2-init-variance``). Files are written
    atomically. Returns the paths written, in order.
    """
    drawn = [figures(document) for document in documents]  # first: no folder without matplotlib
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise XavinitError(f"cannot create figure folder {str(directory)!r}: {error}") from None
    counts: dict[str, int] = {}
    for items in drawn:
        for name in {name for name, _, _ in items}:
            counts[name] = counts.get(name, 0) + 1
    written: list[Path] = []
    for index, items in enumerate(drawn, start=1):
        for name, _title, fig in items:
            stem = f"{index}-{name}" if counts[name] > 1 else name
            for fmt in FORMATS:
                path = directory / f"{stem}.{fmt}"
                data = figure_bytes(fig, fmt)
                with atomic_write(path, "wb") as stream:
                    stream.write(data)
                written.append(path)
            fig.clear()  # release the artists now; the figure itself is garbage-collected
    return written


# ------------------------------------------------------------------------------------ small helpers


def _slug(text: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "unnamed"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _num(value: Any) -> float:
    """A float from a document value: None and unparsable values are NaN; "inf" strings parse."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _positive(values: Iterable[Any]) -> list[float]:
    """Values for a log axis: anything not finite and positive becomes NaN (a gap)."""
    out = []
    for value in values:
        number = _num(value)
        out.append(number if math.isfinite(number) and number > 0 else math.nan)
    return out


def _log_y(ax: Any, *series: list[float], min_ratio: float = 1.0) -> None:
    """A log y axis when there is something positive to show and its range spans
    ``min_ratio`` or more."""
    positive = [v for values in series for v in values if math.isfinite(v) and v > 0]
    if positive and max(positive) >= min_ratio * min(positive):
        ax.set_yscale("log")


def _group(rows: list[dict[str, Any]], key: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by ``row[key]``, groups in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row.get(key, "?")), []).append(row)
    return list(groups.items())


def _pick(numbers: list[int], limit: int = MAX_LAYER_LINES) -> list[int]:
    """At most ``limit`` of ``numbers``, evenly spaced, always the first and the last."""
    if len(numbers) <= limit:
        return numbers
    step = (len(numbers) - 1) / (limit - 1)
    return [numbers[round(i * step)] for i in range(limit)]


def _layer_colours(mpl: SimpleNamespace, count: int) -> dict[int, str]:
    """Layer number (1-based) -> colour along viridis (stopping short of its pale yellow end)."""
    cmap = mpl.colormaps["viridis"]
    return {k: mpl.to_hex(cmap(0.88 * (k - 1) / max(count - 1, 1))) for k in range(1, count + 1)}


def _new_figure(
    mpl: SimpleNamespace,
    panels: int,
    *,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (5.0, 3.8),
    sharex: bool = False,
    sharey: bool = False,
) -> tuple[Any, list[Any]]:
    panels = max(panels, 1)
    ncols = ncols or min(panels, 3)
    nrows = math.ceil(panels / ncols)
    fig = mpl.Figure(
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows + 0.4), dpi=DPI, layout="constrained"
    )
    mpl.Canvas(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[panels:]:
        ax.set_visible(False)
    for ax in axes[:panels]:
        ax.grid(True, alpha=0.3, linewidth=0.6)
    return fig, axes[:panels]


def _suptitle(fig: Any, title: str) -> None:
    """The figure's title, wrapped to its width."""
    fig.suptitle(textwrap.fill(title, width=max(40, int(fig.get_figwidth() * 11))))


def _scheme_title(ax: Any, scheme: str, extra: str = "") -> None:
    ax.set_title(f"{scheme}{extra}", color=scheme_colour(scheme), fontweight="bold")


def _network(document: dict[str, Any]) -> str:
    """The network as ``1024-1000x5-10`` (runs of equal hidden widths folded)."""
    layers = (document.get("config") or {}).get("layers") or []
    if len(layers) < 3:
        return "-".join(map(str, layers))
    hidden, parts = layers[1:-1], []
    i = 0
    while i < len(hidden):
        j = i
        while j < len(hidden) and hidden[j] == hidden[i]:
            j += 1
        parts.append(f"{hidden[i]}x{j - i}" if j - i > 1 else str(hidden[i]))
        i = j
    return "-".join([str(layers[0]), *parts, str(layers[-1])])


# --------------------------------------------------------------------------------------------- init


def _init_figures(document: dict[str, Any], mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    out = []
    rows = [row for row in document.get("layers", []) if _num(row.get("expected_var")) > 0]
    if rows:
        out.append(_init_variance(document, rows, mpl))
    if document.get("mode") == "rank":
        alpha = _num(document.get("alpha", 0.01))
        for ranking in document.get("rankings", []):
            if ranking.get("candidates"):
                out.append(_init_ranking(ranking, alpha, mpl))
    return out


def _yerr(values: list[float], low: list[float], high: list[float]) -> list[list[float]]:
    """Asymmetric error bars from interval ends (no bar where an end is missing)."""
    below = [v - lo if math.isfinite(lo) else 0.0 for v, lo in zip(values, low, strict=True)]
    above = [hi - v if math.isfinite(hi) else 0.0 for v, hi in zip(values, high, strict=True)]
    return [[max(b, 0.0) for b in below], [max(a, 0.0) for a in above]]


def _init_variance(
    document: dict[str, Any], rows: list[dict[str, Any]], mpl: SimpleNamespace
) -> tuple[str, str, Any]:
    """Observed variance (CI bars) and expected (dashes) per layer above, deviation in % below."""
    alpha = _num(document.get("alpha", 0.01))
    level = f"{100 * (1 - alpha):g}% CI" if math.isfinite(alpha) else "CI"
    mode = document.get("mode", "sample")
    fig, (top, bottom) = _new_figure(mpl, 2, ncols=1, panel_size=(8.0, 3.4))
    positions = sorted({int(row["layer"]) for row in rows})
    ticks: dict[int, str] = {}
    for row in rows:
        ticks.setdefault(int(row["layer"]), str(row.get("array") or row["layer"]))
    groups = _group(rows, "scheme")
    width = 0.5 / max(len(groups), 1)
    handles = []
    any_failed = False
    all_values: list[float] = []
    for i, (scheme, group) in enumerate(groups):
        colour = scheme_colour(scheme)
        group = sorted(group, key=lambda r: int(r["layer"]))
        shift = (i - (len(groups) - 1) / 2) * width
        x = [int(r["layer"]) + shift for r in group]
        expected = [_num(r["expected_var"]) for r in group]
        observed = [_num(r["observed_var"]) for r in group]
        low = [_num(r.get("ci_low")) for r in group]
        high = [_num(r.get("ci_high")) for r in group]
        all_values += observed + expected
        # Expected: a wide dash per layer (layers of a checked file are unrelated: no line).
        top.plot(
            x, expected, linestyle="none", marker="_", markersize=14, markeredgewidth=2.2,
            color=colour, label=scheme,
        )  # fmt: skip
        top.errorbar(
            x, _positive(observed), yerr=_yerr(observed, low, high), fmt="o", markersize=5,
            capsize=3, color=colour,
        )  # fmt: skip
        rel = [100 * (o / e - 1) for o, e in zip(observed, expected, strict=True)]
        rel_low = [100 * (lo / e - 1) for lo, e in zip(low, expected, strict=True)]
        rel_high = [100 * (hi / e - 1) for hi, e in zip(high, expected, strict=True)]
        bottom.errorbar(
            x, rel, yerr=_yerr(rel, rel_low, rel_high), fmt="o", markersize=5, capsize=3,
            color=colour, label=scheme,
        )  # fmt: skip
        handles.append(mpl.Line2D([], [], color=colour, marker="o", linewidth=2, label=scheme))
        failed = [j for j, row in enumerate(group) if not row.get("passed", True)]
        if failed:
            any_failed = True
            for ax, values in ((top, observed), (bottom, rel)):
                ax.plot(
                    [x[j] for j in failed], [values[j] for j in failed], linestyle="none",
                    marker="o", markersize=11, markerfacecolor="none", markeredgecolor="black",
                    markeredgewidth=1.2,
                )  # fmt: skip
    _log_y(top, _positive(all_values))
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
    top.legend(handles=handles, fontsize="small", loc="best")
    xlabel = "layer (weight matrix)" if mode == "sample" else "array (position in file)"
    top.set_ylabel("weight variance Var[W]")
    top.set_title(f"observed (markers, bars: {level}) and expected (dashes)")
    bottom.set_ylabel("observed / expected − 1 (%)")
    bottom.set_title("relative deviation from the expected variance")
    rotate = any(len(label) > 6 for label in ticks.values())
    for ax in (top, bottom):
        ax.set_xlabel(xlabel)
        ax.set_xticks(positions, [ticks[p] for p in positions])
        ax.set_xlim(positions[0] - 0.5, positions[-1] + 0.5)
        if rotate:
            ax.tick_params(axis="x", labelrotation=30)
    what = {
        "rank": "best-fitting scheme per array",
        "check": f"checked file {(document.get('config') or {}).get('check') or ''}".strip(),
    }.get(mode, f"sampled, network {_network(document)}")
    title = f"Weight variance per layer and scheme ({what})"
    _suptitle(fig, title)
    return "init-variance", title, fig


def _init_ranking(
    ranking: dict[str, Any], alpha: float, mpl: SimpleNamespace
) -> tuple[str, str, Any]:
    floor = 1e-30
    candidates = ranking["candidates"]
    fig, (ax,) = _new_figure(mpl, 1, panel_size=(8.0, 0.9 + 0.32 * len(candidates)))
    names = [str(c["scheme"]) for c in candidates]
    scores = [_num(c.get("score")) for c in candidates]
    shown = [max(s, floor) if math.isfinite(s) else floor for s in scores]
    y = list(range(len(candidates)))[::-1]  # best at the top
    for yi, name, value, cand in zip(y, names, shown, candidates, strict=True):
        explains = bool(cand.get("explains"))
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
    array = str(ranking.get("array", "?"))
    title = (
        f"Which scheme explains {array} ({ranking.get('fan_in')} x {ranking.get('fan_out')}): "
        f"{ranking.get('best', '?')}"
    )
    ax.set_title(str(ranking.get("verdict", "")), fontsize="small")
    _suptitle(fig, title)
    return f"init-rank-{_slug(array)}", title, fig


# ---------------------------------------------------------------------------------------- propagate

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


def _hidden(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hidden layers of a run (all of them when it has none, e.g. a single layer)."""
    hidden = [layer for layer in layers if layer.get("kind", "hidden") == "hidden"]
    return hidden or layers


def _density(histogram: Any) -> tuple[list[float], list[float]] | None:
    """Bin centres and normalized density (integrates to 1 over the binned range)."""
    if not isinstance(histogram, dict):
        return None
    edges = [_num(e) for e in histogram.get("edges") or []]
    counts = [_num(c) for c in histogram.get("counts") or []]
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


def _propagate_figures(
    document: dict[str, Any], mpl: SimpleNamespace
) -> list[tuple[str, str, Any]]:
    runs = [run for run in document.get("runs", []) if run.get("layers")]
    out = []
    network = _network(document)
    for activation, group in _group(runs, "activation"):
        slug = _slug(activation)
        for field, name, xlabel, what, number in _HISTOGRAMS:
            drawn = _histogram_figure(
                mpl,
                [(run["scheme"], _hidden(run["layers"])) for run in group],
                field,
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


def _histogram_figure(
    mpl: SimpleNamespace,
    panels: list[tuple[str, list[dict[str, Any]]]],
    field: str | None,
    xlabel: str,
    title: str,
) -> tuple[str, Any] | None:
    """One panel per scheme, one density line per layer; None when no panel has a histogram.

    ``field`` names each layer's histogram; None when the layer rows are histograms themselves.
    """
    curves = []
    for scheme, layers in panels:
        lines = {}
        for layer in layers:
            curve = _density(layer if field is None else layer.get(field))
            if curve is not None:
                lines[int(layer["layer"])] = curve
        if lines:
            curves.append((scheme, lines))
    if not curves:
        return None
    count = max(max(lines) for _, lines in curves)
    colours = _layer_colours(mpl, count)
    spans = [
        max(x[-1] for x, _ in lines.values()) - min(x[0] for x, _ in lines.values())
        for _, lines in curves
    ]
    # Share the x axis (so schemes compare at a glance) unless one panel would be crushed.
    share = all(s > 0 for s in spans) and max(spans) / min(spans) <= 5
    fig, axes = _new_figure(mpl, len(curves), sharex=share)
    for ax, (scheme, lines) in zip(axes, curves, strict=True):
        for k in _pick(sorted(lines)):
            x, density = lines[k]
            ax.plot(x, density, color=colours[k], linewidth=1.4, label=f"layer {k}")
        _scheme_title(ax, scheme)
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize="small", loc="upper right")
    _suptitle(fig, title)
    return title, fig


def _variance_figure(
    mpl: SimpleNamespace, runs: list[dict[str, Any]], activation: str, network: str
) -> tuple[str, Any]:
    fig, axes = _new_figure(mpl, len(_VARIANCES), panel_size=(5.0, 4.2))
    for ax, (measured, mean_field, linear, ylabel, what) in zip(axes, _VARIANCES, strict=True):
        values: list[float] = []
        for run in runs:
            scheme = run["scheme"]
            colour = scheme_colour(scheme)
            layers = _hidden(run["layers"])
            x = [int(layer["layer"]) for layer in layers]
            y = _positive(layer.get(measured) for layer in layers)
            spread = [_num((layer.get("spread") or {}).get(measured)) for layer in layers]
            predicted = _positive(layer.get(mean_field) for layer in layers)
            regime = _positive(layer.get(linear) for layer in layers)
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
        _log_y(ax, values)
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
    _suptitle(fig, title)
    return title, fig


# -------------------------------------------------------------------------------------------- train


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    rows = sorted(rows, key=lambda r: _num(r.get("update")))
    return [_num(r.get("update")) for r in rows], [_num(r.get(key)) for r in rows]


def _by_layer(run: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    layers: dict[int, list[dict[str, Any]]] = {}
    for row in run.get("layer_stats") or []:
        layers.setdefault(int(row["layer"]), []).append(row)
    return layers


def _diverged(run: dict[str, Any]) -> str:
    if not run.get("diverged"):
        return ""
    at = run.get("diverged_at")
    return f" (diverged at update {at})" if at is not None else " (diverged)"


def _train_figures(document: dict[str, Any], mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    runs = list(document.get("runs", []))
    network = _network(document)
    out = []
    for activation, group in _group(runs, "activation"):
        slug = _slug(activation)
        head = f"{activation}, network {network}"
        tracked = [run for run in group if run.get("layer_stats")]
        with_grads = [
            run for run in tracked if any("weight_grad_std" in r for r in run["layer_stats"])
        ]
        planned = [
            (tracked, "mean-std", _mean_std_figure,
             "mean (line) and std (bars) of each hidden layer's activations during training "
             "(paper's figure 2)"),
            (tracked, "p98-std", _p98_figure,
             "98th percentile (solid) and std (dashed) of the activations during training "
             "(paper's figure 3)"),
            (with_grads, "weight-grad-std", _weight_grad_figure,
             "std of the weight gradients during training (paper's figure 9)"),
        ]  # fmt: skip
        for chosen, name, draw, what in planned:
            if chosen:
                out.append((f"train-{slug}-{name}", *draw(mpl, chosen, f"{head}: {what}")))
        finals = _histogram_figure(
            mpl,
            [(run["scheme"], run.get("final_histograms") or []) for run in group],
            None,
            "activation value z = f(s)",
            f"{head}: activation histograms at the end of training (paper's figure 4)",
        )
        if finals is not None:
            out.append((f"train-{slug}-final-histograms", *finals))
    if runs:
        out.append(("train-test-error", *_error_figure(mpl, runs, document, network)))
    return out


_Panels = list[tuple[Any, dict[str, Any], dict[int, list[dict[str, Any]]]]]


def _layer_panels(
    mpl: SimpleNamespace, runs: list[dict[str, Any]], *, sharey: bool = True
) -> tuple[Any, list[Any], _Panels, dict[int, str]]:
    """One panel per run, axes shared: the figure, its axes, ``(axis, run, rows per layer)``
    triples and the layer colours."""
    per_run = [_by_layer(run) for run in runs]
    count = max((max(layers) for layers in per_run if layers), default=1)
    colours = _layer_colours(mpl, count)
    fig, axes = _new_figure(mpl, len(runs), sharex=True, sharey=sharey)
    for ax, run in zip(axes, runs, strict=True):
        _scheme_title(ax, run["scheme"], _diverged(run))
        ax.set_xlabel("update (SGD steps)")
    return fig, axes, list(zip(axes, runs, per_run, strict=True)), colours


def _mean_std_figure(
    mpl: SimpleNamespace, runs: list[dict[str, Any]], title: str
) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    for ax, _run, layers in panels:
        shown = _pick(sorted(layers))
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
    _suptitle(fig, title)
    return title, fig


def _p98_figure(mpl: SimpleNamespace, runs: list[dict[str, Any]], title: str) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    for ax, _run, layers in panels:
        for k in _pick(sorted(layers)):
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
    _suptitle(fig, title)
    return title, fig


def _weight_grad_figure(
    mpl: SimpleNamespace, runs: list[dict[str, Any]], title: str
) -> tuple[str, Any]:
    fig, axes, panels, colours = _layer_panels(mpl, runs)
    values: list[float] = []
    for ax, _run, layers in panels:
        for k in _pick(sorted(layers)):
            x, std = _series(layers[k], "weight_grad_std")
            std = _positive(std)
            values += std
            ax.plot(x, std, color=colours[k], linewidth=1.5, marker=".", label=f"layer {k}")
        ax.set_ylabel("std of ∂C/∂W")
    _log_y(axes[0], values)  # the y axis is shared: one call sets every panel
    axes[0].legend(fontsize="small", loc="best", title="weight matrix")
    _suptitle(fig, title)
    return title, fig


def _error_figure(
    mpl: SimpleNamespace, runs: list[dict[str, Any]], document: dict[str, Any], network: str
) -> tuple[str, Any]:
    fig, (error_ax, cost_ax) = _new_figure(mpl, 2, ncols=2, panel_size=(6.0, 4.4), sharex=True)
    styles = {a: _ACTIVATION_STYLES[i % 4] for i, (a, _) in enumerate(_group(runs, "activation"))}
    costs: list[float] = []
    for run in runs:
        colour = scheme_colour(run["scheme"])
        style = styles[str(run.get("activation", "?"))]
        label = f"{run['scheme']}, {run.get('activation', '?')}{_diverged(run)}"
        curve = run.get("curve") or []
        x, error = _series(curve, "test_error")
        _, cost = _series(curve, "train_cost")
        costs += _positive(cost)
        error_ax.plot(x, error, color=colour, linestyle=style, marker=".", label=label)
        cost_ax.plot(x, _positive(cost), color=colour, linestyle=style, marker=".", label=label)
        if run.get("diverged"):
            finite = [(u, e) for u, e in zip(x, error, strict=True) if math.isfinite(e)]
            at = _num(run.get("diverged_at"))
            for ax in (error_ax, cost_ax):
                if math.isfinite(at):
                    ax.axvline(at, color=colour, linestyle=":", linewidth=1)
            if finite:
                error_ax.plot(*finite[-1], marker="X", markersize=9, color=colour)
    cost_name = (document.get("config") or {}).get("cost", "nll")
    unit = "NLL, nats" if cost_name == "nll" else str(cost_name)
    error_ax.set_xlabel("update (SGD steps)")
    error_ax.set_ylabel("test error (fraction misclassified)")
    error_ax.set_title("test error")
    cost_ax.set_xlabel("update (SGD steps)")
    cost_ax.set_ylabel(f"training cost ({unit} per example)")
    cost_ax.set_title("training cost since the previous evaluation")
    _log_y(cost_ax, costs, min_ratio=30.0)
    error_ax.legend(fontsize="small", loc="best")
    dataset = document.get("dataset") or (document.get("config") or {}).get("dataset", "")
    title = f"Test error during training ({dataset}, network {network}; paper's figures 11, 12)"
    _suptitle(fig, title)
    return title, fig


__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "SCHEME_COLOURS",
    "PlotsUnavailable",
    "figure_bytes",
    "figures",
    "plots_available",
    "scheme_colour",
    "write_figures",
]
