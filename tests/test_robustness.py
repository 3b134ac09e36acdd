"""Hostile input, faults and large input, tried as an attacker or an unlucky user would: each
ends in one line on stderr, exit 2 (130 when interrupted), nothing written, bounded memory."""

from __future__ import annotations

import errno
import gzip
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_blobs
from typer.testing import CliRunner

from xavinit.cli import app
from xavinit.errors import XavinitError
from xavinit.experiments.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _refused(result, *expected: str, written: tuple[Path, ...] = ()) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert len(lines[0]) < 600, len(lines[0])
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    for path in written:
        assert not path.exists(), path


# --- YAML --------------------------------------------------------------------------------------


def _laughs(levels: int, inline: bool) -> str:
    """The "billion laughs": each level refers 9 times to the one before."""
    items = ['&a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghijklmnop"
    for level in range(1, levels):
        items.append(f"&{names[level]} [" + ",".join([f"*{names[level - 1]}"] * 9) + "]")
    if inline:
        return "scheme: [" + ", ".join(items) + "]\n"
    return "".join(f"{names[i]}: {item}\n" for i, item in enumerate(items)) + "scheme: *a\n"


@pytest.mark.parametrize(("levels", "inline", "expected"), [
    (8, True, "scheme: must be a string or a list of strings"),
    (13, False, "more than 100 aliases"),
])  # fmt: skip
def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message(
    levels, inline, expected, tmp_path
):
    config = tmp_path / "bomb.yaml"
    config.write_text(_laughs(levels, inline))
    assert config.stat().st_size < 1000
    target = tmp_path / "out.json"
    started = time.perf_counter()
    result = runner.invoke(app, ["init", "-c", str(config), "-o", str(target)])
    assert time.perf_counter() - started < 10
    _refused(result, expected, written=(target,))


# --- dataset files ---------------------------------------------------------------------------


def test_cifar_labels_that_refer_to_themselves(tmp_path):
    """A 15 KB pickle whose labels list contains itself: refused without expanding it."""
    folder = tmp_path / "cifar"
    folder.mkdir()
    labels: list = [0] * 100
    labels.append(labels)
    batch = {b"data": np.zeros((101, 3072), np.uint8), b"labels": labels}
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        with (folder / name).open("wb") as stream:
            pickle.dump(batch, stream)
    started = time.perf_counter()
    result = runner.invoke(app, ["train", "-d", f"cifar10:{folder}", "--updates", "1"])
    assert time.perf_counter() - started < 10
    _refused(result, "labels", "not a list of integers")


def test_an_npz_label_of_a_billion_is_refused(tmp_path):
    path = write_blobs(tmp_path / "blobs.npz")
    arrays = dict(np.load(path))
    arrays["y_train"][0] = 10**9
    np.savez(path, **arrays)
    result = runner.invoke(app, ["train", "-d", f"npz:{path}", "--updates", "1"])
    _refused(result, "1000000000", "at most 100,000")


def _idx(dims: tuple[int, ...], data: bytes) -> bytes:
    magic = 0x0800 | len(dims)
    return struct.pack(">i", magic) + struct.pack(f">{len(dims)}I", *dims) + data


def test_a_gzip_bomb_is_not_inflated_beyond_its_header(tmp_path):
    """300 KB of gzip that inflates to 300 MB behind a header declaring 47 KB."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    header = _idx((60, 28, 28), b"")
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(header)
        chunk = bytes(1 << 20)
        for _ in range(300):
            stream.write(chunk)
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_size < 400_000
    for name, dims in (("train-labels-idx1-ubyte", (60,)), ("t10k-labels-idx1-ubyte", (10,))):
        (folder / name).write_bytes(_idx(dims, bytes(dims[0])))
    (folder / "t10k-images-idx3-ubyte").write_bytes(_idx((10, 28, 28), bytes(7840)))
    code = (
        "import sys, tracemalloc\n"
        "from xavinit.cli import main\n"
        "tracemalloc.start()\n"
        f"code = main(['train', '-d', 'mnist:{folder}', '--updates', '1', '-q'])\n"
        "print(tracemalloc.get_traced_memory()[1], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    *message, peak = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "longer than its header says" in message[0], proc.stderr
    assert int(peak) < 20 * 1024**2, int(peak)  # Python's allocations: nothing near 300 MB


def test_idx_dimensions_whose_product_overflows(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(_idx((2**32 - 1,) * 3, b"\0" * 64))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (folder / name).write_bytes(b"")
    result = runner.invoke(app, ["train", "-d", f"mnist:{folder}", "--updates", "1"])
    _refused(result, "would need", "of memory")


# --- scheme parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    "normalized:gain=1e-300", "normalized:gain=1e200", "variance-scaling:scale=1e308",
    "he-normal:slope=1e200", "variance-scaling:scale=1e-30",
])  # fmt: skip
def test_extreme_scheme_parameters_name_the_allowed_range(spec):
    result = runner.invoke(app, ["init", "--layers", "10,5", "-s", spec])
    _refused(result, "1e+06")


# --- files written: folders, the same path twice, full disks, pipes --------------------------


def test_output_folders_are_checked_before_any_work(tmp_path, module_blobs):
    started = time.perf_counter()
    result = runner.invoke(
        app,
        [
            "train",
            "-d",
            f"npz:{module_blobs}",
            "--updates",
            "100000",
            "-o",
            str(tmp_path / "no/r.json"),
        ],
    )
    assert time.perf_counter() - started < 5
    _refused(result, "folder", "does not exist")
    save, out = tmp_path / "w.npz", tmp_path / "no" / "r.json"
    _refused(
        runner.invoke(app, ["init", "--layers", "8,4", "--save", str(save), "-o", str(out)]),
        written=(save,),
    )
    same = tmp_path / "same.json"
    _refused(
        runner.invoke(app, ["init", "--layers", "8,4", "--save", str(same), "-o", str(same)]),
        "name the same file",
        written=(same,),
    )
    checkpoint = tmp_path / "none" / "ck.npz"
    _refused(
        runner.invoke(app, ["train", "--updates", "1", "--checkpoint", str(checkpoint)]),
        "--checkpoint",
    )


def _full_disk(monkeypatch):
    """Every file write fails with ENOSPC, as on a full filesystem."""
    real = os.fdopen

    class Full:
        def __init__(self, stream):
            self.stream = stream

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.stream, name)

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.stream.close()

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real(*a, **k)))


@pytest.mark.parametrize("what", ["output", "save"])
def test_a_full_disk_is_one_line_and_leaves_nothing(what, tmp_path, monkeypatch):
    _full_disk(monkeypatch)
    target = tmp_path / ("out.json" if what == "output" else "w.npz")
    flag = "-o" if what == "output" else "--save"
    result = runner.invoke(app, ["init", "--layers", "8,4", flag, str(target), "-q"])
    _refused(result, "No space left on device", written=(target,))
    assert os.listdir(tmp_path) == []


def test_a_train_checkpoint_on_a_full_disk_is_one_line_and_leaves_nothing(
    module_blobs, tmp_path, monkeypatch
):
    _full_disk(monkeypatch)
    checkpoint, target = tmp_path / "ck.npz", tmp_path / "out.json"
    args = ["train", "-d", f"npz:{module_blobs}", "--layers", "12,8,3", "-s", "normalized",
            "--updates", "20", "--eval-every", "10", "--checkpoint", str(checkpoint), "-o",
            str(target), "-q"]  # fmt: skip
    _refused(runner.invoke(app, args), "ck.npz", "No space left on device")
    assert os.listdir(tmp_path) == []


SWEEP = ["sweep", "--layers", "12,8,3", "-a", "tanh", "-s", "normalized", "--lr", "0.1",
         "--updates", "20", "--eval-every", "10", "--track-every", "10", "--workers", "1", "-q"]  # fmt: skip


@pytest.mark.parametrize("folder_existed", [False, True])
def test_a_sweep_on_a_full_disk_leaves_nothing_new(
    folder_existed, module_blobs, tmp_path, monkeypatch
):
    """The sweep's first write fails: one line, exit 2, and the folders it made are gone; a
    folder the user had keeps what it held."""
    folder = tmp_path / "sweep"
    if folder_existed:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    _full_disk(monkeypatch)
    result = runner.invoke(app, [*SWEEP, "--dir", str(folder), "-d", f"npz:{module_blobs}"])
    _refused(result, "No space left on device")
    if folder_existed:
        assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    else:
        assert not folder.exists()


def test_a_worker_on_a_full_disk_stops_the_sweep_and_leaves_nothing_new(
    module_blobs, tmp_path, monkeypatch
):
    """The disk fills once the sweep has written its grid and manifest: the run's first write
    fails in its worker (here this process, so that the full disk reaches it), the sweep stops
    with one line and removes the run folder, ``runs/``, its grid, manifest and folder."""
    from xavinit import executors
    from xavinit.executors import Event

    class Inline:
        """An executor that runs each task at once, in this process."""

        capacity, description = 1, "this process"

        def __init__(self, function, workers):
            self.function, self.events = function, []

        def submit(self, run_id, task):
            outcome = self.function(task, lambda: False, lambda update: None, "inline")
            self.events += [Event("started", run_id, "inline"), Event("done", run_id, "inline",
                            outcome=outcome)]  # fmt: skip

        def poll(self, timeout):
            events, self.events = self.events, []
            return events

        def stop_runs(self):
            return []

        def close(self):
            """Nothing to release: every task ran at submission."""

    monkeypatch.setattr(executors, "LocalPool", Inline)
    real, writes = os.fdopen, {"n": 0}

    def filling(*args, **kwargs):
        writes["n"] += 1  # grid.yaml, manifest.json, then the run's attempts.json
        if writes["n"] >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "fdopen", filling)
    folder = tmp_path / "sweep"
    result = runner.invoke(app, [*SWEEP, "--dir", str(folder), "-d", f"npz:{module_blobs}"])
    _refused(result, "No space left on device")
    assert writes["n"] >= 3 and not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_stdout_on_a_full_device(fmt):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "xavinit", "init", "--layers", "8,4", "-f", fmt],
            stdout=full, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: cannot write the result to stdout: No space left on device"
    ]


# --- checkpoints --------------------------------------------------------------------------------


def _checkpoint(module_blobs: Path, folder: Path) -> Path:
    path = folder / "ck.npz"
    args = [
        "train",
        "-d",
        f"npz:{module_blobs}",
        "--depth",
        "1",
        "--width",
        "6",
        "-s",
        "normalized",
    ]
    result = runner.invoke(
        app, [*args, "--updates", "20", "--checkpoint-every", "10", "--checkpoint", str(path), "-q"]
    )
    assert result.exit_code == 0, result.stderr
    return path


def test_resume_elsewhere_writes_only_the_named_checkpoint(module_blobs, tmp_path, monkeypatch):
    made = tmp_path / "made"
    made.mkdir()
    monkeypatch.chdir(made)
    relative = Path("base.npz")
    args = [
        "train",
        "-d",
        f"npz:{module_blobs}",
        "--depth",
        "1",
        "--width",
        "6",
        "-s",
        "normalized",
    ]
    assert (
        runner.invoke(
            app,
            [
                *args,
                "--updates",
                "20",
                "--checkpoint-every",
                "10",
                "--checkpoint",
                str(relative),
                "-q",
            ],
        ).exit_code
        == 0
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "base.npz").write_bytes(b"someone else's file")
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(app, ["train", "--resume", str(made / "base.npz"), "-q"])
    assert result.exit_code == 0, result.stderr
    assert (elsewhere / "base.npz").read_bytes() == b"someone else's file"


def _rewrite(path: Path, change) -> None:
    arrays = dict(np.load(path))
    document = json.loads(bytes(arrays["state"]).decode())
    change(document, arrays)
    arrays["state"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


CHECKPOINT_DAMAGE = {
    "updates text": (lambda d, a: d["config"].update(updates="abc"), "config.updates"),
    "eval_every 0": (lambda d, a: d["config"].update(eval_every=0), "config.eval_every"),
    "negative lr": (lambda d, a: d["config"].update(lr=-5), "config.lr"),
    "unknown scheme": (lambda d, a: d["config"].update(schemes=["nope"]), "config.schemes"),
    "object dtype": (lambda d, a: d["config"].update(dtype="object"), "config.dtype"),
    "hidden widths": (lambda d, a: d["config"].update(hidden=[7]), "hidden[0] is 7"),
    "update -1e8": (lambda d, a: d["current"].update(update=-100000000), "current.update"),
    "weights shape": (lambda d, a: a.update(W1=np.zeros((3, 3), np.float32)), "W1"),
    "no state": (lambda d, a: d.clear(), "not an xavinit training checkpoint"),
    # Nothing the format does not define, and nothing it defines missing or out of shape.
    "extra array": (lambda d, a: a.update(evil=np.zeros(3, np.float32)), "unknown array 'evil'"),
    "extra layer": (lambda d, a: a.update(W3=np.zeros((3, 3), np.float32)), "unknown array 'W3'"),
    "missing bias": (lambda d, a: a.pop("b2"), "lacks W2 or b2"),
    "bias dtype": (lambda d, a: a.update(b1=a["b1"].astype(np.float64)), "W1/b1 are float32/float64"),
    "extra record key": (lambda d, a: d.update(evil=1), "unknown key 'evil' in the checkpoint's"),
    "missing record key": (lambda d, a: d.pop("xavinit_version"), "lacks 'xavinit_version'"),
    "extra state key": (lambda d, a: d["current"].update(evil=1), "current: unknown field 'evil'"),
    "extra curve key": (lambda d, a: d["current"]["curve"][0].update(evil=1), "current.curve[0]: unknown key 'evil'"),
    "extra stats key": (lambda d, a: d["current"]["layer_stats"][1].update(x=0), "current.layer_stats[1]: unknown key 'x'"),
    "extra stream key": (lambda d, a: d["current"]["stream"].update(evil=1), "current.stream: unknown key 'evil'"),
    "stream position": (lambda d, a: d["current"]["stream"].update(position=10**6), "position must be >= 0 and <= 1000"),
    "stream order": (lambda d, a: d["current"]["stream"]["order"].__setitem__(0, -1), "order must be a permutation"),
    "stream rng": (lambda d, a: d["current"]["stream"].update(rng={"bit_generator": "MT19937"}), "rng is not a PCG64"),
    "stream lacks": (lambda d, a: d["current"]["stream"].pop("epoch"), "current.stream: lacks 'epoch'"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CHECKPOINT_DAMAGE))
def test_a_damaged_checkpoint_names_the_field(case, module_blobs, tmp_path):
    path = _checkpoint(module_blobs, tmp_path)
    change, expected = CHECKPOINT_DAMAGE[case]
    _rewrite(path, change)
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["train", "--resume", str(path), "-o", str(target)])
    _refused(result, expected, written=(target,))


INTERRUPTING = """
import os, signal, sys
from xavinit.cli import main
from xavinit.core.sgd import SGD

original, calls = SGD.step, [0]

def step(self, x, y, lr):
    calls[0] += 1
    if calls[0] == int(os.environ["XAVINIT_TEST_SIGINT_AT"]):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of training
    return original(self, x, y, lr)

SGD.step = step
sys.exit(main(sys.argv[1:]))
"""
"""``xavinit ARGS`` in a process that sends itself SIGINT at one SGD step, so the signal lands
at the same update every time."""


def _interrupt_at(step_number: int, args: list[str], in_process: bool, monkeypatch):
    """``xavinit ARGS`` with SIGINT raised at one SGD step: (exit code, stderr). A separate
    process takes a real signal from outside Python's own machinery; in this process (torch
    already imported: a second import would cost seconds) ``signal.raise_signal`` does."""
    if not in_process:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XAVINIT_TEST_SIGINT_AT": str(step_number)}
        proc = subprocess.run(
            [sys.executable, "-c", INTERRUPTING, *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        return proc.returncode, proc.stderr
    from xavinit.core.sgd import SGD

    original = SGD.step
    calls = {"n": 0}

    def step(self, x, y, lr):
        calls["n"] += 1
        if calls["n"] == step_number:
            signal.raise_signal(signal.SIGINT)
        return original(self, x, y, lr)

    with monkeypatch.context() as patch:
        patch.setattr(SGD, "step", step)
        result = runner.invoke(app, args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_sigint_saves_the_whole_state_and_a_resume_ends_identically(
    backend, module_blobs, tmp_path, monkeypatch
):
    """Ctrl-C in the second of two runs: exit 130, one line saying where the run stood and
    what the checkpoint holds, no result file; resuming gives the uninterrupted result."""
    if backend == "torch":
        pytest.importorskip("torch")
    args = ["train", "-d", f"npz:{module_blobs}", "--layers", "12,16,3", "--updates", "200",
            "--eval-every", "50", "--track-every", "25", "--backend", backend, "-q"]  # fmt: skip
    uninterrupted = runner.invoke(app, [*args, "-f", "json"])
    assert uninterrupted.exit_code == 0, uninterrupted.stderr
    checkpoint, target = tmp_path / "ck.npz", tmp_path / "out.json"
    saving = ["--checkpoint", str(checkpoint), "--checkpoint-every", "30", "-o", str(target)]
    code, stderr = _interrupt_at(277, [*args, *saving], backend == "torch", monkeypatch)
    assert code == 130, stderr
    (line,) = stderr.strip().splitlines()
    held = load_checkpoint(str(checkpoint))
    assert len(held.finished) == 1 and 77 <= held.state.update < 200  # torch: the block's end
    assert line == (
        f"Error: interrupted in run 2 of 2 (normalized / tanh) at update {held.state.update} "
        f"of 200; {checkpoint} holds this run at update {held.state.update} and the 1 "
        f"finished before it; resume with: xavinit train --resume {checkpoint}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # no result, no temp file
    resumed = runner.invoke(app, ["train", "--resume", str(checkpoint), "-q", "-f", "json"])
    assert resumed.exit_code == 0, resumed.stderr
    ours, theirs = json.loads(resumed.stdout), json.loads(uninterrupted.stdout)
    for key in ("checkpoint", "checkpoint_every"):
        ours["config"][key] = theirs["config"][key]
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)


def test_sigint_without_a_checkpoint_says_nothing_was_saved(module_blobs, tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    args = ["train", "-d", f"npz:{module_blobs}", "--layers", "12,8,3", "-s", "normalized",
            "--updates", "100", "--eval-every", "50", "-o", str(target)]  # fmt: skip
    code, stderr = _interrupt_at(5, args, True, monkeypatch)
    assert code == 130
    assert stderr.strip().splitlines() == [
        "Error: interrupted at update 5 of 100; nothing was saved (give --checkpoint FILE to "
        "keep a run's state)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_xavinit_error_is_a_value_error():
    assert issubclass(XavinitError, ValueError)
