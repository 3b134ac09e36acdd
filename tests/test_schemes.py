"""Schemes: presets, parameters, aliases, errors and sampling, checked against PAPER.md's formulas.

Every expected number is written out by hand from the formula (never taken from the code under
test); the statistical checks use fixed seeds and tolerances of several standard errors,
``SE(mean of squares) = Var sqrt((kurtosis - 1) / N)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.core.schemes import activation_gain, get_scheme
from xavinit.errors import XavinitError

SHAPES = [(1024, 1000), (784, 10), (3, 7)]


def big_phi(x: float) -> float:
    """Standard normal CDF, from math.erf."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def small_phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


# Variance of N(0, 1) cut at +-2: 1 - 2 c phi(c) / (2 Phi(c) - 1) with c = 2.
TRUNC_VAR = 1.0 - 4.0 * small_phi(2.0) / (2.0 * big_phi(2.0) - 1.0)
KERAS_CORRECTION = 0.87962566103423978  # Keras/JAX's constant, quoted in PAPER.md


def _trapezoid(y: np.ndarray, step: float) -> float:
    return float(step * (y.sum() - 0.5 * (y[0] + y[-1])))


def _truncated_moments_by_quadrature() -> tuple[float, float]:
    """E[z^2] and E[z^4] of N(0, 1) cut at +-2, by the trapezoid rule on a fine grid."""
    z, step = np.linspace(-2.0, 2.0, 400_001, retstep=True)
    density = np.exp(-0.5 * z * z)
    mass = _trapezoid(density, step)
    return _trapezoid(z**2 * density, step) / mass, _trapezoid(z**4 * density, step) / mass


_M2, _M4 = _truncated_moments_by_quadrature()
TRUNC_KURTOSIS = _M4 / _M2**2  # about 2.366 (PAPER.md)
KURTOSIS = {"uniform": 9.0 / 5.0, "normal": 3.0, "truncated": TRUNC_KURTOSIS}


def test_truncation_constants_by_hand():
    # The closed form and the quadrature agree, and the std correction is Keras' constant.
    assert abs(TRUNC_VAR - 0.77374) < 1e-5
    assert abs(_M2 / TRUNC_VAR - 1.0) < 1e-9
    assert abs(math.sqrt(TRUNC_VAR) / KERAS_CORRECTION - 1.0) < 1e-12
    assert abs(TRUNC_KURTOSIS - 2.366) < 1e-3


# ---------------------------------------------------------------------------------------------
# Expected variance, bound and std of every preset, written from the formulas.
# Each entry: spec -> (kind, variance(fi, fo), std(fi, fo) or None, bound(fi, fo) or None).


def _uniform(var):
    return ("uniform", var, lambda fi, fo: None, lambda fi, fo: math.sqrt(3.0 * var(fi, fo)))


def _normal(var):
    return ("normal", var, lambda fi, fo: math.sqrt(var(fi, fo)), lambda fi, fo: None)


def _truncated(var):
    def std(fi, fo):
        return math.sqrt(var(fi, fo)) / KERAS_CORRECTION

    return ("truncated", var, std, lambda fi, fo: 2.0 * std(fi, fo))


