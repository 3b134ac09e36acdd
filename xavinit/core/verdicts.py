"""Per-tensor verdicts: ``constant``, ``init`` (which scheme), ``trained`` or ``unknown``.

For each tensor (its role and fans from :mod:`xavinit.core.roles`):

1. ``unknown`` when it cannot be told: fewer than :data:`MIN_ENTRIES` entries, integers (an
   index or a counter, not a weight), infinite values, a handful of distinct values that are
   not a constant pattern (a mask, a lookup table), or a failure of the arithmetic (the reason
   says which); ``constant`` when every entry is equal (zeros, ones) or the tensor is a few
   equal blocks of constants (an LSTM bias with ones on its forget gate).
2. One pass over the tensor (:func:`xavinit.core.matrixscan.scan_matrix`) gives its moments, row and
   column sums of squares, a subsample and the first Lanczos product. A handful of entries far
   outside any candidate law (:func:`xavinit.core.matrixscan.find_outliers`) are set aside and
   counted, so that they never decide the verdict of millions.
3. The candidate laws are ranked (:func:`rank_candidates`): every fan-based scheme with the
   tensor's fans (a bias: ``standard`` with its weight's ``fan_in``, PyTorch's default bias),
   plus the fan-free laws large models use with their scale fitted (:func:`fitted_schemes`). A
   fan-based candidate's score is ``min(p_variance, p_KS)``, the variance tested on init's
   interval null (a deviation beyond the 1% tolerance, so that the right scheme is not lost to
   a fitted copy of itself 1% of the time); a fitted candidate's is its KS p-value alone, since
   its variance was fitted. A bounded law may leave a handful of entries past its bound.
4. "Still a fresh i.i.d. initialisation" is one hypothesis per tensor with up to four tests
   (:func:`trained_p_value`, Bonferroni): the law (the best candidate), the spectrum (the top
   singular value against the Bai-Yin edge, :func:`xavinit.core.spectrum.edge_p_value`), and the
   spread of the rows' and of the columns' sums of squares (:func:`dispersion_p_value`). Their
   combination enters one family over all tensors of the run (Holm at ``alpha``,
   :func:`decide`): rejected tensors are ``trained``, the others ``init``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

import numpy as np

from xavinit.core.matrixscan import (
    MatrixScan,
    Outliers,
    block_rows,
    exclude,
    find_outliers,
    gram_products,
    max_outliers,
    scan_matrices,
    scan_matrix,
)
from xavinit.core.roles import Tensor
from xavinit.core.schemes import (
    PRESETS,
    STD_RANGE,
    TRUNCATED_VARIANCE_FACTOR,
    Scheme,
    get_scheme,
    scheme_from_params,
    truncated_mass,
    truncated_variance_factor,
)
from xavinit.core.spectrum import (
    EXACT_SIDE,
    SpectralEstimate,
    bai_yin_edge,
    edge_p_value,
    edge_p_values,
    top_singular_value,
)
from xavinit.core.stats import (
    CORRECTIONS,
    Moments,
    big_phi,
    ks_sorted,
    moments_and_sample,
    normal_cdf,
    normal_quantile,
    variance_p_values,
)
from xavinit.core.verification import (
    DEFAULT_TOLERANCE,
    RANKING_CANDIDATES,
    Measurement,
    Tolerance,
    assess_iid,
    assess_orthogonal,
    float_tolerance,
    judge,
)
from xavinit.errors import XavinitError
from xavinit.limits import KS_SAMPLE
from xavinit.results import InitCheck

MIN_ENTRIES = 32
"""Fewer entries cannot tell one law from another (a KS test of 32 values resolves about 0.2
in CDF): such tensors are ``unknown``."""

SPECTRUM_MIN_DIM = 8
"""The spectral and spread tests need both matrix sides at least this long (Tracy-Widom's
approximation, checked by simulation down to 8 x 8 in ``docs/theory.md``)."""

TRUNCATION_EVIDENCE = 1e-3
"""A truncated normal is fitted only when a plain normal would stay inside its bounds with
less than this probability."""

GRAM_LIMIT = 4e11
"""Orthogonal is not a candidate when ``max(fan) * min(fan)^2`` exceeds this (minutes of work)."""

CORRELATION_FLOPS = 1 << 27
"""The rows' correlation test runs where the Gram matrix of the shorter side costs at most this
many multiply-adds (``min(n, p)^2 max(n, p)``: up to about 512 x 512)."""

FEW_VALUES = 8
"""A tensor of at least :data:`MIN_ENTRIES` entries with at most this many distinct values is
not a draw from a continuous law (a mask, a table, constant blocks)."""

BLOCK_COUNTS = (2, 3, 4, 8)
"""Constant patterns tried: the tensor split into this many equal blocks, each constant (the
gates of an LSTM or GRU bias)."""

FAN_OUT_CANDIDATES = ("he-normal:mode=fan_out", "he-uniform:mode=fan_out")
"""He's rules on fan_out: PyTorch's ``kaiming_normal_(mode='fan_out')`` (torchvision ResNet,
EfficientNet, MobileNet) and its uniform twin."""

STORED_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
"""Machine epsilon of the half types, which are widened to float32 before they are measured:
the support of a bounded law is checked to the rounding of the type the file stored."""

FAILURES = (ArithmeticError, ValueError, np.linalg.LinAlgError)
"""What the arithmetic on one tensor may raise (an eigensolver that does not converge, an
overflow): that tensor becomes ``unknown`` with the reason, never the whole run's error."""


@dataclass
class Examined:
    """What one pass over one tensor found, before the run-wide decision.

    ``candidates``: ranking rows, best first; ``best``: the best candidate's full check;
    ``law_p``/``spectral_p``/``row_p``/``column_p``: the tests of "a fresh i.i.d. draw" (None
    when not run); ``expected``: one unjudged check per expected scheme (or None with the reason
    in ``expected_notes`` when the scheme cannot apply to this tensor); ``outliers``: entries
    set aside, ``outlier_peak`` the largest of them in units of the tensor's std;
    ``spectral_steps``: the Lanczos steps the top singular value took.
    """

    tensor: Tensor
    file: str
    status: Literal["test", "constant", "unknown", "unranked"]
    reason: str
    count: int = 0
    observed_var: float | None = None
    observed_mean: float | None = None
    candidates: list[dict[str, object]] = field(default_factory=list)
    best: InitCheck | None = None
    law_p: float | None = None
    spectral_p: float | None = None
    row_p: float | None = None
    column_p: float | None = None
    correlation_p: float | None = None
    top_singular_ratio: float | None = None
    spectral_steps: int | None = None
    outliers: int = 0
    outlier_peak: float | None = None
    expected: list[InitCheck | None] = field(default_factory=list)
    expected_notes: list[str] = field(default_factory=list)


# --- candidates ---------------------------------------------------------------------------


def fan_based_candidates(tensor: Tensor, orthogonal: bool = True) -> tuple[str, ...]:
    """The fan-based presets a tensor of this role may have been drawn from (``orthogonal``
    False leaves out the one candidate that needs a Gram matrix)."""
    if tensor.fan_in is None or tensor.fan_out is None:
        return ()
    if tensor.role == "bias":
        return ("standard",)
    if tensor.role in ("norm", "other") and len(tensor.shape) < 2:
        return ()
    candidates: tuple[str, ...] = (*RANKING_CANDIDATES, *FAN_OUT_CANDIDATES)
    rows = tensor.shape[0] if tensor.layout == "out-in" else tensor.shape[-1]
    columns = math.prod(tensor.shape) // max(rows, 1)
    if (
        not orthogonal
        or len(tensor.shape) < 2
        or max(rows, columns) * min(rows, columns) ** 2 > GRAM_LIMIT
    ):
        candidates = tuple(c for c in candidates if c != "orthogonal")
    return candidates


def _spec(**values: float) -> dict[str, str]:
    """A fitted law's parameters as its spec writes them (``name:key=value,...``): 5 significant
    digits; bounds (``a``, ``b``) rounded away from zero so that the largest entry stays inside
    them."""

    def text(key: str, value: float) -> str:
        if key in ("a", "b") and value != 0:
            digits = 4 - math.floor(math.log10(abs(value)))
            value = math.copysign(math.ceil(abs(value) * 10**digits) / 10**digits, value)
        return f"{value:.5g}"

    return {k: text(k, v) for k, v in values.items()}


