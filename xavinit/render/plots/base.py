"""The lazy matplotlib shim, the colours and the small helpers every figure uses.

matplotlib is imported by :func:`load_matplotlib` on first need, never at import time.
"""

from __future__ import annotations

import hashlib
import math
import re
import textwrap
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from xavinit.errors import XavinitError
from xavinit.extras import install

INSTALL_HINT = f"figures need matplotlib: {install('plot')}"
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


class PlotsUnavailable(XavinitError):  # noqa: N818 (the name the API promises)
    """matplotlib is not installed, so no figure can be drawn."""


def plots_available() -> bool:
    """Whether matplotlib can be imported (figures can be drawn)."""
    try:
        load_matplotlib()
    except PlotsUnavailable:
        return False
    return True


def load_matplotlib() -> SimpleNamespace:
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


def scheme_colour(spec: str, name: str | None = None) -> str:
    """The colour of a scheme: fixed for the named presets, else from a hash of the spec.

    ``name`` is the scheme's canonical name as its run records it (``scheme_name``: aliases
    resolved, ``normalized`` for ``xavier-uniform``); a spec with parameters keeps a colour of its
    own, so that ``he-normal`` and ``he-normal:mode=fan_out`` differ in one figure. Without a
    name (a result saved before runs recorded it) the spec is looked up as it is."""
    key = str(spec).strip().lower()
    if name is not None and ":" not in key:
        key = name
    if key in SCHEME_COLOURS:
        return SCHEME_COLOURS[key]
    digest = hashlib.sha256(str(spec).strip().encode("utf-8")).digest()
    return _FALLBACK_COLOURS[int.from_bytes(digest[:4], "big") % len(_FALLBACK_COLOURS)]


# ------------------------------------------------------------------------------------ small helpers


def as_float(value: Any) -> float:
    """A float from a document value: None and unparsable values are NaN; "inf" strings parse."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def positive_values(values: Iterable[Any]) -> list[float]:
    """Values for a log axis: anything not finite and positive becomes NaN (a gap)."""
    out = []
    for value in values:
        number = as_float(value)
        out.append(number if math.isfinite(number) and number > 0 else math.nan)
    return out


def log_y_axis(ax: Any, *series: list[float], min_ratio: float = 1.0) -> None:
    """A log y axis when there is something positive to show and its range spans
    ``min_ratio`` or more."""
    positive = [v for values in series for v in values if math.isfinite(v) and v > 0]
    if positive and max(positive) >= min_ratio * min(positive):
        ax.set_yscale("log")


def group_rows(items: Sequence[Any], attribute: str) -> list[tuple[str, list[Any]]]:
    """Items (runs, rows of a result) grouped by an attribute, groups in order of first
    appearance."""
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(str(getattr(item, attribute)), []).append(item)
    return list(groups.items())


def pick_rows(numbers: list[int], limit: int = MAX_LAYER_LINES) -> list[int]:
    """At most ``limit`` of ``numbers``, evenly spaced, always the first and the last."""
    if len(numbers) <= limit:
        return numbers
    step = (len(numbers) - 1) / (limit - 1)
    return [numbers[round(i * step)] for i in range(limit)]


def layer_colours(mpl: SimpleNamespace, count: int) -> dict[int, str]:
    """Layer number (1-based) -> colour along viridis (stopping short of its pale yellow end)."""
    cmap = mpl.colormaps["viridis"]
    return {k: mpl.to_hex(cmap(0.88 * (k - 1) / max(count - 1, 1))) for k in range(1, count + 1)}


def new_figure(
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


def figure_title(fig: Any, title: str) -> None:
    """The figure's title, wrapped to its width."""
    fig.suptitle(textwrap.fill(title, width=max(40, int(fig.get_figwidth() * 11))))


def scheme_title(ax: Any, scheme: str, name: str | None, extra: str = "") -> None:
    """A panel's title: the scheme in its colour (``name``: its canonical name, see
    :func:`scheme_colour`)."""
    ax.set_title(f"{scheme}{extra}", color=scheme_colour(scheme, name), fontweight="bold")


def network_label(result: Any) -> str:
    """The network as ``1024-1000x5-10`` (runs of equal hidden widths folded)."""
    layers = result.config.get("layers") or []
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


def file_slug(text: Any) -> str:
    """A filesystem-safe name: lower case, runs of anything else than letters and digits as
    one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "unnamed"


def unique_name(names: list[str]) -> list[str]:
    """``names`` with repeats numbered: ``a``, ``a-2``, ``a-3``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out