EXPECTED = {
    # Glorot and Bengio eq. 1: U[-1/sqrt(n), 1/sqrt(n)], Var = 1/(3n).
    "standard": _uniform(lambda fi, fo: 1.0 / (3.0 * fi)),
    # eq. 16: U[-sqrt(6/(n_i+n_{i+1})), ...], Var = 2/(n_i+n_{i+1}).
    "normalized": _uniform(lambda fi, fo: 2.0 / (fi + fo)),
    "xavier-normal": _normal(lambda fi, fo: 2.0 / (fi + fo)),
    "glorot-normal-truncated": _truncated(lambda fi, fo: 2.0 / (fi + fo)),
    "he-uniform": _uniform(lambda fi, fo: 2.0 / fi),
    "he-normal": _normal(lambda fi, fo: 2.0 / fi),
    "he-normal-truncated": _truncated(lambda fi, fo: 2.0 / fi),
    "lecun-uniform": _uniform(lambda fi, fo: 1.0 / fi),
    "lecun-normal": _normal(lambda fi, fo: 1.0 / fi),
    "lecun-normal-truncated": _truncated(lambda fi, fo: 1.0 / fi),
    "variance-scaling": _normal(lambda fi, fo: 1.0 / fi),
    # With parameters.
    "he-normal:mode=fan_out": _normal(lambda fi, fo: 2.0 / fo),
    "he-normal:slope=0.2": _normal(lambda fi, fo: 2.0 / ((1.0 + 0.04) * fi)),
    "he-uniform:mode=fan_out,slope=0.5": _uniform(lambda fi, fo: 2.0 / ((1.0 + 0.25) * fo)),
    "he-normal-truncated:mode=fan_avg": _truncated(lambda fi, fo: 2.0 / ((fi + fo) / 2.0)),
    "lecun-normal:gain=selu": _normal(lambda fi, fo: 0.75**2 / fi),
    "normalized:gain=tanh": _uniform(lambda fi, fo: (5.0 / 3.0) ** 2 * 2.0 / (fi + fo)),
    "normalized:gain=2.5": _uniform(lambda fi, fo: 6.25 * 2.0 / (fi + fo)),
    "variance-scaling:scale=2,mode=fan_avg,distribution=uniform": _uniform(
        lambda fi, fo: 2.0 / ((fi + fo) / 2.0)
    ),
    "variance-scaling:scale=3,mode=fan_out,distribution=normal": _normal(lambda fi, fo: 3.0 / fo),
    "variance-scaling:scale=0.5,distribution=truncated_normal": _truncated(lambda fi, fo: 0.5 / fi),
}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("spec", list(EXPECTED))
def test_preset_variance_std_and_bound(spec, shape):
    fi, fo = shape
    kind, var, std, bound = EXPECTED[spec]
    scheme = get_scheme(spec)
    assert scheme.variance(fi, fo) == pytest.approx(var(fi, fo), rel=1e-12)
    expected_std = std(fi, fo)
    expected_bound = bound(fi, fo)
    if expected_std is None:
        assert scheme.std(fi, fo) is None
    else:
        assert scheme.std(fi, fo) == pytest.approx(expected_std, rel=1e-12)
    if expected_bound is None:
        assert scheme.bound(fi, fo) is None
    else:
        assert scheme.bound(fi, fo) == pytest.approx(expected_bound, rel=1e-12)
    assert scheme.kurtosis == pytest.approx(KURTOSIS[kind], rel=1e-6)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_paper_bounds_written_out(shape):
    # The bounds exactly as the paper prints them (eq. 1 and eq. 16).
    fi, fo = shape
    assert get_scheme("standard").bound(fi, fo) == pytest.approx(1.0 / math.sqrt(fi), rel=1e-12)
    assert get_scheme("normalized").bound(fi, fo) == pytest.approx(
        math.sqrt(6.0) / math.sqrt(fi + fo), rel=1e-12
    )
    assert get_scheme("he-uniform").bound(fi, fo) == pytest.approx(math.sqrt(6.0 / fi), rel=1e-12)
    assert get_scheme("lecun-uniform").bound(fi, fo) == pytest.approx(
        math.sqrt(3.0 / fi), rel=1e-12
    )
    # Equal widths: n Var = 1/3 under standard, 1 under normalized (PAPER.md's table).
    assert fi * get_scheme("standard").variance(fi, fi) == pytest.approx(1.0 / 3.0)
    assert fi * get_scheme("normalized").variance(fi, fi) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_orthogonal_variance_is_gain_squared_over_the_larger_fan(shape):
    fi, fo = shape
    plain = get_scheme("orthogonal")
    assert plain.variance(fi, fo) == pytest.approx(1.0 / max(fi, fo), rel=1e-12)
    assert get_scheme("orthogonal:gain=2").variance(fi, fo) == pytest.approx(4.0 / max(fi, fo))
    assert plain.bound(fi, fo) is None and plain.std(fi, fo) is None
    assert plain.kurtosis is None and not plain.iid


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_uncorrected_truncated_normal_loses_variance(shape):
    # PyTorch's trunc_normal_ / TF1: nominal std, cut at +-2 std, Var = 0.7737... x nominal.
    fi, fo = shape
    scheme = get_scheme(
        "variance-scaling:scale=0.5,mode=fan_out,distribution=truncated_normal_uncorrected"
    )
    nominal = 0.5 / fo
    assert scheme.variance(fi, fo) == pytest.approx(TRUNC_VAR * nominal, rel=1e-12)
    assert scheme.std(fi, fo) == pytest.approx(math.sqrt(nominal), rel=1e-12)
    assert scheme.bound(fi, fo) == pytest.approx(2.0 * math.sqrt(nominal), rel=1e-12)
    assert scheme.kurtosis == pytest.approx(TRUNC_KURTOSIS, rel=1e-6)


