"""Tests for xavinit.core.theory: hand-computed linear regime, mean-field examples, simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from xavinit.core.activations import get_activation
from xavinit.core.network import backward, forward
from xavinit.core.theory import (
    chi1,
    correlation_map,
    fixed_point,
    gain_theory,
    length_map,
    length_map_slope,
    linear_activation_var,
    linear_backprop_var,
    linear_regime_applies,
    linear_weight_grad_var,
    mean_field_backward,
    mean_field_forward,
    mean_field_weight_grad_var,
    phase_diagram,
)
from xavinit.errors import XavinitError

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


def test_linear_weight_grad_var_with_a_batch_by_hand() -> None:
    # B = 4, E[x x'] = 0.5, top cross 0.1. Cross terms: E[z^{k-1} z'^{k-1}] = 0.5, 0.5*0.2 = 0.1,
    # 0.1*0.6 = 0.06; E[d d'] = 0.1 * (0.75/0.5 = 1.5, 1.2/0.5... ) i.e. 0.12, 0.15, 0.1.
    # Var = (diagonal + 3 * cross) / 4.
    diag = np.array([1.2, 0.3, 0.12])
    cross = np.array([0.5 * 0.12, 0.1 * 0.15, 0.06 * 0.1])
    np.testing.assert_allclose(
        linear_weight_grad_var(WIDTHS, WVARS, 2.0, 0.5, batch=4, input_cross_moment=0.5,
                               top_cross_moment=0.1),
        (diag + 3 * cross) / 4,
    )  # fmt: skip


def test_linear_regime_applies_only_near_unit_slope() -> None:
    applies = {n for n in ("linear", "tanh", "softsign", "elu", "hardtanh")}
    for name in ("linear", "tanh", "softsign", "elu", "hardtanh", "sigmoid", "relu", "selu",
                 "gelu", "silu", "mish", "softplus", "relu6", "erf", "elu:alpha=0.5"):  # fmt: skip
        assert linear_regime_applies(get_activation(name)) == (name in applies), name


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


def _trapezoid(fn, step: float = 0.005) -> float:
    """E[fn(z)], z ~ N(0, 1), by the trapezoidal rule on [-40, 40] (independent of quadrature;
    geometrically convergent for integrands analytic near the real axis)."""
    z = np.arange(-40.0, 40.0 + step / 2, step)
    return float(np.sum(fn(z) * np.exp(-0.5 * z * z)) * step / math.sqrt(2.0 * math.pi))


def test_gain_theory_of_relu_and_linear_is_critical() -> None:
    for name, gain in (("relu", math.sqrt(2.0)), ("linear", 1.0), ("leaky-relu:slope=0.2",
                       math.sqrt(2.0 / 1.04))):  # fmt: skip
        t = gain_theory(name)
        assert t.forward_gain == pytest.approx(gain, rel=1e-12)
        assert t.backward_gain == pytest.approx(gain, rel=1e-12)
        assert t.fixed_point_gain == pytest.approx(gain, rel=1e-12)
        assert t.chi1 == pytest.approx(1.0, abs=1e-12)
        assert t.fixed_point_slope == pytest.approx(1.0, abs=1e-10)  # q -> g^2 q/2 = q
        assert t.phase == "critical" and t.depth_scale == math.inf
    assert gain_theory("relu").torch_ratio == pytest.approx(1.0, rel=1e-12)


def test_gain_theory_of_tanh_by_an_independent_rule() -> None:
    t = gain_theory("tanh")
    m2 = _trapezoid(lambda z: np.tanh(z) ** 2)
    d1 = _trapezoid(lambda z: 1 - np.tanh(z) ** 2)
    d2 = _trapezoid(lambda z: (1 - np.tanh(z) ** 2) ** 2)
    zff = _trapezoid(lambda z: z * np.tanh(z) * (1 - np.tanh(z) ** 2))
    assert t.forward_gain == pytest.approx(1 / math.sqrt(m2), rel=1e-10)
    assert t.fixed_point_gain == pytest.approx(t.forward_gain, rel=1e-12)
    assert t.backward_gain == pytest.approx(1 / math.sqrt(d2), rel=1e-10)
    assert t.chi1 == pytest.approx(d2 / m2, rel=1e-10)
    assert t.fixed_point_slope == pytest.approx(zff / m2, rel=1e-9)
    # Chaos (chi1 > 1); tanh is odd, so two inputs decorrelate completely: c* = 0, where the
    # correlation map's slope is g^2 E[f'(u1)] E[f'(u2)] = g^2 E[tanh'(z)]^2.
    assert t.phase == "chaotic" and t.correlation_fixed_point == 0.0
    assert t.depth_scale == pytest.approx(-1 / math.log(d1**2 / m2), rel=1e-9)
    assert t.torch_ratio == pytest.approx((5 / 3) * math.sqrt(m2), rel=1e-10)


def test_gain_theory_of_sigmoid_is_ordered() -> None:
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    m2 = _trapezoid(lambda z: sig(z) ** 2)
    d2 = _trapezoid(lambda z: (sig(z) * (1 - sig(z))) ** 2)
    t = gain_theory("sigmoid")
    assert t.mean == pytest.approx(0.5, abs=1e-12)
    assert t.second_moment == pytest.approx(m2, rel=1e-10)
    assert t.phase == "ordered" and t.correlation_fixed_point == 1.0
    assert t.depth_scale == pytest.approx(-1 / math.log(d2 / m2), rel=1e-9)
    assert t.torch_gain == 1.0 and t.torch_ratio == pytest.approx(math.sqrt(m2), rel=1e-10)


def test_selu_forward_gain_is_one() -> None:
    # Klambauer et al. (2017) chose lambda and alpha so that E[selu(z)] = 0, E[selu(z)^2] = 1.
    t = gain_theory("selu")
    assert t.forward_gain == pytest.approx(1.0, abs=1e-8)
    assert t.mean == pytest.approx(0.0, abs=1e-8)
    assert t.torch_ratio == pytest.approx(0.75, abs=1e-8)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu"])
def test_correlation_fixed_point_of_non_odd_activations(name: str) -> None:
    """c* solves C(c) = c; checked with a 10^6-draw Monte Carlo of E[f(u1) f(u2)] at c*
    (within 5 standard errors), and it attracts: the map's slope there is below 1."""
    t = gain_theory(name)
    assert t.phase == "chaotic" and 0.0 < t.correlation_fixed_point < 1.0
    act = get_activation(name)
    c = t.correlation_fixed_point
    assert correlation_map(c, t.fixed_point_gain, act) == pytest.approx(c, abs=1e-10)
    a, b = np.random.default_rng(3).standard_normal((2, 1_000_000))
    product = t.fixed_point_gain**2 * act(a) * act(c * a + math.sqrt(1 - c * c) * b)
    assert abs(product.mean() - c) <= 5 * product.std() / 1000
    assert 0 < t.depth_scale < math.inf


