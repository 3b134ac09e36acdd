"""Tests for xavinit.core.network: forward values and backward gradients against finite differences."""

from __future__ import annotations

import itertools
from typing import Any, cast

import numpy as np
import pytest

from xavinit.core.activations import ACTIVATION_NAMES, Activation, get_activation
from xavinit.core.network import (
    Buffers,
    Cost,
    ForwardCache,
    Gradients,
    backward,
    forward,
    nll_cost,
    quadratic_cost,
    softmax,
)

SPECS = [*ACTIVATION_NAMES, "leaky-relu:slope=0.2"]
WIDTHS = (5, 4, 3, 3)
BATCH = 6
H = 1e-6


def _tiny_net(
    seed: int = 0,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, WIDTHS[0]))
    weights = [rng.normal(size=(a, b)) for a, b in itertools.pairwise(WIDTHS)]
    biases = [rng.normal(scale=0.5, size=b) for b in WIDTHS[1:]]
    labels = rng.integers(0, WIDTHS[-1], size=BATCH)
    output_grad = rng.normal(size=(BATCH, WIDTHS[-1]))
    return x, weights, biases, labels, output_grad


def _cost_from(
    k: int,
    s_k: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    act: Activation,
    cost: str,
    labels: np.ndarray,
    output_grad: np.ndarray,
) -> float:
    """Cost as a function of the pre-activation ``s^{k+1}`` (0-based layer ``k``)."""
    s = s_k
    for i in range(k + 1, len(weights)):
        s = act.forward(s) @ weights[i] + biases[i]
    if cost == "nll":
        return nll_cost(s, labels)
    if cost == "quadratic":
        return quadratic_cost(s, labels)
    return float(np.sum(output_grad * s))


def _cost(
    x: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    act: Activation,
    cost: str,
    labels: np.ndarray,
    output_grad: np.ndarray,
) -> float:
    s0 = x @ weights[0] + biases[0]
    return _cost_from(0, s0, weights, biases, act, cost, labels, output_grad)


def _grads(
    act: Activation,
    cost: str,
    x: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    labels: np.ndarray,
    output_grad: np.ndarray,
) -> tuple[ForwardCache, Gradients]:
    cache = forward(x, weights, biases, act)
    if cost == "output_grad":
        return cache, backward(cache, weights, act, output_grad=output_grad)
    return cache, backward(cache, weights, act, labels=labels, cost=cast(Cost, cost))


@pytest.mark.parametrize("cost", ["nll", "quadratic", "output_grad"])
@pytest.mark.parametrize("spec", SPECS)
def test_backward_matches_finite_differences(spec: str, cost: str) -> None:
    act = get_activation(spec)
    x, weights, biases, labels, output_grad = _tiny_net()
    cache, grads = _grads(act, cost, x, weights, biases, labels, output_grad)
    args = (act, cost, labels, output_grad)

    for i in range(len(weights)):
        dw = np.zeros_like(weights[i])
        for idx in np.ndindex(weights[i].shape):
            plus = [w.copy() for w in weights]
            minus = [w.copy() for w in weights]
            plus[i][idx] += H
            minus[i][idx] -= H
            dw[idx] = (_cost(x, plus, biases, *args) - _cost(x, minus, biases, *args)) / (2 * H)
        np.testing.assert_allclose(grads.dw[i], dw, rtol=1e-5, atol=1e-8, err_msg=f"dw[{i}]")

        db = np.zeros_like(biases[i])
        for j in range(len(db)):
            plus = [b.copy() for b in biases]
            minus = [b.copy() for b in biases]
            plus[i][j] += H
            minus[i][j] -= H
            db[j] = (_cost(x, weights, plus, *args) - _cost(x, weights, minus, *args)) / (2 * H)
        np.testing.assert_allclose(grads.db[i], db, rtol=1e-5, atol=1e-8, err_msg=f"db[{i}]")

        s_i = cache.z[i] @ weights[i] + biases[i]
        ds = np.zeros_like(s_i)
        for idx in np.ndindex(s_i.shape):
            plus, minus = s_i.copy(), s_i.copy()
            plus[idx] += H
            minus[idx] -= H
            ds[idx] = (
                _cost_from(i, plus, weights, biases, *args)
                - _cost_from(i, minus, weights, biases, *args)
            ) / (2 * H)
        np.testing.assert_allclose(grads.ds[i], ds, rtol=1e-5, atol=1e-8, err_msg=f"ds[{i}]")


