"""``xavinit propagate``: activations forward and gradients backward at initialization.

For each (scheme, activation) one network is drawn (biases 0, or ``N(0, bias_var)`` with
``--bias-var``; softmax output) and a batch of
inputs pushed through it; per layer the result holds the measured statistics and, beside them,
the paper's linear-regime prediction (eq. 5-7) and the mean-field prediction (Poole et al. 2016)
from the same ``Var[W]``. Glorot and Bengio (2010), section 4 and figures 6, 7 and 8.

Conventions: layer ``k`` (1-based) is the k-th weight matrix and what it produces. Hidden layers
report their post-activations ``z^k = f(s^k)``; the output layer reports the logits ``s^L``.
``backprop_var`` is the variance of the per-example gradient ``dC_n/ds^k`` (the cost of one
example, so it does not depend on the batch size); ``weight_grad_var`` is the variance of the
entries of ``dC/dW^k`` for the batch-mean cost, the gradient SGD would apply. Its predictions
carry the cross-example term (:func:`xavinit.core.theory.mean_field_weight_grad_var`): with a
non-centred activation the examples' activations share their mean, and with softmax NLL the
output errors of different examples are correlated, so the batch mean does not average the
gradient down by ``1/B``. Where a prediction is an approximation beyond finite width, or does
not apply, the run's ``prediction_notes`` says so (and a prediction that does not apply is
``None``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.config import PropagateConfig
from xavinit.core.activations import Activation, get_activation
from xavinit.core.backends import get_backend, to_numpy
from xavinit.core.network import Buffers, backward, forward
from xavinit.core.roles import describe, select_names
from xavinit.core.schemes import Scheme, get_scheme
from xavinit.core.stats import scan
from xavinit.core.streams import INPUT_KEY, LABEL_KEY, bias_rng, input_rng, layer_rng
from xavinit.core.theory import (
    linear_activation_var,
    linear_backprop_var,
    linear_regime_applies,
    linear_weight_grad_var,
    mean_field_weight_grad_var,
)
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.formats import open_tensors
from xavinit.resources import blas_thread_count, require_memory
from xavinit.results import PropagateLayer, PropagateResult, PropagateRun

STAT_SAMPLE = 1 << 17
"""Percentiles, histograms and the saturated fraction use at most this many values per layer,
taken at an even stride (131072: the 2nd/98th percentiles to about 0.1% of the range and the
saturated fraction to a standard error below 0.14%, at a tenth of the cost of all 10^6 values
of a paper-sized layer). Means and variances always use every value."""


def draw_inputs(config: PropagateConfig, trial: int, dtype: np.dtype) -> np.ndarray:
    """``U[-1, 1]`` (like pixels scaled to [-1, 1]) or ``N(0, 1)`` inputs, ``(batch, n_0)``."""
    rng = input_rng(config.seed, trial, INPUT_KEY)
    x = np.empty((config.batch, config.layers[0]), dtype=dtype)
    if config.input == "uniform":
        rng.random(dtype=dtype, out=x)
        x *= 2.0
        x -= 1.0
    else:
        rng.standard_normal(dtype=dtype, out=x)
    return x


def draw_weights(
    scheme: Scheme, widths: tuple[int, ...], seed: int, trial: int, dtype: np.dtype
) -> list[np.ndarray]:
    """One network's weights; layer k uses the same generator as ``xavinit init``'s layer k."""
    return [
        scheme.sample((widths[k], widths[k + 1]), layer_rng(seed, trial, k + 1), dtype=dtype)
        for k in range(len(widths) - 1)
    ]


def draw_biases(
    widths: tuple[int, ...], bias_var: float, seed: int, trial: int, dtype: np.dtype
) -> list[np.ndarray] | None:
    """One network's biases ``b^k ~ N(0, bias_var)``, ``(n_k,)`` per layer, or ``None`` (zero
    biases, nothing drawn) when ``bias_var`` is 0 (Poole et al., 2016)."""
    if bias_var == 0.0:
        return None
    std = math.sqrt(bias_var)
    biases = []
    for k in range(len(widths) - 1):
        b = bias_rng(seed, trial, k + 1).standard_normal(widths[k + 1], dtype=dtype)
        b *= dtype.type(std)
        biases.append(b)
    return biases


def top_gradient(config: PropagateConfig, trial: int, probs: np.ndarray) -> np.ndarray:
    """Per-example ``dC_n/ds^L``: ``P - onehot(y)`` for NLL with random labels, or N(0, 1)."""
    rng = input_rng(config.seed, trial, LABEL_KEY)
    if config.backward == "unit":
        return rng.standard_normal(probs.shape, dtype=probs.dtype)
    labels = rng.integers(0, probs.shape[1], size=probs.shape[0])
    grad = probs.copy()
    grad[np.arange(probs.shape[0]), labels] -= 1.0
    return grad


def jacobian_singular_values(
    weights: np.ndarray, derivative: np.ndarray, samples: int
) -> tuple[float, float]:
    """Mean singular value of ``J = W diag(f'(s))`` and mean largest/smallest ratio.

    ``J`` is ``(n_{k-1}, n_k)`` for one example (Glorot and Bengio 2010, eq. 17, row convention).
    Its singular values are the square roots of the eigenvalues of the smaller Gram matrix:
    ``D (W^T W) D`` when ``n_{k-1} >= n_k``, else ``W D^2 W^T``; ``W^T W`` is formed once per
    layer, so an example costs one symmetric eigenvalue problem; the examples' problems are
    solved in one stacked call (a small layer costs microseconds, not a Python loop).
    """
    fan_in, fan_out = weights.shape
    w = weights.astype(np.float64)
    rows = derivative[:samples].astype(np.float64)  # (examples, n_k)
    if fan_in >= fan_out:
        stacked = (w.T @ w)[None] * (rows[:, :, None] * rows[:, None, :])
    else:
        scaled = w[None] * rows[:, None, :]  # W diag(f') per example
        stacked = scaled @ scaled.transpose(0, 2, 1)
    sv = np.sqrt(np.clip(np.linalg.eigvalsh(stacked), 0.0, None))  # (examples, n), ascending
    smallest, largest = sv[:, 0], sv[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(smallest > 0, largest / smallest, math.inf)
    return float(np.mean(sv.mean(axis=1))), float(np.mean(ratios))


@dataclass
class _Measured:
    """One trial's per-layer numbers (lists indexed by layer - 1)."""

    layers: list[dict[str, object]]
    overflow_layer: int | None
    input_second_moment: float
    input_cross_moment: float
    top_backprop_var: float
    top_cross_moment: float


def cross_moment(batch: np.ndarray) -> float:
    """``E[a_b a_b']`` over pairs of examples ``b != b'`` (rows) and units (columns):
    ``(|sum_b a_b|^2 - sum_b |a_b|^2) / (B (B - 1) n)``, accumulated in float64; 0 for one row.
    """
    rows, units = batch.shape
    if rows < 2:
        return 0.0
    total = batch.sum(axis=0, dtype=np.float64)
    flat = batch.reshape(-1).astype(np.float64, copy=False)
    return float(total @ total - flat @ flat) / (rows * (rows - 1) * units)


HISTOGRAM_BLOCK = 1 << 14
"""Values :func:`_histograms` counts in one pass (its buffers stay in cache)."""


def _histograms(samples: list[np.ndarray], edges: list[np.ndarray]) -> list[list[int]]:
    """Counts of each sample over its ``edges``, all layers that share one ``edges`` array in one
    pass: ``numpy.histogram(sample, bins, range=(edges[0], edges[-1]))``'s counts exactly.

    ``np.histogram`` bins a value ``x`` of ``[edges[0], edges[-1]]`` (in float64) into the ``i``
    with ``edges[i] <= x < edges[i + 1]``, the last bin closed, and drops the others (NaN
    included); ``searchsorted`` on the same edges gives the same ``i``, and so does
    :func:`_bins_of`, faster. Small layers are counted together (one call per layer cost more
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
        block: list[tuple[int, np.ndarray]] = []
        size = 0
        for k in members:
            flat = samples[k].ravel()
            for start in range(0, flat.size, HISTOGRAM_BLOCK):
                piece = flat[start : start + HISTOGRAM_BLOCK]
                if size + piece.size > HISTOGRAM_BLOCK and block:
                    _count_block(block, grid, counts, buffers)
                    block, size = [], 0
                block.append((k, piece))
                size += piece.size
        if block:
            _count_block(block, grid, counts, buffers)
    return [row.tolist() for row in counts]


class _BinBuffers:
    """The scratch arrays of :func:`_count_block`, made once for a :func:`_histograms` call."""

    def __init__(self, size: int) -> None:
        self.values = np.empty(size, dtype=np.float64)
        self.guess = np.empty(size, dtype=np.float64)
        self.index = np.empty(size, dtype=np.int32)  # bins < 2^31; cast 8x faster than intp
        self.edge = np.empty(size, dtype=np.float64)
        self.low = np.empty(size, dtype=bool)
        self.high = np.empty(size, dtype=bool)


def _count_block(
    block: list[tuple[int, np.ndarray]],
    grid: np.ndarray,
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
    index = _bins_of(picked, grid, None if not everything else buffers)
    if len(block) > 1:
        layer = np.repeat(np.arange(len(block)), [piece.size for _, piece in block])
        index = index + (layer if everything else layer[inside]) * bins  # intp
    table = np.bincount(index, minlength=len(block) * bins).reshape(len(block), bins)
    for (k, _), row in zip(block, table, strict=True):
        counts[k] += row


def _bins_of(
    values: np.ndarray, grid: np.ndarray, buffers: _BinBuffers | None = None
) -> np.ndarray:
    """The bin ``i`` of each value of ``[grid[0], grid[-1]]`` with ``grid[i] <= x < grid[i + 1]``
    (the last bin closed): ``min(searchsorted(grid, x, "right") - 1, bins - 1)`` exactly, for
    any increasing ``grid``. The guess ``(x - grid[0]) bins / span`` is right for evenly spaced
    edges but for rounding; each round moves the values it misplaced one bin, by comparison
    with the edges themselves (a binary search cost 50 ns a value, this about 5). ``buffers``
    (at least ``values.size`` long) hold the temporaries, and the result, when given."""
    bins = grid.size - 1
    span = float(grid[-1]) - float(grid[0])
    scale = bins / span if math.isfinite(span) and span > 0.0 else math.inf
    if not math.isfinite(scale):  # a span past float64's range: no guess to correct
        return np.minimum(np.searchsorted(grid, values, side="right") - 1, bins - 1)
    n = values.size
    if buffers is None:
        buffers = _BinBuffers(n)
    guess = np.subtract(values, grid[0], out=buffers.guess[:n])  # >= 0
    guess *= scale
    np.minimum(guess, float(bins - 1), out=guess)
    index = buffers.index[:n]
    np.copyto(index, guess, casting="unsafe")  # truncation
    lower = np.ascontiguousarray(grid[:-1])
    upper = grid[1:].copy()
    upper[-1] = math.inf  # the last bin is closed: nothing moves up out of it
    edge, down, up = buffers.edge[:n], buffers.low[:n], buffers.high[:n]
    while True:
        np.less(values, np.take(lower, index, mode="clip", out=edge), out=down)
        np.greater_equal(values, np.take(upper, index, mode="clip", out=edge), out=up)
        if not (down.any() or up.any()):
            return index
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


@dataclass(frozen=True)
class Stack:
    """Where a network's weights come from: a scheme, drawn anew for each trial, or the fixed
    matrices of a file (``propagate --weights``), each ``(fan_in, fan_out)``."""

    label: str
    scheme: Scheme | None = None
    fixed: tuple[np.ndarray, ...] = ()

    def weights(
        self, widths: tuple[int, ...], seed: int, trial: int, dtype: np.dtype
    ) -> list[np.ndarray]:
        """One network's weights."""
        if self.scheme is None:
            return list(self.fixed)
        return draw_weights(self.scheme, widths, seed, trial, dtype)

    def variances(self, widths: tuple[int, ...]) -> list[float]:
        """Var[W] of each layer: the scheme's, or each fixed matrix's mean of squares."""
        if self.scheme is None:
            return [scan(w)[0].mean_square for w in self.fixed]
        return [self.scheme.variance(widths[k], widths[k + 1]) for k in range(len(widths) - 1)]


def measure_network(
    config: PropagateConfig,
    scheme: Scheme | Stack,
    activation: Activation,
    trial: int,
    edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    buffers: Buffers | None = None,
) -> tuple[_Measured, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Draw one network (or take a file's) and a batch, run forward and backward (into
    ``buffers`` when given), and measure every layer."""
    dtype = np.dtype(config.dtype)
    widths = config.layers
    n_layers = len(widths) - 1
    stack = scheme if isinstance(scheme, Stack) else Stack(scheme.spec, scheme)
    weights = stack.weights(widths, config.seed, trial, dtype)
    biases = draw_biases(widths, config.bias_var, config.seed, trial, dtype)
    x = draw_inputs(config, trial, dtype)
    input_moments = scan(x)[0]
    input_cross = cross_moment(x)
    backend = get_backend(config.backend, config.device)
    placed = [backend.asarray(w) for w in weights]
    placed_biases = None if biases is None else [backend.asarray(b) for b in biases]
    with np.errstate(all="ignore"):
        cache = forward(backend.asarray(x), placed, placed_biases, activation, buffers)
    outputs = [to_numpy(out) for out in (*cache.hidden, cache.logits)]
    forward_scans = [scan(out, STAT_SAMPLE) for out in outputs]  # one pass per layer
    overflow = next((k + 1 for k, (m, _) in enumerate(forward_scans) if not m.finite), None)
    if overflow is not None:
        empty = _Measured([], overflow, input_moments.mean_square, input_cross, math.nan, math.nan)
        return empty, edges or []
    grad_top = top_gradient(config, trial, to_numpy(cache.probs))
    with np.errstate(all="ignore"):
        grads = backward(
            cache,
            placed,
            activation,
            output_grad=backend.asarray(grad_top),
            bias_gradients=False,
            buffers=buffers,
        )
    batch = config.batch
    scanned = []
    for k in range(n_layers):
        act, act_sample = forward_scans[k]
        ds, ds_sample = scan(to_numpy(grads.ds[k]), STAT_SAMPLE)
        dw, dw_sample = scan(to_numpy(grads.dw[k]), STAT_SAMPLE)
        if not (ds.finite and dw.finite):
            empty = _Measured([], k + 1, input_moments.mean_square, input_cross, math.nan, math.nan)
            return empty, edges or []
        dw_sample = dw_sample.astype(np.float64) / batch  # of the batch-mean cost
        scanned.append((act, act_sample, ds, ds_sample, dw, dw_sample))
    if edges is None:
        edges = shared_edges(
            activation,
            [item[1] for item in scanned],
            [item[3] for item in scanned],
            [item[5] for item in scanned],
            config.bins,
        )
    histograms = [
        _histograms([item[1] for item in scanned], [grids[0] for grids in edges]),
        _histograms([item[3] for item in scanned], [grids[1] for grids in edges]),
        _histograms([item[5] for item in scanned], [grids[2] for grids in edges]),
    ]
    rows: list[dict[str, object]] = []
    for k, (act, act_sample, ds, _, dw, _) in enumerate(scanned):
        hidden = k < n_layers - 1
        out = outputs[k]
        p2, p98 = percentiles(act_sample, (2.0, 98.0))
        row: dict[str, object] = {
            "activation_mean": act.mean,
            "activation_var": act.variance,
            "activation_std": math.sqrt(act.variance),
            "activation_second_moment": act.mean_square,
            "activation_p2": float(p2),
            "activation_p98": float(p98),
            "saturated_fraction": (
                float(np.count_nonzero(activation.saturated(act_sample))) / act_sample.size
                if hidden
                else None
            ),
            "backprop_var": ds.variance,
            # dC/dW of the batch-mean cost is (z^{k-1})^T (dC_n/ds^k) / B.
            "weight_grad_var": dw.variance / batch**2,
            "activation_histogram": histograms[0][k],
            "backprop_histogram": histograms[1][k],
            "weight_grad_histogram": histograms[2][k],
        }
        if hidden and config.jacobian_samples:
            pre = cache.s[k]
            derivative = activation.derivative(None if pre is None else to_numpy(pre), out)
            sv_mean, sv_ratio = jacobian_singular_values(
                weights[k], derivative, config.jacobian_samples
            )
            row["jacobian_sv_mean"] = sv_mean
            row["jacobian_sv_ratio"] = sv_ratio
        rows.append(row)
    top = rows[-1]["backprop_var"]
    assert isinstance(top, float)
    measured = _Measured(
        rows, None, input_moments.mean_square, input_cross, top, cross_moment(grad_top)
    )
    return measured, edges


@dataclass(frozen=True)
class MeasuredMoments:
    """What the predictions take from the measurement, averaged over trials.

    Attributes:
        input_second_moment: ``E[x^2]``.
        input_cross_moment: ``E[x_b x_b']``, ``b != b'``.
        top_backprop_var: ``Var[dC_n/ds^L]`` (the top gradient's mean is 0).
        top_cross_moment: ``E[delta^L_b delta^L_b']``, ``b != b'``: the correlation of the
            output errors of two examples.
    """

    input_second_moment: float
    input_cross_moment: float
    top_backprop_var: float
    top_cross_moment: float


def predictions(
    config: PropagateConfig,
    scheme: Scheme | Stack,
    activation: Activation,
    moments: MeasuredMoments,
) -> list[dict[str, Any]]:
    """Linear-regime and mean-field predictions per layer from the scheme's ``Var[W]``.

    The linear regime's are ``None`` where it does not apply
    (:func:`xavinit.core.theory.linear_regime_applies`).
    """
    widths = config.layers
    stack = scheme if isinstance(scheme, Stack) else Stack(scheme.spec, scheme)
    weight_vars = stack.variances(widths)
    sb2 = config.bias_var
    mf = mean_field_weight_grad_var(
        moments.input_second_moment, moments.input_cross_moment, widths, weight_vars,
        activation, moments.top_backprop_var, moments.top_cross_moment, config.batch, sb2,
    )  # fmt: skip
    forward_mf = mf.forward
    assert forward_mf is not None
    linear = linear_regime_applies(activation)
    lin_act = linear_activation_var(widths, weight_vars, moments.input_second_moment, sb2)
    lin_back = linear_backprop_var(widths, weight_vars, moments.top_backprop_var)
    lin_dw = linear_weight_grad_var(
        widths, weight_vars, moments.input_second_moment, moments.top_backprop_var,
        config.batch, moments.input_cross_moment, moments.top_cross_moment, sb2,
    )  # fmt: skip
    n_layers = len(weight_vars)
    rows: list[dict[str, Any]] = []
    for k in range(n_layers):
        hidden = k < n_layers - 1
        rows.append(
            {
                "weight_var": weight_vars[k],
                "predicted_preactivation_var": float(forward_mf.q[k]),
                "predicted_activation_var": float(forward_mf.var[k] if hidden else forward_mf.q[k]),
                "predicted_activation_mean": float(forward_mf.mean[k]) if hidden else 0.0,
                "predicted_backprop_var": float(mf.backprop_var[k]),
                "predicted_weight_grad_var": float(mf.weight_grad_var[k]),
                "linear_activation_var": float(lin_act[k]) if linear else None,
                "linear_backprop_var": float(lin_back[k]) if linear else None,
                "linear_weight_grad_var": float(lin_dw[k]) if linear else None,
            }
        )
    return rows


def prediction_notes(config: PropagateConfig, activation: Activation) -> dict[str, str]:
    """Which predictions are not exact, and why: field name -> one sentence.

    Mean field is exact as the width grows (finite width adds errors of order
    ``1/sqrt(width)``, the trials' spread); what is listed here is approximate beyond that.
    """
    notes: dict[str, str] = {}
    name = activation.spec
    if activation.name != "linear":
        if linear_regime_applies(activation):
            text = (
                f"linear regime (f(s) ~ s, eq. 5-7): first order in Var[s]; {name} bends "
                "away from s as the variance grows"
            )
        else:
            f0 = float(activation.forward(np.array([0.0]))[0])
            slopes = activation.derivative_of(np.array([-1e-9, 1e-9]))
            text = (
                "not applicable, so left out: the linear regime needs f(0) = 0 and f'(0) = 1 "
                f"(section 4.2.1); {name} has f(0) = {f0:.4g}, f'(0-) = {slopes[0]:.4g}, "
                f"f'(0+) = {slopes[1]:.4g}"
            )
        for field_name in (
            "linear_activation_var",
            "linear_backprop_var",
            "linear_weight_grad_var",
        ):
            notes[field_name] = text
    if config.backward == "nll" and config.batch > 1:
        ratio = config.batch / min(config.layers[1:-1] or config.layers[-1:])
        notes["predicted_weight_grad_var"] = (
            "mean field with the cross-example terms; with softmax NLL the output error also "
            "depends on the batch's own activations through the top weights, a term of "
            f"relative order batch/width (here {ratio:.2g}) left out: at batch = width on the "
            "paper's network it adds up to 16% (tanh under he-normal, 42 trials)"
        )
    return notes


def _one(value: Any) -> Any:
    """One trial's field as :func:`_mean_and_spread` gives the mean of several."""
    if isinstance(value, list):
        return [int(v) for v in value]
    return None if value is None else float(value)


def _mean_and_spread(
    trials: list[list[dict[str, object]]],
) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """Average every numeric field over trials; spread is the sample std (0 for one trial)."""
    merged: list[dict[str, Any]] = []
    spreads: list[dict[str, float]] = []
    if len(trials) == 1:  # the mean of one value is itself: no array per field and layer
        for layer in trials[0]:
            merged.append({key: _one(value) for key, value in layer.items()})
            spreads.append({key: 0.0 for key, value in layer.items()
                            if value is not None and not isinstance(value, list)})  # fmt: skip
        return merged, spreads
    for k in range(len(trials[0])):
        row: dict[str, Any] = {}
        spread: dict[str, float] = {}
        for key, first in trials[0][k].items():
            values: list[Any] = [t[k][key] for t in trials]
            if isinstance(first, list):
                row[key] = np.sum(values, axis=0).astype(int).tolist()
            elif first is None:
                row[key] = None
            else:
                numbers = np.array(values, dtype=np.float64)
                with np.errstate(invalid="ignore"):  # a ratio may be inf (a zero singular value)
                    row[key] = float(numbers.mean())
                    spread[key] = float(numbers.std(ddof=1)) if len(values) > 1 else 0.0
        merged.append(row)
        spreads.append(spread)
    return merged, spreads


def run_one(
    config: PropagateConfig,
    scheme: Scheme | Stack,
    activation: Activation,
    buffers: Buffers | None = None,
) -> PropagateRun:
    """All trials of one (scheme, activation) network, merged into one run (a file's stack is
    labelled by its path in ``scheme``). The passes write into ``buffers`` (new ones when not
    given), which a caller running several networks hands to each."""
    buffers = Buffers() if buffers is None else buffers
    label = scheme.label if isinstance(scheme, Stack) else scheme.spec
    name = None if isinstance(scheme, Stack) else scheme.name
    per_trial: list[list[dict[str, object]]] = []
    edges = None
    measured_moments: list[tuple[float, float, float, float]] = []
    for trial in range(config.trials):
        measured, edges = measure_network(config, scheme, activation, trial, edges, buffers)
        if measured.overflow_layer is not None:
            return PropagateRun(
                scheme=label,
                scheme_name=name,
                activation=activation.spec,
                layers=[],
                passed=False,
                overflow_layer=measured.overflow_layer,
                failure=(
                    f"values stopped being finite at layer {measured.overflow_layer} "
                    f"(trial {trial + 1}): the variance overflowed {config.dtype}"
                ),
            )
        per_trial.append(measured.layers)
        measured_moments.append(
            (
                measured.input_second_moment,
                measured.input_cross_moment,
                measured.top_backprop_var,
                measured.top_cross_moment,
            )
        )
    merged, spreads = _mean_and_spread(per_trial)
    moments = MeasuredMoments(*(float(v) for v in np.mean(measured_moments, axis=0)))
    theory = predictions(config, scheme, activation, moments)
    widths = config.layers
    assert edges is not None
    layers = []
    for k, (row, spread, predicted) in enumerate(zip(merged, spreads, theory, strict=True)):
        act_edges, grad_edges, dw_edges = edges[k]
        layers.append(
            PropagateLayer(
                layer=k + 1,
                fan_in=widths[k],
                fan_out=widths[k + 1],
                kind="hidden" if k < len(widths) - 2 else "output",
                activation_mean=float(row["activation_mean"]),
                activation_var=float(row["activation_var"]),
                activation_std=float(row["activation_std"]),
                activation_p2=float(row["activation_p2"]),
                activation_p98=float(row["activation_p98"]),
                saturated_fraction=row["saturated_fraction"],
                backprop_var=float(row["backprop_var"]),
                weight_grad_var=float(row["weight_grad_var"]),
                jacobian_sv_mean=row.get("jacobian_sv_mean"),
                jacobian_sv_ratio=row.get("jacobian_sv_ratio"),
                histogram={
                    "edges": act_edges.tolist(),
                    "counts": row["activation_histogram"],
                },
                backprop_histogram={
                    "edges": grad_edges.tolist(),
                    "counts": row["backprop_histogram"],
                },
                weight_grad_histogram={
                    "edges": dw_edges.tolist(),
                    "counts": row["weight_grad_histogram"],
                },
                spread=spread if config.trials > 1 else {},
                **predicted,
            )
        )
    hidden = [layer for layer in layers if layer.kind == "hidden"]
    first, last = (hidden[0], hidden[-1]) if hidden else (layers[0], layers[0])
    return PropagateRun(
        scheme=label,
        scheme_name=name,
        activation=activation.spec,
        layers=layers,
        passed=True,
        backprop_var_ratio=_ratio(first.backprop_var, last.backprop_var),
        activation_var_ratio=_ratio(first.activation_var, last.activation_var),
        weight_grad_var_ratio=_ratio(first.weight_grad_var, last.weight_grad_var),
        input_second_moment=moments.input_second_moment,
        input_cross_moment=moments.input_cross_moment,
        top_cross_moment=moments.top_cross_moment,
        prediction_notes=prediction_notes(config, activation),
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def check_memory(config: PropagateConfig) -> None:
    """Refuse a batch whose activations and gradients would not fit in memory."""
    itemsize = np.dtype(config.dtype).itemsize
    widths = config.layers
    units = sum(widths)
    need = (
        3 * config.batch * units * itemsize
        + 2 * sum(widths[k] * widths[k + 1] for k in range(len(widths) - 1)) * itemsize
    )
    require_memory(need, f"--batch {config.batch} on layers of {units} units in all", share=0.8)


def load_stack(config: PropagateConfig) -> Stack:
    """The dense layers of ``config.weights``: its selected 2-D tensors in file order, each
    oriented ``(fan_in, fan_out)`` by the file's layout, chained by matching widths.

    Raises:
        XavinitError: an unreadable file, no 2-D tensor, a width that does not chain (naming
            the first mismatch), ``--layers`` that differ from the file's, or too little memory.
    """
    assert config.weights is not None
    path = config.weights
    dtype = np.dtype(config.dtype)
    with open_tensors(path) as source:
        described = describe(source.tensors, config.layout)
        names = set(select_names([t.name for t in described], config.keys))
        chosen = [t for t in described if t.name in names and len(t.shape) == 2]
        if not chosen:
            listed = ", ".join(f"{t.name} {t.shape}" for t in described[:12])
            raise XavinitError(f"{path}: no 2-D tensor selected for the stack; tensors: {listed}")
        need = sum(t.size for t in chosen) * dtype.itemsize
        require_memory(need, f"the {len(chosen)} matrices of {path}")
        infos = {info.name: info for info in source.tensors}
        matrices: list[np.ndarray] = []
        for previous, tensor in zip([None, *chosen], chosen, strict=False):
            fan_in, fan_out = tensor.fan_in, tensor.fan_out
            if previous is not None and previous.fan_out != fan_in:
                raise XavinitError(
                    f"{path}: {previous.name} ({previous.fan_in} -> {previous.fan_out}) does not "
                    f"chain into {tensor.name} ({fan_in} -> {fan_out}); select the dense layers "
                    "in order with --key, or set --layout"
                )
            if tensor.dtype not in ("float16", "bfloat16", "float32", "float64"):
                raise XavinitError(
                    f"{path}: {tensor.name} has dtype {tensor.dtype}; expected floats"
                )
            array = source.load(infos[tensor.name])
            oriented = array.T if tensor.layout == "out-in" else array
            matrix = np.ascontiguousarray(oriented, dtype=dtype)
            if not scan(matrix)[0].finite:
                raise XavinitError(f"{path}: {tensor.name} holds NaN or infinite values")
            matrices.append(matrix)
    widths = (matrices[0].shape[0], *(m.shape[1] for m in matrices))
    if "layers" in config.model_fields_set and tuple(config.layers) != widths:
        raise XavinitError(
            f"--layers {','.join(map(str, config.layers))} differ from the widths of {path}: "
            f"{','.join(map(str, widths))}"
        )
    return Stack(path, None, tuple(matrices))


def run_propagate(config: PropagateConfig, progress: Progress | None = None) -> PropagateResult:
    """Run every (scheme, activation) network, or push through a file's own stack
    (``config.weights``); ``passed`` is False if any overflowed."""
    stacks: list[Scheme | Stack]
    if config.weights is not None:
        stack = load_stack(config)
        widths = (stack.fixed[0].shape[0], *(m.shape[1] for m in stack.fixed))
        config = config.model_copy(update={"layers": widths, "schemes": ()})
        stacks = [stack]
    else:
        stacks = [get_scheme(s) for s in config.schemes]
    check_memory(config)
    get_backend(config.backend, config.device).activate(blas_thread_count())
    pairs = [(s, get_activation(a)) for a in config.activations for s in stacks]
    runs = []
    buffers = Buffers()  # one network's passes at a time: the next one reuses the memory
    for done, (scheme, activation) in enumerate(pairs):
        label = scheme.label if isinstance(scheme, Stack) else scheme.spec
        if progress is not None:
            progress(done, len(pairs), f"{label} / {activation.spec}")
        runs.append(run_one(config, scheme, activation, buffers))
    if progress is not None:
        progress(len(pairs), len(pairs), "done")
    return PropagateResult(
        seed=config.seed,
        config=config.to_dict(),
        passed=all(run.passed for run in runs),
        runs=runs,
    )
