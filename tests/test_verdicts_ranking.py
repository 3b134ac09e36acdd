"""The one-pass ranking (every candidate law's KS test from one CDF array) against a plain
per-candidate computation written here from the formulas (PAPER.md; Stephens 1970 for the KS
p-value), candidate by candidate, with no call into the ranking code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.core.schemes import get_scheme
from xavinit.core.verdicts import cdf_rows
from xavinit.experiments.check import check_weights

FAN_IN, FAN_OUT = 12, 8  # a PyTorch (out, in) = (8, 12) weight
ALPHA = 0.01
TOLERANCE = 0.01  # init's interval null: a 1% deviation of the variance does not matter


def phi_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def truncated_moments(c: float) -> tuple[float, float]:
    """Var and kurtosis of N(0, 1) cut at +-c (integration by parts)."""
    mass = 2.0 * phi_cdf(c) - 1.0
    density = math.exp(-c * c / 2.0) / math.sqrt(2.0 * math.pi)
    var = 1.0 - 2.0 * c * density / mass
    fourth = 3.0 - 2.0 * (c**3 + 3.0 * c) * density / mass
    return var, fourth / var**2


def law(name: str) -> tuple[str, float, float]:
    """(distribution, Var, kurtosis) of each fan-based candidate on (fan_in, fan_out)."""
    variance = {
        "standard": 1.0 / (3.0 * FAN_IN),
        "normalized": 2.0 / (FAN_IN + FAN_OUT),
        "xavier-normal": 2.0 / (FAN_IN + FAN_OUT),
        "glorot-normal-truncated": 2.0 / (FAN_IN + FAN_OUT),
        "he-uniform": 2.0 / FAN_IN,
        "he-normal": 2.0 / FAN_IN,
        "he-normal-truncated": 2.0 / FAN_IN,
        "lecun-uniform": 1.0 / FAN_IN,
        "lecun-normal": 1.0 / FAN_IN,
        "lecun-normal-truncated": 1.0 / FAN_IN,
        "he-normal:mode=fan_out": 2.0 / FAN_OUT,
        "he-uniform:mode=fan_out": 2.0 / FAN_OUT,
    }[name]
    if "uniform" in name or name in ("standard", "normalized"):
        return "uniform", variance, 9.0 / 5.0
    if "truncated" in name:
        return "truncated", variance, truncated_moments(2.0)[1]
    return "normal", variance, 3.0


def cdf(kind: str, variance: float, x: float) -> float:
    if kind == "uniform":
        bound = math.sqrt(3.0 * variance)
        return min(1.0, max(0.0, (x + bound) / (2.0 * bound)))
    if kind == "normal":
        return phi_cdf(x / math.sqrt(variance))
    std = math.sqrt(variance / truncated_moments(2.0)[0])
    return min(1.0, max(0.0, (phi_cdf(x / std) - phi_cdf(-2.0)) / (2.0 * phi_cdf(2.0) - 1.0)))


def ks_p(values: np.ndarray, kind: str, variance: float) -> float:
    """Stephens' p-value: Q_KS((sqrt n + 0.12 + 0.11 / sqrt n) D)."""
    x = sorted(float(v) for v in values)
    n = len(x)
    d = max(max((i + 1) / n - cdf(kind, variance, v), cdf(kind, variance, v) - i / n)
            for i, v in enumerate(x))  # fmt: skip
    t = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    if t < 0.2:
        return 1.0
    q = 2.0 * sum((-1) ** (j - 1) * math.exp(-2.0 * j * j * t * t) for j in range(1, 101))
    return min(1.0, max(0.0, q))


def variance_ps(m2: float, n: int, variance: float, kurtosis: float) -> tuple[float, float]:
    """Point-null z-test p and the interval-null p of ``|m2 / Var - 1| <= 1%``."""
    relative = math.sqrt((kurtosis - 1.0) / n)
    z = (m2 - variance) / (variance * relative)
    point = math.erfc(abs(z) / math.sqrt(2.0))
    r = abs(m2 / variance - 1.0)
    se = (1.0 + TOLERANCE) * relative
    interval = 0.5 * math.erfc((r - TOLERANCE) / (se * math.sqrt(2.0)))
    interval += 0.5 * math.erfc((r + TOLERANCE) / (se * math.sqrt(2.0)))
    return point, min(1.0, interval)


