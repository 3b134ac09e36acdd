"""``xavinit sweep``: the same runs and table whatever executes them, resume, extension, faults,
the table by hand, bad input, and the renderings.

The grids are small (a few hundred updates of tiny networks): the local pool's workers are
processes started with ``spawn``, so each invocation costs about a second of start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_blobs
from typer.testing import CliRunner

from xavinit import executors
from xavinit.cli import app
from xavinit.config import SweepConfig, TrainConfig
from xavinit.errors import XavinitError
from xavinit.experiments.sweep import (
    Point,
    choose_rate,
    grid_settings,
    run_id,
    sweep_table,
    train_mapping,
)
from xavinit.experiments.sweep.grid import COMPARED, GRID_AXES, PASSED, SET_PER_RUN
from xavinit.results import SweepRun

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SMALL_GRID = [
    "--layers", "1024,50,50,9", "-a", "tanh", "-a", "softsign", "-s", "standard",
    "-s", "normalized", "--lr", "0.01", "--lr", "0.1", "--seeds", "0,1", "--updates", "300",
    "--eval-every", "100", "--track-every", "100", "--test-size", "500",
]  # fmt: skip
"""The issue's small grid: 1024-50-50-9 on Shapeset, two activations, two schemes, two rates,
two seeds, a few hundred updates: 16 runs."""

HOW = ("wall_seconds", "worker")
"""Fields of a run that say how it ran, not what it computed."""


def sweep(*args: str) -> tuple[int, dict | None, str]:
    """Run ``xavinit sweep`` in this process; its exit code, JSON result and stderr."""
    result = runner.invoke(app, ["sweep", *args, "-q", "-f", "json"])
    document = json.loads(result.stdout) if result.exit_code in (0, 1) and result.stdout else None
    return result.exit_code, document, result.stderr


def what(document: dict) -> dict:
    """The parts of a sweep result that must not depend on where or how it ran."""
    runs = [{k: v for k, v in run.items() if k not in HOW} for run in document["runs"]]
    config = {
        k: v for k, v in document["config"].items() if k not in ("dir", "workers", "scheduler")
    }
    return {
        "runs": runs,
        "table": document["table"],
        "config": config,
        "passed": document["passed"],
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small grid with one worker: the sweep every other one must equal."""
    folder = tmp_path_factory.mktemp("sweep") / "one"
    code, document, stderr = sweep("--dir", str(folder), *SMALL_GRID, "--workers", "1")
    assert code == 0, stderr
    return folder, document


def test_the_small_grid_has_sixteen_runs_and_a_table(reference):
    _, document = reference
    assert len(document["runs"]) == 16 and len(document["table"]) == 4
    assert {r["status"] for r in document["runs"]} == {"finished"}
    assert all(r["updates"] == 300 and r["retries"] == 0 for r in document["runs"])
    assert document["trained_updates"] == 16 * 300
    run = document["runs"][0]
    for key in ("scheme", "activation", "updates", "final_test_error", "curve", "layer_stats",
                "dataset", "lr", "seed", "status", "wall_seconds", "worker"):  # fmt: skip
        assert key in run
    entry = document["table"][0]
    assert set(entry) >= {
        "dataset", "activation", "scheme", "lr", "validation_error", "test_error_mean",
        "test_error_std", "seeds",
    }  # fmt: skip


def test_two_workers_give_the_same_runs_and_table(reference, tmp_path):
    _, expected = reference
    code, document, stderr = sweep("--dir", str(tmp_path / "two"), *SMALL_GRID, "--workers", "2")
    assert code == 0, stderr
    assert what(document) == what(expected)
    assert len({r["worker"] for r in document["runs"]}) == 2  # both workers trained runs


def test_a_dask_cluster_gives_the_same_runs_and_table(reference, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    _, expected = reference
    # The cluster's worker processes import xavinit from this checkout.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        code, document, stderr = sweep(
            "--dir", str(tmp_path / "dask"), *SMALL_GRID, "--scheduler", cluster.scheduler_address
        )
    assert code == 0, stderr
    assert what(document) == what(expected)
    assert all(r["worker"].startswith("tcp://") for r in document["runs"])


