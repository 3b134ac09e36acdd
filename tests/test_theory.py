"""Tests for xavinit.theory: hand-computed linear regime, mean-field examples, simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xavinit.activations import get_activation
from xavinit.network import backward, forward
from xavinit.theory import (
    chi1,
    fixed_point,
    length_map,
    linear_activation_var,
    linear_backprop_var,
    linear_weight_grad_var,
    mean_field_backward,
    mean_field_forward,
)

# A 3-layer net: widths n_0..n_3 and Var[W^1..W^3], Var[x] = 2, Var[dC/ds^3] = 0.5.
WIDTHS = [2, 3, 4, 5]
WVARS = [0.1, 0.2, 0.3]


def test_linear_activation_var_by_hand() -> None:
    # Var[z^1] = 2 * (2*0.1) = 0.4; Var[z^2] = 0.4 * (3*0.2) = 0.24; Var[s^3] = 0.24 * (4*0.3)
    np.testing.assert_allclose(linear_activation_var(WIDTHS, WVARS, 2.0), [0.4, 0.24, 0.288])


def test_linear_backprop_var_by_hand() -> None:
    # Var[ds^3] = 0.5; Var[ds^2] = 0.5 * n_3 Var[W^3] = 0.5*5*0.3 = 0.75;
    # Var[ds^1] = 0.75 * n_2 Var[W^2] = 0.75*4*0.2 = 0.6
    np.testing.assert_allclose(linear_backprop_var(WIDTHS, WVARS, 0.5), [0.6, 0.75, 0.5])


def test_linear_weight_grad_var_by_hand() -> None:
    # Var[dW^k] = Var[z^{k-1}] Var[ds^k]: 2*0.6, 0.4*0.75, 0.24*0.5
    np.testing.assert_allclose(linear_weight_grad_var(WIDTHS, WVARS, 2.0, 0.5), [1.2, 0.3, 0.12])


def test_linear_regime_equal_widths_standard_rule() -> None:
    # The paper's section 4.2.1: with n Var[W] = 1/3 the back-propagated variance shrinks by
    # 1/3 per layer going down, while the weight-gradient variance is the same at every layer.
    n, depth = 1000, 5
    widths, wvars = [n] * (depth + 1), [1 / (3 * n)] * depth
    back = linear_backprop_var(widths, wvars, 1.0)
    np.testing.assert_allclose(back[:-1] / back[1:], 1 / 3)
    np.testing.assert_allclose(linear_weight_grad_var(widths, wvars, 1.0, 1.0), 3.0**-4)


def test_linear_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="4 widths and 2 variances"):
        linear_activation_var(WIDTHS, WVARS[:2], 1.0)


def test_mean_field_reduces_to_the_linear_regime_for_identity() -> None:
    act = get_activation("identity")
    mf = mean_field_forward(2.0, WIDTHS, WVARS, act)
    np.testing.assert_allclose(mf.q, linear_activation_var(WIDTHS, WVARS, 2.0))
    np.testing.assert_allclose(mf.var, mf.q)
    np.testing.assert_allclose(mf.mean, 0.0, atol=1e-15)
    np.testing.assert_allclose(
        mean_field_backward(0.5, mf.q, WIDTHS, WVARS, act), linear_backprop_var(WIDTHS, WVARS, 0.5)
    )


def test_tanh_ordered_phase_example() -> None:
    # PAPER.md: tanh, sw^2 = 1/3, sb = 0: q* = 0, chi_1 = 1/3.
    tanh = get_activation("tanh")
    q_star = fixed_point(1 / 3, tanh)
    assert q_star == pytest.approx(0.0, abs=1e-9)
    assert chi1(1 / 3, tanh, q_star) == pytest.approx(1 / 3, abs=1e-6)


def test_tanh_gain_example() -> None:
    # PAPER.md: tanh, sw = 5/3, sb = 0: q* = 1.178, chi_1 = 1.21, post-activation std 0.651.
    tanh = get_activation("tanh")
    sw2 = (5 / 3) ** 2
    q_star = fixed_point(sw2, tanh)
    assert round(q_star, 3) == 1.178
    assert round(chi1(sw2, tanh, q_star), 2) == 1.21
    assert round(math.sqrt(length_map(q_star, 1.0, tanh)), 3) == 0.651
    assert length_map(q_star, sw2, tanh) == pytest.approx(q_star, rel=1e-10)
    # the same fixed point through mean_field_forward on a deep equal-width net
    n, depth = 100, 60
    mf = mean_field_forward(1.0, [n] * (depth + 1), [sw2 / n] * depth, tanh)
    assert round(mf.q[-1], 3) == 1.178
    assert round(mf.std[-1], 3) == 0.651


def test_sigmoid_mean_is_not_zero() -> None:
    sigmoid = get_activation("sigmoid")
    mf = mean_field_forward(1 / 3, [100, 100, 100], [0.01, 0.01], sigmoid)
    np.testing.assert_allclose(mf.mean, 0.5, atol=1e-12)  # odd part integrates to 0
    np.testing.assert_allclose(mf.var, mf.second_moment - 0.25)
    assert mf.q[1] == pytest.approx(100 * 0.01 * mf.second_moment[0])


def test_relu_he_rule_keeps_q() -> None:
    # He et al. (2015): n Var[W] = 2 keeps E[s^2] for relu: q^{k+1} = 2 * q^k / 2.
    relu = get_activation("relu")
    mf = mean_field_forward(0.5, [50] * 6, [2 / 50] * 5, relu)  # q^1 = 50 * (2/50) * 0.5
    np.testing.assert_allclose(mf.q, 1.0, rtol=1e-10)
    np.testing.assert_allclose(mf.mean, 1 / math.sqrt(2 * math.pi), rtol=1e-10)
    assert chi1(2.0, relu, 1.0) == pytest.approx(1.0, rel=1e-10)


def test_bias_variance_enters_q() -> None:
    tanh = get_activation("tanh")
    plain = mean_field_forward(1.0, [10, 10], [0.1], tanh)
    biased = mean_field_forward(1.0, [10, 10], [0.1], tanh, bias_vars=0.25)
    assert biased.q[0] == pytest.approx(plain.q[0] + 0.25)


def _simulate(
    activation: str, rule: str, seed: int, width: int = 1000, depth: int = 5, batch: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The paper's setting: 1024 inputs U[-1, 1], ``depth`` hidden layers, 10 softmax outputs."""
    rng = np.random.default_rng(seed)
    widths = [1024] + [width] * depth + [10]
    weights, wvars = [], []
    for fan_in, fan_out in itertools.pairwise(widths):
        if rule == "normalized":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
        else:
            bound = 1.0 / math.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)))
        wvars.append(bound**2 / 3.0)
    x = rng.uniform(-1.0, 1.0, size=(batch, widths[0]))
    act = get_activation(activation)
    cache = forward(x, weights, None, act)
    grads = backward(cache, weights, act, output_grad=rng.standard_normal((batch, widths[-1])))
    mf = mean_field_forward(float(np.mean(x * x)), widths, wvars, act)
    back = mean_field_backward(1.0, mf.q, widths, wvars, act)
    measured = np.array([z.var() for z in cache.hidden])
    measured_back = np.array([ds.var() for ds in grads.ds])
    return measured, mf.var[:-1], measured_back, back


@pytest.mark.parametrize(
    ("activation", "rule"),
    [
        ("tanh", "normalized"),
        ("tanh", "standard"),
        ("softsign", "standard"),
        ("sigmoid", "standard"),
    ],
)
def test_mean_field_matches_a_simulated_network(activation: str, rule: str) -> None:
    measured, predicted, measured_back, predicted_back = _simulate(activation, rule, seed=0)
    np.testing.assert_allclose(measured, predicted, rtol=0.10)
    np.testing.assert_allclose(measured_back, predicted_back, rtol=0.10)
    if activation == "tanh" and rule == "standard":
        # the paper's figures 6 and 7: activations and gradients shrink with depth
        assert np.all(np.diff(measured) < 0)
        assert np.all(np.diff(measured_back[:-1]) > 0)