ALIASES = {
    "default": "standard",
    "torch-linear": "standard",
    "xavier-uniform": "normalized",
    "glorot-uniform": "normalized",
    "glorot-normal-plain": "xavier-normal",
    "glorot-normal": "glorot-normal-truncated",  # Keras/JAX's glorot_normal is truncated
    "xavier-normal-truncated": "glorot-normal-truncated",
    "kaiming-uniform": "he-uniform",
    "kaiming-normal": "he-normal",
    "Xavier_Uniform": "normalized",  # case and underscores do not matter
    "  STANDARD ": "standard",
}


@pytest.mark.parametrize("alias", list(ALIASES))
def test_aliases_resolve_to_the_same_scheme(alias):
    target = ALIASES[alias]
    scheme = get_scheme(alias)
    assert scheme.name == target
    kind, var, _, _ = EXPECTED[target]
    for fi, fo in SHAPES:
        assert scheme.variance(fi, fo) == pytest.approx(var(fi, fo), rel=1e-12)
        assert scheme.variance(fi, fo) == get_scheme(target).variance(fi, fo)
    assert scheme.kurtosis == pytest.approx(KURTOSIS[kind], rel=1e-6)


def test_aliases_accept_parameters():
    assert get_scheme("kaiming-normal:mode=fan_out").variance(100, 50) == pytest.approx(2 / 50)
    assert get_scheme("xavier-uniform:gain=relu").variance(100, 50) == pytest.approx(2 * 2 / 150)


@pytest.mark.parametrize("fan_in", [1, 3, 784, 1024])
def test_standard_is_pytorch_linear_default(fan_in):
    # torch.nn.Linear.reset_parameters: kaiming_uniform_(w, a=sqrt(5)), mode fan_in,
    # nonlinearity leaky_relu: gain = sqrt(2 / (1 + a^2)), std = gain / sqrt(fan_in),
    # bound = sqrt(3) * std.
    a = math.sqrt(5.0)
    gain = math.sqrt(2.0 / (1.0 + a**2))
    std = gain / math.sqrt(fan_in)
    torch_bound = math.sqrt(3.0) * std
    assert torch_bound == pytest.approx(1.0 / math.sqrt(fan_in), rel=1e-12)  # the paper's eq. 1
    standard = get_scheme("standard")
    for fan_out in (1, 10, 1000):
        assert standard.bound(fan_in, fan_out) == pytest.approx(torch_bound, rel=1e-12)
        assert standard.variance(fan_in, fan_out) == pytest.approx(std**2, rel=1e-12)
    # The same rule through the he-uniform preset with PyTorch's slope.
    assert get_scheme("he-uniform:slope=2.2360679774997896").bound(fan_in, 7) == pytest.approx(
        torch_bound, rel=1e-12
    )


# PyTorch's torch.nn.init.calculate_gain, as its documentation tabulates it.
TORCH_GAINS = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "leaky_relu": math.sqrt(2.0 / (1.0 + 0.01**2)),
    "selu": 3.0 / 4.0,
}


