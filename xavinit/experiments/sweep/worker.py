"""One run, on a worker: train a grid point to its target from its checkpoint, write its result,
and report what happened as an :class:`Outcome` (a run that goes wrong never raises).

A run's numbers depend on its grid point only: its worker pins BLAS to one thread, and a
dataset loaded once per worker is rewound to its first state for every run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xavinit.config import TrainConfig
from xavinit.errors import XavinitError
from xavinit.experiments.sweep.grid import changed_setting
from xavinit.experiments.sweep.manifest import ATTEMPTS_FILE, CHECKPOINT_FILE, RESULT_FILE
from xavinit.fileio import atomic_write
from xavinit.serialize import to_json


@dataclass(frozen=True)
class Task:
    """What a worker needs to train one run: its folder, its train configuration, and this
    invocation's token (attempts are counted per invocation)."""

    run_id: str
    folder: str
    config: dict[str, Any]
    token: str
    retries: int


@dataclass(frozen=True)
class Outcome:
    """What a worker reports when a run returns.

    ``status``: finished, diverged, interrupted (checkpointed on request) or failed;
    ``updates``: where the run stands; ``trained``: updates this attempt performed;
    ``attempt``: 1 for the first start in this invocation, 2 for the first retry, ...
    """

    run_id: str
    status: str
    updates: int
    trained: int
    wall_seconds: float
    worker: str
    attempt: int
    valid_error: float | None = None
    error: str | None = None
    bad_input: bool = False


_DATASETS: dict[tuple[str, str, int], tuple[Any, dict[str, Any]]] = {}
"""A worker's loaded datasets (at most two), each with its training stream's first state."""
_BLAS_PINNED = {"done": False}


def _one_blas_thread() -> None:
    """Pin this process's BLAS to one thread for good (threadpoolctl), so a run's numbers do
    not depend on how many cores the worker has or how many runs share them."""
    if _BLAS_PINNED["done"]:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _BLAS_PINNED["done"] = True


def _dataset(config: TrainConfig) -> Any:
    """``config.dataset``, loaded once per worker, its training stream rewound to the start."""
    from xavinit.experiments.train import load_training_data

    key = (config.dataset, config.preprocess, config.seed)
    if key in _DATASETS:
        _DATASETS[key] = _DATASETS.pop(key)  # most recently used last
    else:
        while len(_DATASETS) >= 2:
            _DATASETS.pop(next(iter(_DATASETS)))
        data = load_training_data(config)
        _DATASETS[key] = (data, data.train.state())
    data, start = _DATASETS[key]
    data.train.restore(start)
    return data


def _count_attempt(folder: Path, token: str) -> int:
    """Record one more start of this run towards its target in this invocation (``token``
    names both); the count so far."""
    path = folder / ATTEMPTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    same = isinstance(data, dict) and data.get("invocation") == token
    count = int(data.get("count", 0)) + 1 if same else 1
    with atomic_write(path) as stream:
        stream.write(json.dumps({"invocation": token, "count": count}))
    return count


def _resume(path: Path, config: TrainConfig) -> Any:
    """The run's checkpoint, checked against its configuration; None when there is none."""
    from xavinit.experiments.checkpoint import load_checkpoint

    if not path.exists():
        return None
    saved = load_checkpoint(str(path))
    setting = changed_setting(saved.config.to_dict(), config.to_dict())
    if setting is not None:
        raise XavinitError(
            f"{path}: was written with another {setting}; move it away to start over"
        )
    if saved.state.update > config.updates:
        raise XavinitError(
            f"{path}: holds {saved.state.update} updates, more than this run's {config.updates}"
        )
    return saved


def run_task(
    task: Task, stop: Callable[[], bool], report: Callable[[int], None], worker: str
) -> Outcome:
    """Train one grid point to its target (on a worker): continue from its checkpoint when it
    has one, write its result when it finishes, checkpoint and return when ``stop()`` says so.

    Never raises for a run that goes wrong: bad input, divergence and interruption are
    outcomes.
    """
    from xavinit.experiments.checkpoint import peek_checkpoint
    from xavinit.experiments.train import Interrupted, run_train
    from xavinit.loading import load_result

    started = time.perf_counter()
    folder = Path(task.folder)
    try:
        attempt = _count_attempt(folder, f"{task.token}:{task.config['updates']}")
    except XavinitError as error:  # a full disk: bad input, like any other write that fails
        return Outcome(
            task.run_id, "failed", 0, 0, time.perf_counter() - started, worker, 1,
            error=str(error), bad_input=True,
        )  # fmt: skip

    def outcome(status: str, updates: int, trained: int = 0, **extra: Any) -> Outcome:
        return Outcome(
            task.run_id, status, updates, trained, time.perf_counter() - started, worker, attempt,
            **extra,
        )  # fmt: skip

    if attempt > task.retries + 1:
        return outcome(
            "failed",
            0,
            error=f"its worker died {attempt - 1} times (at most {task.retries} retries)",
        )
    checkpoint = folder / CHECKPOINT_FILE
    try:
        config = TrainConfig.from_mapping(task.config)
        result_path = folder / RESULT_FILE
        if result_path.exists():
            done = load_result(result_path)
            run = done.runs[0]
            if run.diverged or run.updates >= config.updates:
                status = "diverged" if run.diverged else "finished"
                return outcome(status, run.updates, valid_error=run.final_valid_error)
        if stop():
            at = peek_checkpoint(str(checkpoint))[1].update if checkpoint.exists() else 0
            return outcome("interrupted", at)
        saved = _resume(checkpoint, config)
        start = saved.state.update if saved is not None else 0
        _one_blas_thread()
        data = _dataset(config)
        try:
            result = run_train(
                config,
                lambda done, total, what: report(done),
                resume=saved,
                stop=stop,
                dataset=data,
            )
        except Interrupted:
            at = peek_checkpoint(str(checkpoint))[1].update if checkpoint.exists() else 0
            return outcome("interrupted", at, max(0, at - start))
        run = result.runs[0]
        with atomic_write(result_path) as stream:
            stream.write(to_json(result.to_dict()))
        status = "diverged" if run.diverged else "finished"
        return outcome(status, run.updates, run.updates - start, valid_error=run.final_valid_error)
    except XavinitError as error:
        return outcome("failed", 0, error=str(error), bad_input=True)
    except MemoryError:
        return outcome("failed", 0, error="ran out of memory")
