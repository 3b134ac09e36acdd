"""The figures of one result, picked by its command (see the package's docstring for which)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from xavinit.render.plots.base import load_matplotlib, unique_name
from xavinit.render.plots.init import init_figures
from xavinit.render.plots.propagate import propagate_figures
from xavinit.render.plots.propagate_model import model_figures
from xavinit.render.plots.sweep import sweep_figures
from xavinit.render.plots.train import train_figures


def _propagate_and_model_figures(result: Any, mpl: SimpleNamespace) -> list[tuple[str, str, Any]]:
    return propagate_figures(result, mpl) + model_figures(result, mpl)


BUILDERS = {
    "init": init_figures,
    "propagate": _propagate_and_model_figures,
    "train": train_figures,
    "sweep": sweep_figures,
}
"""The commands whose results have figures, and what draws them."""


def figures(result: Any) -> list[tuple[str, str, Any]]:
    """The figures of one typed result as ``(name, title, figure)`` triples.

    ``name`` is a filesystem-safe slug, unique within the result. Results without figures
    (``schemes``, ``check``, ``gain``) give none.

    Raises:
        PlotsUnavailable: matplotlib is not installed.
    """
    if result.command not in BUILDERS:
        return []
    mpl = load_matplotlib()
    drawn = BUILDERS[result.command](result, mpl)
    names = unique_name([name for name, _, _ in drawn])
    return [(name, title, fig) for name, (_, title, fig) in zip(names, drawn, strict=True)]
