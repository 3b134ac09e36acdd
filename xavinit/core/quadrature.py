"""Gaussian expectations by quadrature: ``E[g(mean + std z)]`` for ``z ~ N(0, 1)``, one- and
two-dimensional, split at the points where ``g`` is not analytic.

Gauss-Hermite (``numpy.polynomial.hermite.hermgauss``) for analytic integrands; across kinks the
Gaussian weight is split there, each piece with its own rule (Gauss-Legendre between kinks, a
half-range Hermite rule on the tails, Gautschi 2004), so that every piece converges spectrally.
:func:`gaussian_moments` doubles the nodes until nothing changes at :data:`QUADRATURE_TOL`. The
activations' gains (:mod:`xavinit.core.activations`) and the mean-field theory
(:mod:`xavinit.core.theory`) are built on these.

Example:
    >>> round(gaussian_expectation(lambda s: s**4, 2.0), 9)
    12.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.polynomial.hermite import hermgauss
from numpy.polynomial.legendre import leggauss

from xavinit.errors import XavinitError

__all__ = [
    "QUADRATURE_TOL",
    "bivariate_expectation",
    "gaussian_expectation",
    "gaussian_moments",
    "normal_rule",
]

Array = np.ndarray

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
