"""Streaming moments, variance tests and intervals, Kolmogorov-Smirnov, multiple testing.

Everything here works on float32 or float64 arrays of any size in chunks, accumulating in
float64, so that a 20000 x 20000 matrix costs a few chunk buffers beyond itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CHUNK = 1 << 16
"""Elements per streaming chunk: 512 KiB as float64, so each chunk is handled in cache."""


@dataclass(frozen=True)
class Moments:
    """Moments of all entries of an array, accumulated in float64.

    Attributes:
        count: number of entries N.
        mean: sum(w) / N.
        mean_square: sum(w^2) / N, the variance about a known mean of 0 (the paper's Var[W]).
        minimum, maximum: extreme entries.
        finite: False when any entry is NaN or infinite.
    """

    count: int
    mean: float
    mean_square: float
    minimum: float
    maximum: float
    finite: bool

    @property
    def variance(self) -> float:
        """Sample variance about the sample mean (population form)."""
        return max(self.mean_square - self.mean**2, 0.0)


class Scanner:
    """Moments and a strided subsample of an array fed to it piece by piece, in order.

    The array is summed in rows of ``chunk`` entries from its start: each piece fed is copied
    into one reusable float64 buffer; each row's sum and sum of squares are numpy's pairwise
    sums of it and then of its square (taken in place, so that the piece, its float64 copy and
    nothing else share the cache; one 2-D reduction sums every row of a piece, each row alone),
    added to the totals row by row in order; not BLAS dots, whose threads stall a loaded
    machine for seconds on small vectors. The extremes come from the piece itself, and every
    ``ceil(N / sample_size)``-th entry is kept for a distribution test. For i.i.d. entries any
    fixed index set is a simple random sample, and a stride spans the whole matrix. The rows do
    not depend on how the array is cut into pieces, so fed any pieces it gives the numbers of
    :func:`moments_and_sample` exactly: a sampler that feeds each piece it has just drawn
    (:meth:`xavinit.core.schemes.Scheme.sample`) measures the matrix while it is still in cache
    instead of reading it again, and a piece of several rows pays numpy's per-call cost once.

    Args:
        count: the entries that will be fed.
        dtype: the sample's dtype (the array's).
        sample_size: at most this many entries kept (0: none).
        chunk: the entries of a row of the sums; every piece but the last is a whole number of
            rows.
        buffer: a float64 array of at least ``min(chunk, count)`` entries to widen each piece
            in (reused across scans), instead of a new one of that size; a piece longer than it
            is taken in parts of whole rows.
        sample: an array of :meth:`sample_length` entries of ``dtype`` to keep the sample in.
        extremes: False skips the minimum and maximum (two passes of each piece): they are
            then NaN, and ``finite`` is read from the sums alone (NaN makes the sum NaN, an
            infinity the sum of squares infinite).
    """

    def __init__(
        self,
        count: int,
        dtype: np.dtype,
        sample_size: int = 0,
        chunk: int = CHUNK,
        *,
        buffer: np.ndarray | None = None,
        sample: np.ndarray | None = None,
        extremes: bool = True,
    ):
        self.count = count
        self.step = self._step(count, sample_size)
        length = self.sample_length(count, sample_size)
        self.sample = np.empty(length, dtype=dtype) if sample is None else sample[:length]
        if buffer is None:
            buffer = np.empty(min(chunk, max(count, 1)), dtype=np.float64)
        self._chunk = chunk
        self._buffer = buffer
        if buffer.size < min(chunk, count):
            raise ValueError(f"a buffer of {buffer.size} entries cannot hold a row of {chunk}")
        self._rows_fit = max(buffer.size // chunk, 1)
        self._extremes = extremes
        self._total = 0.0
        self._total_sq = 0.0
        self._lo, self._hi = math.inf, -math.inf
        self._taken = 0
        self._seen = 0

    def add(self, piece: np.ndarray) -> None:
        """Take the next piece (a flat view, in array order): whole rows of ``chunk`` entries,
        or the array's last entries."""
        if self._seen % self._chunk:
            raise ValueError(f"a piece after {self._seen} entries: not a whole number of rows")
        start = self._seen
        size = piece.size
        part = self._rows_fit * self._chunk
        with np.errstate(all="ignore"):  # NaN and inf are reported through ``finite``
            for offset in range(0, size, part):
                self._sum_rows(piece[offset : offset + part] if size > part else piece)
            if self._extremes:
                self._lo = min(self._lo, float(np.minimum.reduce(piece)))
                self._hi = max(self._hi, float(np.maximum.reduce(piece)))
        if self.step:
            picked = piece[(-start) % self.step :: self.step]
            self.sample[self._taken : self._taken + picked.size] = picked
            self._taken += picked.size
        self._seen += size

    def _sum_rows(self, piece: np.ndarray) -> None:
        """Add each row's pairwise sum and sum of squares of ``piece`` (at most the buffer's
        rows) to the totals, row by row: a row of a 2-D reduction is summed as it is alone."""
        size = piece.size
        b = self._buffer if size == self._buffer.size else self._buffer[:size]
        b[...] = piece
        sums = self._row_sums(b)
        np.multiply(b, b, out=b)
        for row_sum, row_squares in zip(sums, self._row_sums(b), strict=True):
            self._total += row_sum
            self._total_sq += row_squares

    def _row_sums(self, b: np.ndarray) -> list[float]:
        """The pairwise sum of each whole row of ``b``, then of its last, partial row."""
        if b.size <= self._chunk:  # one row (propagate's chunks): no 2-D view to build
            return [float(np.add.reduce(b))]
        whole = b.size - b.size % self._chunk
        sums = np.add.reduce(b[:whole].reshape(-1, self._chunk), axis=1).tolist() if whole else []
        if whole < b.size:
            sums.append(float(np.add.reduce(b[whole:])))
        return sums

    def result(self) -> tuple[Moments, np.ndarray]:
        """``(moments, sample)`` of everything added (the sample keeps the array's dtype)."""
        count = self.count
        if count == 0:
            return Moments(0, math.nan, math.nan, math.nan, math.nan, True), self.sample
        total, total_sq, lo, hi = self._total, self._total_sq, self._lo, self._hi
        finite = math.isfinite(total) and math.isfinite(total_sq)
        if self._extremes:
            finite = finite and math.isfinite(lo + hi)
        else:
            lo = hi = math.nan
        moments = Moments(count, total / count, total_sq / count, lo, hi, finite)
        return moments, self.sample[: self._taken]

    @staticmethod
    def _step(count: int, sample_size: int) -> int:
        """Every ``ceil(count / sample_size)``-th entry is kept (0: none)."""
        return max(1, math.ceil(count / sample_size)) if sample_size and count else 0

    @staticmethod
    def sample_length(count: int, sample_size: int) -> int:
        """Entries the sample of ``count`` entries at most ``sample_size`` holds."""
        step = Scanner._step(count, sample_size)
        return math.ceil(count / step) if step else 0


