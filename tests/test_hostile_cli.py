"""Careless and hostile command lines (issue 20): an output that would overwrite an input,
numbers that overflow or ask for hours of work. Each is one line and exit 2, before any work,
with the input untouched."""

from __future__ import annotations

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
