"""Figures of results (the paper's figures), drawn with matplotlib's Agg backend.

matplotlib is an optional extra (``pip install 'xavinit[plot]'``): it is imported inside the
functions that draw, so importing this module works without it, and drawing without it raises
:class:`PlotsUnavailable`. Figures are built as ``matplotlib.figure.Figure`` objects on an Agg
canvas, never through pyplot, so no global state is touched and nothing needs a display.

What each kind of result gives (names are unique within one result):

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

A scheme has the same colour in every figure (:func:`scheme_colour`, from the canonical name
each run records); layers within a panel go
along the viridis colormap, the same layer in the same colour in every panel. Networks with more
than :data:`MAX_LAYER_LINES` hidden layers show that many layers, evenly spaced, in line plots.

Which file holds what:

- ``__init__.py`` (this file): the public API, re-exported.
- ``base.py``: the lazy matplotlib shim (:class:`PlotsUnavailable`, :func:`plots_available`),
  the colours (:func:`scheme_colour`, layer colours) and the small helpers every figure uses
  (number parsing, log axes, grouping, new figures, titles, the network's name, slugs).
- ``init.py``, ``propagate.py``, ``propagate_model.py``, ``train.py``, ``sweep.py``: the
  figures of each command's results (typed results: a run's fields are its attributes).
- ``draw.py``: :func:`figures`, which picks the figures of a result by its command.
- ``files.py``: figures to bytes and to files (:func:`figure_bytes`, :func:`write_figures`).

Imports go one way, down this list from ``files.py``: no module imports the package or a
module listed after it.
"""

from __future__ import annotations

from xavinit.render.plots.base import (
    INSTALL_HINT,
    MAX_LAYER_LINES,
    SCHEME_COLOURS,
    PlotsUnavailable,
    plots_available,
    scheme_colour,
)
from xavinit.render.plots.draw import figures
from xavinit.render.plots.files import FORMATS, figure_bytes, write_figures

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
