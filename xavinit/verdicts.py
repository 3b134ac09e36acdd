"""Per-tensor verdicts: ``constant``, ``init`` (which scheme), ``trained`` or ``unknown``.

For each tensor (its role and fans from :mod:`xavinit.roles`):

1. ``unknown`` when it cannot be told: fewer than :data:`MIN_ENTRIES` entries, or integers (an
   index or a counter, not a weight); ``constant`` when every entry is equal (zeros, ones).
2. The candidate laws are ranked (:func:`rank_candidates`): every fan-based scheme of
   ``xavinit schemes`` with the tensor's fans (a bias: ``standard`` with its weight's
   ``fan_in``, PyTorch's default bias), plus the fan-free laws large models use with their
   scale fitted (:func:`fitted_schemes`). A candidate's score is ``min(p_variance, p_KS)``
   (init's ranking, :func:`xavinit.checks.assess_iid`); a fitted candidate's is its KS p-value
   alone, since its variance was fitted.
3. "Still a fresh initialisation" is one hypothesis per tensor with two tests
   (:func:`trained_p_value`): the law (the best candidate's p-value, Bonferroni over its two
   tests) and the spectrum (the top singular value against the Bai-Yin edge,
   :func:`xavinit.spectrum.edge_p_value`). Their Bonferroni combination enters one family over
   all tensors of the run (Holm at ``alpha``, :func:`decide`): rejected tensors are ``trained``,
   the others ``init`` with the best candidate.

Each step is its own function, so a change of the statistical rule (say, an interval null
with a tolerance for the variance test) changes one place: :func:`xavinit.checks.assess_iid`
for the variance test, :func:`law_p_value` and :func:`trained_p_value` for the decision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from xavinit.checks import (
    DEFAULT_TOLERANCE,
    RANKING_CANDIDATES,
    Measurement,
    Tolerance,
    assess_iid,
    assess_orthogonal,
    judge,
    measure,
)
from xavinit.errors import XavinitError
from xavinit.limits import KS_SAMPLE
from xavinit.results import InitCheck
from xavinit.roles import Tensor
from xavinit.schemes import (
    PRESETS,
    Scheme,
    get_scheme,
    truncated_mass,
    truncated_variance_factor,
)
from xavinit.spectrum import bai_yin_edge, edge_p_value, top_singular_value
from xavinit.stats import CORRECTIONS

MIN_ENTRIES = 32
"""Fewer entries cannot tell one law from another (a KS test of 32 values resolves about 0.2
in CDF): such tensors are ``unknown``."""

SPECTRUM_MIN_DIM = 8
"""The spectral test needs both matrix sides at least this long (Tracy-Widom's approximation,
checked by simulation down to 8 x 8 in ``docs/theory.md``)."""

TRUNCATION_EVIDENCE = 1e-3
"""A truncated normal is fitted only when a plain normal would stay inside its bounds with
less than this probability."""

GRAM_LIMIT = 4e11
"""Orthogonal is not a candidate when ``max(fan) * min(fan)^2`` exceeds this (minutes of work)."""

VERDICTS = ("constant", "init", "trained", "unknown")

STORED_EPS = {"bfloat16": 2.0**-7, "float16": 2.0**-10}
"""Machine epsilon of the half types, which are widened to float32 before they are measured:
the support of a bounded law is checked to the rounding of the type the file stored."""


@dataclass
class Examined:
    """What one pass over one tensor found, before the run-wide decision.

    ``candidates``: ranking rows, best first; ``best``: the best candidate's full check;
    ``law_p``/``spectral_p``: the two tests of "a fresh i.i.d. draw" (None when not run);
    ``expected``: one unjudged check per expected scheme (or None with the reason in
    ``expected_notes`` when the scheme cannot apply to this tensor).
    """

    tensor: Tensor
    file: str
    status: str
    reason: str
    count: int = 0
    observed_var: float | None = None
    observed_mean: float | None = None
    candidates: list[dict[str, object]] = field(default_factory=list)
    best: InitCheck | None = None
    law_p: float | None = None
    spectral_p: float | None = None
    top_singular_ratio: float | None = None
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
    candidates: tuple[str, ...] = RANKING_CANDIDATES
    if (
        not orthogonal
        or len(tensor.shape) != 2
        or max(tensor.fan_in, tensor.fan_out) * min(tensor.fan_in, tensor.fan_out) ** 2 > GRAM_LIMIT
    ):
        candidates = tuple(c for c in candidates if c != "orthogonal")
    return candidates


def _spec(name: str, **values: float) -> str:
    """``name:key=value,...`` with 5 significant digits; bounds (``a``, ``b``) rounded away from
    zero so that the largest entry stays inside them."""

    def text(key: str, value: float) -> str:
        if key in ("a", "b") and value != 0:
            digits = 4 - math.floor(math.log10(abs(value)))
            value = math.copysign(math.ceil(abs(value) * 10**digits) / 10**digits, value)
        return f"{value:.5g}"

    return name + ":" + ",".join(f"{k}={text(k, v)}" for k, v in values.items())


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
    """
    moments = measurement.moments
    m2, count = moments.mean_square, moments.count
    peak = max(abs(moments.minimum), abs(moments.maximum))
    if m2 <= 0 or peak <= 0:
        return []
    edge = peak * (count + 1) / count
    specs = [
        _spec("normal", std=math.sqrt(m2)),
        _spec("uniform", a=edge),
        _spec("truncated-normal", std=math.sqrt(m2 / truncated_variance_factor(2.0))),
    ]
    if m2 < edge * edge / 3.0:  # a truncated normal with this bound can have this variance
        lo, hi = 1e-12 * edge, 1e6 * edge
        for _ in range(200):
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
            specs.append(_spec("trunc-normal", std=std, a=-edge, b=edge))
    return [get_scheme(spec) for spec in specs]


