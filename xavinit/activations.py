"""Hidden-layer activation functions, their derivatives, saturation rules and gains.

Every activation works on numpy arrays of any shape and keeps a floating input's dtype.
Derivatives take both the pre-activation ``s`` and the post-activation ``z = f(s)`` so that
the cheap form can be used where it exists (Glorot and Bengio, 2010, keep only ``z``):
tanh ``1 - z^2``, sigmoid ``z (1 - z)``, softsign ``(1 - |z|)^2``, relu ``[z > 0]``.

Gains follow PyTorch's ``torch.nn.init.calculate_gain`` (linear 1, sigmoid 1, tanh 5/3, relu
sqrt(2), leaky-relu sqrt(2/(1 + slope^2)), selu 3/4). PyTorch has none for softsign and gelu:
softsign gets 1 here (``f'(0) = 1``, as the paper uses it, without a gain); gelu gets ``None``
(no standard value; choose one explicitly). This module owns the table: every
``Activation.gain`` and :func:`activation_gain` (what a scheme's ``gain=NAME`` means) read it.

GELU is the tanh approximation ``0.5 s (1 + tanh(sqrt(2/pi) (s + 0.044715 s^3)))`` (Hendrycks
and Gimpel, 2016; PyTorch's ``approximate="tanh"``), within 1e-3 of the exact ``s Phi(s)``:
numpy has no vectorised erf. Its derivative is that of the approximation.

Gaussian expectations for mean-field theory (Poole et al., 2016) use Gaussian quadrature, see
:func:`gaussian_expectation`.

Example:
    >>> act = get_activation("tanh")
    >>> float(act.forward(np.array([0.0]))[0]), round(act.gain, 4)
    (0.0, 1.6667)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss

from xavinit.errors import XavinitError
from xavinit.specs import split_spec, suggest

__all__ = [
    "ACTIVATION_ALIASES",
    "ACTIVATION_NAMES",
    "DEFAULT_LEAKY_SLOPE",
    "GAIN_NAMES",
    "GELU_TANH_C",
    "SELU_ALPHA",
    "SELU_LAMBDA",
    "Activation",
    "activation_gain",
    "gaussian_expectation",
    "get_activation",
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

_GAINS: dict[str, float | None] = {
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "softsign": 1.0,
    "relu": math.sqrt(2.0),
    "linear": 1.0,
    "selu": 3.0 / 4.0,
    "gelu": None,
}
"""Recommended gain of each activation but leaky-relu (see :func:`_leaky_relu_gain`)."""

GAIN_NAMES: tuple[str, ...] = (
    "linear",
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky-relu",
    "selu",
)
"""The names :func:`activation_gain` accepts: those of PyTorch's ``calculate_gain``."""