def test_gelu_silu_and_mish_sit_on_a_repelling_fixed_point() -> None:
    """Their E[f(sqrt(q) z)^2] / q grows with q, so the variance map's slope at q* = 1 is
    above 1: no gain keeps their variance at depth (docs/gain.md)."""
    for name in ("gelu", "silu", "mish"):
        assert gain_theory(name).fixed_point_slope > 1.05
    for name in ("tanh", "selu", "sigmoid", "elu", "erf", "softplus"):
        assert gain_theory(name).fixed_point_slope < 0.95


def _cross(a: np.ndarray) -> float:
    """Mean of <a_b, a_b'> / width over pairs of rows b != b'."""
    total = a.sum(axis=0)
    return float(total @ total - np.sum(a * a)) / (a.shape[0] * (a.shape[0] - 1) * a.shape[1])


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh"])
def test_mean_field_weight_grad_var_matches_networks(name: str) -> None:
    """Var[dC/dW] of the batch-mean NLL cost (random labels), 16 networks 200-600x3-10, batch
    60: the per-network ratio measured / predicted averages 1 within 5 standard errors of
    its spread over the networks (the prediction of each uses that network's measured
    input and top-gradient moments). For sigmoid and relu the diagonal term alone (the old
    prediction, E[z^2] Var[delta] / B) is too low above layer 1: the mean log ratio exceeds 5
    of its standard errors. The prediction leaves out a term of relative order batch/width
    (through W^L the output error depends on the batch's own activations): +15% at batch
    150 on width 250 for relu, so batch/width is 0.1 here."""
    rng = np.random.default_rng(11)
    widths, batch, draws = [200, 600, 600, 600, 10], 60, 16
    act = get_activation(name)
    wvars = [2 / a if name == "relu" else 1 / a for a in widths[:-1]]
    new, old = [], []
    for _ in range(draws):
        weights = [rng.normal(0, math.sqrt(v), (a, b)) for v, (a, b) in
                   zip(wvars, itertools.pairwise(widths), strict=True)]  # fmt: skip
        x = rng.uniform(-1, 1, (batch, widths[0]))
        cache = forward(x, weights, None, act)
        top = cache.probs.copy()
        top[np.arange(batch), rng.integers(0, 10, batch)] -= 1
        grads = backward(cache, weights, act, output_grad=top)
        m2 = float(np.mean(x * x))
        mf = mean_field_weight_grad_var(
            m2, _cross(x), widths, wvars, act, float(np.mean(top * top)), _cross(top), batch
        )
        measured = np.array([np.var(dw / batch) for dw in grads.dw])
        below = [m2, *mean_field_forward(m2, widths, wvars, act).second_moment[:-1]]
        new.append(measured / mf.weight_grad_var)
        old.append(measured / (np.array(below) * mf.backprop_var / batch))
    new_mean, new_se = np.mean(new, axis=0), np.std(new, axis=0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(new_mean - 1) <= 5 * new_se), (new_mean, new_se)
    if name != "tanh":
        logs = np.log(old)  # skewed ratios: compare on the log scale
        old_mean, old_se = np.mean(logs, axis=0), np.std(logs, axis=0, ddof=1) / math.sqrt(draws)
        assert np.all(old_mean[1:] > 5 * old_se[1:]), (old_mean, old_se)


