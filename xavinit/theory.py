"""Closed-form predictions of activation and gradient variances at initialization.

Index convention (shared with :mod:`xavinit.network`): widths ``n_0..n_L``; layer ``k``
(1-based, ``k = 1..L``) is the ``k``-th weight matrix ``W^k``, from ``n_{k-1}`` to ``n_k``
units, with ``s^k = z^{k-1} W^k + b^k`` and ``z^k = f(s^k)``, ``z^0 = x``. Every returned array
has one entry per layer: entry ``k - 1`` belongs to layer ``k``. Weights are i.i.d. with mean 0
and the given variance ``Var[W^k]``; biases are 0 unless said.

Two regimes:

- Linear (Glorot and Bengio, 2010, section 4.2.1, eqs. 5-7): ``f'(0) = 1``, ``f(s) ~= s``.
- Mean field (Poole et al., 2016; Schoenholz et al., 2017): pre-activations are Gaussian with
  variance ``q^k``, Gaussian expectations by Gauss-Hermite quadrature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xavinit.activations import Activation, gaussian_expectation
from xavinit.errors import XavinitError

__all__ = [
    "MeanFieldForward",
    "chi1",
    "fixed_point",
    "length_map",
    "linear_activation_var",
    "linear_backprop_var",
    "linear_weight_grad_var",
    "mean_field_backward",
    "mean_field_forward",
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
    widths: Sequence[int], weight_vars: Sequence[float], input_var: float
) -> Array:
    """Return ``Var[z^k] = Var[x] prod_{k'=1..k} n_{k'-1} Var[W^{k'}]`` for ``k = 1..L``.

    Glorot and Bengio (2010), eq. 5, linear regime (``z^k = s^k``); entry ``L - 1`` is the
    output pre-activation ``s^L``.

    Args:
        widths: ``n_0..n_L`` (length ``L + 1``).
        weight_vars: ``Var[W^1]..Var[W^L]`` (length ``L``).
        input_var: ``Var[x]`` (one input component).

    Example:
        >>> linear_activation_var([100, 100, 100], [1 / 300, 1 / 300], 1.0).round(4).tolist()
        [0.3333, 0.1111]
    """
    n, v = _check(widths, weight_vars)
    return input_var * np.cumprod(n[:-1] * v)


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
    input_var: float,
    top_backprop_var: float,
) -> Array:
    """Return ``Var[dC/dW^k] = Var[z^{k-1}] Var[dC/ds^k]`` for ``k = 1..L`` (one example).

    Glorot and Bengio (2010), eq. 7: ``dC/dW^k_{jl} = z^{k-1}_j dC/ds^k_l`` with independent
    zero-mean factors, so ``Var = Var[x] prod_{k'<k} n_{k'-1} Var[W^{k'}] *
    Var[dC/ds^L] prod_{k'>k} n_{k'} Var[W^{k'}]``. With equal widths this is the same for
    every layer, whatever the weight variance. For a gradient averaged over a batch of ``B``
    independent examples divide by ``B``.

    Args:
        widths: ``n_0..n_L``.
        weight_vars: ``Var[W^1]..Var[W^L]``.
        input_var: ``Var[x]``.
        top_backprop_var: ``Var[dC/ds^L]``.
    """
    act = linear_activation_var(widths, weight_vars, input_var)
    below = np.concatenate([[float(input_var)], act[:-1]])  # Var[z^{k-1}]
    return below * linear_backprop_var(widths, weight_vars, top_backprop_var)


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
    m2 = gaussian_expectation(lambda s: np.square(activation.forward(s)), q)
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
        >>> from xavinit.activations import get_activation
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
        >>> from xavinit.activations import get_activation
        >>> round(chi1(1 / 3, get_activation("tanh"), 0.0), 4)
        0.3333
    """
    return float(weight_var_times_fan * gaussian_expectation(_derivative_sq(activation), q))


def mean_field_forward(
    q0_input_var: float,
    widths: Sequence[int],
    weight_vars: Sequence[float],
    activation: Activation,
    bias_vars: Sequence[float] | float = 0.0,
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
    sb2 = np.broadcast_to(np.asarray(bias_vars, dtype=np.float64), v.shape)
    q = np.empty_like(v)
    mean = np.empty_like(v)
    m2 = np.empty_like(v)
    prev_m2 = float(q0_input_var)
    for k in range(len(v)):
        q[k] = n[k] * v[k] * prev_m2 + sb2[k]
        mean[k] = gaussian_expectation(activation.forward, q[k])
        m2[k] = gaussian_expectation(lambda s: np.square(activation.forward(s)), q[k])
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
        chi = n[k + 2] * v[k + 1] * gaussian_expectation(deriv_sq, q[k])
        out[k] = out[k + 1] * chi
    return out
