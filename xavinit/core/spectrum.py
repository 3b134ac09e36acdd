"""The top of a weight matrix's spectrum against the edge an i.i.d. initialisation cannot pass.

For an ``n x p`` matrix of i.i.d. entries with mean 0 and variance ``sigma^2`` (and a finite
fourth moment), the largest singular value converges to the Bai-Yin edge
``sigma (sqrt(n) + sqrt(p))`` (Bai and Yin 1993; Marchenko and Pastur 1967), and the largest
eigenvalue ``l`` of ``W^T W`` fluctuates around it on the Tracy-Widom scale (Johnstone 2001,
with Ma's 2012 half-integer centring, accurate to O(n^-2/3)):

    (l / sigma^2 - mu) / s  ->  TW1,     mu = (a + b)^2,  s = (a + b) (1/a + 1/b)^(1/3),
    a = sqrt(n - 1/2),  b = sqrt(p - 1/2).

Training adds low-rank structure whose singular values leave the bulk (Martin and Mahoney
2021), so an observed top singular value far beyond the edge rejects "a fresh i.i.d. draw".
``sigma^2`` is estimated by the mean of squares ``m2`` of all ``N = n p`` entries, whose relative
standard error ``sqrt((k - 1) / N)`` (kurtosis ``k <= 3`` for every candidate law) enters the
p-value as a normal term beside the Tracy-Widom one.

The top singular value comes from a few Lanczos steps on ``W^T W`` (one read of the matrix
each, never a full SVD): the estimate approaches the top singular value from below, so it can
only make the test more conservative, and an outlier beyond the edge is found within the
five steps it takes (``docs/check.md`` has the measured power).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xavinit.core.matrixscan import gram_products

TW1_LOG_SURVIVAL = (
    (-6.00, -0.0000030), (-5.75, -0.0000101), (-5.50, -0.0000331), (-5.25, -0.0001000),
    (-5.00, -0.0002781), (-4.75, -0.0007125), (-4.50, -0.0016876), (-4.25, -0.0037092),
    (-4.00, -0.0075965), (-3.75, -0.0145597), (-3.50, -0.0262353), (-3.25, -0.0446542),
    (-3.00, -0.0721408), (-2.75, -0.1111594), (-2.50, -0.1641411), (-2.25, -0.2333261),
    (-2.00, -0.3206464), (-1.75, -0.4276578), (-1.50, -0.5555193), (-1.25, -0.7050093),
    (-1.00, -0.8765651), (-0.75, -1.0703352), (-0.50, -1.2862357), (-0.25, -1.5240033),
    (0.00, -1.7832442), (0.25, -2.0634745), (0.50, -2.3641540), (0.75, -2.6847122),
    (1.00, -3.0245688), (1.25, -3.3831478), (1.50, -3.7598879), (1.75, -4.1542489),
    (2.00, -4.5657160), (2.25, -4.9938012), (2.50, -5.4380445), (2.75, -5.8980128),
    (3.00, -6.3732993), (3.25, -6.8635216), (3.50, -7.3683207), (3.75, -7.8873590),
    (4.00, -8.4203184), (4.25, -8.9668993), (4.50, -9.5268189), (4.75, -10.0998096),
    (5.00, -10.6856182), (5.25, -11.2840044), (5.50, -11.8947403), (5.75, -12.5176087),
    (6.00, -13.1524030), (6.25, -13.7989262), (6.50, -14.4569901), (6.75, -15.1264146),
    (7.00, -15.8070276), (7.25, -16.4986641), (7.50, -17.2011657), (7.75, -17.9143805),
    (8.00, -18.6381622), (8.25, -19.3723705), (8.50, -20.1168700), (8.75, -20.8715299),
    (9.00, -21.6362247), (9.25, -22.4108339), (9.50, -23.1952388), (9.75, -23.9893256),
    (10.00, -24.7929892), (10.25, -25.6061316), (10.50, -26.4285815), (10.75, -27.2604104),
    (11.00, -28.1014689), (11.25, -28.9514954), (11.50, -29.8092427), (11.75, -30.6800166),
    (12.00, -31.5494148),
)  # fmt: skip
"""``(s, ln P(TW1 > s))``: the GOE Tracy-Widom law's survival, from the Fredholm determinant
``F1(s) = det(I - K_s)``, ``K_s(x, y) = Ai((x + y) / 2) / 2`` on ``(s, inf)`` (Ferrari and Spohn
2005), by Gauss-Legendre quadrature with 80 nodes on ``(s, s + 16)`` (Bornemann 2010); it gives
the known quantiles 0.95 at 0.98 and 0.99 at 2.02."""

_GRID = np.array([s for s, _ in TW1_LOG_SURVIVAL])
_LOG_SURVIVAL = np.array([v for _, v in TW1_LOG_SURVIVAL])


def _tail_log_survival(s: float) -> float:
    """ln P(TW1 > s) beyond the table: ``-(2/3) s^(3/2) - (3/4) ln s + c``, c matched at 12."""
    last = TW1_LOG_SURVIVAL[-1][0]

    def asymptote(x: float) -> float:
        return -(2.0 / 3.0) * x**1.5 - 0.75 * math.log(x)

    return asymptote(s) + (TW1_LOG_SURVIVAL[-1][1] - asymptote(last))


def tw1_survival(s: float) -> float:
    """P(TW1 > s), interpolated in log space (1 below -6, the asymptotic tail beyond 12).

    Linear interpolation of ``ln S`` on steps of 0.25 errs by at most ``h^2 / 8 max|(ln S)''|``,
    about 0.008 ln-units (0.8% of S) where ``(ln S)''`` peaks near -1 at ``s = 2``.
    """
    if s <= _GRID[0]:
        return 1.0
    if s >= _GRID[-1]:
        return math.exp(_tail_log_survival(s))
    return math.exp(float(np.interp(s, _GRID, _LOG_SURVIVAL)))


def bai_yin_edge(n: int, p: int) -> float:
    """``sqrt(n) + sqrt(p)``: the top singular value of an ``n x p`` i.i.d. matrix of unit
    variance, to leading order."""
    return math.sqrt(n) + math.sqrt(p)


_HERMITE = np.polynomial.hermite_e.hermegauss(24)


def edge_p_value(top: float, mean_square: float, n: int, p: int, kurtosis: float = 3.0) -> float:
    """P(top singular value >= ``top``) for a fresh ``n x p`` i.i.d. matrix with ``m2`` observed.

    The statistic ``T = (top^2 / m2 - mu) / s`` is TW1 plus the error of ``m2``, a normal term of
    standard deviation ``c = mu sqrt((k - 1) / N) / s``; ``P(TW1 + c Z > T)`` is integrated over
    ``Z`` by 24-point Gauss-Hermite quadrature.
    """
    return edge_p_values([(top, mean_square, n, p)], kurtosis)[0]


def edge_p_values(
    cases: Sequence[tuple[float, float, int, int]], kurtosis: float = 3.0
) -> list[float]:
    """:func:`edge_p_value` of each ``(top, mean_square, n, p)``, the quadratures of all of
    them in one array (entry by entry the same arithmetic: the same numbers, bit for bit)."""
    out: list[float] = [1.0] * len(cases)
    rows: list[int] = []
    statistics: list[float] = []
    spreads: list[float] = []
    for index, (top, mean_square, n, p) in enumerate(cases):
        if mean_square <= 0 or min(n, p) < 1:
            continue
        a = math.sqrt(max(n - 0.5, 0.5))
        b = math.sqrt(max(p - 0.5, 0.5))
        mu = (a + b) ** 2
        scale = (a + b) * (1.0 / a + 1.0 / b) ** (1.0 / 3.0)
        rows.append(index)
        statistics.append((top * top / mean_square - mu) / scale)
        spreads.append(mu * math.sqrt((kurtosis - 1.0) / (n * p)) / scale)
    if not rows:
        return out
    nodes, weights = _HERMITE
    points = np.array(statistics)[:, None] - np.array(spreads)[:, None] * nodes
    root = math.sqrt(2.0 * math.pi)
    for index, terms in zip(rows, (weights * _tw1_survivals(points)).tolist(), strict=True):
        out[index] = min(1.0, max(0.0, sum(terms) / root))
    return out


def _tw1_survivals(s: np.ndarray) -> np.ndarray:
    """:func:`tw1_survival` of each entry, the same numbers (one interpolation call)."""
    out = np.ones_like(s)
    inside = (s > _GRID[0]) & (s < _GRID[-1])
    logs = np.interp(s[inside], _GRID, _LOG_SURVIVAL).tolist()
    out[inside] = [math.exp(v) for v in logs]
    tail = s >= _GRID[-1]
    out[tail] = [math.exp(_tail_log_survival(v)) for v in s[tail].tolist()]
    return out


LANCZOS_MIN_STEPS = 5
"""Lanczos steps always taken: an outlier singular value beyond the edge (a rank-1 update of
1.0x the edge stands 1.25-1.35x out) is found by then (measured in ``bench/calibrate_check.py``:
at least 98 of 100 such updates at 1000 x 1000, every one at 4096 x 1024 and 50257 x 768)."""

LANCZOS_MAX_STEPS = 5
"""At most this many steps (one read of the matrix each): inside the bulk the estimate is then
within 2-5% of the top singular value, which only makes the test conservative; a sixth step
(the estimate 1% closer) cost a sixth more reads and found no more updates at 1.0x the edge."""

LANCZOS_TOLERANCE = 1e-3
"""Stop once a step raises the estimate of sigma_1 by less than this, relatively."""


EXACT_SIDE = 64
"""A matrix with a side this short gets its exact top singular value (an SVD of a few
thousand entries costs less than the Lanczos steps' Python)."""


@dataclass(frozen=True)
class SpectralEstimate:
    """The Lanczos estimate of the largest singular value: a lower bound of it, within 1e-3 of
    it for an outlier beyond the bulk and about 2-5% below it inside the bulk (``docs/check.md``).

    ``steps`` products with ``W^T W`` were taken; ``change`` is the last step's relative rise.
    """

    value: float
    steps: int
    change: float


def top_singular_value(
    matrix: np.ndarray,
    rng: np.random.Generator,
    *,
    product: Callable[[np.ndarray], np.ndarray] | None = None,
    start: np.ndarray | None = None,
    first: np.ndarray | None = None,
    min_steps: int = LANCZOS_MIN_STEPS,
    max_steps: int = LANCZOS_MAX_STEPS,
    tolerance: float = LANCZOS_TOLERANCE,
) -> SpectralEstimate:
    """Estimate the largest singular value of ``W`` by Lanczos on ``W^T W`` (a lower bound).

    Lanczos with full reorthogonalisation (Golub and Van Loan 2013, 10.1; the Krylov space of
    Golub-Kahan bidiagonalisation) from a random start: after ``k`` steps the largest Ritz value
    of the tridiagonal ``T_k`` is the best estimate of ``sigma_1^2`` in a Krylov space of
    dimension ``k``, never above it. Each step is one product with ``W^T W``, one read of ``W``
    (:func:`xavinit.core.matrixscan.gram_product`, every other one backward), against
    ``1 + 2 q`` reads for ``q`` block power iterations that read the top 8-30% low.

    Args:
        matrix: the ``(n, p)`` matrix (used through ``product`` when one is given).
        rng: draws the start vector when ``start`` is not given.
        product: ``v -> W^T W v`` (float64), default
            :func:`xavinit.core.matrixscan.gram_products` of ``matrix`` (read last first: it
            was just read forward).
        start, first: a start vector and its product already computed (a fused first pass).
    """
    if min(matrix.shape) <= EXACT_SIDE and product is None:
        exact = float(np.linalg.norm(np.asarray(matrix, dtype=np.float64), 2))
        return SpectralEstimate(exact, 0, 0.0)
    multiply = product or gram_products(matrix)
    p = matrix.shape[1]
    if start is None:
        start = np.asarray(rng.standard_normal(p))
        first = None
    q = np.asarray(start, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if norm == 0.0 or min(matrix.shape) == 0:
        return SpectralEstimate(0.0, 0, 0.0)
    given = None if first is None else np.asarray(first, dtype=np.float64) / norm
    q = q / norm
    basis = np.empty((max_steps + 1, p), dtype=np.float64)
    basis[0] = q
    alphas: list[float] = []
    betas: list[float] = []
    estimate = 0.0
    change = math.inf
    steps = 0
    for step in range(max_steps):
        w = given if (step == 0 and given is not None) else multiply(basis[step])
        alpha = float(basis[step] @ w)
        alphas.append(alpha)
        known = basis[: step + 1]
        for _ in range(2):  # twice is enough (Parlett's "twice is enough")
            w = w - known.T @ (known @ w)
        beta = float(np.linalg.norm(w))
        tridiagonal = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        top = float(np.linalg.eigvalsh(tridiagonal)[-1])
        value = math.sqrt(max(top, 0.0))
        change = (value - estimate) / value if value > 0 else 0.0
        estimate = max(estimate, value)
        steps = step + 1
        if beta <= 1e-5 * max(abs(top), 1e-300):  # an invariant subspace (to float32): exact
            break
        if steps >= min_steps and change < tolerance:
            break
        betas.append(beta)
        basis[step + 1] = w / beta
    return SpectralEstimate(estimate, steps, max(change, 0.0))