# --- biases: mean field with sigma_b^2 > 0 (issue 24) -------------------------------------------
#
# The expectations below are computed here, independently of xavinit.core.activations: the three
# smooth activations written out, E over z ~ N(0, 1) by 200-node probabilists' Gauss-Hermite
# (numpy.polynomial.hermite_e.hermegauss), fixed points by bisection.

_HZ, _HW = np.polynomial.hermite_e.hermegauss(200)
_HW = _HW / math.sqrt(2.0 * math.pi)


def _silu(s):
    return 0.5 * s * (1.0 + np.tanh(0.5 * s))  # s sigmoid(s)


def _gelu(s):  # the tanh approximation xavinit's networks compute
    return 0.5 * s * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (s + 0.044715 * s**3)))


def _mish(s):
    return s * np.tanh(np.logaddexp(0.0, s))


_SMOOTH = {"silu": _silu, "gelu": _gelu, "mish": _mish}


def _m2(f, q):
    """E[f(sqrt(q) z)^2], q a scalar or an array."""
    return f(np.sqrt(np.asarray(q, dtype=float))[..., None] * _HZ) ** 2 @ _HW


def _smallest_fixed_point(f, sw2: float, sb2: float) -> float:
    """The smallest root of sw2 E[f(sqrt(q) z)^2] + sb2 - q: a grid up from sb2, then bisection;
    NaN when there is none below q = 20."""
    grid = np.concatenate([[sb2], np.geomspace(max(sb2, 1e-3), 20.0, 400)])
    below = np.flatnonzero(sw2 * _m2(f, grid) + sb2 - grid <= 0)
    if below.size == 0:
        return math.nan
    i = int(below[0])
    lo, hi = grid[i - 1], grid[i]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sw2 * _m2(f, mid) + sb2 - mid > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _slope(f, sw2: float, q: float, h: float = 1e-5) -> float:
    return float(sw2 * (_m2(f, q + h) - _m2(f, q - h)) / (2 * h))  # central difference


