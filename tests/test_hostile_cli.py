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