def _leaky_relu_gain(slope: float) -> float:
    """sqrt(2 / (1 + slope^2)): He et al. (2015) for leaky ReLU; sqrt(2) at slope 0."""
    return math.sqrt(2.0 / (1.0 + slope**2))


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``z = f(s)`` with its derivative and saturation rule.

    Build one with :func:`get_activation`; the callables are internal.

    Attributes:
        name: Canonical name, one of :data:`ACTIVATION_NAMES`.
        gain: Recommended gain (PyTorch ``calculate_gain``), ``None`` where no standard exists.
        limits: Range ``(lo, hi)`` of ``f``, ``math.inf`` marking an unbounded side; ``None``
            when unbounded on both sides.
        needs_preactivation: True when ``derivative`` needs ``s`` (not computable from ``z``).
        params: Parameters as ``((key, value), ...)``, e.g. ``(("slope", 0.2),)``.
    """

    name: str
    gain: float | None
    limits: tuple[float, float] | None
    needs_preactivation: bool
    params: tuple[tuple[str, float], ...]
    _forward: Callable[[Array, Array | None], Array] = field(repr=False, compare=False)
    _derivative: Callable[[Array | None, Array, Array | None], Array] = field(
        repr=False, compare=False
    )
    _saturated: Callable[[Array], Array] = field(repr=False, compare=False)

    @property
    def spec(self) -> str:
        """The spec string that :func:`get_activation` maps back to this activation."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v!r}" for k, v in self.params)

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

        Args:
            s: Pre-activations; may be ``None`` unless ``needs_preactivation``.
            z: Post-activations ``f(s)``, same shape.
            out: Optional output array of ``z``'s shape and dtype (not ``s`` or ``z``).
        """
        if s is None and self.needs_preactivation:
            raise XavinitError(f"activation {self.name!r} needs the pre-activation s for f'(s)")
        return self._derivative(None if s is None else _as_float(s), _as_float(z), out)

    def saturated(self, z: Array) -> Array:
        """Return a boolean array marking saturated units from post-activations ``z``.

        Rules: tanh and softsign ``|z| > 0.99``; sigmoid ``z < 0.01 or z > 0.99``; relu and
        leaky-relu ``z <= 0`` (the unit is off, ``s <= 0``); selu ``z < -0.99 lambda alpha``
        (near its lower limit); linear and gelu never saturate (all False).
        """
        return self._saturated(_as_float(z))


def _as_float(a: Array) -> Array:
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.inexact) else a.astype(np.float64)


def _never(z: Array) -> Array:
    return np.zeros(z.shape, dtype=bool)


# sigmoid: f(s) = 1/(1 + e^-s) = 0.5 tanh(0.5 s) + 0.5 (no overflow); f' = z (1 - z).
def _sigmoid(s: Array, out: Array | None) -> Array:
    out = np.multiply(s, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _sigmoid_d(s: Array | None, z: Array, out: Array | None) -> Array:
    out = np.subtract(1.0, z, out=out)
    out *= z
    return out


def _sigmoid_sat(z: Array) -> Array:
    return (z < 1.0 - _SATURATION_FRACTION) | (z > _SATURATION_FRACTION)


# tanh: f' = 1 - z^2.
def _tanh(s: Array, out: Array | None) -> Array:
    return np.tanh(s, out=out)


def _tanh_d(s: Array | None, z: Array, out: Array | None) -> Array:
    out = np.multiply(z, z, out=out)
    np.subtract(1.0, out, out=out)
    return out


def _symmetric_sat(z: Array) -> Array:
    return np.abs(z) > _SATURATION_FRACTION


# softsign: f(s) = s/(1 + |s|); f' = 1/(1 + |s|)^2 = (1 - |z|)^2.
def _softsign(s: Array, out: Array | None) -> Array:
    denom = np.abs(s)
    denom += 1.0
    return np.divide(s, denom, out=out)


def _softsign_d(s: Array | None, z: Array, out: Array | None) -> Array:
    out = np.abs(z, out=out)
    np.subtract(1.0, out, out=out)
    out *= out
    return out


# relu: f = max(s, 0); f' = [s > 0] = [z > 0] (f'(0) = 0 by convention).
def _relu(s: Array, out: Array | None) -> Array:
    return np.maximum(s, 0.0, out=out)


def _relu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    if out is None:
        return (z > 0).astype(z.dtype)
    np.greater(z, 0, out=out)
    return out


def _off_sat(z: Array) -> Array:
    return z <= 0


def _make_leaky(
    slope: float,
) -> tuple[Callable[[Array, Array | None], Array], Callable[..., Array]]:
    # leaky relu: f = s if s > 0 else slope*s; f' = 1 if z > 0 else slope (slope >= 0).
    pick = np.maximum if slope <= 1.0 else np.minimum

    def forward(s: Array, out: Array | None) -> Array:
        scaled = np.multiply(s, slope)
        return pick(s, scaled, out=out)

    def derivative(s: Array | None, z: Array, out: Array | None) -> Array:
        if out is None:
            out = np.empty_like(z)
        np.greater(z, 0, out=out)
        out *= 1.0 - slope
        out += slope
        return out

    return forward, derivative


# linear: f = s; f' = 1.
def _linear(s: Array, out: Array | None) -> Array:
    if out is None:
        return s.copy()
    np.copyto(out, s)
    return out


def _linear_d(s: Array | None, z: Array, out: Array | None) -> Array:
    if out is None:
        return np.ones_like(z)
    out.fill(1.0)
    return out


# selu: f = lambda s (s > 0), lambda alpha (e^s - 1) (s <= 0);
# f' = lambda (s > 0), lambda alpha e^s = z + lambda alpha (s <= 0).
def _selu(s: Array, out: Array | None) -> Array:
    neg = np.minimum(s, 0.0)
    np.expm1(neg, out=neg)
    neg *= SELU_ALPHA
    out = np.maximum(s, 0.0, out=out)
    out += neg
    out *= SELU_LAMBDA
    return out


def _selu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    out = np.add(z, SELU_LAMBDA * SELU_ALPHA, out=out)
    np.copyto(out, SELU_LAMBDA, where=z > 0)
    return out


def _selu_sat(z: Array) -> Array:
    return z < -_SATURATION_FRACTION * SELU_LAMBDA * SELU_ALPHA


# gelu (tanh approximation): u = c (s + a s^3), f = 0.5 s (1 + tanh u),
# f' = 0.5 (1 + tanh u) + 0.5 s (1 - tanh^2 u) c (1 + 3 a s^2).
def _gelu(s: Array, out: Array | None) -> Array:
    u = np.multiply(s, s)
    u *= _GELU_A
    u += 1.0
    u *= s
    u *= GELU_TANH_C
    np.tanh(u, out=u)
    u += 1.0
    u *= 0.5
    return np.multiply(s, u, out=out)


def _gelu_d(s: Array | None, z: Array, out: Array | None) -> Array:
    assert s is not None
    s2 = np.multiply(s, s)
    t = np.multiply(s2, _GELU_A)
    t += 1.0
    t *= s
    t *= GELU_TANH_C
    np.tanh(t, out=t)  # t = tanh(u)
    s2 *= 3.0 * _GELU_A
    s2 += 1.0
    s2 *= GELU_TANH_C
    s2 *= s  # s c (1 + 3 a s^2)
    out = np.multiply(t, t, out=out)
    np.subtract(1.0, out, out=out)
    out *= s2
    out += t
    out += 1.0
    out *= 0.5
    return out


_GELU_MIN = -0.17004075057125403  # min of the tanh-approximate GELU, at s = -0.75246


def _build(name: str, params: dict[str, float]) -> Activation:
    gain = _leaky_relu_gain(params["slope"]) if name == "leaky-relu" else _GAINS[name]
    if name == "sigmoid":
        return Activation(name, gain, (0.0, 1.0), False, (), _sigmoid, _sigmoid_d, _sigmoid_sat)
    if name == "tanh":
        return Activation(name, gain, (-1.0, 1.0), False, (), _tanh, _tanh_d, _symmetric_sat)
    if name == "softsign":
        return Activation(
            name, gain, (-1.0, 1.0), False, (), _softsign, _softsign_d, _symmetric_sat
        )
    if name == "relu":
        return Activation(name, gain, (0.0, math.inf), False, (), _relu, _relu_d, _off_sat)
    if name == "leaky-relu":
        slope = params["slope"]
        fwd, der = _make_leaky(slope)
        lo = 0.0 if slope == 0.0 else -math.inf
        return Activation(
            name, gain, (lo, math.inf), False, (("slope", slope),), fwd, der, _off_sat
        )
    if name == "linear":
        return Activation(name, gain, None, False, (), _linear, _linear_d, _never)
    if name == "selu":
        lo = -SELU_LAMBDA * SELU_ALPHA
        return Activation(name, gain, (lo, math.inf), False, (), _selu, _selu_d, _selu_sat)
    if name == "gelu":
        return Activation(name, gain, (_GELU_MIN, math.inf), True, (), _gelu, _gelu_d, _never)
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
)
"""Canonical activation names accepted by :func:`get_activation`."""

ACTIVATION_ALIASES: dict[str, str] = {
    "leaky_relu": "leaky-relu",
    "identity": "linear",
    "logistic": "sigmoid",
}
"""Alternative names and the canonical name each maps to."""

_PARAMS: dict[str, dict[str, float]] = {"leaky-relu": {"slope": DEFAULT_LEAKY_SLOPE}}


def activation_gain(name: str, slope: float = DEFAULT_LEAKY_SLOPE) -> float:
    """Return the recommended gain for an activation (PyTorch's ``calculate_gain``).

    linear, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky relu: sqrt(2 / (1 + a^2)); selu: 3/4.
    Names are case-insensitive and ``_`` counts as ``-``; the accepted ones are
    :data:`GAIN_NAMES` (``identity`` is linear).

    Raises:
        XavinitError: for an unknown activation name, listing the known ones.
    """
    key = name.strip().lower().replace("_", "-")
    if key not in GAIN_NAMES:
        raise XavinitError(
            f"unknown gain {name!r}{suggest(key, GAIN_NAMES)}; use a positive number or one of: "
            + ", ".join(GAIN_NAMES)
        )
    if key == "leaky-relu":
        return _leaky_relu_gain(slope)
    gain = _GAINS[ACTIVATION_ALIASES.get(key, key)]
    assert gain is not None  # every name in GAIN_NAMES has one
    return gain


def get_activation(spec: str) -> Activation:
    """Return the activation named by ``spec``: ``name`` or ``name:key=value[,key=value]``.

    Names: sigmoid ``1/(1 + e^-s)`` (alias logistic), tanh, softsign ``s/(1 + |s|)``, relu,
    leaky-relu (alias leaky_relu; parameter ``slope >= 0``, default 0.01), linear (alias
    identity), selu (Klambauer et al., 2017), gelu (tanh approximation). Names are
    case-insensitive.

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
        if not math.isfinite(value) or value < 0.0:
            raise XavinitError(
                f"activation {name!r}: {pkey} must be a finite number >= 0, got {pval!r}"
            )
        params[pkey] = value
    return _build(name, params)


@functools.lru_cache(maxsize=8)
def _hermite_e(order: int) -> tuple[Array, Array]:
    """Gauss-Hermite rule for ``E_z[g(z)]``: probabilists' nodes, weights divided by sqrt(2 pi)."""
    nodes, weights = hermegauss(order)
    weights = weights / math.sqrt(2.0 * math.pi)
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@functools.lru_cache(maxsize=8)
def _half_range(n: int, zmax: float = 20.0, m: int = 600) -> tuple[Array, Array]:
    """Gauss rule for the weight ``phi(z)`` on ``[0, inf)`` (half-range Hermite), ``n`` nodes.

    Golub-Welsch on the Jacobi matrix of the polynomials orthonormal for ``phi`` on ``[0, zmax]``
    (``phi(20) ~ 1e-87``), their recurrence found by a discretised Stieltjes (Lanczos) procedure
    on an ``m``-point Gauss-Legendre grid with full reorthogonalisation (Gautschi, 2004, 2.2).
    """
    x, w = leggauss(m)
    t = (x + 1.0) * (zmax / 2.0)
    wt = w * (zmax / 2.0) * np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    alpha = np.zeros(n)
    beta = np.zeros(n)
    basis = np.zeros((n, m))
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


def gaussian_expectation(
    fn: Callable[[Array], Array], q: float | Array, order: int = 101, split: bool = True
) -> float | Array:
    """Return ``E_z[fn(sqrt(q) z)]`` for ``z ~ N(0, 1)`` by Gaussian quadrature.

    With ``split=False``: Gauss-Hermite, ``E_z[g(z)] ~= sum_i w_i g(x_i) / sqrt(2 pi)`` with
    probabilists' nodes ``x_i`` and weights ``w_i``
    (``numpy.polynomial.hermite_e.hermegauss``, weights summing to ``sqrt(2 pi)``). It is exact
    for polynomials of degree ``< 2 order`` and for smooth activations, but converges only as
    ``1/order`` when ``fn`` has a kink at 0 (relu, selu, softsign and their derivatives:
    errors of 3e-3 for ``E[relu(z)]``, 2e-2 for softsign's ``E[f'(z)^2]`` at order 101).

    With ``split=True`` (default), every activation here being smooth on each side of 0:
    ``E_z[g(z)] = int_0^inf (g(z) + g(-z)) phi(z) dz ~= sum_i v_i (g(y_i) + g(-y_i))`` with the
    ``(order + 1) // 2``-node Gauss rule ``(y_i, v_i)`` of the half-range weight ``phi`` on
    ``[0, inf)`` (same cost; errors below 1e-6 for all activations and ``q`` in
    ``[0.01, 100]``, about 1e-12 for smooth ones).

    Args:
        fn: Vectorised function of an array of points.
        q: Variance ``>= 0``: a scalar, or an array (the result then has its shape).
        order: Number of quadrature points, about.
        split: Integrate each half-line separately (exact across a kink at 0).

    Example:
        >>> round(gaussian_expectation(lambda s: s**4, 2.0), 9)
        12.0
    """
    if order < 1:
        raise XavinitError(f"quadrature order must be >= 1, got {order}")
    q_arr = np.asarray(q, dtype=np.float64)
    if np.any(q_arr < 0) or not np.all(np.isfinite(q_arr)):
        raise XavinitError(f"variance q must be finite and >= 0, got {q!r}")
    scale = np.sqrt(q_arr)[..., None]
    if split:
        nodes, weights = _half_range((int(order) + 1) // 2)
        values = np.asarray(fn(scale * nodes), dtype=np.float64)
        values = values + np.asarray(fn(-scale * nodes), dtype=np.float64)
    else:
        nodes, weights = _hermite_e(int(order))
        values = np.asarray(fn(scale * nodes), dtype=np.float64)
    result = values @ weights
    return float(result) if q_arr.ndim == 0 else result
