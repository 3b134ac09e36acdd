"""Streaming moments, the variance z-test and interval, Kolmogorov-Smirnov, Holm and Bonferroni.

Expected values are worked out by hand or from an independent formula; coverage and size checks
use fixed seeds and binomial bounds of 3.5 standard deviations.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

from xavinit.core import stats
from xavinit.core.stats import (
    bonferroni_reject,
    holm_reject,
    kolmogorov_sf,
    ks_test,
    moments,
    moments_and_sample,
    variance_test,
)


def binomial_band(p: float, trials: int, sds: float = 3.5) -> tuple[float, float]:
    half = sds * math.sqrt(p * (1.0 - p) / trials)
    return max(p - half, 0.0), min(p + half, 1.0)


# ---------------------------------------------------------------------------------------------
# Moments


@pytest.fixture(scope="module")
def float32_matrix() -> np.ndarray:
    rng = np.random.default_rng(11)
    return (rng.standard_normal((700, 300)) * 0.3 + 0.05).astype(np.float32)


def test_moments_of_float32_equal_float64_numpy(float32_matrix):
    w = float32_matrix
    exact = w.astype(np.float64)
    found = moments(w)
    assert found.count == w.size
    assert found.mean == pytest.approx(np.mean(exact), rel=1e-12)
    assert found.mean_square == pytest.approx(np.mean(exact**2), rel=1e-12)
    assert found.minimum == float(exact.min())
    assert found.maximum == float(exact.max())
    assert found.finite is True
    assert found.variance == pytest.approx(np.var(exact), rel=1e-10)


def test_moments_accumulate_in_float64_not_float32():
    # Half the entries exceed 1 by 2^-20: the exact mean is 1 + 2^-21, which a float32
    # running sum (stalling at 2^24) could not give.
    w = np.full(1 << 20, 1.0, dtype=np.float32)
    w[::2] = 1.0 + 2.0**-20  # representable in float32
    found = moments(w)
    assert found.mean == pytest.approx(1.0 + 2.0**-21, rel=1e-14)


@pytest.mark.parametrize("chunk", [1, 7, 777, 1 << 16])
def test_streaming_in_small_chunks_equals_one_pass(float32_matrix, chunk):
    w = float32_matrix[:90] if chunk == 1 else float32_matrix
    whole = moments(w, chunk=w.size)
    pieces = moments(w, chunk=chunk)
    assert pieces.count == whole.count
    assert pieces.mean == pytest.approx(whole.mean, rel=1e-12)
    assert pieces.mean_square == pytest.approx(whole.mean_square, rel=1e-12)
    assert (pieces.minimum, pieces.maximum) == (whole.minimum, whole.maximum)


def test_moments_of_a_non_contiguous_view(float32_matrix):
    view = float32_matrix[::3, 1::2].T
    exact = np.array(view, dtype=np.float64)
    found = moments(view, chunk=500)
    assert found.count == exact.size
    assert found.mean_square == pytest.approx(np.mean(exact**2), rel=1e-12)
    assert (found.minimum, found.maximum) == (exact.min(), exact.max())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 5000, -1])
def test_non_finite_entries_are_detected(bad, where):
    w = np.random.default_rng(0).standard_normal(6000).astype(np.float32)
    w[where] = bad
    assert moments(w, chunk=1000).finite is False
    assert moments(w).finite is False


def test_integer_arrays_are_measured_exactly():
    w = np.array([[1, -2, 3], [4, -5, 6]], dtype=np.int16)
    found = moments(w)
    assert found.mean == pytest.approx(7 / 6)
    assert found.mean_square == pytest.approx(91 / 6)
    assert (found.minimum, found.maximum) == (-5, 6)


@pytest.mark.parametrize(("size", "wanted", "chunk"), [(10_000, 1000, 333), (1003, 100, 64)])
def test_scan_subsample_is_an_even_stride_over_the_whole_array(size, wanted, chunk):
    w = np.arange(size, dtype=np.float64).reshape(-1, 1) if size % 2 else np.arange(size) * 1.0
    found, sample = moments_and_sample(w, wanted, chunk=chunk)
    step = math.ceil(size / wanted)
    np.testing.assert_array_equal(sample, np.ravel(w)[::step])
    assert sample.size <= wanted
    assert found.count == size


def test_scan_without_subsample():
    _, sample = moments_and_sample(np.ones((4, 4)), 0)
    assert sample.size == 0


# ---------------------------------------------------------------------------------------------
# Variance test


def test_variance_test_by_hand():
    # m2 = 1.1, Var = 1, N = 800, normal (k = 3): SE = sqrt(2/800) = 0.05, z = 2,
    # p = erfc(2 / sqrt 2) = 0.0455003; 95% interval 1.1 +- 1.959964 * 1.1 * 0.05.
    test = variance_test(1.1, 1.0, 800, 3.0, 0.05)
    assert test.standard_error == pytest.approx(0.05, rel=1e-12)
    assert test.z == pytest.approx(2.0, rel=1e-12)
    assert test.p_value == pytest.approx(0.04550026, rel=1e-6)
    assert test.ci_low == pytest.approx(1.1 - 0.10779802, rel=1e-7)
    assert test.ci_high == pytest.approx(1.1 + 0.10779802, rel=1e-7)


def test_variance_test_uniform_kurtosis_by_hand():
    # Uniform (k = 9/5), Var = 0.01, N = 2000: SE = 0.01 sqrt(0.8 / 2000) = 2e-4.
    test = variance_test(0.01 - 3e-4, 0.01, 2000, 1.8, 0.01)
    assert test.standard_error == pytest.approx(2e-4, rel=1e-12)
    assert test.z == pytest.approx(-1.5, rel=1e-9)
    assert test.p_value == pytest.approx(math.erfc(1.5 / math.sqrt(2)), rel=1e-12)
    assert test.p_value == pytest.approx(0.1336144, rel=1e-6)


def test_variance_interval_covers_the_truth_at_its_level():
    # 300 uniform samples of 2000 at alpha = 0.1: coverage 0.9 within binomial bounds, and the
    # variance test's rejection rate 0.1 likewise.
    seeds, n, alpha, var = 300, 2000, 0.1, 1.0 / 3.0
    covered = rejected = 0
    for seed in range(seeds):
        x = np.random.default_rng(seed).uniform(-1.0, 1.0, n)
        test = variance_test(float(np.mean(x**2)), var, n, 9.0 / 5.0, alpha)
        covered += test.ci_low <= var <= test.ci_high
        rejected += test.p_value <= alpha
    low, high = binomial_band(1.0 - alpha, seeds)
    assert low <= covered / seeds <= high
    low, high = binomial_band(alpha, seeds)
    assert low <= rejected / seeds <= high


# ---------------------------------------------------------------------------------------------
# Kolmogorov distribution and the KS test


def kolmogorov_cdf_theta_form(x: float) -> float:
    """P(K <= x) = sqrt(2 pi) / x sum_{j>=1} exp(-(2j-1)^2 pi^2 / (8 x^2)): the other series,
    independent of the alternating one the code sums."""
    return (
        math.sqrt(2.0 * math.pi)
        / x
        * sum(math.exp(-((2 * j - 1) ** 2) * math.pi**2 / (8.0 * x * x)) for j in range(1, 50))
    )


@pytest.mark.parametrize(
    ("x", "tail"),
    [
        # Critical values of the Kolmogorov distribution, as tabulated.
        (1.2238, 0.10),
        (1.3581, 0.05),
        (1.4802, 0.025),
        (1.6276, 0.01),
        (1.9495, 0.001),
        (0.8276, 0.50),
    ],
)
def test_kolmogorov_sf_at_table_values(x, tail):
    assert kolmogorov_sf(x) == pytest.approx(tail, rel=2e-3)


def test_kolmogorov_sf_brief_points():
    # P(K > 1.36) = 2 (e^{-2 * 1.36^2} - e^{-8 * 1.36^2} + ...) = 0.04949
    assert kolmogorov_sf(1.36) == pytest.approx(0.0494859, abs=1e-6)
    # P(K > 1.63) = 0.009846
    assert kolmogorov_sf(1.63) == pytest.approx(0.0098464, abs=1e-6)


@pytest.mark.parametrize("x", [0.25, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
def test_kolmogorov_sf_matches_the_theta_series(x):
    assert kolmogorov_sf(x) == pytest.approx(1.0 - kolmogorov_cdf_theta_form(x), abs=1e-12)


def test_kolmogorov_sf_limits():
    assert kolmogorov_sf(0.0) == 1.0
    assert kolmogorov_sf(0.1) == 1.0
    assert kolmogorov_sf(10.0) == pytest.approx(0.0, abs=1e-80)
    values = [kolmogorov_sf(x) for x in np.linspace(0.1, 3.0, 60)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def uniform01_cdf(x):
    return np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)


def test_ks_statistic_by_hand():
    # Sample 0.1, 0.4, 0.7 against U(0, 1): D+ = max(1/3 - 0.1, 2/3 - 0.4, 1 - 0.7) = 0.3,
    # D- = max(0.1 - 0, 0.4 - 1/3, 0.7 - 2/3) = 0.1, so D = 0.3.
    d, p = ks_test(np.array([0.7, 0.1, 0.4]), uniform01_cdf)
    assert d == pytest.approx(0.3, abs=1e-12)
    root = math.sqrt(3.0)
    assert p == pytest.approx(1.0 - kolmogorov_cdf_theta_form((root + 0.12 + 0.11 / root) * 0.3))
    # D- wins: 0.9, 0.95 against U(0, 1): D- = max(0.9, 0.95 - 0.5) = 0.9.
    d, _ = ks_test(np.array([0.95, 0.9]), uniform01_cdf)
    assert d == pytest.approx(0.9, abs=1e-12)


def test_ks_statistic_equals_brute_force():
    x = np.random.default_rng(4).uniform(0.0, 1.0, 257)
    d, _ = ks_test(x, uniform01_cdf)
    # sup over t of |F_n(t) - t|, checked just before and at every data point.
    xs = np.sort(x)
    at = np.arange(1, xs.size + 1) / xs.size
    before = np.arange(0, xs.size) / xs.size
    brute = max(np.max(np.abs(at - xs)), np.max(np.abs(before - xs)))
    assert d == pytest.approx(brute, abs=1e-15)


def test_ks_test_right_and_wrong_cdf():
    x = np.random.default_rng(2010).uniform(-1.0, 1.0, 2000)
    _, p_right = ks_test(x, lambda t: np.clip((t + 1.0) / 2.0, 0.0, 1.0))
    assert p_right > 0.01
    # U(-1, 1) against U(-1.2, 1.2): D is about 1/12, sqrt(2000) D = 3.7, p ~ 1e-12.
    d, p_wrong = ks_test(x, lambda t: np.clip((t + 1.2) / 2.4, 0.0, 1.0))
    assert d == pytest.approx(1.0 / 12.0, abs=0.02)
    assert p_wrong < 1e-8


def test_ks_test_size_with_small_samples():
    # With Stephens' correction the p-value is calibrated even for n = 20.
    trials, n, alpha = 1000, 20, 0.05
    rng = np.random.default_rng(99)
    rejected = sum(ks_test(rng.uniform(0, 1, n), uniform01_cdf)[1] <= alpha for _ in range(trials))
    low, high = binomial_band(alpha, trials)
    assert low <= rejected / trials <= high


# ---------------------------------------------------------------------------------------------
# Multiple testing


def test_holm_by_hand():
    # Sorted: 0.005 <= 0.05/4 reject; 0.01 <= 0.05/3 reject; 0.03 > 0.05/2 stop.
    assert holm_reject([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    # All four pass their step: 0.005 <= .0125, 0.01 <= .0167, 0.015 <= .025, 0.03 <= .05.
    assert holm_reject([0.01, 0.015, 0.03, 0.005], 0.05) == [True, True, True, True]
    # Step-down stops at the first failure even when a later p would pass its own threshold:
    # 0.02 > 0.05/3, so 0.022 (<= 0.05/2) is not rejected either.
    assert holm_reject([0.022, 0.02, 0.9], 0.05) == [False, False, False]
    # Ties, and p equal to the threshold counts as a rejection.
    assert holm_reject([0.025, 0.025], 0.05) == [True, True]
    assert holm_reject([0.04], 0.05) == [True]
    assert holm_reject([], 0.05) == []


def test_bonferroni_by_hand():
    assert bonferroni_reject([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    # Holm rejects all four of these; Bonferroni (alpha/4 = 0.0125) only two.
    assert bonferroni_reject([0.01, 0.015, 0.03, 0.005], 0.05) == [True, False, False, True]
    assert bonferroni_reject([0.0125, 0.0126], 0.025) == [True, False]
    assert bonferroni_reject([], 0.05) == []


def test_corrections_registry():
    assert stats.CORRECTIONS["holm"] is holm_reject
    assert stats.CORRECTIONS["bonferroni"] is bonferroni_reject


def test_normal_helpers():
    assert stats.normal_two_sided_p(1.959963984540054) == pytest.approx(0.05, rel=1e-12)
    assert stats.normal_two_sided_p(-1.959963984540054) == pytest.approx(0.05, rel=1e-12)
    assert stats.normal_quantile(0.975) == pytest.approx(1.959963984540054, rel=1e-12)


# --- the sort-free KS distance, the direct CDF interpolation, the chunk-fed scanner ---------


def _sorted_ks_distance(u: np.ndarray) -> float:
    """The textbook formula on the sorted values: max(i/n - u_(i), u_(i) - (i-1)/n)."""
    x = np.sort(u)
    n = x.size
    gap = x - np.arange(1, n + 1, dtype=np.float64) / n
    return max(-float(gap.min()), float(gap.max()) + 1.0 / n)


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 40_001])
def test_ks_distance_unsorted_is_the_sorted_formula_bit_for_bit(n: int) -> None:
    from xavinit.core.stats import ks_distance_unsorted

    rng = np.random.default_rng(n)
    cases = [
        rng.random(n),  # the null hypothesis
        rng.random(n) ** 1.3,  # a wrong law
        rng.random(n) * 0.5,  # far off: every bucket above the middle is empty
        np.round(rng.random(n), 2),  # ties
        np.concatenate([[0.0, 1.0], rng.random(max(n - 2, 0))])[:n],  # the ends of [0, 1]
    ]
    for u in cases:
        assert ks_distance_unsorted(u) == _sorted_ks_distance(u)


def test_normal_cdf_of_points_in_random_order_is_numpys_interpolation_bit_for_bit() -> None:
    from xavinit.core.stats import _normal_cdf_table, normal_cdf

    grid, values = _normal_cdf_table()
    rng = np.random.default_rng(5)
    z = rng.standard_normal(50_000) * 3.0
    on_grid = grid[::10]
    z[: on_grid.size] = on_grid  # on the grid's own points
    z[-4:] = [-20.0, 20.0, -9.0, 9.0]  # beyond and at its ends
    z[-8:-4] = np.nextafter(grid[100:104], 10.0)  # a rounding away from a grid point
    z[-12:-8] = np.nextafter(grid[100:104], -10.0)
    z[-13] = np.nan
    z[-15:-13] = [np.inf, -np.inf]
    expected = np.interp(z, grid, values)
    got = normal_cdf(z)
    assert np.array_equal(got, expected, equal_nan=True)


def test_a_scanner_fed_while_sampling_gives_the_scan_of_the_matrix() -> None:
    from xavinit.core.schemes import get_scheme
    from xavinit.core.stats import Scanner

    for spec, shape in itertools.product(
        ("normalized", "xavier-normal", "glorot-normal-truncated"), ((300, 700), (1001, 1003))
    ):
        out = np.empty(shape, dtype=np.float32)
        for buffer in (None, np.empty(4 << 16)):  # one row at a time, or a piece at a time
            scanner = Scanner(out.size, out.dtype, 5000, buffer=buffer)
            get_scheme(spec).sample(shape, np.random.default_rng(1), out=out, observe=scanner.add)
            fed, fed_sample = scanner.result()
            whole, whole_sample = moments_and_sample(out, 5000)
            assert fed == whole
            assert np.array_equal(fed_sample, whole_sample)


def _row_by_row(flat: np.ndarray, chunk: int) -> tuple[float, float]:
    """The scanner's sums written out: each ``chunk``-entry row widened to float64 and summed
    alone by numpy's 1-D pairwise reduction, the rows added in order."""
    total = total_sq = 0.0
    for start in range(0, flat.size, chunk):
        row = flat[start : start + chunk].astype(np.float64)
        total += float(np.add.reduce(row))
        total_sq += float(np.add.reduce(row * row))
    return total, total_sq