def moments_and_sample(
    array: np.ndarray, sample_size: int = 0, chunk: int = CHUNK
) -> tuple[Moments, np.ndarray]:
    """One streaming pass over ``array``: its moments and an evenly strided subsample (see
    :class:`Scanner`).

    Returns:
        ``(moments, sample)``; the sample keeps the array's dtype (empty when ``sample_size`` is 0).
    """
    flat = np.ravel(array, order="K")
    scanner = Scanner(int(flat.size), flat.dtype, sample_size, chunk)
    for start in range(0, flat.size, chunk):
        scanner.add(flat[start : start + chunk])
    return scanner.result()


def moments(array: np.ndarray, chunk: int = CHUNK) -> Moments:
    """Moments of all entries of ``array`` (any shape, memory-mapped or not), in one pass."""
    return moments_and_sample(array, 0, chunk)[0]


def normal_two_sided_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic: erfc(|z| / sqrt 2)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """Inverse standard normal CDF."""
    return NormalDist().inv_cdf(p)


def phi(x: float) -> float:
    """Standard normal density: exp(-x^2 / 2) / sqrt(2 pi)."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def big_phi(x: float) -> float:
    """Standard normal CDF of one number: (1 + erf(x / sqrt 2)) / 2, exact to double precision."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


_ERF_STEP = 0.125
_ERF_CELLS = 49  # centres i / 8, i = 0..48, cover [0, 6 + 1/16]; beyond, erf = 1 - 1e-17 -> 1
_ERF_DEGREE = 12