@pytest.mark.parametrize("name", list(TORCH_GAINS))
def test_activation_gains_match_pytorch(name):
    gain = TORCH_GAINS[name]
    assert activation_gain(name) == pytest.approx(gain, rel=1e-12)
    fi, fo = 784, 10
    scheme = get_scheme(f"normalized:gain={name}")
    assert scheme.gain == pytest.approx(gain, rel=1e-12)
    assert scheme.variance(fi, fo) == pytest.approx(gain**2 * 2.0 / (fi + fo), rel=1e-12)
    assert scheme.bound(fi, fo) == pytest.approx(gain * math.sqrt(6.0 / (fi + fo)), rel=1e-12)


def test_leaky_relu_gain_with_a_slope():
    assert activation_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2.0 / 1.04))
    assert activation_gain("leaky-relu", 0.0) == pytest.approx(math.sqrt(2.0))
    assert activation_gain("TANH") == pytest.approx(5.0 / 3.0)


def test_tanh_gain_variance_by_hand():
    # (5/3)^2 * 2 / (1024 + 1000) = 25/9 * 2/2024
    assert get_scheme("normalized:gain=tanh").variance(1024, 1000) == pytest.approx(
        50.0 / (9.0 * 2024.0), rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# Parsing errors


def _error(spec: str) -> str:
    with pytest.raises(XavinitError) as info:
        get_scheme(spec)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_unknown_name_suggests_the_closest_and_lists_the_valid_ones():
    message = _error("xavier-unifrom")
    assert "'xavier-unifrom'" in message
    assert "did you mean 'xavier-uniform'" in message
    for name in ("standard", "normalized", "he-normal", "orthogonal", "variance-scaling"):
        assert name in message
    assert "did you mean 'normalized'" in _error("normalised")


def test_unknown_name_without_a_close_match_still_lists_the_names():
    message = _error("zzzzzz")
    assert "did you mean" not in message
    assert "standard" in message and "lecun-normal" in message


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("he-normal:foo=1", ["unknown parameter 'foo'", "gain", "mode", "slope"]),
        ("standard:slope=0.1", ["unknown parameter 'slope'"]),
        ("normalized:gian=2", ["unknown parameter 'gian'", "did you mean 'gain'"]),
        ("orthogonal:mode=fan_in", ["unknown parameter 'mode'"]),
        (
            "he-normal:mode=fan_sideways",
            ["mode must be one of", "fan_in", "fan_avg", "fan_sideways"],
        ),
        (
            "variance-scaling:distribution=cauchy",
            ["distribution must be one of", "cauchy", "uniform"],
        ),
        ("variance-scaling:scale=0", ["scale", "positive", "'0'"]),
        ("variance-scaling:scale=-2", ["scale", "positive", "'-2'"]),
        ("variance-scaling:scale=inf", ["scale", "positive"]),
        ("variance-scaling:scale=big", ["scale", "must be a number", "'big'"]),
        ("he-normal:slope=-0.1", ["slope", "non-negative", "'-0.1'"]),
        ("he-normal:slope=steep", ["slope", "'steep'"]),
        ("normalized:gain=swishy", ["unknown gain 'swishy'", "did you mean 'swish'", "relu"]),
        ("normalized:gain=0", ["gain", "positive"]),
        ("normalized:gain=-1", ["gain", "positive"]),
        ("normalized:gain=nan", ["gain", "positive"]),
        ("normalized:gain", ["'gain'", "not key=value"]),
        ("normalized:gain=", ["not key=value"]),
        ("normalized:=2", ["not key=value"]),
        ("normalized:gain=1,gain=2", ["'gain'", "twice"]),
    ],
)
def test_bad_parameters_name_the_problem(spec, fragments):
    message = _error(spec)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("spec", ["", "   ", None, 3])
def test_empty_or_non_string_spec(spec):
    assert "non-empty" in _error(spec)


def test_unknown_activation_gain_lists_the_known_ones():
    with pytest.raises(XavinitError, match="unknown gain 'softmax'") as info:
        activation_gain("softmax")
    for name in ("linear", "sigmoid", "tanh", "relu", "selu", "silu", "mish", "erf"):
        assert name in str(info.value)


