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
  Runs that failed (no layers) are left out. ``propagate --model`` gives
  ``propagate-model-<model>``, the signal propagation plot (Brock, De and Smith 2021) of each
  model: per module in network order, the average channel squared mean, the average channel
  variance (with the mean-field predictions), the residual branch and skip variances of the
  blocks, and the gradient variance at each module's output relative to the top's.
- ``train``, per activation: ``train-<activation>-mean-std`` (figure 2),
  ``-p98-std`` (figure 3), ``-weight-grad-std`` (figure 9, log scale) and
  ``-final-histograms`` (figure 4), one panel per scheme and one line per hidden layer; and
  ``train-test-error`` (figures 11 and 12): test error and training cost of every run. A run
  that diverged shows what it recorded before it diverged.

- ``sweep``, per dataset: ``sweep-<dataset>-test-error``, test error against updates (log
  axis) of each model at its chosen learning rate, the paper's Table 1 value as a dotted line;
  and ``sweep-<dataset>-learning-rates``, one panel per model and a line per learning rate.

A scheme has the same colour in every figure (:func:`scheme_colour`); layers within a panel go
along the viridis colormap, the same layer in the same colour in every panel. Networks with more
than :data:`MAX_LAYER_LINES` hidden layers show that many layers, evenly spaced, in line plots.

Which file holds what:

- ``__init__.py`` (this file): the public API, re-exported, and :func:`figures`, which picks the
  figures of a document by its command.
- ``base.py``: the lazy matplotlib shim (:class:`PlotsUnavailable`, :func:`plots_available`),
  the colours (:func:`scheme_colour`, layer colours) and the small helpers every figure uses
  (number parsing, log axes, grouping, new figures, titles, the network's name).
- ``files.py``: figures to bytes and to files (:func:`figure_bytes`, :func:`write_figures`),
  slugs and unique names.
- ``init.py``, ``propagate.py``, ``train.py``, ``sweep.py``: the figures of each command's
  results.
"""

from __future__ import annotations

from typing import Any

from xavinit.render.plots.base import (
    INSTALL_HINT,
    MAX_LAYER_LINES,
    SCHEME_COLOURS,
    PlotsUnavailable,
    _matplotlib,
    plots_available,
    scheme_colour,
)
from xavinit.render.plots.files import FORMATS, _unique, figure_bytes, write_figures
from xavinit.render.plots.init import _init_figures
from xavinit.render.plots.propagate import _propagate_figures
from xavinit.render.plots.propagate_model import _model_figures
from xavinit.render.plots.sweep import _sweep_figures
from xavinit.render.plots.train import _train_figures

# ----------------------------------------------------------------------------- public entry points


def figures(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The figures of one result document as ``(name, title, figure)`` triples.

    ``name`` is a filesystem-safe slug, unique within the document.

    Raises:
        PlotsUnavailable: matplotlib is not installed.

    Results without figures (``schemes``) give none.
    """
    builders = {
        "init": _init_figures,
        "propagate": lambda d, mpl: _propagate_figures(d, mpl) + _model_figures(d, mpl),
        "train": _train_figures,
        "sweep": _sweep_figures,
    }
    if document["command"] not in builders:
        return []
    command = document["command"]
    mpl = _matplotlib()
    drawn = builders[command](document, mpl)
    names = _unique([name for name, _, _ in drawn])
    return [(name, title, fig) for name, (_, title, fig) in zip(names, drawn, strict=True)]


__all__ = [
    "FORMATS",
    "INSTALL_HINT",
    "MAX_LAYER_LINES",
    "SCHEME_COLOURS",
    "PlotsUnavailable",
    "figure_bytes",
    "figures",
    "plots_available",
    "scheme_colour",
    "write_figures",
]
