"""Careless and hostile command lines (issue 20): an output that would overwrite an input,
numbers that overflow or ask for hours of work. Each is one line and exit 2, before any work,
with the input untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from xavinit.cli import app

runner = CliRunner()


def refused(args: list[str], match: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and match in lines[0], result.stderr


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "--layers", "8,8", "-q", "-o", "r.json"]).exit_code == 0
    kept = (tmp_path / "r.json").read_bytes()
    refused(["report", "r.json", "-o", "r.json"], "an input is never overwritten")
    assert (tmp_path / "r.json").read_bytes() == kept
    (tmp_path / "c.yaml").write_text("layers: [8, 8]\noutput: c.yaml\n")
    refused(["init", "-c", "c.yaml"], "is the config file")
    refused(["init", "-c", "c.yaml", "-o", "c.yaml"], "is the config file")
    assert (tmp_path / "c.yaml").read_text() == "layers: [8, 8]\noutput: c.yaml\n"
    np.save(tmp_path / "w.npy", np.ones((8, 8), np.float32))
    refused(["check", "w.npy", "-o", "w.npy"], "unknown extension")  # and never written
    assert (tmp_path / "w.npy").stat().st_size > 0


def test_an_output_inside_the_folder_a_sweep_writes_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    args = ["sweep", "--dir", "runs", "--depth", "1", "--width", "8", "--updates", "200",
            "--eval-every", "100", "-a", "tanh", "--lr", "0.1", "-q"]  # fmt: skip
    refused([*args, "-o", "runs/manifest.json"], "lies in the folder --dir writes")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["gain", "leaky-relu:slope=1e300"], "slope must be a number from 0 to 1e+06"),
        (["gain", "elu:alpha=1e308"], "alpha must be a number from 0 to 1e+06"),
        (["gain", "tanh", "--check", "--alpha", "1e-300"], "raise --alpha"),
        (["gain", "tanh", "--check", "--alpha", "1e-9"], "raise --alpha"),
        (["gain", "tanh", "--check", "--depth", "10000"], "--depth: must be <= 9998"),
    ],
)
def test_gain_numbers_that_overflow_or_take_hours_are_refused(args, match):
    refused(args, match)


# --- verdicts are recomputed from the evidence, never read --------------------------------------


def _edited(tmp_path, name: str, edit) -> str:
    document = json.loads((tmp_path / name).read_text())
    edit(document)
    target = tmp_path / f"edited-{name}"
    target.write_text(json.dumps(document))
    return str(target)


def test_a_saved_verdict_that_its_evidence_contradicts_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "--layers", "16,16", "-q", "-o", "init.json"]).exit_code == 0
    # a failing init: normalized weights checked as standard
    runner.invoke(app, ["init", "--layers", "64,64", "-s", "normalized", "--save", "w.npz", "-q"])
    assert runner.invoke(app, ["init", "--check", "w.npz", "-s", "standard", "-q",
                               "-o", "failed.json"]).exit_code == 1  # fmt: skip
    np.save(tmp_path / "fresh.npy", np.random.default_rng(0).uniform(-0.1, 0.1, (64, 64)))
    assert runner.invoke(app, ["check", "fresh.npy", "--expect", "trained", "-q",
                               "-o", "check.json"]).exit_code == 1  # fmt: skip
    assert runner.invoke(app, ["gain", "relu", "--check", "--depth", "3", "--width", "20",
                               "-q", "-o", "gain.json"]).exit_code == 0  # fmt: skip
    lies = {
        "init passed": ("init.json", lambda d: d.update(passed=False)),
        "a failing init passed": ("failed.json", lambda d: d.update(passed=True)),
        "a layer flipped": ("failed.json", lambda d: [c.update(passed=True) for c in d["layers"]]),
        "check passed": ("check.json", lambda d: d.update(passed=True, failures=[])),
        "a tensor called trained": ("check.json", lambda d: d["tensors"][0].update(verdict="trained")),
        "gain check flipped": ("gain.json", lambda d: d["depth_checks"][0].update(passed=False)),
    }  # fmt: skip
    for label, (name, edit) in lies.items():
        result = runner.invoke(app, ["report", _edited(tmp_path, name, edit), "-q"])
        assert result.exit_code == 2, (label, result.stdout, result.stderr)
        assert "contradicts its own evidence" in result.stderr, (label, result.stderr)
    # the honest files report as they are
    result = runner.invoke(
        app, ["report", "init.json", "failed.json", "check.json", "gain.json", "-q"]
    )
    assert result.exit_code == 1 and not result.stderr


def test_a_result_with_a_field_xavinit_does_not_know_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "--layers", "8,8", "-q", "-o", "r.json"]).exit_code == 0
    refused(["report", _edited(tmp_path, "r.json", lambda d: d.update(surprise=1))],
            "unknown field 'surprise'")  # fmt: skip


# --- a deep stack of tiny layers: per-layer work, not per-layer rescans -------------------------


def test_three_thousand_tiny_layers_are_read_in_one_pass(tmp_path, monkeypatch):
    """``propagate --weights`` on 3,000 2x2 layers: the file is opened once, each tensor read
    once, and the stack chains all of them."""
    from safetensors.numpy import save_file

    from xavinit.config import PropagateConfig
    from xavinit.experiments import propagate
    from xavinit.formats.safetensors import SafetensorsSource

    rng = np.random.default_rng(0)
    layers = {f"layers.{i:04d}.weight": rng.normal(0, 0.7, (2, 2)).astype(np.float32)
              for i in range(3000)}  # fmt: skip
    save_file(layers, str(tmp_path / "deep.safetensors"))
    opened, loads = [], []
    real_open, real_load = propagate.open_tensors, SafetensorsSource.load
    monkeypatch.setattr(propagate, "open_tensors", lambda p: opened.append(p) or real_open(p))
    monkeypatch.setattr(SafetensorsSource, "load",
                        lambda self, info: loads.append(info.name) or real_load(self, info))  # fmt: skip
    stack = propagate.load_stack(
        PropagateConfig.from_mapping({"weights": str(tmp_path / "deep.safetensors")})
    )
    assert len(opened) == 1 and sorted(loads) == sorted(layers)
    assert len(stack.fixed) == 3000
    np.testing.assert_array_equal(stack.fixed[2999], layers["layers.2999.weight"].T)  # out-in


def test_a_deep_stack_predicts_its_mean_field_once(tmp_path, monkeypatch):
    """The mean-field forward recursion (the costly per-layer quadrature) runs once per network,
    not once for the gradients and again for the activations; the run completes on 300 layers
    and says the same as on the CLI."""
    from xavinit.config import PropagateConfig
    from xavinit.core import theory
    from xavinit.experiments.propagate import run_propagate

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "deep.npz",
             **{f"l{i:03d}": rng.normal(0, 0.5, (4, 4)).astype(np.float32) for i in range(300)})  # fmt: skip
    calls = []
    real = theory.mean_field_forward
    monkeypatch.setattr(
        theory, "mean_field_forward", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    result = run_propagate(
        PropagateConfig.from_mapping({"weights": str(tmp_path / "deep.npz"), "batch": 10})
    )
    assert len(calls) == 1
    layers = result.runs[0].layers
    assert len(layers) == 300 and result.runs[0].passed
    # the forward prediction kept for the table is the one the gradients were computed from
    from xavinit.core.activations import get_activation

    with np.load(tmp_path / "deep.npz") as saved:
        variances = [float(np.mean(np.square(saved[f"l{i:03d}"].astype(np.float64))))
                     for i in range(300)]  # fmt: skip
    expected = real(result.runs[0].input_second_moment, (4,) * 301, variances,
                    get_activation("tanh"))  # fmt: skip
    got = [layer.predicted_preactivation_var for layer in layers]
    np.testing.assert_allclose(got, expected.q, rtol=1e-12)


@pytest.mark.parametrize("block", [1 << 18, 100])  # one pass, or several blocks of layers
def test_histograms_of_all_layers_at_once_are_numpys(monkeypatch, block):
    """The batched histograms count as ``numpy.histogram`` does: values on the edges, the last
    edge closed, NaN and infinities dropped, float32 samples, an empty layer."""
    from xavinit.core import samples as layer_samples
    from xavinit.core.samples import histograms

    monkeypatch.setattr(layer_samples, "HISTOGRAM_BLOCK", block)
    rng = np.random.default_rng(0)
    grid, other = np.linspace(-1.0, 1.0, 42), np.linspace(0.0, 3.0, 8)
    edge_values = np.concatenate([grid, grid.astype(np.float32), [np.nan, np.inf, -np.inf]])
    samples = [rng.uniform(-1.2, 1.2, 500).astype(np.float32), edge_values, np.zeros(0),
               rng.normal(0, 0.3, 77), rng.exponential(1.0, 60)]  # fmt: skip
    grids = [grid, grid, grid, grid, other]
    for sample, grid_k, counts in zip(samples, grids, histograms(samples, grids), strict=True):
        expected, _ = np.histogram(sample, bins=grid_k.size - 1, range=(grid_k[0], grid_k[-1]))
        assert counts == expected.tolist()


def test_an_empty_tensor_whose_other_dimensions_overflow_is_refused(tmp_path):
    """``(0, 2^62, 2^62)`` has no entries, yet numpy cannot make it: one line, not a crash."""
    import struct

    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [0, 2**62, 2**62], "data_offsets": [0, 0]}}
    ).encode()
    (tmp_path / "w.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    refused(["check", str(tmp_path / "w.safetensors")], "larger than any array can be")
