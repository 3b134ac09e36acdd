"""Hostile and careless input to ``xavinit check`` and the command line around it (issue 20),
each made here: numbers past Python's limits, names that are not text, terminals that cannot
show Unicode, closed and broken pipes, FIFOs, files of thousands of tensors, and runs where
nothing could be judged. Each gives one line and exit 2, or the true verdict."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.text import printable

runner = CliRunner()
XAVINIT = [sys.executable, "-m", "xavinit"]


def run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*XAVINIT, *args], cwd=cwd, capture_output=True, timeout=120, **kwargs)


def one_line_error(proc: subprocess.CompletedProcess, match: str) -> None:
    stderr = (
        proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr
    )
    assert proc.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert match in lines[0], lines[0]


def weights(path: Path, count: int = 3, shape: tuple[int, int] = (32, 32)) -> None:
    rng = np.random.default_rng(0)
    save_file(
        {f"layer{k}.weight": rng.standard_normal(shape).astype(np.float32) for k in range(count)},
        str(path),
    )


# --- numbers past Python's limits ----------------------------------------------------------


def test_a_5000_digit_integer_is_one_line_wherever_it_is_read(tmp_path):
    digits = "9" * 5000
    header = ('{"w":{"dtype":"F32","shape":[' + digits + '],"data_offsets":[0,4]}}').encode()
    path = tmp_path / "digits.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    one_line_error(run(["check", str(path)], tmp_path), "not a valid safetensors file")
    config = tmp_path / "c.yaml"
    config.write_text(f"seed: {digits}\n")
    one_line_error(run(["init", "-c", str(config), "--layers", "8,8"], tmp_path), "c.yaml")
    result = tmp_path / "r.json"
    result.write_text('{"schema_version": ' + digits + "}")
    one_line_error(run(["report", str(result)], tmp_path), "r.json")


@pytest.mark.parametrize(("shape", "match"), [([2**62, 2**62], "needs"), ([2**64], "needs")])
def test_shapes_beyond_any_memory_are_one_line(tmp_path, shape, match):
    header = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    one_line_error(run(["check", str(path)], tmp_path), match)


def test_values_too_large_to_square_are_unknown_not_infinite(tmp_path):
    np.save(tmp_path / "big.npy", np.full((64, 64), 1e300))
    proc = run(["check", "big.npy", "-q", "-f", "json"], tmp_path)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    (row,) = json.loads(proc.stdout)["tensors"]
    assert row["verdict"] == "unknown" and "too large to square" in row["reason"]


# --- names that are not plain text ---------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_shown_escaped_in_every_format(tmp_path):
    bad = os.fsencode(tmp_path) + b"/bad\xffname.npy"
    np.save(bad.decode("utf-8", "surrogateescape"), np.random.default_rng(0).random((16, 16)))
    for fmt in ("table", "json", "markdown"):
        proc = subprocess.run(
            [*XAVINIT, "check", os.fsdecode(bad), "-q", "-f", fmt], capture_output=True, timeout=60
        )
        assert proc.returncode == 0 and not proc.stderr, (fmt, proc.stderr)
        shown = (
            json.loads(proc.stdout)["tensors"][0]["file"] if fmt == "json" else proc.stdout.decode()
        )
        assert "bad\\xffname" in shown, fmt


def test_markup_escapes_and_table_syntax_in_names_stay_text(tmp_path):
    rng = np.random.default_rng(1)
    names = ["[bold red]x[/]", "\x1b[31mred\x1b[0m", "a|b\nc"]
    save_file({n: rng.standard_normal((16, 16)).astype(np.float32) for n in names},
              str(tmp_path / "names.safetensors"))  # fmt: skip
    table = run(
        ["check", "names.safetensors", "-q"], tmp_path, env={**os.environ, "COLUMNS": "200"}
    )
    assert table.returncode == 0 and b"\x1b" not in table.stdout
    text = table.stdout.decode()
    assert "[bold red]x[/]" in text and "\\x1b[31mred\\x1b[0m" in text and "a|b\\nc" in text
    markdown = run(["check", "names.safetensors", "-q", "-f", "markdown"], tmp_path).stdout.decode()
    assert "`a\\|b\\nc`" in markdown and "\x1b" not in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert all(line.count(" | ") == rows[0].count(" | ") for line in rows)  # no row broken
    document = json.loads(run(["check", "names.safetensors", "-q", "-f", "json"], tmp_path).stdout)
    assert sorted(r["name"] for r in document["tensors"]) == sorted(printable(n) for n in names)


def test_a_20000_character_name_is_cut_in_the_error(tmp_path):
    save_file({"n" * 20000: np.array([True, False])}, str(tmp_path / "long.safetensors"))
    proc = run(["check", "long.safetensors"], tmp_path)
    one_line_error(proc, "more characters")
    assert len(proc.stderr) < 1200


# --- terminals, pipes and closed streams ----------------------------------------------------


def test_an_ascii_terminal_gets_the_table_and_json_without_a_traceback(tmp_path):
    save_file({"ünïcode.σ": np.random.default_rng(2).standard_normal((16, 16)).astype(np.float32)},
              str(tmp_path / "u.safetensors"))  # fmt: skip
    env = {**os.environ, "LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}
    for fmt in ("table", "json", "markdown"):
        proc = run(["check", "u.safetensors", "-q", "-f", fmt], tmp_path, env=env)
        assert proc.returncode == 0 and not proc.stderr, (fmt, proc.stderr)
    document = json.loads(
        run(["check", "u.safetensors", "-q", "-f", "json"], tmp_path, env=env).stdout
    )
    assert document["tensors"][0]["name"] == "ünïcode.σ"  # JSON escapes it, nothing lost


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_reader_that_stops_early_ends_the_run_quietly(tmp_path, fmt):
    weights(tmp_path / "w.safetensors", count=40)
    proc = subprocess.Popen(
        [*XAVINIT, "check", "w.safetensors", "-f", fmt], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and not stderr, stderr


def test_a_closed_stdout_is_one_line_unless_the_result_goes_to_a_file(tmp_path):
    weights(tmp_path / "w.safetensors")

    def close_stdout() -> None:
        os.close(1)

    proc = subprocess.run([*XAVINIT, "check", "w.safetensors"], cwd=tmp_path, capture_output=False,
                          stderr=subprocess.PIPE, preexec_fn=close_stdout, timeout=120)  # fmt: skip
    one_line_error(proc, "standard output is closed")
    proc = subprocess.run([*XAVINIT, "check", "w.safetensors", "-o", "r.json", "-q"], cwd=tmp_path,
                          stderr=subprocess.PIPE, preexec_fn=close_stdout, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and not proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["command"] == "check"


# --- files that are not files, and files of thousands of tensors ---------------------------


@pytest.mark.parametrize("writer", [False, True])
def test_a_fifo_is_refused_at_once_with_or_without_a_writer(tmp_path, writer):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    opened: list = []
    if writer:  # a writer that would feed it for ever
        thread = threading.Thread(target=lambda: opened.append(open(fifo, "wb")), daemon=True)  # noqa: SIM115 - held open, as a writer would
        thread.start()
    for args in (["check", str(fifo)], ["propagate", "--weights", str(fifo)]):
        one_line_error(run(args, tmp_path), "FIFO")


def test_thousands_of_small_tensors_are_each_judged(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {f"w{k}": rng.uniform(-0.25, 0.25, (16, 16)).astype(np.float32) for k in range(1000)}
    save_file(arrays, str(tmp_path / "many.safetensors"))
    np.savez(tmp_path / "many.npz", **arrays)
    for name in ("many.safetensors", "many.npz"):
        proc = run(["check", name, "-q", "-f", "json", "--layout", "in-out"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)["tensors"]
        assert len(rows) == 1000 and all(r["verdict"] == "init" for r in rows)


# --- nothing judged is not a pass -----------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.arange(64, dtype=np.int8).reshape(8, 8), "integer tensor"),
        (np.zeros((0, 4), np.float32), "empty tensor"),
        (np.float32(3.0), "a scalar (0-d)"),
    ],
)
def test_expect_fails_when_nothing_could_be_judged(tmp_path, array, reason):
    np.save(tmp_path / "t.npy", array)
    result = runner.invoke(
        app, ["check", str(tmp_path / "t.npy"), "--expect", "trained", "-q", "-f", "json"]
    )
    assert result.exit_code == 1, result.stderr
    document = json.loads(result.stdout)
    (row,) = document["tensors"]
    assert row["verdict"] == "unknown" and reason in row["reason"]
    assert document["failures"] == [f"{tmp_path / 't.npy'}:t"]
