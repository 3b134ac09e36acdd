"""Hidden-layer activation functions, their derivatives, saturation rules and gains.

Every activation works on numpy arrays of any shape and keeps a floating input's dtype.
Derivatives take both the pre-activation ``s`` and the post-activation ``z = f(s)`` so that
the cheap form can be used where it exists (Glorot and Bengio, 2010, keep only ``z``):
tanh ``1 - z^2``, sigmoid ``z (1 - z)``, softsign ``(1 - |z|)^2``, relu ``[z > 0]``, elu
``z + alpha`` below 0, softplus ``1 - e^-z``, hardtanh ``[|z| < 1]``, relu6 ``[0 < z < 6]``.

The registry: sigmoid, tanh, softsign, relu, leaky-relu, linear, selu, gelu, elu, silu (swish),
mish, softplus, hardtanh, relu6 and erf. Each has ``f``, ``f'``, a saturation rule and its
``kinks``, the points where ``f`` or a derivative jumps, at which Gaussian quadrature splits.

Gains: this module owns them. ``torch_gain`` is what PyTorch's ``torch.nn.init.calculate_gain``
returns (linear 1, sigmoid 1, tanh 5/3, relu sqrt(2), leaky-relu sqrt(2/(1 + slope^2)), selu
3/4; PyTorch has none for the others). :func:`forward_gain` and :func:`backward_gain` are exact:
``1 / sqrt(E[f(z)^2])`` and ``1 / sqrt(E[f'(z)^2])`` for ``z ~ N(0, 1)``, by Gauss-Hermite
quadrature split at the kinks (see :func:`gaussian_moments`). ``Activation.gain``, and so a
scheme's ``gain=NAME``, is PyTorch's value where PyTorch has one (specs written against PyTorch
keep their meaning) and the exact forward gain otherwise.

GELU is the tanh approximation ``0.5 s (1 + tanh(sqrt(2/pi) (s + 0.044715 s^3)))`` (Hendrycks
and Gimpel, 2016; PyTorch's ``approximate="tanh"``), within 1e-3 of the exact ``s Phi(s)``; its
derivative and its gains are those of the approximation, which is what networks here compute.
numpy has no erf: :func:`erf` evaluates the Taylor series of ``math.erf`` about 48 points
(exact to about 1e-16), vectorised.

Example:
    >>> act = get_activation("tanh")
    >>> float(act.forward(np.array([0.0]))[0]), round(act.gain, 4), round(forward_gain(act), 4)
    (0.0, 1.6667, 1.5925)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.hermite import hermgauss
from numpy.polynomial.legendre import leggauss

from xavinit.core.backends import ops_for
from xavinit.core.stats import erf as numpy_erf
from xavinit.errors import XavinitError
from xavinit.limits import ACTIVATION_PARAMETER_MAX
from xavinit.specs import split_spec, suggest

__all__ = [
    "ACTIVATION_ALIASES",
    "ACTIVATION_NAMES",
    "DEFAULT_ELU_ALPHA",
    "DEFAULT_LEAKY_SLOPE",
    "GAIN_NAMES",
    "GELU_TANH_C",
    "QUADRATURE_TOL",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "TORCH_GAIN_NAMES",
    "Activation",
    "UnitMoments",
    "activation_gain",
    "backward_gain",
    "bivariate_expectation",
    "erf",
    "forward_gain",
    "gaussian_expectation",
    "gaussian_moments",
    "get_activation",
    "unit_moments",
]

Array = np.ndarray

SELU_LAMBDA = 1.0507009873554805
"""SELU scale lambda (Klambauer et al., 2017)."""
SELU_ALPHA = 1.6732632423543772
"""SELU negative-branch alpha (Klambauer et al., 2017)."""
GELU_TANH_C = math.sqrt(2.0 / math.pi)
"""``sqrt(2/pi)`` in the tanh approximation of GELU (Hendrycks and Gimpel, 2016)."""
_GELU_A = 0.044715
_SATURATION_FRACTION = 0.99
DEFAULT_LEAKY_SLOPE = 0.01
"""PyTorch's default ``negative_slope`` for leaky ReLU."""
DEFAULT_ELU_ALPHA = 1.0
"""PyTorch's default ``alpha`` for ELU (Clevert et al., 2016)."""
RELU6_CAP = 6.0
"""The upper clip of ReLU6 (Krizhevsky, 2010; MobileNets)."""

