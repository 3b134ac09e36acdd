"""Initialization schemes: one variance-scaling core and named presets.

Every i.i.d. scheme draws ``W`` of shape ``(fan_in, fan_out)`` with mean 0 and

    Var[W] = gain^2 * scale / fan,   fan in {fan_in, fan_out, fan_avg = (fan_in + fan_out) / 2}

from one of four distributions (JAX's ``variance_scaling`` framing, so no gain arrives by
accident):

- ``uniform``: ``U[-bound, bound]`` with ``bound = sqrt(3 Var)``;
- ``normal``: ``N(0, Var)``;
- ``truncated_normal``: a normal cut at +-2 sigma whose std is divided by
  0.87962566103423978 (the std of a standard normal truncated at +-2) so that Var stays exact
  (Keras, JAX);
- ``truncated_normal_uncorrected``: a normal with the nominal std cut at +-2 sigma (PyTorch's
  ``trunc_normal_``, TF1), whose variance is only 0.7737 x nominal.

``orthogonal`` (Saxe et al. 2013) is the one scheme that is not i.i.d.: ``W^T W = gain^2 I``
(or ``W W^T`` when ``fan_in < fan_out``).

``gain=NAME`` (``normalized:gain=tanh``) takes the activation's recommended gain from
:func:`xavinit.core.activations.activation_gain`, which owns the gain table.

Sources: Glorot and Bengio (2010), eq. 1 and eq. 16; He et al. (2015); LeCun et al. (1998);
PyTorch ``torch/nn/init.py``; JAX ``jax/_src/nn/initializers.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xavinit.core.activations import activation_gain
from xavinit.core.stats import CHUNK, big_phi, normal_cdf, normal_cdf_cells, phi
from xavinit.core.uniform32 import fill_uniform
from xavinit.errors import XavinitError
from xavinit.specs import split_spec, suggest

TRUNCATION = 2.0
"""Truncated normals are cut at +-TRUNCATION standard deviations of the underlying normal."""


def truncated_mass(c: float) -> float:
    """P(|z| <= c) for a standard normal z: 2 Phi(c) - 1."""
    return big_phi(c) - big_phi(-c)


@functools.lru_cache(maxsize=64)
def truncated_variance_factor(c: float) -> float:
    """Var of N(0, 1) truncated at +-c: 1 - 2 c phi(c) / (2 Phi(c) - 1) (0.7737 at c = 2); once
    per cut (asked of every truncated law of every tensor ``check`` ranks)."""
    return 1.0 - 2.0 * c * phi(c) / truncated_mass(c)


def truncated_kurtosis(c: float) -> float:
    """Kurtosis E[z^4] / E[z^2]^2 of N(0, 1) truncated at +-c.

    E[z^4] = 3 - 2 (c^3 + 3 c) phi(c) / (2 Phi(c) - 1) (integrate by parts twice).
    """
    fourth = 3.0 - 2.0 * (c**3 + 3.0 * c) * phi(c) / truncated_mass(c)
    return fourth / truncated_variance_factor(c) ** 2


TRUNCATED_VARIANCE_FACTOR = truncated_variance_factor(TRUNCATION)
"""Var of N(0, 1) truncated at +-2: 1 - 2 c phi(c) / (2 Phi(c) - 1) = 0.7737..."""

TRUNCATED_STD_CORRECTION = 0.87962566103423978
"""sqrt(TRUNCATED_VARIANCE_FACTOR): Keras/JAX divide the std by it so that Var stays exact."""

TRUNCATED_KURTOSIS = truncated_kurtosis(TRUNCATION)
"""Kurtosis E[z^4] / E[z^2]^2 of a normal truncated at +-2 sigma (about 2.366)."""

DISTRIBUTIONS = ("uniform", "normal", "truncated_normal", "truncated_normal_uncorrected")
MODES = ("fan_in", "fan_out", "fan_avg")
FIXED = "fixed"
"""The mode of the fan-free presets (``normal:std=0.02``): the variance ignores the fans."""

KURTOSIS = {
    "uniform": 9.0 / 5.0,
    "normal": 3.0,
    "truncated_normal": TRUNCATED_KURTOSIS,
    "truncated_normal_uncorrected": TRUNCATED_KURTOSIS,
}
"""Kurtosis E[w^4] / E[w^2]^2 of each distribution: it sets the standard error of a variance."""

SAMPLE_CHUNK = CHUNK
"""Entries of a truncated normal drawn per generator call, each chunk's entries beyond the cut
redrawn before the next chunk is drawn: part of that law's stream, so fixed."""

