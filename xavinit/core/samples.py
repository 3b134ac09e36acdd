"""Summaries of a layer's values: exact percentiles, histograms, and the bins layers share.

:func:`percentiles` is ``numpy.percentile`` bit for bit without partitioning every value;
:func:`histograms` is ``numpy.histogram``'s counts for many layers in one pass; a network's
hidden layers share one set of bins (:func:`shared_edges`) so that they compare at a glance, as
in Glorot and Bengio (2010), figures 6 and 7.
"""

from __future__ import annotations

import math

import numpy as np

from xavinit.core.activations import Activation

__all__ = [
    "HISTOGRAM_BLOCK",
    "PERCENTILE_SUBSAMPLE",
    "bins_of",
    "histograms",
    "percentiles",
    "shared_edges",
]

HISTOGRAM_BLOCK = 1 << 15
"""Values :func:`histograms` counts in one pass (its buffers stay in cache)."""


def histograms(samples: list[np.ndarray], edges: list[np.ndarray]) -> list[list[int]]:
    """Counts of each sample over its ``edges``, all layers that share one ``edges`` array in one
    pass: ``numpy.histogram(sample, bins, range=(edges[0], edges[-1]))``'s counts exactly.

    ``np.histogram`` bins a value ``x`` of ``[edges[0], edges[-1]]`` (in float64) into the ``i``
    with ``edges[i] <= x < edges[i + 1]``, the last bin closed, and drops the others (NaN
    included); ``searchsorted`` on the same edges gives the same ``i``, and so does
    :func:`bins_of`, faster. Small layers are counted together (one call per layer cost more
    than the layer's own statistics on a deep stack of small layers), large ones in slices of
    :data:`HISTOGRAM_BLOCK` values, every block through the same reused buffers
    (:class:`_BinBuffers`): fresh megabyte temporaries per pass cost more than the counting.
    """
    counts: list[np.ndarray] = [np.zeros(grid.size - 1, dtype=np.intp) for grid in edges]
    groups: dict[int, list[int]] = {}
    for k, grid in enumerate(edges):
        groups.setdefault(id(grid), []).append(k)
    buffers = _BinBuffers(HISTOGRAM_BLOCK)
    for members in groups.values():
        grid = edges[members[0]]
        exact = guesses_exactly(grid)
        block: list[tuple[int, np.ndarray]] = []
        size = 0
        for k in members:
            flat = samples[k].ravel()
            for start in range(0, flat.size, HISTOGRAM_BLOCK):
                piece = flat[start : start + HISTOGRAM_BLOCK]
                if size + piece.size > HISTOGRAM_BLOCK and block:
                    _count_block(block, grid, exact, counts, buffers)
                    block, size = [], 0
                block.append((k, piece))
                size += piece.size
        if block:
            _count_block(block, grid, exact, counts, buffers)
    return [row.tolist() for row in counts]


class _BinBuffers:
    """The scratch arrays of :func:`_count_block`, made once for a :func:`histograms` call."""

    def __init__(self, size: int) -> None:
        self.values = np.empty(size, dtype=np.float64)
        self.guess = np.empty(size, dtype=np.float64)
        self.fine = np.empty(size, dtype=np.int32)  # cast from float64 8x faster than intp
        self.index = np.empty(size, dtype=np.intp)  # what bincount takes without a copy
        self.edge = np.empty(size, dtype=np.float64)
        self.low = np.empty(size, dtype=bool)
        self.high = np.empty(size, dtype=bool)


def _count_block(
    block: list[tuple[int, np.ndarray]],
    grid: np.ndarray,
    guessed_exactly: bool,
    counts: list[np.ndarray],
    buffers: _BinBuffers,
) -> None:
    """Add the bin counts of each ``(layer, values)`` of ``block`` (at most the buffers' size
    in all) over ``grid`` to ``counts[layer]``."""
    bins = grid.size - 1
    size = sum(piece.size for _, piece in block)
    values = buffers.values[:size]
    if len(block) == 1:
        np.copyto(values, block[0][1])
    elif size:
        np.concatenate([piece for _, piece in block], out=values)
    inside = buffers.low[:size]
    np.greater_equal(values, grid[0], out=inside)
    above = buffers.high[:size]
    np.less_equal(values, grid[-1], out=above)
    inside &= above
    everything = bool(inside.all())
    picked = values if everything else values[inside]
    index = bins_of(picked, grid, None if not everything else buffers, guessed_exactly)
    if len(block) > 1:
        layer = np.repeat(np.arange(len(block)), [piece.size for _, piece in block])
        index = index + (layer if everything else layer[inside]) * bins  # intp
    table = np.bincount(index, minlength=len(block) * bins).reshape(len(block), bins)
    for (k, _), row in zip(block, table, strict=True):
        counts[k] += row