def _row(scheme: Scheme, check: InitCheck, score: float, alpha: float) -> dict[str, object]:
    return {
        "scheme": scheme.spec,
        "score": score,
        "p_value": check.p_value,
        "ks_p_value": check.ks_p_value,
        "expected_var": check.expected_var,
        "rel_error": check.rel_error,
        "explains": score > alpha,
        "known_as": PRESETS[scheme.name].known_as,
    }


def matrix_view(tensor: Tensor, array: np.ndarray) -> np.ndarray:
    """The tensor as a 2-D matrix: itself, or a conv kernel flattened to (out, in rf) or
    (rf in, out) (a view for contiguous data)."""
    if array.ndim == 2:
        return array
    if tensor.layout == "out-in":
        return array.reshape(array.shape[0], -1)
    return array.reshape(-1, array.shape[-1])


def orthogonal_possible(top: float | None, mean_square: float, shape: tuple[int, ...]) -> bool:
    """Whether a matrix can be orthogonal, from its top singular value (when measured).

    ``W^T W = g^2 I`` gives every singular value ``g`` and ``||W||_F^2 = g^2 min(n, p)``, so
    ``s_max^2 = m2 max(n, p)``; the power estimate never exceeds ``s_max``, so a larger estimate
    (an i.i.d. matrix has ``(sqrt n + sqrt p)^2 m2``) rules orthogonality out without the
    Gram matrix.
    """
    if top is None or len(shape) != 2:
        return True
    return top * top <= mean_square * max(shape) * (1.0 + 1e-3)


def rank_candidates(
    tensor: Tensor,
    array: np.ndarray,
    measurement: Measurement,
    alpha: float,
    array_name: str,
    *,
    orthogonal: bool = True,
) -> tuple[list[dict[str, object]], list[InitCheck]]:
    """Rank every candidate law for one tensor, best first.

    Order: fan-based candidates that explain the tensor (score > ``alpha``) first, by score;
    then every other candidate by score; ties by ``|log(observed / expected)|``, then by list
    order (on a square matrix ``normalized`` and ``lecun-uniform`` are the same law: the first
    wins). A fan-based scheme whose variance is decisively off (p < 1e-12) skips its KS test.

    Returns:
        the candidate rows and their checks, in the same order.
    """
    fan_in = tensor.fan_in or 1
    fan_out = tensor.fan_out or 1
    dtype = array.dtype
    entries: list[tuple[tuple[float, ...], dict[str, object], InitCheck]] = []
    schemes = [(get_scheme(spec), False) for spec in fan_based_candidates(tensor, orthogonal)]
    schemes += [(scheme, True) for scheme in fitted_schemes(measurement)]
    for order, (scheme, fitted) in enumerate(schemes):
        if scheme.iid:
            coarse = assess_iid(scheme, fan_in, fan_out, [measurement], alpha, dtype, with_ks=False)
            decisive = not fitted and coarse.p_value is not None and coarse.p_value < 1e-12
            check = (
                coarse
                if decisive
                else assess_iid(scheme, fan_in, fan_out, [measurement], alpha, dtype)
            )
            if fitted:
                score = check.ks_p_value if check.ks_p_value is not None else 0.0
            else:
                score = min(p for p in (check.p_value, check.ks_p_value) if p is not None)
            if check.support_ok is False:
                score = 0.0
        else:
            oriented = array if tensor.layout == "in-out" else array.T
            check = assess_orthogonal(scheme, [np.asarray(oriented)], array=array_name)
            score = 1.0 if check.passed else 0.0
        check = dataclasses.replace(check, array=array_name, passed=score > alpha)
        row = _row(scheme, check, score, alpha)
        preferred = 0.0 if (not fitted and score > alpha) else 1.0
        closeness = abs(math.log1p(check.rel_error)) if check.rel_error > -1 else math.inf
        entries.append(((preferred, -score, closeness, order), row, check))
    entries.sort(key=lambda entry: entry[0])
    return [row for _, row, _ in entries], [check for _, _, check in entries]


