"""verify(), its calibration and power, orthogonality, and ranking the schemes of a saved file.

Expected variances are written out from PAPER.md's formulas; rates over many seeds are judged
against binomial bounds of 3.5 standard deviations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.config import InitConfig
from xavinit.core.schemes import get_scheme
from xavinit.core.verification import Tolerance, verify
from xavinit.errors import XavinitError
from xavinit.experiments.init import run_init


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def binomial_band(p: float, trials: int, sds: float = 3.5) -> tuple[float, float]:
    half = sds * math.sqrt(p * (1.0 - p) / trials)
    return max(p - half, 0.0), min(p + half, 1.0)


# ---------------------------------------------------------------------------------------------
# Fields of one check, by hand


def test_verify_fields_by_hand():
    fi, fo = 200, 150
    w = get_scheme("normalized").sample((fi, fo), rng(1), dtype=np.float64)
    check = verify(w, "normalized", alpha=0.01)
    expected = 2.0 / (fi + fo)
    observed = float(np.mean(w**2))
    n = fi * fo
    assert (check.fan_in, check.fan_out, check.count) == (fi, fo, n)
    assert check.distribution == "uniform"
    assert check.expected_var == pytest.approx(expected, rel=1e-12)
    assert check.bound == pytest.approx(math.sqrt(6.0 / (fi + fo)), rel=1e-12)
    assert check.observed_var == pytest.approx(observed, rel=1e-12)
    assert check.rel_error == pytest.approx(observed / expected - 1.0, rel=1e-9)
    assert check.fan_in_var == pytest.approx(fi * observed, rel=1e-12)
    assert check.fan_out_var == pytest.approx(fo * observed, rel=1e-12)
    assert check.expected_fan_in_var == pytest.approx(fi * expected, rel=1e-12)
    # z = (m2 - Var) / (Var sqrt((9/5 - 1) / N)), two-sided normal p-value.
    z = (observed - expected) / (expected * math.sqrt(0.8 / n))
    assert check.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2.0)), rel=1e-9)
    assert check.ci_low < observed < check.ci_high
    assert check.ci_high - check.ci_low == pytest.approx(
        2 * 2.5758293035489 * observed * math.sqrt(0.8 / n), rel=1e-9
    )
    assert check.kurtosis == pytest.approx(1.8)
    assert check.ks_sample_size == n
    assert 0.0 < check.ks_p_value <= 1.0
    assert check.support_ok is True
    assert check.observed_min == pytest.approx(w.min()) and check.observed_max == pytest.approx(
        w.max()
    )
    assert check.passed and check.failures == []


def test_verify_accepts_a_scheme_object_and_lists():
    w = get_scheme("he-normal").sample((60, 40), rng(2))
    by_spec = verify(w, "he-normal")
    by_object = verify(w, get_scheme("he-normal"))
    assert by_spec.p_value == by_object.p_value
    assert verify(w.tolist(), "he-normal").expected_var == pytest.approx(2.0 / 60)


def test_out_in_layout_uses_the_second_axis_as_fan_in():
    # PyTorch stores (out, in): a (300, 100) tensor has fan_in 100, Var = 1 / (3 * 100).
    w_in_out = get_scheme("standard").sample((100, 300), rng(3), dtype=np.float64)
    torch_layout = w_in_out.T.copy()
    check = verify(torch_layout, "standard", layout="out-in")
    assert (check.fan_in, check.fan_out) == (100, 300)
    assert check.expected_var == pytest.approx(1.0 / 300.0, rel=1e-12)
    assert check.bound == pytest.approx(1.0 / math.sqrt(100.0), rel=1e-12)
    assert check.passed
    # Read the wrong way round, fan_in = 300 and Var = 1/900: three times too little.
    wrong = verify(torch_layout, "standard")
    assert (wrong.fan_in, wrong.fan_out) == (300, 100)
    assert not wrong.passed and "variance" in wrong.failures


def test_verify_rejects_an_unknown_layout():
    # A layout that is neither in-out nor out-in must not be read silently as out-in; the
    # underscore spelling is the same layout, as in the config (config.choice).
    w = get_scheme("standard").sample((100, 300), rng(3), dtype=np.float64)
    assert verify(w, "standard", layout="in-out").passed
    assert verify(w, "standard", layout="in_out").fan_in == 100
    with pytest.raises(XavinitError, match="layout"):
        verify(w, "standard", layout="sideways")


def test_verify_rejects_bad_arguments():
    w = get_scheme("standard").sample((10, 30), rng(3), dtype=np.float64)
    for kwargs in ({"alpha": 0.0}, {"alpha": 1.5}, {"ks_sample": 0}):
        with pytest.raises(XavinitError):
            verify(w, "standard", **kwargs)
    with pytest.raises(XavinitError, match="non-empty"):
        verify(np.zeros((0, 5)), "standard")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("spec", ["normalized", "he-normal", "orthogonal"])
def test_non_finite_weights_raise(spec, bad):
    w = get_scheme(spec).sample((50, 40), rng(4))
    w[10, 7] = bad
    with pytest.raises(XavinitError, match="NaN or infinite"):
        verify(w, spec)


@pytest.mark.parametrize("shape", [(100,), (2, 3, 4)])
def test_weights_must_be_a_matrix(shape):
    with pytest.raises(XavinitError, match="2-D"):
        verify(np.zeros(shape), "normalized")


def test_ks_sample_is_an_evenly_strided_subset():
    w = get_scheme("normalized").sample((40, 30), rng(5))
    # 1200 entries, at most 500: every ceil(1200 / 500) = 3rd entry, 400 of them.
    assert verify(w, "normalized", ks_sample=500).ks_sample_size == 400
    assert verify(w, "normalized").ks_sample_size == 1200


def test_default_ks_sample_has_the_power_limits_states():
    # 512 x 512 = 262,144 entries: the default sample is every 2nd, 2^17 of them. A truncated
    # normal with a normal's variance is 0.0167 from it in CDF: at n = 2^17 that is
    # sqrt(n) * 0.0167 = 6.05 against the 1.63 critical value, a miss below 1e-18 (limits.py).
    fi = fo = 512
    w = get_scheme("glorot-normal-truncated").sample((fi, fo), rng(11))
    assert verify(w, "glorot-normal-truncated").passed
    as_normal = verify(w, "xavier-normal")
    assert as_normal.ks_sample_size == 1 << 17
    assert as_normal.ks_statistic > 0.0167 - 4 * 0.5 / math.sqrt(1 << 17)
    assert as_normal.ks_p_value < 1e-6
    assert as_normal.p_value > 1e-3  # the variance is right: only the KS test sees the law
    assert not as_normal.passed


def test_a_single_entry_beyond_the_bound_fails_support():
    fi, fo = 300, 200
    w = get_scheme("normalized").sample((fi, fo), rng(6), dtype=np.float64)
    assert verify(w, "normalized").passed
    w[0, 0] = 1.01 * math.sqrt(6.0 / (fi + fo))
    check = verify(w, "normalized")
    assert check.support_ok is False
    assert not check.passed and "support" in check.failures


def test_float32_rounding_at_the_bound_is_not_a_support_failure():
    fi, fo = 64, 32
    bound = math.sqrt(6.0 / (fi + fo))
    w = np.full((fi, fo), 0.0, dtype=np.float32)
    w[0, 0] = np.float32(bound)  # rounds up or down by at most half an ulp
    w[0, 1] = -np.float32(bound)
    assert verify(w, "normalized").support_ok is True


# ---------------------------------------------------------------------------------------------
# Calibration of the point nulls (tolerance 0): a correct matrix fails at rate alpha, no more and
# not far less. tests/test_interval_verdicts.py checks the default interval nulls.


@pytest.mark.parametrize("spec", ["normalized", "he-normal", "glorot-normal-truncated"])
def test_false_failure_rate_is_alpha(spec):
    scheme = get_scheme(spec)
    seeds, alpha = 1000, 0.05
    failed = variance_failed = ks_failed = 0
    for seed in range(seeds):
        check = verify(  # the exact formula: point nulls, at rate alpha
            scheme.sample((40, 30), rng(seed)), scheme, alpha=alpha, tolerance=Tolerance(0, 0)
        )
        failed += not check.passed
        variance_failed += "variance" in check.failures
        ks_failed += "distribution" in check.failures
        assert "support" not in check.failures
    # Holm over two tests: the family fails when either p <= alpha / 2, at a rate just under
    # alpha (the two tests are nearly independent), and each test alone at about alpha / 2.
    low, high = binomial_band(alpha, seeds)
    assert low <= failed / seeds <= high
    low, high = binomial_band(alpha / 2, seeds)
    assert low <= variance_failed / seeds <= high
    assert low <= ks_failed / seeds <= high


# ---------------------------------------------------------------------------------------------
# Power


@pytest.fixture(scope="module")
def big_shape() -> tuple[int, int]:
    return (1000, 1000)


def test_correct_large_matrices_pass(big_shape):
    for spec in ("normalized", "xavier-normal", "glorot-normal-truncated"):
        w = get_scheme(spec).sample(big_shape, rng(7))
        check = verify(w, spec)
        assert check.passed, (spec, check.failures)


def test_five_percent_too_much_variance_fails(big_shape):
    fi, fo = big_shape
    bound = math.sqrt(6.0 / (fi + fo)) * math.sqrt(1.05)  # Var = 1.05 x 2 / (fi + fo)
    w = rng(8).uniform(-bound, bound, big_shape).astype(np.float32)
    check = verify(w, "normalized")
    assert not check.passed
    assert "variance" in check.failures
    # SE = Var sqrt(0.8 / 1e6): 5% is about 56 standard errors.
    assert check.rel_error == pytest.approx(0.05, abs=0.005)
    assert check.p_value < 1e-100


def test_five_percent_too_little_variance_fails_an_unbounded_scheme(big_shape):
    fi, fo = big_shape
    std = math.sqrt(0.95 * 2.0 / (fi + fo))
    w = (rng(9).standard_normal(big_shape) * std).astype(np.float32)
    check = verify(w, "xavier-normal")
    assert not check.passed
    assert "variance" in check.failures and "support" not in check.failures


def test_normal_matrix_checked_as_uniform_fails_the_distribution_test(big_shape):
    fi, fo = big_shape
    std = math.sqrt(2.0 / (fi + fo))  # exactly normalized's variance, but normal
    w = (rng(10).standard_normal(big_shape) * std).astype(np.float32)
    check = verify(w, "normalized")
    assert not check.passed
    assert "distribution" in check.failures
    assert "support" in check.failures  # a normal has 8% of its mass beyond sqrt(3) sigma
    assert check.ks_p_value < 1e-100


def test_truncated_and_plain_normal_are_told_apart(big_shape):
    truncated = get_scheme("glorot-normal-truncated").sample(big_shape, rng(11))
    plain = get_scheme("xavier-normal").sample(big_shape, rng(12))
    as_plain = verify(truncated, "xavier-normal")
    assert not as_plain.passed and "distribution" in as_plain.failures
    as_truncated = verify(plain, "glorot-normal-truncated")
    assert not as_truncated.passed
    assert "distribution" in as_truncated.failures and "support" in as_truncated.failures


# ---------------------------------------------------------------------------------------------
# Orthogonal


@pytest.mark.parametrize("shape", [(300, 200), (200, 300), (128, 128)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orthogonal_matrices_pass_and_gaussian_ones_fail(shape, dtype):
    w = get_scheme("orthogonal").sample(shape, rng(13), dtype=dtype)
    check = verify(w, "orthogonal")
    assert check.check == "orthogonality"
    assert check.passed and check.failures == []
    assert check.orthogonality_error < 1e-5
    assert check.expected_var == pytest.approx(1.0 / max(shape), rel=1e-12)
    assert check.observed_var == pytest.approx(1.0 / max(shape), rel=1e-5)
    # Same variance, not orthogonal.
    gaussian = (rng(14).standard_normal(shape) / math.sqrt(max(shape))).astype(dtype)
    bad = verify(gaussian, "orthogonal")
    assert not bad.passed and bad.failures == ["orthogonality"]
    assert bad.orthogonality_error > 0.1


def test_orthogonal_gain_is_checked():
    w = get_scheme("orthogonal:gain=2").sample((300, 200), rng(15))
    assert verify(w, "orthogonal:gain=2").passed
    assert not verify(w, "orthogonal").passed
    # 0.1% off in gain is 0.2% off in W^T W: far beyond rounding.
    slightly_off = get_scheme("orthogonal").sample((1000, 1000), rng(16)) * np.float32(1.001)
    check = verify(slightly_off, "orthogonal")
    assert not check.passed
    assert check.orthogonality_error == pytest.approx(0.002, rel=0.01)


def test_orthogonal_in_out_in_layout():
    w = get_scheme("orthogonal").sample((200, 300), rng(17))
    check = verify(w.T.copy(), "orthogonal", layout="out-in")
    assert check.passed
    assert (check.fan_in, check.fan_out) == (200, 300)


# ---------------------------------------------------------------------------------------------
# Ranking the known schemes for the matrices of a file


@pytest.fixture(scope="module")
def rankings(tmp_path_factory):
    shape = (512, 256)  # non-square: normalized (2/768) and lecun (1/512) differ
    drawn = ["standard", "he-normal", "orthogonal", "glorot-normal-truncated", "lecun-uniform"]
    arrays = {name: get_scheme(name).sample(shape, rng(100 + k)) for k, name in enumerate(drawn)}
    # Uniform with 1.3 x normalized's variance (Var = 1.3 x 2/768): no candidate has it.
    bound = math.sqrt(3.0 * 1.3 * 2.0 / 768.0)
    arrays["mystery"] = rng(200).uniform(-bound, bound, shape).astype(np.float32)
    arrays["bias"] = np.zeros(256, dtype=np.float32)
    path = tmp_path_factory.mktemp("weights") / "weights.npz"
    np.savez(path, **arrays)
    result = run_init(InitConfig.from_mapping({"check": str(path)}))
    return result, drawn


def test_ranking_names_the_scheme_each_matrix_was_drawn_with(rankings):
    result, drawn = rankings
    assert result.mode == "rank"
    assert result.skipped == ["bias"]
    by_array = {r.array: r for r in result.rankings}
    assert set(by_array) == {*drawn, "mystery"}
    for name in drawn:
        ranking = by_array[name]
        assert (ranking.fan_in, ranking.fan_out) == (512, 256)
        assert ranking.best == name, (name, ranking.candidates[:3])
        assert ranking.verdict.startswith(f"looks like {name}")
        assert ranking.candidates[0]["explains"] is True
        explaining = [
            c["scheme"] for c in ranking.candidates if c["explains"] and ":" not in c["scheme"]
        ]  # the known schemes; the fan-free laws fitted to the matrix (normal:std=S) fit too
        if name == "orthogonal":
            # Orthogonality holds to rounding (score 1); entries of a random rotation are also
            # close to N(0, 1/512), so lecun-normal (Var 1/fan_in = 1/512) may fit as well.
            assert ranking.candidates[0]["score"] == 1.0
            assert set(explaining) <= {"orthogonal", "lecun-normal"}
        else:
            # An i.i.d. draw is explained by its own scheme alone at this size.
            assert explaining == [name]


def test_ranking_says_when_no_scheme_explains_a_matrix(rankings):
    result, _ = rankings
    mystery = next(r for r in result.rankings if r.array == "mystery")
    assert mystery.verdict.startswith("no known scheme explains it; it fits the fan-free uniform")
    assert not any(c["explains"] for c in mystery.candidates if ":" not in c["scheme"])
    # The fitted bound is the largest entry times (N + 1) / N, within a hair of the true one.
    fitted = mystery.best.partition("=")[2]
    assert float(fitted) == pytest.approx(math.sqrt(3.0 * 1.3 * 2.0 / 768.0), rel=1e-3)


def test_ranking_respects_the_out_in_layout(tmp_path):
    # A standard matrix with fan_in 512 stored as PyTorch does, (out, in) = (256, 512).
    w = get_scheme("standard").sample((512, 256), rng(300)).T.copy()
    path = tmp_path / "linear.npy"
    np.save(path, w)
    torch_order = run_init(InitConfig.from_mapping({"check": str(path), "layout": "out-in"}))
    assert torch_order.rankings[0].best == "standard"
    assert (torch_order.rankings[0].fan_in, torch_order.rankings[0].fan_out) == (512, 256)
    # Read as (in, out), Var = 1/1536 matches no scheme for fan_in 256.
    paper_order = run_init(InitConfig.from_mapping({"check": str(path)}))
    assert paper_order.rankings[0].verdict.startswith("no known scheme explains it")


def test_check_mode_with_a_scheme(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(
        path,
        good=get_scheme("he-normal").sample((400, 300), rng(400)),
        bad=get_scheme("standard").sample((400, 300), rng(401)),
    )
    result = run_init(InitConfig.from_mapping({"check": str(path), "scheme": "he-normal"}))
    assert result.mode == "check"
    verdicts = {c.array: c.passed for c in result.layers}
    assert verdicts == {"good": True, "bad": False}
    assert result.passed is False
    good = next(c for c in result.layers if c.array == "good")
    assert good.expected_var == pytest.approx(2.0 / 400, rel=1e-12)