def bins_of(
    values: np.ndarray,
    grid: np.ndarray,
    buffers: _BinBuffers | None = None,
    guessed_exactly: bool | None = None,
) -> np.ndarray:
    """The bin ``i`` of each value of ``[grid[0], grid[-1]]`` with ``grid[i] <= x < grid[i + 1]``
    (the last bin closed): ``min(searchsorted(grid, x, "right") - 1, bins - 1)`` exactly, for
    any increasing ``grid``.

    The guess ``g(x) = (x - grid[0]) bins / span`` is right for evenly spaced edges but for
    rounding. It is computed in steps that round monotonically, in units of 1/1024 bin
    (``G = trunc(1024 g)``, an exact power-of-two scaling). When every edge ``j``'s own
    ``1024 g`` lies within 1 of ``1024 j`` (:func:`guesses_exactly`: any ``linspace`` grid), a
    value with ``G = 1024 i + r``, ``1 <= r <= 1022``, is in bin ``i``: ``x <= grid[i]`` would
    give ``1024 g(x) <= 1024 g(grid[i]) < 1024 i + 1``, and ``x >= grid[i + 1]`` would give
    ``1024 g(x) > 1024 i + 1023``. Only the rest (about 2 in 1024 values, and the top edge) are
    compared with the edges themselves, each round moving those it misplaced one bin, as every
    value is for an uneven grid (a binary search cost 50 ns a value, this about 1.5).
    ``buffers`` (at least ``values.size`` long) hold the temporaries, and the result, when
    given; ``guessed_exactly`` is :func:`guesses_exactly` of ``grid`` when known."""
    bins = grid.size - 1
    scale = _scale(grid)
    if not math.isfinite(scale):  # a span past float64's range: no guess to correct
        return np.minimum(np.searchsorted(grid, values, side="right") - 1, bins - 1)
    n = values.size
    if buffers is None:
        buffers = _BinBuffers(n)
    index = buffers.index[:n]
    guess = np.subtract(values, grid[0], out=buffers.guess[:n])  # >= 0
    if guessed_exactly is None:
        guessed_exactly = guesses_exactly(grid)
    if not guessed_exactly:
        guess *= scale
        np.minimum(guess, float(bins - 1), out=guess)
        np.copyto(index, guess, casting="unsafe")  # truncation
        _correct(values, grid, index, buffers)
        return index
    guess *= scale * _FINE
    fine = buffers.fine[:n]
    np.copyto(fine, guess, casting="unsafe")  # truncation: G
    np.right_shift(fine, _FINE_BITS, out=index)
    fine += 1
    np.bitwise_and(fine, _FINE - 1, out=fine)  # r + 1 (mod 1024): 0 or 1 near a bin's end
    near = np.less_equal(fine, 1, out=buffers.low[:n])
    if near.any():
        where = np.flatnonzero(near)
        few = np.minimum(index[where], bins - 1)
        _correct(values[where], grid, few, _BinBuffers(where.size))
        index[where] = few
    return index


_FINE_BITS = 10
_FINE = 1 << _FINE_BITS
""":func:`bins_of` guesses in units of ``1 / _FINE`` bin."""


def _scale(grid: np.ndarray) -> float:
    """``bins / span`` of ``grid``, or ``inf`` when the span is not a positive float."""
    span = float(grid[-1]) - float(grid[0])
    return (grid.size - 1) / span if math.isfinite(span) and span > 0.0 else math.inf


def guesses_exactly(grid: np.ndarray) -> bool:
    """Whether each edge ``j`` of ``grid`` has its :func:`bins_of` guess ``1024 g`` within 1 of
    ``1024 j``, computed as the values' guesses are (and the guesses fit an int32)."""
    scale = _scale(grid)
    bins = grid.size - 1
    if not math.isfinite(scale) or (bins + 1) * _FINE >= 2**31:
        return False
    guess = np.subtract(grid, grid[0])
    guess *= scale * _FINE
    return bool(np.all(np.abs(guess - _FINE * np.arange(grid.size, dtype=np.float64)) < 1.0))


def _correct(values: np.ndarray, grid: np.ndarray, index: np.ndarray, buffers: _BinBuffers) -> None:
    """Move each ``index`` (a bin of ``grid``) one bin at a time until ``values`` lie in it,
    comparing with the edges themselves (``buffers`` at least ``values.size`` long)."""
    n = values.size
    lower = np.ascontiguousarray(grid[:-1])
    upper = grid[1:].copy()
    upper[-1] = math.inf  # the last bin is closed: nothing moves up out of it
    edge, down, up = buffers.edge[:n], buffers.low[:n], buffers.high[:n]
    while True:
        np.less(values, np.take(lower, index, mode="clip", out=edge), out=down)
        np.greater_equal(values, np.take(upper, index, mode="clip", out=edge), out=up)
        if not (down.any() or up.any()):
            return
        index -= down
        index += up


