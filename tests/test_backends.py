"""Array backends (docs/backends.md): torch on the CPU agrees with numpy within floating-point
rounding, and every way a backend can be unavailable is exit 2 with what to install or use.

Tolerances come from the rounding of a dot product (Higham, *Accuracy and Stability of
Numerical Algorithms*, eq. 3.5): a length-``n`` product computed in any order is within
``gamma_n |a|.|b|`` of the exact one, ``gamma_n = n u / (1 - n u)``, ``u`` the unit roundoff. Two
backends summing in different orders are then within twice that of each other; a network
chains ``L`` products forward and ``2L`` backward, each bounded against the same computation on
absolute values (a running error bound). A bug, by contrast, moves results by O(1).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.config import PropagateConfig, TrainConfig
from xavinit.core import backends
from xavinit.core.activations import ACTIVATION_NAMES, get_activation
from xavinit.core.backends import get_backend, to_numpy
from xavinit.core.network import backward, forward
from xavinit.core.sgd import SGD
from xavinit.experiments.checkpoint import load_checkpoint
from xavinit.experiments.propagate import run_propagate
from xavinit.experiments.sweep import train_mapping
from xavinit.experiments.train import Interrupted, run_train

runner = CliRunner()
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")


CUPY_ON_GPU = ("cupy", "cuda") in backends.usable_backends()


PLACES = [
    pytest.param(("torch", "cpu"), marks=needs_torch, id="torch-cpu"),
    pytest.param(
        ("cupy", "cuda"),
        marks=pytest.mark.skipif(not CUPY_ON_GPU, reason="needs cupy and a CUDA device"),
        id="cupy-cuda",
    ),
]


def gamma(n: int, dtype: type) -> float:
    """Higham's gamma_n for the unit roundoff of ``dtype``."""
    u = float(np.finfo(dtype).eps) / 2
    return n * u / (1 - n * u)


ELEMENTWISE_ULPS = 32
"""An activation kernel is at most 16 float operations (gelu's derivative is the longest), each
rounding by half an ulp of its result, in each of two backends whose libm may differ by an ulp
more per transcendental call: 32 ulps of the result's magnitude, scaled by ``1 + |s|`` for the
kernels that multiply by ``s`` (gelu, silu, mish, selu)."""


def _close(a, b, tolerance):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    excess = np.abs(a - b) - tolerance
    assert np.all(excess <= 0), f"worst excess {excess.max():.3g} over the rounding bound"