@pytest.mark.parametrize(
    ("name", "gain", "sb2", "q_star", "slope"),
    [("silu", 1.5, 0.2, 1.008, 0.940), ("gelu", 1.5, 0.05, 0.169, 0.81),
     ("mish", 1.45, 0.05, 0.467, 0.97)],
)  # fmt: skip
def test_stable_fixed_points_with_biases(name, gain, sb2, q_star, slope):
    """Issue 24's three stable fixed points, recomputed here and by xavinit."""
    f = _SMOOTH[name]
    q_ref = _smallest_fixed_point(f, gain**2, sb2)
    slope_ref = _slope(f, gain**2, q_ref)
    digits = len(str(slope).split(".")[1])
    assert round(q_ref, 3) == q_star and round(slope_ref, digits) == slope
    act = get_activation(name)
    q = fixed_point(gain**2, act, sb2, q0=sb2)  # from below: the smallest fixed point
    assert q == pytest.approx(q_ref, rel=1e-6)
    assert length_map_slope(q, gain**2, act) == pytest.approx(slope_ref, rel=1e-5)
    assert slope_ref < 1.0  # attracts


@pytest.mark.parametrize(("name", "limit"), [("silu", 0.25), ("gelu", 0.25), ("mish", 0.36)])
def test_variance_map_over_q_starts_at_f_prime_0_squared(name, limit):
    """E[f(sqrt(q) z)^2] / q -> f'(0)^2 as q -> 0: 1/4 for silu and gelu, tanh(ln 2)^2 = 0.36
    for mish (tanh(ln 2) = (4 - 1) / (4 + 1))."""
    assert math.tanh(math.log(2.0)) ** 2 == pytest.approx(0.36, abs=1e-15)
    q = 1e-8
    assert float(_m2(_SMOOTH[name], q)) / q == pytest.approx(limit, rel=1e-3)
    assert length_map(q, 1.0, get_activation(name)) / q == pytest.approx(limit, rel=1e-3)
    # and it grows to 1/2 at large q (f(s) -> s for s > 0, -> 0 for s < 0)
    assert float(_m2(_SMOOTH[name], 1e4)) / 1e4 == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("name", ["silu", "gelu", "mish"])
def test_gain_theory_with_biases(name):
    """At sb^2 the fixed-point gain puts q* at 1: g^2 E[f^2] + sb^2 = 1; the slope and chi_1
    shrink by (1 - sb^2); sb^2 > 1 - 1 / slope_0 makes the fixed point attract."""
    f = _SMOOTH[name]
    m2 = float(_m2(f, 1.0))
    h = 1e-6
    d2 = float(_HW @ ((f(_HZ + h) - f(_HZ - h)) / (2 * h)) ** 2)
    slope0 = _slope(f, 1.0, 1.0) / m2
    for sb2 in (0.0, 0.1, 0.3):
        t = gain_theory(name, sb2)
        assert t.bias_var == sb2
        assert t.fixed_point_gain**2 == pytest.approx((1.0 - sb2) / m2, rel=1e-9)
        assert t.fixed_point_slope == pytest.approx((1.0 - sb2) * slope0, rel=1e-5)
        assert t.chi1 == pytest.approx((1.0 - sb2) * d2 / m2, rel=1e-6)
        assert (t.fixed_point_slope < 1.0) == (sb2 > 1.0 - 1.0 / slope0)
        assert length_map(1.0, t.fixed_point_gain**2, get_activation(name), sb2) == (
            pytest.approx(1.0, rel=1e-9)
        )
    assert gain_theory(name).fixed_point_gain == pytest.approx(gain_theory(name).forward_gain)


def test_gain_theory_refuses_a_bias_variance_of_one():
    with pytest.raises(XavinitError, match=r"\[0, 1\)"):
        gain_theory("tanh", 1.0)


def test_correlation_map_with_biases_by_hand():
    """linear f: E[u_1 u_2] = q c, so C(c) = (g^2 q c + sb^2) / q."""
    lin = get_activation("linear")
    assert correlation_map(0.3, 0.8, lin, 1.0, 0.36) == pytest.approx(0.64 * 0.3 + 0.36)