@pytest.mark.parametrize("spec", SPECS)
def test_forward_keeps_what_backward_needs(spec: str) -> None:
    act = get_activation(spec)
    x, weights, biases, _, _ = _tiny_net(1)
    cache = forward(x, weights, biases, act)
    assert len(cache.z) == len(weights) and len(cache.s) == len(weights) - 1
    assert cache.z[0] is x or np.shares_memory(cache.z[0], x)
    z, s_ref = x, []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        s = z @ w + b
        if i < len(weights) - 1:
            s_ref.append(s)
            z = act.forward(s)
            np.testing.assert_allclose(cache.z[i + 1], z, rtol=1e-12)
    np.testing.assert_allclose(cache.logits, s, rtol=1e-12)
    for kept, ref in zip(cache.s, s_ref, strict=True):
        if act.needs_preactivation:
            np.testing.assert_allclose(kept, ref, rtol=1e-12)
        else:
            assert kept is None
    np.testing.assert_allclose(cache.probs.sum(axis=1), 1.0)
    assert cache.hidden == cache.z[1:]


def test_dtypes_follow_the_input() -> None:
    act = get_activation("tanh")
    x, weights, biases, labels, _ = _tiny_net(2)
    cache32 = forward(x.astype(np.float32), weights, biases, act)
    assert all(z.dtype == np.float32 for z in cache32.z)
    assert cache32.logits.dtype == np.float32 and cache32.probs.dtype == np.float32
    grads = backward(cache32, weights, act, labels=labels)
    assert all(g.dtype == np.float32 for g in (*grads.ds, *grads.dw, *grads.db))
    cache64 = forward(x, weights, biases, act)
    assert cache64.probs.dtype == np.float64
    np.testing.assert_allclose(cache32.probs, cache64.probs, rtol=1e-5, atol=1e-6)
    cache_int = forward(np.ones((2, 5), dtype=np.int64), weights, None, act)
    assert cache_int.probs.dtype == np.float32


def test_softmax_and_costs_are_stable() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    with np.errstate(all="raise", under="ignore"):  # exp(-2000) underflows harmlessly to 0
        p = softmax(logits)
        nll = nll_cost(logits, np.array([1, 2]))
        quad = quadratic_cost(logits, np.array([0, 2]))
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
    assert nll == pytest.approx((1000.0 + np.log(3.0)) / 2)
    assert quad == pytest.approx((0.0 + 0.5 * (1 / 9 + 1 / 9 + 4 / 9)) / 2)
    onehot = np.eye(3)[[1, 2]]
    assert nll_cost(logits, onehot) == pytest.approx(nll)


def test_output_grad_is_the_top_gradient() -> None:
    act = get_activation("softsign")
    x, weights, biases, _, output_grad = _tiny_net(3)
    cache = forward(x, weights, biases, act)
    grads = backward(cache, weights, act, output_grad=output_grad)
    np.testing.assert_array_equal(grads.ds[-1], output_grad)
    assert grads.ds[-1] is not output_grad


def test_single_layer_network() -> None:
    act = get_activation("tanh")
    x = np.eye(3)
    w = [np.arange(6.0).reshape(3, 2)]
    cache = forward(x, w, None, act)
    assert cache.z == (x,) and cache.s == ()
    grads = backward(cache, w, act, labels=np.array([0, 1, 0]))
    np.testing.assert_allclose(grads.dw[0], x.T @ ((cache.probs - np.eye(2)[[0, 1, 0]]) / 3))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "exactly one"),
        ({"labels": np.zeros(BATCH, int), "output_grad": np.zeros((BATCH, 3))}, "exactly one"),
        ({"labels": np.zeros(BATCH, int), "cost": "hinge"}, "unknown cost 'hinge'; valid"),
        ({"labels": np.full(BATCH, 3)}, "labels must lie in 0..2"),
        ({"output_grad": np.zeros((BATCH, 4))}, "output_grad: expected shape"),
    ],
)
def test_backward_rejects_bad_arguments(kwargs: dict[str, Any], fragment: str) -> None:
    act = get_activation("tanh")
    x, weights, biases, _, _ = _tiny_net()
    cache = forward(x, weights, biases, act)
    with pytest.raises(ValueError, match=fragment):
        backward(cache, weights, act, **kwargs)