_TORCH_GAINS: dict[str, float] = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "selu": 3.0 / 4.0,
}
"""``torch.nn.init.calculate_gain`` for every activation it knows but leaky-relu (see
:func:`_leaky_relu_gain`); it raises ``ValueError`` for the others."""

TORCH_GAIN_NAMES: tuple[str, ...] = ("linear", "sigmoid", "tanh", "relu", "leaky-relu", "selu")
"""The activations PyTorch's ``calculate_gain`` knows (it spells leaky-relu ``leaky_relu``)."""


def _leaky_relu_gain(slope: float) -> float:
    """sqrt(2 / (1 + slope^2)): He et al. (2015) for leaky ReLU; sqrt(2) at slope 0."""
    return math.sqrt(2.0 / (1.0 + slope**2))


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``z = f(s)`` with its derivative and saturation rule.

    Build one with :func:`get_activation`; the callables are internal.

    Attributes:
        name: Canonical name, one of :data:`ACTIVATION_NAMES`.
        torch_gain: What PyTorch's ``calculate_gain`` returns, ``None`` where it has no value.
        limits: Range ``(lo, hi)`` of ``f``, ``math.inf`` marking an unbounded side; ``None``
            when unbounded on both sides.
        needs_preactivation: True when ``derivative`` needs ``s`` (not computable from ``z``).
        params: Parameters as ``((key, value), ...)``, e.g. ``(("slope", 0.2),)``.
        kinks: The points ``s`` where ``f``, ``f'`` or ``f''`` jumps (relu ``(0,)``, hardtanh
            ``(-1, 1)``); ``f`` is analytic between them. Quadrature splits there.
    """

    name: str
    torch_gain: float | None
    limits: tuple[float, float] | None
    needs_preactivation: bool
    params: tuple[tuple[str, float], ...]
    _forward: Callable[[Array, Array | None], Array] = field(repr=False, compare=False)
    _derivative: Callable[[Array | None, Array, Array | None], Array] = field(
        repr=False, compare=False
    )
    _saturated: Callable[[Array], Array] = field(repr=False, compare=False)
    kinks: tuple[float, ...] = ()

    @property
    def spec(self) -> str:
        """The spec string that :func:`get_activation` maps back to this activation."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v!r}" for k, v in self.params)

    @property
    def gain(self) -> float:
        """The recommended gain, what a scheme's ``gain=NAME`` means: PyTorch's
        ``calculate_gain`` where it has one, else the exact :func:`forward_gain`."""
        return self.torch_gain if self.torch_gain is not None else forward_gain(self)

    def forward(self, s: Array, out: Array | None = None) -> Array:
        """Return ``z = f(s)``, written into ``out`` when given (``out`` may be ``s``).

        Args:
            s: Pre-activations, any shape.
            out: Optional output array of ``s``'s shape and dtype.
        """
        return self._forward(_as_float(s), out)

    __call__ = forward

    def derivative(self, s: Array | None, z: Array, out: Array | None = None) -> Array:
        """Return ``f'(s)``, using the post-activation ``z = f(s)`` where that is cheaper.

        At a kink the derivative is the one-sided value PyTorch uses (0 for relu at 0,
        hardtanh at +-1, relu6 at 0 and 6).

        Args:
            s: Pre-activations; may be ``None`` unless ``needs_preactivation``.
            z: Post-activations ``f(s)``, same shape.
            out: Optional output array of ``z``'s shape and dtype (not ``s`` or ``z``).
        """
        if s is None and self.needs_preactivation:
            raise XavinitError(f"activation {self.name!r} needs the pre-activation s for f'(s)")
        return self._derivative(None if s is None else _as_float(s), _as_float(z), out)

    def derivative_of(self, s: Array) -> Array:
        """Return ``f'(s)`` from ``s`` alone (for quadrature and tests)."""
        s = _as_float(s)
        return self.derivative(s, self.forward(s))

    def saturated(self, z: Array) -> Array:
        """Return a boolean array marking saturated units from post-activations ``z``.

        Rules: tanh, softsign and erf ``|z| > 0.99``; sigmoid ``z < 0.01 or z > 0.99``;
        relu and leaky-relu ``z <= 0`` (the unit is off, ``s <= 0``); selu
        ``z < -0.99 lambda alpha`` and elu ``z <= -0.99 alpha`` (near the lower limit);
        softplus ``z < 0.01`` (within 0.01 of its lower limit, where ``f' < 0.01``); hardtanh
        ``|z| >= 1`` and relu6 ``z <= 0 or z >= 6`` (clipped: ``f' = 0``); linear, gelu, silu
        and mish never saturate (all False).
        """
        return self._saturated(_as_float(z))


