"""Tests for xavinit.core.activations, kernels and quadrature: values, derivatives, saturation,
gains, specs, quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.core.activations import (
    ACTIVATION_ALIASES,
    ACTIVATION_NAMES,
    TORCH_GAIN_NAMES,
    Activation,
    activation_gain,
    get_activation,
)
from xavinit.core.kernels import SELU_ALPHA, SELU_LAMBDA, erf
from xavinit.core.quadrature import gaussian_expectation

# Points where the derivative is checked; those within 1e-3 of a kink are left out.
POINTS = np.array([-4.0, -1.7, -0.6, -0.05, 0.05, 0.3, 1.0, 2.5, 6.0, 7.5])
SPECS = [*ACTIVATION_NAMES, "leaky-relu:slope=0.2", "elu:alpha=0.5"]


def _phi_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("spec", SPECS)
def test_derivative_matches_central_differences(spec: str) -> None:
    act = get_activation(spec)
    h = 1e-6
    s = POINTS.copy()
    if act.kinks:
        s = s[np.min(np.abs(s[:, None] - np.array(act.kinks)), axis=1) > 1e-3]
    numeric = (act.forward(s + h) - act.forward(s - h)) / (2 * h)
    z = act.forward(s)
    analytic = act.derivative(s if act.needs_preactivation else None, z)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)
    # the out= form writes the same numbers
    out = np.empty_like(z)
    assert act.derivative(s, z, out=out) is out
    np.testing.assert_allclose(out, analytic)


@pytest.mark.parametrize(
    ("spec", "s", "expected"),
    [
        ("sigmoid", 0.0, 0.5),
        ("sigmoid", 2.0, 1.0 / (1.0 + math.exp(-2.0))),
        ("sigmoid", -3.0, 1.0 / (1.0 + math.exp(3.0))),
        ("logistic", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
        ("tanh", 0.5, math.tanh(0.5)),
        ("softsign", 1.0, 0.5),
        ("softsign", -3.0, -0.75),
        ("relu", -2.0, 0.0),
        ("relu", 1.5, 1.5),
        ("leaky-relu", -2.0, -0.02),
        ("leaky_relu:slope=0.2", -2.0, -0.4),
        ("leaky-relu:slope=0.2", 3.0, 3.0),
        ("linear", -1.25, -1.25),
        ("identity", 4.0, 4.0),
        ("selu", -1.0, SELU_LAMBDA * SELU_ALPHA * (math.exp(-1.0) - 1.0)),
        ("selu", 2.0, SELU_LAMBDA * 2.0),
        ("gelu", 0.0, 0.0),
        # tanh approximation of x Phi(x): within 1e-3 of the exact GELU
        ("gelu", 1.0, 1.0 * _phi_cdf(1.0)),
        ("gelu", -1.5, -1.5 * _phi_cdf(-1.5)),
        ("elu", -1.0, math.exp(-1.0) - 1.0),
        ("elu", 2.0, 2.0),
        ("elu:alpha=0.5", -2.0, 0.5 * (math.exp(-2.0) - 1.0)),
        ("silu", 1.0, 1.0 / (1.0 + math.exp(-1.0))),
        ("swish", -2.0, -2.0 / (1.0 + math.exp(2.0))),
        ("mish", 1.0, math.tanh(math.log1p(math.e))),
        ("mish", -3.0, -3.0 * math.tanh(math.log1p(math.exp(-3.0)))),
        ("softplus", 0.0, math.log(2.0)),
        ("softplus", 3.0, math.log1p(math.exp(3.0))),
        ("softplus", -30.0, math.log1p(math.exp(-30.0))),
        ("hardtanh", -3.0, -1.0),
        ("hardtanh", 0.4, 0.4),
        ("relu6", 7.0, 6.0),
        ("relu6", 2.5, 2.5),
        ("relu6", -1.0, 0.0),
        ("erf", 0.5, math.erf(0.5)),
        ("erf", -2.2, math.erf(-2.2)),
    ],
)
def test_forward_at_hand_picked_points(spec: str, s: float, expected: float) -> None:
    value = float(get_activation(spec).forward(np.array([s]))[0])
    tol = 1e-3 if spec == "gelu" else 1e-12
    assert value == pytest.approx(expected, abs=tol)


def test_gelu_is_the_tanh_approximation() -> None:
    s = 0.8
    c = math.sqrt(2.0 / math.pi)
    expected = 0.5 * s * (1.0 + math.tanh(c * (s + 0.044715 * s**3)))
    assert float(get_activation("gelu").forward(np.array([s]))[0]) == pytest.approx(expected)


@pytest.mark.parametrize("spec", SPECS)
def test_extreme_inputs_do_not_overflow(spec: str) -> None:
    act = get_activation(spec)
    s = np.array([-1000.0, -50.0, 50.0, 1000.0])
    with np.errstate(all="raise"):
        z = act.forward(s)
        d = act.derivative(s, z)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(d))


def test_sigmoid_limits_at_extremes() -> None:
    with np.errstate(all="raise"):
        z = get_activation("sigmoid").forward(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(z, [0.0, 1.0])


@pytest.mark.parametrize("spec", SPECS)
def test_dtype_and_out_are_kept(spec: str) -> None:
    act = get_activation(spec)
    s = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    z = act.forward(s)
    assert z.dtype == np.float32 and z.shape == s.shape
    assert act.derivative(s, z).dtype == np.float32
    expected = act.forward(s.astype(np.float64))
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)
    in_place = s.copy()
    assert act.forward(in_place, out=in_place) is in_place
    np.testing.assert_allclose(in_place, z, rtol=1e-6, atol=1e-7)


def test_saturation_rules() -> None:
    z = np.array([-1.0, -0.995, -0.5, 0.0, 0.005, 0.5, 0.995])
    sat = {
        "tanh": [1, 1, 0, 0, 0, 0, 1],
        "softsign": [1, 1, 0, 0, 0, 0, 1],
        "sigmoid": [1, 1, 1, 1, 1, 0, 1],
        "relu": [1, 1, 1, 1, 0, 0, 0],
        "leaky-relu": [1, 1, 1, 1, 0, 0, 0],
        "linear": [0] * 7,
        "gelu": [0] * 7,
        "selu": [0] * 7,
        "elu": [1, 1, 0, 0, 0, 0, 0],
        "silu": [0] * 7,
        "mish": [0] * 7,
        "softplus": [1, 1, 1, 1, 1, 0, 0],
        "hardtanh": [1, 0, 0, 0, 0, 0, 0],
        "relu6": [1, 1, 1, 1, 0, 0, 0],
        "erf": [1, 1, 0, 0, 0, 0, 1],
    }
    for name, expected in sat.items():
        np.testing.assert_array_equal(get_activation(name).saturated(z), np.array(expected, bool))
    low = -SELU_LAMBDA * SELU_ALPHA
    np.testing.assert_array_equal(
        get_activation("selu").saturated(np.array([low, 0.98 * low])), [True, False]
    )


def test_gains_and_limits() -> None:
    expected = {
        "linear": 1.0,
        "sigmoid": 1.0,
        "tanh": 5.0 / 3.0,
        "relu": math.sqrt(2.0),
        "leaky-relu": math.sqrt(2.0 / (1.0 + 0.01**2)),
        "leaky-relu:slope=0.2": math.sqrt(2.0 / 1.04),
        "selu": 0.75,
    }
    for spec, gain in expected.items():
        assert get_activation(spec).torch_gain == pytest.approx(gain)
        assert get_activation(spec).gain == pytest.approx(gain)
    # PyTorch has no gain for the others: the recommended one is the exact forward gain,
    # 1 / sqrt(E[f(z)^2]); for erf E[erf(z)^2] = (2/pi) arcsin(2/3) (closed form).
    for name in ("softsign", "gelu", "elu", "silu", "mish", "softplus", "hardtanh", "relu6"):
        assert get_activation(name).torch_gain is None
        assert get_activation(name).gain > 1.0
    assert get_activation("erf").gain == pytest.approx(
        1.0 / math.sqrt(2.0 / math.pi * math.asin(2.0 / 3.0)), rel=1e-10
    )
    assert get_activation("tanh").limits == (-1.0, 1.0)
    assert get_activation("sigmoid").limits == (0.0, 1.0)
    assert get_activation("linear").limits is None
    assert get_activation("relu").limits == (0.0, math.inf)


@pytest.mark.parametrize("name", ["gelu", "silu", "mish"])
def test_lower_limit_is_the_minimum(name: str) -> None:
    act = get_activation(name)
    s = np.linspace(-3, 0, 300001)
    assert act.limits is not None
    assert act.forward(s).min() == pytest.approx(act.limits[0], abs=1e-9)


@pytest.mark.parametrize(
    ("name", "limits"),
    [
        ("elu", (-1.0, math.inf)),
        ("elu:alpha=0.5", (-0.5, math.inf)),
        ("softplus", (0.0, math.inf)),
        ("hardtanh", (-1.0, 1.0)),
        ("relu6", (0.0, 6.0)),
        ("erf", (-1.0, 1.0)),
    ],
)
def test_limits_of_the_new_activations(name: str, limits: tuple[float, float]) -> None:
    assert get_activation(name).limits == limits


def test_erf_against_math_erf() -> None:
    s = np.concatenate([np.linspace(-7.0, 7.0, 140001), [1e-300, -1e-12, 6.0625, 6.07]])
    expected = np.array([math.erf(v) for v in s])
    np.testing.assert_allclose(erf(s), expected, rtol=4e-16, atol=2e-16)
    single = erf(s.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, atol=2e-7)
    special = erf(np.array([np.nan, np.inf, -np.inf, 0.0]))
    assert np.isnan(special[0]) and special[1:].tolist() == [1.0, -1.0, 0.0]


def test_erf_in_chunks_in_place_and_into_a_strided_out() -> None:
    """erf works in chunks of 65536 values: a 150,000-value array (three chunks) gives each
    value bit for bit what a one-value call gives, also in place and into a strided ``out``."""
    s = np.random.default_rng(3).standard_normal(150_000) * 4.0
    s[[0, 65_535, 65_536, 149_999]] = [np.nan, 7.0, -0.0, -1e-300]
    picked = [0, 1, 65_535, 65_536, 131_072, 149_999]
    alone = np.array([erf(s[i : i + 1])[0] for i in picked])
    whole = erf(s)
    assert whole[picked].tobytes() == alone.tobytes()
    inplace = s.copy()
    assert erf(inplace, out=inplace) is inplace and inplace.tobytes() == whole.tobytes()
    strided = np.zeros((s.size, 2))
    assert erf(s, out=strided[:, 1]) is not None
    assert strided[:, 1].tobytes() == whole.tobytes() and not strided[:, 0].any()
    assert erf(s.reshape(300, 500)).ravel().tobytes() == whole.tobytes()


def test_kinks_name_where_the_derivative_jumps() -> None:
    assert get_activation("relu").kinks == (0.0,)
    assert get_activation("hardtanh").kinks == (-1.0, 1.0)
    assert get_activation("relu6").kinks == (0.0, 6.0)
    for name in ("tanh", "sigmoid", "gelu", "silu", "mish", "softplus", "erf", "linear"):
        assert get_activation(name).kinks == ()


def test_names_aliases_and_specs() -> None:
    assert len(ACTIVATION_NAMES) == 15
    for name in ACTIVATION_NAMES:
        act = get_activation(name)
        assert isinstance(act, Activation)
        assert act.name == name
        assert get_activation(act.spec) == act
    assert get_activation("identity").name == "linear"
    assert get_activation("logistic").name == "sigmoid"
    assert get_activation("swish").name == "silu"
    assert get_activation("elu").spec == "elu:alpha=1.0"
    assert get_activation("elu:alpha=0.5").params == (("alpha", 0.5),)
    assert get_activation(" Leaky_ReLU ").params == (("slope", 0.01),)
    leaky = get_activation("leaky-relu:slope=0.2")
    assert leaky.params == (("slope", 0.2),)
    assert leaky.spec == "leaky-relu:slope=0.2"
    assert leaky != get_activation("leaky-relu")


def test_the_registry_is_what_pytorch_and_the_spec_syntax_see() -> None:
    # Every row of the table is a name get_activation accepts, with its own aliases; PyTorch's
    # calculate_gain knows exactly the names the table gives a torch gain, with its values.
    torch = pytest.importorskip("torch")
    assert set(TORCH_GAIN_NAMES) == {"linear", "sigmoid", "tanh", "relu", "leaky-relu", "selu"}
    assert ACTIVATION_ALIASES == {
        "leaky_relu": "leaky-relu",
        "identity": "linear",
        "logistic": "sigmoid",
        "swish": "silu",
    }
    for name in ACTIVATION_NAMES:
        torch_name = name.replace("-", "_")
        if name in TORCH_GAIN_NAMES:
            for slope in (0.01, 0.2) if name == "leaky-relu" else (None,):
                spec = name if slope is None else f"{name}:slope={slope}"
                expected = torch.nn.init.calculate_gain(torch_name, slope)
                assert get_activation(spec).torch_gain == pytest.approx(expected, rel=1e-15)
        else:
            with pytest.raises(ValueError, match="Unsupported nonlinearity"):
                torch.nn.init.calculate_gain(torch_name)
            assert get_activation(name).torch_gain is None
    for alias, name in ACTIVATION_ALIASES.items():
        assert get_activation(alias) == get_activation(name)
        assert activation_gain(alias) == activation_gain(name)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("tanhh", "did you mean 'tanh'"),
        ("sigmod", "did you mean 'sigmoid'"),
        ("nope", "valid: sigmoid, tanh"),
        ("leaky-relu:slop=0.2", "did you mean 'slope'"),
        ("leaky-relu:slope=-1", "slope must be a number from 0 to 1e.06"),
        ("leaky-relu:slope=abc", "slope must be a number from 0 to 1e.06"),
        ("leaky-relu:slope", "expected slope=VALUE"),
        ("leaky-relu:slope=0.1,slope=0.2", "given twice"),
        ("tanh:slope=1", "takes no parameters"),
    ],
)
def test_bad_specs_raise_one_line_value_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        get_activation(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "erf"])
def test_derivative_needs_preactivation(name: str) -> None:
    act = get_activation(name)
    assert act.needs_preactivation
    with pytest.raises(ValueError, match="pre-activation"):
        act.derivative(None, np.zeros(3))


@pytest.mark.parametrize("split", [True, False])
def test_gaussian_expectation_moments(split: bool) -> None:
    for q in (0.0, 0.3, 1.0, 4.0):
        assert gaussian_expectation(lambda s: s**2, q, split=split) == pytest.approx(q, abs=1e-12)
        assert gaussian_expectation(lambda s: s**4, q, split=split) == pytest.approx(
            3 * q**2, abs=1e-10
        )
        assert gaussian_expectation(lambda s: s**3, q, split=split) == pytest.approx(0, abs=1e-12)
    identity = get_activation("identity")
    assert gaussian_expectation(lambda s: identity(s) ** 2, 2.0) == pytest.approx(2.0)
    qs = np.array([0.5, 2.0])
    np.testing.assert_allclose(gaussian_expectation(lambda s: s**2, qs, split=split), qs)


def test_gaussian_expectation_across_the_kink() -> None:
    # E[relu(sqrt(q) z)] = sqrt(q / (2 pi)); E[relu^2] = q / 2; E[relu'^2] = 1/2.
    relu = get_activation("relu")
    for q in (0.01, 1.0, 100.0):
        assert gaussian_expectation(relu.forward, q) == pytest.approx(
            math.sqrt(q / (2 * math.pi)), rel=1e-10
        )
        d2 = gaussian_expectation(lambda s: relu.derivative(None, relu(s)) ** 2, q)
        assert d2 == pytest.approx(0.5, rel=1e-10)
    # softsign E[f'(z)^2] = E[(1+|z|)^-4] against a fine trapezoid rule
    z = np.linspace(0, 40, 400001)
    ref = 2 * np.trapezoid((1 + z) ** -4 * np.exp(-z * z / 2) / math.sqrt(2 * math.pi), z)
    act = get_activation("softsign")
    value = gaussian_expectation(lambda s: act.derivative(s, act(s)) ** 2, 1.0)
    assert value == pytest.approx(ref, rel=1e-7)


def test_gaussian_expectation_rejects_negative_variance() -> None:
    with pytest.raises(ValueError, match="q must be"):
        gaussian_expectation(np.square, -1.0)


# --- gains by quadrature, against closed forms and Monte Carlo ------------------------------------


def _big_phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _small_phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _trapezoid_expectation(fn, step: float = 0.01) -> float:
    """E[fn(z)] by the trapezoidal rule on [-40, 40]: for an integrand analytic in a strip
    around the real axis it converges geometrically in 1/step (a method independent of
    Gaussian quadrature); used here for smooth activations only."""
    z = np.arange(-40.0, 40.0 + step / 2, step)
    return float(np.sum(fn(z) * np.exp(-0.5 * z * z)) * step / math.sqrt(2.0 * math.pi))


def test_forward_gains_of_piecewise_linear_activations_in_closed_form() -> None:
    from xavinit.core.activations import backward_gain, forward_gain

    # E[relu(z)^2] = 1/2: He et al. (2015)'s sqrt(2); leaky: E = (1 + a^2) / 2.
    assert forward_gain(get_activation("relu")) == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert backward_gain(get_activation("relu")) == pytest.approx(math.sqrt(2.0), rel=1e-12)
    assert forward_gain(get_activation("linear")) == pytest.approx(1.0, rel=1e-14)
    for slope in (0.01, 0.2, 0.5):
        act = get_activation(f"leaky-relu:slope={slope}")
        expected = math.sqrt(2.0 / (1.0 + slope**2))
        assert forward_gain(act) == pytest.approx(expected, rel=1e-12)
        assert backward_gain(act) == pytest.approx(expected, rel=1e-12)


def test_second_moments_against_closed_forms() -> None:
    from xavinit.core.activations import unit_moments

    e, p1, p2 = math.exp(0.5), _big_phi(-1.0), _big_phi(-2.0)
    # E[(e^z - 1)^2; z < 0] = e^2 Phi(-2) - 2 e^{1/2} Phi(-1) + 1/2
    neg_sq = math.exp(2.0) * p2 - 2.0 * e * p1 + 0.5
    expected = {
        # (2/pi) arcsin(2/3): E[erf(a u) erf(a v)] at a = 1, unit variance, u = v
        "erf": 2.0 / math.pi * math.asin(2.0 / 3.0),
        "relu": 0.5,
        # E[z^2; |z| < 1] + P(|z| > 1) = (2 Phi(1) - 1 - 2 phi(1)) + 2 Phi(-1)
        "hardtanh": (1.0 - 2.0 * p1 - 2.0 * _small_phi(1.0)) + 2.0 * p1,
        # E[z^2; 0 < z < 6] + 36 P(z > 6)
        "relu6": (0.5 - _big_phi(-6.0) - 6.0 * _small_phi(6.0)) + 36.0 * _big_phi(-6.0),
        "elu": 0.5 + neg_sq,
        "selu": SELU_LAMBDA**2 * (0.5 + SELU_ALPHA**2 * neg_sq),
    }
    for name, value in expected.items():
        assert unit_moments(get_activation(name)).second_moment == pytest.approx(value, rel=1e-10)
    # E[elu(z)] = phi(0) + e^{1/2} Phi(-1) - 1/2; E[relu(z)] = phi(0)
    elu = unit_moments(get_activation("elu"))
    assert elu.mean == pytest.approx(_small_phi(0.0) + e * p1 - 0.5, rel=1e-10)
    assert unit_moments(get_activation("relu")).mean == pytest.approx(_small_phi(0.0), rel=1e-12)
    # E[erf'(z)^2] = (4/pi) E[e^{-2 z^2}] = (4/pi) / sqrt(5)
    erf_moments = unit_moments(get_activation("erf"))
    assert erf_moments.derivative_second_moment == pytest.approx(
        4.0 / math.pi / math.sqrt(5.0), rel=1e-10
    )


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "mish", "softplus", "erf"])
def test_smooth_activations_against_the_trapezoidal_rule(name: str) -> None:
    from xavinit.core.activations import unit_moments

    act = get_activation(name)
    moments = unit_moments(act)
    assert moments.second_moment == pytest.approx(
        _trapezoid_expectation(lambda z: act.forward(z) ** 2), rel=1e-10
    )
    assert moments.mean == pytest.approx(_trapezoid_expectation(act.forward), abs=1e-10)
    assert moments.derivative_second_moment == pytest.approx(
        _trapezoid_expectation(lambda z: act.derivative_of(z) ** 2), rel=1e-10
    )
    if name == "tanh":  # a value to know: E[tanh(z)^2] = 0.394294...
        assert round(moments.second_moment, 6) == 0.394294


@pytest.mark.parametrize("spec", SPECS)
def test_quadrature_agrees_with_monte_carlo(spec: str) -> None:
    """10^6 standard normal draws (seed fixed): each sample mean within 5 of its standard
    errors (the sample std over 1000) of the quadrature value."""
    from xavinit.core.activations import unit_moments

    act = get_activation(spec)
    z = np.random.default_rng(20240611).standard_normal(1_000_000)
    f, d = act.forward(z), act.derivative_of(z)
    moments = unit_moments(act)
    for sample, value in (
        (f, moments.mean),
        (f * f, moments.second_moment),
        (d, moments.derivative_mean),
        (d * d, moments.derivative_second_moment),
    ):
        standard_error = sample.std() / math.sqrt(sample.size)
        assert abs(sample.mean() - value) <= 5.0 * standard_error + 1e-12, spec


@pytest.mark.parametrize("spec", SPECS)
def test_node_doubling_changes_nothing_at_1e_10(spec: str) -> None:
    from xavinit.core.activations import unit_moments
    from xavinit.core.quadrature import normal_rule

    act = get_activation(spec)
    moments = unit_moments(act)  # the value at 2 * order
    split = bool(act.kinks)
    nodes, weights = normal_rule(0.0, 1.0, act.kinks, moments.order, split=split)
    at_order = float(np.sum(act.forward(nodes) ** 2 * weights))
    assert abs(at_order - moments.second_moment) <= 1e-10 * max(1.0, moments.second_moment)
    assert moments.order <= 128


def test_bivariate_expectation_against_closed_forms() -> None:
    from xavinit.core.quadrature import bivariate_expectation

    relu = get_activation("relu")
    step = lambda x: (x > 0).astype(float)  # noqa: E731
    for q in (0.5, 1.0, 3.0):
        for c in (-0.9, -0.3, 0.0, 0.4, 0.95, 0.999, 0.99999, 1.0):
            theta = math.acos(c)
            # Cho and Saul (2009) arc-cosine kernels of degree 1 and 0
            arccos1 = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
            arccos0 = (math.pi - theta) / (2 * math.pi)
            assert bivariate_expectation(
                relu.forward, relu.forward, q, c, (0.0,), (0.0,)
            ) == pytest.approx(arccos1, rel=1e-12, abs=1e-14)
            assert bivariate_expectation(step, step, q, c, (0.0,), (0.0,)) == pytest.approx(
                arccos0, rel=1e-12, abs=1e-14
            )
            # E[erf(u) erf(v)] = (2/pi) arcsin(2 q c / (1 + 2 q)) (Williams, 1997)
            assert bivariate_expectation(erf, erf, q, c) == pytest.approx(
                2 / math.pi * math.asin(2 * q * c / (1 + 2 * q)), rel=1e-12, abs=1e-14
            )
            assert bivariate_expectation(lambda x: x, lambda x: x, q, c) == pytest.approx(
                q * c, abs=1e-12
            )


def test_bivariate_expectation_with_kinks_away_from_zero() -> None:
    """hardtanh (kinks at +-1) against a 10^6-draw Monte Carlo, within 5 standard errors."""
    from xavinit.core.quadrature import bivariate_expectation

    act = get_activation("hardtanh")
    rng = np.random.default_rng(7)
    for q, c in ((2.0, 0.6), (0.7, -0.5)):
        a, b = rng.standard_normal((2, 1_000_000))
        u, v = math.sqrt(q) * a, math.sqrt(q) * (c * a + math.sqrt(1 - c * c) * b)
        product = act.forward(u) * act.forward(v)
        value = bivariate_expectation(act.forward, act.forward, q, c, act.kinks, act.kinks)
        assert abs(product.mean() - value) <= 5 * product.std() / 1000
