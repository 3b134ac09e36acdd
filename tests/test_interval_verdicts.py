"""Verdicts users can rely on in CI: interval nulls that never false-alarm on a correct sampler,
however large the matrix, and still catch deviations that matter.

Calibration: a correct sampler fails at most alpha of the time, at every size (the interval
null's least favourable point is its edge, so at the exact formula the rate is far below alpha).
Power: a deviation beyond the tolerance fails once the standard error is small enough; each
case's size is chosen so that ``(deviation - tolerance) / se >= 3.5`` by the formula, computed
here by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit import get_scheme, verify
from xavinit.cli import app
from xavinit.core.stats import ks_interval_p, variance_interval_p

ALPHA = 0.01


def _binomial_upper(trials: int, rate: float, tail: float = 1e-4) -> int:
    """The smallest k with P(Binomial(trials, rate) > k) < tail (exact sum)."""
    total = 0.0
    for k in range(trials + 1):
        total += math.comb(trials, k) * rate**k * (1 - rate) ** (trials - k)
        if 1.0 - total < tail:
            return k
    return trials


@pytest.mark.parametrize(
    ("spec", "shape", "seeds"),
    [
        ("normalized", (10, 10), 300),  # n = 100
        ("xavier-normal", (100, 100), 300),  # n = 1e4
        ("he-normal-truncated", (300, 400), 100),  # n = 1.2e5
        ("normalized", (2000, 2000), 12),  # n = 4e6: no false alarm at any seed
    ],
)
def test_a_correct_sampler_fails_at_most_alpha_of_the_time(spec, shape, seeds):
    scheme = get_scheme(spec)
    failures = 0
    for seed in range(seeds):
        weights = scheme.sample(shape, np.random.default_rng(seed))
        failures += not verify(weights, scheme, ALPHA).passed
    assert failures <= _binomial_upper(seeds, ALPHA), (failures, seeds)


def test_the_readme_examples_that_false_alarmed_at_the_default_seed_now_pass():
    runner = CliRunner()
    for args in (
        ["-s", "variance-scaling:scale=2,mode=fan_out,distribution=truncated_normal"],
        ["--layers", "1024,1000,500,10", "-s", "xavier-normal", "-s", "he-normal"],
    ):
        result = runner.invoke(app, ["init", *args, "-q", "-f", "json"])
        assert result.exit_code == 0, result.stdout[-2000:]


def _scaled(spec: str, shape: tuple[int, int], variance_factor: float, seed: int = 0) -> np.ndarray:
    weights = get_scheme(spec).sample(shape, np.random.default_rng(seed), dtype=np.float64)
    return weights * math.sqrt(variance_factor)


@pytest.mark.parametrize(
    ("spec", "kurtosis", "shape"),
    [("normalized", 9 / 5, (250, 400)), ("xavier-normal", 3.0, (500, 500))],
)
def test_a_two_percent_variance_error_fails(spec, kurtosis, shape):
    count = shape[0] * shape[1]
    z = (0.02 - 0.01) / (1.01 * math.sqrt((kurtosis - 1) / count))
    assert z >= 3.5  # the size is large enough to show it, by the formula
    check = verify(_scaled(spec, shape, 1.02), spec, ALPHA)
    assert not check.passed and "variance" in check.failures
    assert check.variance_interval_p < ALPHA / 2


def test_a_wrong_fan_fails():
    weights = get_scheme("he-normal").sample((500, 1000), np.random.default_rng(1))
    check = verify(weights.T, "he-normal", ALPHA)  # read as (1000, 500): Var 2/1000, not 2/500
    assert not check.passed and "variance" in check.failures


def test_uniform_read_as_normal_fails_on_its_distribution():
    weights = get_scheme("normalized").sample((250, 400), np.random.default_rng(2))
    check = verify(weights, "xavier-normal", ALPHA)  # same variance, another law
    assert "distribution" in check.failures and "variance" not in check.failures


@pytest.mark.parametrize("count", [10_000, 1_000_000])
def test_what_a_size_can_detect(count):
    """The smallest variance deviation shown at alpha: tolerance + z_alpha * se (documented)."""
    z = 2.3263478740408408  # Phi^-1(0.99): the mirror tail adds < 1e-6 at these sizes
    se = math.sqrt((9 / 5 - 1) / count)
    detectable = 0.01 + z * se * 1.01
    just_beyond = variance_interval_p(1 + detectable * 1.001, 1.0, count, 9 / 5, 0.01)
    just_within = variance_interval_p(1 + detectable * 0.98, 1.0, count, 9 / 5, 0.01)
    assert just_beyond <= ALPHA < just_within


def test_interval_p_values_by_hand():
    # r = 0.03, tolerance 0.01, se = 1.01 sqrt(2 / 1e4) = 0.0142836: the chance that a normal
    # centred on the edge 0.01 lands at least 0.02 beyond it, or at least 0.04 below -0.03.
    se = 1.01 * math.sqrt(2 / 1e4)
    tail = 0.5 * math.erfc(0.02 / (se * math.sqrt(2))) + 0.5 * math.erfc(0.04 / (se * math.sqrt(2)))
    assert variance_interval_p(1.03, 1.0, 10_000, 3.0, 0.01) == pytest.approx(tail, rel=1e-12)
    # Tolerance 0 is the two-sided z-test: z = 0.03 / sqrt(2 / 1e4) = 2.1213.
    z = 0.03 / math.sqrt(2 / 1e4)
    assert variance_interval_p(1.03, 1.0, 10_000, 3.0, 0.0) == pytest.approx(
        math.erfc(z / math.sqrt(2)), rel=1e-12
    )
    assert ks_interval_p(0.015, 10_000, 0.02) == 1.0
    # D - d = 0.02, scaled by sqrt(n) + 0.12 + 0.11 / sqrt(n) = 100.1211: x = 2.00242
    x = 0.02 * (100 + 0.12 + 0.0011)
    expected = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * x * x) for j in range(1, 50))
    assert ks_interval_p(0.04, 10_000, 0.02) == pytest.approx(expected, rel=1e-9)


def test_a_constant_or_zero_float16_matrix_is_never_orthogonal_nor_random():
    for weights in (
        np.zeros((300, 300), np.float16),
        np.full((300, 300), 1 / math.sqrt(300), np.float16),
    ):
        assert not verify(weights, "orthogonal").passed
        for spec in ("standard", "normalized", "xavier-normal"):
            assert not verify(weights, spec).passed
    torch_default = get_scheme("standard").sample((300, 300), np.random.default_rng(3))
    assert not verify(torch_default.astype(np.float16), "orthogonal").passed
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((300, 300)))
    assert verify(q.astype(np.float16), "orthogonal").passed
