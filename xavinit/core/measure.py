"""One MLP measured at initialization, and what mean field and the linear regime predict for it.

:func:`measure_network` draws a network (or takes a file's matrices) and a batch, runs the
forward and backward passes, and measures per layer what Glorot and Bengio (2010) plot in
section 4: the activations' moments, percentiles, saturated fraction and histogram
(figures 6 and 7), the variance of the back-propagated gradient ``dC_n/ds^k`` and of the
weight gradient (figure 7, eq. 14), and the singular values of the layer Jacobian (eq. 17).
:func:`merge_trials` averages several trials; :func:`predictions` gives beside them the
linear-regime (eq. 5-7) and mean-field (Poole et al., 2016) predictions from the same
``Var[W]`` (:mod:`xavinit.core.theory`). ``xavinit propagate`` assembles its result from these.

Conventions: layer ``k`` (1-based) is the k-th weight matrix and what it produces. Hidden
layers report their post-activations ``z^k = f(s^k)``; the output layer the logits ``s^L``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from xavinit.core.activations import Activation
from xavinit.core.backends import get_backend, to_numpy
from xavinit.core.network import Buffers, backward, forward
from xavinit.core.samples import histograms, percentiles, shared_edges
from xavinit.core.sampling import WeightSource, draw_biases, draw_inputs, top_gradient
from xavinit.core.stats import CHUNK, Moments, Scanner
from xavinit.core.theory import (
    linear_activation_var,
    linear_backprop_var,
    linear_regime_applies,
    linear_weight_grad_var,
    mean_field_weight_grad_var,
)

__all__ = [
    "STAT_SAMPLE",
    "LayerMeasurement",
    "LayerPrediction",
    "LayerScans",
    "MeasurePlan",
    "MeasuredMoments",
    "NetworkMeasurement",
    "cross_moment",
    "jacobian_singular_values",
    "measure_network",
    "merge_trials",
    "predictions",
    "scan_layer",
]

Edges = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One layer's histogram edges: activations, back-propagated gradients, weight gradients."""

STAT_SAMPLE = 1 << 17
"""Percentiles, histograms and the saturated fraction use at most this many values per layer,
taken at an even stride (131072: the 2nd/98th percentiles to about 0.1% of the range and the
saturated fraction to a standard error below 0.14%, at a tenth of the cost of all 10^6 values
of a paper-sized layer). Means and variances always use every value."""


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


def cross_moment(batch: np.ndarray, buffers: Buffers | None = None) -> float:
    """``E[a_b a_b']`` over pairs of examples ``b != b'`` (rows) and units (columns):
    ``(|sum_b a_b|^2 - sum_b |a_b|^2) / (B (B - 1) n)``, accumulated in float64; 0 for one row.
    A float32 batch is widened into ``buffers``' float64 array when given (the same numbers as
    a fresh copy, without a fresh multi-MB array to page-fault in)."""
    rows, units = batch.shape
    if rows < 2:
        return 0.0
    total = batch.sum(axis=0, dtype=np.float64)
    flat = batch.reshape(-1)
    if buffers is not None and flat.dtype != np.float64:
        wide = buffers.get("widened", flat.size, flat.shape, np.dtype(np.float64))  # one a size:
        # the input's and the top gradient's, each kept for the next trial
        np.copyto(wide, flat)
        flat = wide
    flat = flat.astype(np.float64, copy=False)
    return float(total @ total - flat @ flat) / (rows * (rows - 1) * units)