# --- unavailable backends: exit 2, naming what to install or use -----------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "jax"], "--backend: must be one of numpy, torch, cupy, got 'jax'"),
        (["--device", "gpu"], "--device: must be cpu, cuda or cuda:N, got 'gpu'"),
        (["--device", "cuda"], "numpy runs on the CPU only, got cuda; use --backend torch"),
        (["--backend", "cupy"], "cupy runs on CUDA devices only; give --device cuda"),
    ],
)
def test_a_bad_placement_is_exit_2_before_any_work(args, message, tmp_path):
    out = tmp_path / "r.json"
    for command in (["train", "--updates", "10"], ["propagate", "-l", "8,8"]):
        result = runner.invoke(app, [*command, *args, "-o", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert not out.exists()


def test_a_missing_package_names_its_install_line(monkeypatch, tmp_path):
    for name, extra in (("torch", "xavinit[torch]"), ("cupy", "xavinit[cupy]")):
        monkeypatch.setitem(sys.modules, name, None)  # import torch -> ImportError
        get_backend.cache_clear()
        device = "cpu" if name == "torch" else "cuda"
        result = runner.invoke(
            app, ["train", "--updates", "10", "--backend", name, "--device", device]
        )
        assert result.exit_code == 2, result.output
        assert f"--backend {name}: {name} is not installed; install it with pip install" in (
            result.output
        )
        assert extra in result.output
    get_backend.cache_clear()


@needs_torch
def test_cuda_without_a_gpu_is_exit_2(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = runner.invoke(
        app, ["propagate", "-l", "8,8", "--backend", "torch", "--device", "cuda:0"]
    )
    assert result.exit_code == 2
    assert "--device cuda:0: torch sees no CUDA device" in result.output
    assert "use --device cpu" in result.output


def test_numpy_is_the_default_and_copies_nothing():
    backend = get_backend()
    assert backend.ops is np and backend.is_numpy
    a = np.ones(3, dtype=np.float32)
    assert backend.asarray(a) is a and backend.to_numpy(a) is a


# --- the kernels agree -----------------------------------------------------------------------


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_kernels_agree_with_numpy(place, name):
    backend = get_backend(*place)
    act = get_activation(name)
    s = (np.random.default_rng(1).standard_normal((64, 50)) * 4).astype(np.float32)
    s[0, :6] = [0.0, 1.0, -1.0, 6.0, -40.0, 40.0]  # kinks and far tails
    z = act.forward(s.copy())
    d = act.derivative(s, z)
    s_dev = backend.asarray(s.copy())
    z_dev = act.forward(backend.asarray(s.copy()))
    d_dev = act.derivative(s_dev, z_dev)
    out = backend.xp.empty(s.shape, dtype=backend.xp.float32, device=z_dev.device)
    act.derivative(s_dev, z_dev, out=out)
    in_place = backend.asarray(s.copy())
    act.forward(in_place, out=in_place)
    ulp = float(np.finfo(np.float32).eps)
    scale = ELEMENTWISE_ULPS * ulp * (1 + np.abs(s))
    for ours, reference in ((z_dev, z), (in_place, z)):
        _close(to_numpy(ours), reference, scale * (1 + np.abs(reference)))
    for ours in (d_dev, out):
        _close(to_numpy(ours), d, scale * (1 + np.abs(d)))
    # Saturation is a threshold: only values within the rounding bound of it may differ.
    flips = to_numpy(act.saturated(z_dev)) != act.saturated(z)
    assert flips.sum() <= 1


def _network(widths, dtype, seed=0):
    rng = np.random.default_rng(seed)
    weights = [
        (rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
        for a, b in zip(widths[:-1], widths[1:], strict=False)
    ]
    biases = [(0.1 * rng.standard_normal(b)).astype(dtype) for b in widths[1:]]
    x = rng.uniform(-1, 1, (32, widths[0])).astype(dtype)
    y = rng.integers(0, widths[-1], 32)
    return weights, biases, x, y


def _abs_bound(x, weights, act, dtype):
    """Running error bound of every layer's pre-activations and weight gradients: the forward
    and backward passes recomputed on absolute values, each product weighted by 2 gamma_n.

    Forward, with ``E`` the bound on ``|z_a - z_b|`` and ``lip = sup |f'|`` over the values seen:
    ``E_s^k = (E_z^{k-1} + 2 gamma_n |z^{k-1}|) |W^k|``, ``E_z^k = lip E_s^k``. The weight
    gradients' bound is ``4 L gamma_N`` times ``|z|^T |delta|`` of the absolute chain (each of the
    ``2L`` products on the way down contributes at most ``gamma_N`` relative to it, in each of
    the two backends).
    """
    x64 = np.abs(x.astype(np.float64))
    cache = forward(x.astype(np.float64), [w.astype(np.float64) for w in weights], None, act)
    grid = np.linspace(-10, 10, 20001)
    lip = float(np.abs(act.derivative_of(grid)).max())
    err = np.zeros_like(x64)
    z_abs = x64
    s_bounds = []
    for k, w in enumerate(weights):
        w_abs = np.abs(w.astype(np.float64))
        s_err = (err + 2 * gamma(w.shape[0], dtype) * z_abs) @ w_abs
        s_bounds.append(s_err)
        if k < len(weights) - 1:
            err = lip * s_err + 2 * ELEMENTWISE_ULPS * np.finfo(dtype).eps * np.abs(cache.z[k + 1])
            z_abs = np.abs(cache.z[k + 1])
    depth, widest = len(weights), max(max(w.shape) for w in weights) + x.shape[0]
    delta = np.abs(cache.probs) + 1.0  # |P - Y| <= |P| + 1
    dw_bounds = []
    for k in range(depth - 1, -1, -1):
        z_abs = np.abs(cache.z[k])
        dw_bounds.append(4 * depth * gamma(widest, dtype) * (z_abs.T @ delta))
        delta = (delta @ np.abs(weights[k].astype(np.float64)).T) * lip
    return s_bounds, dw_bounds[::-1]


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softsign", "relu", "gelu", "erf"])
def test_forward_and_backward_agree_within_the_rounding_bound(place, dtype, name):
    backend = get_backend(*place)
    act = get_activation(name)
    weights, _, x, y = _network((40, 64, 64, 64, 10), dtype)
    ours = forward(backend.asarray(x), [backend.asarray(w) for w in weights], None, act)
    reference = forward(x, weights, None, act)
    s_bounds, dw_bounds = _abs_bound(x, weights, act, dtype)
    _close(to_numpy(ours.logits), reference.logits, s_bounds[-1])
    grads = backward(ours, [backend.asarray(w) for w in weights], act, labels=backend.asarray(y))
    expected = backward(reference, weights, act, labels=y)
    batch = x.shape[0]
    for k, bound in enumerate(dw_bounds):
        _close(to_numpy(grads.dw[k]), expected.dw[k], bound / batch)


@contextlib.contextmanager
def _no_host_reads(backend):
    """Every way a torch tensor's value reaches the host raises inside the block."""
    if backend.name != "torch":
        yield
        return
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("a value was read back to the host")

    names = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    try:
        for name in names:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("cost", ["nll", "quadratic"])
def test_an_sgd_step_agrees_and_never_reads_back(place, cost):
    backend = get_backend(*place)
    act = get_activation("tanh")
    weights, biases, x, y = _network((40, 64, 64, 10), np.float64)
    ours = SGD([backend.asarray(w.copy()) for w in weights],
               [backend.asarray(b.copy()) for b in biases], act, cost)  # fmt: skip
    reference = SGD([w.copy() for w in weights], [b.copy() for b in biases], act, cost)
    lr = 0.1
    x_dev, y_dev = backend.asarray(x), backend.asarray(y)
    for _ in range(3):
        with _no_host_reads(backend):
            c = ours.step(x_dev, y_dev, lr)
        expected = reference.step(x, y, lr)
    assert type(c).__module__.split(".")[0] == backend.name  # a device scalar, not a float
    assert float(c) == pytest.approx(float(expected), rel=1e-12)
    _, dw_bounds = _abs_bound(x, weights, act, np.float64)
    for k, bound in enumerate(dw_bounds):
        # three steps, each within lr * (its gradient's bound) of the other backend's
        _close(to_numpy(ours.weights[k]), reference.weights[k], 3 * lr * bound / x.shape[0])


# --- whole runs agree ------------------------------------------------------------------------


def _train(blobs, **extra):
    mapping = {
        "dataset": f"npz:{blobs}", "layers": "12,32,32,3", "updates": 300, "eval_every": 100,
        "track_every": 50, "lr": 0.1, "activations": ["tanh", "relu"],
        "schemes": ["normalized"], **extra,
    }  # fmt: skip
    return TrainConfig.from_mapping(mapping)


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cost", ["nll", "quadratic"])
def test_a_training_run_agrees_with_numpy(place, dtype, cost, blobs):
    backend, device = place
    reference = run_train(_train(blobs, dtype=dtype, cost=cost)).to_dict()
    ours = run_train(_train(blobs, backend=backend, device=device, dtype=dtype, cost=cost))
    ours = ours.to_dict()
    assert ours["config"]["backend"] == backend and reference["config"]["backend"] == "numpy"
    updates = 300
    # Over T updates: each update's weights move within 4 L gamma_N (relative) of the other
    # backend's, and the deviations add up at most linearly over a short run at this learning
    # rate, so every measured quantity agrees to T * 4 L gamma_N relative (9e-3 in float32,
    # 2e-11 in float64, where a bias step off by 1% fails).
    tolerance = updates * 4 * 3 * gamma(32 + 10, np.dtype(dtype).type)
    for mine, theirs in zip(ours["runs"], reference["runs"], strict=True):
        assert mine["updates"] == theirs["updates"] == updates
        for a, b in zip(mine["curve"], theirs["curve"], strict=True):
            assert a["update"] == b["update"]
            if b["train_cost"] is not None:
                assert a["train_cost"] == pytest.approx(b["train_cost"], rel=tolerance)
        for a, b in zip(mine["layer_stats"], theirs["layer_stats"], strict=True):
            assert (a["update"], a["layer"]) == (b["update"], b["layer"])
            assert a["std"] == pytest.approx(b["std"], rel=tolerance)
            assert a["weight_grad_std"] == pytest.approx(b["weight_grad_std"], rel=tolerance)


@needs_torch
def test_torch_resumes_bit_identically_across_blocks(blobs, tmp_path, monkeypatch):
    checkpoint = tmp_path / "run.npz"
    config = _train(blobs, backend="torch", checkpoint=str(checkpoint), checkpoint_every=60)
    uninterrupted = run_train(_train(blobs, backend="torch")).to_dict()
    original = SGD.step
    calls = {"n": 0}

    def step(self, x, y, lr):
        calls["n"] += 1
        if calls["n"] == 410:  # second run, update 110: the stop lands at the block's end
            import signal

            signal.raise_signal(signal.SIGINT)
        return original(self, x, y, lr)

    monkeypatch.setattr(SGD, "step", step)
    with pytest.raises(Interrupted):
        run_train(config)
    monkeypatch.setattr(SGD, "step", original)
    saved = load_checkpoint(str(checkpoint))
    assert saved.state.update == 120  # the block ran to the checkpoint at 120
    resumed = run_train(saved.config, resume=saved).to_dict()
    for key in ("checkpoint", "checkpoint_every"):
        resumed["config"][key] = uninterrupted["config"][key]
    assert json.dumps(resumed, sort_keys=True) == json.dumps(uninterrupted, sort_keys=True)


@needs_torch
def test_divergence_is_found_at_the_same_update_inside_a_block(blobs):
    extra = {"lr": 2.0, "activations": ["linear"], "updates": 200, "eval_every": 200}
    reference = run_train(_train(blobs, **extra)).runs[0]
    ours = run_train(_train(blobs, backend="torch", **extra)).runs[0]
    assert reference.diverged and ours.diverged
    assert 0 < ours.diverged_at < 50  # inside the first block, which ends at --track-every 50
    assert ours.diverged_at == reference.diverged_at
    assert ours.updates == ours.diverged_at


@pytest.mark.parametrize("place", PLACES)
def test_propagate_agrees_with_numpy(place):
    backend, device = place
    mapping = {"layers": "200x5", "activations": ["tanh", "relu"], "trials": 2, "batch": 300,
               "schemes": ["normalized"], "dtype": "float64", "jacobian_samples": 3}  # fmt: skip
    reference = run_propagate(PropagateConfig.from_mapping(mapping))
    ours = run_propagate(PropagateConfig.from_mapping({**mapping, "backend": backend,
                                                        "device": device}))  # fmt: skip
    # float64 through five products of length 200: far below 1e-10 relative (gamma_200 = 2e-14
    # per product, five layers, two backends).
    tolerance = 2 * 5 * 2 * gamma(200, np.float64)
    for mine, theirs in zip(ours.runs, reference.runs, strict=True):
        for a, b in zip(mine.layers, theirs.layers, strict=True):
            for field in ("activation_var", "activation_mean", "backprop_var", "weight_grad_var"):
                expected = getattr(b, field)
                assert getattr(a, field) == pytest.approx(expected, rel=tolerance, abs=1e-300)


def test_a_sweep_runs_each_point_on_its_backend():
    from xavinit.config import SweepConfig
    from xavinit.experiments.sweep import Point, grid_settings

    config = SweepConfig.from_mapping({"dir": "runs", "backend": "torch", "lr": [0.1]})
    point = Point("shapeset", "tanh", "normalized", 0.1, 0)
    mapping = train_mapping(config, point, 100, "runs/x/checkpoint.npz")
    assert (mapping["backend"], mapping["device"]) == ("torch", "cpu")
    assert "backend" not in grid_settings(config)  # where it runs is not part of the grid


def test_ops_for_dispatches_on_the_array_type():
    assert backends.ops_for(np.zeros(2)) is np
    if HAS_TORCH:
        import torch

        assert isinstance(backends.ops_for(torch.zeros(2)), backends.TorchOps)


def test_numpy_keeps_its_summation_order_for_the_quadratic_cost():
    """Backends must not change numpy's numbers: the quadratic cost's row sums stay numpy's
    einsum (pairwise np.sum adds in another order once a row has 8 or more classes)."""
    act = get_activation("tanh")
    weights, biases, x, _ = _network((20, 30, 10), np.float32, seed=3)
    y = np.random.default_rng(4).integers(0, 10, x.shape[0])
    cache = forward(x, weights, biases, act)
    p = cache.probs
    g = p - np.eye(10, dtype=np.float32)[y]
    g -= np.einsum("ij,ij->i", g, p)[:, None]
    g *= p
    g /= x.shape[0]
    top = backward(cache, weights, act, labels=y, cost="quadratic").ds[-1]
    assert np.array_equal(top, g)
    sgd = SGD([w.copy() for w in weights], [b.copy() for b in biases], act, "quadratic")
    diff = p - np.eye(10, dtype=np.float32)[y]
    expected = 0.5 * np.einsum("ij,ij->", diff, diff) / x.shape[0]
    assert float(sgd.step(x, y, 0.1)) == float(expected)


@needs_torch
def test_costs_are_read_back_once_per_block(blobs, monkeypatch):
    from xavinit.core.backends import Backend

    reads = []
    original = Backend.to_floats

    def counted(self, values):
        reads.append(len(values))
        return original(self, values)

    monkeypatch.setattr(Backend, "to_floats", counted)
    run_train(_train(blobs, backend="torch", activations=["tanh"]))
    # 300 updates, blocks ending at every --track-every 50: six reads of 50 costs each.
    assert reads == [50] * 6


@needs_torch
def test_a_device_block_holds_a_bounded_number_of_examples():
    from xavinit.experiments.train import BatchFeed

    torch_cpu, dtype = get_backend("torch"), np.dtype(np.float32)
    sizes = {batch: BatchFeed(None, batch, torch_cpu, dtype).block for batch in (10, 128, 10**6)}
    assert sizes == {10: 250, 128: 19, 10**6: 1}  # at most 2500 examples, at least one batch
    assert BatchFeed(None, 10, get_backend(), dtype).block == 1  # numpy: one at a time