def _as_float(a: Array) -> Array:
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


def _make_leaky(
    slope: float,
) -> tuple[Callable[[Array, Array | None], Array], Callable[..., Array]]:
    # leaky relu: f = s if s > 0 else slope*s; f' = 1 if z > 0 else slope (slope >= 0).
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

    return forward, derivative


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


# elu: f = s (s > 0), alpha (e^s - 1) (s <= 0); f' = 1 (s > 0), alpha e^s = z + alpha (s <= 0).
def _make_elu(
    alpha: float,
) -> tuple[Callable[[Array, Array | None], Array], Callable[..., Array], Callable[..., Array]]:
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

    return forward, derivative, saturated


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
    s = _as_float(s)
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


def _build(name: str, params: dict[str, float]) -> Activation:
    """The activation ``name`` with validated ``params``; ``torch_gain`` from the table."""
    torch_gain = (
        _leaky_relu_gain(params["slope"]) if name == "leaky-relu" else _TORCH_GAINS.get(name)
    )
    plain = (name, torch_gain)
    if name == "sigmoid":
        return Activation(*plain, (0.0, 1.0), False, (), _sigmoid, _sigmoid_d, _sigmoid_sat)
    if name == "tanh":
        return Activation(*plain, (-1.0, 1.0), False, (), _tanh, _tanh_d, _symmetric_sat)
    if name == "softsign":
        return Activation(
            *plain, (-1.0, 1.0), False, (), _softsign, _softsign_d, _symmetric_sat, (0.0,)
        )
    if name == "relu":
        return Activation(*plain, (0.0, math.inf), False, (), _relu, _relu_d, _off_sat, (0.0,))
    if name == "leaky-relu":
        slope = params["slope"]
        fwd, der = _make_leaky(slope)
        lo = 0.0 if slope == 0.0 else -math.inf
        return Activation(
            *plain, (lo, math.inf), False, (("slope", slope),), fwd, der, _off_sat, (0.0,)
        )
    if name == "linear":
        return Activation(*plain, None, False, (), _linear, _linear_d, _never)
    if name == "selu":
        lo = -SELU_LAMBDA * SELU_ALPHA
        return Activation(*plain, (lo, math.inf), False, (), _selu, _selu_d, _selu_sat, (0.0,))
    if name == "gelu":
        return Activation(*plain, (_GELU_MIN, math.inf), True, (), _gelu, _gelu_d, _never)
    if name == "elu":
        alpha = params["alpha"]
        fwd, der, sat = _make_elu(alpha)
        return Activation(
            *plain, (-alpha, math.inf), False, (("alpha", alpha),), fwd, der, sat, (0.0,)
        )
    if name == "silu":
        return Activation(*plain, (_SILU_MIN, math.inf), True, (), _silu, _silu_d, _never)
    if name == "mish":
        return Activation(*plain, (_MISH_MIN, math.inf), True, (), _mish, _mish_d, _never)
    if name == "softplus":
        return Activation(*plain, (0.0, math.inf), False, (), _softplus, _softplus_d, _softplus_sat)
    if name == "hardtanh":
        return Activation(
            *plain, (-1.0, 1.0), False, (), _hardtanh, _hardtanh_d, _clipped_sat, (-1.0, 1.0)
        )
    if name == "relu6":
        return Activation(
            *plain, (0.0, RELU6_CAP), False, (), _relu6, _relu6_d, _relu6_sat, (0.0, RELU6_CAP)
        )
    if name == "erf":
        return Activation(*plain, (-1.0, 1.0), True, (), _erf, _erf_d, _symmetric_sat)
    raise AssertionError(name)  # pragma: no cover


ACTIVATION_NAMES: tuple[str, ...] = (
    "sigmoid",
    "tanh",
    "softsign",
    "relu",
    "leaky-relu",
    "linear",
    "selu",
    "gelu",
    "elu",
    "silu",
    "mish",
    "softplus",
    "hardtanh",
    "relu6",
    "erf",
)
"""Canonical activation names accepted by :func:`get_activation`."""

ACTIVATION_ALIASES: dict[str, str] = {
    "leaky_relu": "leaky-relu",
    "identity": "linear",
    "logistic": "sigmoid",
    "swish": "silu",
}
"""Alternative names and the canonical name each maps to."""