def test_linear_regime_with_biases_by_hand():
    # Var[z^1] = 2*0.2 + 0.1 = 0.5; Var[z^2] = 0.5*0.6 + 0.1 = 0.4; Var[s^3] = 0.4*1.2 + 0.1
    np.testing.assert_allclose(
        linear_activation_var(WIDTHS, WVARS, 2.0, 0.1), [0.5, 0.4, 0.58], rtol=1e-12
    )
    # cross moments: E[x x'] = 0.5 -> 0.5*0.2 + 0.1 = 0.2 -> 0.2*0.6 + 0.1 = 0.22; E[d d'] as
    # without biases (0.12, 0.15, 0.1), diagonal 2*0.6, 0.5*0.75, 0.4*0.5.
    diag = np.array([1.2, 0.375, 0.2])
    cross = np.array([0.5 * 0.12, 0.2 * 0.15, 0.22 * 0.1])
    got = linear_weight_grad_var(WIDTHS, WVARS, 2.0, 0.5, 4, 0.5, 0.1, bias_vars=0.1)
    np.testing.assert_allclose(got, (diag + 3 * cross) / 4, rtol=1e-12)
    # the mean-field version with f(s) = s says the same
    mf = mean_field_weight_grad_var(2.0, 0.5, WIDTHS, WVARS, get_activation("linear"), 0.5, 0.1,
                                    4, 0.1)  # fmt: skip
    np.testing.assert_allclose(mf.weight_grad_var, got, rtol=1e-9)
    with pytest.raises(XavinitError, match="bias variances"):
        linear_activation_var(WIDTHS, WVARS, 2.0, -0.1)


def test_phase_diagram_of_relu_in_closed_form():
    """relu: q = sw^2 q / 2 + sb^2, so q* = sb^2 / (1 - sw^2 / 2) below sw = sqrt(2) and no
    fixed point above; chi_1 = sw^2 / 2 and the slope too (Poole et al., 2016)."""
    sw = np.array([0.6, 1.0, 1.3, 1.5, 2.0])
    sb = np.array([0.1, 0.5])
    p = phase_diagram(get_activation("relu"), sw, sb)
    for i, w in enumerate(sw):
        for j, b in enumerate(sb):
            if w < math.sqrt(2.0):
                assert p.q_star[i, j] == pytest.approx(b**2 / (1 - w**2 / 2), rel=1e-6)
                assert p.chi1[i, j] == pytest.approx(w**2 / 2, rel=1e-9)
                assert p.slope[i, j] == pytest.approx(w**2 / 2, rel=1e-9)
            else:
                assert math.isnan(p.q_star[i, j]) and math.isnan(p.chi1[i, j])


def test_phase_diagram_of_smooth_activations_against_bisection():
    sw, sb = np.array([1.2, 1.8]), np.array([0.2, 0.45])
    for name, f in _SMOOTH.items():
        p = phase_diagram(get_activation(name), sw, sb)
        h = 1e-6
        for i, w in enumerate(sw):
            for j, b in enumerate(sb):
                q = _smallest_fixed_point(f, w**2, b**2)
                if math.isnan(q):
                    assert math.isnan(p.q_star[i, j]), (name, w, b)
                    continue
                assert p.q_star[i, j] == pytest.approx(q, rel=1e-6), (name, w, b)
                u = math.sqrt(q) * _HZ
                d2 = float(_HW @ ((f(u + h) - f(u - h)) / (2 * h)) ** 2)
                assert p.chi1[i, j] == pytest.approx(w**2 * d2, rel=1e-6)


def test_phase_diagram_of_tanh_without_bias_has_its_edge_at_gain_one():
    """tanh, sb = 0: q* = 0 and chi_1 = sw^2 below sw = 1 (order), q* > 0 and chi_1 > 1 above."""
    p = phase_diagram(get_activation("tanh"), [0.8, 0.95, 1.05, 1.5], [0.0])
    assert p.q_star[0, 0] < 1e-6 and p.chi1[0, 0] == pytest.approx(0.64, rel=1e-4)
    assert p.chi1[1, 0] < 1.0 < p.chi1[2, 0] < p.chi1[3, 0]
    assert p.q_star[3, 0] > 0.1
