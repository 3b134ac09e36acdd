"""Closed-form predictions of activation and gradient variances at initialization.

Index convention (shared with :mod:`xavinit.core.network`): widths ``n_0..n_L``; layer ``k``
(1-based, ``k = 1..L``) is the ``k``-th weight matrix ``W^k``, from ``n_{k-1}`` to ``n_k``
units, with ``s^k = z^{k-1} W^k + b^k`` and ``z^k = f(s^k)``, ``z^0 = x``. Every returned array
has one entry per layer: entry ``k - 1`` belongs to layer ``k``. Weights are i.i.d. with mean 0
and the given variance ``Var[W^k]``; biases are 0 unless said.

Two regimes:

- Linear (Glorot and Bengio, 2010, section 4.2.1, eqs. 5-7): ``f'(0) = 1``, ``f(s) ~= s``.
- Mean field (Poole et al., 2016; Schoenholz et al., 2017): pre-activations are Gaussian with
  variance ``q^k``, Gaussian expectations by Gauss-Hermite quadrature split at the activation's
  kinks; two examples' pre-activations are jointly Gaussian with correlation ``c^k``.

The weight gradient of a batch-mean cost sums ``B`` examples: ``dC/dW^k_{jl} = (1/B) sum_b
z^{k-1}_{bj} delta^k_{bl}`` with ``delta = dC_b/ds``. Its second moment is exactly
``(1/B^2) sum_{b,b'} <z_b, z_b'> <delta_b, delta_b'>`` (averages over units), so besides the
diagonal ``E[z^2] E[delta^2] / B`` it has the cross-example term ``(1 - 1/B) E[z_b z_b']
E[delta_b delta_b']``: large when the activations are not centred (``E[z_b z_b'] >= E[z]^2``)
and the output errors of different examples are correlated. :func:`mean_field_weight_grad_var`
and :func:`linear_weight_grad_var` carry both terms. :func:`gain_theory` gives the gains of one
activation and where its deep-network map sits (order, edge of chaos, chaos).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xavinit.core.activations import Activation, forward_gain, get_activation, unit_moments
from xavinit.core.quadrature import bivariate_expectation, gaussian_expectation, normal_rule
from xavinit.errors import XavinitError

__all__ = [
    "CRITICAL_TOL",
    "GainTheory",
    "MeanFieldForward",
    "MeanFieldGradients",
    "PhaseDiagram",
    "chi1",
    "correlation_fixed_point",
    "correlation_map",
    "fixed_point",
    "gain_theory",
    "length_map",
    "length_map_slope",
    "linear_activation_var",
    "linear_backprop_var",
    "linear_regime_applies",
    "linear_weight_grad_var",
    "mean_field_backward",
    "mean_field_forward",
    "mean_field_weight_grad_var",
    "phase_diagram",
]

Array = np.ndarray


def _check(widths: Sequence[int], weight_vars: Sequence[float]) -> tuple[Array, Array]:
    n = np.asarray(widths, dtype=np.float64)
    v = np.asarray(weight_vars, dtype=np.float64)
    if n.ndim != 1 or v.ndim != 1 or len(n) != len(v) + 1 or len(v) == 0:
        raise XavinitError(
            f"need widths n_0..n_L and L weight variances, got {len(n)} widths and "
            f"{len(v)} variances"
        )
    if np.any(n <= 0):
        raise XavinitError(f"widths must be positive, got {list(widths)}")
    if np.any(v < 0):
        raise XavinitError(f"weight variances must be >= 0, got {list(weight_vars)}")
    return n, v


def linear_activation_var(
    widths: Sequence[int],
    weight_vars: Sequence[float],
    input_second_moment: float,
    bias_vars: Sequence[float] | Array | float = 0.0,
) -> Array:
    """Return ``Var[z^k] = E[x^2] prod_{k'=1..k} n_{k'-1} Var[W^{k'}]`` for ``k = 1..L``.

    Glorot and Bengio (2010), eq. 5, linear regime (``z^k = s^k``); entry ``L - 1`` is the
    output pre-activation ``s^L``. With zero-mean weights ``s^1 = x W^1`` has mean 0 and
    variance ``n_0 Var[W] E[x^2]``: the input's second moment, its variance when centred. With
    biases ``b^k ~ (0, Var[b^k])`` each layer adds its own: ``Var[z^k] = n_{k-1} Var[W^k]
    Var[z^{k-1}] + Var[b^k]`` (the paper's biases are 0).

    Args:
        widths: ``n_0..n_L`` (length ``L + 1``).
        weight_vars: ``Var[W^1]..Var[W^L]`` (length ``L``).
        input_second_moment: ``E[x^2]`` (one input component).
        bias_vars: ``Var[b^k]``, a scalar for all layers or one per layer.

    Example:
        >>> linear_activation_var([100, 100, 100], [1 / 300, 1 / 300], 1.0).round(4).tolist()
        [0.3333, 0.1111]
    """
    n, v = _check(widths, weight_vars)
    sb2 = _bias_vars(bias_vars, v)
    if not np.any(sb2):
        return input_second_moment * np.cumprod(n[:-1] * v)
    return _affine_chain(n[:-1] * v, sb2, float(input_second_moment))


def _bias_vars(bias_vars: Sequence[float] | Array | float, v: Array) -> Array:
    """``Var[b^k]`` broadcast to one per layer, checked finite and ``>= 0``."""
    sb2 = np.broadcast_to(np.asarray(bias_vars, dtype=np.float64), v.shape)
    if np.any(sb2 < 0) or not np.all(np.isfinite(sb2)):
        raise XavinitError(f"bias variances must be finite and >= 0, got {bias_vars!r}")
    return sb2


def _affine_chain(factors: Array, offsets: Array, start: float) -> Array:
    """``a_k = factors_k a_{k-1} + offsets_k`` from ``a_0 = start``, for ``k = 1..L``."""
    out = np.empty_like(factors)
    value = start
    for k in range(len(factors)):
        value = factors[k] * value + offsets[k]
        out[k] = value
    return out


def linear_backprop_var(
    widths: Sequence[int], weight_vars: Sequence[float], top_backprop_var: float
) -> Array:
    """Return ``Var[dC/ds^k] = Var[dC/ds^L] prod_{k'=k+1..L} n_{k'} Var[W^{k'}]``, ``k = 1..L``.

    Glorot and Bengio (2010), eq. 6, linear regime: ``dC/ds^k = (dC/ds^{k+1} (W^{k+1})^T) f'``
    sums ``n_{k+1}`` terms. Entry ``L - 1`` is ``top_backprop_var`` itself.

    Args:
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        top_backprop_var: ``Var[dC/ds^L]`` at the output layer.

    Example:
        >>> linear_backprop_var([100, 100, 100], [1 / 300, 1 / 300], 1.0).round(4).tolist()
        [0.3333, 1.0]
    """
    n, v = _check(widths, weight_vars)
    factors = n[1:] * v  # n_k Var[W^k] for k = 1..L
    tail = np.append(factors[1:], 1.0)  # layer k gets the factors of layers k+1..L
    return top_backprop_var * np.cumprod(tail[::-1])[::-1]


def linear_weight_grad_var(
    widths: Sequence[int],
    weight_vars: Sequence[float],
    input_second_moment: float,
    top_backprop_var: float,
    batch: int = 1,
    input_cross_moment: float = 0.0,
    top_cross_moment: float = 0.0,
    bias_vars: Sequence[float] | Array | float = 0.0,
) -> Array:
    """Return ``Var[dC/dW^k]`` for ``k = 1..L`` in the linear regime, batch-mean cost.

    Glorot and Bengio (2010), eq. 7, for one example: ``dC/dW^k_{jl} = z^{k-1}_j dC/ds^k_l``
    with independent factors and ``E[dC/ds] = 0``, so ``Var = E[(z^{k-1})^2] Var[dC/ds^k]`` (the
    second moment of ``z``, not its variance: ``Var[XY] = E[X^2] Var[Y]`` when ``E[Y] = 0``). For
    the mean over ``B`` examples the cross-example products enter too (module docstring):

        Var[dC/dW^k] = (E[z^2] Var[delta^k] + (B - 1) E[z_b z_b'] E[delta^k_b delta^k_b']) / B

    where in the linear regime ``E[(z^k)^2]`` and ``E[z^k_b z^k_b']`` are the input's times
    ``prod_{k'<=k} n_{k'-1} Var[W^{k'}]``, and ``Var[delta^k]`` and ``E[delta^k_b delta^k_b']``
    the top layer's times ``prod_{k'>k} n_{k'} Var[W^{k'}]``. With equal widths and ``B = 1``
    this is the same for every layer, whatever the weight variance. A bias ``b^k`` is shared by
    all examples, so it adds ``Var[b^k]`` to both ``E[(s^k)^2]`` and ``E[s^k_b s^k_b']``.

    Args:
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        input_second_moment: ``E[x^2]``.
        top_backprop_var: ``Var[dC/ds^L]`` (its mean is 0).
        batch: ``B``, the examples the cost averages.
        input_cross_moment: ``E[x_b x_b']`` for two examples ``b != b'``.
        top_cross_moment: ``E[delta^L_b delta^L_b']`` for ``b != b'``.
        bias_vars: ``Var[b^k]``, a scalar for all layers or one per layer.
    """
    act = linear_activation_var(widths, weight_vars, input_second_moment, bias_vars)
    below = np.concatenate([[float(input_second_moment)], act[:-1]])  # E[(z^{k-1})^2]
    n, v = _check(widths, weight_vars)
    sb2 = _bias_vars(bias_vars, v)
    if np.any(sb2):
        cross = _affine_chain(n[:-1] * v, sb2, float(input_cross_moment))
        below_cross = np.concatenate([[float(input_cross_moment)], cross[:-1]])
    else:
        grow = act / float(input_second_moment) if input_second_moment > 0 else np.zeros_like(act)
        below_cross = float(input_cross_moment) * np.concatenate([[1.0], grow[:-1]])
    back = linear_backprop_var(widths, weight_vars, 1.0)
    return (
        below * back * float(top_backprop_var)
        + (batch - 1) * below_cross * back * float(top_cross_moment)
    ) / batch


def linear_regime_applies(activation: Activation) -> bool:
    """Whether the paper's linear regime describes ``f`` near 0: ``f(0) = 0`` and ``f'(0) = 1``
    from both sides (Glorot and Bengio, 2010, section 4.2.1: "a symmetric activation function
    f with unit derivative at 0"). True for linear, tanh, softsign, elu (alpha 1), hardtanh.
    """
    at = np.array([-1e-7, 0.0, 1e-7])
    values = activation.forward(at)
    slopes = activation.derivative_of(at[[0, 2]])
    return bool(abs(values[1]) < 1e-12 and np.all(np.abs(slopes - 1.0) < 1e-5))


@dataclass(frozen=True)
class MeanFieldForward:
    """Mean-field forward prediction, one entry per layer ``k = 1..L``.

    Attributes:
        q: Pre-activation variance ``q^k = Var[s^k]``.
        mean: Post-activation mean ``E_z[f(sqrt(q^k) z)]``.
        second_moment: ``E_z[f(sqrt(q^k) z)^2]``.
        var: Post-activation variance ``second_moment - mean^2``.
    """

    q: Array
    mean: Array
    second_moment: Array
    var: Array

    @property
    def std(self) -> Array:
        """Post-activation standard deviation."""
        return np.sqrt(self.var)


def length_map(
    q: float, weight_var_times_fan: float, activation: Activation, bias_var: float = 0.0
) -> float:
    """Return ``sw^2 E_z[f(sqrt(q) z)^2] + sb^2`` (Poole et al., 2016).

    Args:
        q: Pre-activation variance of the layer below.
        weight_var_times_fan: ``sw^2 = n Var[W]`` (fan-in times weight variance).
        activation: ``f``.
        bias_var: ``sb^2 = Var[b]``.
    """
    m2 = gaussian_expectation(
        lambda s: np.square(activation.forward(s)), q, kinks=(0.0, *activation.kinks)
    )
    return float(weight_var_times_fan * m2 + bias_var)


def fixed_point(
    weight_var_times_fan: float,
    activation: Activation,
    bias_var: float = 0.0,
    q0: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 10_000,
) -> float:
    """Return the fixed point ``q*`` of :func:`length_map`, iterating it from ``q0``.

    Example:
        >>> from xavinit.core.activations import get_activation
        >>> round(fixed_point((5 / 3) ** 2, get_activation("tanh")), 3)
        1.178
    """
    q = float(q0)
    for _ in range(max_iter):
        q_next = length_map(q, weight_var_times_fan, activation, bias_var)
        if abs(q_next - q) <= tol * max(1.0, q):
            return q_next
        q = q_next
    return q


def length_map_slope(q: float, weight_var_times_fan: float, activation: Activation) -> float:
    """Return ``d/dq [sw^2 E_z[f(sqrt(q) z)^2] + sb^2] = sw^2 E[s f(s) f'(s)] / q``, ``s = sqrt(q)
    z``: the variance map's slope, which the bias does not change.

    At a fixed point ``q*`` it decides stability (Poole et al., 2016): below 1 depth pulls
    ``q`` back to ``q*``, above 1 it pushes it away. ``d/dq f(sqrt(q) z)^2 = z f f' / sqrt(q)``.

    Args:
        q: Pre-activation variance ``> 0``.
        weight_var_times_fan: ``sw^2 = n Var[W]``.
        activation: ``f``.

    Example:
        >>> from xavinit.core.activations import get_activation
        >>> round(length_map_slope(0.7, 2.0, get_activation("relu")), 12)
        1.0
    """
    if not q > 0:
        raise XavinitError(f"the variance map's slope needs q > 0, got {q!r}")
    f, d = activation.forward, _derivative(activation)
    zff = gaussian_expectation(lambda s: s * f(s) * d(s), q, kinks=(0.0, *activation.kinks))
    return float(weight_var_times_fan * zff / q)


def _derivative_sq(activation: Activation) -> Callable[[Array], Array]:
    def fn(s: Array) -> Array:
        return np.square(activation.derivative(s, activation.forward(s)))

    return fn


def chi1(weight_var_times_fan: float, activation: Activation, q: float) -> float:
    """Return ``chi_1 = sw^2 E_z[f'(sqrt(q) z)^2]`` (Poole et al., 2016; Schoenholz et al., 2017).

    The factor by which a back-propagated gradient's variance grows per layer at
    pre-activation variance ``q`` (use ``q = q*`` for the fixed point); ``< 1`` vanishing,
    ``> 1`` exploding.

    Args:
        weight_var_times_fan: ``sw^2 = n Var[W]``.
        activation: ``f``.
        q: Pre-activation variance.

    Example:
        >>> from xavinit.core.activations import get_activation
        >>> round(chi1(1 / 3, get_activation("tanh"), 0.0), 4)
        0.3333
    """
    m2 = gaussian_expectation(_derivative_sq(activation), q, kinks=(0.0, *activation.kinks))
    return float(weight_var_times_fan * m2)


def mean_field_forward(
    q0_input_var: float,
    widths: Sequence[int],
    weight_vars: Sequence[float],
    activation: Activation,
    bias_vars: Sequence[float] | Array | float = 0.0,
) -> MeanFieldForward:
    """Predict per-layer pre-activation variance and post-activation moments.

    ``q^1 = n_0 Var[W^1] E[x^2] + Var[b^1]``, then for ``k >= 2``
    ``q^k = n_{k-1} Var[W^k] E_z[f(sqrt(q^{k-1}) z)^2] + Var[b^k]``, ``z ~ N(0, 1)``
    (Poole et al., 2016). The next layer sees the second moment, not the variance, of ``z^k``:
    the mean matters for the sigmoid. ``f`` is applied at every layer given; for a network with
    a softmax output pass the hidden part only, or read ``q[-1]`` as the logit variance and
    ignore the last post-activation entries.

    Args:
        q0_input_var: ``E[x^2]``, the measured second moment of one input component
            (``1/3`` for ``U[-1, 1]``); equal to ``Var[x]`` for centred inputs.
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        activation: Hidden activation ``f``.
        bias_vars: ``Var[b^k]``, a scalar for all layers or one per layer.
    """
    n, v = _check(widths, weight_vars)
    sb2 = _bias_vars(bias_vars, v)
    q = np.empty_like(v)
    mean = np.empty_like(v)
    m2 = np.empty_like(v)
    prev_m2 = float(q0_input_var)
    for k in range(len(v)):
        q[k] = n[k] * v[k] * prev_m2 + sb2[k]
        kinks = (0.0, *activation.kinks)
        mean[k], m2[k] = _expectations(
            (activation.forward, lambda s: np.square(activation.forward(s))), q[k], kinks
        )
        prev_m2 = m2[k]
    var = np.maximum(m2 - mean**2, 0.0)
    return MeanFieldForward(q=q, mean=mean, second_moment=m2, var=var)


def mean_field_backward(
    top_backprop_var: float,
    qs: Sequence[float] | Array,
    widths: Sequence[int],
    weight_vars: Sequence[float],
    activation: Activation,
) -> Array:
    """Predict ``Var[dC/ds^k]`` for ``k = 1..L`` going down from ``Var[dC/ds^L]``.

    ``Var[dC/ds^k] = Var[dC/ds^{k+1}] n_{k+1} Var[W^{k+1}] E_z[f'(sqrt(q^k) z)^2]``
    (Schoenholz et al., 2017): per layer the variance is multiplied by ``chi`` at that layer's
    ``q``. The output layer ``L`` has no hidden activation, so ``q^L`` is not used.

    Args:
        top_backprop_var: ``Var[dC/ds^L]``.
        qs: ``q^1..q^L`` (e.g. ``mean_field_forward(...).q``); ``q^L`` may be omitted.
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        activation: Hidden activation ``f``.
    """
    n, v = _check(widths, weight_vars)
    n_layers = len(v)
    q = np.asarray(qs, dtype=np.float64)
    if len(q) not in (n_layers, n_layers - 1):
        raise XavinitError(f"need {n_layers} (or {n_layers - 1}) values of q, got {len(q)}")
    out = np.empty(n_layers)
    out[-1] = top_backprop_var
    deriv_sq = _derivative_sq(activation)
    for k in range(n_layers - 2, -1, -1):  # 0-based: layer k+1 from layer k+2
        kinks = (0.0, *activation.kinks)
        chi = n[k + 2] * v[k + 1] * gaussian_expectation(deriv_sq, q[k], kinks=kinks)
        out[k] = out[k + 1] * chi
    return out


def _derivative(activation: Activation) -> Callable[[Array], Array]:
    return activation.derivative_of


_ORDER = 101
""":func:`gaussian_expectation`'s default order, which :func:`_expectations` shares."""


def _expectations(
    fns: Sequence[Callable[[Array], Array]], q: float | Array, kinks: Sequence[float]
) -> list[Any]:
    """``E_z[g(sqrt(q) z)]`` for each ``g`` of ``fns``: :func:`gaussian_expectation`'s nodes and
    sums exactly, the quadrature rule (the costly part for a small network) built once for all."""
    q_arr = np.asarray(q, dtype=np.float64)
    if np.any(q_arr < 0) or not np.all(np.isfinite(q_arr)):
        raise XavinitError(f"variance q must be finite and >= 0, got {q!r}")
    std = np.sqrt(q_arr).reshape(-1)
    nodes, weights = normal_rule(0.0, std, tuple(kinks), (_ORDER + 1) // 2)
    out: list[Any] = []
    for fn in fns:
        result = np.sum(np.asarray(fn(nodes), dtype=np.float64) * weights, axis=1)
        out.append(float(result[0]) if q_arr.ndim == 0 else result.reshape(q_arr.shape))
    return out


@dataclass(frozen=True)
class MeanFieldGradients:
    """Mean-field moments across two examples ``b != b'`` and the weight-gradient prediction,
    one entry per layer ``k = 1..L``.

    Attributes:
        correlation: ``c^k``, the correlation of two examples' pre-activations ``s^k``.
        activation_cross: ``E[z^k_b z^k_b']`` (post-activations; the logits at ``k = L``).
        backprop_var: ``E[(delta^k)^2]``, ``delta = dC_b/ds`` (its mean is 0).
        backprop_cross: ``E[delta^k_b delta^k_b']``.
        weight_grad_var: ``Var[dC/dW^k]`` of the batch-mean cost.
        forward: the mean-field forward prediction these were computed from.
    """

    correlation: Array
    activation_cross: Array
    backprop_var: Array
    backprop_cross: Array
    weight_grad_var: Array
    forward: MeanFieldForward | None = None


def mean_field_weight_grad_var(
    input_second_moment: float,
    input_cross_moment: float,
    widths: Sequence[int],
    weight_vars: Sequence[float],
    activation: Activation,
    top_backprop_var: float,
    top_cross_moment: float,
    batch: int,
    bias_vars: Sequence[float] | Array | float = 0.0,
) -> MeanFieldGradients:
    """Predict ``Var[dC/dW^k]`` of a batch-mean cost, cross-example terms included.

    ``dC/dW^k_{jl} = (1/B) sum_b z^{k-1}_{bj} delta^k_{bl}``, so, with forward and backward
    quantities independent (the mean-field gradient-independence assumption, Schoenholz et al.,
    2017) and all pairs of examples alike,

        Var[dC/dW^k] = (E[(z^{k-1})^2] E[(delta^k)^2] + (B - 1) E[z_b z_b'] E[delta_b delta_b']) / B.

    Forward, two examples' pre-activations are jointly Gaussian: ``q^k = n_{k-1} Var[W^k]
    E[(z^{k-1})^2]`` and covariance ``n_{k-1} Var[W^k] E[z^{k-1}_b z^{k-1}_b']``, and
    ``E[z_b z_b'] = E[f(u_1) f(u_2)]`` at that variance and correlation (at correlation 0 it is
    ``E[z]^2``: the mean of a non-centred activation). Backward, ``delta^k = (delta^{k+1}
    (W^{k+1})^T) f'(s^k)`` gives ``E[delta_b delta_b'] = n_{k+1} Var[W^{k+1}] E[f'(u_1)
    f'(u_2)] E[delta^{k+1}_b delta^{k+1}_b']`` from the measured top layer down (Poole et al.,
    2016; Schoenholz et al., 2017). Exact as the width grows at fixed batch; with softmax NLL
    the output error also depends on the batch's own activations through ``W^L``, a term of
    relative order batch/width that this leaves out. Biases ``b^k ~ (0, Var[b^k])``, shared by
    the examples, add ``Var[b^k]`` to both ``q^k`` and the covariance (Poole et al., 2016).

    Args:
        input_second_moment: ``E[x^2]``.
        input_cross_moment: ``E[x_b x_b']``, ``b != b'``.
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        activation: Hidden activation ``f``.
        top_backprop_var: ``E[(delta^L)^2]``, measured.
        top_cross_moment: ``E[delta^L_b delta^L_b']``, measured.
        batch: ``B``.
        bias_vars: ``Var[b^k]``, a scalar for all layers or one per layer.
    """
    n, v = _check(widths, weight_vars)
    sb2 = _bias_vars(bias_vars, v)
    n_layers = len(v)
    mf = mean_field_forward(input_second_moment, widths, weight_vars, activation, sb2)
    f, d = activation.forward, _derivative(activation)
    kinks = activation.kinks
    corr = np.empty(n_layers)
    cross = np.empty(n_layers)
    below_m2, below_cross = float(input_second_moment), float(input_cross_moment)
    below = [(below_m2, below_cross)]
    for k in range(n_layers):
        q = float(mf.q[k])
        cov = n[k] * v[k] * below_cross + sb2[k]
        corr[k] = min(1.0, max(-1.0, cov / q)) if q > 0 else 1.0
        if k == n_layers - 1:
            cross[k] = cov  # the logits
            break
        cross[k] = bivariate_expectation(f, f, q, corr[k], kinks, kinks)
        below_m2, below_cross = float(mf.second_moment[k]), float(cross[k])
        below.append((below_m2, below_cross))
    back = np.empty(n_layers)
    back_cross = np.empty(n_layers)
    back[-1], back_cross[-1] = top_backprop_var, top_cross_moment
    d2 = (  # E[f'^2] at every hidden layer's q, one vectorised quadrature
        _expectations((lambda s: np.square(d(s)),), mf.q[: n_layers - 1], (0.0, *kinks))[0]
        if n_layers > 1
        else np.empty(0)
    )
    for k in range(n_layers - 2, -1, -1):
        scale = n[k + 2] * v[k + 1]
        q = float(mf.q[k])
        back[k] = back[k + 1] * scale * float(d2[k])
        back_cross[k] = (
            back_cross[k + 1] * scale * bivariate_expectation(d, d, q, corr[k], kinks, kinks)
        )
    m2_below = np.array([m for m, _ in below])
    cross_below = np.array([c for _, c in below])
    dw = (m2_below * back + (batch - 1) * cross_below * back_cross) / batch
    return MeanFieldGradients(corr, cross, back, back_cross, dw, mf)


# --- gains: one activation in a deep network at its gain ---------------------------------------

CRITICAL_TOL = 1e-6
"""``|chi_1 - 1|`` below this counts as the edge of chaos (relu, linear, relu6: gradients and
correlations then change only polynomially with depth)."""


def correlation_map(
    c: float, gain: float, activation: Activation, q: float = 1.0, bias_var: float = 0.0
) -> float:
    """Return ``(gain^2 E[f(u_1) f(u_2)] + sb^2) / q`` for ``u`` of variance ``q`` and
    correlation ``c``.

    The correlation of two inputs' pre-activations one layer up when ``q`` is the fixed point of
    the variance map (Poole et al., 2016, eq. 5; the bias ``sb^2`` is shared by both inputs);
    its slope in ``c`` is ``gain^2 E[f'(u_1) f'(u_2)]`` (Price's theorem), which is ``chi_1`` at
    ``c = 1``.
    """
    kinks = activation.kinks
    f = activation.forward
    if bias_var == 0.0:
        return gain**2 * bivariate_expectation(f, f, q, c, kinks, kinks) / q
    return (gain**2 * bivariate_expectation(f, f, q, c, kinks, kinks) + bias_var) / q


def _correlation_slope(c: float, gain: float, activation: Activation, q: float = 1.0) -> float:
    d = _derivative(activation)
    kinks = activation.kinks
    return gain**2 * bivariate_expectation(d, d, q, c, kinks, kinks)


def correlation_fixed_point(
    gain: float, activation: Activation, chi: float, q: float = 1.0, bias_var: float = 0.0
) -> tuple[float, float]:
    """The stable fixed point ``c*`` of :func:`correlation_map` and the map's slope there.

    ``c = 1`` is always a fixed point, with slope ``chi_1``: stable when ``chi_1 < 1`` (order:
    all inputs end up alike). When ``chi_1 > 1`` (chaos) it repels and the stable one lies in
    ``[0, 1)``: ``C(c) - c`` is convex on ``[0, 1]`` (``C`` is a power series in ``c`` with
    non-negative coefficients, Mehler's formula), positive at 0 and negative just below 1, so
    Newton's method from ``c = 0`` climbs to it monotonically; odd activations stop at once at
    ``c* = 0``.

    Returns:
        ``(c*, slope)`` with ``slope = gain^2 E[f'(u_1) f'(u_2)]`` at ``c*``.
    """
    if chi <= 1.0 + CRITICAL_TOL:
        return 1.0, chi
    c = 0.0
    for _ in range(100):
        excess = correlation_map(c, gain, activation, q, bias_var) - c
        slope = _correlation_slope(c, gain, activation, q)
        if abs(excess) <= 1e-13:
            return c, slope
        if slope >= 1.0:  # cannot happen below c* for a convex map; stop rather than diverge
            break
        step = excess / (1.0 - slope)
        c = min(c + step, 1.0)
        if abs(step) <= 1e-13:
            return c, _correlation_slope(c, gain, activation, q)
    raise XavinitError(f"{activation.spec}: the correlation map's fixed point was not found")


@dataclass(frozen=True)
class GainTheory:
    """What mean-field theory says about one activation at unit variance.

    Attributes:
        activation: The activation's spec.
        forward_gain: ``1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)`` (keeps the forward second moment).
        backward_gain: ``1 / sqrt(E[f'(z)^2])`` (keeps the back-propagated variance).
        fixed_point_gain: The gain ``g`` at which the variance map ``q -> g^2
            E[f(sqrt(q) z)^2] + sb^2`` has its fixed point at ``q* = 1``: ``g = sqrt((1 -
            sb^2) / E[f(z)^2])``, the forward gain again without bias.
        fixed_point_slope: The variance map's slope at ``q* = 1``, ``g^2 E[z f f']`` (``E[z f
            f'] / E[f^2]`` without bias): below 1 depth pulls ``q`` back to 1; 1 (relu,
            linear) leaves it where it is.
        chi1: ``g^2 E[f'(z)^2]`` at the fixed-point gain: the per-layer factor of the
            back-propagated variance (order < 1 < chaos).
        phase: ``"ordered"``, ``"critical"`` (within :data:`CRITICAL_TOL`) or ``"chaotic"``.
        correlation_fixed_point: ``c*``, where two inputs' correlation goes with depth.
        depth_scale: ``-1 / ln(chi_c)``, ``chi_c`` the correlation map's slope at ``c*``: the
            depth over which correlations approach ``c*`` (Schoenholz et al., 2017); ``inf`` at
            the edge of chaos.
        torch_gain: ``torch.nn.init.calculate_gain``, ``None`` where PyTorch has none.
        torch_ratio: ``torch_gain / forward_gain``; the forward second moment changes by its
            square per layer at PyTorch's gain.
        mean: ``E[f(z)]``.
        second_moment: ``E[f(z)^2]``.
        order: Quadrature nodes per piece at which node doubling held to 1e-10.
        bias_var: ``sb^2``, the biases' variance the fixed point, slope, ``chi_1``, phase and
            correlations are computed at (0: no bias, the paper's).
    """

    activation: str
    forward_gain: float
    backward_gain: float
    fixed_point_gain: float
    fixed_point_slope: float
    chi1: float
    phase: str
    correlation_fixed_point: float
    depth_scale: float
    torch_gain: float | None
    torch_ratio: float | None
    mean: float
    second_moment: float
    order: int
    bias_var: float = 0.0


def gain_theory(activation: Activation | str, bias_var: float = 0.0) -> GainTheory:
    """Gains, fixed point, ``chi_1`` and depth scale of one activation, biases of variance
    ``bias_var`` (0: the paper's).

    With biases ``b ~ N(0, sb^2)`` the variance map is ``q -> g^2 E[f(sqrt(q) z)^2] + sb^2``
    (Poole et al., 2016): its fixed point sits at ``q* = 1`` for ``g^2 = (1 - sb^2) / E[f(z)^2]``
    (so ``sb^2 < 1``), where its slope is ``g^2 E[z f f']`` and ``chi_1 = g^2 E[f'(z)^2]``; both
    shrink by ``1 - sb^2`` against the bias-free gain's. The forward and backward gains are the
    bias-free ones (their definitions have no bias).

    Gaussian expectations by Gauss-Hermite quadrature split at the kinks, converged to 1e-10
    by node doubling (:func:`xavinit.core.activations.unit_moments`); correlations by two-dimensional
    quadrature (:func:`xavinit.core.quadrature.bivariate_expectation`).

    Example:
        >>> t = gain_theory("relu")
        >>> round(t.forward_gain ** 2, 9), t.phase, t.depth_scale
        (2.0, 'critical', inf)
    """
    if not 0.0 <= bias_var < 1.0:
        raise XavinitError(
            f"bias variance must be in [0, 1) to put the fixed point at q* = 1, got {bias_var!r}"
        )
    act = get_activation(activation) if isinstance(activation, str) else activation
    m = unit_moments(act)
    q_star = 1.0
    fixed_gain = math.sqrt((q_star - bias_var) / m.second_moment)
    forward = forward_gain(act)
    chi = fixed_gain**2 * m.derivative_second_moment
    f, d = act.forward, _derivative(act)
    zff = float(
        gaussian_expectation(
            lambda s: s * f(s) * d(s), q_star, order=2 * m.order + 1, kinks=act.kinks
        )
    )
    if abs(chi - 1.0) <= CRITICAL_TOL:
        phase, c_star, depth = "critical", 1.0, math.inf
    else:
        phase = "ordered" if chi < 1.0 else "chaotic"
        c_star, slope = correlation_fixed_point(fixed_gain, act, chi, q_star, bias_var)
        depth = -1.0 / math.log(slope) if 0.0 < slope < 1.0 else math.inf
    torch_gain = act.torch_gain
    return GainTheory(
        activation=act.spec,
        forward_gain=forward,
        backward_gain=1.0 / math.sqrt(m.derivative_second_moment),
        fixed_point_gain=fixed_gain,
        fixed_point_slope=fixed_gain**2 * zff,
        chi1=chi,
        phase=phase,
        correlation_fixed_point=c_star,
        depth_scale=depth,
        torch_gain=torch_gain,
        torch_ratio=None if torch_gain is None else torch_gain / forward,
        mean=m.mean,
        second_moment=m.second_moment,
        order=m.order,
        bias_var=float(bias_var),
    )


# --- the order-to-chaos phase diagram ----------------------------------------------------------

PHASE_Q_MAX = 1e6
"""A variance above this counts as unbounded: the map has no fixed point below it."""
PHASE_Q_START = 1e-6
"""Where the phase diagram's iteration starts when ``sb^2`` is smaller: just above ``q = 0``,
which is a fixed point without bias."""


@dataclass(frozen=True)
class PhaseDiagram:
    """The mean-field fixed point over a grid of ``(sigma_w, sigma_b)``, arrays of the grid's
    shape (NaN where the variance grows without bound, or where the iteration, slowed by a
    slope of 1, did not settle).

    Attributes:
        sigma_w: ``sw``, the gain (``Var[W] = sw^2 / fan_in``).
        sigma_b: ``sb``, the biases' standard deviation.
        q_star: The smallest fixed point of ``q -> sw^2 E[f(sqrt(q) z)^2] + sb^2``.
        slope: The variance map's slope there (:func:`length_map_slope`; ``<= 1``: it attracts
            from below).
        chi1: ``sw^2 E[f'(sqrt(q*) z)^2]`` there: order below 1, chaos above.
    """

    sigma_w: Array
    sigma_b: Array
    q_star: Array
    slope: Array
    chi1: Array


def phase_diagram(
    activation: Activation,
    sigma_w: Sequence[float] | Array,
    sigma_b: Sequence[float] | Array,
    tol: float = 1e-9,
    max_iter: int = 20_000,
) -> PhaseDiagram:
    """Where a deep network with weights ``N(0, sw^2 / fan_in)`` and biases ``N(0, sb^2)`` is
    ordered or chaotic (Poole et al., 2016, figure 1; Schoenholz et al., 2017).

    For every pair of the grid ``sigma_w x sigma_b`` (outer product of the two 1-D sequences;
    the result's arrays are ``(len(sigma_w), len(sigma_b))``) the variance map is
    iterated from ``q = max(sb^2, 1e-6)``: it is increasing in ``q``, so from below the smallest
    fixed point that attracts, ``q*``, is reached monotonically (it tends to 0 when ``sb = 0``
    and the map contracts near 0, ``sw f'(0) < 1``; above the fixed point ``q = 0`` when that
    repels). There ``chi_1 = sw^2 E[f'(sqrt(q*) z)^2]`` divides the plane into order
    (``chi_1 < 1``: correlations go to 1, gradients vanish) and chaos (``> 1``). The iteration
    stops when a step changes ``q`` by at most ``tol * max(1, q)``, or counts ``q`` as unbounded
    past :data:`PHASE_Q_MAX` (NaN entries): above the last fixed point the variance explodes.

    Args:
        activation: ``f``.
        sigma_w: Gains ``sw > 0``.
        sigma_b: Bias standard deviations ``sb >= 0``.
        tol: Convergence of the fixed point.
        max_iter: Iterations at most (slopes near 1 converge slowly).

    Example:
        >>> from xavinit.core.activations import get_activation
        >>> p = phase_diagram(get_activation("tanh"), [0.5, 2.0], [0.0])
        >>> p.q_star[:, 0].round(4).tolist(), (p.chi1[:, 0] > 1).tolist()
        ([0.0, 2.1215], [False, True])
    """
    sw, sb = np.broadcast_arrays(
        np.asarray(sigma_w, dtype=np.float64)[..., None],
        np.asarray(sigma_b, dtype=np.float64)[None, ...],
    )
    if (
        np.any(sw <= 0)
        or np.any(sb < 0)
        or not (np.all(np.isfinite(sw)) and np.all(np.isfinite(sb)))
    ):
        raise XavinitError("phase diagram: need sigma_w > 0 and sigma_b >= 0, finite")
    sw2, sb2 = sw.ravel() ** 2, sb.ravel() ** 2
    kinks = (0.0, *activation.kinks)

    def second_moment(q: Array) -> Array:
        return np.asarray(
            gaussian_expectation(lambda s: np.square(activation.forward(s)), q, kinks=kinks)
        )

    q = np.maximum(sb2, PHASE_Q_START)
    active = np.ones(q.shape, dtype=bool)
    for _ in range(max_iter):
        index = np.flatnonzero(active)
        if index.size == 0:
            break
        nxt = sw2[index] * second_moment(q[index]) + sb2[index]
        done = np.abs(nxt - q[index]) <= tol * np.maximum(1.0, nxt)
        q[index] = nxt
        blown = nxt > PHASE_Q_MAX
        q[index[blown]] = np.nan
        active[index[done | blown]] = False
    q[active] = np.nan  # not converged: a slope of 1 to within the iterations' reach
    finite = np.isfinite(q)
    slope = np.full(q.shape, np.nan)
    chi = np.full(q.shape, np.nan)
    f, d = activation.forward, _derivative(activation)
    at = q[finite]
    zff = np.asarray(gaussian_expectation(lambda s: s * f(s) * d(s), at, kinks=kinks))
    slope[finite] = sw2[finite] * zff / at
    deriv_sq = np.asarray(gaussian_expectation(_derivative_sq(activation), at, kinks=kinks))
    chi[finite] = sw2[finite] * deriv_sq
    shape = sw.shape
    return PhaseDiagram(
        sigma_w=sw,
        sigma_b=sb,
        q_star=q.reshape(shape),
        slope=slope.reshape(shape),
        chi1=chi.reshape(shape),
    )