GAIN_NAMES: tuple[str, ...] = (*ACTIVATION_NAMES, *ACTIVATION_ALIASES)
"""The names :func:`activation_gain` (a scheme's ``gain=NAME``) accepts: every activation."""

_PARAMS: dict[str, dict[str, float]] = {
    "leaky-relu": {"slope": DEFAULT_LEAKY_SLOPE},
    "elu": {"alpha": DEFAULT_ELU_ALPHA},
}


def activation_gain(name: str, slope: float = DEFAULT_LEAKY_SLOPE) -> float:
    """Return the recommended gain of an activation, what a scheme's ``gain=NAME`` means.

    PyTorch's ``calculate_gain`` where it has one (linear, sigmoid: 1; tanh: 5/3; relu:
    sqrt(2); leaky relu: sqrt(2 / (1 + a^2)); selu: 3/4), so specs written against PyTorch keep
    their meaning; for every other activation the exact :func:`forward_gain`
    ``1 / sqrt(E[f(z)^2])``. Names are case-insensitive and ``_`` counts as ``-``; the accepted
    ones are :data:`GAIN_NAMES`; parameters take their defaults (elu ``alpha=1``).

    Raises:
        XavinitError: for an unknown activation name, listing the known ones.
    """
    key = name.strip().lower().replace("_", "-")
    canonical = ACTIVATION_ALIASES.get(key, ACTIVATION_ALIASES.get(name.strip().lower(), key))
    if canonical not in ACTIVATION_NAMES:
        raise XavinitError(
            f"unknown gain {name!r}{suggest(key, GAIN_NAMES)}; use a positive number or one of: "
            + ", ".join(ACTIVATION_NAMES)
        )
    if canonical == "leaky-relu":
        return _leaky_relu_gain(slope)
    return get_activation(canonical).gain


@functools.lru_cache(maxsize=1024)  # frozen: parsed once (config validates, the run reuses)
def get_activation(spec: str) -> Activation:
    """Return the activation named by ``spec``: ``name`` or ``name:key=value[,key=value]``.

    Names: sigmoid ``1/(1 + e^-s)`` (alias logistic), tanh, softsign ``s/(1 + |s|)``, relu,
    leaky-relu (alias leaky_relu; parameter ``slope >= 0``, default 0.01), linear (alias
    identity), selu (Klambauer et al., 2017), gelu (tanh approximation), elu (parameter
    ``alpha >= 0``, default 1; Clevert et al., 2016), silu ``s sigmoid(s)`` (alias swish),
    mish ``s tanh(softplus(s))``, softplus ``log(1 + e^s)``, hardtanh ``clip(s, -1, 1)``, relu6
    ``clip(s, 0, 6)``, erf. Names are case-insensitive.

    Args:
        spec: For example ``"tanh"`` or ``"leaky-relu:slope=0.2"``.

    Raises:
        XavinitError: (a ``ValueError``) for an unknown name or a bad parameter; the one-line
            message lists the valid choices and suggests the closest one.

    Example:
        >>> get_activation("leaky-relu:slope=0.2").spec
        'leaky-relu:slope=0.2'
    """
    if not isinstance(spec, str):
        raise XavinitError(f"activation spec must be a string, got {spec!r}")
    raw_name, items = split_spec(spec)
    key = raw_name.lower()
    name = ACTIVATION_ALIASES.get(key, key)
    if name not in ACTIVATION_NAMES:
        hint = suggest(key, [*ACTIVATION_NAMES, *ACTIVATION_ALIASES])
        raise XavinitError(
            f"unknown activation {raw_name!r}{hint}; valid: {', '.join(ACTIVATION_NAMES)}"
        )
    defaults = _PARAMS.get(name, {})
    params = dict(defaults)
    seen: set[str] = set()
    for item in items:
        if not item.text:
            continue  # empty items are allowed: "leaky-relu:slope=0.2,"
        pkey, pval = item.key, item.value
        if not defaults:
            raise XavinitError(f"activation {name!r} takes no parameters, got {item.text!r}")
        if pkey not in defaults:
            hint = suggest(pkey, defaults)
            raise XavinitError(
                f"activation {name!r}: unknown parameter {pkey!r}{hint}; "
                f"valid: {', '.join(defaults)}"
            )
        if pval is None:
            raise XavinitError(f"activation {name!r}: expected {pkey}=VALUE, got {item.text!r}")
        if pkey in seen:
            raise XavinitError(f"activation {name!r}: parameter {pkey!r} given twice")
        seen.add(pkey)
        try:
            value = float(pval)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0.0 or value > ACTIVATION_PARAMETER_MAX:
            raise XavinitError(
                f"activation {name!r}: {pkey} must be a number from 0 to "
                f"{ACTIVATION_PARAMETER_MAX:g}, got {pval!r}"
            )
        params[pkey] = value
    return _build(name, params)