def test_every_activation_is_a_gain_name():
    """PyTorch's names keep PyTorch's value; the others take the exact forward gain
    1 / sqrt(E[f(z)^2]), here against closed forms: erf (2/pi) arcsin(2/3), relu6 by the
    normal CDF, hardtanh likewise."""
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    closed = {
        "erf": 2 / math.pi * math.asin(2 / 3),
        "relu6": (0.5 - cdf(-6) - 6 * phi(6)) + 36 * cdf(-6),
        "hardtanh": 1 - 2 * phi(1),
    }
    for name, second_moment in closed.items():
        gain = 1 / math.sqrt(second_moment)
        assert activation_gain(name) == pytest.approx(gain, rel=1e-10)
        assert get_scheme(f"normalized:gain={name}").gain == pytest.approx(gain, rel=1e-10)
    for name in ("elu", "silu", "swish", "mish", "softplus", "gelu", "softsign"):
        assert 1.0 < get_scheme(f"variance-scaling:gain={name}").gain < 2.5
    assert get_scheme("normalized:gain=swish").gain == get_scheme("normalized:gain=silu").gain


def test_parameter_keys_and_values_are_normalised():
    scheme = get_scheme("He-Normal: Mode = FAN-OUT , Slope = 0")
    assert scheme.variance(10, 40) == pytest.approx(2.0 / 40)


# ---------------------------------------------------------------------------------------------
# Sampling

SAMPLED = [
    "standard",
    "normalized",
    "xavier-normal",
    "glorot-normal-truncated",
    "he-uniform",
    "he-normal",
    "he-normal-truncated",
    "lecun-uniform",
    "lecun-normal",
    "lecun-normal-truncated",
    "variance-scaling",
    "he-normal:slope=0.2",
    "lecun-normal:gain=selu",
    "he-uniform:mode=fan_out,slope=0.5",
    "he-normal-truncated:mode=fan_avg",
    "variance-scaling:scale=0.5,distribution=truncated_normal",
    "normalized:gain=tanh",
    "variance-scaling:scale=2,mode=fan_avg,distribution=uniform",
]
SAMPLE_SHAPE = (300, 250)  # 75,000 entries: more than one 65,536-entry sampling chunk


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", SAMPLED)
def test_sample_mean_square_within_five_standard_errors(spec, dtype):
    fi, fo = SAMPLE_SHAPE
    kind, var, std, bound = EXPECTED[spec]
    expected = var(fi, fo)
    w = get_scheme(spec).sample(SAMPLE_SHAPE, np.random.default_rng(20100), dtype=dtype)
    assert w.shape == SAMPLE_SHAPE and w.dtype == dtype
    w64 = w.astype(np.float64)
    n = w.size
    se = expected * math.sqrt((KURTOSIS[kind] - 1.0) / n)
    assert abs(np.mean(w64**2) - expected) < 5.0 * se
    # The mean is 0: SE of the mean is sqrt(Var / N).
    assert abs(np.mean(w64)) < 5.0 * math.sqrt(expected / n)
    largest = float(np.max(np.abs(w64)))
    b = bound(fi, fo)
    if b is not None:
        # Never beyond the bound (float32 may round the last bit up), yet reaching close to it.
        slack = 4.0 * float(np.finfo(dtype).eps)
        assert largest <= b * (1.0 + slack)
        assert largest > 0.99 * b
    if kind == "truncated":
        # Never beyond 2 underlying std; the cut is at 2 std, not earlier.
        s = std(fi, fo)
        assert largest <= 2.0 * s * (1.0 + 4.0 * float(np.finfo(dtype).eps))
        # P(|z| > 1 | |z| < 2) = (P(|z| < 2) - P(|z| < 1)) / P(|z| < 2), by hand from erf.
        inside2 = 2.0 * big_phi(2.0) - 1.0
        p = (inside2 - (2.0 * big_phi(1.0) - 1.0)) / inside2
        frac = np.mean(np.abs(w64) > s)
        assert abs(frac - p) < 5.0 * math.sqrt(p * (1 - p) / n)
    if kind == "normal":
        # A plain normal has P(|z| > 2) = 2 (1 - Phi(2)) = 0.0455: not truncated.
        p = 2.0 * (1.0 - big_phi(2.0))
        frac = np.mean(np.abs(w64) > 2.0 * std(fi, fo))
        assert abs(frac - p) < 5.0 * math.sqrt(p * (1 - p) / n)
    if kind == "uniform":
        # Uniform on [-b, b]: P(|w| < b/2) = 1/2.
        frac = np.mean(np.abs(w64) < 0.5 * b)
        assert abs(frac - 0.5) < 5.0 * math.sqrt(0.25 / n)