class LayerScans:
    """The moments and stride samples of every array a pass shows it, chunk by chunk (an
    :class:`xavinit.core.network.Observer`): each chunk is measured while it is in cache,
    right after the pass made it, by a :class:`xavinit.core.stats.Scanner` without extremes
    (the same sums as :func:`xavinit.core.stats.moments_and_sample`, in its order, so the
    same numbers to the bit), widened in one reused float64 array. The sample of
    ``(role, layer)`` (every ``ceil(N / sample_size)``-th entry, in the array's dtype; none
    for ``sample_size`` 0) lives in ``buffers``' array for ``("sample-" + role, layer)``
    until the next scan of that array.
    """

    def __init__(self, buffers: Buffers, sample_size: int) -> None:
        self._buffers = buffers
        self._sample_size = sample_size
        self._wide = buffers.get("widened-chunk", 0, (CHUNK,), np.dtype(np.float64))
        self._open: dict[tuple[str, int], Scanner] = {}

    def __call__(
        self, role: str, layer: int, array: np.ndarray, start: int, piece: np.ndarray
    ) -> None:
        """Take the chunk of ``array`` from ``start`` (chunks come in order from 0)."""
        if start == 0:
            self._open[(role, layer)] = self._begin(role, layer, array)
        self._open[(role, layer)].add(piece)

    def _begin(self, role: str, layer: int, array: np.ndarray) -> Scanner:
        count = int(array.size)
        shape = (Scanner.sample_length(count, self._sample_size),)
        sample = self._buffers.get(f"sample-{role}", layer, shape, array.dtype)
        return Scanner(
            count, array.dtype, self._sample_size, buffer=self._wide, sample=sample,
            extremes=False,
        )  # fmt: skip

    def result(self, role: str, layer: int, array: np.ndarray) -> tuple[Moments, np.ndarray]:
        """``(moments, sample)`` of ``array``, shown as ``(role, layer)`` (an empty one needs
        no showing); the moments' extremes are NaN."""
        scan = self._open.pop((role, layer), None)
        if scan is None:
            if array.size:
                raise ValueError(f"{role} {layer} was not shown to the scans")
            scan = self._begin(role, layer, array)
        return scan.result()


def scan_layer(
    array: np.ndarray, sample_size: int, buffers: Buffers, role: str, layer: int
) -> tuple[Moments, np.ndarray]:
    """Moments and stride sample of a whole array, as :class:`LayerScans` measures it; the
    sample in ``buffers``' array for ``("sample-" + role, layer)``."""
    flat = np.ravel(array, order="K")
    scans = LayerScans(buffers, sample_size)
    with np.errstate(all="ignore"):  # NaN and inf are reported through ``finite``
        for start in range(0, flat.size, CHUNK):
            scans(role, layer, flat, start, flat[start : start + CHUNK])
    return scans.result(role, layer, flat)


@dataclass(frozen=True)
class MeasurePlan:
    """What one measured network is, beside its weights and activation.

    Attributes:
        widths: ``n_0, ..., n_L``.
        batch: Examples pushed through.
        seed: Seed of every draw (:mod:`xavinit.core.streams`).
        dtype: Floating type of the passes, ``"float32"`` or ``"float64"``.
        inputs: Input distribution, ``"uniform"`` (``U[-1, 1]``) or ``"normal"``.
        top: Top gradient, ``"nll"`` (softmax NLL on random labels) or ``"unit"`` noise.
        bias_var: Variance of the biases ``N(0, bias_var)``; 0 draws none.
        bins: Histogram bins.
        jacobian_samples: Examples whose layer Jacobians' singular values are computed.
        backend: Array library of the passes (:func:`xavinit.core.backends.get_backend`).
        device: Where its arrays live.
    """

    widths: tuple[int, ...]
    batch: int
    seed: int
    dtype: str
    inputs: str
    top: str
    bias_var: float
    bins: int
    jacobian_samples: int
    backend: str = "numpy"
    device: str = "cpu"