# --- Gaussian quadrature ----------------------------------------------------------------------

QUADRATURE_TOL = 1e-10
"""Node doubling stops when doubling changes every expectation by at most this (relative to
``max(1, |value|)``)."""
_MIN_ORDER, _MAX_ORDER = 16, 256
_Z_TAIL = 38.0  # phi(38) = 1e-314: nothing lies beyond, for any integrand of moderate growth
_Z_CORE = 12.0  # phi(12) = 2e-32: pieces between kinks are clipped to [-12, 12]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@functools.lru_cache(maxsize=16)
def _hermite(order: int) -> tuple[Array, Array]:
    """Gauss-Hermite rule for ``E_z[g(z)]``: ``hermgauss`` nodes times sqrt(2), weights over
    sqrt(pi) (``int e^{-x^2} g(x) dx ~= sum w_i g(x_i)`` with ``z = sqrt(2) x``)."""
    nodes, weights = hermgauss(order)
    nodes = nodes * math.sqrt(2.0)
    weights = weights / math.sqrt(math.pi)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@functools.lru_cache(maxsize=16)
def _legendre(order: int) -> tuple[Array, Array]:
    """Gauss-Legendre rule on [-1, 1]."""
    nodes, weights = leggauss(order)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@functools.lru_cache(maxsize=16)