def test_uncorrected_truncated_normal_sample_has_the_smaller_variance():
    fi = SAMPLE_SHAPE[0]
    scheme = get_scheme("variance-scaling:scale=2,distribution=truncated_normal_uncorrected")
    w = scheme.sample(SAMPLE_SHAPE, np.random.default_rng(5), dtype=np.float64)
    nominal = 2.0 / fi
    expected = TRUNC_VAR * nominal
    se = expected * math.sqrt((TRUNC_KURTOSIS - 1.0) / w.size)
    assert abs(np.mean(w**2) - expected) < 5.0 * se
    # The nominal variance is (1 - 0.7737) / 0.7737 / sqrt(1.366 / 75000) = 68 SE away: the
    # test tells an uncorrected draw from a corrected one.
    assert abs(np.mean(w**2) - nominal) > 50.0 * se
    assert np.max(np.abs(w)) <= 2.0 * math.sqrt(nominal)


def test_sampling_is_deterministic_and_default_dtype_is_float32():
    scheme = get_scheme("he-normal")
    a = scheme.sample((64, 32), np.random.default_rng(7))
    b = scheme.sample((64, 32), np.random.default_rng(7))
    c = scheme.sample((64, 32), np.random.default_rng(8))
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert scheme.sample((64, 32), np.random.default_rng(7), dtype=np.float64).dtype == np.float64


