"""The activation registry: every hidden-layer activation by name, as data, and its gains.

:data:`ACTIVATIONS` maps each canonical name to an :class:`ActivationSpec`: its kernels
(:mod:`xavinit.core.kernels`: ``f``, ``f'``, the saturation rule, range and kinks; a factory
of the parameters for leaky-relu and elu), its parameters with their defaults, what PyTorch's
``calculate_gain`` returns for it and its aliases. :func:`get_activation`,
:data:`ACTIVATION_NAMES`, :data:`ACTIVATION_ALIASES`, :data:`TORCH_GAIN_NAMES`,
:data:`GAIN_NAMES` and :func:`activation_gain` are all read from that one table: a new
activation is one kernel in ``kernels.py`` and one row here.

The registry: sigmoid, tanh, softsign, relu, leaky-relu, linear, selu, gelu, elu, silu (swish),
mish, softplus, hardtanh, relu6 and erf.

Gains: this module owns them. ``torch_gain`` is what PyTorch's ``torch.nn.init.calculate_gain``
returns (linear 1, sigmoid 1, tanh 5/3, relu sqrt(2), leaky-relu sqrt(2/(1 + slope^2)), selu
3/4; PyTorch has none for the others). :func:`forward_gain` and :func:`backward_gain` are exact:
``1 / sqrt(E[f(z)^2])`` and ``1 / sqrt(E[f'(z)^2])`` for ``z ~ N(0, 1)``, by Gauss-Hermite
quadrature split at the kinks (:func:`xavinit.core.quadrature.gaussian_moments`).
``Activation.gain``, and so a scheme's ``gain=NAME``, is PyTorch's value where PyTorch has one
(specs written against PyTorch keep their meaning) and the exact forward gain otherwise.

Example:
    >>> act = get_activation("tanh")
    >>> float(act.forward(np.array([0.0]))[0]), round(act.gain, 4), round(forward_gain(act), 4)
    (0.0, 1.6667, 1.5925)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xavinit.core import kernels as k
from xavinit.core.kernels import Kernels, as_float
from xavinit.core.quadrature import gaussian_moments
from xavinit.errors import XavinitError
from xavinit.limits import ACTIVATION_PARAMETER_MAX
from xavinit.specs import split_spec, suggest

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_ALIASES",
    "ACTIVATION_NAMES",
    "DEFAULT_ELU_ALPHA",
    "DEFAULT_LEAKY_SLOPE",
    "GAIN_NAMES",
    "TORCH_GAIN_NAMES",
    "Activation",
    "ActivationSpec",
    "UnitMoments",
    "activation_gain",
    "backward_gain",
    "forward_gain",
    "get_activation",
    "leaky_relu_gain",
    "unit_moments",
]

Array = np.ndarray

DEFAULT_LEAKY_SLOPE = 0.01
"""PyTorch's default ``negative_slope`` for leaky ReLU."""
DEFAULT_ELU_ALPHA = 1.0
"""PyTorch's default ``alpha`` for ELU (Clevert et al., 2016)."""


def leaky_relu_gain(slope: float) -> float:
    """sqrt(2 / (1 + slope^2)): He et al. (2015) for leaky ReLU, PyTorch's ``calculate_gain``;
    sqrt(2) at slope 0."""
    return math.sqrt(2.0 / (1.0 + slope**2))


@dataclass(frozen=True)
class ActivationSpec:
    """One row of the registry: what makes an activation, given its parameters.

    Attributes:
        kernels: The activation's :class:`~xavinit.core.kernels.Kernels`, or, for one with
            parameters, the factory that makes them from the parameters as keywords.
        params: The parameters and their defaults, ``((key, default), ...)``; each value
            given in a spec must be a number from 0 to ``ACTIVATION_PARAMETER_MAX``.
        torch_gain: What PyTorch's ``calculate_gain`` returns (a function of the parameters
            where it depends on them), ``None`` where PyTorch has no value.
        aliases: Other names that mean this activation.
    """

    kernels: Kernels | Callable[..., Kernels]
    params: tuple[tuple[str, float], ...] = ()
    torch_gain: float | Callable[..., float] | None = None
    aliases: tuple[str, ...] = ()


ACTIVATIONS: dict[str, ActivationSpec] = {
    "sigmoid": ActivationSpec(kernels=k.SIGMOID, torch_gain=1.0, aliases=("logistic",)),
    "tanh": ActivationSpec(kernels=k.TANH, torch_gain=5.0 / 3.0),
    "softsign": ActivationSpec(kernels=k.SOFTSIGN),
    "relu": ActivationSpec(kernels=k.RELU, torch_gain=math.sqrt(2.0)),
    "leaky-relu": ActivationSpec(
        kernels=k.leaky_relu_kernels,
        params=(("slope", DEFAULT_LEAKY_SLOPE),),
        torch_gain=leaky_relu_gain,
        aliases=("leaky_relu",),
    ),
    "linear": ActivationSpec(kernels=k.LINEAR, torch_gain=1.0, aliases=("identity",)),
    "selu": ActivationSpec(kernels=k.SELU, torch_gain=3.0 / 4.0),
    "gelu": ActivationSpec(kernels=k.GELU),
    "elu": ActivationSpec(kernels=k.elu_kernels, params=(("alpha", DEFAULT_ELU_ALPHA),)),
    "silu": ActivationSpec(kernels=k.SILU, aliases=("swish",)),
    "mish": ActivationSpec(kernels=k.MISH),
    "softplus": ActivationSpec(kernels=k.SOFTPLUS),
    "hardtanh": ActivationSpec(kernels=k.HARDTANH),
    "relu6": ActivationSpec(kernels=k.RELU6),
    "erf": ActivationSpec(kernels=k.ERF),
}
"""The registry: canonical name -> :class:`ActivationSpec`, in the order names are listed."""

ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)
"""Canonical activation names accepted by :func:`get_activation`."""