def test_a_rerun_of_a_finished_sweep_trains_nothing(reference, monkeypatch):
    folder, expected = reference
    pools = []
    monkeypatch.setattr(executors, "LocalPool", lambda *a, **k: pools.append(a))
    code, document, stderr = sweep("--dir", str(folder))  # the folder's grid.yaml is the grid
    assert code == 0, stderr
    assert document["trained_updates"] == 0 and pools == []
    assert what(document) == what(expected)


BLOBS_GRID = [
    "--layers", "12,16,16,3", "-a", "tanh", "-s", "normalized", "-s", "standard", "--lr", "0.01",
    "--lr", "0.3", "--seeds", "0,1", "--eval-every", "100", "--track-every", "50",
]  # fmt: skip
"""Eight short runs on a blobs dataset, for the extension and selection tests."""


@pytest.fixture(scope="module")
def from_scratch(module_blobs, tmp_path_factory):
    """The blobs grid trained to 300 updates in one go."""
    folder = tmp_path_factory.mktemp("scratch")
    code, document, stderr = sweep(
        "--dir", str(folder), "-d", f"npz:{module_blobs}", *BLOBS_GRID, "--updates", "300"
    )
    assert code == 0, stderr
    return {run["id"]: {k: v for k, v in run.items() if k not in HOW} for run in document["runs"]}


def test_a_larger_budget_extends_finished_runs_exactly(module_blobs, from_scratch, tmp_path):
    """200 updates, then 300: the same runs as 300 from scratch, and only the 100 updates per
    run that were missing are trained."""
    grid = ["--dir", str(tmp_path / "extend"), "-d", f"npz:{module_blobs}", *BLOBS_GRID]
    code, short, stderr = sweep(*grid, "--updates", "200")
    assert code == 0, stderr
    assert {r["updates"] for r in short["runs"]} == {200}
    code, extended, stderr = sweep(*grid, "--updates", "300")
    assert code == 0, stderr
    assert extended["trained_updates"] == 8 * 100
    for run in extended["runs"]:
        assert {k: v for k, v in run.items() if k not in HOW} == from_scratch[run["id"]], run["id"]
    # Shortening, or changing anything but --updates, is refused and names the setting.
    for args, named in (
        (["--updates", "200"], "--updates"),
        (["--updates", "300", "--batch-size", "20"], "--batch-size"),
        (["--updates", "300", "--cost", "quadratic"], "--cost"),
        (["--updates", "300", "--layers", "12,8,3"], "--depth/--width (or --layers)"),
    ):
        code, _, stderr = sweep(*grid, *args)
        assert code == 2 and stderr.startswith(f"Error: {named}"), stderr
        assert len(stderr.strip().splitlines()) == 1


def test_select_at_trains_only_the_chosen_rate_on(module_blobs, from_scratch, tmp_path):
    """With --select-at 200 --updates 300 each model's rate is chosen on the validation error
    after 200 updates; the chosen rate's runs equal the 300-update runs from scratch."""
    grid = ["--dir", str(tmp_path / "select"), "-d", f"npz:{module_blobs}", *BLOBS_GRID]
    code, document, stderr = sweep(*grid, "--select-at", "200", "--updates", "300")
    assert code == 0, stderr
    extended = 0
    for entry in document["table"]:
        mine = [r for r in document["runs"] if r["scheme"] == entry["scheme"]]
        at_200: dict[float, list[float]] = {}
        for run in mine:
            at_200.setdefault(run["lr"], []).append(run["selection_valid_error"])
        means = {lr: sum(v) / len(v) for lr, v in at_200.items()}
        best = min(means, key=means.get)
        assert entry["lr"] == best and entry["selected_at"] == 200
        assert entry["validation_error"] == pytest.approx(means[best])
        for run in mine:
            if run["lr"] == best:
                extended += 1
                assert {k: v for k, v in run.items() if k not in HOW} == {
                    **from_scratch[run["id"]],
                    "selection_valid_error": run["selection_valid_error"],
                }
            else:
                assert run["updates"] == 200
                assert run["final_valid_error"] == run["selection_valid_error"]
    assert extended == 4
    assert document["trained_updates"] == 8 * 200 + extended * 100
    # The rates were chosen after 200 updates; a later grid may not move that point.
    code, _, stderr = sweep(*grid, "--select-at", "100", "--updates", "300")
    assert code == 2 and stderr.startswith("Error: --select-at"), stderr