@pytest.mark.parametrize(
    ("chunk", "rows", "buffer_rows"),
    [(256, 1, 1), (256, 4, 4), (256, 4, 1), (256, 3, 2), (256, 5, 8), (stats.CHUNK, 4, 4)],
)
def test_a_scanner_fed_several_rows_a_piece_sums_each_row_alone(chunk, rows, buffer_rows):
    """Pieces of several rows (summed by one 2-D reduction, or in parts when the buffer is
    smaller) give each row's own pairwise sums, added in order: bit for bit the 1-D scan,
    at the rows init and propagate use too."""
    from xavinit.core.stats import Scanner

    size = 5 * chunk + 123 if chunk == stats.CHUNK else 23_456
    flat = np.random.default_rng(4).standard_normal(size).astype(np.float32) * 0.3 + 0.71
    scanner = Scanner(flat.size, flat.dtype, 700, chunk, buffer=np.empty(buffer_rows * chunk))
    for start in range(0, flat.size, rows * chunk):
        scanner.add(flat[start : start + rows * chunk])
    fed, fed_sample = scanner.result()
    total, total_sq = _row_by_row(flat, chunk)
    assert fed.mean == total / flat.size
    assert fed.mean_square == total_sq / flat.size
    assert (fed.minimum, fed.maximum) == (float(flat.min()), float(flat.max()))
    whole, whole_sample = moments_and_sample(flat, 700, chunk=chunk)
    assert fed == whole
    assert np.array_equal(fed_sample, whole_sample)