def runner_up(rows: Sequence[dict[str, object]]) -> str | None:
    """The second explanation: the next fan-based candidate after a fan-based best (a fitted
    copy of the same law says nothing new), else the next candidate."""
    if len(rows) < 2:
        return None
    best = get_scheme(str(rows[0]["scheme"]))
    for row in rows[1:]:
        if best.fan_free or not get_scheme(str(row["scheme"])).fan_free:
            return str(row["scheme"])
    return None


# --- the two tests of "a fresh i.i.d. draw" ------------------------------------------------


def law_p_value(rows: Sequence[dict[str, object]]) -> float:
    """p-value of "the entries follow one of the candidate laws": the largest candidate p-value
    (a union of nulls is rejected only when every member is), each candidate's two tests
    combined by Bonferroni (fitted candidates have only their KS test)."""
    best = 0.0
    for row in rows:
        score = float(row["score"])  # type: ignore[arg-type]
        two_tests = row["p_value"] is not None and row["ks_p_value"] is not None
        fitted = get_scheme(str(row["scheme"])).fan_free
        best = max(best, min(1.0, score * (2.0 if two_tests and not fitted else 1.0)))
    return best


def spectral_test(
    tensor: Tensor, array: np.ndarray, mean_square: float, rng: np.random.Generator
) -> tuple[float | None, float | None, float | None]:
    """``(top singular value, its ratio to the edge, p-value)`` for a matrix (or a flattened
    conv kernel), or Nones when a side is shorter than :data:`SPECTRUM_MIN_DIM`.

    The edge is ``sqrt(m2) (sqrt(n) + sqrt(p))`` with ``m2`` the tensor's mean of squares.
    """
    if array.ndim < 2 or tensor.role in ("bias", "norm"):
        return None, None, None
    matrix = matrix_view(tensor, array)
    n, p = matrix.shape
    if min(n, p) < SPECTRUM_MIN_DIM or mean_square <= 0:
        return None, None, None
    top = top_singular_value(matrix, rng)
    ratio = top / (math.sqrt(mean_square) * bai_yin_edge(n, p))
    return top, ratio, edge_p_value(top, mean_square, n, p)


def trained_p_value(examined: Examined) -> float | None:
    """p-value of "a fresh i.i.d. initialisation": Bonferroni over the law and spectrum tests."""
    tests = [p for p in (examined.law_p, examined.spectral_p) if p is not None]
    if not tests:
        return None
    return min(1.0, len(tests) * min(tests))


# --- one tensor ---------------------------------------------------------------------------


def examine(
    tensor: Tensor,
    array: np.ndarray,
    *,
    file: str,
    alpha: float,
    rng: np.random.Generator,
    ks_sample: int = KS_SAMPLE,
    expected: Sequence[Scheme] = (),
    rank: bool = True,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Examined:
    """Measure one tensor and run every test on it (the verdict waits for :func:`decide`).

    ``rank=False`` checks only the ``expected`` schemes (``init --check -s``): no ranking, no
    spectrum.

    Raises:
        XavinitError: NaN or infinite entries.
    """
    label = f"{file}:{tensor.name}"
    if array.dtype.kind not in "fiu":
        raise XavinitError(f"{label}: dtype {array.dtype} is not a number xavinit checks")
    if tensor.size == 0:
        return Examined(tensor, file, "unknown", "empty tensor", expected=[None] * len(expected),
                        expected_notes=["empty tensor"] * len(expected))  # fmt: skip
    values = array
    if values.dtype == np.float16:
        values = values.astype(np.float32)
    stored_eps = STORED_EPS.get(tensor.dtype)
    found = measure(values, ks_sample, name=label, sort=True, eps=stored_eps)
    moments = found.moments
    base = Examined(
        tensor, file, "test", "", count=moments.count, observed_var=moments.mean_square,
        observed_mean=moments.mean,
    )  # fmt: skip
    base.expected, base.expected_notes = _expected_checks(
        tensor, values, found, expected, alpha, label, tolerance
    )
    if moments.minimum == moments.maximum:
        base.status = "constant"
        base.reason = f"all {moments.count} entries are {moments.minimum:g}"
        return base
    if array.dtype.kind in "iu":
        base.status = "unknown"
        base.reason = f"integer tensor ({array.dtype}): an index or a counter, not a weight"
        return base
    if moments.count < MIN_ENTRIES:
        base.status = "unknown"
        base.reason = (
            f"only {moments.count} entries; at least {MIN_ENTRIES} are needed to tell an "
            "initialisation"
        )
        return base
    if not rank:
        base.status = "unranked"
        return base
    top, base.top_singular_ratio, base.spectral_p = spectral_test(
        tensor, values, moments.mean_square, rng
    )
    possible = orthogonal_possible(top, moments.mean_square, tuple(values.shape))
    rows, checks = rank_candidates(tensor, values, found, alpha, tensor.name, orthogonal=possible)
    base.candidates = rows
    base.best = checks[0] if checks else None
    base.law_p = law_p_value(rows) if rows else None
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