ACTIVATION_ALIASES: dict[str, str] = {
    alias: name for name, spec in ACTIVATIONS.items() for alias in spec.aliases
}
"""Alternative names and the canonical name each maps to."""

TORCH_GAIN_NAMES: tuple[str, ...] = tuple(
    name for name, spec in ACTIVATIONS.items() if spec.torch_gain is not None
)
"""The activations PyTorch's ``calculate_gain`` knows (it spells leaky-relu ``leaky_relu``)."""

GAIN_NAMES: tuple[str, ...] = (*ACTIVATION_NAMES, *ACTIVATION_ALIASES)
"""The names :func:`activation_gain` (a scheme's ``gain=NAME``) accepts: every activation."""


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``z = f(s)`` with its derivative and saturation rule.

    Build one with :func:`get_activation`.

    Attributes:
        name: Canonical name, one of :data:`ACTIVATION_NAMES`.
        torch_gain: What PyTorch's ``calculate_gain`` returns, ``None`` where it has no value.
        params: Parameters as ``((key, value), ...)``, e.g. ``(("slope", 0.2),)``.
        kernels: ``f``, ``f'``, the saturation rule, range and kinks
            (:class:`~xavinit.core.kernels.Kernels`).
    """

    name: str
    torch_gain: float | None
    params: tuple[tuple[str, float], ...]
    kernels: Kernels = field(repr=False, compare=False)

    @property
    def limits(self) -> tuple[float, float] | None:
        """Range ``(lo, hi)`` of ``f``, ``math.inf`` marking an unbounded side; ``None`` when
        unbounded on both sides."""
        return self.kernels.limits

    @property
    def needs_preactivation(self) -> bool:
        """True when :meth:`derivative` needs ``s`` (not computable from ``z``)."""
        return self.kernels.needs_preactivation

    @property
    def kinks(self) -> tuple[float, ...]:
        """The points ``s`` where ``f``, ``f'`` or ``f''`` jumps (relu ``(0,)``, hardtanh
        ``(-1, 1)``); ``f`` is analytic between them. Quadrature splits there."""
        return self.kernels.kinks

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
        return self.kernels.forward(as_float(s), out)

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
        return self.kernels.derivative(None if s is None else as_float(s), as_float(z), out)

    def derivative_of(self, s: Array) -> Array:
        """Return ``f'(s)`` from ``s`` alone (for quadrature and tests)."""
        s = as_float(s)
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
        return self.kernels.saturated(as_float(z))


def _build(name: str, params: dict[str, float]) -> Activation:
    """The activation ``name`` of the registry with validated ``params``."""
    spec = ACTIVATIONS[name]
    kernels = spec.kernels(**params) if callable(spec.kernels) else spec.kernels
    torch_gain = spec.torch_gain(**params) if callable(spec.torch_gain) else spec.torch_gain
    return Activation(
        name=name, torch_gain=torch_gain, params=tuple(params.items()), kernels=kernels
    )


def activation_gain(name: str, slope: float = DEFAULT_LEAKY_SLOPE) -> float:
    """Return the recommended gain of an activation, what a scheme's ``gain=NAME`` means.

    PyTorch's ``calculate_gain`` where it has one (linear, sigmoid: 1; tanh: 5/3; relu:
    sqrt(2); leaky relu: sqrt(2 / (1 + a^2)), ``a`` = ``slope``; selu: 3/4), so specs written
    against PyTorch keep their meaning; for every other activation the exact
    :func:`forward_gain` ``1 / sqrt(E[f(z)^2])``. Names are case-insensitive and ``_`` counts
    as ``-``; the accepted ones are :data:`GAIN_NAMES`; other parameters take their defaults
    (elu ``alpha=1``).

    Raises:
        XavinitError: for an unknown activation name, listing the known ones.
    """
    key = name.strip().lower().replace("_", "-")
    canonical = ACTIVATION_ALIASES.get(key, ACTIVATION_ALIASES.get(name.strip().lower(), key))
    if canonical not in ACTIVATIONS:
        raise XavinitError(
            f"unknown gain {name!r}{suggest(key, GAIN_NAMES)}; use a positive number or one of: "
            + ", ".join(ACTIVATION_NAMES)
        )
    params = dict(ACTIVATIONS[canonical].params)
    if "slope" in params:
        params["slope"] = slope
    return _build(canonical, params).gain


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
    if name not in ACTIVATIONS:
        hint = suggest(key, [*ACTIVATION_NAMES, *ACTIVATION_ALIASES])
        raise XavinitError(
            f"unknown activation {raw_name!r}{hint}; valid: {', '.join(ACTIVATION_NAMES)}"
        )
    defaults = dict(ACTIVATIONS[name].params)
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
    changes at 1e-10 (:func:`xavinit.core.quadrature.gaussian_moments`); cached per activation spec.
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