def test_a_scanner_refuses_a_piece_that_starts_inside_a_row():
    from xavinit.core.stats import Scanner

    with pytest.raises(ValueError, match="cannot hold a row"):
        Scanner(5000, np.dtype(np.float32), 0, 1000, buffer=np.empty(999))

    scanner = Scanner(5000, np.dtype(np.float32), 0, 1000)
    scanner.add(np.ones(1500, dtype=np.float32))  # one row and a half: only the last may be
    with pytest.raises(ValueError, match="whole number of rows"):
        scanner.add(np.ones(1000, dtype=np.float32))


def test_a_draw_measured_as_it_is_drawn_is_the_measure_of_the_matrix() -> None:
    """``draw_and_measure`` (init's draw): the matrix of a plain draw and :func:`measure`'s
    numbers, with a buffer of one row, of a piece, or none."""
    from xavinit.core.schemes import get_scheme
    from xavinit.core.verification import draw_and_measure, measure

    for spec, shape in itertools.product(("normalized", "glorot-normal-truncated"), [(700, 999)]):
        scheme = get_scheme(spec)
        plain = scheme.sample(shape, np.random.default_rng(2))
        whole = measure(plain, 4000)
        for widened in (None, np.empty(stats.CHUNK), np.empty(4 * stats.CHUNK)):
            out = np.empty(shape, dtype=np.float32)
            found = draw_and_measure(scheme, out, np.random.default_rng(2), 4000, widened=widened)
            assert np.array_equal(out, plain)
            assert found.moments == whole.moments
            assert np.array_equal(found.sample, whole.sample)