def test_forward_rejects_mismatched_shapes() -> None:
    act = get_activation("tanh")
    x, weights, biases, _, _ = _tiny_net()
    with pytest.raises(ValueError, match=r"weights\[1\]: expected shape \(4, fan_out\)"):
        forward(x, [weights[0], weights[2]], None, act)
    with pytest.raises(ValueError, match=r"biases\[0\]"):
        forward(x, weights, [b[:-1] for b in biases], act)


def test_buffers_give_the_same_passes_in_reused_memory():
    """forward and backward into Buffers: bit for bit the passes without them, and a second
    network of the same shapes is written into the same arrays (no fresh memory per product)."""
    rng = np.random.default_rng(0)
    act = get_activation("tanh")
    buffers = Buffers()
    kept = []
    for _ in range(2):
        w = [
            rng.standard_normal((7, 9), dtype=np.float32),
            rng.standard_normal((9, 4), dtype=np.float32),
        ]
        x = rng.standard_normal((5, 7), dtype=np.float32)
        top = rng.standard_normal((5, 4), dtype=np.float32)
        plain = forward(x, w, None, act)
        plain_grads = backward(plain, w, act, output_grad=top)
        cache = forward(x, w, None, act, buffers)
        grads = backward(cache, w, act, output_grad=top, buffers=buffers)
        for a, b in zip((*plain.z, plain.logits, *plain_grads.ds, *plain_grads.dw),
                        (*cache.z, cache.logits, *grads.ds, *grads.dw), strict=True):  # fmt: skip
            assert a.tobytes() == b.tobytes()
        kept.append((cache.z[1], grads.dw[0], grads.ds[0]))
    assert all(np.shares_memory(a, b) for a, b in zip(*kept, strict=True))


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        *((name, np.float32) for name in ACTIVATION_NAMES),
        ("tanh", np.float64),
        ("gelu", np.float64),
    ],
)
def test_observed_passes_apply_f_chunk_by_chunk_to_the_same_numbers(name, dtype):
    """With an observer, f and f' run chunk by chunk (each chunk shown while in cache): every
    array is bit for bit what the unobserved passes make, and the observer is shown each
    final array whole, in order, in chunks of CHUNK (layers of 70,000 and 2,000 values)."""
    from xavinit.core.stats import CHUNK

    rng = np.random.default_rng(5)
    widths = (30, 7000, 200, 10)
    weights = [
        (rng.standard_normal((a, b)) * 1.5 / np.sqrt(a)).astype(dtype)
        for a, b in itertools.pairwise(widths)
    ]
    x = rng.standard_normal((10, widths[0])).astype(dtype)
    top = rng.standard_normal((10, widths[-1])).astype(dtype)
    act = get_activation(name)

    def passes(observe):
        buffers = Buffers()
        with np.errstate(all="ignore"):
            cache = forward(x, weights, None, act, buffers, observe)
            grads = backward(cache, weights, act, output_grad=top, buffers=buffers,
                             observe=observe)  # fmt: skip
        arrays = {("activation", k): z for k, z in enumerate((*cache.hidden, cache.logits))}
        arrays |= {("ds", k): a for k, a in enumerate(grads.ds)}
        arrays |= {("dw", k): a for k, a in enumerate(grads.dw)}
        return {key: a.copy() for key, a in arrays.items()}

    shown: dict[tuple[str, int], list[np.ndarray]] = {}

    def observe(role, layer, array, start, piece):
        seen = shown.setdefault((role, layer), [])
        assert start == sum(p.size for p in seen) and start % CHUNK == 0
        assert piece.size == min(CHUNK, array.size - start)
        seen.append(piece.copy())

    plain, observed = passes(None), passes(observe)
    assert plain.keys() == observed.keys() == shown.keys()
    for key, array in plain.items():
        assert observed[key].tobytes() == array.tobytes(), key
        assert np.concatenate(shown[key]).tobytes() == array.tobytes(), key
