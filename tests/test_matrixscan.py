"""The Gram products of the spectral estimate: ``W^T (W v)`` read forward, backward and fused
into the scan are the same float32 sums bit for bit, and ``W^T W v`` to float32 accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from xavinit.core import matrixscan
from xavinit.core.matrixscan import (
    Outliers,
    block_rows,
    gram_product,
    gram_products,
    scan_matrix,
)
from xavinit.core.spectrum import top_singular_value

# 300 rows of 4096 float32 columns: blocks of 128, 128 and 44 rows (a short last block);
# 200 x 2048 float64: 128 and 72; 700 x 100 float16 (widened a block at a time): one block
SHAPES = [((300, 4096), np.float32), ((200, 2048), np.float64), ((700, 100), np.float16)]


def _matrix(shape: tuple[int, int], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(dtype)


def _reference(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``W^T (W v)`` in float64, by numpy's own products (not the code under test)."""
    w = matrix.astype(np.float64)
    return w.T @ (w @ vector)


def _accuracy(matrix: np.ndarray, vector: np.ndarray) -> float:
    """A bound on a float32 evaluation's error: ``|W|^T (|W| |v|)`` times ``(n + p) eps``
    (each entry sums n products of sums of p; the standard bound ``k eps`` on a k-term sum)."""
    w = np.abs(matrix.astype(np.float64))
    n, p = matrix.shape
    return float(np.max(w.T @ (w @ np.abs(vector)))) * (n + p) * float(np.finfo(np.float32).eps)


@pytest.mark.parametrize(("shape", "dtype"), SHAPES)
def test_backward_reads_give_the_forward_sums_bit_for_bit(shape, dtype):
    matrix = _matrix(shape, dtype)
    vector = np.random.default_rng(1).standard_normal(shape[1])
    forward = gram_product(matrix, vector)
    backward = gram_product(matrix, vector, backward=True)
    assert forward.dtype == np.float64
    assert np.array_equal(forward, backward)
    error = np.max(np.abs(forward - _reference(matrix, vector)))
    assert error <= (_accuracy(matrix, vector) if dtype != np.float64 else 1e-9)


def test_backward_reads_with_outliers_set_aside():
    """Entries set aside count as 0: the corrected product is W0^T (W0 v), W0 without them,
    forward and backward alike (outliers in the first, a middle and the last block)."""
    matrix = _matrix((300, 4096), np.float32, seed=2)
    flat = np.array([5, 128 * 4096 + 17, 299 * 4096 + 4095, 299 * 4096 + 3])
    matrix.reshape(-1)[flat] = np.float32(0.75)  # about 48 std
    rows, cols = flat // 4096, flat % 4096
    outliers = Outliers(flat, rows, cols, matrix.reshape(-1)[flat].astype(np.float64))
    vector = np.random.default_rng(3).standard_normal(4096)
    forward = gram_product(matrix, vector, outliers)
    assert np.array_equal(forward, gram_product(matrix, vector, outliers, backward=True))
    cleaned = matrix.copy()
    cleaned[rows, cols] = 0.0
    error = np.max(np.abs(forward - _reference(cleaned, vector)))
    assert error <= _accuracy(matrix, vector)


@pytest.mark.parametrize(("shape", "dtype"), SHAPES)
def test_the_scan_fuses_the_same_first_product(shape, dtype):
    matrix = _matrix(shape, dtype, seed=4)
    vector = np.random.default_rng(5).standard_normal(shape[1])
    fused = scan_matrix(matrix, 1000, start=vector).gram
    assert fused is not None
    assert np.array_equal(fused, gram_product(matrix, vector))


def test_lanczos_products_alternate_and_give_the_forward_estimate(monkeypatch):
    """After the scan's forward read, the Lanczos products read backward, forward, backward,
    forward; the estimate is the one of forward reads only, to the last bit."""
    matrix = _matrix((300, 4096), np.float32, seed=6)
    forward = top_singular_value(
        matrix, np.random.default_rng(7), product=lambda v: gram_product(matrix, v)
    )
    directions: list[bool] = []

    def recording(*args, backward=False, **kwargs):
        directions.append(backward)
        return gram_product(*args, backward=backward, **kwargs)

    monkeypatch.setattr(matrixscan, "gram_product", recording)
    alternating = top_singular_value(matrix, np.random.default_rng(7))
    assert directions == [True, False, True, False, True]
    assert alternating == forward
    assert alternating.steps == 5


@pytest.mark.parametrize("shape", [(100, 4096), (64, 1 << 16)])
def test_products_stay_forward_where_backward_gains_nothing(monkeypatch, shape):
    """One block (nothing to reorder), or blocks of fewer than BACKWARD_MIN_ROWS rows (the
    kept products would cost more than 1/64 of the matrix): every read is forward."""
    assert shape[0] <= block_rows(shape[1]) or block_rows(shape[1]) < matrixscan.BACKWARD_MIN_ROWS
    matrix = np.ones(shape, dtype=np.float32)
    directions: list[bool] = []

    def recording(*args, backward=False, **kwargs):
        directions.append(backward)
        return gram_product(*args, backward=backward, **kwargs)

    monkeypatch.setattr(matrixscan, "gram_product", recording)
    product = gram_products(matrix)
    vector = np.ones(shape[1])
    for _ in range(3):
        # W = ones: W^T W v = n (sum v) ones, exactly in float32 for these sizes
        assert np.array_equal(product(vector), np.full(shape[1], shape[0] * shape[1], float))
    assert directions == [False, False, False]
