"""``xavinit init`` and ``xavinit schemes`` through the command line: formats, exit codes, bad input."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from xavinit import __version__
from xavinit.cli import app

runner = CliRunner()
SMALL = ["--layers", "64,48,10"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"xavinit {__version__}"


def test_json_output_follows_the_result_contract():
    result = invoke("init", *SMALL, "-f", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    for key in ("schema_version", "xavinit_version", "command", "seed", "config", "passed"):
        assert key in doc
    assert doc["command"] == "init" and doc["passed"] is True and doc["seed"] == 0
    assert [(r["scheme"], r["layer"]) for r in doc["layers"]] == [
        ("standard", 1), ("standard", 2), ("normalized", 1), ("normalized", 2),
    ]  # fmt: skip
    row = doc["layers"][2]
    for key in (
        "fan_in", "fan_out", "distribution", "expected_var", "observed_var", "rel_error",
        "ci_low", "ci_high", "p_value", "passed", "bound", "ks_p_value",
    ):  # fmt: skip
        assert key in row
    # normalized, 64 -> 48: Var = 2 / (64 + 48), bound sqrt(6 / 112), by hand.
    assert row["expected_var"] == pytest.approx(2 / 112)
    assert row["bound"] == pytest.approx(math.sqrt(6 / 112))
    assert row["ci_low"] < row["observed_var"] < row["ci_high"]
    assert row["fan_in_var"] == pytest.approx(64 * row["observed_var"])
    assert doc["layers"][0]["expected_fan_in_var"] == pytest.approx(1 / 3)


def test_default_run_is_the_papers_comparison_and_is_deterministic():
    first = json.loads(invoke("init", "-f", "json").stdout)
    second = json.loads(invoke("init", "-f", "json").stdout)
    assert first["config"]["layers"] == [1024, 1000, 1000, 1000, 1000, 1000, 10]
    assert first["config"]["schemes"] == ["standard", "normalized"]
    assert first == second
    assert first["passed"]


def test_table_puts_schemes_side_by_side():
    result = invoke("init", *SMALL, "-s", "standard", "-s", "normalized", "-s", "he-normal")
    assert result.exit_code == 0
    header = result.stdout.split("\n")[:6]
    line = next(h for h in header if "standard" in h)
    assert line.index("standard") < line.index("normalized") < line.index("he-normal")
    assert "n_in·Var" in result.stdout and "PASSED" in result.stdout


@pytest.mark.parametrize("fmt", ["yaml", "csv", "markdown"])
def test_other_formats(fmt):
    result = invoke("init", *SMALL, "-f", fmt)
    assert result.exit_code == 0
    if fmt == "yaml":
        doc = yaml.safe_load(result.stdout)
        assert doc["command"] == "init" and len(doc["layers"]) == 4
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(rows) == 4 and rows[0]["scheme"] == "standard"
        assert float(rows[0]["expected_var"]) == pytest.approx(1 / (3 * 64))
    else:
        assert result.stdout.startswith("**PASSED")
        assert "| `normalized` | 2 | 48 x 10 |" in result.stdout


def test_output_file_by_extension_and_quiet_stdout(tmp_path):
    target = tmp_path / "run.yaml"
    result = invoke("init", *SMALL, "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert yaml.safe_load(target.read_text())["command"] == "init"
    result = invoke("init", *SMALL, "-o", str(tmp_path / "run.json"), "-f", "csv")
    assert result.stdout.startswith("scheme,layer")
    assert json.loads((tmp_path / "run.json").read_text())["passed"] is True


def test_a_failed_check_exits_1(tmp_path):
    rng = np.random.default_rng(1)
    too_wide = rng.uniform(-1, 1, (1000, 1000)).astype(np.float32) * math.sqrt(3 * 1.05 / 1000)
    np.save(tmp_path / "w.npy", too_wide)
    result = invoke("init", "--check", str(tmp_path / "w.npy"), "-s", "lecun-uniform", "-f", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["passed"] is False and "variance" in doc["layers"][0]["failures"]


def test_trials_report_the_spread():
    doc = json.loads(
        invoke("init", *SMALL, "--trials", "4", "-s", "he-uniform", "-f", "json").stdout
    )
    row = doc["layers"][0]
    assert row["trials"] == 4 and len(row["trial_observed_vars"]) == 4
    assert row["observed_var"] == pytest.approx(np.mean(row["trial_observed_vars"]))
    assert row["observed_var_std"] == pytest.approx(np.std(row["trial_observed_vars"], ddof=1))
    assert row["count"] == 4 * 64 * 48


def test_save_and_check_round_trip_in_both_layouts(tmp_path):
    saved = tmp_path / "w.npz"
    result = invoke(
        "init", "--layers", "300,200,100", "-s", "he-normal", "--save", str(saved), "-q"
    )
    assert result.exit_code == 0
    archive = np.load(saved)
    assert archive.files == ["he-normal/layer1", "he-normal/layer2"]
    assert archive["he-normal/layer1"].shape == (300, 200)
    doc = json.loads(invoke("init", "--check", str(saved), "-s", "he-normal", "-f", "json").stdout)
    assert doc["passed"] and [r["array"] for r in doc["layers"]] == archive.files
    # PyTorch stores (out, in): the transposed matrix must be read with --layout out-in.
    np.savez(tmp_path / "torch.npz", w=archive["he-normal/layer1"].T, bias=np.zeros(200))
    doc = json.loads(
        invoke("init", "--check", str(tmp_path / "torch.npz"), "--layout", "out-in",
               "-s", "he-normal", "-f", "json").stdout
    )  # fmt: skip
    assert doc["passed"] and doc["skipped"] == ["bias"]
    assert (doc["layers"][0]["fan_in"], doc["layers"][0]["fan_out"]) == (300, 200)
    # Read in the wrong layout, He's 2/fan_in becomes 2/200 and the check fails.
    wrong = invoke("init", "--check", str(tmp_path / "torch.npz"), "-s", "he-normal", "-f", "json")
    assert wrong.exit_code == 1


def test_check_without_a_scheme_ranks_and_names_the_right_one(tmp_path):
    rng = np.random.default_rng(7)
    bound = 1 / math.sqrt(400)
    np.savez(
        tmp_path / "m.npz",
        linear=rng.uniform(-bound, bound, (400, 250)).astype(np.float32),
        relu=(rng.standard_normal((400, 250)) * math.sqrt(2 / 400)).astype(np.float32),
    )
    result = invoke("init", "--check", str(tmp_path / "m.npz"), "-f", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert [r["best"] for r in doc["rankings"]] == ["standard", "he-normal"]
    assert "nn.Linear" in doc["rankings"][0]["verdict"]
    table = invoke("init", "--check", str(tmp_path / "m.npz"))
    assert "looks like standard" in table.stdout


def test_config_file_and_flags_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("layers: 32,16,4\nscheme: [he-uniform, lecun-normal]\ntrials: 2\nseed: 5\n")
    doc = json.loads(invoke("init", "-c", str(config), "--seed", "3", "-f", "json").stdout)
    assert doc["config"]["layers"] == [32, 16, 4]
    assert doc["config"]["schemes"] == ["he-uniform", "lecun-normal"]
    assert doc["seed"] == 3 and doc["config"]["trials"] == 2


def test_schemes_lists_every_preset_with_numbers():
    result = invoke("schemes", "--fan-in", "1024", "--fan-out", "1000", "-f", "json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)["schemes"]}
    assert {"standard", "normalized", "xavier-normal", "orthogonal", "he-normal"} <= set(rows)
    assert "torch-linear" in rows["standard"]["aliases"]
    assert rows["standard"]["bound"] == pytest.approx(1 / 32)
    assert rows["normalized"]["variance"] == pytest.approx(2 / 2024)
    assert rows["he-normal"]["std"] == pytest.approx(math.sqrt(2 / 1024))
    table = invoke("schemes")
    assert table.exit_code == 0 and "glorot-uniform" in table.stdout


def test_schemes_with_one_spec():
    result = invoke(
        "schemes", "normalized:gain=tanh", "--fan-in", "100", "--fan-out", "100", "-f", "json"
    )
    (row,) = json.loads(result.stdout)["schemes"]
    assert row["variance"] == pytest.approx((5 / 3) ** 2 / 100)


def _npz_writer(path: Path) -> None:
    np.savez(path, w=np.ones((3, 3)))


BAD_INPUTS = {
    "empty layers": (["--layers", ""], "--layers"),
    "zero width": (["--layers", "10,0,3"], "--layers[1]"),
    "negative width": (["--layers", "10,-3,3"], "got -3"),
    "non-integer width": (["--layers", "10,2.5,3"], "--layers[1]"),
    "one width": (["--layers", "10"], "at least two"),
    "a letter for the layers": (["--layers", "x"], "--layers[0]: 'x' is not a width or AxK"),
    "a repeat without its count": (["--layers", "10,1000x,3"], "'1000x' is not a width or AxK"),
    "an empty width": (["--layers", "10,,3"], "--layers[1]: '' is not a width"),
    "a zero repeat": (["--layers", "10,1000x0,3"], "--layers[1]: repeat count"),
    "unknown scheme": (["-s", "xavier-unifrom"], "did you mean 'xavier-uniform'"),
    "unknown parameter": (["-s", "he-normal:gian=2"], "allowed: gain, mode, slope"),
    "bad parameter value": (["-s", "he-normal:mode=sideways"], "fan_in, fan_out, fan_avg"),
    "too large": (["--layers", "2000000,2000000"], "would need"),
    "bad output extension": (["-o", "{tmp}/out.txt"], "unknown extension"),
    "malformed yaml": (["-c", "{tmp}/malformed.yaml"], "malformed YAML"),
    "unknown yaml key": (["-c", "{tmp}/unknown.yaml"], "unknown key"),
    "missing check file": (["--check", "{tmp}/none.npz"], "does not exist"),
    "corrupt npz": (["--check", "{tmp}/corrupt.npz"], "corrupt"),
    "not numpy": (["--check", "{tmp}/text.npy"], "not a NumPy file"),
    "non-numeric": (["--check", "{tmp}/strings.npy"], "numeric"),
    "nan": (["--check", "{tmp}/nan.npy", "-s", "standard"], "NaN"),
    "inf in npz": (["--check", "{tmp}/inf.npz"], "NaN or infinite"),
    "1-D array": (["--check", "{tmp}/vector.npy"], "2-D"),
}


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "malformed.yaml").write_text("layers: [10, 3\n")
    (tmp_path / "unknown.yaml").write_text("layerz: 10,3\n")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "text.npy").write_text("hello")
    np.save(tmp_path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "nan.npy", np.array([[0.1, np.nan], [0.2, 0.3]]))
    np.savez(tmp_path / "inf.npz", w=np.array([[0.1, np.inf], [0.2, 0.3]]))
    np.save(tmp_path / "vector.npy", np.zeros(7))
    return tmp_path


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_no_output_file(case, bad_files):
    args, expected = BAD_INPUTS[case]
    args = [a.replace("{tmp}", str(bad_files)) for a in args]
    target = bad_files / "result.json"
    if "-o" not in args:
        args += ["-o", str(target)]
    result = runner.invoke(app, ["init", *args])
    assert result.exit_code == 2, (case, result.stdout, result.stderr)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not target.exists()
    assert not list(bad_files.glob(".result.json.*"))


def test_usage_errors_are_one_line_through_the_console_script():
    proc = subprocess.run(
        [sys.executable, "-m", "xavinit", "init", "--trials", "0"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "--trials" in proc.stderr


def test_save_is_atomic_when_the_run_fails(tmp_path):
    target = tmp_path / "w.npz"
    result = runner.invoke(
        app, ["init", "--layers", "10,5", "-s", "nonsense", "--save", str(target)]
    )
    assert result.exit_code == 2 and not target.exists()


def test_a_closed_pipe_ends_quietly():
    """`xavinit ... | head` closes stdout early: no traceback, no BrokenPipeError message."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xavinit", "init", "--layers", "20,20x300,10", "-f", "csv"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10).startswith(b"scheme")
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
