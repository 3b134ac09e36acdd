"""Tests for xavinit.activations: values, derivatives, saturation, gains, specs, quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xavinit.activations import (
    ACTIVATION_NAMES,
    SELU_ALPHA,
    SELU_LAMBDA,
    Activation,
    gaussian_expectation,
    get_activation,
)

# Points away from the kink at 0, where every activation is differentiable.
POINTS = np.array([-4.0, -1.7, -0.6, -0.05, 0.05, 0.3, 1.0, 2.5, 6.0])
SPECS = [*ACTIVATION_NAMES, "leaky-relu:slope=0.2"]


def _phi_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.parametrize("spec", SPECS)
def test_derivative_matches_central_differences(spec: str) -> None:
    act = get_activation(spec)
    h = 1e-6
    s = POINTS.copy()
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
        "softsign": 1.0,
    }
    for spec, gain in expected.items():
        assert get_activation(spec).gain == pytest.approx(gain)
    assert get_activation("gelu").gain is None
    assert get_activation("tanh").limits == (-1.0, 1.0)
    assert get_activation("sigmoid").limits == (0.0, 1.0)
    assert get_activation("linear").limits is None
    assert get_activation("relu").limits == (0.0, math.inf)


def test_gelu_limit_is_its_minimum() -> None:
    act = get_activation("gelu")
    s = np.linspace(-3, 0, 300001)
    assert act.limits is not None
    assert act.forward(s).min() == pytest.approx(act.limits[0], abs=1e-9)


def test_names_aliases_and_specs() -> None:
    assert len(ACTIVATION_NAMES) == 8
    for name in ACTIVATION_NAMES:
        act = get_activation(name)
        assert isinstance(act, Activation)
        assert act.name == name
        assert get_activation(act.spec) == act
    assert get_activation("identity").name == "linear"
    assert get_activation("logistic").name == "sigmoid"
    assert get_activation(" Leaky_ReLU ").params == (("slope", 0.01),)
    leaky = get_activation("leaky-relu:slope=0.2")
    assert leaky.params == (("slope", 0.2),)
    assert leaky.spec == "leaky-relu:slope=0.2"
    assert leaky != get_activation("leaky-relu")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("tanhh", "did you mean 'tanh'"),
        ("sigmod", "did you mean 'sigmoid'"),
        ("nope", "valid: sigmoid, tanh"),
        ("leaky-relu:slop=0.2", "did you mean 'slope'"),
        ("leaky-relu:slope=-1", "slope must be a finite number >= 0"),
        ("leaky-relu:slope=abc", "slope must be a finite number >= 0"),
        ("leaky-relu:slope", "expected slope=VALUE"),
        ("leaky-relu:slope=0.1,slope=0.2", "given twice"),
        ("tanh:slope=1", "takes no parameters"),
    ],
)
def test_bad_specs_raise_one_line_value_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        get_activation(spec)
    assert "\n" not in str(info.value)


def test_derivative_needs_preactivation_for_gelu() -> None:
    act = get_activation("gelu")
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