OBSERVED_PIECE = 4 * CHUNK
"""Entries drawn, scaled and shown to ``observe`` at a time: 1 MiB of float32, in the cache
while a :class:`xavinit.core.stats.Scanner` measures it, in whole rows of its sums (a
measured draw gives the numbers of :func:`xavinit.core.stats.moments_and_sample`); four rows
a call pay numpy's per-call cost a quarter as often."""


@dataclass(frozen=True)
class Scheme:
    """A parsed initialization scheme.

    Attributes:
        name: canonical preset name (``normalized`` for the alias ``xavier-uniform``).
        spec: the spec string as given, parameters included (``normalized:gain=tanh``).
        distribution: one of ``DISTRIBUTIONS`` or ``orthogonal``.
        scale: the variance scale before the gain (``Var = gain^2 * scale / fan``).
        mode: which fan divides the variance (``fixed`` for the fan-free presets).
        gain: multiplies the standard deviation.
        params: the parameters as given, canonical keys.
        truncation: truncated normals are cut at +-truncation std of the underlying normal.
    """

    name: str
    spec: str
    distribution: str
    scale: float
    mode: str
    gain: float
    params: dict[str, str] = field(default_factory=dict, compare=False)
    truncation: float = TRUNCATION

    @property
    def preset(self) -> Preset:
        return PRESETS[self.name]

    @property
    def iid(self) -> bool:
        """True when entries are independent draws (every scheme but orthogonal)."""
        return self.distribution != "orthogonal"

    @property
    def kurtosis(self) -> float | None:
        """E[w^4] / E[w^2]^2 of one entry; None for orthogonal."""
        if self.distribution.startswith("truncated") and self.truncation != TRUNCATION:
            return truncated_kurtosis(self.truncation)
        return KURTOSIS.get(self.distribution)

    @property
    def fan_free(self) -> bool:
        """True for the presets whose variance ignores the fans (``normal:std=0.02``)."""
        return self.mode == FIXED

    @property
    def bounded(self) -> bool:
        return self.distribution in ("uniform", "truncated_normal", "truncated_normal_uncorrected")

    def fan(self, fan_in: int, fan_out: int) -> float:
        """The fan that divides the variance under this scheme's mode (1 for ``fixed``)."""
        if self.mode == FIXED:
            return 1.0
        return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": 0.5 * (fan_in + fan_out)}[
            self.mode
        ]

    def variance(self, fan_in: int, fan_out: int) -> float:
        """Expected Var[W_ij] for a ``(fan_in, fan_out)`` matrix.

        Variance scaling: ``gain^2 * scale / fan`` (times 0.7737 for the uncorrected truncated
        normal). Orthogonal: ``gain^2 / max(fan_in, fan_out)``, since ``min(fan_in, fan_out)``
        orthonormal vectors of length ``max(fan_in, fan_out)`` hold ``gain^2 min`` in squares.
        """
        if self.distribution == "orthogonal":
            return self.gain**2 / max(fan_in, fan_out)
        nominal = self.gain**2 * self.scale / self.fan(fan_in, fan_out)
        if self.distribution == "truncated_normal_uncorrected":
            return nominal * truncated_variance_factor(self.truncation)
        return nominal

    def std(self, fan_in: int, fan_out: int) -> float | None:
        """Std of the underlying normal before truncation (None for uniform and orthogonal).

        normal: sqrt(Var); truncated_normal: sqrt(Var) / 0.8796...; uncorrected: the nominal
        sqrt(gain^2 scale / fan).
        """
        if self.distribution == "normal":
            return math.sqrt(self.variance(fan_in, fan_out))
        if self.distribution == "truncated_normal":
            correction = (
                TRUNCATED_STD_CORRECTION
                if self.truncation == TRUNCATION
                else math.sqrt(truncated_variance_factor(self.truncation))
            )
            return math.sqrt(self.variance(fan_in, fan_out)) / correction
        if self.distribution == "truncated_normal_uncorrected":
            return math.sqrt(self.gain**2 * self.scale / self.fan(fan_in, fan_out))
        return None

    def bound(self, fan_in: int, fan_out: int) -> float | None:
        """Largest possible |W_ij|: sqrt(3 Var) for uniform, c std for normals cut at +-c std."""
        if self.distribution == "uniform":
            return math.sqrt(3.0 * self.variance(fan_in, fan_out))
        std = self.std(fan_in, fan_out)
        if self.bounded and std is not None:
            return self.truncation * std
        return None

    def cdf(self, x: np.ndarray, fan_in: int, fan_out: int) -> np.ndarray:
        """The CDF of one entry, evaluated at ``x`` (float64 result); i.i.d. schemes only."""
        if self.distribution == "uniform":
            b = self.bound(fan_in, fan_out)
            assert b is not None
            u = np.array(x, dtype=np.float64)  # a fresh copy, transformed in place
            u += b
            u *= 1.0 / (2.0 * b)
            return np.clip(u, 0.0, 1.0, out=u)
        return self._from_standard(normal_cdf(self._standardized(x, fan_in, fan_out)))

    def cdf_cells(
        self, x: np.ndarray, fan_in: int, fan_out: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """For a normal or truncated normal: the cell of the CDF table that holds each entry of
        ``x`` and this law's CDF at the cell edges (:func:`xavinit.core.stats.ks_distance_cells`),
        so a KS test computes the CDF of the few entries that decide it. None for the uniform,
        whose CDF is one cheap pass."""
        std = self.std(fan_in, fan_out)
        if self.distribution == "uniform" or std is None:
            return None
        cell, values = normal_cdf_cells(x, std)
        return cell, self._from_standard(values.copy())

    def _standardized(self, x: np.ndarray, fan_in: int, fan_out: int) -> np.ndarray:
        """``x / std`` as a fresh float64 array (std of the underlying normal)."""
        std = self.std(fan_in, fan_out)
        if std is None:
            raise ValueError(f"scheme {self.spec!r} has no per-entry distribution")
        z = np.array(x, dtype=np.float64)
        z *= 1.0 / std
        return z

    def _from_standard(self, p: np.ndarray) -> np.ndarray:
        """This law's CDF from the standard normal CDF ``p`` of ``x / std``, in place: ``p``
        itself, or ``(p - Phi(-c)) / (2 Phi(c) - 1)`` clipped to [0, 1] when cut at +-c."""
        if self.distribution == "normal":
            return p
        p -= big_phi(-self.truncation)
        p *= 1.0 / truncated_mass(self.truncation)
        return np.clip(p, 0.0, 1.0, out=p)

    def sample(
        self,
        shape: tuple[int, int],
        rng: np.random.Generator,
        dtype: Any = np.float32,
        out: np.ndarray | None = None,
        observe: Callable[[np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Draw a ``(fan_in, fan_out)`` matrix in place, without temporaries of its size.

        Args:
            shape: ``(fan_in, fan_out)``.
            rng: the generator that supplies every random number.
            dtype: float32 (default) or float64.
            out: an optional preallocated C-contiguous array of that shape and dtype.
            observe: called with each finished piece of :data:`OBSERVED_PIECE` entries, in
                order, while it is in cache (a :class:`xavinit.core.stats.Scanner`'s ``add``);
                i.i.d. schemes only.
        """
        fan_in, fan_out = shape
        if out is None:
            out = np.empty(shape, dtype=dtype)
        elif out.shape != tuple(shape) or not out.flags.c_contiguous or out.dtype.kind != "f":
            raise ValueError(
                f"out must be a C-contiguous float array of shape {tuple(shape)}, "
                f"got {out.dtype} {out.shape}"
            )
        if self.distribution == "orthogonal":
            if observe is not None:
                raise ValueError("an orthogonal matrix is not drawn entry by entry")
            return _sample_orthogonal(out, rng, self.gain)
        flat = out.reshape(-1)  # a view: ``out`` is C-contiguous
        if self.distribution == "uniform":
            bound = self.bound(fan_in, fan_out)
            assert bound is not None
            for start in range(0, flat.size, OBSERVED_PIECE):
                view = flat[start : start + OBSERVED_PIECE]
                fill_uniform(rng, view, 2.0 * bound, bound)  # rng.random, *= 2b, -= b
                if observe is not None:
                    observe(view)
            return out
        std = self.std(fan_in, fan_out)
        assert std is not None
        truncated = self.distribution != "normal"
        for start in range(0, flat.size, OBSERVED_PIECE):
            view = flat[start : start + OBSERVED_PIECE]
            if truncated:
                for offset in range(0, view.size, SAMPLE_CHUNK):
                    chunk = view[offset : offset + SAMPLE_CHUNK]
                    rng.standard_normal(dtype=out.dtype, out=chunk)
                    _redraw_beyond(chunk, rng, self.truncation)
            else:  # one value after another from the stream, however the calls cut it
                rng.standard_normal(dtype=out.dtype, out=view)
            view *= std
            if observe is not None:
                observe(view)
        return out

    def describe(self) -> str:
        """One line: the distribution and variance formula, with the gain when it is not 1."""
        if self.params:  # parameters change the preset: its usual name no longer applies
            return self.formula()
        known = self.preset.known_as
        return f"{self.preset.formula}  ({known})" if known else self.preset.formula

    def formula(self) -> str:
        """The variance formula for these parameters, e.g. ``Var = gain^2 * 2 / fan_in``."""
        if self.distribution == "orthogonal":
            g = "" if self.gain == 1.0 else f"{self.gain:.4g}^2 "
            return f"orthogonal, W^T W = {g}I, Var = {g}/ max(fan_in, fan_out)".replace(
                "= /", "= 1/"
            )
        gain = "" if self.gain == 1.0 else f"{self.gain:.4g}^2 * "
        scale = f"{self.scale:.4g}"
        factor = truncated_variance_factor(self.truncation)
        extra = f" * {factor:.4g}" if self.distribution == "truncated_normal_uncorrected" else ""
        cut = (
            f" cut at +-{self.truncation:.4g} std"
            if self.distribution.startswith("truncated") and self.truncation != TRUNCATION
            else ""
        )
        if self.mode == FIXED:
            return f"{self.distribution}{cut}, Var = {gain}{scale}{extra}"
        return f"{self.distribution}{cut}, Var = {gain}{scale} / {self.mode}{extra}"


def _redraw_beyond(view: np.ndarray, rng: np.random.Generator, cut: float) -> None:
    """Redraw standard-normal entries with |z| > cut until none is left (rejection sampling)."""
    bad = np.flatnonzero((view > cut) | (view < -cut))
    while bad.size:
        view[bad] = rng.standard_normal(bad.size, dtype=view.dtype)
        bad = bad[np.abs(view[bad]) > cut]


def _sample_orthogonal(out: np.ndarray, rng: np.random.Generator, gain: float) -> np.ndarray:
    """QR of a standard normal matrix with the sign fix of Mezzadri (2007), scaled by gain.

    The result is Haar-distributed: orthonormal columns when ``fan_in >= fan_out``, orthonormal
    rows otherwise (Saxe et al. 2013; PyTorch ``orthogonal_``).
    """
    rows, cols = out.shape
    tall = rows >= cols
    a = rng.standard_normal((rows, cols) if tall else (cols, rows), dtype=out.dtype)
    q, r = np.linalg.qr(a)
    signs = np.sign(np.diagonal(r)).astype(out.dtype)
    signs[signs == 0] = 1
    q *= signs
    q *= gain
    out[...] = q if tall else q.T
    return out


@dataclass(frozen=True)
class Preset:
    """A named scheme as data: its variance-scaling settings, parameters and documentation."""

    name: str
    distribution: str
    scale: float
    mode: str
    formula: str
    source: str
    aliases: tuple[str, ...] = ()
    params: tuple[str, ...] = ("gain", "mode")
    known_as: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "standard",
            "uniform",
            1.0 / 3.0,
            "fan_in",
            "U[-1/sqrt(fan_in), 1/sqrt(fan_in)], Var = 1/(3 fan_in)",
            "Glorot and Bengio 2010, eq. 1; PyTorch kaiming_uniform_(a=sqrt(5))",
            aliases=("default", "torch-linear"),
            known_as="PyTorch's nn.Linear default",
        ),
        Preset(
            "normalized",
            "uniform",
            1.0,
            "fan_avg",
            "U[-sqrt(6/(fan_in+fan_out)), +sqrt(6/(fan_in+fan_out))], Var = 2/(fan_in+fan_out)",
            "Glorot and Bengio 2010, eq. 16",
            aliases=("xavier-uniform", "glorot-uniform"),
            known_as="Xavier/Glorot uniform, Keras' Dense default",
        ),
        Preset(
            "xavier-normal",
            "normal",
            1.0,
            "fan_avg",
            "N(0, 2/(fan_in+fan_out)), Var = 2/(fan_in+fan_out)",
            "Glorot and Bengio 2010; PyTorch xavier_normal_ (plain normal)",
            aliases=("glorot-normal-plain",),
            known_as="PyTorch's xavier_normal_",
        ),
        Preset(
            "glorot-normal-truncated",
            "truncated_normal",
            1.0,
            "fan_avg",
            "normal cut at +-2 sigma, std corrected, Var = 2/(fan_in+fan_out)",
            "Keras/JAX glorot_normal",
            aliases=("glorot-normal", "xavier-normal-truncated"),
            known_as="Keras/JAX GlorotNormal",
        ),
        Preset(
            "he-uniform",
            "uniform",
            2.0,
            "fan_in",
            "U[-sqrt(6/fan_in), sqrt(6/fan_in)], Var = 2/fan_in (2/((1+a^2) fan) with slope=a)",
            "He et al. 2015; PyTorch kaiming_uniform_(nonlinearity='relu')",
            aliases=("kaiming-uniform",),
            params=("gain", "mode", "slope"),
            known_as="PyTorch's kaiming_uniform_ for ReLU",
        ),
        Preset(
            "he-normal",
            "normal",
            2.0,
            "fan_in",
            "N(0, 2/fan_in), Var = 2/fan_in (2/((1+a^2) fan) with slope=a)",
            "He et al. 2015; PyTorch kaiming_normal_(nonlinearity='relu')",
            aliases=("kaiming-normal",),
            params=("gain", "mode", "slope"),
            known_as="PyTorch's kaiming_normal_ for ReLU",
        ),
        Preset(
            "he-normal-truncated",
            "truncated_normal",
            2.0,
            "fan_in",
            "normal cut at +-2 sigma, std corrected, Var = 2/fan_in",
            "He et al. 2015; Keras/JAX he_normal",
            params=("gain", "mode", "slope"),
            known_as="Keras/JAX HeNormal",
        ),
        Preset(
            "lecun-uniform",
            "uniform",
            1.0,
            "fan_in",
            "U[-sqrt(3/fan_in), sqrt(3/fan_in)], Var = 1/fan_in",
            "LeCun et al. 1998; Keras lecun_uniform",
            known_as="Keras LecunUniform",
        ),
        Preset(
            "lecun-normal",
            "normal",
            1.0,
            "fan_in",
            "N(0, 1/fan_in), Var = 1/fan_in",
            "LeCun et al. 1998; Klambauer et al. 2017 (SELU)",
        ),
        Preset(
            "lecun-normal-truncated",
            "truncated_normal",
            1.0,
            "fan_in",
            "normal cut at +-2 sigma, std corrected, Var = 1/fan_in",
            "LeCun et al. 1998; Keras/JAX lecun_normal",
            known_as="Keras/JAX LecunNormal",
        ),
        Preset(
            "orthogonal",
            "orthogonal",
            1.0,
            "fan_avg",
            "orthogonal, W^T W = gain^2 I, Var = gain^2 / max(fan_in, fan_out)",
            "Saxe et al. 2013; PyTorch orthogonal_",
            params=("gain",),
            known_as="PyTorch's orthogonal_",
        ),
        Preset(
            "normal",
            "normal",
            1.0,
            FIXED,
            "N(0, std^2), Var = std^2 (fan-free; std=1 by default)",
            "PyTorch normal_ (nn.Embedding: std=1); BERT and GPT-2 use std=0.02",
            params=("std",),
            known_as="PyTorch's nn.Embedding default (std=1)",
        ),
        Preset(
            "uniform",
            "uniform",
            0.05**2 / 3.0,
            FIXED,
            "U[-a, a], Var = a^2/3 (fan-free; a=0.05 by default)",
            "Keras RandomUniform and Embedding (a=0.05); PyTorch uniform_(-a, a)",
            params=("a",),
            known_as="Keras' Embedding default (a=0.05)",
        ),
        Preset(
            "trunc-normal",
            "truncated_normal_uncorrected",
            1.0,
            FIXED,
            "N(0, std^2) cut at the absolute bounds [a, b] = [-b, b], Var = std^2 * factor(b/std)",
            "PyTorch trunc_normal_(std=1, a=-2, b=2): the bounds are values, not multiples of std",
            params=("std", "a", "b"),
            known_as="PyTorch's trunc_normal_ (timm, ViT)",
        ),
        Preset(
            "truncated-normal",
            "truncated_normal_uncorrected",
            0.05**2,
            FIXED,
            "N(0, std^2) cut at +-2 std, Var = 0.7737 std^2 (fan-free; std=0.05 by default)",
            "Keras TruncatedNormal(stddev=0.05): values beyond 2 std are redrawn",
            params=("std",),
            known_as="Keras' TruncatedNormal",
        ),
        Preset(
            "variance-scaling",
            "normal",
            1.0,
            "fan_in",
            "Var = gain^2 * scale / fan; scale=, mode=fan_in|fan_out|fan_avg, distribution=",
            "JAX variance_scaling",
            params=("scale", "mode", "distribution", "gain"),
        ),
    )
}

ALIASES: dict[str, str] = {alias: p.name for p in PRESETS.values() for alias in p.aliases}
SCHEME_NAMES: tuple[str, ...] = tuple(PRESETS)


def _canonical_name(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = ALIASES.get(key, key)
    if key not in PRESETS:
        valid = ", ".join(SCHEME_NAMES)
        raise XavinitError(
            f"unknown scheme {name.strip()!r}{suggest(key, [*SCHEME_NAMES, *ALIASES])}; "
            f"valid schemes: {valid}"
        )
    return key


PARAMETER_RANGE = (1e-6, 1e6)
"""``gain``, ``scale`` and ``slope`` must lie in this range (``slope`` may also be 0): beyond it
a float32 weight's variance underflows or overflows, and no initialisation uses such values."""


STD_RANGE = (1e-30, 1e30)
"""``std`` and ``a`` (a law's own scale, ``normal:std=1e-6``) must lie in this range: a float32
weight holds it, and its variance stays a normal float64. A ViT draws its MLP biases with std
1e-6; ``check`` fits laws at whatever scale a tensor has, within this range."""


def _positive_number(text: str, what: str, allowed: tuple[float, float] = PARAMETER_RANGE) -> float:
    try:
        value = float(text)
    except ValueError:
        raise XavinitError(f"{what} must be a number, got {text!r}") from None
    low, high = allowed
    if not math.isfinite(value) or value <= 0:
        raise XavinitError(f"{what} must be a positive finite number, got {text!r}")
    if not low <= value <= high:
        raise XavinitError(f"{what} must be between {low:g} and {high:g}, got {text!r}")
    return value


def _parse_gain(text: str, scheme: str) -> float:
    try:
        float(text)
    except ValueError:  # not a number: an activation's name
        try:
            return activation_gain(text)
        except XavinitError as error:
            raise XavinitError(f"{scheme}: {error}") from None
    return _positive_number(text, f"{scheme}: gain")


def get_scheme(spec: str) -> Scheme:
    """Parse a scheme spec (see :func:`parse_scheme`); the same spec gives the same frozen
    :class:`Scheme`, parsed once (a check of thousands of tensors asks for each candidate
    thousands of times)."""
    if not isinstance(spec, str):
        return parse_scheme(spec)
    return _cached_scheme(spec)


@functools.lru_cache(maxsize=4096)
def _cached_scheme(spec: str) -> Scheme:
    return parse_scheme(spec)


def parse_scheme(spec: str) -> Scheme:
    """Parse a scheme spec such as ``normalized``, ``he-normal:mode=fan_out,slope=0.2``,
    ``normalized:gain=tanh`` or ``variance-scaling:scale=2,mode=fan_out,distribution=normal``.

    Raises:
        XavinitError (a ValueError): unknown name or parameter, or a bad value; the message lists
        what is allowed and suggests the closest name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise XavinitError(f"scheme must be a non-empty name, got {spec!r}")
    raw_name, items = split_spec(spec)
    name = _canonical_name(raw_name)
    preset = PRESETS[name]
    params: dict[str, str] = {}
    for item in items:
        key = item.key.lower().replace("-", "_")
        if not key or not item.value:
            raise XavinitError(
                f"{name}: parameter {item.text!r} is not key=value; "
                f"allowed keys: {', '.join(preset.params)}"
            )
        if key not in preset.params:
            raise XavinitError(
                f"{name}: unknown parameter {key!r}{suggest(key, preset.params)}; "
                f"allowed: {', '.join(preset.params)}"
            )
        if key in params:
            raise XavinitError(f"{name}: parameter {key!r} given twice")
        params[key] = item.value
    return _build_scheme(name, params, spec.strip())


def scheme_from_params(name: str, params: dict[str, str]) -> Scheme:
    """The scheme that :func:`parse_scheme` makes of ``name:key=value,...`` (spec text included),
    from a canonical preset name and canonical, allowed keys, without writing and parsing the
    text: ``check`` fits three or four fan-free laws to each of thousands of tensors, each at
    its own scale (so no cache of parsed specs holds them).

    Raises:
        XavinitError: a bad value (a scale outside :data:`STD_RANGE`).
    """
    items = ",".join(f"{key}={value}" for key, value in params.items())
    return _build_scheme(name, params, f"{name}:{items}" if items else name)


def _build_scheme(name: str, params: dict[str, str], spec: str) -> Scheme:
    """A preset with its (canonical, allowed) parameters applied; the values are checked."""
    preset = PRESETS[name]
    scale, mode, distribution, gain = preset.scale, preset.mode, preset.distribution, 1.0
    if "scale" in params:
        scale = _positive_number(params["scale"], f"{name}: scale")
    if "mode" in params:
        mode = params["mode"].lower().replace("-", "_")
        if mode not in MODES:
            raise XavinitError(
                f"{name}: mode must be one of {', '.join(MODES)}, got {params['mode']!r}"
            )
    if "distribution" in params:
        distribution = params["distribution"].lower().replace("-", "_")
        if distribution not in DISTRIBUTIONS:
            raise XavinitError(
                f"{name}: distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                f"got {params['distribution']!r}"
            )
    if "slope" in params:
        try:
            slope = float(params["slope"])
        except ValueError:
            slope = math.nan
        if not math.isfinite(slope) or slope < 0 or slope > PARAMETER_RANGE[1]:
            raise XavinitError(
                f"{name}: slope must be a non-negative number at most {PARAMETER_RANGE[1]:g}, "
                f"got {params['slope']!r}"
            )
        scale = preset.scale / (1.0 + slope**2)
    if "gain" in params:
        gain = _parse_gain(params["gain"], name)
    truncation = TRUNCATION
    if name in ("normal", "trunc-normal", "truncated-normal") and "std" in params:
        scale = _positive_number(params["std"], f"{name}: std", STD_RANGE) ** 2
    if name == "uniform" and "a" in params:
        scale = _positive_number(params["a"], f"{name}: a", STD_RANGE) ** 2 / 3.0
    if name == "trunc-normal":
        truncation = _absolute_truncation(params, math.sqrt(scale))
    return Scheme(
        name=name,
        spec=spec,
        distribution=distribution,
        scale=scale,
        mode=mode,
        gain=gain,
        params=params,
        truncation=truncation,
    )


def _absolute_truncation(params: dict[str, str], std: float) -> float:
    """``b / std`` for PyTorch's ``trunc_normal_(std, a, b)`` (absolute bounds, defaults -2, 2).

    Only symmetric bounds ``a = -b`` are supported: every initialiser in use cuts symmetrically.
    """
    try:
        a = float(params.get("a", "-2"))
        b = float(params.get("b", "2"))
    except ValueError:
        raise XavinitError(
            f"trunc-normal: a and b must be numbers, got a={params.get('a')!r}, b={params.get('b')!r}"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)) or b <= 0 or a != -b:
        raise XavinitError(
            f"trunc-normal: give symmetric absolute bounds a = -b < 0 < b, got a={a:g}, b={b:g}"
        )
    return b / std