@functools.cache
def _erf_table() -> np.ndarray:
    """Taylor coefficients of erf about each centre ``c = i / 8``, shape (49, 13).

    ``erf^(n)(c) = 2/sqrt(pi) (-1)^(n-1) H_{n-1}(c) e^{-c^2}`` (physicists' Hermite ``H``),
    so coefficient ``n`` is that over ``n!``, and coefficient 0 is ``math.erf(c)``. A cell is
    ``|s - c| <= 1/16``, where the remainder is below ``(1/16)^13 max|erf^(13)| / 13! < 1e-17``.
    The cell about 0 is the odd Maclaurin series, so small ``s`` keep their relative accuracy.
    """
    table = np.zeros((_ERF_CELLS, _ERF_DEGREE + 1))
    for i in range(_ERF_CELLS):
        c = i * _ERF_STEP
        table[i, 0] = math.erf(c)
        h_prev, h = 0.0, 1.0  # H_{n-2}, H_{n-1} for n = 1
        scale = 2.0 / math.sqrt(math.pi) * math.exp(-c * c)
        for n in range(1, _ERF_DEGREE + 1):
            table[i, n] = scale * (-1) ** (n - 1) * h / math.factorial(n)
            h_prev, h = h, 2.0 * c * h - 2.0 * (n - 1) * h_prev
    table.setflags(write=False)
    return table


