"""Elementwise activation kernels: ``f``, ``f'`` and the saturation rule of each activation.

Every kernel works on numpy arrays of any shape (and on torch and cupy arrays, through
:func:`xavinit.core.backends.ops_for`) and keeps a floating input's dtype; ``out=`` writes in
place. Derivatives take both the pre-activation ``s`` and the post-activation ``z = f(s)`` so
that the cheap form can be used where it exists (Glorot and Bengio, 2010, keep only ``z``):
tanh ``1 - z^2``, sigmoid ``z (1 - z)``, softsign ``(1 - |z|)^2``, relu ``[z > 0]``, elu
``z + alpha`` below 0, softplus ``1 - e^-z``, hardtanh ``[|z| < 1]``, relu6 ``[0 < z < 6]``.

Each activation's kernels, range, kinks and whether ``f'`` needs ``s`` are one
:class:`Kernels` value here (a factory for the parametrised leaky relu and elu); the registry
that names them, with their parameters, PyTorch gains and aliases, is
:mod:`xavinit.core.activations`.

GELU is the tanh approximation ``0.5 s (1 + tanh(sqrt(2/pi) (s + 0.044715 s^3)))`` (Hendrycks
and Gimpel, 2016; PyTorch's ``approximate="tanh"``), within 1e-3 of the exact ``s Phi(s)``.
numpy has no erf: :func:`erf` is :func:`xavinit.core.stats.erf` on numpy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from xavinit.core.backends import ops_for
from xavinit.core.stats import erf as numpy_erf

__all__ = [
    "ERF",
    "GELU",
    "GELU_TANH_C",
    "HARDTANH",
    "LINEAR",
    "MISH",
    "RELU",
    "RELU6",
    "RELU6_CAP",
    "SELU",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "SIGMOID",
    "SILU",
    "SOFTPLUS",
    "SOFTSIGN",
    "TANH",
    "Kernels",
    "as_float",
    "elu_kernels",
    "erf",
    "leaky_relu_kernels",
]

Array = np.ndarray
Forward = Callable[[Array, Array | None], Array]
"""``f(s, out)``: writes ``f(s)`` into ``out`` when given."""
Derivative = Callable[[Array | None, Array, Array | None], Array]
"""``f'(s, z, out)`` with ``z = f(s)``; ``s`` may be ``None`` when ``f'`` is a function of ``z``."""
Saturation = Callable[[Array], Array]
"""Saturated units (a boolean array) from the post-activations ``z``."""

SELU_LAMBDA = 1.0507009873554805
"""SELU scale lambda (Klambauer et al., 2017)."""
SELU_ALPHA = 1.6732632423543772
"""SELU negative-branch alpha (Klambauer et al., 2017)."""
GELU_TANH_C = math.sqrt(2.0 / math.pi)
"""``sqrt(2/pi)`` in the tanh approximation of GELU (Hendrycks and Gimpel, 2016)."""
_GELU_A = 0.044715
_SATURATION_FRACTION = 0.99
RELU6_CAP = 6.0
"""The upper clip of ReLU6 (Krizhevsky, 2010; MobileNets)."""


@dataclass(frozen=True)
class Kernels:
    """One activation's elementwise functions and what quadrature and histograms need.

    Attributes:
        forward: ``f(s, out)``.
        derivative: ``f'(s, z, out)``.
        saturated: The saturation rule on ``z``.
        limits: Range ``(lo, hi)`` of ``f``, ``math.inf`` marking an unbounded side; ``None``
            when unbounded on both sides.
        kinks: The points ``s`` where ``f``, ``f'`` or ``f''`` jumps; ``f`` is analytic between.
        needs_preactivation: True when ``derivative`` needs ``s`` (not computable from ``z``).
    """

    forward: Forward
    derivative: Derivative
    saturated: Saturation
    limits: tuple[float, float] | None
    kinks: tuple[float, ...] = ()
    needs_preactivation: bool = False


def as_float(a: Array) -> Array:
    """``a`` as a floating array: numpy input converted (integers to float64), a torch or
    cupy array as it is (the core only makes floating ones)."""
    if ops_for(a) is not np:
        return a
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.inexact) else a.astype(np.float64)


def _never(z: Array) -> Array:
    return ops_for(z).zeros_like(z, dtype=bool)


# sigmoid: f(s) = 1/(1 + e^-s) = 0.5 tanh(0.5 s) + 0.5 (no overflow); f' = z (1 - z).
def _sigmoid(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    out = xp.multiply(s, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _sigmoid_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    out = xp.subtract(1.0, z, out=out)
    out *= z
    return out


def _sigmoid_sat(z: Array) -> Array:
    return (z < 1.0 - _SATURATION_FRACTION) | (z > _SATURATION_FRACTION)


# tanh: f' = 1 - z^2.
def _tanh(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.tanh(s, out=out)


def _tanh_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    out = xp.multiply(z, z, out=out)
    xp.subtract(1.0, out, out=out)
    return out


def _symmetric_sat(z: Array) -> Array:
    xp = ops_for(z)
    return xp.abs(z) > _SATURATION_FRACTION


# softsign: f(s) = s/(1 + |s|); f' = 1/(1 + |s|)^2 = (1 - |z|)^2.
def _softsign(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    denom = xp.abs(s)
    denom += 1.0
    return xp.divide(s, denom, out=out)


def _softsign_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    out = xp.abs(z, out=out)
    xp.subtract(1.0, out, out=out)
    out *= out
    return out


# relu: f = max(s, 0); f' = [s > 0] = [z > 0] (f'(0) = 0 by convention).
def _relu(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.maximum(s, 0.0, out=out)


def _relu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    if out is None:
        out = xp.empty_like(z)
    xp.greater(z, 0, out=out)
    return out


def _off_sat(z: Array) -> Array:
    return z <= 0


def leaky_relu_kernels(slope: float) -> Kernels:
    """Leaky ReLU: ``f = s`` if ``s > 0`` else ``slope s``; ``f' = 1`` if ``z > 0`` else
    ``slope`` (``slope >= 0``; Maas et al., 2013). Off (saturated) at ``z <= 0``."""

    def forward(s: Array, out: Array | None) -> Array:
        xp = ops_for(s)
        pick = xp.maximum if slope <= 1.0 else xp.minimum
        scaled = xp.multiply(s, slope)
        return pick(s, scaled, out=out)

    def derivative(s: Array | None, z: Array, out: Array | None) -> Array:
        xp = ops_for(z)
        if out is None:
            out = xp.empty_like(z)
        xp.greater(z, 0, out=out)
        out *= 1.0 - slope
        out += slope
        return out

    lo = 0.0 if slope == 0.0 else -math.inf
    return Kernels(forward, derivative, _off_sat, (lo, math.inf), kinks=(0.0,))


# linear: f = s; f' = 1.
def _linear(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    if out is None:
        out = xp.empty_like(s)
    xp.copyto(out, s)
    return out


def _linear_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    if out is None:
        return xp.ones_like(z)
    xp.copyto(out, 1.0)
    return out


# selu: f = lambda s (s > 0), lambda alpha (e^s - 1) (s <= 0);
# f' = lambda (s > 0), lambda alpha e^s = z + lambda alpha (s <= 0).
def _selu(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    neg = xp.minimum(s, 0.0)
    xp.expm1(neg, out=neg)
    neg *= SELU_ALPHA
    out = xp.maximum(s, 0.0, out=out)
    out += neg
    out *= SELU_LAMBDA
    return out


def _selu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    out = xp.add(z, SELU_LAMBDA * SELU_ALPHA, out=out)
    xp.copyto(out, SELU_LAMBDA, where=z > 0)
    return out


def _selu_sat(z: Array) -> Array:
    return z < -_SATURATION_FRACTION * SELU_LAMBDA * SELU_ALPHA


# gelu (tanh approximation): u = c (s + a s^3), f = 0.5 s (1 + tanh u),
# f' = 0.5 (1 + tanh u) + 0.5 s (1 - tanh^2 u) c (1 + 3 a s^2).
def _gelu(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    u = xp.multiply(s, s)
    u *= _GELU_A
    u += 1.0
    u *= s
    u *= GELU_TANH_C
    xp.tanh(u, out=u)
    u += 1.0
    u *= 0.5
    return xp.multiply(s, u, out=out)


def _gelu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    assert s is not None
    s2 = xp.multiply(s, s)
    t = xp.multiply(s2, _GELU_A)
    t += 1.0
    t *= s
    t *= GELU_TANH_C
    xp.tanh(t, out=t)  # t = tanh(u)
    s2 *= 3.0 * _GELU_A
    s2 += 1.0
    s2 *= GELU_TANH_C
    s2 *= s  # s c (1 + 3 a s^2)
    out = xp.multiply(t, t, out=out)
    xp.subtract(1.0, out, out=out)
    out *= s2
    out += t
    out += 1.0
    out *= 0.5
    return out


_GELU_MIN = -0.17004075057125403  # min of the tanh-approximate GELU, at s = -0.75246


def elu_kernels(alpha: float) -> Kernels:
    """ELU (Clevert et al., 2016): ``f = s`` (``s > 0``), ``alpha (e^s - 1)`` (``s <= 0``);
    ``f' = 1`` (``s > 0``), ``alpha e^s = z + alpha`` (``s <= 0``). Saturated at
    ``z <= -0.99 alpha`` (near the lower limit)."""

    def forward(s: Array, out: Array | None) -> Array:
        xp = ops_for(s)
        neg = xp.minimum(s, 0.0)
        xp.expm1(neg, out=neg)
        neg *= alpha
        out = xp.maximum(s, 0.0, out=out)
        out += neg
        return out

    def derivative(s: Array | None, z: Array, out: Array | None) -> Array:
        xp = ops_for(z)
        out = xp.add(z, alpha, out=out)
        xp.copyto(out, 1.0, where=z > 0)
        return out

    def saturated(z: Array) -> Array:
        return z <= -_SATURATION_FRACTION * alpha

    return Kernels(forward, derivative, saturated, (-alpha, math.inf), kinks=(0.0,))


def _sigmoid_of(s: Array) -> Array:
    """``1 / (1 + e^-s)`` as ``0.5 tanh(0.5 s) + 0.5``: no overflow, a new array."""
    xp = ops_for(s)
    out = xp.multiply(s, 0.5)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# silu (swish): f = s sigmoid(s); f' = sigmoid(s) (1 + s (1 - sigmoid(s))) (Elfwing et al., 2018).
def _silu(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.multiply(s, _sigmoid_of(s), out=out)


def _silu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    assert s is not None
    sig = _sigmoid_of(s)
    out = xp.subtract(1.0, sig, out=out)
    out *= s
    out += 1.0
    out *= sig
    return out


_SILU_MIN = -0.27846454276107380  # min of s sigmoid(s), at s = -1.27846 (where f = s + 1)

# The exponent is clipped where e^s is 0 or infinite to the precision that matters: below
# -80 (e^-80 = 2e-35 stays a normal float32) and, for tanh(softplus), above 20 (tanh = 1).
_EXP_LOW, _EXP_HIGH = -80.0, 20.0


# mish: f = s tanh(softplus(s)) (Misra, 2019). With n = e^s, t = tanh(log(1 + n)) =
# n (n + 2) / (n (n + 2) + 2); f' = t + s sigmoid(s) (1 - t^2).
def _mish_t(s: Array) -> Array:
    xp = ops_for(s)
    n = xp.clip(s, _EXP_LOW, _EXP_HIGH)
    xp.exp(n, out=n)
    num = n + 2.0
    num *= n
    den = num + 2.0
    return xp.divide(num, den, out=num)


def _mish(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.multiply(s, _mish_t(s), out=out)


def _mish_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    assert s is not None
    t = _mish_t(s)
    out = xp.multiply(t, t, out=out)
    xp.subtract(1.0, out, out=out)
    out *= _sigmoid_of(s)
    out *= s
    out += t
    return out


_MISH_MIN = -0.30884341301725040  # min of mish, at s = -1.19243


# softplus: f = log(1 + e^s) = max(s, 0) + log1p(e^-|s|); f' = sigmoid(s) = 1 - e^-z.
def _softplus(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    t = xp.abs(s)
    xp.negative(t, out=t)
    xp.maximum(t, _EXP_LOW, out=t)
    xp.exp(t, out=t)
    xp.log1p(t, out=t)
    out = xp.maximum(s, 0.0, out=out)
    out += t
    return out


def _softplus_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    out = xp.negative(z, out=out)
    xp.expm1(out, out=out)
    xp.negative(out, out=out)
    return out


def _softplus_sat(z: Array) -> Array:
    return z < 1.0 - _SATURATION_FRACTION


# hardtanh: f = clip(s, -1, 1); f' = [|s| < 1] = [|z| < 1].
def _hardtanh(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.clip(s, -1.0, 1.0, out=out)


def _hardtanh_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    inside = xp.abs(z) < 1.0
    if out is None:
        out = xp.empty_like(z)
    xp.copyto(out, inside)
    return out


def _clipped_sat(z: Array) -> Array:
    xp = ops_for(z)
    return xp.abs(z) >= 1.0


# relu6: f = min(max(s, 0), 6); f' = [0 < s < 6] = [0 < z < 6].
def _relu6(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    return xp.clip(s, 0.0, RELU6_CAP, out=out)


def _relu6_d(s: Array | None, z: Array, out: Array | None) -> Array:
    xp = ops_for(z)
    inside = (z > 0) & (z < RELU6_CAP)
    if out is None:
        out = xp.empty_like(z)
    xp.copyto(out, inside)
    return out


def _relu6_sat(z: Array) -> Array:
    return (z <= 0) | (z >= RELU6_CAP)


# erf: f = erf(s); f' = 2/sqrt(pi) e^{-s^2} (the exponent clipped at -80, see _EXP_LOW).
def erf(s: Array, out: Array | None = None) -> Array:
    """The error function, vectorised: :func:`xavinit.core.stats.erf` on numpy arrays (exact to
    about 1e-16), the library's own erf on torch and cupy arrays (numpy has none).

    Example:
        >>> float(erf(np.array([0.5]))[0]) == math.erf(0.5)
        True
    """
    s = as_float(s)
    if ops_for(s) is not np:
        return _native_erf(s, out)
    return numpy_erf(s, out=out)


def _native_erf(s: Array, out: Array | None) -> Array:
    xp = ops_for(s)
    if hasattr(xp, "erf"):  # torch
        return xp.erf(s, out=out)
    from cupyx.scipy.special import erf as cupy_erf

    return cupy_erf(s, out)


def _erf(s: Array, out: Array | None) -> Array:
    return erf(s, out=out)


def _erf_d(s: Array | None, z: Array, out: Array | None) -> Array:
    assert s is not None
    xp = ops_for(s)
    out = xp.multiply(s, s, out=out)
    xp.negative(out, out=out)
    xp.maximum(out, _EXP_LOW, out=out)
    xp.exp(out, out=out)
    out *= 2.0 / math.sqrt(math.pi)
    return out


SIGMOID = Kernels(_sigmoid, _sigmoid_d, _sigmoid_sat, (0.0, 1.0))
TANH = Kernels(_tanh, _tanh_d, _symmetric_sat, (-1.0, 1.0))
SOFTSIGN = Kernels(_softsign, _softsign_d, _symmetric_sat, (-1.0, 1.0), kinks=(0.0,))
RELU = Kernels(_relu, _relu_d, _off_sat, (0.0, math.inf), kinks=(0.0,))
LINEAR = Kernels(_linear, _linear_d, _never, None)
SELU = Kernels(_selu, _selu_d, _selu_sat, (-SELU_LAMBDA * SELU_ALPHA, math.inf), kinks=(0.0,))
GELU = Kernels(_gelu, _gelu_d, _never, (_GELU_MIN, math.inf), needs_preactivation=True)
SILU = Kernels(_silu, _silu_d, _never, (_SILU_MIN, math.inf), needs_preactivation=True)
MISH = Kernels(_mish, _mish_d, _never, (_MISH_MIN, math.inf), needs_preactivation=True)
SOFTPLUS = Kernels(_softplus, _softplus_d, _softplus_sat, (0.0, math.inf))
HARDTANH = Kernels(_hardtanh, _hardtanh_d, _clipped_sat, (-1.0, 1.0), kinks=(-1.0, 1.0))
RELU6 = Kernels(_relu6, _relu6_d, _relu6_sat, (0.0, RELU6_CAP), kinks=(0.0, RELU6_CAP))
ERF = Kernels(_erf, _erf_d, _symmetric_sat, (-1.0, 1.0), needs_preactivation=True)