def test_sample_into_a_preallocated_array():
    out = np.zeros((50, 40), dtype=np.float64)
    w = get_scheme("normalized").sample((50, 40), np.random.default_rng(1), out=out)
    assert w is out
    assert np.count_nonzero(out) == out.size
    assert np.max(np.abs(out)) <= math.sqrt(6.0 / 90.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gain", [1.0, 2.0])
@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_orthogonal_sample_has_orthonormal_columns_or_rows(shape, gain, dtype):
    spec = "orthogonal" if gain == 1.0 else f"orthogonal:gain={gain}"
    w = get_scheme(spec).sample(shape, np.random.default_rng(3), dtype=dtype)
    assert w.shape == shape and w.dtype == dtype
    w64 = w.astype(np.float64)
    rows, cols = shape
    gram = w64.T @ w64 if rows >= cols else w64 @ w64.T
    np.testing.assert_allclose(gram / gain**2, np.eye(min(shape)), atol=1e-5, rtol=0)
    # gain^2 min(fi, fo) in squares over fi fo entries: Var = gain^2 / max(fi, fo).
    assert np.mean(w64**2) == pytest.approx(gain**2 / max(shape), rel=1e-5)


def test_orthogonal_samples_are_random_rotations():
    scheme = get_scheme("orthogonal")
    a = scheme.sample((20, 20), np.random.default_rng(0), dtype=np.float64)
    b = scheme.sample((20, 20), np.random.default_rng(1), dtype=np.float64)
    assert not np.allclose(a, b)
    assert not np.allclose(np.abs(a), np.eye(20))


# ---------------------------------------------------------------------------------------------
# CDFs, written out by hand


def test_cdf_of_each_distribution():
    fi, fo = 100, 60
    x = np.array([-1.0, -0.2, -0.05, 0.0, 0.01, 0.1, 0.17, 0.3, 2.0])
    b = math.sqrt(6.0 / 160.0)
    uniform = get_scheme("normalized").cdf(x, fi, fo)
    np.testing.assert_allclose(uniform, np.clip((x + b) / (2 * b), 0, 1), atol=1e-12)

    s = math.sqrt(2.0 / fi)
    normal = get_scheme("he-normal").cdf(x, fi, fo)
    np.testing.assert_allclose(normal, [big_phi(v / s) for v in x], atol=1e-8)

    st = math.sqrt(2.0 / fi) / KERAS_CORRECTION
    mass = 2.0 * big_phi(2.0) - 1.0
    expected = [min(max((big_phi(v / st) - big_phi(-2.0)) / mass, 0.0), 1.0) for v in x]
    truncated = get_scheme("he-normal-truncated").cdf(x, fi, fo)
    np.testing.assert_allclose(truncated, expected, atol=1e-8)


def test_cdf_of_orthogonal_is_refused():
    with pytest.raises(ValueError):
        get_scheme("orthogonal").cdf(np.zeros(3), 10, 10)


def test_pytorch_cross_check():
    """Optional: compare with PyTorch's own initializers when torch is installed."""
    torch = pytest.importorskip("torch")
    from xavinit.core.verification import verify

    torch.manual_seed(0)
    for fan_in, fan_out in [(784, 300), (1024, 1000)]:
        layer = torch.nn.Linear(fan_in, fan_out)
        w = layer.weight.detach().numpy()  # (out, in)
        bound = get_scheme("standard").bound(fan_in, fan_out)
        assert np.max(np.abs(w)) <= bound * (1 + 1e-6)
        assert np.max(np.abs(w)) > 0.99 * bound
        assert verify(w, "standard", layout="out-in").passed
        assert not verify(w, "normalized", layout="out-in").passed

    gains = {name: torch.nn.init.calculate_gain(name) for name in TORCH_GAINS}
    for name, gain in gains.items():
        assert activation_gain(name) == pytest.approx(gain, rel=1e-6)

    w = torch.empty(500, 400)
    torch.nn.init.xavier_uniform_(w)
    assert verify(w.numpy(), "normalized", layout="out-in").passed
    torch.nn.init.xavier_normal_(w)
    assert verify(w.numpy(), "xavier-normal", layout="out-in").passed
    torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert verify(w.numpy(), "he-normal", layout="out-in").passed
    torch.nn.init.kaiming_uniform_(w, a=0.2, mode="fan_out", nonlinearity="leaky_relu")
    assert verify(w.numpy(), "he-uniform:slope=0.2,mode=fan_out", layout="out-in").passed
    torch.nn.init.orthogonal_(w)
    assert verify(w.numpy(), "orthogonal", layout="out-in").passed
    # trunc_normal_ keeps the nominal std: the uncorrected truncated normal.
    torch.nn.init.trunc_normal_(w, std=0.05, a=-0.1, b=0.1)
    scale = 0.05**2 * 400  # Var_nominal = scale / fan_in with fan_in = 400
    spec = f"variance-scaling:scale={scale!r},distribution=truncated_normal_uncorrected"
    assert verify(w.numpy(), spec, layout="out-in").passed
    assert not verify(w.numpy(), f"variance-scaling:scale={scale!r}", layout="out-in").passed


def test_scheme_from_params_is_the_parsed_spec() -> None:
    """check's fitted laws are built from their parameters: the same scheme, spec text
    included, as parsing ``name:key=value,...``; a scale no spec accepts is refused alike."""
    from xavinit.core.schemes import parse_scheme, scheme_from_params

    for name, params in [
        ("normal", {"std": "0.36089"}),
        ("uniform", {"a": "0.61854"}),
        ("truncated-normal", {"std": "2.5e-07"}),
        ("trunc-normal", {"std": "0.020254", "a": "-0.039815", "b": "0.039815"}),
        ("he-normal", {"mode": "fan_out"}),
        ("normalized", {}),
    ]:
        built = scheme_from_params(name, params)
        text = name + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
        parsed = parse_scheme(text)
        assert built == parsed and built.spec == text and built.params == parsed.params
    assert scheme_from_params("trunc-normal", {"std": "0.5", "a": "-1", "b": "1"}).truncation == 2.0
    assert scheme_from_params("uniform", {"a": "3"}).variance(7, 9) == 3.0
    with pytest.raises(XavinitError, match="std must be between"):
        scheme_from_params("normal", {"std": "1e-35"})