def erf(s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The error function of a numpy array, exact to about 1e-16 (float64), in its dtype.

    ``erf(s) = 2/sqrt(pi) int_0^s e^{-t^2} dt``, from the Taylor series of ``math.erf`` about
    the nearest of the points ``i / 8``, ``i = 0..48`` (see :func:`_erf_table`);
    ``erf(s) = sign(s)`` for ``|s| > 6 + 1/16``. NaN stays NaN. numpy has no erf of its own;
    :func:`xavinit.core.kernels.erf` also takes torch and cupy arrays. Works in chunks of
    :data:`CHUNK` values whose buffers stay in cache (4x faster than whole-array passes).

    Example:
        >>> float(erf(np.array([0.5]))[0]) == math.erf(0.5)
        True
    """
    s = np.asarray(s)
    if out is not None and out.shape != s.shape:
        raise ValueError(f"erf: out has shape {out.shape}, the input {s.shape}")
    columns = _erf_columns(s.dtype)
    flat = s.reshape(-1)
    contiguous = out is not None and out.flags.c_contiguous
    result: np.ndarray = (
        out
        if out is not None and contiguous
        else np.empty(s.shape, dtype=s.dtype if out is None else out.dtype)
    )
    target = result.reshape(-1)
    size = min(flat.size, CHUNK)
    a, u, value, term = (np.empty(size, dtype=s.dtype) for _ in range(4))
    index = np.empty(size, dtype=np.intp)
    for start in range(0, flat.size, CHUNK):  # every buffer stays in cache
        part = flat[start : start + CHUNK]
        n = part.size
        _erf_chunk(part, columns, a[:n], u[:n], value[:n], term[:n], index[:n])
        np.copysign(value[:n], part, out=target[start : start + n])
    if out is not None and not contiguous:
        out[...] = result
        return out
    return result


def _erf_chunk(
    s: np.ndarray,
    columns: tuple[np.ndarray, ...],
    a: np.ndarray,
    u: np.ndarray,
    value: np.ndarray,
    term: np.ndarray,
    index: np.ndarray,
) -> None:
    """``|erf(s)|`` of one chunk into ``value`` (the other arrays are its scratch)."""
    np.abs(s, out=a)
    np.fmin(a, (_ERF_CELLS - 1) * _ERF_STEP, out=u)  # NaN -> the last cell; u stays NaN
    u *= 1.0 / _ERF_STEP
    np.rint(u, out=u)
    index[...] = u
    u *= _ERF_STEP
    np.subtract(a, u, out=u)
    np.take(columns[_ERF_DEGREE], index, out=value, mode="clip")
    for n in range(_ERF_DEGREE - 1, -1, -1):  # Horner
        value *= u
        np.take(columns[n], index, out=term, mode="clip")
        value += term
    value[a > (_ERF_CELLS - 0.5) * _ERF_STEP] = 1.0


@functools.cache
def _erf_columns(dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The columns of :func:`_erf_table` in ``dtype``, each contiguous (a fast ``take``)."""
    table = _erf_table().astype(dtype)
    return tuple(np.ascontiguousarray(table[:, n]) for n in range(_ERF_DEGREE + 1))


_CDF_GRID_LIMIT = 9.0
_CDF_GRID_POINTS = 36_001


@functools.cache
def _normal_cdf_table() -> tuple[np.ndarray, np.ndarray]:
    """Phi on a grid of step 5e-4 over [-9, 9], from :func:`erf` (exact to double precision)."""
    grid = np.linspace(-_CDF_GRID_LIMIT, _CDF_GRID_LIMIT, _CDF_GRID_POINTS)
    values = erf(grid * (1.0 / math.sqrt(2.0)))
    values += 1.0
    values *= 0.5
    return grid, values


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised: linear interpolation of an exact table.

    The interpolation error is at most h^2/8 max|phi'| = (5e-4)^2 / 8 * 0.242 < 1e-8 (beyond
    +-9 the CDF is 0 or 1 to 1e-19), far below the 1/sqrt(n) resolution of a KS test.
    numpy has no erf, and a Python-level ``math.erf`` costs 70 ns a value.
    """
    grid, values = _normal_cdf_table()
    if np.ndim(z) != 1 or z.size < _DIRECT_INTERPOLATION or bool(np.all(z[1:] >= z[:-1])):
        return np.interp(z, grid, values)  # its search is fastest on points in order
    return _interp_uniform_grid(np.asarray(z, dtype=np.float64), grid, values)


_DIRECT_INTERPOLATION = 4096
"""From this many points on, :func:`normal_cdf` finds each cell of points in random order by
arithmetic."""


@functools.cache
def _slopes() -> np.ndarray:
    grid, values = _normal_cdf_table()
    return np.diff(values) / np.diff(grid)


def _interp_uniform_grid(x: np.ndarray, grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.interp(x, grid, values)`` for the equally spaced grid of the CDF table, bit for bit,
    in a few linear passes: ``np.interp`` binary-searches each point, which is fast for sorted
    points (each search starts at the last one's cell) and ten times slower in random order.

    The cell ``j`` comes from ``(x - grid[0]) / h`` and is corrected by one where rounding put
    it on the wrong side of ``grid[j]`` or ``grid[j + 1]``; the value is then numpy's own
    ``slope[j] * (x - grid[j]) + values[j]``. Outside the grid: the end values; NaN stays NaN.
    """
    last = grid.size - 1
    lowest, highest = float(np.min(x)), float(np.max(x))  # NaN if any entry is NaN
    cell = np.subtract(x, grid[0])
    cell *= last / (grid[-1] - grid[0])
    np.clip(cell, 0, last - 1, out=cell)
    if math.isnan(lowest):
        np.nan_to_num(cell, copy=False, nan=0.0)
    j = cell.astype(np.intp)
    left = np.take(grid, j)
    below = np.flatnonzero(left > x)  # rounding put x one cell too high (rare)
    if below.size:
        j[below] = np.maximum(j[below] - 1, 0)
        left[below] = grid[j[below]]
    above = np.flatnonzero(np.take(grid, np.minimum(j + 1, last)) <= x)  # one cell too low
    if above.size:
        j[above] = np.minimum(j[above] + 1, last - 1)
        left[above] = grid[j[above]]
    with np.errstate(invalid="ignore"):  # an infinite x meets a zero slope; masked below
        out = np.subtract(x, left, out=cell)
        out *= np.take(_slopes(), j)
        out += np.take(values, j)
    unknown = math.isnan(lowest)  # with a NaN the extremes say nothing: mask both ends
    if unknown or lowest <= grid[0]:
        out[x <= grid[0]] = values[0]
    if unknown or highest >= grid[-1]:
        out[x >= grid[-1]] = values[-1]
    return out


