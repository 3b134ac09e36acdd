"""One pass over a weight matrix in cache-sized row blocks, and the products a spectral
estimate needs, each a single read of the matrix.

A block of rows (about 2 MiB, :data:`BLOCK_BYTES`) is read from memory once and, while it sits in cache, gives:
the sum, the sum of squares and of fourth powers (each block's float32 partial sums,
accumulated in float64), the extremes, every row's and every column's sum of squares, a
strided subsample for the distribution tests, and ``W^T (W v)`` for a start vector of the
Lanczos iteration (:mod:`xavinit.core.spectrum`). Checking a matrix then costs about as many reads
of it as the Lanczos iteration takes steps, where separate passes would read it once per
statistic and BLAS would copy (pack) it on every thin product. The Lanczos products after
the scan read the blocks backward and forward in turn (:func:`gram_products`), each starting
on the blocks still in cache from the read before it.

A handful of entries far outside every candidate law (a clamp at an absolute bound, one value
let through a truncation) would otherwise decide the verdict of millions: :func:`find_outliers`
finds them, and every statistic is recomputed without them (:func:`exclude`), the Gram products
with a sparse correction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from xavinit.core.stats import Moments, normal_quantile

BLOCK_BYTES = 1 << 21
"""Bytes of one row block (2 MiB): it stays in cache between the reductions that read it."""

OUTLIER_RATE = 1e-3
"""An entry is an outlier when a normal law (the heaviest-tailed candidate) with the tensor's
variance would put any of its N entries that far out with at most this probability."""

OUTLIER_MIN_ENTRIES = 1 << 14
"""Smaller tensors set nothing aside: in a few thousand entries one large entry is evidence
(a low-rank update's largest entry reaches 4-5 std in a 64 x 64 matrix), not a rounding of
the sampler."""

MAX_OUTLIERS_FRACTION = 1e-5
"""At most ``max(3, fraction * N)`` entries may be set aside as outliers: a handful, never a
share that could hide a trained tensor's heavy tails."""


def max_outliers(count: int) -> int:
    """How many entries of a tensor of ``count`` may be set aside as outliers."""
    return max(3, math.floor(MAX_OUTLIERS_FRACTION * count))


def outlier_threshold(count: int, mean_square: float) -> float:
    """``z sqrt(m2)`` with ``N P(|Z| > z) = OUTLIER_RATE`` for a standard normal Z."""
    z = -normal_quantile(OUTLIER_RATE / (2.0 * max(count, 1)))
    return z * math.sqrt(max(mean_square, 0.0))


@dataclass(frozen=True)
class Outliers:
    """Entries set aside: flat (row-major) positions in the matrix, their rows, columns and
    values (float64)."""

    flat: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @property
    def count(self) -> int:
        return int(self.flat.size)


@dataclass(frozen=True)
class MatrixScan:
    """What one pass over an ``n x p`` matrix gives.

    Attributes:
        moments: count, mean, mean of squares, extremes, finiteness (float64).
        mean_fourth: the mean of ``w^4``.
        row_squares: each row's sum of squares (float64, length n).
        col_squares: each column's sum of squares (float64, length p).
        sample: every ``step``-th entry in row-major order (the matrix's float type).
        step: the sample's stride.
        gram: ``W^T (W v)`` for the start vector given (float64), else None.
    """

    moments: Moments
    mean_fourth: float
    row_squares: np.ndarray
    col_squares: np.ndarray
    sample: np.ndarray
    step: int
    gram: np.ndarray | None = None


def block_rows(columns: int, itemsize: int = 4) -> int:
    """Rows per block: about :data:`BLOCK_BYTES`, at least 8."""
    return max(8, BLOCK_BYTES // max(1, columns * itemsize))


def _float_type(matrix: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if matrix.dtype == np.float64 else np.dtype(np.float32)


def scan_matrix(
    matrix: np.ndarray,
    sample_size: int,
    start: np.ndarray | None = None,
    fill: Callable[[int, int], None] | None = None,
) -> MatrixScan:
    """Read a 2-D matrix once in row blocks (see the module docstring).

    Args:
        matrix: ``(n, p)``, any real dtype; float32 stays float32 (float64 partial sums),
            float64 stays float64, other types are widened a block at a time.
        sample_size: at most this many entries are kept for the distribution tests.
        start: a length-``p`` vector: ``W^T W start`` is computed in the same pass.
        fill: called with each block's flat entry range before the block is read (a reader
            that fills the matrix's buffer from the file as it goes, so each block is read from
            the file and used while in cache); the matrix must then be C-contiguous.
    """
    matrix = np.asarray(matrix)  # a plain view of a memmap: slicing it then costs nothing
    n, p = matrix.shape
    count = n * p
    dtype = _float_type(matrix)
    step = max(1, math.ceil(count / sample_size)) if sample_size else 0
    sample = np.empty(math.ceil(count / step) if step else 0, dtype=dtype)
    rows_per_block = block_rows(p, dtype.itemsize)
    squares = np.empty((min(rows_per_block, n), p), dtype=dtype)
    row_squares = np.empty(n, dtype=np.float64)
    col_squares = np.zeros(p, dtype=np.float64)
    col_sums = np.zeros(p, dtype=np.float64)
    fourth = 0.0
    lo, hi = math.inf, -math.inf
    vector = None if start is None else np.asarray(start, dtype=dtype)
    gram = None if start is None else np.zeros(p, dtype=dtype)
    products = np.empty(min(rows_per_block, n), dtype=dtype)
    ones_p = np.ones(p, dtype=dtype)
    ones_n = np.ones(min(rows_per_block, n), dtype=dtype)
    row_buffer = np.empty(min(rows_per_block, n), dtype=dtype)
    col_buffer = np.empty(p, dtype=dtype)
    taken = 0
    with np.errstate(all="ignore"):  # NaN and inf are reported through ``finite``
        for first in range(0, n, rows_per_block):
            if fill is not None:
                fill(first * p, min(n, first + rows_per_block) * p)
            block = np.ascontiguousarray(matrix[first : first + rows_per_block], dtype=dtype)
            rows = block.shape[0]
            sq = np.multiply(block, block, out=squares[:rows])
            # sums along rows and columns as products with a vector of ones: BLAS reads the
            # block once at full speed where numpy's reduction along a row is a slow pairwise sum
            row_squares[first : first + rows] = np.dot(sq, ones_p, out=row_buffer[:rows])
            col_squares += np.dot(ones_n[:rows], sq, out=col_buffer)
            col_sums += np.dot(ones_n[:rows], block, out=col_buffer)
            flat_sq = sq.reshape(-1)
            fourth += float(np.dot(flat_sq, flat_sq))
            lo = min(lo, float(block.min()))
            hi = max(hi, float(block.max()))
            if vector is not None and gram is not None:
                y = np.dot(block, vector, out=products[:rows])
                gram += y @ block
            if step:
                offset = (-first * p) % step
                picked = block.reshape(-1)[offset::step]
                sample[taken : taken + picked.size] = picked
                taken += picked.size
    total = float(col_sums.sum())
    total_sq = float(col_squares.sum())
    finite = math.isfinite(total) and math.isfinite(total_sq) and math.isfinite(lo + hi)
    moments = Moments(count, total / count, total_sq / count, lo, hi, finite)
    return MatrixScan(
        moments,
        fourth / count,
        row_squares,
        col_squares,
        sample[:taken],
        step,
        None if gram is None else gram.astype(np.float64),
    )


def scan_matrices(matrices: Sequence[np.ndarray], sample_size: int) -> list[MatrixScan]:
    """:func:`scan_matrix` of many matrices of one shape and type, each within one row block
    and without a start vector, in one pass over their stack: the same numbers, bit for bit.

    Each statistic is the per-matrix arithmetic: the sums along rows and columns and of fourth
    powers are ``matmul`` products of the stack with vectors of ones (one gemv or dot, the
    call :func:`scan_matrix` makes, per matrix), the extremes exact, the float64 column
    totals a sum along each contiguous row (pairwise as one row alone), and every float64
    accumulator starts from 0.0 as there (so a -0.0 becomes 0.0 alike).

    Raises:
        ValueError: matrices of different shapes, or one larger than a row block.
    """
    first = np.asarray(matrices[0])
    n, p = first.shape
    dtype = _float_type(first)
    if n > block_rows(p, dtype.itemsize):
        raise ValueError(f"scan_matrices: a {n} x {p} matrix spans more than one row block")
    stack = np.array(matrices, dtype=dtype)  # (k, n, p)
    k, count = stack.shape[0], n * p
    step = max(1, math.ceil(count / sample_size)) if sample_size else 0
    with np.errstate(all="ignore"):  # NaN and inf are reported through ``finite``
        squares = np.multiply(stack, stack)
        row_squares = np.matmul(squares, np.ones(p, dtype=dtype)).astype(np.float64)
        ones_n = np.ones(n, dtype=dtype)
        col_squares = np.matmul(ones_n, squares) + np.zeros(p)  # 0.0 + x, as there
        col_sums = np.matmul(ones_n, stack) + np.zeros(p)
        flat = squares.reshape(k, 1, count)
        fourths = np.matmul(flat, flat.reshape(k, count, 1)).reshape(k).tolist()
        lows = stack.min(axis=(1, 2)).tolist()
        highs = stack.max(axis=(1, 2)).tolist()
        totals = col_sums.sum(axis=1).tolist()
        total_squares = col_squares.sum(axis=1).tolist()
    entries = stack.reshape(k, count)
    out = []
    for i in range(k):
        total, total_sq = totals[i], total_squares[i]
        lo, hi = min(math.inf, lows[i]), max(-math.inf, highs[i])
        finite = math.isfinite(total) and math.isfinite(total_sq) and math.isfinite(lo + hi)
        moments = Moments(count, total / count, total_sq / count, lo, hi, finite)
        sample = entries[i, ::step].copy() if step else np.empty(0, dtype=dtype)
        fourth = 0.0 + fourths[i]
        out.append(
            MatrixScan(moments, fourth / count, row_squares[i], col_squares[i], sample, step)
        )
    return out


def find_outliers(matrix: np.ndarray, found: MatrixScan) -> Outliers | None:
    """The handful of entries beyond :func:`outlier_threshold`, or None.

    Entries above half the threshold of the whole tensor are collected in one pass (at most
    ``4 max_outliers + 64`` of them; more means heavy tails, not outliers), then the threshold
    is recomputed without the outliers until it settles. None when there are none or too many.
    """
    moments = found.moments
    count = moments.count
    peak = max(abs(moments.minimum), abs(moments.maximum))
    if (
        count < OUTLIER_MIN_ENTRIES
        or not moments.finite
        or peak <= outlier_threshold(count, moments.mean_square)
    ):
        return None
    allowed = max_outliers(count)
    cap = 4 * allowed + 64
    collect = 0.5 * outlier_threshold(count, moments.mean_square)
    n, p = matrix.shape
    rows_per_block = block_rows(p)
    positions: list[np.ndarray] = []
    values: list[np.ndarray] = []
    total = 0
    for first in range(0, n, rows_per_block):
        block = matrix[first : first + rows_per_block]
        hits = np.flatnonzero(np.abs(block) > collect)
        if hits.size:
            total += hits.size
            if total > cap:
                return None
            positions.append(hits + first * p)
            values.append(np.asarray(block).reshape(-1)[hits].astype(np.float64))
    if not positions:
        return None
    flat = np.concatenate(positions)
    value = np.concatenate(values)
    chosen = np.zeros(flat.size, dtype=bool)
    sum_sq = moments.mean_square * count
    for _ in range(20):
        kept = count - int(chosen.sum())
        m2 = (sum_sq - float(np.sum(value[chosen] ** 2))) / max(kept, 1)
        now = np.abs(value) > outlier_threshold(kept, m2)
        if np.array_equal(now, chosen):
            break
        chosen = now
    if not chosen.any() or int(chosen.sum()) > allowed:
        return None
    flat = flat[chosen]
    return Outliers(flat, flat // p, flat % p, value[chosen])


def exclude(matrix: np.ndarray, found: MatrixScan, outliers: Outliers) -> MatrixScan:
    """The scan's statistics without the outliers (one more pass for the extremes)."""
    moments = found.moments
    count = moments.count - outliers.count
    values = outliers.values
    total = moments.mean * moments.count - float(values.sum())
    total_sq = moments.mean_square * moments.count - float(np.sum(values**2))
    fourth = found.mean_fourth * moments.count - float(np.sum(values**4))
    row_squares = found.row_squares.copy()
    np.subtract.at(row_squares, outliers.rows, values**2)
    col_squares = found.col_squares.copy()
    np.subtract.at(col_squares, outliers.cols, values**2)
    n, p = matrix.shape
    lo, hi = math.inf, -math.inf
    rows_per_block = block_rows(p)
    for first in range(0, n, rows_per_block):
        block = matrix[first : first + rows_per_block]
        inside = (outliers.flat >= first * p) & (outliers.flat < (first + block.shape[0]) * p)
        if inside.any():
            block = np.array(block, dtype=np.float64)
            flat = block.reshape(-1)
            local = outliers.flat[inside] - first * p
            flat[local] = np.nan
            lo = min(lo, float(np.nanmin(flat)))
            hi = max(hi, float(np.nanmax(flat)))
        else:
            lo = min(lo, float(block.min()))
            hi = max(hi, float(block.max()))
    sample = found.sample
    if found.step:
        on_stride = outliers.flat[outliers.flat % found.step == 0] // found.step
        sample = np.delete(sample, on_stride[on_stride < sample.size])
    moments = Moments(count, total / count, max(total_sq, 0.0) / count, lo, hi, True)
    return MatrixScan(
        moments, max(fourth, 0.0) / count, row_squares, col_squares, sample, found.step
    )


def gram_product(
    matrix: np.ndarray,
    vector: np.ndarray,
    outliers: Outliers | None = None,
    *,
    backward: bool = False,
) -> np.ndarray:
    """``W^T (W v)`` in one read of ``W`` (row blocks: ``sum_b B^T (B v)``), float64 out.

    With outliers, ``W`` is the matrix with those entries set to 0: ``W v`` is corrected
    block by block before it is multiplied back, and ``W^T y`` at the end.

    ``backward`` reads the blocks last to first: after a forward pass the last blocks are still
    in cache. Each block's ``B^T (B v)`` is then kept and the blocks' products are added in
    forward order, so the result is the forward one bit for bit (float32 sums depend on their
    order); see :data:`BACKWARD_MIN_ROWS` for where it is used.
    """
    matrix = np.asarray(matrix)
    n, p = matrix.shape
    dtype = _float_type(matrix)
    v = np.asarray(vector, dtype=dtype)
    out = np.zeros(p, dtype=dtype)
    rows_per_block = block_rows(p, dtype.itemsize)
    firsts = range(0, n, rows_per_block)
    partials = np.empty((len(firsts), p), dtype=dtype) if backward and n else None
    products = np.empty(min(rows_per_block, n), dtype=dtype)
    y_all = np.empty(n, dtype=dtype) if outliers is not None else None
    for index in reversed(range(len(firsts))) if partials is not None else range(len(firsts)):
        first = firsts[index]
        block = np.ascontiguousarray(matrix[first : first + rows_per_block], dtype=dtype)
        rows = block.shape[0]
        y = np.dot(block, v, out=products[:rows])
        if outliers is not None and y_all is not None:
            inside = (outliers.rows >= first) & (outliers.rows < first + rows)
            if inside.any():
                np.subtract.at(
                    y,
                    outliers.rows[inside] - first,
                    outliers.values[inside] * v[outliers.cols[inside]],
                )
            y_all[first : first + rows] = y
        if partials is not None:
            np.matmul(y, block, out=partials[index])
        else:
            out += y @ block
    if partials is not None:
        for partial in partials:  # forward order: the forward pass's float32 sums
            out += partial
    result = out.astype(np.float64)
    if outliers is not None and y_all is not None:
        np.subtract.at(result, outliers.cols, outliers.values * y_all[outliers.rows])
    return result


BACKWARD_MIN_ROWS = 64
"""Every other Lanczos product reads the blocks backward (:func:`gram_products`) when a block
holds at least this many rows: the blocks' kept products then take at most 1/64 of the matrix.
The blocks the last pass read last are still in cache: four products of a 4096 x 4096 float32
matrix (64 MiB, twice the 32 MiB L3) took 10% less time alone (21.5 -> 19.5 ms; 2048 x 4096:
15% less), and check's Lanczos time on sixteen of them 4-7% less (medians of 8 interleaved
rounds); at 8192 x 4096 (four times the cache) the gain is gone (1.007x, noise)."""


def gram_products(
    matrix: np.ndarray, outliers: Outliers | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> W^T (W v)`` (:func:`gram_product`) for a matrix just read forward (the scan):
    the first call reads it backward, the next forward, and so on, each starting where the
    last left off (the same numbers as forward reads)."""
    matrix = np.asarray(matrix)
    rows = block_rows(matrix.shape[1], _float_type(matrix).itemsize)
    alternate = rows >= BACKWARD_MIN_ROWS and matrix.shape[0] > rows
    calls = 0

    def product(vector: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return gram_product(matrix, vector, outliers, backward=alternate and calls % 2 == 1)

    return product