@dataclass(frozen=True)
class LayerMeasurement:
    """One layer's measured numbers, of one trial or averaged over trials (then the
    histograms' counts are summed).

    Attributes:
        activation_mean, activation_var, activation_std, activation_second_moment: Moments
            of ``z^k`` (the logits at the output layer) over units and examples.
        activation_p2, activation_p98: Its 2nd and 98th percentiles.
        saturated_fraction: Saturated units (hidden layers; ``None`` at the output).
        backprop_var: ``Var[dC_n/ds^k]``, per example.
        weight_grad_var: ``Var[dC/dW^k]`` of the batch-mean cost.
        jacobian_sv_mean, jacobian_sv_ratio: :func:`jacobian_singular_values` (hidden layers
            with ``jacobian_samples``; else ``None``).
        activation_histogram, backprop_histogram, weight_grad_histogram: Counts over the
            layer's edges (:func:`xavinit.core.samples.shared_edges`).
    """

    activation_mean: float
    activation_var: float
    activation_std: float
    activation_second_moment: float
    activation_p2: float
    activation_p98: float
    saturated_fraction: float | None
    backprop_var: float
    weight_grad_var: float
    jacobian_sv_mean: float | None
    jacobian_sv_ratio: float | None
    activation_histogram: list[int]
    backprop_histogram: list[int]
    weight_grad_histogram: list[int]


_COUNTS = ("activation_histogram", "backprop_histogram", "weight_grad_histogram")
_NUMBERS = tuple(f.name for f in fields(LayerMeasurement) if f.name not in _COUNTS)


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

    @classmethod
    def mean(cls, trials: list[MeasuredMoments]) -> MeasuredMoments:
        """The mean of each moment over ``trials``."""
        rows = [
            (m.input_second_moment, m.input_cross_moment, m.top_backprop_var, m.top_cross_moment)
            for m in trials
        ]
        return cls(*(float(v) for v in np.mean(rows, axis=0)))


@dataclass(frozen=True)
class NetworkMeasurement:
    """One trial's network: its layers (in order) and the moments the predictions take.

    ``overflow_layer`` is the first layer (1-based) whose values stopped being finite, with no
    layers then."""

    layers: list[LayerMeasurement]
    overflow_layer: int | None
    moments: MeasuredMoments