def normal_cdf_cells(x: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Bucket finite points ``x`` of a normal with standard deviation ``std`` into the cells of
    :func:`normal_cdf`'s table, for :func:`ks_distance_cells`.

    Returns ``(cell, values)``: ``cell = floor((x / std - grid[0]) / h)`` clipped to the table's
    cells, computed in float64 as ``x (1 / (std h)) - grid[0] / h`` (monotone in ``x``, three
    passes), and the table's CDF values at the cell edges. ``normal_cdf(x / std)`` of a point
    in cell ``j`` lies between ``values[j]`` and ``values[j + 1]`` up to rounding: a point
    within rounding of a grid point may land in the neighbouring cell, where its CDF is within
    about 1e-16 of the shared edge, far inside :data:`KS_ROUNDING_MARGIN`.
    """
    grid, values = _normal_cdf_table()
    last = grid.size - 1
    per_cell = last / (grid[-1] - grid[0])
    position = np.multiply(x, per_cell / std, dtype=np.float64)
    position -= grid[0] * per_cell
    cell = np.empty(position.shape, dtype=np.intp)
    with np.errstate(invalid="ignore"):  # non-finite points are the caller's to refuse
        np.clip(position, 0, last - 1, out=cell, casting="unsafe")  # truncation = floor here
    return cell, values


@dataclass(frozen=True)
class VarianceTest:
    """z-test of a mean of squares against an expected variance, with a confidence interval.

    For N i.i.d. entries with mean 0, variance v and kurtosis k, the mean of squares has standard
    error ``v sqrt((k - 1) / N)`` (PAPER.md, "Statistics of a variance estimate"). The test uses the
    hypothesised v; the interval ``m2 +- z_{1-alpha/2} m2 sqrt((k-1)/N)`` uses the observed one.
    """

    standard_error: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float


def variance_test(
    mean_square: float, expected_var: float, count: int, kurtosis: float, alpha: float
) -> VarianceTest:
    """Test ``E[w^2] = expected_var`` from the mean of squares of ``count`` i.i.d. entries."""
    relative_se = math.sqrt((kurtosis - 1.0) / count)
    se = expected_var * relative_se
    z = (mean_square - expected_var) / se
    half = -normal_quantile(alpha / 2.0) * mean_square * relative_se  # exact for tiny alpha
    return VarianceTest(se, z, normal_two_sided_p(z), mean_square - half, mean_square + half)


def variance_interval_p(
    mean_square: float, expected_var: float, count: int, kurtosis: float, tolerance: float
) -> float:
    """p-value of the interval null ``|E[w^2] / expected_var - 1| <= tolerance``.

    With ``r = m2 / expected - 1`` and ``se = (1 + tolerance) sqrt((k - 1) / N)`` (the standard
    error of ``m2 / expected`` when the true ratio sits on the interval's edge), the p-value is
    the chance that ``|r|`` is at least as far out when the truth is on the edge:
    ``P(|X| >= |r|)`` for ``X ~ N(tolerance, se)``, i.e.
    ``1 - Phi((|r| - tol) / se) + Phi((-|r| - tol) / se)``. The edge is the least favourable point
    of the null, so the test has size alpha over the whole interval: a correct sampler fails at
    most alpha of the time however large N, while a deviation beyond the tolerance is found once
    N is large enough (PAPER.md, "Statistics of a variance estimate"; equivalence testing,
    Wellek 2010). With ``tolerance = 0`` it is the two-sided z-test of the exact formula.
    """
    ratio = abs(mean_square / expected_var - 1.0)
    se = (1.0 + tolerance) * math.sqrt((kurtosis - 1.0) / count)
    root2 = math.sqrt(2.0)
    beyond = 0.5 * math.erfc((ratio - tolerance) / (se * root2))
    mirror = 0.5 * math.erfc((ratio + tolerance) / (se * root2))
    return min(1.0, beyond + mirror)


def variance_p_values(
    mean_square: float,
    expected: Sequence[float],
    count: int,
    kurtosis: Sequence[float],
    tolerance: float,
) -> list[tuple[float, float]]:
    """``(variance_test(...).p_value, variance_interval_p(...))`` of one mean of squares
    against each candidate variance ``expected[i]`` (kurtosis ``kurtosis[i]``), with their
    arithmetic operation for operation (the same numbers, bit for bit), in one call: a tensor's
    ranking tests about fifteen laws, and the confidence interval (a normal quantile) is not
    needed there.

    Point null: ``z = (m2 - v) / (v sqrt((k - 1) / N))``, ``p = erfc(|z| / sqrt 2)``; interval
    null: see :func:`variance_interval_p`.
    """
    root2 = math.sqrt(2.0)
    widen = 1.0 + tolerance
    out = []
    for expected_var, k in zip(expected, kurtosis, strict=True):
        relative_se = math.sqrt((k - 1.0) / count)
        z = (mean_square - expected_var) / (expected_var * relative_se)
        point = math.erfc(abs(z) / root2)
        ratio = abs(mean_square / expected_var - 1.0)
        se = widen * math.sqrt((k - 1.0) / count)
        beyond = 0.5 * math.erfc((ratio - tolerance) / (se * root2))
        mirror = 0.5 * math.erfc((ratio + tolerance) / (se * root2))
        out.append((point, min(1.0, beyond + mirror)))
    return out


def ks_interval_p(statistic: float, n: int, distance: float) -> float:
    """p-value of the interval null ``sup |F - F_0| <= distance`` from a KS statistic ``D``.

    If the sampled law G is within ``distance`` of the hypothesised F_0, then
    ``D = sup |F_n - F_0| <= sup |F_n - G| + distance`` (triangle inequality), so
    ``P(D > distance + t) <= P(K_n > t)``: ``p = Q_KS((sqrt n + 0.12 + 0.11 / sqrt n)(D - distance))``
    with Stephens' correction, 1 when ``D <= distance``. Conservative (size at most alpha).
    """
    excess = statistic - distance
    if excess <= 0.0:
        return 1.0
    root = math.sqrt(n)
    return kolmogorov_sf((root + 0.12 + 0.11 / root) * excess)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 x^2)."""
    if x < 0.2:
        return 1.0
    total = 0.0
    for coefficient, odd in _KOLMOGOROV_TERMS:
        term = math.exp(coefficient * x * x)
        total += term if odd else -term
        if term < 1e-16:
            break
    return min(max(2.0 * total, 0.0), 1.0)


_KOLMOGOROV_TERMS = tuple((-2.0 * j * j, j % 2 == 1) for j in range(1, 101))
"""``(-2 j^2, j odd)`` for j = 1..100: ``-2 j^2`` is exact, so ``-2 j^2 x x`` is the same
number as ``-2.0 * j * j * x * x`` computed left to right (a KS p-value per law and tensor)."""


@functools.lru_cache(maxsize=2)
def _plotting_positions(n: int) -> np.ndarray:
    """i / n for i = 1..n, cached: a KS test of the same size reuses it (read-only)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    ranks /= n
    ranks.flags.writeable = False
    return ranks


def ks_test(
    sample: np.ndarray,
    cdf: Callable[[np.ndarray], np.ndarray],
    *,
    presorted: bool = False,
    cells: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> tuple[float, float]:
    """One-sample Kolmogorov-Smirnov test of ``sample`` against a continuous ``cdf``.

    Returns ``(D, p)`` with ``D = sup |F_n - F|`` and the asymptotic p-value with Stephens'
    (1970) small-sample correction, ``P(K > (sqrt n + 0.12 + 0.11 / sqrt n) D)``, accurate to a
    few percent of p for n >= 5 (Numerical Recipes, 14.3). ``presorted``: the sample is already
    in ascending order (one sort serves many candidate laws). ``cells``: for a sample in any
    order, its points' buckets and the CDF at the bucket edges (see :func:`ks_distance_cells`),
    so that the CDF is computed only for the few points that decide ``D`` (None: no buckets
    for this law, the CDF of every point is bucketed instead).
    """
    n = sample.size
    bucketed = None if presorted or cells is None else cells(sample)
    if presorted:
        return ks_sorted(np.asarray(cdf(sample), dtype=np.float64).reshape(1, n))[0]
    if bucketed is not None:
        cell, edges = bucketed
        d = ks_distance_cells(cell, edges, lambda members: cdf(sample[members]))
    else:
        d = ks_distance_unsorted(np.asarray(cdf(sample), dtype=np.float64))
    root = math.sqrt(n)
    return d, kolmogorov_sf((root + 0.12 + 0.11 / root) * d)


def ks_sorted(cdf_values: np.ndarray) -> list[tuple[float, float]]:
    """:func:`ks_test`'s ``(D, p)`` for each row of ``F(x_(1)) <= ... <= F(x_(n))``, the CDF of
    one or more laws at a sorted sample: ``D = max_i max(i/n - F_i, F_i - (i-1)/n)`` by two
    reductions over all rows at once (a tensor ranked against ten laws pays one pass).

    Args:
        cdf_values: shape ``(laws, n)``, float64; overwritten with ``F_i - i/n``.
    """
    n = cdf_values.shape[1]
    gap = cdf_values
    gap -= _plotting_positions(n)
    d_plus = -gap.min(axis=1)  # max(i/n - F)
    d_minus = gap.max(axis=1)
    d_minus += 1.0 / n  # max(F - (i-1)/n)
    root = math.sqrt(n)
    factor = root + 0.12 + 0.11 / root
    tests = []
    for plus, minus in zip(d_plus.tolist(), d_minus.tolist(), strict=True):
        d = max(plus, minus)
        tests.append((d, kolmogorov_sf(factor * d)))
    return tests


KS_BUCKET_SIZE = 16
"""Expected sample points per bucket of :func:`ks_distance_unsorted`: the bucket arrays of
init's 2^17-entry sample (8,192 buckets, 64 KiB each) stay in the cache and out of fresh
pages, and the few buckets that can hold the maximum hold few points to sort (1.8 ms at 4 a
bucket, 0.5 ms at 16; the distance is exact at any size)."""

KS_ROUNDING_MARGIN = 1e-12
"""Slack on the bucket bounds of :func:`ks_distance_cells`: a computed CDF value may stray from
its bucket's edges by a few units of rounding (about 1e-16), never by this much."""


def ks_distance_unsorted(u: np.ndarray) -> float:
    """``D = max_i max(i/n - u_(i), u_(i) - (i-1)/n)`` of values ``u = F(x)`` in [0, 1], in any
    order, exactly, without sorting them all: :func:`ks_distance_cells` with ``n / 16`` equal
    buckets of [0, 1] (bucket ``floor(u B)``, the last one closed at 1).
    """
    n = int(u.size)
    if n == 0:
        return 0.0
    buckets = max(1, n // KS_BUCKET_SIZE)
    cell = np.empty(n, dtype=np.intp)
    np.multiply(u, buckets, out=cell, casting="unsafe")  # truncation: floor for u >= 0
    np.clip(cell, 0, buckets - 1, out=cell)
    edges = np.arange(buckets + 1, dtype=np.float64) / buckets
    return ks_distance_cells(cell, edges, lambda members: u[members])


def ks_distance_cells(
    cell: np.ndarray, edges: np.ndarray, cdf_of: Callable[[np.ndarray], np.ndarray]
) -> float:
    """The KS distance ``D = max_i max(i/n - u_(i), u_(i) - (i-1)/n)`` of ``n`` points whose
    CDF values ``u`` are known only where needed, exactly, without sorting them all.

    Args:
        cell: ``(n,)`` the bucket of each point, non-decreasing in its CDF value; a point in
            bucket ``k`` has ``edges[k] <= u <= edges[k + 1]`` (up to rounding).
        edges: ``(B + 1,)`` non-decreasing CDF values at the bucket boundaries, in [0, 1].
        cdf_of: the points' CDF values ``u`` for an index array of points.

    Before bucket ``k`` lie ``C_k`` points, so ``|C_k/n - edges[k]| <= D`` at each boundary,
    and a point ranked ``i = C_k + j`` inside bucket ``k`` deviates by at most
    ``max(C_{k+1}/n - edges[k], edges[k+1] - C_k/n)``. Only the buckets whose bound reaches the
    largest boundary deviation can hold the maximum: the CDF of their points alone is computed
    and sorted, and ``D`` comes from their exact ranks with the arithmetic of the sorted formula
    (the same number, bit for bit). Under the null hypothesis this is a handful of buckets; at
    worst it sorts everything.
    """
    n = int(cell.size)
    if n == 0:
        return 0.0
    buckets = edges.size - 1
    counts = np.bincount(cell, minlength=buckets)
    before = np.zeros(buckets + 1, dtype=np.int64)
    np.cumsum(counts, out=before[1:])
    lower = float(np.max(np.abs(before / n - edges)))
    upper = np.maximum(before[1:] / n - edges[:-1], edges[1:] - before[:-1] / n)
    candidates = np.flatnonzero((upper >= lower - KS_ROUNDING_MARGIN) & (counts > 0))
    chosen = np.zeros(buckets, dtype=bool)
    chosen[candidates] = True
    members = np.flatnonzero(chosen[cell])
    values = np.asarray(cdf_of(members), dtype=np.float64)
    member_cells = cell[members]
    order = np.lexsort((values, member_cells))
    values = values[order]
    bucket_of = member_cells[order]
    first = np.searchsorted(bucket_of, bucket_of, side="left")  # each value's bucket start
    ranks = before[bucket_of] + (np.arange(values.size) - first) + 1
    gap = values - ranks.astype(np.float64) / n
    d_plus = -float(gap.min())
    d_minus = float(gap.max()) + 1.0 / n
    return max(d_plus, d_minus)


def holm_reject(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's (1979) step-down procedure: which hypotheses to reject at family-wise level alpha.

    Sort the m p-values; reject the k-th smallest while ``p_(k) <= alpha / (m - k + 1)``; stop at
    the first that is not. Valid under any dependence between the tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    reject = [False] * m
    for rank, index in enumerate(order):
        if p_values[index] <= alpha / (m - rank):
            reject[index] = True
        else:
            break
    return reject


def bonferroni_reject(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Reject each hypothesis whose p-value is at most alpha / m."""
    m = len(p_values)
    return [p <= alpha / m for p in p_values]


CORRECTIONS: dict[str, Callable[[Sequence[float], float], list[bool]]] = {
    "holm": holm_reject,
    "bonferroni": bonferroni_reject,
}