@pytest.mark.parametrize(
    "spec", ["xavier-normal", "glorot-normal-truncated", "trunc-normal:std=0.5", "he-normal"]
)
def test_ks_from_table_cells_is_the_sorted_formula_bit_for_bit(spec: str) -> None:
    """The KS distance of a normal law found from the CDF table's cells (the CDF of the few
    deciding points only) is the textbook formula on every point's CDF, sorted."""
    from xavinit.core.schemes import get_scheme

    scheme = get_scheme(spec)
    rng = np.random.default_rng(11)
    for n in (1, 3, 1000, 30_000):
        x = scheme.sample((n, 1), rng).ravel()
        cases = [
            x,  # the null hypothesis
            x * 1.05,  # a wrong variance
            x * 0.5 + 0.002,  # far off, shifted
            np.round(x, 2),  # ties
            x * 1000.0,  # beyond the table's ends
        ]
        for sample in cases:
            cdf = functools.partial(scheme.cdf, fan_in=n, fan_out=1)
            expected = _sorted_ks_distance(cdf(sample))
            cells = scheme.cdf_cells(sample, n, 1)
            assert cells is not None
            got = stats.ks_distance_cells(*cells, functools.partial(_cdf_of, cdf, sample))
            assert got == expected
            d, _ = ks_test(
                sample, cdf, cells=functools.partial(scheme.cdf_cells, fan_in=n, fan_out=1)
            )
            assert d == expected


