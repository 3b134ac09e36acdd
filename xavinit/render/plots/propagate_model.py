"""The signal propagation plot of ``propagate --model`` results (Brock, De and Smith 2021)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from xavinit.render.plots.base import (
    as_float,
    figure_title,
    file_slug,
    log_y_axis,
    new_figure,
    positive_values,
)
from xavinit.results import ModelModule, ModelRun, PropagateResult

MAX_TICKS = 24
"""At most this many module names label the x axis (evenly spaced)."""


def _block_of(name: str) -> str:
    """The block a leaf belongs to: its name up to the first numeric component
    (``encoder.layer.3.attention.output`` -> ``encoder.layer.3``), or the name itself."""
    match = re.match(r"^(.*?\.\d+)(\.|$)", name)
    return match.group(1) if match else name


def model_figures(result: PropagateResult, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    out = []
    for run in result.models:
        if not run.modules:
            continue
        title, fig = _spp_figure(mpl, run, run.modules)
        out.append((f"propagate-model-{file_slug(run.model)}", title, fig))
    return out


def _mark_blocks(ax: Any, modules: list[ModelModule], x: list[int]) -> None:
    """Shade every other block (leaves of one block share a band); a block run marks each."""
    if modules[0].kind == "block":
        for position in x:
            ax.axvline(position, color="grey", alpha=0.12, linewidth=0.8)
        return
    blocks = [_block_of(m.name) for m in modules]
    groups: list[list[int]] = []  # [first, last] index of each run of one block
    for i, block in enumerate(blocks):
        if groups and blocks[groups[-1][0]] == block:
            groups[-1][1] = i
        else:
            groups.append([i, i])
    shade = False
    for first, last in groups:
        if blocks[first] == modules[first].name:  # a leaf outside any block
            continue
        if shade:
            ax.axvspan(x[first] - 0.5, x[last] + 0.5, color="grey", alpha=0.1, linewidth=0)
        shade = not shade


def _spp_figure(mpl: SimpleNamespace, run: ModelRun, modules: list[ModelModule]) -> tuple[str, Any]:
    x = [m.index for m in modules]
    panels: list[tuple[str, list[tuple[str, list[float], dict[str, Any]]]]] = [
        (
            "average channel squared mean",
            [("measured", positive_values(m.channel_sq_mean for m in modules), {"marker": "o"})],
        ),
        (
            "average channel variance",
            [
                ("measured", positive_values(m.channel_var for m in modules), {"marker": "o"}),
                (
                    "mean-field prediction of Var[y]",
                    positive_values(m.predicted_var for m in modules),
                    {"marker": "x", "linestyle": "none"},
                ),
            ],
        ),
    ]
    if any(m.branch_var is not None for m in modules):
        panels.append(
            (
                "residual branch Var[y - x] and skip Var[x]",
                [
                    ("branch", positive_values(m.branch_var for m in modules), {"marker": "o"}),
                    ("skip", positive_values(m.skip_var for m in modules), {"marker": "s"}),
                ],
            )
        )
    if any(m.grad_var is not None for m in modules):
        panels.append(
            (
                "gradient Var[dC/dy] / top's",
                [
                    (
                        "measured",
                        positive_values(m.grad_ratio_to_top for m in modules),
                        {"marker": "o"},
                    )
                ],
            )
        )
    fig, axes = new_figure(mpl, len(panels), ncols=min(len(panels), 2), panel_size=(6.0, 3.8))
    step = max(1, len(x) // MAX_TICKS + (len(x) % MAX_TICKS > 0))
    for ax, (what, series) in zip(axes, panels, strict=True):
        values: list[float] = []
        for label, y, style in series:
            values += [v for v in y if as_float(v) == as_float(v)]
            ax.plot(x, y, label=label, markersize=4, linewidth=1.2, **style)
        _mark_blocks(ax, modules, x)
        log_y_axis(ax, values)
        ax.set_title(what)
        ax.set_xticks(x[::step])
        ax.set_xticklabels([m.name for m in modules][::step], rotation=60, ha="right", fontsize=7)
        if len(series) > 1:
            ax.legend(fontsize="small", loc="best")
    verdict = "passed" if run.passed else "drifted"
    title = (
        f"{run.model}: signal propagation at initialization, every {run.depth_of} in "
        f"network order (batch {run.batch}, {run.input} inputs; {verdict})"
    )
    figure_title(fig, title)
    return title, fig