def fitted_schemes(measurement: Measurement) -> list[Scheme]:
    """The fan-free laws with their scale fitted to the tensor.

    - ``normal:std=S``, ``S = sqrt(m2)`` (the maximum-likelihood scale of N(0, S^2));
    - ``uniform:a=A``, ``A = max|w| (N + 1) / N`` (the unbiased estimate from the maximum);
    - ``truncated-normal:std=S`` (cut at +-2 S, Keras), ``S = sqrt(m2 / 0.7737)``;
    - ``trunc-normal:std=S,a=-B,b=B`` (PyTorch's absolute bounds), ``B`` as ``A`` above and
      ``S`` solving ``S^2 factor(B / S) = m2`` by bisection, only when the cut is evident: a
      plain normal of that std would keep all N entries within ``+-B`` with probability
      ``(2 Phi(B / S) - 1)^N`` below :data:`TRUNCATION_EVIDENCE` (else the data are the plain
      normal's, and a cut at their largest entry would fit them as well), and lies at least one
      std out (a nearer cut is all but the uniform, which is a candidate of its own).

    A law whose scale lies outside what a scheme spec accepts (:data:`xavinit.core.schemes.STD_RANGE`)
    is left out.
    """
    moments = measurement.moments
    m2, count = moments.mean_square, moments.count
    peak = max(abs(moments.minimum), abs(moments.maximum))
    if not m2 > 0 or not peak > 0 or not math.isfinite(m2):
        return []
    edge = peak * (count + 1) / count
    specs = [
        ("normal", _spec(std=math.sqrt(m2))),
        ("uniform", _spec(a=edge)),
        ("truncated-normal", _spec(std=math.sqrt(m2 / TRUNCATED_VARIANCE_FACTOR))),
    ]
    # a truncated normal with this bound can have this variance, and may be evidently cut
    if m2 < edge * edge / 3.0 and _cut_may_be_evident(m2, edge, count):
        lo, hi = 1e-12 * edge, 1e6 * edge
        for _ in range(64):  # geometric bisection: 2^-64 of a ratio of 1e18, exact in float64
            mid = math.sqrt(lo * hi)
            if mid * mid * truncated_variance_factor(edge / mid) < m2:
                lo = mid
            else:
                hi = mid
        std = math.sqrt(lo * hi)
        inside = truncated_mass(edge / std)
        cut_beyond_one_std = edge >= std  # a nearer cut is all but uniform: that candidate is
        evident = inside < 1.0 and count * math.log(inside) < math.log(TRUNCATION_EVIDENCE)
        if cut_beyond_one_std and evident:
            specs.append(("trunc-normal", _spec(std=std, a=-edge, b=edge)))
    schemes = []
    for name, params in specs:
        try:
            schemes.append(scheme_from_params(name, params))
        except XavinitError:  # a scale no spec accepts (1e-35, 1e38): not a weight's law
            continue
    return schemes


def _cut_may_be_evident(m2: float, edge: float, count: int) -> bool:
    """False only when no truncated normal cut at ``+-B`` (``B = edge``) with variance ``m2``
    can be an evident cut at least one std out (:func:`fitted_schemes`), so that its bisection
    is skipped.

    The truncated variance ``g(S) = S^2 factor(B / S)`` grows with ``S``. The cut is evident
    when ``(2 Phi(B / S) - 1)^N < E`` (``E`` = :data:`TRUNCATION_EVIDENCE`), i.e. when
    ``S > B / c`` with ``1 - Phi(c) = (1 - E^(1 / N)) / 2``: exactly when
    ``m2 > g(B / c) = (B / c)^2 factor(c)``; it lies one std out when ``S <= B``, i.e.
    ``m2 <= g(B) = B^2 factor(1)`` (a uniform-looking tensor, ``m2`` near ``B^2 / 3``, fails
    this). A relative margin of 1e-6 on each side leaves every tensor near a threshold to the
    bisection, which decides as before.
    """
    if m2 > edge * edge * _ONE_STD_FACTOR * (1.0 + 1e-6):
        return False
    cut = _evident_cut(count)
    if cut is None:
        return True
    c, factor = cut
    threshold = (edge / c) ** 2 * factor
    return not m2 < threshold * (1.0 - 1e-6)


_ONE_STD_FACTOR = truncated_variance_factor(1.0)
"""``factor(1)``: the variance of N(0, 1) cut at +-1 (:func:`_cut_may_be_evident`)."""


@functools.lru_cache(maxsize=256)
def _evident_cut(count: int) -> tuple[float, float] | None:
    """``(c, factor(c))`` with ``1 - Phi(c) = (1 - E^(1 / N)) / 2`` for ``N = count`` entries
    (:func:`_cut_may_be_evident`), None where that tail is not in (0, 1/2); once per size."""
    tail = -math.expm1(math.log(TRUNCATION_EVIDENCE) / count) / 2.0
    if not 0.0 < tail < 0.5:
        return None
    c = -normal_quantile(tail)
    return c, truncated_variance_factor(c)


FITTED_DEFAULTS = {
    "normal": ((1.0, "PyTorch's nn.Embedding default (std=1)"),
               (0.02, "BERT, GPT-2, Llama, ConvNeXt: N(0, 0.02)")),
    "uniform": ((0.05, "Keras' Embedding default (a=0.05)"),),
}  # fmt: skip
"""Fitted fan-free laws that are a library's default at one scale: ``(scale, who)``."""


def known_as_of(scheme: Scheme) -> str:
    """Who uses a scheme by default (for a fan_out variant of He, PyTorch's mode='fan_out'; a
    fitted normal or uniform only at a library's own scale, within 2%)."""
    if scheme.name in ("he-normal", "he-uniform") and scheme.mode == "fan_out":
        kind = "normal" if scheme.name == "he-normal" else "uniform"
        return f"PyTorch's kaiming_{kind}_(mode='fan_out') (torchvision ResNet, EfficientNet)"
    if scheme.name in FITTED_DEFAULTS and scheme.params:
        scale = math.sqrt(scheme.variance(1, 1) * (3.0 if scheme.name == "uniform" else 1.0))
        for value, who in FITTED_DEFAULTS[scheme.name]:
            if abs(scale / value - 1.0) <= 0.02:
                return who
        return ""
    return PRESETS[scheme.name].known_as


def matrix_view(tensor: Tensor, array: np.ndarray) -> np.ndarray:
    """The tensor as a 2-D matrix whose rows and columns are its inputs and outputs (in either
    order): itself, a conv kernel flattened to (out, in rf) or (rf in, out), a kernel split at
    the boundary of its input and output axes (``fan_axes``); size-1 axes are dropped first (a
    view wherever the data are contiguous)."""
    axes = getattr(tensor, "fan_axes", None)
    if axes is not None:
        inputs, outputs = axes
        if inputs and outputs and (max(inputs) < min(outputs) or max(outputs) < min(inputs)):
            split = min(max(inputs), max(outputs)) + 1
            return array.reshape(math.prod(array.shape[:split]), -1)
    squeezed = array.reshape([n for n in array.shape if n != 1]) if 1 in array.shape else array
    if squeezed.ndim < 2:
        squeezed = array.reshape(array.shape[0], -1) if array.ndim >= 2 else squeezed
    if squeezed.ndim == 2:
        return squeezed
    if tensor.layout == "out-in":
        return squeezed.reshape(squeezed.shape[0], -1)
    return squeezed.reshape(-1, squeezed.shape[-1])


def orthogonal_possible(top: float | None, mean_square: float, shape: tuple[int, ...]) -> bool:
    """Whether a matrix can be orthogonal, from its top singular value (when measured).

    ``W^T W = g^2 I`` gives every singular value ``g`` and ``||W||_F^2 = g^2 min(n, p)``, so
    ``s_max^2 = m2 max(n, p)``; the Lanczos estimate never exceeds ``s_max``, so a larger
    estimate (an i.i.d. matrix has ``(sqrt n + sqrt p)^2 m2``) rules orthogonality out without
    the Gram matrix.
    """
    if top is None or len(shape) != 2:
        return True
    return top * top <= mean_square * max(shape) * (1.0 + 1e-3)


def count_beyond(values: np.ndarray, bound: float, outliers: Outliers | None = None) -> int:
    """How many entries have ``|w| > bound``, a block at a time (outliers not counted)."""
    flat = values.reshape(-1) if values.ndim != 2 else values
    matrix = flat if flat.ndim == 2 else flat.reshape(1, -1)
    rows = block_rows(matrix.shape[1])
    total = 0
    for first in range(0, matrix.shape[0], rows):
        total += int(np.count_nonzero(np.abs(matrix[first : first + rows]) > bound))
    if outliers is not None:
        total -= int(np.count_nonzero(np.abs(outliers.values) > bound))
    return total


def _support_slack(scheme: Scheme, measurement: Measurement, dtype: np.dtype) -> float:
    """How far past a bounded law's bound an entry may lie and still be inside it: rounding
    (4 eps of the stored type) and, for a bound fitted from the variance (Keras' truncated
    normal, cut at 2 S with S from m2), three standard errors of that estimate,
    ``1.5 sqrt((k - 1) / N)`` relative."""
    eps = measurement.eps or float_tolerance(dtype)
    slack = 1.0 + 4.0 * eps
    if scheme.fan_free and scheme.name == "truncated-normal" and scheme.kurtosis is not None:
        slack += 1.5 * math.sqrt((scheme.kurtosis - 1.0) / measurement.moments.count)
    return slack


def _law_key(scheme: Scheme, fan_in: int, fan_out: int) -> tuple[object, ...]:
    """Schemes that are the same law on these fans (normalized and lecun-uniform on a square
    matrix) share one evaluation."""
    if not scheme.iid:
        return ("orthogonal", scheme.gain)
    return (
        scheme.distribution,
        float(f"{scheme.variance(fan_in, fan_out):.12g}"),
        scheme.truncation,
    )