def _cdf_of(cdf, sample: np.ndarray, members: np.ndarray) -> np.ndarray:
    return cdf(sample[members])


def test_normal_cdf_cells_hold_each_points_cdf_between_their_edges() -> None:
    from xavinit.core.stats import _normal_cdf_table, normal_cdf, normal_cdf_cells

    grid, _ = _normal_cdf_table()
    z = np.concatenate(
        [
            np.random.default_rng(2).standard_normal(20_000) * 4.0,
            grid[::50],  # on grid points
            np.nextafter(grid[::50], 10.0),
            np.nextafter(grid[::50], -10.0),
            [-1e300, -9.0, 9.0, 1e300],
        ]
    )
    cell, edges = normal_cdf_cells(z * 0.25, 0.25)
    u = normal_cdf(z)
    assert cell.min() >= 0 and cell.max() <= edges.size - 2
    assert np.all(edges[cell] - 1e-15 <= u) and np.all(u <= edges[cell + 1] + 1e-15)
    assert np.all(np.diff(cell[np.argsort(z, kind="stable")]) >= 0)  # monotone in z


def test_variance_p_values_are_the_scalar_tests_bit_for_bit():
    """The batch over a tensor's candidates gives variance_test's p-value and
    variance_interval_p's, the same doubles (compared as their hex texts), over scales from
    1e-30 to 1e30, counts from 1 to 1e9 and the kurtoses of the laws (uniform 1.8, normal 3,
    truncated ones between)."""
    from xavinit.core.stats import variance_interval_p, variance_p_values, variance_test

    rng = np.random.default_rng(20)
    for _ in range(200):
        scale = 10.0 ** rng.uniform(-30, 30)
        observed = scale * rng.uniform(0.2, 3.0)
        expected = list(scale * rng.uniform(0.1, 4.0, size=15))
        kurtosis = list(rng.choice([1.8, 3.0, 2.366, 2.8], size=15))
        count = int(10 ** rng.uniform(0, 9))
        tolerance = float(rng.choice([0.0, 0.01, 0.05]))
        batch = variance_p_values(observed, expected, count, kurtosis, tolerance)
        for (point, interval), v, k in zip(batch, expected, kurtosis, strict=True):
            assert point.hex() == variance_test(observed, v, count, k, 0.01).p_value.hex()
            assert interval.hex() == variance_interval_p(observed, v, count, k, tolerance).hex()


def test_kolmogorov_sf_sums_the_series_term_by_term() -> None:
    """P(K > x) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 x^2), the terms written out here one by
    one (left to right, until one is below 1e-16): the same number, bit for bit, at the KS
    statistics a ranking meets (0.2 to 3), and known values (P(K > 1.36) = 0.0494)."""
    from xavinit.core.stats import kolmogorov_sf

    def series(x: float) -> float:
        total, j = 0.0, 1
        while True:
            term = math.exp(-2.0 * j * j * x * x)
            total = total + term if j % 2 else total - term
            if term < 1e-16 or j == 100:
                return min(max(2.0 * total, 0.0), 1.0)
            j += 1

    for x in np.linspace(0.2, 3.0, 2001).tolist():
        assert kolmogorov_sf(x) == series(x)
    assert kolmogorov_sf(0.1) == 1.0
    assert abs(kolmogorov_sf(1.36) - 0.0494) < 5e-4
