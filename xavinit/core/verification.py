"""Verify that weight matrices follow a scheme: variance, distribution, support, orthogonality.

For an i.i.d. scheme, one streaming pass gives the mean of squares ``m2`` and the extremes; a
z-test compares ``m2`` with the scheme's ``Var`` using the standard error
``Var sqrt((kurtosis - 1) / N)``; a Kolmogorov-Smirnov test compares a strided subsample (at most
``ks_sample`` values) with the scheme's own CDF; bounded laws must keep ``|w| <= bound``.
Orthogonal matrices are checked by ``W^T W = gain^2 I`` (or ``W W^T``) instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xavinit.core.schemes import OBSERVED_PIECE, Scheme, get_scheme
from xavinit.core.stats import (
    CORRECTIONS,
    Moments,
    Scanner,
    ks_interval_p,
    ks_test,
    moments,
    moments_and_sample,
    variance_interval_p,
    variance_test,
)
from xavinit.errors import XavinitError
from xavinit.limits import KS_DISTANCE, KS_SAMPLE, VARIANCE_TOLERANCE
from xavinit.results import InitCheck

GRAM_BLOCK = 512


@dataclass(frozen=True)
class Tolerance:
    """How far from its scheme a matrix may be and still count as the scheme.

    ``variance``: the largest relative deviation of Var[W] that does not matter (default 1%);
    ``ks_distance``: the largest sup-distance between the empirical and the scheme's CDF that
    does not matter (default 0.01, see :data:`xavinit.limits.KS_DISTANCE`). A check fails only when the data show, at the
    family-wise alpha, a deviation beyond these (interval nulls, see :mod:`xavinit.core.stats`).
    With huge N a point null would flag differences far too small to matter, and a fixed seed
    would turn its 1% false-alarm rate into a deterministic red CI.
    """

    variance: float = VARIANCE_TOLERANCE
    ks_distance: float = KS_DISTANCE


DEFAULT_TOLERANCE = Tolerance()

RANKING_CANDIDATES = (
    "standard",
    "normalized",
    "xavier-normal",
    "glorot-normal-truncated",
    "he-uniform",
    "he-normal",
    "he-normal-truncated",
    "lecun-uniform",
    "lecun-normal",
    "lecun-normal-truncated",
    "orthogonal",
)
"""The known schemes ``init --check`` ranks a matrix against when no scheme is given."""


@dataclass(frozen=True)
class Measurement:
    """What one pass over one matrix yields: its moments and a subsample for the KS test.

    ``sorted`` says the sample is in ascending order (sorted once for many KS tests); ``eps``
    is the machine epsilon of the type the values were stored in, when it is coarser than the
    array's own (bfloat16 widened to float32: 2^-7).
    """

    moments: Moments
    sample: np.ndarray
    sorted: bool = False
    eps: float | None = None


def measure(
    weights: np.ndarray,
    ks_sample: int = KS_SAMPLE,
    name: str = "weights",
    *,
    sort: bool = False,
    eps: float | None = None,
) -> Measurement:
    """Stream over a matrix once: moments (float64) and a strided KS subsample (sorted when
    ``sort``, for a tensor tested against many laws).

    Raises:
        XavinitError: when an entry is NaN or infinite.
    """
    return measurement_of(moments_and_sample(weights, ks_sample), name, sort=sort, eps=eps)


def measurement_of(
    scanned: tuple[Moments, np.ndarray],
    name: str = "weights",
    *,
    sort: bool = False,
    eps: float | None = None,
) -> Measurement:
    """A :class:`Measurement` from a scan's ``(moments, sample)`` (a :class:`Scanner` fed
    while the matrix was drawn, or :func:`moments_and_sample`).

    Raises:
        XavinitError: when an entry is NaN or infinite.
    """
    found, sample = scanned
    if not found.finite:
        raise XavinitError(f"{name}: holds NaN or infinite values; weights must be finite")
    if sort:
        sample.sort()
    return Measurement(found, sample, sort, eps)


def draw_and_measure(
    scheme: Scheme,
    out: np.ndarray,
    rng: np.random.Generator,
    ks_sample: int = KS_SAMPLE,
    *,
    widened: np.ndarray | None = None,
) -> Measurement:
    """Draw the i.i.d. ``scheme`` into ``out`` (``(fan_in, fan_out)``, C-contiguous) and
    measure it as it is drawn: :meth:`Scheme.sample` shows each piece to a
    :class:`xavinit.core.stats.Scanner` while it is in cache, so the matrix is not read again
    and the numbers are :func:`measure`'s exactly.

    Args:
        widened: a float64 array of at least ``min(stats.CHUNK, out.size)`` entries to widen each
            piece in, reused across draws (a new one of ``min(OBSERVED_PIECE, out.size)``
            otherwise: a piece in one call).

    Raises:
        XavinitError: when an entry is NaN or infinite.
    """
    if widened is None:
        widened = np.empty(min(OBSERVED_PIECE, max(out.size, 1)), dtype=np.float64)
    scanner = Scanner(out.size, out.dtype, ks_sample, buffer=widened)
    scheme.sample(out.shape, rng, out=out, observe=scanner.add)
    return measurement_of(scanner.result())


def float_tolerance(dtype: np.dtype) -> float:
    """Machine epsilon of a float type (float64's for integers): a bound's rounding slack."""
    return float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)


def assess_iid(
    scheme: Scheme,
    fan_in: int,
    fan_out: int,
    measurements: Sequence[Measurement],
    alpha: float,
    dtype: np.dtype,
    *,
    layer: int = 1,
    array: str | None = None,
    with_ks: bool = True,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> InitCheck:
    """Judge one or more draws (trials) of one matrix under an i.i.d. scheme.

    Trials are pooled: the mean of K mean-of-squares over N entries is one over K N entries. The
    KS p-value is the smallest over trials times K (Bonferroni within the matrix).
    ``passed`` here is the matrix's own verdict at ``alpha``; a run re-judges its whole family.
    """
    expected = scheme.variance(fan_in, fan_out)
    kurtosis = scheme.kurtosis
    assert kurtosis is not None
    count = sum(m.moments.count for m in measurements)
    trial_vars = [m.moments.mean_square for m in measurements]
    observed = float(np.mean(trial_vars))
    test = variance_test(observed, expected, count, kurtosis, alpha)
    ks_stat: float | None = None
    ks_p: float | None = None
    ks_far: float | None = None
    if with_ks:
        results = [
            ks_test(
                m.sample,
                lambda x: scheme.cdf(x, fan_in, fan_out),
                presorted=m.sorted,
                cells=lambda x: scheme.cdf_cells(x, fan_in, fan_out),
            )
            for m in measurements
        ]
        ks_stat = max(d for d, _ in results)
        ks_p = min(1.0, min(p for _, p in results) * len(results))
        ks_far = min(
            1.0,
            len(results)
            * min(
                ks_interval_p(d, m.sample.size, tolerance.ks_distance)
                for (d, _), m in zip(results, measurements, strict=True)
            ),
        )
    bound = scheme.bound(fan_in, fan_out)
    lo = min(m.moments.minimum for m in measurements)
    hi = max(m.moments.maximum for m in measurements)
    support_ok = None
    if bound is not None:
        eps = max((m.eps for m in measurements if m.eps), default=float_tolerance(dtype))
        support_ok = max(abs(lo), abs(hi)) <= bound * (1.0 + 4.0 * eps)
    mean = float(np.mean([m.moments.mean for m in measurements]))
    check = InitCheck(
        scheme=scheme.spec,
        layer=layer,
        fan_in=fan_in,
        fan_out=fan_out,
        distribution=scheme.distribution,
        expected_var=expected,
        observed_var=observed,
        rel_error=observed / expected - 1.0,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        p_value=test.p_value,
        passed=True,
        bound=bound,
        std=scheme.std(fan_in, fan_out),
        ks_statistic=ks_stat,
        ks_p_value=ks_p,
        support_ok=support_ok,
        observed_mean=mean,
        observed_min=lo,
        observed_max=hi,
        fan_in_var=fan_in * observed,
        fan_out_var=fan_out * observed,
        expected_fan_in_var=fan_in * expected,
        expected_fan_out_var=fan_out * expected,
        count=count,
        ks_sample_size=int(measurements[0].sample.size) if with_ks else 0,
        kurtosis=kurtosis,
        trials=len(measurements),
        observed_var_std=float(np.std(trial_vars, ddof=1)) if len(trial_vars) > 1 else None,
        trial_observed_vars=trial_vars if len(trial_vars) > 1 else [],
        array=array,
        tolerance=tolerance.variance,
        variance_interval_p=variance_interval_p(
            observed, expected, count, kurtosis, tolerance.variance
        ),
        ks_distance=tolerance.ks_distance if with_ks else None,
        ks_interval_p=ks_far,
    )
    return judge([check], alpha)[0]


def _gram_dtype(dtype: np.dtype) -> np.dtype:
    """The precision a Gram matrix is computed in: the weights' own, at least float32 (numpy's
    float16 products accumulate in float16, and integers have no rounding to speak of)."""
    if dtype.kind == "f" and dtype.itemsize >= 4:
        return dtype
    return np.dtype(np.float32) if dtype.kind == "f" else np.dtype(np.float64)


def orthogonality_tolerance(dtype: np.dtype, fan_in: int, fan_out: int) -> float:
    """How far ``W^T W / gain^2`` may be from I for an orthogonal matrix stored in ``dtype``.

    Two sources of error: storing each entry rounds it by at most eps/2 relative, which moves a
    Gram entry by at most eps (Cauchy-Schwarz over unit columns), whatever the size; summing
    ``n`` products in the Gram's precision adds about ``eps_gram sqrt n``. Tolerance:
    ``10 eps_storage + 100 eps_gram sqrt(max(fan_in, fan_out))``. For float16 weights this is
    about 0.01, so an all-zero matrix (error 1) is never orthogonal.
    """
    storage = float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0
    gram = float(np.finfo(_gram_dtype(dtype)).eps)
    return 10.0 * storage + 100.0 * gram * math.sqrt(max(fan_in, fan_out))


def orthogonality_error(weights: np.ndarray, gain: float) -> float:
    """max |G / gain^2 - I| for the Gram matrix G of the shorter side, computed in blocks.

    ``G = W^T W`` when ``fan_in >= fan_out`` (orthonormal columns), else ``W W^T``; only a
    ``GRAM_BLOCK x min(fan_in, fan_out)`` block is held at once.
    """
    tall = weights.shape[0] >= weights.shape[1]
    w = np.asarray(weights if tall else weights.T)
    w = w.astype(_gram_dtype(w.dtype), copy=False)
    columns = w.shape[1]
    worst = 0.0
    for start in range(0, columns, GRAM_BLOCK):
        stop = min(start + GRAM_BLOCK, columns)
        block = w[:, start:stop].T @ w
        block /= gain**2
        block[np.arange(stop - start), np.arange(start, stop)] -= 1.0
        worst = max(worst, float(np.max(np.abs(block))))
    return worst


def assess_orthogonal(
    scheme: Scheme,
    weights: Sequence[np.ndarray],
    *,
    layer: int = 1,
    array: str | None = None,
    name: str = "weights",
) -> InitCheck:
    """Check ``W^T W = gain^2 I`` for each draw, within :func:`orthogonality_tolerance`."""
    fan_in, fan_out = weights[0].shape
    found = [moments(w) for w in weights]
    if not all(m.finite for m in found):
        raise XavinitError(f"{name}: holds NaN or infinite values; weights must be finite")
    error = max(orthogonality_error(w, scheme.gain) for w in weights)
    tolerance = orthogonality_tolerance(weights[0].dtype, fan_in, fan_out)
    expected = scheme.variance(fan_in, fan_out)
    trial_vars = [m.mean_square for m in found]
    observed = float(np.mean(trial_vars))
    return InitCheck(
        scheme=scheme.spec,
        layer=layer,
        fan_in=fan_in,
        fan_out=fan_out,
        distribution="orthogonal",
        expected_var=expected,
        observed_var=observed,
        rel_error=observed / expected - 1.0,
        ci_low=None,
        ci_high=None,
        p_value=None,
        passed=error <= tolerance,
        observed_mean=float(np.mean([m.mean for m in found])),
        observed_min=min(m.minimum for m in found),
        observed_max=max(m.maximum for m in found),
        fan_in_var=fan_in * observed,
        fan_out_var=fan_out * observed,
        expected_fan_in_var=fan_in * expected,
        expected_fan_out_var=fan_out * expected,
        count=sum(m.count for m in found),
        check="orthogonality",
        orthogonality_error=error,
        orthogonality_tolerance=tolerance,
        trials=len(weights),
        observed_var_std=float(np.std(trial_vars, ddof=1)) if len(trial_vars) > 1 else None,
        trial_observed_vars=trial_vars if len(trial_vars) > 1 else [],
        array=array,
        failures=[] if error <= tolerance else ["orthogonality"],
    )


def judge(checks: Sequence[InitCheck], alpha: float, correction: str = "holm") -> list[InitCheck]:
    """Re-judge a family of checks so the family-wise false-alarm rate is at most ``alpha``.

    The interval-null p-values (a deviation beyond the tolerance; the point-null ones for checks
    made without a tolerance) of all checks form one family (Holm by default, valid under any
    dependence);
    a check passes when none of its hypotheses is rejected and its support and orthogonality
    hold. ``failures`` names what failed: ``variance``, ``distribution``, ``support``,
    ``orthogonality``.
    """
    owners: list[tuple[int, str]] = []
    p_values: list[float] = []
    for index, check in enumerate(checks):
        variance = check.p_value if check.variance_interval_p is None else check.variance_interval_p
        shape = check.ks_p_value if check.ks_interval_p is None else check.ks_interval_p
        for label, p in (("variance", variance), ("distribution", shape)):
            if p is not None:
                owners.append((index, label))
                p_values.append(p)
    rejected = CORRECTIONS[correction](p_values, alpha) if p_values else []
    failures: list[list[str]] = [[] for _ in checks]
    for (index, label), reject in zip(owners, rejected, strict=True):
        if reject:
            failures[index].append(label)
    judged = []
    for check, failed in zip(checks, failures, strict=True):
        if check.support_ok is False:
            failed.append("support")
        error, tolerance = check.orthogonality_error, check.orthogonality_tolerance
        if error is not None and tolerance is not None and error > tolerance:
            failed.append("orthogonality")
        judged.append(dataclasses.replace(check, passed=not failed, failures=failed))
    return judged


def verify(
    weights: np.ndarray,
    scheme: Scheme | str,
    alpha: float = 0.01,
    *,
    layout: str = "in-out",
    ks_sample: int = KS_SAMPLE,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> InitCheck:
    """Verify one matrix against a scheme; the fields are those of ``init``'s result.

    Args:
        weights: a 2-D array, ``(fan_in, fan_out)`` for ``layout="in-out"`` or
            ``(fan_out, fan_in)`` for ``"out-in"`` (PyTorch).
        scheme: a :class:`Scheme` or a spec string.
        alpha: the false-alarm rate of the check as a whole (Holm over its tests).
        ks_sample: at most this many entries enter the KS test.
        tolerance: the deviations that do not matter (:class:`Tolerance`).
    """
    scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
    weights = np.asarray(weights) if not isinstance(weights, np.ndarray) else weights
    if weights.ndim != 2 or weights.size == 0:
        raise XavinitError(f"weights must be a non-empty 2-D matrix, got shape {weights.shape}")
    layout = str(layout).strip().lower().replace("_", "-")
    if layout not in ("in-out", "out-in"):
        raise XavinitError(f"layout must be 'in-out' or 'out-in', got {layout!r}")
    if not 0.0 < alpha < 1.0:
        raise XavinitError(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}")
    if ks_sample < 5:
        raise XavinitError(f"ks_sample must be at least 5, got {ks_sample!r}")
    fan_in, fan_out = weights.shape if layout == "in-out" else weights.shape[::-1]
    if not scheme.iid:
        oriented = weights if layout == "in-out" else weights.T
        return judge([assess_orthogonal(scheme, [oriented])], alpha)[0]
    found = measure(weights, ks_sample)
    return assess_iid(scheme, fan_in, fan_out, [found], alpha, weights.dtype, tolerance=tolerance)