@dataclass(frozen=True)
class _Law:
    """One candidate scheme on one tensor's fans: what its ranking row needs that does not
    depend on the entries (``expected``, ``kurtosis``, ``bound`` and ``cdf`` are NaN, NaN, None
    and None for orthogonal), computed once per candidate list and fans for the fan-based
    candidates (:func:`_fan_plan`)."""

    scheme: Scheme
    key: tuple[object, ...]
    expected: float
    kurtosis: float
    bound: float | None
    known_as: str
    cdf: tuple[bool, float, float | None, float | None] | None


def _law(scheme: Scheme, fan_in: int, fan_out: int) -> _Law:
    if not scheme.iid:
        return _Law(scheme, _law_key(scheme, fan_in, fan_out), math.nan, math.nan, None,
                    known_as_of(scheme), None)  # fmt: skip
    return _Law(
        scheme,
        _law_key(scheme, fan_in, fan_out),
        scheme.variance(fan_in, fan_out),
        scheme.kurtosis or 3.0,
        scheme.bound(fan_in, fan_out),
        known_as_of(scheme),
        _cdf_parameters_of(scheme, fan_in, fan_out),
    )


@dataclass(frozen=True)
class _Plan:
    """The fan-based candidates of one list on one pair of fans, with what ranking them needs
    that is the same for every tensor: ``slots[i]`` is the index in ``distinct`` of the law of
    ``laws[i]`` (the first candidate with its key), ``iid`` the indices of the i.i.d. ones in
    ``distinct``, with their ``expected`` variances and ``kurtosis``."""

    laws: tuple[_Law, ...]
    slots: tuple[int, ...]
    distinct: tuple[_Law, ...]
    iid: tuple[int, ...]
    expected: tuple[float, ...]
    kurtosis: tuple[float, ...]


def _distinct(laws: Sequence[_Law]) -> tuple[list[int], list[_Law]]:
    """Each law's slot among the distinct laws (the first with its key), and those laws."""
    seen: dict[tuple[object, ...], int] = {}
    slots: list[int] = []
    distinct: list[_Law] = []
    for law in laws:
        slot = seen.get(law.key)
        if slot is None:
            slot = seen[law.key] = len(distinct)
            distinct.append(law)
        slots.append(slot)
    return slots, distinct


@functools.lru_cache(maxsize=1024)
def _fan_plan(candidates: tuple[str, ...], fan_in: int, fan_out: int) -> _Plan:
    """The fan-based candidates on these fans (a run of thousands of tensors of a few shapes
    asks for the same list each time)."""
    laws = tuple(_law(get_scheme(spec), fan_in, fan_out) for spec in candidates)
    slots, distinct = _distinct(laws)
    iid = tuple(j for j, law in enumerate(distinct) if law.scheme.iid)
    return _Plan(
        laws, tuple(slots), tuple(distinct), iid,
        tuple(distinct[j].expected for j in iid), tuple(distinct[j].kurtosis for j in iid),
    )  # fmt: skip


def cdf_rows(schemes: Sequence[Scheme], x: np.ndarray, fan_in: int, fan_out: int) -> np.ndarray:
    """``schemes[i].cdf(x, fan_in, fan_out)`` as row ``i`` of one ``(len(schemes), x.size)``
    float64 array, with :meth:`xavinit.core.schemes.Scheme.cdf`'s arithmetic entry by entry (the
    same numbers, bit for bit), but one interpolation for every normal-based law.

    Uniform on ``[-b, b]``: ``F = clip((x + b) / (2 b), 0, 1)``; normal of std ``s``:
    ``F = Phi(x / s)``; truncated at ``+-c s``: ``F = clip((Phi(x / s) - Phi(-c)) / (2 Phi(c)
    - 1), 0, 1)`` (``Phi`` by :func:`xavinit.core.stats.normal_cdf`).

    Args:
        schemes: i.i.d. schemes.
        x: the points, shape ``(n,)``.
    """
    return _cdf_block([_cdf_parameters(s, fan_in, fan_out) for s in schemes], x)


def _cdf_block(
    parameters: Sequence[tuple[bool, float, float | None, float | None]], x: np.ndarray
) -> np.ndarray:
    """:func:`cdf_rows` from each law's :func:`_cdf_parameters_of`: at the points ``x``
    (``(n,)``) for every law, or row ``i`` of ``x`` (``(len(parameters), n)``, float64) for
    law ``i`` (the same arithmetic entry by entry)."""
    x = np.asarray(x, dtype=np.float64)
    per_row = x.ndim == 2
    if not per_row:
        x = x.reshape(-1)
    out = np.empty((len(parameters), x.shape[-1]))
    uniform: list[int] = []
    bounds: list[float] = []
    normal: list[int] = []
    scales: list[float] = []
    cut: list[int] = []
    below: list[float] = []
    inverse_mass: list[float] = []
    for row, (is_uniform, value, cut_below, cut_inverse_mass) in enumerate(parameters):
        if is_uniform:
            uniform.append(row)
            bounds.append(value)
            continue
        if cut_below is not None:
            cut.append(len(normal))
            below.append(cut_below)
            inverse_mass.append(cut_inverse_mass)  # type: ignore[arg-type]
        normal.append(row)
        scales.append(value)
    if uniform:
        edges = np.array(bounds)[:, None]
        u = np.add(x[uniform] if per_row else x, edges)
        u *= 1.0 / (2.0 * edges)
        out[uniform] = np.clip(u, 0.0, 1.0, out=u)
    if normal:
        z = np.multiply(x[normal] if per_row else x, np.array(scales)[:, None])
        # many samples' rows: one flat array, its cells found by arithmetic (the same numbers)
        values = normal_cdf(z.reshape(-1)).reshape(z.shape) if per_row else normal_cdf(z)
        if cut:
            part = values[cut]
            part -= np.array(below)[:, None]
            part *= np.array(inverse_mass)[:, None]
            values[cut] = np.clip(part, 0.0, 1.0, out=part)
        out[normal] = values
    return out


def _cdf_parameters_of(
    scheme: Scheme, fan_in: int, fan_out: int
) -> tuple[bool, float, float | None, float | None]:
    """What :func:`cdf_rows` needs of one law on these fans:
    ``(uniform, b or 1 / s, Phi(-c) or None, 1 / (2 Phi(c) - 1) or None)``."""
    if scheme.distribution == "uniform":
        b = scheme.bound(fan_in, fan_out)
        assert b is not None
        return True, b, None, None
    std = scheme.std(fan_in, fan_out)
    if std is None:
        raise ValueError(f"scheme {scheme.spec!r} has no per-entry distribution")
    if scheme.distribution == "normal":
        return False, 1.0 / std, None, None
    return (False, 1.0 / std, *_cut_parameters(scheme.truncation))


@functools.lru_cache(maxsize=64)
def _cut_parameters(c: float) -> tuple[float, float]:
    """``(Phi(-c), 1 / (2 Phi(c) - 1))`` of a normal cut at +-c std (c = 2 for most laws)."""
    return big_phi(-c), 1.0 / truncated_mass(c)


_cdf_parameters = functools.lru_cache(maxsize=1024)(_cdf_parameters_of)
""":func:`_cdf_parameters_of` once per law and fans (:func:`cdf_rows` on many tensors)."""