def measure_network(
    plan: MeasurePlan,
    source: WeightSource,
    activation: Activation,
    trial: int,
    edges: list[Edges] | None,
    buffers: Buffers | None = None,
) -> tuple[NetworkMeasurement, list[Edges]]:
    """Draw one network (or take a file's) and a batch, run forward and backward (into
    ``buffers`` when given), and measure every layer; histograms over ``edges``, or over
    :func:`xavinit.core.samples.shared_edges` of this trial when ``None`` (returned)."""
    dtype = np.dtype(plan.dtype)
    widths = plan.widths
    n_layers = len(widths) - 1
    drawn = None if buffers is None else [
        buffers.get("weights", k, (widths[k], widths[k + 1]), dtype) for k in range(n_layers)
    ]  # fmt: skip
    weights = source.weights(widths, plan.seed, trial, dtype, drawn)
    biases = draw_biases(widths, plan.bias_var, plan.seed, trial, dtype)
    x_out = None if buffers is None else buffers.get("inputs", 0, (plan.batch, widths[0]), dtype)
    x = draw_inputs(plan.seed, trial, plan.batch, widths[0], plan.inputs, dtype, x_out)
    scratch = Buffers() if buffers is None else buffers  # the scans' arrays
    input_moments = scan_layer(x, 0, scratch, "input", 0)[0]
    input_cross = cross_moment(x, scratch)

    def failed(layer: int) -> tuple[NetworkMeasurement, list[Edges]]:
        moments = MeasuredMoments(input_moments.mean_square, input_cross, math.nan, math.nan)
        return NetworkMeasurement([], layer, moments), edges or []

    backend = get_backend(plan.backend, plan.device)
    placed = [backend.asarray(w) for w in weights]
    placed_biases = None if biases is None else [backend.asarray(b) for b in biases]
    # numpy's passes show each array to the scans as they make it; other backends' arrays
    # are scanned once copied to the host
    scans = LayerScans(scratch, STAT_SAMPLE)
    observe = scans if isinstance(placed[0], np.ndarray) else None

    def scanned_as(role: str, k: int, array: object) -> tuple[Moments, np.ndarray]:
        if observe is None:
            return scan_layer(to_numpy(array), STAT_SAMPLE, scratch, role, k)
        return scans.result(role, k, to_numpy(array))

    with np.errstate(all="ignore"):
        cache = forward(backend.asarray(x), placed, placed_biases, activation, buffers, observe)
    outputs = [to_numpy(out) for out in (*cache.hidden, cache.logits)]
    forward_scans = [scanned_as("activation", k, out) for k, out in enumerate(outputs)]
    overflow = next((k + 1 for k, (m, _) in enumerate(forward_scans) if not m.finite), None)
    if overflow is not None:
        return failed(overflow)
    grad_top = top_gradient(plan.seed, trial, to_numpy(cache.probs), plan.top)
    with np.errstate(all="ignore"):
        grads = backward(
            cache,
            placed,
            activation,
            output_grad=backend.asarray(grad_top),
            bias_gradients=False,
            buffers=buffers,
            observe=observe,
        )
    batch = plan.batch
    scanned = []
    for k in range(n_layers):
        act, act_sample = forward_scans[k]
        ds, ds_sample = scanned_as("ds", k, grads.ds[k])
        dw, dw_sample = scanned_as("dw", k, grads.dw[k])
        if not (ds.finite and dw.finite):
            return failed(k + 1)
        dw_sample = dw_sample.astype(np.float64) / batch  # of the batch-mean cost
        scanned.append((act, act_sample, ds, ds_sample, dw, dw_sample))
    if edges is None:
        edges = shared_edges(
            activation,
            [item[1] for item in scanned],
            [item[3] for item in scanned],
            [item[5] for item in scanned],
            plan.bins,
        )
    counts = [
        histograms([item[1] for item in scanned], [grids[0] for grids in edges]),
        histograms([item[3] for item in scanned], [grids[1] for grids in edges]),
        histograms([item[5] for item in scanned], [grids[2] for grids in edges]),
    ]
    layers: list[LayerMeasurement] = []
    for k, (act, act_sample, ds, _, dw, _) in enumerate(scanned):
        hidden = k < n_layers - 1
        sv_mean = sv_ratio = None
        if hidden and plan.jacobian_samples:
            pre = cache.s[k]
            derivative = activation.derivative(None if pre is None else to_numpy(pre), outputs[k])
            sv_mean, sv_ratio = jacobian_singular_values(
                weights[k], derivative, plan.jacobian_samples
            )
        p2, p98 = percentiles(act_sample, (2.0, 98.0))
        layers.append(
            LayerMeasurement(
                activation_mean=act.mean,
                activation_var=act.variance,
                activation_std=math.sqrt(act.variance),
                activation_second_moment=act.mean_square,
                activation_p2=float(p2),
                activation_p98=float(p98),
                saturated_fraction=(
                    float(np.count_nonzero(activation.saturated(act_sample))) / act_sample.size
                    if hidden
                    else None
                ),
                backprop_var=ds.variance,
                # dC/dW of the batch-mean cost is (z^{k-1})^T (dC_n/ds^k) / B.
                weight_grad_var=dw.variance / batch**2,
                jacobian_sv_mean=sv_mean,
                jacobian_sv_ratio=sv_ratio,
                activation_histogram=counts[0][k],
                backprop_histogram=counts[1][k],
                weight_grad_histogram=counts[2][k],
            )
        )
    moments = MeasuredMoments(
        input_moments.mean_square,
        input_cross,
        layers[-1].backprop_var,
        cross_moment(grad_top, scratch),
    )
    return NetworkMeasurement(layers, None, moments), edges