# --- faults -------------------------------------------------------------------------------------

LONG = [
    "-a", "tanh", "-s", "normalized", "--lr", "0.01", "--seeds", "0,1", "--layers",
    "1024,100,100,3", "--updates", "6000", "--eval-every", "250", "--track-every", "250",
]  # fmt: skip
"""Two runs long enough (seconds) to be caught in the middle, on a blobs dataset."""


@pytest.fixture(scope="module")
def long_data(tmp_path_factory):
    return write_blobs(tmp_path_factory.mktemp("long") / "wide.npz", inputs=1024, classes=3)


@pytest.fixture(scope="module")
def long_reference(long_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("long") / "reference"
    code, document, stderr = sweep("--dir", str(folder), "-d", f"npz:{long_data}", *LONG)
    assert code == 0, stderr
    return document


def _start(folder: Path, data: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "xavinit", "sweep", "--dir", str(folder), "-d", f"npz:{data}",
               *LONG, "--workers", "2", "-q", "-f", "json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )


def _wait_for_mid_run(folder: Path, process: subprocess.Popen) -> dict:
    """Poll the manifest until a run is active with a checkpoint and no result; that run."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {"runs": {}}
        for key, record in manifest["runs"].items():
            run = folder / "runs" / key
            started = record["status"] == "active" and (run / "checkpoint.npz").exists()
            if started and not (run / "result.json").exists():
                return {"id": key, **record}
        time.sleep(0.02)
    raise AssertionError("no run was caught in the middle")


def test_sigint_checkpoints_the_active_runs_and_a_rerun_is_identical(
    long_data, long_reference, tmp_path
):
    folder = tmp_path / "interrupted"
    process = _start(folder, long_data)
    _wait_for_mid_run(folder, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err and out == ""
    manifest = json.loads((folder / "manifest.json").read_text())
    stopped = [k for k, r in manifest["runs"].items() if r["status"] == "interrupted"]
    assert stopped, manifest  # at least one run was stopped in the middle
    for key in stopped:
        assert 0 < manifest["runs"][key]["updates"] < 6000
    code, document, stderr = sweep("--dir", str(folder))
    assert code == 0, stderr
    assert what(document) == what(long_reference)


def test_a_killed_worker_costs_a_retry_and_nothing_else(long_data, long_reference, tmp_path):
    folder = tmp_path / "killed"
    process = _start(folder, long_data)
    victim = _wait_for_mid_run(folder, process)
    pid = int(victim["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    document = json.loads(out)
    retried = {r["id"]: r["retries"] for r in document["runs"]}
    assert retried[victim["id"]] == 1 and sum(retried.values()) == 1
    assert what(document) == {**what(long_reference), "runs": [
        {**run, "retries": retried[run["id"]]} for run in what(long_reference)["runs"]
    ]}  # fmt: skip


def test_a_diverged_run_is_recorded_not_retried_and_fails_the_sweep(module_blobs, tmp_path):
    # As in test_train: at a large rate a linear network's logits overflow within a few updates.
    args = ["--dir", str(tmp_path / "div"), "-d", f"npz:{module_blobs}", "--layers", "12,16,3",
            "-a", "linear", "-s", "normalized", "--lr", "0.05", "--lr", "1000", "--updates",
            "100", "--eval-every", "50", "--track-every", "50", "--workers", "1"]  # fmt: skip
    code, document, stderr = sweep(*args)
    assert code == 1, stderr
    by_lr = {r["lr"]: r for r in document["runs"]}
    assert by_lr[1000.0]["status"] == "diverged" and by_lr[1000.0]["retries"] == 0
    assert by_lr[0.05]["status"] == "finished"
    assert document["table"][0]["lr"] == 0.05  # a rate that diverged is never chosen
    code, again, _ = sweep("--dir", str(tmp_path / "div"))
    assert code == 1 and again["trained_updates"] == 0


# --- the table, by hand ---------------------------------------------------------------------


def _run(lr, seed, valid, test, status="finished"):
    return SweepRun(
        scheme="normalized", activation="tanh", updates=100, final_test_error=test, curve=[],
        layer_stats=[], lr=lr, id=f"{lr}-{seed}", dataset="shapeset", seed=seed, status=status,
        selection_valid_error=valid,
    )  # fmt: skip


def test_the_table_chooses_the_lowest_mean_validation_error():
    runs = [
        _run(0.01, 0, 0.50, 0.52), _run(0.01, 1, 0.40, 0.41),  # mean 0.45
        _run(0.03, 0, 0.44, 0.30), _run(0.03, 1, 0.44, 0.36),  # mean 0.44: chosen
        _run(0.1, 0, 0.10, 0.10), _run(0.1, 1, None, None, "diverged"),  # a seed diverged
    ]  # fmt: skip
    (entry,) = sweep_table(runs, 100)
    assert entry["lr"] == 0.03 and entry["validation_error"] == pytest.approx(0.44)
    assert entry["test_error_mean"] == pytest.approx(0.33)
    # sample std of 0.30 and 0.36: sqrt(((-0.03)^2 + 0.03^2) / 1) = 0.042426...
    assert entry["test_error_std"] == pytest.approx(0.03 * np.sqrt(2))
    assert entry["seeds"] == 2
    assert choose_rate([(0.1, None), (0.3, None)]) is None
    assert choose_rate([(0.1, 0.2), (0.3, 0.2)]) == (0.1, 0.2)  # ties: the rate listed first
    (one,) = sweep_table([_run(0.01, 0, 0.5, 0.25)], 100)
    assert one["test_error_std"] is None and one["test_error_mean"] == 0.25


def test_run_ids_are_readable_and_distinct():
    point = Point("shapeset", "tanh", "normalized", 0.03, 0)
    assert run_id(point) == "shapeset_tanh_normalized_lr0.03_seed0"
    specs = ["normalized:gain=tanh", "normalized-gain-tanh", "normalized:gain=1.5"]
    ids = {run_id(Point("shapeset", "tanh", s, 0.03, 0)) for s in specs}
    assert len(ids) == 3
    assert run_id(Point("npz:/a/b.npz", "tanh", "standard", 0.1, 2)).startswith("npz-")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
        (["--updates", "250"], "--updates: must be a multiple of --eval-every"),
        (["--select-at", "3000"], "--select-at"),
        (["--seeds", "0,x"], "--seeds[1]"),
        (["--lr", "-1"], "--lr"),
        (["-d", "imagenet"], "unknown dataset kind"),
        (["-d", "shapeset", "-d", "digits", "--layers", "1024,9"], "--layers"),
    ],
)
def test_bad_options_exit_2_with_one_line_and_no_folder(args, named, tmp_path):
    folder = tmp_path / "never"
    target = tmp_path / "out.json"
    result = runner.invoke(app, ["sweep", "--dir", str(folder), *args, "-o", str(target)])
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], lines
    assert not folder.exists() and not target.exists()


def test_no_dir_is_a_usage_error():
    result = runner.invoke(app, ["sweep"])
    assert result.exit_code == 2 and "--dir" in result.stderr


def test_a_missing_dataset_file_stops_the_sweep_with_exit_2(tmp_path):
    target = tmp_path / "out.json"
    args = ["sweep", "--dir", str(tmp_path / "d"), "-d", f"npz:{tmp_path / 'absent.npz'}",
            "--depth", "1", "--width", "4", "-a", "tanh", "-s", "normalized", "--lr", "0.1",
            "--updates", "10", "--eval-every", "10", "--track-every", "10", "--workers", "1",
            "-o", str(target)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "absent.npz" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not target.exists()


def test_hostile_folder_contents_are_refused_naming_the_file(module_blobs, tmp_path):
    folder = tmp_path / "hostile"
    args = ["--dir", str(folder), "-d", f"npz:{module_blobs}", "--layers", "12,8,3", "-a",
            "tanh", "-s", "normalized", "--lr", "0.1", "--updates", "20", "--eval-every", "10",
            "--track-every", "10", "--workers", "1"]  # fmt: skip
    code, document, stderr = sweep(*args)
    assert code == 0, stderr
    (run,) = document["runs"]
    result = folder / "runs" / run["id"] / "result.json"
    good = result.read_text()
    result.write_text(good[: len(good) // 2])  # truncated
    code, _, stderr = sweep("--dir", str(folder))
    assert code == 2 and "result.json" in stderr and "malformed JSON" in stderr
    result.write_text(good)
    (folder / "manifest.json").write_text('{"format": "xavinit-sweep-manifest", "version": 1, '
                                          '"runs": {"x": {"status": 3}}}')  # fmt: skip
    code, _, stderr = sweep("--dir", str(folder))
    assert code == 2 and "manifest.json" in stderr and len(stderr.strip().splitlines()) == 1
    (folder / "manifest.json").write_text("[]")
    code, _, stderr = sweep("--dir", str(folder))
    assert code == 2 and "not an xavinit sweep manifest" in stderr
    (folder / "manifest.json").unlink()
    (folder / "runs" / run["id"] / "checkpoint.npz").write_bytes(b"PK\x03\x04 not a zip")
    code, _, stderr = sweep("--dir", str(folder))
    assert code == 2 and "checkpoint.npz" in stderr


TINY_GRID = [
    "--layers", "12,8,3", "-a", "tanh", "-s", "normalized", "--lr", "0.1", "--lr", "0.3",
    "--seeds", "0", "--select-at", "10", "--updates", "20", "--eval-every", "10",
    "--track-every", "10", "--workers", "1",
]  # fmt: skip
"""Two runs chosen between after 10 updates; the chosen one trains on to 20."""


@pytest.fixture(scope="module")
def tiny_sweep(module_blobs, tmp_path_factory):
    """A finished tiny sweep: its folder and its JSON result."""
    folder = tmp_path_factory.mktemp("tiny") / "sweep"
    code, document, stderr = sweep("--dir", str(folder), "-d", f"npz:{module_blobs}", *TINY_GRID)
    assert code == 0, stderr
    return folder, document


def _edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))


def _tamper_cases(document: dict) -> dict:
    """name: (file in the folder, its edit, the file and the field the refusal names). A name
    with "no digests" also forgets the manifest's digests, as a manifest from before them."""
    chosen = document["table"][0]["lr"]
    runs = {run["lr"]: run["id"] for run in document["runs"]}
    other = runs[0.1 if chosen == 0.3 else 0.3]
    mine = f"runs/{runs[chosen]}"

    def set_final(d):
        d["runs"][0]["final_test_error"] = 0.0

    def set_curve_too(d):
        set_final(d)
        d["runs"][0]["curve"][-1]["test_error"] = 0.0

    return {
        "a final test error of 0": (f"{mine}/result.json", set_final, "runs[0].final_test_error"),
        "and the curve's last point": (f"{mine}/result.json", set_curve_too, "result_sha256"),
        "another scheme": (
            f"{mine}/result.json",
            lambda d: d["runs"][0].update(scheme="standard"),
            "runs[0].scheme",
        ),
        "a histogram": (
            f"{mine}/result.json",
            lambda d: d["runs"][0]["final_histograms"][0]["counts"].__setitem__(0, 10**6),
            "result_sha256",
        ),
        "the other rate's selection in the manifest": (
            "manifest.json",
            lambda d: d["runs"][other]["selection"].update(valid_error=0.0),
            f"runs.{other}.selection.valid_error",
        ),
        "the validation error it was chosen on": (
            f"runs/{other}/result.json",
            lambda d: d["runs"][0].update(final_valid_error=0.0),
            f"runs.{other}.result_sha256",
        ),
        "that, no digests": (
            f"runs/{other}/result.json",
            lambda d: d["runs"][0].update(final_valid_error=0.0),
            f"manifest.json: runs.{other}.selection.valid_error",
        ),
        "a curve point, no digests": (
            f"{mine}/result.json",
            lambda d: d["runs"][0]["curve"][1].update(test_error=0.0),
            "result.json: runs[0].curve[1].test_error is 0.0, but checkpoint.npz recorded",
        ),
        "a tracked statistic, no digests": (
            f"{mine}/selection.json",
            lambda d: d["runs"][0]["layer_stats"][0].update(std=1.0),
            "selection.json: runs[0].layer_stats[0].std is 1.0, but checkpoint.npz recorded",
        ),
        "the chosen run's kept result": (
            f"{mine}/selection.json",
            lambda d: d["runs"][0].update(final_valid_error=0.5),
            "selection_sha256",
        ),
        "the manifest's digest": (
            "manifest.json",
            lambda d: d["runs"][runs[chosen]].update(result_sha256="0" * 64),
            "result_sha256",
        ),
    }


def _forget_digests(manifest: dict) -> None:
    for record in manifest["runs"].values():
        record.update(result_sha256=None, result_at=None, selection_sha256=None)


def test_a_tampered_sweep_folder_is_refused_naming_the_file_and_field(tiny_sweep, tmp_path):
    """Resuming a folder whose numbers were edited by hand: the reported numbers come from
    what was trained, or the folder is refused (one line naming the file and the field)."""
    folder, document = tiny_sweep
    assert document["table"][0]["selected_at"] == 10
    for name, (relative, change, named) in _tamper_cases(document).items():
        copy = tmp_path / name.replace(" ", "-").replace("'", "")
        shutil.copytree(folder, copy)
        _edit(copy / relative, change)
        if "no digests" in name:
            _edit(copy / "manifest.json", _forget_digests)
        before = (copy / "manifest.json").read_bytes()
        code, _, stderr = sweep("--dir", str(copy))
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1, (name, stderr)
        named_file = named if ":" in named else Path(relative).name  # or the file it names
        assert named_file in lines[0] and named in lines[0], (name, lines[0])
        assert "refused (edited or damaged)" in lines[0], lines[0]
        assert (copy / "manifest.json").read_bytes() == before  # the folder is left as it was


def test_what_a_sweep_reports_comes_from_its_runs_not_its_manifest(tiny_sweep, tmp_path):
    """The manifest's account of how runs ran is reported as recorded; without it (every record
    gone) the runs, the rates chosen and the table are recomputed from the runs' results."""
    folder, document = tiny_sweep
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    first = document["runs"][0]["id"]
    _edit(copy / "manifest.json", lambda d: d["runs"][first].update(retries=3, status="failed"))
    code, again, stderr = sweep("--dir", str(copy))
    assert code == 0, stderr
    assert again["runs"][0]["retries"] == 3 and again["runs"][0]["status"] == "finished"
    _edit(copy / "manifest.json", lambda d: d.update(runs={}))
    code, again, stderr = sweep("--dir", str(copy))
    assert code == 0 and again["trained_updates"] == 0, stderr
    assert what(again)["table"] == what(document)["table"]
    for mine, theirs in zip(again["runs"], document["runs"], strict=True):
        same = {k: v for k, v in mine.items() if k not in (*HOW, "retries")}
        assert same == {k: v for k, v in theirs.items() if k not in (*HOW, "retries")}


def test_a_folder_from_before_selection_json_resumes_on_its_manifest(tiny_sweep, tmp_path):
    """A sweep folder written before runs kept their result at --select-at (no selection.json,
    no digests): the chosen run's validation error there is the manifest's, as it was."""
    folder, document = tiny_sweep
    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    (kept,) = copy.glob("runs/*/selection.json")
    kept.unlink()
    _edit(copy / "manifest.json", _forget_digests)
    code, again, stderr = sweep("--dir", str(copy))
    assert code == 0 and again["trained_updates"] == 0, stderr
    assert what(again)["table"] == what(document)["table"]


# --- train's options in a sweep ---------------------------------------------------------------


def test_every_train_option_is_passed_a_grid_axis_or_set_by_the_sweep():
    """A train option that is none of the three would silently not reach a sweep's runs."""
    kinds = {"passed": set(PASSED), "grid axis": set(GRID_AXES), "set per run": SET_PER_RUN}
    for name in TrainConfig.model_fields:
        found = [kind for kind, names in kinds.items() if name in names]
        assert len(found) == 1, f"train option {name}: {found or 'in none'}"
    assert set(TrainConfig.model_fields) >= SET_PER_RUN
    assert set(SweepConfig.model_fields) >= set(GRID_AXES.values())
    assert set(COMPARED) == set(CHANGES)  # what a run's result depends on, listed by hand


def test_a_run_gets_the_sweeps_options_its_point_and_its_own_checkpoint():
    config = SweepConfig.from_mapping(
        {"dir": "d", "hidden": [4, 5], "cost": "quadratic", "batch_size": 7, "updates": 60,
         "select_at": 30, "eval_every": 30, "track_every": 15, "test_size": 40,
         "preprocess": "standardize", "dtype": "float64", "backend": "torch", "workers": 2}
    )  # fmt: skip
    point = Point("digits", "relu", "he-normal", 0.2, 4)
    mapping = train_mapping(config, point, 30, "d/runs/x/checkpoint.npz")
    assert TrainConfig.from_mapping(mapping).to_dict() == {
        "backend": "torch", "device": "cpu", "seed": 4, "dataset": "digits", "layers": [],
        "hidden": [4, 5], "schemes": ["he-normal"], "activations": ["relu"], "cost": "quadratic",
        "lr": 0.2, "batch_size": 7, "updates": 30, "eval_every": 30, "track_every": 15,
        "test_size": 40, "preprocess": "standardize", "checkpoint": "d/runs/x/checkpoint.npz",
        "checkpoint_every": 30, "dtype": "float64",
    }  # fmt: skip
    layered = SweepConfig.from_mapping({"dir": "d", "layers": "64,9,9,10"})
    trained = TrainConfig.from_mapping(train_mapping(layered, point, 10, "c.npz"))
    assert trained.layers == (64, 9, 9, 10) and trained.hidden == (9, 9)


CHANGES = {
    # compared setting: (the option the refusal names, the change, trained with, the grid says).
    # A grid axis cannot change without changing the run's folder: the run's recorded config is
    # edited (dict); the other settings change on the command line (list).
    "dataset": ("--dataset", {"dataset": "digits"}, "digits", "npz:BLOBS"),
    "activations": ("--activation", {"activations": ["relu"]}, "relu", "tanh"),
    "schemes": ("--scheme", {"schemes": ["standard"]}, "standard", "normalized"),
    "lr": ("--lr", {"lr": 0.2}, "0.2", "0.1"),
    "seed": ("--seeds", {"seed": 5}, "5", "0"),
    "hidden": ("--depth/--width (or --layers)", ["--layers", "12,6,3"], "8", "6"),
    "cost": ("--cost", ["--cost", "quadratic"], "nll", "quadratic"),
    "batch_size": ("--batch-size", ["--batch-size", "5"], "10", "5"),
    "eval_every": ("--eval-every", ["--eval-every", "5"], "10", "5"),
    "track_every": ("--track-every", ["--track-every", "5"], "10", "5"),
    "test_size": ("--test-size", ["--test-size", "50"], "None", "50"),
    "preprocess": ("--preprocess", ["--preprocess", "standardize"], "scale", "standardize"),
    "dtype": ("--dtype", ["--dtype", "float64"], "float32", "float64"),
}


@pytest.mark.parametrize("setting", COMPARED)
def test_resume_refuses_a_change_of_each_compared_setting(
    setting, tiny_sweep, module_blobs, tmp_path
):
    folder, document = tiny_sweep
    flag, change, trained, now = CHANGES[setting]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    first = document["runs"][0]["id"]  # the first run read
    args: list[str] = []
    if isinstance(change, dict):
        _edit(copy / "runs" / first / "result.json", lambda d: d["config"].update(change))
        _edit(copy / "manifest.json", _forget_digests)
    else:
        args = change
    before = (copy / "manifest.json").read_bytes()
    code, _, stderr = sweep("--dir", str(copy), *args)
    assert code == 2
    now = now.replace("BLOBS", str(module_blobs))
    assert stderr.strip() == (
        f"Error: {flag}: run {first} was trained with {setting} {trained}, the grid now says "
        f"{now}; only --updates may change for runs already trained (or use another --dir)"
    )
    assert (copy / "manifest.json").read_bytes() == before


def test_a_scheduler_without_dask_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    args = ["sweep", "--dir", str(tmp_path / "x"), "--depth", "1", "--width", "4", "-a", "tanh",
            "-s", "normalized", "--lr", "0.1", "--updates", "10", "--eval-every", "10",
            "--track-every", "10", "--scheduler", "tcp://127.0.0.1:1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "pip install 'xavinit[cluster]'" in result.stderr


# --- renderings -----------------------------------------------------------------------------


def test_report_with_paper_puts_table_1_beside_ours(reference, tmp_path):
    _, document = reference
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["report", str(path), "--paper", "-f", "markdown"])
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| Tanh N |")]
    entry = next(
        e for e in document["table"] if (e["activation"], e["scheme"]) == ("tanh", "normalized")
    )
    ours = 100 * entry["test_error_mean"]
    assert rows and f"| 15.60 | {ours - 15.60:+.2f} |" in rows[0]
    models = [line.split("|")[1].strip() for line in result.stdout.splitlines()
              if line.startswith("| ") and "seeds)" in line]  # fmt: skip
    assert models == ["Softsign", "Softsign N", "Tanh", "Tanh N"]  # Table 1's order


def test_figures_of_a_sweep(reference):
    pytest.importorskip("matplotlib")
    from xavinit.loading import result_from_dict
    from xavinit.render.plots import figures

    _, document = reference
    names = [name for name, _, _ in figures(result_from_dict(document))]
    assert names == ["sweep-shapeset-test-error", "sweep-shapeset-learning-rates"]


def test_the_config_records_the_grid_for_the_folder():
    config = SweepConfig.from_mapping(
        {"dir": "d", "depth": 2, "width": 7, "seeds": "3,1", "workers": 3, "backend": "torch"}
    )
    grid = grid_settings(config)
    assert grid["depth"] == 2 and grid["width"] == 7 and grid["seeds"] == [3, 1]
    # grid.yaml's keys and their order; where and how the runs execute is not part of it
    assert list(grid) == [
        "dataset", "depth", "width", "scheme", "activation", "lr", "seeds", "cost",
        "batch_size", "updates", "select_at", "eval_every", "track_every", "test_size",
        "preprocess", "dtype",
    ]  # fmt: skip
    assert grid_settings(SweepConfig.from_mapping({**grid, "dir": "e"})) == grid
    layered = grid_settings(SweepConfig.from_mapping({"dir": "d", "layers": "12,8,8,3"}))
    assert layered["layers"] == [12, 8, 8, 3] and "depth" not in layered
    uneven = grid_settings(SweepConfig.from_mapping({"dir": "d", "hidden": [4, 5]}))
    assert uneven["hidden"] == [4, 5] and "depth" not in uneven and "layers" not in uneven
    with pytest.raises(XavinitError, match="select_at: must be at most"):
        SweepConfig.from_mapping({"dir": "d", "updates": 1000, "select_at": 1500})


def test_the_progress_display_shows_runs_updates_and_an_eta(monkeypatch):
    import io

    from rich.console import Console

    from xavinit.cli import sweep as sweep_cli
    from xavinit.experiments.sweep import SweepStatus

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120, color_system=None)
    monkeypatch.setattr(sweep_cli, "stderr_console", lambda: console)
    clock = iter([0.0, 10.0, 10.0, 20.0, 20.0])
    monkeypatch.setattr(sweep_cli.time, "monotonic", lambda: next(clock))
    status = SweepStatus(
        total=5, done=2, queued=1, active=[("shapeset_tanh_normalized_lr0.03_seed0", 300, 1000)],
        failed=0, diverged=1, updates_trained=600, updates_left=1200, where="2 local workers",
    )  # fmt: skip
    with sweep_cli.sweep_display(False) as show:
        assert show is not None
        show(status)
        console.file.write("\n")
        bar_text = stream.getvalue()
    # 600 updates in 10 s: 60 per second, 1200 left: 20 s
    assert "runs: 2/5 done, 1 active, 1 queued, 1 diverged, 0 failed" in bar_text
    assert "ETA 0:20" in bar_text and "shapeset_tanh_normalized_lr0.03_seed0" in bar_text
    with sweep_cli.sweep_display(True) as quiet:
        assert quiet is None