def rank_candidates(
    tensor: Tensor,
    array: np.ndarray,
    measurement: Measurement,
    alpha: float,
    array_name: str,
    *,
    orthogonal: bool = True,
    outliers: Outliers | None = None,
    best_check: bool = True,
) -> Steps[tuple[list[dict[str, object]], list[InitCheck]]]:
    """Rank every candidate law for one tensor, best first, as steps (:data:`Steps`, part of
    :func:`examine`'s): the KS tests are asked for by one :class:`KSRequest`.

    Order: fan-based candidates that explain the tensor (score > ``alpha``) first, by score;
    then every other candidate by score; ties by ``|log(observed / expected)|``, then by list
    order (on a square matrix ``normalized`` and ``lecun-uniform`` are the same law: the first
    wins, and the law is tested once). A fan-based candidate's score is ``min(p_interval,
    p_KS)`` (init's variance test on the interval null of a 1% deviation, and the KS test of
    the sorted sample); a fitted one's its KS p-value alone. A fan-based scheme whose variance
    is decisively off (point-null p < 1e-12) skips its KS test. The KS tests of all laws run
    at once (:func:`cdf_rows`, :func:`xavinit.core.stats.ks_sorted`). A bounded law whose support
    holds but for at most :func:`xavinit.core.matrixscan.max_outliers` entries keeps its score; the
    row says how many (``outside``). Only the best candidate's full check is built, and only
    with ``best_check`` (``init --check`` reports it; ``check`` shows the rows only).

    Returns:
        the candidate rows, and the best candidate's full check (a list of one, empty without
        ``best_check`` unless the best is orthogonal).
    """
    fan_in = tensor.fan_in or 1
    fan_out = tensor.fan_out or 1
    dtype = array.dtype
    moments = measurement.moments
    count, observed = moments.count, moments.mean_square
    plan = _fan_plan(fan_based_candidates(tensor, orthogonal), fan_in, fan_out)
    fitted = [_law(scheme, fan_in, fan_out) for scheme in fitted_schemes(measurement)]
    if not plan.laws and not fitted:
        return [], []
    peak = max(abs(moments.minimum), abs(moments.maximum))
    eps = measurement.eps or float_tolerance(dtype)
    # the distinct laws: the plan's fan-based ones, then the fitted ones (a fitted law is never
    # the same evaluation as a fan-based one: its score is its KS p-value alone)
    fitted_slots, fitted_distinct = _distinct(fitted)
    first_fitted = len(plan.distinct)
    distinct = [*plan.distinct, *fitted_distinct]
    slots = [*plan.slots, *(first_fitted + slot for slot in fitted_slots)]
    laws = [*plan.laws, *fitted]
    iid = [*plan.iid, *range(first_fitted, len(distinct))]
    variance_ps = variance_p_values(
        observed, [*plan.expected, *(law.expected for law in fitted_distinct)], count,
        [*plan.kurtosis, *(law.kurtosis for law in fitted_distinct)], DEFAULT_TOLERANCE.variance,
    )  # fmt: skip
    # one evaluation per distinct law: (p_value, interval_p, support_ok), KS p apart
    fits: list[tuple[float, float, bool | None]] = [(math.nan, math.nan, None)] * len(distinct)
    ks_ps: list[float | None] = [None] * len(distinct)
    needs_ks: list[int] = []
    for slot, (p_value, interval) in zip(iid, variance_ps, strict=True):
        bound = distinct[slot].bound
        fits[slot] = (
            p_value,
            interval,
            None if bound is None else peak <= bound * (1.0 + 4.0 * eps),
        )
        if slot >= first_fitted or not p_value < 1e-12:  # decisively off: no KS test
            needs_ks.append(slot)
    orthogonal_check: InitCheck | None = None
    if len(iid) < len(distinct):  # orthogonal on the matrix view, as torch's orthogonal_ flattens
        law = next(law for law in distinct if not law.scheme.iid)
        view = matrix_view(tensor, array)
        oriented = view.T if tensor.layout == "out-in" else view
        orthogonal_check = assess_orthogonal(law.scheme, [np.asarray(oriented)], array=array_name)
    if needs_ks:
        parameters = [distinct[slot].cdf for slot in needs_ks]  # i.i.d. laws: never None
        tests = yield KSRequest(parameters, measurement.sample)  # type: ignore[arg-type]
        for slot, (_, p) in zip(needs_ks, cast(list[tuple[float, float]], tests), strict=True):
            ks_ps[slot] = p
    done: list[tuple[float, float | None, float, float, float, int] | None] = [None] * len(distinct)
    entries: list[tuple[tuple[float, ...], dict[str, object], Scheme]] = []
    for order, (law, slot) in enumerate(zip(laws, slots, strict=True)):
        scheme = law.scheme
        fitted_law = slot >= first_fitted
        result = done[slot]
        if result is None and scheme.iid:
            p_value, interval, support = fits[slot]
            law_ks = ks_ps[slot]
            if fitted_law:
                score = law_ks if law_ks is not None else 0.0
            else:
                score = interval if law_ks is None else min(interval, law_ks)
            outside = 0
            if support is False:
                bound = law.bound
                if score > alpha and bound is not None:
                    outside = count_beyond(
                        array, bound * _support_slack(scheme, measurement, dtype), outliers
                    )
                if not (score > alpha and outside <= max_outliers(count)):
                    score = 0.0
            rel_error = observed / law.expected - 1.0
            result = done[slot] = (score, law_ks, p_value, law.expected, rel_error, outside)
        elif result is None:
            check = orthogonal_check
            assert check is not None
            score = 1.0 if check.passed else 0.0
            result = done[slot] = (score, None, math.nan, check.expected_var, check.rel_error, 0)
        score, ks_p, p_value, expected, rel_error, outside = result
        row: dict[str, object] = {
            "scheme": scheme.spec,
            "score": score,
            "p_value": None if math.isnan(p_value) else p_value,
            "ks_p_value": ks_p,
            "expected_var": expected,
            "rel_error": rel_error,
            "explains": score > alpha,
            "known_as": law.known_as,
        }
        if outside:
            row["outside"] = outside
        preferred = 0.0 if (not fitted_law and score > alpha) else 1.0
        closeness = abs(math.log1p(rel_error)) if rel_error > -1 else math.inf
        entries.append(((preferred, -score, closeness, order), row, scheme))
    entries.sort(key=lambda entry: entry[0])
    rows = [row for _, row, _ in entries]
    best_key, _, best = entries[0]
    best_score = -best_key[1]
    if best.iid and not best_check:
        return rows, []
    if best.iid:
        check = assess_iid(best, fan_in, fan_out, [measurement], alpha, dtype)
        if check.support_ok is False and best_score > alpha:  # a handful past the bound
            check = dataclasses.replace(check, support_ok=True)
    else:
        assert orthogonal_check is not None
        check = orthogonal_check
    check = dataclasses.replace(
        check, scheme=best.spec, array=array_name, passed=best_score > alpha
    )
    return rows, [check]


def _fan_free(spec: str) -> bool:
    """Whether a ranking row's scheme is fan-free (a fitted law such as ``normal:std=0.02``);
    asked of every row of every tensor, twice. A preset's name decides it (no parameter makes
    a fan-based preset fan-free or the reverse: ``mode`` takes fan_in, fan_out or fan_avg), so
    the parameters, which differ from tensor to tensor for a fitted law, are not parsed."""
    return _fan_free_name(spec.partition(":")[0])


@functools.lru_cache(maxsize=256)
def _fan_free_name(name: str) -> bool:
    return get_scheme(name).fan_free


def runner_up(rows: Sequence[dict[str, object]]) -> str | None:
    """The second explanation: the next fan-based candidate after a fan-based best (a fitted
    copy of the same law says nothing new), else the next candidate."""
    if len(rows) < 2:
        return None
    best_fitted = _fan_free(str(rows[0]["scheme"]))
    for row in rows[1:]:
        if best_fitted or not _fan_free(str(row["scheme"])):
            return str(row["scheme"])
    return None


# --- the tests of "a fresh i.i.d. draw" ----------------------------------------------------


def law_p_value(rows: Sequence[dict[str, object]]) -> float:
    """p-value of "the entries follow one of the candidate laws": the largest candidate p-value
    (a union of nulls is rejected only when every member is), each candidate's two tests
    combined by Bonferroni (fitted candidates have only their KS test)."""
    best = 0.0
    for row in rows:
        score = float(row["score"])  # type: ignore[arg-type]
        two_tests = row["p_value"] is not None and row["ks_p_value"] is not None
        fitted = _fan_free(str(row["scheme"]))
        best = max(best, min(1.0, score * (2.0 if two_tests and not fitted else 1.0)))
    return best


def _square_kurtosis(sample: np.ndarray) -> float:
    """Kurtosis of ``w^2`` from a sample: ``E[(w^2 - m)^4] / Var(w^2)^2`` by raw moments
    (``E w^8 - 4 m E w^6 + 6 m^2 E w^4 - 3 m^4``), two products and two dots, no more."""
    squares = np.square(sample, dtype=np.float64)
    fourth = np.square(squares)
    return _kurtosis_from_sums(
        squares.size,
        float(squares.sum()),
        float(fourth.sum()),
        float(fourth @ squares),
        float(fourth @ fourth),
    )


def _kurtosis_from_sums(n: int, s2: float, s4: float, s6: float, s8: float) -> float:
    """:func:`_square_kurtosis` from the sums of ``w^2, w^4, w^6, w^8`` over ``n`` entries."""
    m = s2 / n
    m4 = s4 / n
    m6 = s6 / n
    m8 = s8 / n
    variance = m4 - m * m
    if n < 2 or not variance > 0:
        return 3.0
    return (m8 - 4.0 * m * m6 + 6.0 * m * m * m4 - 3.0 * m**4) / variance**2