def merge_trials(
    trials: list[list[LayerMeasurement]],
) -> list[tuple[LayerMeasurement, dict[str, float]]]:
    """Each layer's mean over ``trials`` (histogram counts summed) and the sample std of each
    number that is not ``None`` (0 for one trial), by field name."""
    if len(trials) == 1:  # the mean of one value is itself: no array per field and layer
        return [
            (layer, {name: 0.0 for name in _NUMBERS if getattr(layer, name) is not None})
            for layer in trials[0]
        ]
    merged: list[tuple[LayerMeasurement, dict[str, float]]] = []
    for k in range(len(trials[0])):
        values: dict[str, object] = {}
        spread: dict[str, float] = {}
        for name in _NUMBERS:
            column = [getattr(t[k], name) for t in trials]
            if column[0] is None:
                values[name] = None
                continue
            numbers = np.array(column, dtype=np.float64)
            with np.errstate(invalid="ignore"):  # a ratio may be inf (a zero singular value)
                values[name] = float(numbers.mean())
                spread[name] = float(numbers.std(ddof=1))
        for name in _COUNTS:
            values[name] = (
                np.sum([getattr(t[k], name) for t in trials], axis=0).astype(int).tolist()
            )
        merged.append((LayerMeasurement(**values), spread))  # type: ignore[arg-type]
    return merged


@dataclass(frozen=True)
class LayerPrediction:
    """One layer's predictions from ``Var[W]``: mean field, and the linear regime (``None``
    where it does not apply, :func:`xavinit.core.theory.linear_regime_applies`).

    Attributes:
        weight_var: ``Var[W^k]``.
        predicted_preactivation_var: Mean field ``q^k``.
        predicted_activation_var: ``Var[f(s^k)]`` (``q^L`` at the output layer).
        predicted_activation_mean: ``E[f(s^k)]`` (0 at the output layer).
        predicted_backprop_var: ``Var[dC_n/ds^k]``.
        predicted_weight_grad_var: ``Var[dC/dW^k]`` with the cross-example terms.
        linear_activation_var, linear_backprop_var, linear_weight_grad_var: Eq. 5-7.
    """

    weight_var: float
    predicted_preactivation_var: float
    predicted_activation_var: float
    predicted_activation_mean: float
    predicted_backprop_var: float
    predicted_weight_grad_var: float
    linear_activation_var: float | None
    linear_backprop_var: float | None
    linear_weight_grad_var: float | None


def predictions(
    widths: tuple[int, ...],
    weight_vars: list[float],
    activation: Activation,
    moments: MeasuredMoments,
    batch: int,
    bias_var: float,
) -> list[LayerPrediction]:
    """Linear-regime and mean-field predictions per layer from each layer's ``Var[W]``
    (``weight_vars``, e.g. :meth:`xavinit.core.sampling.WeightSource.variances`), for
    ``batch`` examples and biases ``N(0, bias_var)``."""
    sb2 = bias_var
    mf = mean_field_weight_grad_var(
        moments.input_second_moment, moments.input_cross_moment, widths, weight_vars,
        activation, moments.top_backprop_var, moments.top_cross_moment, batch, sb2,
    )  # fmt: skip
    forward_mf = mf.forward
    assert forward_mf is not None
    linear = linear_regime_applies(activation)
    lin_act = linear_activation_var(widths, weight_vars, moments.input_second_moment, sb2)
    lin_back = linear_backprop_var(widths, weight_vars, moments.top_backprop_var)
    lin_dw = linear_weight_grad_var(
        widths, weight_vars, moments.input_second_moment, moments.top_backprop_var,
        batch, moments.input_cross_moment, moments.top_cross_moment, sb2,
    )  # fmt: skip
    n_layers = len(weight_vars)
    rows: list[LayerPrediction] = []
    for k in range(n_layers):
        hidden = k < n_layers - 1
        rows.append(
            LayerPrediction(
                weight_var=weight_vars[k],
                predicted_preactivation_var=float(forward_mf.q[k]),
                predicted_activation_var=float(forward_mf.var[k] if hidden else forward_mf.q[k]),
                predicted_activation_mean=float(forward_mf.mean[k]) if hidden else 0.0,
                predicted_backprop_var=float(mf.backprop_var[k]),
                predicted_weight_grad_var=float(mf.weight_grad_var[k]),
                linear_activation_var=float(lin_act[k]) if linear else None,
                linear_backprop_var=float(lin_back[k]) if linear else None,
                linear_weight_grad_var=float(lin_dw[k]) if linear else None,
            )
        )
    return rows