def percentiles(values: np.ndarray, q: tuple[float, ...]) -> list[float]:
    """``numpy.percentile(values, q)`` (linear interpolation, method 7 of Hyndman and Fan,
    1996) bit for bit, for finite ``values`` of one dimension, without partitioning them all
    (up to the sign of a zero: which of equal 0.0 and -0.0 numpy's partition leaves at a rank
    is its algorithm's choice).

    With ``v = (n - 1) q / 100``, ``i = floor(v)`` (``-1``, the last, when ``v >= n - 1``) and
    ``g = v - i``, percentile ``q`` is ``a + (b - a) g``, or ``b - (b - a)(1 - g)`` when
    ``g >= 1/2``, where ``a, b`` are the order statistics ``i`` and ``i + 1``: numpy's own
    arithmetic. The order statistics of a tail percentile lie among the values at or beyond a
    threshold read from an evenly strided subsample, a few percent of them, whose partition
    costs a tenth of the whole one (2.3 ms for 131,072 values); when the threshold leaves too
    few (a 5-sigma chance for i.i.d. values) the whole array is partitioned, so the answer
    never depends on the subsample.
    """
    n = values.size
    if n == 0:
        return [float(v) for v in np.percentile(values, q)]
    virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
    previous = np.floor(virtual)
    following = previous + 1
    last = virtual >= n - 1
    previous[last] = -1
    following[last] = -1
    lower, upper = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - lower
    ranks = sorted({*(lower % n).tolist(), *(upper % n).tolist()})
    found = dict(zip(ranks, _order_statistics(values, ranks), strict=True))
    a = np.array([found[r] for r in (lower % n).tolist()], dtype=values.dtype)
    b = np.array([found[r] for r in (upper % n).tolist()], dtype=values.dtype)
    diff = b - a
    result = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=result, where=gamma >= 0.5, casting="unsafe")
    return [float(v) for v in result]


PERCENTILE_SUBSAMPLE = 4096
"""Values of the strided subsample from which :func:`percentiles` reads its thresholds."""


def _order_statistics(values: np.ndarray, ranks: list[int]) -> list[float]:
    """The values of the increasing 0-based ``ranks`` in sorted ``values`` (finite, 1-D)."""
    n = values.size
    step = n // PERCENTILE_SUBSAMPLE
    if step < 8:  # small: partition it all
        return np.partition(values, ranks)[ranks].tolist()
    sub = values[::step].copy()
    m = sub.size
    sides = [[r for r in ranks if r < n // 2], [r for r in ranks if r >= n // 2]]
    reach = [sides[0][-1] + 1 if sides[0] else 0, n - sides[1][0] if sides[1] else 0]
    picks = []  # the subsample ranks of the thresholds, with room for chance
    for count in reach:
        expected = count * m / n
        picks.append(min(m - 1, int(expected + 5.0 * math.sqrt(expected + 1.0) + 8.0)))
    sub.partition([picks[0], m - 1 - picks[1]])
    found: list[float] = []
    for side, wanted in enumerate(sides):
        if not wanted:
            continue
        if side == 0:
            kept = values[values <= sub[picks[0]]]
            offset = 0
        else:
            kept = values[values >= sub[m - 1 - picks[1]]]
            offset = n - kept.size
        if kept.size < reach[side]:  # the threshold fell short: the whole array
            return np.partition(values, ranks)[ranks].tolist()
        local = [r - offset for r in wanted]
        found.extend(np.partition(kept, local)[local].tolist())
    return found


def shared_edges(
    activation: Activation,
    activation_samples: list[np.ndarray],
    gradient_samples: list[np.ndarray],
    weight_gradient_samples: list[np.ndarray],
    bins: int,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Histogram bins shared by all hidden layers, so that layers compare at a glance.

    Activations use the activation's range when it is bounded, else the hidden layers' joint
    range; gradients and weight gradients a symmetric range over all hidden layers. The output
    layer (logits and their gradients) gets its own bins.
    """

    def span(samples: list[np.ndarray], symmetric: bool) -> np.ndarray:
        lo = min(float(np.min(x)) for x in samples)
        hi = max(float(np.max(x)) for x in samples)
        if symmetric:
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, bins + 1)

    hidden_acts, hidden_grads = activation_samples[:-1], gradient_samples[:-1]
    hidden_dw = weight_gradient_samples[:-1]
    limits = activation.limits
    if hidden_acts and limits is not None and all(map(math.isfinite, limits)):
        act_edges = np.linspace(limits[0], limits[1], bins + 1)
    else:
        act_edges = span(hidden_acts or activation_samples, False)
    grad_edges = span(hidden_grads or gradient_samples, True)
    dw_edges = span(hidden_dw or weight_gradient_samples, True)
    shared = [(act_edges, grad_edges, dw_edges)] * len(hidden_acts)
    top = (
        span(activation_samples[-1:], False),
        span(gradient_samples[-1:], True),
        span(weight_gradient_samples[-1:], True),
    )
    return [*shared, top]