def dispersion_p_value(
    squares: np.ndarray,
    length: int,
    mean_square: float,
    fourth: float,
    w2_kurtosis: float,
    spread: float | None = None,
) -> float | None:
    """p-value of "the rows (or columns) are alike": their sums of squares spread no more than
    i.i.d. entries allow.

    Each of the ``n`` sums ``r_i`` adds ``L = length`` squares; for i.i.d. entries
    ``Var r = L (mu4 - m2^2)``, estimated from the tensor's own moments (no law assumed). The
    statistic ``T = s_r^2 / Var r`` (``s_r^2`` the sample variance of the ``r_i``) has mean 1 and
    variance ``2 / (n - 1) + kappa / n + (k2 - 1) / N``: the first two terms are the sample
    variance's (``kappa = (k2 - 3) / L`` the excess kurtosis of ``r``, ``k2`` that of ``w^2``),
    the last the estimate's of ``mu4 - m2^2`` over all ``N = n L`` entries. ``T d`` is taken as
    chi-square with ``d = 2 / Var T`` degrees of freedom (Satterthwaite), its upper tail by
    Wilson and Hilferty's (1931) cube-root normal approximation. Trained weights whose units
    grew apart (dead, dominant or pruned rows) spread far more. One-sided: orthogonal rows
    (equal norms) never reject. ``spread``: ``s_r^2`` when already computed
    (:func:`_spread_sums`).
    """
    n = int(squares.size)
    variance = length * (fourth - mean_square * mean_square)
    if n < SPECTRUM_MIN_DIM or length < 1 or not variance > 0 or not math.isfinite(variance):
        return None
    if spread is None:
        spread = sample_variance(squares)
    statistic = spread / variance
    kappa = (w2_kurtosis - 3.0) / length
    var_t = 2.0 / (n - 1) + kappa / n + max(w2_kurtosis - 1.0, 0.0) / (n * length)
    if not var_t > 0:
        return None
    return _chi_square_two_sided(statistic, 2.0 / var_t)


def sample_variance(values: np.ndarray) -> float:
    """``np.var(values, ddof=1)`` of a 1-D array of at least two entries: numpy's own
    operations in its order (sum, divide, subtract, square, sum, divide by ``n - 1``), so the
    same number bit for bit, without its dispatch (10 us a call, two calls per tensor)."""
    n = values.size
    mean = np.add.reduce(values, keepdims=True)
    np.true_divide(mean, n, out=mean, casting="unsafe")
    deviations = values - mean
    np.multiply(deviations, deviations, out=deviations)
    return float(np.add.reduce(deviations) / (n - 1))