def draws() -> list[np.ndarray]:
    rng = np.random.default_rng(20)
    xavier = math.sqrt(6.0 / (FAN_IN + FAN_OUT))
    normal = rng.standard_normal((3, FAN_OUT, FAN_IN)) * math.sqrt(2.0 / FAN_IN)
    return [
        rng.uniform(-xavier, xavier, (FAN_OUT, FAN_IN)),
        rng.uniform(-1.0, 1.0, (FAN_OUT, FAN_IN)) / math.sqrt(FAN_IN),
        normal[0],
        np.clip(normal[1], -0.5, 0.5),  # cut: only a truncated or uniform law can fit
        rng.standard_normal((FAN_OUT, FAN_IN)) * 0.02,  # far from every fan-based law
    ]


@pytest.mark.parametrize("index", range(5))
def test_fan_based_rows_match_the_formulas(index: int) -> None:
    weights = draws()[index].astype(np.float32)
    row = check_weights({"fc.weight": weights}, layout="out-in").to_dict()["tensors"][0]
    assert (row["fan_in"], row["fan_out"]) == (FAN_IN, FAN_OUT)
    values = weights.astype(np.float64).reshape(-1)
    m2 = float(np.mean(values * values))
    seen = 0
    for candidate in row["candidates"]:
        name = candidate["scheme"]
        if ":" in name and not name.startswith("he-"):
            continue  # a fitted law: its scale comes from the data
        if name == "orthogonal":
            assert candidate["score"] == 0.0  # i.i.d. entries are not orthogonal
            continue
        seen += 1
        kind, variance, kurtosis = law(name)
        point, interval = variance_ps(m2, values.size, variance, kurtosis)
        assert candidate["expected_var"] == pytest.approx(variance, rel=1e-12)
        assert candidate["p_value"] == pytest.approx(point, rel=1e-4, abs=1e-300)
        if point < 1e-12:  # decisively off: no KS test, the interval test alone
            assert candidate["ks_p_value"] is None
            expected = interval
        else:
            ks = ks_p(values, kind, variance)
            assert candidate["ks_p_value"] == pytest.approx(ks, rel=1e-5, abs=1e-7)
            expected = min(interval, ks)
        bound = math.sqrt(3 * variance) if kind == "uniform" else None
        if kind == "truncated":
            bound = 2.0 * math.sqrt(variance / truncated_moments(2.0)[0])
        if bound is not None and np.max(np.abs(values)) > bound * (1 + 4 * 2.0**-23):
            continue  # entries past the bound: the score may be zeroed (tested elsewhere)
        assert candidate["score"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
        assert candidate["explains"] == (candidate["score"] > ALPHA)
    assert seen == 12


@pytest.mark.parametrize("index", range(5))
def test_rows_are_ranked_by_the_stated_order(index: int) -> None:
    """Fan-based laws that explain the tensor first, then by score, then by closeness of the
    variance; a tie keeps the candidates' list order."""
    weights = draws()[index].astype(np.float32)
    result = check_weights({"fc.weight": weights}, layout="out-in")
    rows = result.to_dict()["tensors"][0]["candidates"]

    def key(row: dict) -> tuple[float, float, float]:
        fitted = ":" in row["scheme"] and not row["scheme"].startswith("he-")
        preferred = 0.0 if (not fitted and row["score"] > ALPHA) else 1.0
        return preferred, -row["score"], abs(math.log1p(row["rel_error"]))

    keys = [key(r) for r in rows]
    assert keys == sorted(keys)
    assert len({r["scheme"] for r in rows}) == len(rows) >= 15


def test_cdf_rows_are_each_schemes_own_cdf_bit_for_bit() -> None:
    x = np.sort(np.random.default_rng(3).standard_normal(300) * 0.4)
    specs = ["normalized", "xavier-normal", "glorot-normal-truncated", "he-uniform",
             "normal:std=0.3", "uniform:a=0.9", "truncated-normal:std=0.4",
             "trunc-normal:std=0.5,a=-0.6,b=0.6"]  # fmt: skip
    schemes = [get_scheme(s) for s in specs]
    rows = cdf_rows(schemes, x, FAN_IN, FAN_OUT)
    for scheme, row in zip(schemes, rows, strict=True):
        assert np.array_equal(row, scheme.cdf(x, FAN_IN, FAN_OUT)), scheme.spec


def test_sample_variance_is_numpys_bit_for_bit() -> None:
    """The spread tests' sample variance is ``np.var(ddof=1)``, the same double (hex texts),
    for float64 and float32 sums of squares of 2 to 5,000 entries over many scales."""
    from xavinit.core.verdicts import sample_variance

    rng = np.random.default_rng(7)
    for size in [2, 3, 7, 8, 9, 16, 17, 100, 129, 5000]:
        for dtype in (np.float64, np.float32):
            values = (rng.chisquare(8, size) * 10.0 ** rng.uniform(-20, 20)).astype(dtype)
            assert sample_variance(values).hex() == float(np.var(values, ddof=1)).hex()