def _half_range(n: int, zmax: float = 20.0, panels: int = 80) -> tuple[Array, Array]:
    """Gauss rule for the weight ``phi(z)`` on ``[0, inf)`` (half-range Hermite), ``n`` nodes.

    Golub-Welsch on the Jacobi matrix of the polynomials orthonormal for ``phi`` on ``[0, zmax]``
    (``phi(20) ~ 1e-87``), their recurrence found by a discretised Stieltjes (Lanczos) procedure
    with full reorthogonalisation (Gautschi, 2004, 2.2) on a composite Gauss-Legendre grid of
    ``panels`` panels with ``max(12, 3 n / panels)`` nodes each.
    """
    x, w = _legendre(max(12, -(-3 * n // panels)))
    width = zmax / panels
    t = ((np.arange(panels)[:, None] + 0.5 + 0.5 * x) * width).ravel()
    wt = np.tile(w * (0.5 * width), panels) * np.exp(-0.5 * t * t) * _INV_SQRT_2PI
    alpha = np.zeros(n)
    beta = np.zeros(n)
    basis = np.zeros((n, t.size))
    basis[0] = 1.0 / math.sqrt(wt.sum())
    for k in range(n):
        alpha[k] = wt @ (t * basis[k] ** 2)
        if k + 1 == n:
            break
        r = t * basis[k]
        for _ in range(2):  # twice is enough (Kahan)
            r -= ((basis[: k + 1] * wt) @ r) @ basis[: k + 1]
        beta[k + 1] = math.sqrt(wt @ (r * r))
        basis[k + 1] = r / beta[k + 1]
    jacobi = np.diag(alpha) + np.diag(beta[1:], 1) + np.diag(beta[1:], -1)
    nodes, vecs = np.linalg.eigh(jacobi)
    weights = vecs[0] ** 2
    weights *= 0.5 / weights.sum()  # the half-line carries probability 1/2
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _split_rule(points: Array, order: int) -> tuple[Array, Array]:
    """Nodes and weights, each ``(R, M)``, of ``E_z[g(z)]`` for ``z ~ N(0, 1)``, split at the
    points of each row of ``points`` (``(R, P)``, rows sorted, first <= 0 <= last).

    Tails: ``int_p^inf g(z) phi(z) dz = int_0^inf g(p + t) phi(t) e^{-p t - p^2/2} dt`` with
    the half-range rule (``p >= 0``, so the factor decays), and the mirror image on the left.
    Between two points: Gauss-Legendre on the piece, clipped to ``[-12, 12]``, weights times
    ``phi``. Each piece gets ``order`` nodes.
    """
    y, v = _half_range(order)
    x, w = _legendre(order)
    hi, lo = points[:, -1:], points[:, :1]
    nodes = [hi + y, lo - y]
    with np.errstate(under="ignore"):
        weights = [v * np.exp(-hi * y - 0.5 * hi * hi), v * np.exp(lo * y - 0.5 * lo * lo)]
        for j in range(points.shape[1] - 1):
            a = np.clip(points[:, j : j + 1], -_Z_CORE, _Z_CORE)
            b = np.clip(points[:, j + 1 : j + 2], -_Z_CORE, _Z_CORE)
            half = 0.5 * (b - a)
            t = 0.5 * (a + b) + half * x
            nodes.append(t)
            weights.append(half * w * np.exp(-0.5 * t * t) * _INV_SQRT_2PI)
    return np.concatenate(nodes, axis=1), np.concatenate(weights, axis=1)


def normal_rule(
    mean: float | Array,
    std: float | Array,
    kinks: Sequence[float],
    order: int,
    split: bool = True,
) -> tuple[Array, Array]:
    """Nodes ``x`` and weights ``w`` with ``E[g(mean + std z)] ~= sum_j w_j g(x_j)`` per row.

    ``mean`` and ``std`` broadcast to ``R`` rows; both results are ``(R, M)``. Without kinks
    and with ``split=False``: Gauss-Hermite (``numpy.polynomial.hermite.hermgauss``), exact for
    polynomials of degree ``< 2 order`` and convergent for analytic ``g`` (slowly for
    saturating ones: ``tanh'^2`` needs 256 nodes for 1e-10). Otherwise the Gaussian weight is
    split at every kink (in ``z``: ``(k - mean) / std``) and at ``z = 0``, see
    :func:`_split_rule`, so that each piece converges spectrally (32 nodes for ``tanh'^2``).

    Args:
        mean: Mean of the Gaussian argument, scalar or ``(R,)``.
        std: Its standard deviation ``>= 0``, scalar or ``(R,)``.
        kinks: Points where ``g`` is not analytic.
        order: Nodes per piece.
        split: Split at 0 even without kinks.
    """
    mean_col = np.atleast_1d(np.asarray(mean, dtype=np.float64))[:, None]
    std_col = np.atleast_1d(np.asarray(std, dtype=np.float64))[:, None]
    mean_col, std_col = np.broadcast_arrays(mean_col, std_col)
    if not kinks and not split:
        z, w = _hermite(order)
        return mean_col + std_col * z, np.broadcast_to(w, (mean_col.shape[0], w.size))
    k = np.array(sorted(set(kinks)), dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        points = (k - mean_col) / std_col
    points = np.nan_to_num(points, nan=0.0, posinf=_Z_TAIL, neginf=-_Z_TAIL)
    points = np.clip(points, -_Z_TAIL, _Z_TAIL)
    if not (np.all(mean_col == 0.0) and 0.0 in k):  # else z = 0 is a kink already
        points = np.concatenate([points, np.zeros_like(mean_col)], axis=1)
    points = np.sort(points, axis=1)
    z, w = _split_rule(points, order)
    return mean_col + std_col * z, w


def gaussian_expectation(
    fn: Callable[[Array], Array],
    q: float | Array,
    order: int = 101,
    split: bool = True,
    kinks: Sequence[float] = (0.0,),
) -> float | Array:
    """Return ``E_z[fn(sqrt(q) z)]`` for ``z ~ N(0, 1)`` by Gaussian quadrature, fixed order.

    With ``split=False``: Gauss-Hermite with ``order`` nodes; exact for polynomials of degree
    ``< 2 order`` and for smooth activations, but only ``O(1/order)`` across a kink (errors of
    3e-3 for ``E[relu(z)]``, 2e-2 for softsign's ``E[f'(z)^2]`` at order 101).

    With ``split=True`` (default): the weight is split at ``z = 0`` and at every kink
    ``k / sqrt(q)`` (see :func:`normal_rule`), each piece with ``(order + 1) // 2`` nodes;
    pass an activation's ``kinks`` (the default ``(0,)`` covers relu, selu, softsign, elu).
    :func:`gaussian_moments` chooses the order itself, by node doubling.

    Args:
        fn: Vectorised function of an array of points.
        q: Variance ``>= 0``: a scalar, or an array (the result then has its shape).
        order: Number of quadrature points, about.
        split: Integrate each piece between kinks separately.
        kinks: Where ``fn`` is not analytic, in the argument's units.

    Example:
        >>> round(gaussian_expectation(lambda s: s**4, 2.0), 9)
        12.0
    """
    if order < 1:
        raise XavinitError(f"quadrature order must be >= 1, got {order}")
    q_arr = np.asarray(q, dtype=np.float64)
    if np.any(q_arr < 0) or not np.all(np.isfinite(q_arr)):
        raise XavinitError(f"variance q must be finite and >= 0, got {q!r}")
    std = np.sqrt(q_arr).reshape(-1)
    if split:
        nodes, weights = normal_rule(0.0, std, tuple(kinks), (int(order) + 1) // 2)
    else:
        nodes, weights = normal_rule(0.0, std, (), int(order), split=False)
    values = np.asarray(fn(nodes), dtype=np.float64)
    result = np.sum(values * weights, axis=1)
    return float(result[0]) if q_arr.ndim == 0 else result.reshape(q_arr.shape)


def gaussian_moments(
    fns: Callable[[Array], Array],
    mean: float = 0.0,
    std: float = 1.0,
    kinks: Sequence[float] = (),
    tol: float = QUADRATURE_TOL,
) -> tuple[Array, int]:
    """Return ``E[g_i(mean + std z)]`` for several ``g_i`` at once, and the order that did it.

    ``fns(x)`` maps nodes ``x`` of shape ``(1, M)`` to values ``(k, M)``. Gauss-Hermite
    (``hermgauss``) when there are no kinks, else the rule split at the kinks (see
    :func:`normal_rule`), with ``n = 16, 32, ...`` nodes (per piece): the first ``n`` at which
    doubling the nodes changes every expectation by at most ``tol * max(1, |value|)`` is
    returned, with the values at ``2 n``.

    Raises:
        XavinitError: when 256 nodes (per piece) do not reach ``tol`` (a function with a kink
            that ``kinks`` does not name, or one that grows too fast).
    """

    def at(order: int) -> Array:
        nodes, weights = normal_rule(mean, std, tuple(kinks), order, split=bool(kinks))
        values = np.asarray(fns(nodes), dtype=np.float64).reshape(-1, nodes.shape[1])
        return values @ weights[0]

    order, current = _MIN_ORDER, at(_MIN_ORDER)
    while 2 * order <= _MAX_ORDER:
        doubled = at(2 * order)
        if np.all(np.abs(doubled - current) <= tol * np.maximum(1.0, np.abs(doubled))):
            return doubled, order
        order, current = 2 * order, doubled
    raise XavinitError(
        f"Gaussian quadrature did not converge to {tol:g} with {_MAX_ORDER} nodes per piece"
    )


def bivariate_expectation(
    f: Callable[[Array], Array],
    g: Callable[[Array], Array],
    q: float,
    c: float,
    f_kinks: Sequence[float] = (),
    g_kinks: Sequence[float] = (),
    order: int = 48,
) -> float:
    """Return ``E[f(u1) g(u2)]`` for ``(u1, u2)`` Gaussian, mean 0, variances ``q``, correlation
    ``c``.

    For ``c >= 0`` write ``u_i = sqrt(q c) w + sqrt(q (1 - c)) v_i`` with ``w, v_1, v_2``
    independent standard normals, so ``E[f(u1) g(u2)] = E_w[F(w) G(w)]`` with
    ``F(w) = E_v[f(sqrt(q c) w + sqrt(q (1 - c)) v)]`` (and ``G`` alike): inner expectations by
    :func:`normal_rule` split at the kinks, the outer one split where the kinks sit at ``c = 1``
    (``w = k / sqrt(q c)``), where ``F`` changes fastest. ``c < 0`` uses ``g(-x)`` at ``-c``;
    ``c = 1`` is the one-dimensional ``E[f(u) g(u)]``; ``c = 0`` is ``E[f] E[g]``.

    Args:
        f, g: Vectorised functions.
        q: The common variance ``>= 0``.
        c: The correlation in ``[-1, 1]``.
        f_kinks, g_kinks: Where ``f`` and ``g`` are not analytic.
        order: Nodes per piece, inner and outer.

    Example:
        >>> relu = lambda x: np.maximum(x, 0.0)
        >>> round(bivariate_expectation(relu, relu, 1.0, 0.5, (0.0,), (0.0,)), 10)  # arc-cosine
        0.3577708764
    """
    if not (q >= 0 and math.isfinite(q)) or not -1.0 <= c <= 1.0:
        raise XavinitError(f"need q >= 0 and -1 <= c <= 1, got q={q!r}, c={c!r}")
    if c < 0:
        return bivariate_expectation(
            f, lambda x: g(-x), q, -c, f_kinks, tuple(-k for k in g_kinks), order
        )
    std = math.sqrt(q)
    if c >= 1.0 - 1e-14:
        nodes, weights = normal_rule(0.0, std, (*f_kinks, *g_kinks), order)
        return float(np.sum(np.asarray(f(nodes)) * np.asarray(g(nodes)) * weights))
    shared, own = math.sqrt(q * c), math.sqrt(q * (1.0 - c))
    outer_kinks: list[float] = []
    if shared > 0:
        # F changes over a width own / shared around w = k / shared: grade the pieces there.
        width = own / shared
        grades = (0.0, 0.5, -0.5, 2.0, -2.0, 8.0, -8.0) if width < 1.0 else (0.0,)
        outer_kinks = [(k + t * own) / shared * std for k in (*f_kinks, *g_kinks) for t in grades]
    w, w_weights = normal_rule(0.0, std, outer_kinks, order)
    centres = (shared / std) * w[0] if std > 0 else np.zeros(w.shape[1])

    def smoothed(fn: Callable[[Array], Array], kinks: Sequence[float]) -> Array:
        nodes, weights = normal_rule(centres, own, tuple(kinks), order)
        return np.sum(np.asarray(fn(nodes), dtype=np.float64) * weights, axis=1)

    inner_f = smoothed(f, f_kinks)
    same = g is f and tuple(g_kinks) == tuple(f_kinks)  # E[f(u1) f(u2)]: one inner integral
    inner_g = inner_f if same else smoothed(g, g_kinks)
    return float(np.sum(w_weights[0] * inner_f * inner_g))


# --- gains --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitMoments:
    """Gaussian moments of an activation at unit variance, ``z ~ N(0, 1)``.

    Attributes:
        mean: ``E[f(z)]``.
        second_moment: ``E[f(z)^2]``.
        derivative_mean: ``E[f'(z)]``.
        derivative_second_moment: ``E[f'(z)^2]``.
        order: Quadrature nodes per piece at which node doubling held to 1e-10.
    """

    mean: float
    second_moment: float
    derivative_mean: float
    derivative_second_moment: float
    order: int


def unit_moments(activation: Activation) -> UnitMoments:
    """``E[f]``, ``E[f^2]``, ``E[f']``, ``E[f'^2]`` at ``z ~ N(0, 1)``, converged to 1e-10.

    Gauss-Hermite quadrature split at the activation's kinks, nodes doubled until nothing
    changes at 1e-10 (:func:`gaussian_moments`); cached per activation spec.
    """
    return _unit_moments(activation.spec)


@functools.lru_cache(maxsize=64)
def _unit_moments(spec: str) -> UnitMoments:
    act = get_activation(spec)

    def values(x: Array) -> Array:
        f = act.forward(x)
        d = act.derivative_of(x)
        return np.stack([f, f * f, d, d * d])

    (mean, m2, d_mean, d_m2), order = gaussian_moments(values, kinks=act.kinks)
    return UnitMoments(float(mean), float(m2), float(d_mean), float(d_m2), order)


def forward_gain(activation: Activation) -> float:
    """``1 / sqrt(E[f(z)^2])``, ``z ~ N(0, 1)``: with ``Var[W] = gain^2 / fan_in`` a layer whose
    pre-activations are ``N(0, 1)`` hands the next layer pre-activations of variance 1 again
    (He et al., 2015, derived for relu: sqrt(2)). Exact to 1e-10, see :func:`unit_moments`.

    Example:
        >>> round(forward_gain(get_activation("relu")) ** 2, 10)
        2.0
    """
    return 1.0 / math.sqrt(unit_moments(activation).second_moment)


def backward_gain(activation: Activation) -> float:
    """``1 / sqrt(E[f'(z)^2])``, ``z ~ N(0, 1)``: with ``Var[W] = gain^2 / fan_out`` the
    back-propagated gradient keeps its variance (Glorot and Bengio, 2010, eq. 7 with ``f'``
    inside: ``n_{k+1} Var[W] E[f'^2] = 1``). Exact to 1e-10, see :func:`unit_moments`.

    Example:
        >>> round(backward_gain(get_activation("relu")) ** 2, 10)
        2.0
    """
    return 1.0 / math.sqrt(unit_moments(activation).derivative_second_moment)