def _chi_square_two_sided(ratio: float, d: float) -> float:
    """Two-sided p-value of ``ratio`` (mean 1) taken as ``chi2_d / d``: Wilson and Hilferty's
    (1931) cube-root normal approximation of each tail."""
    c = 2.0 / (9.0 * d)
    z = (max(ratio, 0.0) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return min(1.0, 2.0 * big_phi(-abs(z)))


def correlation_p_value(
    matrix: np.ndarray,
    mean_square: float,
    kurtosis: float,
    gram: tuple[float, float] | None = None,
) -> float | None:
    """p-value of "the rows are uncorrelated": the sum of squared inner products between the
    rows (of the shorter side) against what i.i.d. entries give.

    For ``n`` rows of ``p`` i.i.d. zero-mean entries of variance ``s2`` and kurtosis ``k``, each
    inner product ``g_ij`` has ``E g_ij^2 = p s2^2`` whatever the law; with
    ``T = sum_{i<j} g_ij^2 / m2^2`` (``m2`` the mean of squares of all ``N = n p`` entries, whose
    own error is counted by the delta method) ``E T = C p (1 - (k - 1) / N)`` and
    ``Var T = C p (2 (p - 1) + (k - 1)^2)``, ``C = n (n - 1) / 2`` (pairs sharing a row are
    correlated, which the variance includes). ``T`` is taken as a scaled chi-square with the
    same mean and variance. Two-sided: training correlates units (shared directions) or
    decorrelates them (rows more orthogonal than chance, as weight decay and orthogonality
    penalties leave them); a fresh draw does neither, and an exactly orthogonal one is the
    ``orthogonal`` candidate's to recognise. Computed where the Gram matrix of the shorter side
    is cheap (:data:`CORRELATION_FLOPS`); larger matrices have the spectral test's power.
    ``gram``: ``(sum g_ij^2, sum g_ii^2)`` over the Gram matrix when already computed
    (:func:`_spread_sums`).
    """
    n, p = matrix.shape
    if n > p:
        n, p = p, n
    if n < 2 or n * n * p > CORRELATION_FLOPS or not mean_square > 0:
        return None
    if gram is None:
        w = np.asarray(matrix, dtype=np.float64)
        product = w @ w.T if w.shape[0] == n else w.T @ w
        diagonal = np.diagonal(product)
        gram = (float(np.sum(product * product)), float(diagonal @ diagonal))
    statistic = (gram[0] - gram[1]) / 2.0 / mean_square**2
    pairs = n * (n - 1) / 2.0
    count = n * p
    mean = pairs * p * (1.0 - (kurtosis - 1.0) / count)
    variance = pairs * p * (2.0 * (p - 1) + (kurtosis - 1.0) ** 2)
    if not mean > 0 or not variance > 0:
        return None
    return _chi_square_two_sided(statistic / mean, 2.0 * mean * mean / variance)


def _gram_sums(matrices: np.ndarray) -> list[tuple[float, float]]:
    """:func:`correlation_p_value`'s ``(sum g_ij^2, sum g_ii^2)`` of the Gram matrix ``G`` of
    the shorter side of each of a stack of same-shape small matrices (``(k, n, p)``), float64:
    one matmul per matrix, the sum of ``G * G`` over its contiguous entries and the diagonal's
    dot, the same numbers as for each matrix alone (``tests/test_check_batches.py``)."""
    w = np.asarray(matrices, dtype=np.float64)
    n, p = w.shape[1:]
    gram = w @ w.transpose(0, 2, 1) if n <= p else w.transpose(0, 2, 1) @ w
    diagonal = np.diagonal(gram, axis1=1, axis2=2)
    totals = np.sum(gram * gram, axis=(1, 2)).tolist()
    diagonals = np.matmul(diagonal[:, None, :], diagonal[:, :, None]).reshape(-1).tolist()
    return list(zip(totals, diagonals, strict=True))


def trained_p_value(examined: Examined) -> float | None:
    """p-value of "a fresh i.i.d. initialisation": Bonferroni over the law, spectrum and spread
    tests that were run."""
    tests = [
        p
        for p in (
            examined.law_p,
            examined.spectral_p,
            examined.row_p,
            examined.column_p,
            examined.correlation_p,
        )
        if p is not None
    ]
    if not tests:
        return None
    return min(1.0, len(tests) * min(tests))


# --- one tensor ---------------------------------------------------------------------------


def _few_values(tensor: Tensor, values: np.ndarray, sample: np.ndarray, step: int) -> str | None:
    """The reason a tensor with at most :data:`FEW_VALUES` distinct values is not a draw, with
    ``constant`` blocks first (``"constant:..."``), else None. ``sample`` is sorted."""
    if sample.size == 0 or np.count_nonzero(np.diff(sample)) + 1 > FEW_VALUES:
        return None
    flat = np.asarray(values).reshape(-1)
    distinct = np.unique(flat) if step > 1 else np.unique(sample)
    if distinct.size > FEW_VALUES:
        return None
    for blocks in BLOCK_COUNTS:
        if flat.size % blocks:
            continue
        parts = flat.reshape(blocks, -1)
        if np.all(parts == parts[:, :1]):
            levels = [f"{float(v):g}" for v in parts[:, 0]]
            note = ""
            if blocks == 4 and levels == ["0", "1", "0", "0"]:
                note = "; zeros with ones on an LSTM's forget gate (Keras' unit_forget_bias)"
            return (
                f"constant:{blocks} constant blocks of {flat.size // blocks}: "
                f"{', '.join(levels)}{note}"
            )
    shown = ", ".join(f"{float(v):g}" for v in distinct[:FEW_VALUES])
    return (
        f"only {distinct.size} distinct values ({shown}): a mask, an index or a table, not a "
        "draw from a continuous law"
    )


_NO_DRAW = np.random.default_rng(0)
"""Handed to :func:`xavinit.core.spectrum.top_singular_value` where it draws nothing (a start
vector is given, or the side is short enough for an SVD), so that no tensor's own stream is
made for nothing (a generator costs 30 us; a file of 20,000 8 x 8 tensors)."""


class Fill(Protocol):
    """What fills a tensor's buffer as the first pass reaches it
    (:class:`xavinit.formats.base.Filler`): called with each range in order, then told the
    extremes that pass found by :meth:`settle`, which says whether it changed entries (float16
    infinities and NaNs, widened unmarked for speed, marked then)."""

    def __call__(self, first: int, stop: int) -> None: ...

    def settle(self, low: float, high: float) -> bool: ...


def examine(
    tensor: Tensor,
    array: np.ndarray,
    *,
    file: str,
    alpha: float,
    rng: np.random.Generator | Callable[[], np.random.Generator],
    ks_sample: int = KS_SAMPLE,
    expected: Sequence[Scheme] = (),
    rank: bool = True,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    allow_infinite: bool = False,
    fill: Fill | None = None,
    best_check: bool = True,
) -> Examined:
    """Measure one tensor and run every test on it (the verdict waits for :func:`decide`).

    ``rng`` draws the spectral test's start vector; given as a function, the generator is made
    only when a vector is drawn: a matrix with a side of at most
    :data:`xavinit.core.spectrum.EXACT_SIDE` gets its top singular value by an SVD and needs
    none, unless outliers send it to Lanczos (then from the stream's first draw, as always).
    ``rank=False`` checks only the ``expected`` schemes (``init --check -s``): no ranking, no
    spectrum. A failure of the arithmetic on this tensor makes it ``unknown`` with the reason;
    so do infinite entries with ``allow_infinite`` (a mask in a checkpoint). ``fill``, when
    given, fills ``array``'s buffer range by range as the first pass reaches it
    (:meth:`xavinit.formats.base.TensorSource.read_lazily`). ``best_check`` False leaves
    ``best`` None for an i.i.d. best candidate (``check`` shows the ranking rows only).
    :class:`Batch` gives the same result for many small tensors at once.

    Raises:
        XavinitError: a tensor that is not numeric, or holds NaN (or infinite values without
            ``allow_infinite``).
    """
    options = dict(
        file=file, alpha=alpha, rng=rng, ks_sample=ks_sample, expected=expected, rank=rank,
        tolerance=tolerance, allow_infinite=allow_infinite, fill=fill, best_check=best_check,
    )  # fmt: skip
    with np.errstate(over="ignore", invalid="ignore"):
        pending = _Pending(tensor, array, options)
        while pending.request is not None:
            pending.advance(*_answered(pending.request))
    if pending.error is not None:
        raise pending.error
    assert pending.result is not None
    return pending.result


# --- many small tensors at once -------------------------------------------------------------


@dataclass(frozen=True)
class ScanRequest:
    """A step's request: :func:`xavinit.core.matrixscan.scan_matrix` of a matrix, no start
    vector, answered by its :class:`~xavinit.core.matrixscan.MatrixScan`."""

    matrix: np.ndarray
    sample_size: int


@dataclass(frozen=True)
class TopRequest:
    """A step's request: the exact top singular value of a matrix with a short side
    (:func:`xavinit.core.spectrum.top_singular_value`'s SVD), answered by a
    :class:`~xavinit.core.spectrum.SpectralEstimate`."""

    matrix: np.ndarray


@dataclass(frozen=True)
class KSRequest:
    """A step's request: the KS tests of a sorted sample against each law's CDF parameters
    (:func:`_cdf_parameters_of`), answered by :func:`xavinit.core.stats.ks_sorted`'s list."""

    parameters: list[tuple[bool, float, float | None, float | None]]
    sample: np.ndarray


@dataclass(frozen=True)
class EdgeRequest:
    """A step's request: :func:`xavinit.core.spectrum.edge_p_value` of a top singular value."""

    top: float
    mean_square: float
    n: int
    p: int


@dataclass(frozen=True)
class SpreadRequest:
    """A step's request: the reductions of the spread and correlation tests of a small matrix
    (its sorted sample, rows' and columns' sums of squares, the matrix), answered by
    :class:`SpreadSums`."""

    sample: np.ndarray
    row_squares: np.ndarray
    col_squares: np.ndarray
    matrix: np.ndarray


@dataclass(frozen=True)
class SpreadSums:
    """The kurtosis of ``w^2`` (:func:`_square_kurtosis`), the sample variances of the rows' and
    columns' sums of squares (:func:`sample_variance`) and the Gram sums
    (:func:`correlation_p_value`)."""

    w2_kurtosis: float
    rows: float
    columns: float
    gram: tuple[float, float]


Request = ScanRequest | TopRequest | EdgeRequest | SpreadRequest | KSRequest
T = TypeVar("T")
Steps = Generator[Request, object, T]
"""A tensor's examination as steps: it yields what it asks to be computed, is sent the answer,
and returns its result (:func:`examine` answers on the spot, :class:`Batch` for many at once)."""


def _answer(request: Request) -> object:
    """One request answered alone: the per-tensor computation."""
    if isinstance(request, ScanRequest):
        return scan_matrix(request.matrix, request.sample_size)
    if isinstance(request, TopRequest):
        return top_singular_value(request.matrix, _NO_DRAW)
    if isinstance(request, EdgeRequest):
        return edge_p_value(request.top, request.mean_square, request.n, request.p)
    if isinstance(request, SpreadRequest):
        return _spread_sums([request])[0]
    return ks_sorted(_cdf_block(request.parameters, request.sample))


def _answered(request: Request) -> tuple[object, Exception | None]:
    """``(answer, None)``, or ``(None, error)`` when computing it raised (thrown into the
    steps where they asked, as if raised there)."""
    try:
        return _answer(request), None
    except Exception as error:  # the steps decide what their failure means
        return None, error


def _answer_many(requests: Sequence[Request]) -> list[tuple[object, Exception | None]]:
    """Every request answered, those of the same kind and size together: one pass over the
    stack of same-shape matrices for their scans (:func:`xavinit.core.matrixscan.scan_matrices`),
    one stacked SVD of
    the same-shape matrices (the same LAPACK call per matrix), one quadrature array for the
    spectral p-values, one CDF block and one pair of
    reductions for every KS test of samples of one size (elementwise arithmetic and row
    extremes: the same numbers as :func:`_answer`, bit for bit). A group whose joint
    computation fails is answered one request at a time, so only the failing tensor fails."""
    answers: list[tuple[object, Exception | None] | None] = [None] * len(requests)
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, request in enumerate(requests):
        if isinstance(request, ScanRequest):  # a batch's matrices fit one block of rows
            matrix = request.matrix  # (scan_matrices refuses others: then one by one)
            key: tuple[object, ...] = ("scan", matrix.shape, matrix.dtype.str, request.sample_size)
        elif isinstance(request, TopRequest):
            key = ("top", request.matrix.shape)
        elif isinstance(request, EdgeRequest):
            key = ("edge",)
        elif isinstance(request, SpreadRequest):
            key = ("spread", request.matrix.shape, request.sample.size, request.sample.dtype.str)
        else:
            key = ("ks", request.sample.size)
        groups.setdefault(key, []).append(index)
    for key, members in groups.items():
        if len(members) > 1:
            try:
                joint: Sequence[object]
                if key[0] == "scan":
                    scans = [cast(ScanRequest, requests[i]) for i in members]
                    joint = scan_matrices([r.matrix for r in scans], scans[0].sample_size)
                elif key[0] == "top":
                    joint = _tops([cast(TopRequest, requests[i]).matrix for i in members])
                elif key[0] == "spread":
                    joint = _spread_sums([cast(SpreadRequest, requests[i]) for i in members])
                elif key[0] == "edge":
                    edges = [cast(EdgeRequest, requests[i]) for i in members]
                    joint = edge_p_values([(e.top, e.mean_square, e.n, e.p) for e in edges])
                else:
                    joint = _ks_many([cast(KSRequest, requests[i]) for i in members])
            except FAILURES:  # the group is answered one request at a time below, so
                pass  # only a request that fails alone makes its tensor unknown
            else:
                for index, answer in zip(members, joint, strict=True):
                    answers[index] = (answer, None)
                continue
        for index in members:
            answers[index] = _answered(requests[index])
    return cast(list[tuple[object, Exception | None]], answers)


def _tops(matrices: Sequence[np.ndarray]) -> list[SpectralEstimate]:
    """:func:`xavinit.core.spectrum.top_singular_value`'s exact value of each same-shape matrix,
    ``max_i s_i`` of one stacked SVD (``np.linalg.norm(W, 2)`` is the same LAPACK call on each)."""
    stack = np.array(matrices, dtype=np.float64)
    tops = np.max(np.linalg.svd(stack, compute_uv=False), axis=-1).tolist()
    return [SpectralEstimate(top, 0, 0.0) for top in tops]


def _spread_sums(requests: Sequence[SpreadRequest]) -> list[SpreadSums]:
    """:class:`SpreadSums` of same-shape small matrices (samples of one size), each reduction
    along the contiguous rows of one stack (pairwise as each row alone) or one BLAS dot per
    matrix: :func:`_square_kurtosis`, :func:`sample_variance` and :func:`correlation_p_value`'s
    numbers, bit for bit."""
    squares = np.square(np.array([r.sample for r in requests]), dtype=np.float64)
    fourth = np.square(squares)
    n = squares.shape[1]
    s2 = squares.sum(axis=1).tolist()
    s4 = fourth.sum(axis=1).tolist()
    s6 = np.matmul(fourth[:, None, :], squares[:, :, None]).reshape(-1).tolist()
    s8 = np.matmul(fourth[:, None, :], fourth[:, :, None]).reshape(-1).tolist()
    rows = _sample_variances(np.array([r.row_squares for r in requests]))
    columns = _sample_variances(np.array([r.col_squares for r in requests]))
    grams = _gram_sums(np.array([r.matrix for r in requests]))
    return [
        SpreadSums(_kurtosis_from_sums(n, *sums), row, column, gram)
        for sums, row, column, gram in zip(
            zip(s2, s4, s6, s8, strict=True), rows, columns, grams, strict=True
        )
    ]


def _sample_variances(values: np.ndarray) -> list[float]:
    """:func:`sample_variance` of each row of ``values`` (``(k, n)``, n >= 2), its operations
    along the rows."""
    n = values.shape[1]
    mean = np.add.reduce(values, axis=1, keepdims=True)
    np.true_divide(mean, n, out=mean, casting="unsafe")
    deviations = values - mean
    np.multiply(deviations, deviations, out=deviations)
    return cast(list[float], (np.add.reduce(deviations, axis=1) / (n - 1)).tolist())


def _ks_many(requests: Sequence[KSRequest]) -> list[list[tuple[float, float]]]:
    """The KS tests of samples of one size, every law of every sample in one CDF block."""
    sizes = [len(request.parameters) for request in requests]
    points = np.empty((sum(sizes), requests[0].sample.size))
    first = 0
    for request, size in zip(requests, sizes, strict=True):
        points[first : first + size] = request.sample
        first += size
    tests = ks_sorted(_cdf_block([p for r in requests for p in r.parameters], points))
    out = []
    first = 0
    for size in sizes:
        out.append(tests[first : first + size])
        first += size
    return out


BATCH_ENTRIES = 4096
"""A tensor of at most this many entries (64 x 64) may be examined in a :class:`Batch`."""

BATCH_TENSORS = 64
"""A :class:`Batch` is finished at this many tensors... (256 8 x 8 tensors a batch were no
faster on a file of 20,000 and their temporaries, a few MiB, left the peak RSS 2 MiB higher;
64 leave it within 1 MiB of the per-tensor path's)"""

BATCH_TOTAL = 1 << 15
"""... or this many entries (the CDF block of a batch then takes about 3 MiB)."""


class Batch:
    """Small tensors examined together, each with :func:`examine`'s result.

    Each tensor's steps run on their own as far as they can when it is added; the scans, SVDs
    and KS tests they then ask for are answered for all of them at once by :meth:`finish`
    (:func:`_answer_many`), and each tensor's remaining Python runs as before. A refusal (NaN)
    is raised by :meth:`finish`, the first in the order the tensors were added, whichever
    step found it. A per-tensor run costs about 0.4 ms of numpy
    calls on an 8 x 8 matrix; most of that is spent once per batch here.

    Args:
        options: :func:`examine`'s keyword arguments but ``rng`` and ``fill``.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._pending: list[_Pending] = []
        self._entries = 0

    @staticmethod
    def takes(array: np.ndarray) -> bool:
        """Whether a tensor is small enough to be examined in a batch."""
        return int(array.size) <= BATCH_ENTRIES

    @property
    def full(self) -> bool:
        """Whether the batch should be finished now (bounded memory)."""
        return len(self._pending) >= BATCH_TENSORS or self._entries >= BATCH_TOTAL

    def add(
        self,
        tensor: Tensor,
        array: np.ndarray,
        rng: np.random.Generator | Callable[[], np.random.Generator],
    ) -> None:
        """Start examining a tensor (``array`` must stay valid until :meth:`finish`, which
        raises its refusal, if any)."""
        with np.errstate(over="ignore", invalid="ignore"):
            self._pending.append(_Pending(tensor, array, {**self._options, "rng": rng}))
        self._entries += int(array.size)

    def finish(self) -> list[Examined]:
        """The examined tensors in the order they were added; the batch is then empty."""
        pending, self._pending, self._entries = self._pending, [], 0
        with np.errstate(over="ignore", invalid="ignore"):
            waiting = [item for item in pending if item.request is not None]
            while waiting:
                answers = _answer_many([cast(Request, item.request) for item in waiting])
                for item, (answer, error) in zip(waiting, answers, strict=True):
                    item.advance(answer, error)
                waiting = [item for item in waiting if item.request is not None]
        for item in pending:
            if item.error is not None:
                raise item.error
        return [cast(Examined, item.result) for item in pending]


@functools.cache
def _examine_defaults() -> dict[str, Any]:
    """:func:`examine`'s keyword defaults (one declaration: its signature)."""
    parameters = inspect.signature(examine).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


class _Pending:
    """One tensor's examination under way: its open ``request`` (None once done) and then its
    ``result``; a failure of the arithmetic becomes the result ``unknown`` (see
    :func:`examine`), a refusal (NaN) its ``error``, for the caller to raise in its order."""

    def __init__(self, tensor: Tensor, array: np.ndarray, options: dict[str, Any]) -> None:
        """Start examining ``tensor`` with :func:`examine`'s keyword arguments ``options``
        (its defaults where missing); run its steps to their first request."""
        given = {**_examine_defaults(), **options}
        file, expected, fill = given["file"], given["expected"], given["fill"]
        self.tensor, self.file, self.expected = tensor, file, len(expected)
        self.request: Request | None = None
        self.result: Examined | None = None
        self.error: XavinitError | None = None
        label = f"{file}:{tensor.name}"
        if array.dtype.kind not in "fiu":
            raise XavinitError(f"{label}: dtype {array.dtype} is not a number xavinit checks")
        if fill is not None and (tensor.size == 0 or array.ndim == 0):
            fill(0, array.size)  # nothing to scan: the tensor is not judged
            given["fill"] = None
        if tensor.size == 0 or array.ndim == 0:
            why = "empty tensor" if tensor.size == 0 else "a scalar (0-d), not a weight matrix"
            self.result = Examined(tensor, file, "unknown", why, expected=[None] * len(expected),
                                   expected_notes=[why] * len(expected))  # fmt: skip
            return
        self._steps = _examine(tensor, array, label=label, **given)
        self.advance(None, None)

    def advance(self, answer: object, error: Exception | None) -> None:
        """Send the answer to the open request (or throw its error there); the first call
        starts the steps."""
        try:
            if error is not None:
                self.request = self._steps.throw(error)
            elif self.request is None:
                self.request = next(self._steps)
            else:
                self.request = self._steps.send(answer)
            return
        except StopIteration as stop:
            self.result = cast(Examined, stop.value)
            self.request = None
            return
        except XavinitError as failure:
            if "NaN" in str(failure):
                self.error, self.request = failure, None
                return
            why = str(failure)
        except FAILURES as failure:
            text = str(failure)
            why = f"{type(failure).__name__}: {text.splitlines()[0] if text else ''}"
        self.request = None
        self.result = Examined(
            self.tensor, self.file, "unknown", f"could not be examined ({why})",
            expected=[None] * self.expected, expected_notes=[why] * self.expected,
        )  # fmt: skip


def _scan(
    tensor: Tensor,
    values: np.ndarray,
    ks_sample: int,
    start: np.ndarray | None,
    fill: Fill | None,
) -> tuple[np.ndarray | None, MatrixScan]:
    """The one pass: a matrix scan for tensors with a matrix view, a flat scan for the rest
    (``fill`` fills the buffer ``values`` lives in, block by block or all at once)."""
    if values.ndim >= 2 and values.dtype.kind == "f":
        matrix = matrix_view(tensor, values)
        if matrix.ndim == 2 and (fill is None or np.shares_memory(matrix, values)):
            return matrix, scan_matrix(matrix, ks_sample, start, fill)
    if fill is not None:
        fill(0, values.size)
    moments, sample = moments_and_sample(values, ks_sample)
    count = moments.count
    step = max(1, math.ceil(count / ks_sample)) if ks_sample else 0
    empty = np.empty(0)
    return None, MatrixScan(moments, math.nan, empty, empty, sample, step)


def _float32_overflow(values: np.ndarray) -> bool:
    """Whether a float32 tensor is finite but its squares overflow float32 (|w| > 1.8e19)."""
    flat = values.reshape(-1)
    return bool(np.isfinite(flat).all()) and float(np.max(np.abs(flat))) > 1e19


def _examine(
    tensor: Tensor,
    array: np.ndarray,
    *,
    file: str,
    alpha: float,
    rng: np.random.Generator | Callable[[], np.random.Generator],
    ks_sample: int,
    expected: Sequence[Scheme],
    rank: bool,
    tolerance: Tolerance,
    label: str,
    allow_infinite: bool,
    fill: Fill | None,
    best_check: bool = True,
) -> Steps[Examined]:
    """:func:`examine`'s work as steps (:data:`Steps`): the exact SVD and the KS tests are
    yielded as requests."""
    values = array
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    shaped = matrix_view(tensor, values) if values.ndim >= 2 else None  # a copy if not contiguous
    matrix_shape = values.shape if shaped is None else shaped.shape
    spectral = (
        rank
        and values.dtype.kind == "f"
        and len(matrix_shape) == 2
        and min(matrix_shape) >= SPECTRUM_MIN_DIM
        and tensor.role not in ("bias", "norm")
    )
    made: list[np.random.Generator] = []

    def generator() -> np.random.Generator:
        if not made:
            made.append(rng if isinstance(rng, np.random.Generator) else rng())
        return made[0]

    exact = spectral and min(matrix_shape) <= EXACT_SIDE  # an SVD, no start vector (see above)
    start = (
        np.asarray(generator().standard_normal(matrix_shape[1])) if spectral and not exact else None
    )
    view = shaped if values.dtype.kind == "f" else None
    matrix: np.ndarray | None
    if view is not None and view.ndim == 2 and start is None and fill is None:
        matrix = view  # _scan's matrix scan, asked for, so that many are done at once
        found = cast(MatrixScan, (yield ScanRequest(view, ks_sample)))
    else:
        matrix, found = _scan(tensor, values, ks_sample, start, fill)
    if fill is not None and fill.settle(found.moments.minimum, found.moments.maximum):
        matrix, found = _scan(tensor, values, ks_sample, start, None)  # with inf and NaN marked
    moments = found.moments
    base = Examined(tensor, file, "test", "", count=moments.count)
    if not moments.finite and values.dtype == np.float32 and _float32_overflow(values):
        values = values.astype(np.float64)  # squares of entries beyond 1.8e19 (finfo.min masks)
        matrix, found = _scan(tensor, values, ks_sample, start, None)
        moments = found.moments
    if not moments.finite:
        flat = np.asarray(values).reshape(-1)
        infinite = int(np.count_nonzero(np.isinf(flat)))
        if np.isnan(flat).any() or (infinite and not allow_infinite):
            raise XavinitError(f"{label}: holds NaN or infinite values; weights must be finite")
        if infinite:
            why = f"{infinite} infinite values: a mask or a sentinel, not a drawn weight"
        else:  # finite entries whose squares overflow even float64
            peak = float(np.max(np.abs(flat)))
            why = f"entries up to {peak:.3g}, too large to square: no initialisation draws them"
        base.status, base.reason = "unknown", why
        base.expected = [None] * len(expected)
        base.expected_notes = [base.reason] * len(expected)
        return base

    def measured(found: MatrixScan) -> Measurement:
        """Observed moments and the expected-scheme checks of one (cleaned) scan."""
        moments = found.moments
        base.observed_var, base.observed_mean = moments.mean_square, moments.mean
        found.sample.sort()
        measurement = Measurement(moments, found.sample, True, STORED_EPS.get(tensor.dtype))
        base.expected, base.expected_notes = _expected_checks(
            tensor, values, measurement, expected, alpha, label, tolerance
        )
        return measurement

    early = ""
    if moments.minimum == moments.maximum:
        base.status, early = "constant", f"all {moments.count} entries are {moments.minimum:g}"
    elif array.dtype.kind in "iu":
        early = f"integer tensor ({array.dtype}): an index or a counter, not a weight"
    elif moments.count < MIN_ENTRIES:
        early = (
            f"only {moments.count} entries; at least {MIN_ENTRIES} are needed to tell an "
            "initialisation"
        )
    if early:
        measured(found)
        base.status = "constant" if base.status == "constant" else "unknown"
        base.reason = early
        return base
    outliers = find_outliers(matrix, found) if matrix is not None else None
    if outliers is not None and matrix is not None:
        found = exclude(matrix, found, outliers)
        moments = found.moments
        base.outliers = outliers.count
        sigma = math.sqrt(moments.mean_square)
        peak = float(np.max(np.abs(outliers.values)))
        base.outlier_peak = peak / sigma if sigma > 0 else math.inf
    measurement = measured(found)
    sample = measurement.sample
    if moments.minimum == moments.maximum:
        base.status = "constant"
        base.reason = f"all but {base.outliers} entries are {moments.minimum:g}"
        return base
    few = _few_values(tensor, values, sample, found.step)
    if few is not None:
        status, _, reason = few.partition(":") if few.startswith("constant:") else ("", "", few)
        base.status = "constant" if status else "unknown"
        base.reason = reason
        return base
    scale = math.sqrt(moments.mean_square)
    if not STD_RANGE[0] <= scale <= STD_RANGE[1]:
        base.status = "unknown"
        base.reason = (
            f"entries of scale {scale:.3g}, outside what any initialisation draws "
            f"({STD_RANGE[0]:g} to {STD_RANGE[1]:g})"
        )
        return base
    if not rank:
        base.status = "unranked"
        return base
    top = None
    if spectral and matrix is not None:
        if start is None and outliers is not None:  # Lanczos on the product without them
            start = np.asarray(generator().standard_normal(matrix_shape[1]))
        if exact and outliers is None:  # an SVD: asked for, so that many are done at once
            estimate = cast(SpectralEstimate, (yield TopRequest(matrix)))
        else:
            estimate = top_singular_value(
                matrix,
                generator() if start is None and not exact else _NO_DRAW,
                product=None if outliers is None else gram_products(matrix, outliers),
                start=start,
                first=found.gram if outliers is None else None,
            )
        top = estimate.value
        n, p = matrix.shape
        base.top_singular_ratio = top / (math.sqrt(moments.mean_square) * bai_yin_edge(n, p))
        base.spectral_p = cast(float, (yield EdgeRequest(top, moments.mean_square, n, p)))
        base.spectral_steps = estimate.steps
        cleaned = matrix
        if outliers is not None and n * p * min(n, p) <= CORRELATION_FLOPS:
            cleaned = np.array(matrix, dtype=np.float64)
            cleaned[outliers.rows, outliers.cols] = 0.0
        sums = None
        if n * p <= BATCH_ENTRIES:  # small: its reductions asked for, many done at once
            request = SpreadRequest(sample, found.row_squares, found.col_squares, cleaned)
            sums = cast(SpreadSums, (yield request))
        w2_kurtosis = _square_kurtosis(sample) if sums is None else sums.w2_kurtosis
        base.row_p = dispersion_p_value(
            found.row_squares, p, moments.mean_square, found.mean_fourth, w2_kurtosis,
            spread=None if sums is None else sums.rows,
        )  # fmt: skip
        base.column_p = dispersion_p_value(
            found.col_squares, n, moments.mean_square, found.mean_fourth, w2_kurtosis,
            spread=None if sums is None else sums.columns,
        )  # fmt: skip
        kurtosis = found.mean_fourth / moments.mean_square**2
        base.correlation_p = correlation_p_value(
            cleaned, moments.mean_square, kurtosis, None if sums is None else sums.gram
        )
    possible = orthogonal_possible(top, moments.mean_square, tuple(matrix_shape))
    rows, checks = yield from rank_candidates(
        tensor, values, measurement, alpha, tensor.name, orthogonal=possible, outliers=outliers,
        best_check=best_check,
    )  # fmt: skip
    base.candidates = rows
    base.best = checks[0] if checks else None
    base.law_p = law_p_value(rows) if rows else None
    if rows and not get_scheme(str(rows[0]["scheme"])).iid:
        # orthogonal: rows and columns are not independent
        base.row_p = base.column_p = base.correlation_p = None
    return base


def _expected_checks(
    tensor: Tensor,
    array: np.ndarray,
    found: Measurement,
    schemes: Sequence[Scheme],
    alpha: float,
    label: str,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> tuple[list[InitCheck | None], list[str]]:
    """One unjudged check per expected scheme (``init --check -s``, ``check --expect``), each
    judged on the interval nulls of ``tolerance``."""
    checks: list[InitCheck | None] = []
    notes: list[str] = []
    for scheme in schemes:
        if not scheme.fan_free and (tensor.fan_in is None or tensor.fan_out is None):
            checks.append(None)
            notes.append(f"a {tensor.role} tensor has no fans for {scheme.spec}")
            continue
        fan_in, fan_out = tensor.fan_in or 1, tensor.fan_out or 1
        if scheme.iid:
            check = assess_iid(
                scheme, fan_in, fan_out, [found], alpha, array.dtype, array=tensor.name,
                tolerance=tolerance,
            )  # fmt: skip
        elif array.ndim != 2:
            checks.append(None)
            notes.append(f"{scheme.spec} applies to 2-D matrices only")
            continue
        else:
            oriented = np.asarray(array if tensor.layout == "in-out" else array.T)
            check = assess_orthogonal(scheme, [oriented], array=tensor.name, name=label)
        checks.append(check)
        notes.append("")
    return checks, notes


# --- the run-wide decision ------------------------------------------------------------------


def decide(examined: Sequence[Examined], alpha: float, correction: str = "holm") -> list[bool]:
    """Which tensors are ``trained``: Holm (or Bonferroni) over every tested tensor's
    :func:`trained_p_value`, so the chance of calling any fresh tensor trained is at most
    ``alpha`` for the whole run."""
    owners = [i for i, e in enumerate(examined) if e.status == "test"]
    p_values = [trained_p_value(examined[i]) for i in owners]
    tested = [(i, p) for i, p in zip(owners, p_values, strict=True) if p is not None]
    rejected = CORRECTIONS[correction]([p for _, p in tested], alpha) if tested else []
    trained = [False] * len(examined)
    for (index, _), reject in zip(tested, rejected, strict=True):
        trained[index] = reject
    return trained


def judge_expected(
    examined: Sequence[Examined], alpha: float, correction: str = "holm"
) -> list[list[InitCheck | None]]:
    """Every expected-scheme check of the run judged as one family (init's :func:`judge`)."""
    flat = [c for e in examined for c in e.expected if c is not None]
    judged = iter(judge(flat, alpha, correction) if flat else [])
    return [[next(judged) if c is not None else None for c in e.expected] for e in examined]


def describe_p(value: float | None) -> str:
    """A p-value in a reason: ``p=0.41``, ``p=3e-12``, ``p<1e-300``."""
    if value is None:
        return "p=-"
    if value == 0:
        return "p<1e-300"
    return f"p={value:.2g}"


__all__ = ["Examined", "Moments", "decide", "examine", "judge_expected"]
