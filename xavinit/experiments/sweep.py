"""``xavinit sweep``: the paper's Table 1 protocol as one resumable command.

The grid is datasets x activations x schemes x learning rates x seeds. Every point is one
``train`` run (:func:`xavinit.experiments.train.run_train` with one scheme and one activation,
so a run has exactly train's fields), executed where :mod:`xavinit.executors` sends it: a pool
of local worker processes, or a Dask cluster. Each model (dataset, activation, scheme) gets the
learning rate with the lowest validation error (mean over seeds), as the paper chose its rates
(section 2.3); at that rate the test error over the seeds is the model's cell of Table 1. With
``select_at`` the rate is chosen after that many updates and only the chosen rate's runs train
on to ``updates``.

The sweep's folder holds everything, so running the same command again resumes it::

    DIR/grid.yaml                the grid's settings (SweepConfig.grid()), as last run
    DIR/manifest.json            every run's status, updates, retries, worker, wall time and the
                                 validation error its learning rate was chosen on
    DIR/runs/ID/checkpoint.npz   the run's whole state at its last evaluation (train's format)
    DIR/runs/ID/result.json      the run's ``train`` result once it finished or diverged
    DIR/runs/ID/selection.json   with ``select_at``: the run's result at that point, kept when
                                 the chosen rate trains on (its validation error chose the rate)
    DIR/runs/ID/attempts.json    how often this invocation started the run (bounds retries)

A finished run is skipped; an interrupted one continues from its checkpoint, bit-identical to an
uninterrupted run (a run's result depends on its grid point only: same code, one BLAS thread,
seeded streams); a larger ``updates`` continues finished runs from their last state, identical
to a run trained with the larger budget from the start, since ``updates`` is a multiple of the
evaluation and tracking intervals. A grid that changes anything else of a run already trained
is refused, naming the setting.

What a sweep reports comes from its runs' results, never from the manifest's account of them:
each run's result must be its grid point's (scheme, activation, rate), its final test error
its curve's last (:mod:`xavinit.core.evidence`), its curve and tracked statistics the ones its
checkpoint recorded for the same updates (:func:`same_history`), and the file the one this
sweep wrote (the manifest keeps each result file's SHA-256 beside the update it was written
at); the validation error a rate is chosen on is read from the run's result at the selection
point every time, and the manifest's record of it must agree. A folder that fails one of these is refused, naming the
file and the field (a hand-edited or damaged folder; move the run's folder away to train it
again). The manifest's ``wall_seconds``, ``worker`` and ``retries`` say how runs ran and are
reported as recorded.

Faults: Ctrl-C (SIGINT) asks every active run to checkpoint and return, then raises
:class:`SweepInterrupted`; a run whose worker dies is started again from its last checkpoint,
at most ``retries`` times (recorded per run); a diverged run is final and never retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import TypedDict

from xavinit.config import SweepConfig, TrainConfig
from xavinit.errors import XavinitError
from xavinit.fileio import atomic_write
from xavinit.loading import validate
from xavinit.results import (
    Count,
    Fraction,
    Real,
    SweepEntry,
    SweepResult,
    SweepRun,
    TrainResult,
    TrainRun,
)
from xavinit.serialize import parse_json_text, plain, quote, read_text, to_json, to_yaml

if TYPE_CHECKING:
    from xavinit.executors import Executor

MANIFEST_FORMAT = "xavinit-sweep-manifest"
MANIFEST_VERSION = 1
GRID_FILE, MANIFEST_FILE, RUNS_FOLDER = "grid.yaml", "manifest.json", "runs"
CHECKPOINT_FILE, RESULT_FILE, ATTEMPTS_FILE = "checkpoint.npz", "result.json", "attempts.json"
SELECTION_FILE = "selection.json"
STATUSES = ("queued", "active", "finished", "diverged", "failed", "interrupted")
POLL_SECONDS = 0.2
MANIFEST_SECONDS = 1.0
"""While runs progress the manifest is rewritten at most this often (at once on a status)."""
COMPARED = (
    "dataset", "activations", "schemes", "lr", "seed", "hidden", "cost", "batch_size",
    "eval_every", "track_every", "test_size", "preprocess", "dtype",
)  # fmt: skip
"""A run's settings that a later grid may not change (``updates`` may grow)."""
OPTION_OF = {
    "hidden": "--depth/--width (or --layers)",
    "activations": "--activation",
    "schemes": "--scheme",
    "seed": "--seeds",
}


# --- the grid ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One grid point: one training run."""

    dataset: str
    activation: str
    scheme: str
    lr: float
    seed: int

    @property
    def model(self) -> tuple[str, str, str]:
        """The model this run is a trial of: (dataset, activation, scheme)."""
        return (self.dataset, self.activation, self.scheme)


def grid_points(config: SweepConfig) -> list[Point]:
    """Every point of the grid, datasets outermost and seeds innermost."""
    return [
        Point(dataset, activation, scheme, lr, seed)
        for dataset in config.datasets
        for activation in config.activations
        for scheme in config.schemes
        for lr in config.lrs
        for seed in config.seeds
    ]


def _slug(text: str) -> str:
    """A file-name-safe form of ``text``; a hash of the text is added when it had to change."""
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "x"
    if slug == text:
        return slug
    return f"{slug}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def run_id(point: Point) -> str:
    """The run's folder name: ``shapeset_tanh_normalized_lr0.03_seed0`` (a dataset path or an
    unusual spec adds a short hash, so two points never share a folder)."""
    kind, _, path = point.dataset.partition(":")
    dataset = _slug(kind.strip().lower())
    if path.strip():
        dataset += "-" + hashlib.sha256(path.strip().encode("utf-8")).hexdigest()[:8]
    return "_".join(
        [
            dataset,
            _slug(point.activation),
            _slug(point.scheme),
            f"lr{point.lr!r}",
            f"seed{point.seed}",
        ]
    )


def train_mapping(
    config: SweepConfig, point: Point, updates: int, checkpoint: str
) -> dict[str, Any]:
    """The ``train`` configuration of one run, trained to ``updates``, checkpointing at every
    evaluation into ``checkpoint``."""
    mapping: dict[str, Any] = {
        "dataset": point.dataset,
        "schemes": [point.scheme],
        "activations": [point.activation],
        "lr": point.lr,
        "seed": point.seed,
        "cost": config.cost,
        "batch_size": config.batch_size,
        "updates": updates,
        "eval_every": config.eval_every,
        "track_every": config.track_every,
        "test_size": config.test_size,
        "preprocess": config.preprocess,
        "dtype": config.dtype,
        "backend": config.backend,
        "device": config.device,
        "checkpoint": checkpoint,
        "checkpoint_every": config.eval_every,
    }
    if config.layers:
        mapping["layers"] = list(config.layers)
    else:
        mapping["hidden"] = list(config.hidden)
    return mapping


def changed_setting(recorded: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """The first of :data:`COMPARED` in which two train configurations differ, or None."""
    for key in COMPARED:
        if recorded.get(key) != wanted.get(key):
            return key
    return None


# --- the manifest -----------------------------------------------------------------------------


class Selection(TypedDict):
    """The validation error a run had when its model's learning rate was chosen."""

    at: Count
    valid_error: Fraction | None


@dataclass
class RunRecord:
    """One run in the manifest."""

    dataset: str
    activation: str
    scheme: str
    lr: Real
    seed: Count
    status: str = "queued"
    updates: Count = 0
    target: Count = 0
    retries: Count = 0
    worker: str | None = None
    wall_seconds: Real = 0.0
    selection: Selection | None = None
    error: str | None = None
    result_sha256: str | None = None
    """SHA-256 of ``result.json`` as this sweep last read or wrote it..."""
    result_at: Count | None = None
    """...when it held this many updates (a result of other updates is a newer one)."""
    selection_sha256: str | None = None
    """SHA-256 of ``selection.json`` as this sweep wrote it."""


@dataclass
class Manifest:
    """``DIR/manifest.json``: every run the folder has seen, by id."""

    format: str
    version: int
    runs: dict[str, RunRecord] = field(default_factory=dict)


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path`` (empty when the file does not exist).

    Raises:
        XavinitError: unreadable, not JSON, not a sweep manifest, or a field that does not fit.
    """
    if not path.exists():
        return Manifest(MANIFEST_FORMAT, MANIFEST_VERSION)
    data = parse_json_text(read_text(str(path), "sweep manifest"), str(path))
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise XavinitError(f"{path}: not an xavinit sweep manifest")
    if data.get("version") != MANIFEST_VERSION:
        raise XavinitError(
            f"{path}: manifest version {quote(data.get('version'), 40)} is not supported "
            f"(this xavinit reads version {MANIFEST_VERSION})"
        )
    manifest: Manifest = validate(Manifest, data, str(path))
    for run_key, record in manifest.runs.items():
        if record.status not in STATUSES:
            raise XavinitError(
                f"{path}: runs.{run_key}.status: must be one of {', '.join(STATUSES)}, "
                f"got {quote(record.status, 40)}"
            )
    return manifest


def same_history(path: Path, trained: TrainRun, other: Path, record: Any) -> None:
    """Hold a run's result to another record of the same training (its checkpoint's state, or
    its result at another update): up to the update both reach, their curves and tracked
    statistics are the same rows.

    Raises:
        XavinitError: the first row where they differ, named by its path in ``path``.
    """
    reach = min(trained.updates, record.updates if hasattr(record, "updates") else record.update)
    for name in ("curve", "layer_stats"):
        mine = [plain(row) for row in getattr(trained, name) if row["update"] <= reach]
        theirs = [plain(row) for row in getattr(record, name) if row["update"] <= reach]
        for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            if a != b:
                key = next((k for k in a if a.get(k) != b.get(k)), "")
                raise XavinitError(
                    f"{path}: runs[0].{name}[{index}].{key} is {_shown(a.get(key))}, but "
                    f"{other.name} recorded {_shown(b.get(key))} for the same training; "
                    "refused (edited or damaged)"
                )
        if len(mine) != len(theirs):
            raise XavinitError(
                f"{path}: runs[0].{name} has {len(mine)} rows up to update {reach}, but "
                f"{other.name} recorded {len(theirs)} for the same training; refused (edited "
                "or damaged)"
            )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise XavinitError(f"cannot read {str(path)!r}: {error.strerror or error}") from None


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    with atomic_write(path) as stream:
        stream.write(to_json(asdict(manifest)))


# --- one run, on a worker ---------------------------------------------------------------------


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


# --- choosing the learning rate ---------------------------------------------------------------


def choose_rate(trials: list[tuple[float, float | None]]) -> tuple[float, float] | None:
    """The learning rate with the lowest mean validation error over its seeds, and that mean.

    ``trials``: ``(lr, validation error when the rate was chosen)`` of every run of one model,
    None for a run that did not get there (diverged or failed first). A rate qualifies when all
    its runs got there; ties go to the rate listed first. None when no rate qualifies.
    """
    by_rate: dict[float, list[float | None]] = {}
    for lr, error in trials:
        by_rate.setdefault(lr, []).append(error)
    means = {
        lr: statistics.fmean(e for e in errors if e is not None)
        for lr, errors in by_rate.items()
        if all(e is not None for e in errors)
    }
    if not means:
        return None
    best = min(means, key=lambda lr: means[lr])
    return best, means[best]


# --- the coordinator --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepStatus:
    """Where a sweep stands, for a progress display.

    ``active``: ``(run id, update, target)`` of each running run; ``updates_trained``: SGD
    updates this invocation performed so far; ``updates_left``: those still to do (an estimate
    while learning rates are still to be chosen).
    """

    total: int
    done: int
    queued: int
    active: list[tuple[str, int, int]]
    failed: int
    diverged: int
    updates_trained: int
    updates_left: int
    where: str
    stopping: bool = False


SweepProgress = Callable[[SweepStatus], None]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C: every active run was checkpointed; ``checkpoint`` is the sweep's folder."""

    def __init__(self, checkpoint: str, saved: int) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.saved = saved


@dataclass
class _Run:
    """The coordinator's view of one run."""

    id: str
    point: Point
    record: RunRecord
    result: TrainResult | None = None
    at_first: TrainRun | None = None
    """The run as it stood at the selection point (its validation error there chooses the
    rate), from ``selection.json`` or ``result.json``; None until it got there."""
    progress: int = 0
    pending: bool = False
    target: int = 0
    losses: int = 0
    started_at: float | None = None
    start_update: int = 0


class _Sweep:
    """One invocation: read the folder, check the grid against it, schedule, record."""

    def __init__(self, config: SweepConfig, progress: SweepProgress | None) -> None:
        self.config = config
        self.progress = progress
        self.folder = Path(config.dir).expanduser().resolve()
        self.token = secrets.token_hex(8)
        selecting = config.select_at is not None and config.select_at < config.updates
        self.first = (
            config.select_at if selecting and config.select_at is not None else config.updates
        )
        self.selecting = selecting
        self.trained = 0
        self.executor: Executor | None = None
        self.chosen: dict[tuple[str, str, str], float | None] = {}
        self._written = 0.0
        self._dirty = False
        self.stopping = False
        self.bad_input: str | None = None
        self.created: list[Path] = []
        """Run folders this invocation made."""

    # -- reading and checking the folder --

    def prepare(self) -> None:
        try:
            (self.folder / RUNS_FOLDER).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise XavinitError(f"--dir {str(self.folder)!r}: cannot create it ({error})") from None
        self.manifest = read_manifest(self.folder / MANIFEST_FILE)
        self.runs: list[_Run] = []
        seen: dict[str, Point] = {}
        for point in grid_points(self.config):
            key = run_id(point)
            if key in seen:  # pragma: no cover - the hash makes ids unique
                raise XavinitError(
                    f"two grid points share the folder {key}: {seen[key]} and {point}"
                )
            seen[key] = point
            record = self.manifest.runs.get(key) or RunRecord(
                point.dataset, point.activation, point.scheme, point.lr, point.seed
            )
            self.manifest.runs[key] = record
            self.runs.append(_Run(key, point, record))
        for run in self.runs:
            self._read_run(run)

    def run_folder(self, run: _Run) -> Path:
        return self.folder / RUNS_FOLDER / run.id

    def train_config(self, run: _Run, updates: int) -> dict[str, Any]:
        checkpoint = str(self.run_folder(run) / CHECKPOINT_FILE)
        return train_mapping(self.config, run.point, updates, checkpoint)

    def _read_run(self, run: _Run) -> None:
        """Load what the folder holds for a run and check the grid may continue it."""
        from xavinit.experiments.checkpoint import peek_checkpoint

        folder = self.run_folder(run)
        wanted = TrainConfig.from_mapping(self.train_config(run, self.config.updates)).to_dict()
        recorded: dict[str, Any] | None = None
        result_path, checkpoint = folder / RESULT_FILE, folder / CHECKPOINT_FILE
        if result_path.exists():
            result = self._load_own(run, result_path)
            digest = file_sha256(result_path)
            updates = result.runs[0].updates
            record = run.record
            if record.result_at == updates and record.result_sha256 not in (None, digest):
                raise XavinitError(
                    f"{result_path}: differs from the file this sweep wrote ({MANIFEST_FILE} "
                    f"runs.{run.id}.result_sha256); refused (edited or damaged)"
                )
            record.result_sha256, record.result_at = digest, updates
            run.result = result
            run.progress = updates
            recorded = result.config
        state = None
        if checkpoint.exists():
            saved_config, state = peek_checkpoint(str(checkpoint))
            run.progress = max(run.progress, state.update)
            recorded = recorded or saved_config.to_dict()
            if run.result is not None:
                same_history(result_path, run.result.runs[0], checkpoint, state)
        self._read_selection(run, state)
        if recorded is not None:
            setting = changed_setting(recorded, wanted)
            if setting is not None:
                option = OPTION_OF.get(setting, "--" + setting.replace("_", "-"))
                raise XavinitError(
                    f"{option}: run {run.id} was trained with {setting} "
                    f"{_shown(recorded.get(setting))}, the grid now says {_shown(wanted.get(setting))}; "
                    "only --updates may change for runs already trained (or use another --dir)"
                )
        if run.progress > self.config.updates:
            raise XavinitError(
                f"--updates: run {run.id} already has {run.progress} updates; give --updates "
                f"{run.progress} or more (runs are never shortened), or another --dir"
            )
        if (
            self.selecting
            and run.progress > self.first
            and self._selection_error(run) is None
            and not self._diverged(run)
        ):
            raise XavinitError(
                f"--select-at: run {run.id} has {run.progress} updates, and its validation "
                f"error at {self.first} was not recorded; give the --select-at it was "
                "chosen with, or another --dir"
            )
        run.record.updates = run.progress
        if run.result is not None and (
            self._diverged(run) or run.progress == run.result.runs[0].updates
        ):
            run.record.status = "diverged" if self._diverged(run) else "finished"
        elif run.progress:
            run.record.status = "interrupted"  # an extension stopped, or a coordinator killed
        elif run.record.status != "failed":
            run.record.status = "queued"
        self._note_selection(run)

    def _load_own(self, run: _Run, path: Path) -> TrainResult:
        """``path``, a train result of exactly this run's grid point (its own evidence checked
        by the loader)."""
        from xavinit.loading import load_result

        result = load_result(path)
        if not isinstance(result, TrainResult) or len(result.runs) != 1:
            raise XavinitError(f"{path}: not the train result of one run")
        trained, point = result.runs[0], run.point
        for field_name, value in (
            ("scheme", point.scheme),
            ("activation", point.activation),
            ("lr", point.lr),
        ):
            if getattr(trained, field_name) != value:
                raise XavinitError(
                    f"{path}: runs[0].{field_name} is {_shown(getattr(trained, field_name))}, "
                    f"but the run {run.id} is {field_name} {_shown(value)}; refused (edited "
                    "or damaged)"
                )
        return result

    def _read_selection(self, run: _Run, state: Any) -> None:
        """Find the run's state at the selection point, and hold the manifest's record of its
        validation error there to it (``state``: the run's checkpointed state, if any)."""
        path = self.run_folder(run) / SELECTION_FILE
        record = run.record
        candidates = []
        if path.exists():
            digest = file_sha256(path)
            if record.selection_sha256 not in (None, digest):
                raise XavinitError(
                    f"{path}: differs from the file this sweep wrote ({MANIFEST_FILE} "
                    f"runs.{run.id}.selection_sha256); refused (edited or damaged)"
                )
            record.selection_sha256 = digest
            kept = self._load_own(run, path).runs[0]
            if state is not None:
                same_history(path, kept, self.run_folder(run) / CHECKPOINT_FILE, state)
            if run.result is not None:
                same_history(path, kept, self.run_folder(run) / RESULT_FILE, run.result.runs[0])
            candidates.append(kept)
        if run.result is not None:
            candidates.append(run.result.runs[0])
        run.at_first = next((c for c in candidates if c.updates == self.first), None)
        stored = record.selection
        if stored is not None and stored["at"] == self.first and run.at_first is not None:
            found = run.at_first.final_valid_error
            if stored["valid_error"] != found:
                raise XavinitError(
                    f"{self.folder / MANIFEST_FILE}: runs.{run.id}.selection.valid_error is "
                    f"{_shown(stored['valid_error'])}, but the run's result at update "
                    f"{self.first} gives {_shown(found)}; refused (edited or damaged)"
                )

    @staticmethod
    def _diverged(run: _Run) -> bool:
        return run.result is not None and run.result.runs[0].diverged

    def _selection_error(self, run: _Run) -> float | None:
        """The run's validation error at the selection point: from its result there; from the
        manifest only for a folder written before results at that point were kept."""
        if run.at_first is not None:
            return run.at_first.final_valid_error
        selection = run.record.selection
        legacy = not (self.run_folder(run) / SELECTION_FILE).exists()
        if legacy and selection is not None and selection["at"] == self.first:
            return selection["valid_error"]
        return None

    def _note_selection(self, run: _Run) -> None:
        """A run got to the selection point: record its validation error there."""
        if run.at_first is not None and not run.at_first.diverged:
            error = run.at_first.final_valid_error
            run.record.selection = {"at": self.first, "valid_error": error}

    def _keep_selection(self, run: _Run) -> None:
        """Before a run trains on past the selection point, keep its result there."""
        source = self.run_folder(run) / RESULT_FILE
        target = self.run_folder(run) / SELECTION_FILE
        if target.exists() or run.result is None or run.result.runs[0].updates != self.first:
            return
        try:
            data = source.read_bytes()
        except OSError as error:
            raise XavinitError(f"cannot read {str(source)!r}: {error.strerror or error}") from None
        with atomic_write(target, "wb") as stream:
            stream.write(data)
        run.record.selection_sha256 = hashlib.sha256(data).hexdigest()

    # -- scheduling --

    def _settled_first(self, run: _Run) -> bool:
        """Whether the run is done with the first phase (at the selection point, or final)."""
        if run.pending:
            return False
        if run.record.status == "failed" or self._diverged(run):
            return True
        return run.result is not None and run.result.runs[0].updates >= self.first

    def _state(self, run: _Run) -> str:
        """finished or diverged once the run has a result (an extension may be under way),
        else its manifest status."""
        if run.result is None:
            return run.record.status
        return "diverged" if self._diverged(run) else "finished"

    def _select(self, model: tuple[str, str, str]) -> None:
        """Choose the model's learning rate once every run of it is settled."""
        mine = [r for r in self.runs if r.point.model == model]
        if model in self.chosen or not all(self._settled_first(r) for r in mine):
            return
        choice = choose_rate([(r.point.lr, self._selection_error(r)) for r in mine])
        self.chosen[model] = None if choice is None else choice[0]
        if choice is None:
            return
        for run in mine:
            if run.point.lr == choice[0] and self._state(run) == "finished":
                self._need(run, self.config.updates)

    def _need(self, run: _Run, target: int) -> None:
        """Schedule ``run`` to ``target`` unless it is already there."""
        if run.record.status == "diverged" or run.pending:
            return
        if run.result is not None and run.result.runs[0].updates >= target:
            return
        if target > self.first:
            self._keep_selection(run)
        run.target = target
        run.record.target = target
        run.record.status = "queued"
        run.record.error = None
        run.pending = True
        self._dirty = True
        self._submit(run)

    def _running(self) -> Executor:
        """The executor, started on first use (a sweep with nothing to run starts none)."""
        if self.executor is None:
            self.executor = self._make_executor()
        return self.executor

    def _submit(self, run: _Run) -> None:
        folder = self.run_folder(run)
        if not folder.exists():
            try:
                folder.mkdir(parents=True)
            except OSError as error:
                raise XavinitError(
                    f"cannot create {str(folder)!r}: {error.strerror or error}"
                ) from None
            self.created.append(folder)
        task = Task(
            run.id, str(folder), self.train_config(run, run.target), self.token, self.config.retries
        )
        self._running().submit(run.id, task)

    def _make_executor(self) -> Executor:
        from xavinit.executors import DaskExecutor, LocalPool

        if self.config.scheduler is not None:
            return DaskExecutor(run_task, self.config.scheduler, self.token)
        return LocalPool(run_task, self.config.workers or 1)

    # -- events --

    def handle(self, event: Any) -> None:
        run = self.by_id[event.run_id]
        if event.kind == "started":
            run.record.status = "active"
            run.record.worker = event.worker
            run.started_at = time.monotonic()
            run.start_update = run.progress
            self._dirty = True
        elif event.kind == "progress":
            run.progress = max(run.progress, event.update)
            run.record.updates = run.progress
            if event.worker:
                run.record.worker = event.worker
        elif event.kind == "done":
            self._done(run, event.outcome)
        elif event.kind == "lost":
            self._lost(run, event.reason)
        else:  # failed
            self._fail(run, event.reason)

    def _done(self, run: _Run, outcome: Outcome) -> None:
        run.pending = False
        run.record.worker = outcome.worker
        run.record.wall_seconds += outcome.wall_seconds
        run.record.retries += max(outcome.attempt - 1, run.losses)
        run.losses = 0
        self.trained += outcome.trained
        run.progress = outcome.updates
        run.record.updates = outcome.updates
        stopped_unstarted = outcome.status == "interrupted" and not outcome.updates
        run.record.status = "queued" if stopped_unstarted else outcome.status  # as _drop does
        run.record.error = outcome.error
        self._dirty = True
        if outcome.bad_input:
            self.bad_input = outcome.error or "bad input"
            return
        if outcome.status in ("finished", "diverged"):
            path = self.run_folder(run) / RESULT_FILE
            run.result = self._load_own(run, path)
            trained = run.result.runs[0]
            run.record.result_sha256, run.record.result_at = file_sha256(path), trained.updates
            if trained.updates == self.first:
                run.at_first = trained
            self._note_selection(run)
        self._select(run.point.model)

    def _lost(self, run: _Run, reason: str) -> None:
        run.losses += 1
        if run.started_at is not None:
            run.record.wall_seconds += time.monotonic() - run.started_at
        run.record.error = reason
        self._dirty = True
        if self.stopping or run.losses > self.config.retries:
            run.pending = False
            run.record.retries += run.losses
            run.losses = 0
            run.record.status = "interrupted" if self.stopping else "failed"
            if not self.stopping:
                run.record.error = f"{reason}; gave up after {self.config.retries} retries"
                self._select(run.point.model)
            return
        run.record.status = "queued"
        self._submit(run)

    def _fail(self, run: _Run, reason: str) -> None:
        run.pending = False
        run.record.status = "failed"
        run.record.error = reason
        run.record.retries += run.losses
        run.losses = 0
        self._dirty = True
        self._select(run.point.model)

    # -- the loop --

    def status(self) -> SweepStatus:
        active = [(r.id, r.progress, r.target) for r in self.runs if r.record.status == "active"]
        queued = sum(1 for r in self.runs if r.pending and r.record.status == "queued")
        done = sum(1 for r in self.runs if not r.pending)
        left = sum(max(0, r.target - r.progress) for r in self.runs if r.pending)
        if self.selecting:
            models = {r.point.model for r in self.runs} - set(self.chosen)
            left += len(models) * len(self.config.seeds) * (self.config.updates - self.first)
        live = sum(
            max(0, r.progress - r.start_update) for r in self.runs if r.record.status == "active"
        )
        return SweepStatus(
            total=len(self.runs),
            done=done,
            queued=queued,
            active=active,
            failed=sum(1 for r in self.runs if r.record.status == "failed"),
            diverged=sum(1 for r in self.runs if r.record.status == "diverged"),
            updates_trained=self.trained + live,
            updates_left=left,
            where=self.executor.description if self.executor is not None else "",
            stopping=self.stopping,
        )

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or self._dirty or now - self._written >= MANIFEST_SECONDS:
            write_manifest(self.folder / MANIFEST_FILE, self.manifest)
            self._written = now
            self._dirty = False

    def run(self) -> SweepResult:
        """Run the sweep; on bad input (a full disk among it) first remove what this
        invocation created that holds no training (see :meth:`_remove_untrained`)."""
        paths = (self.folder, self.folder / RUNS_FOLDER, self.folder / MANIFEST_FILE)
        existed = {path: path.exists() for path in (*paths, self.folder / GRID_FILE)}
        try:
            return self._run()
        except XavinitError:
            self._remove_untrained(existed)
            raise

    def _remove_untrained(self, existed: dict[Path, bool]) -> None:
        """Remove the run folders this invocation made that hold no checkpoint or result, then
        ``runs/``, the grid and the manifest if this invocation made them and no run remains,
        then the sweep's folder if it made it and it is empty. Nothing that was there before
        is touched; a run's training is never thrown away."""
        for folder in self.created:
            if not ((folder / CHECKPOINT_FILE).exists() or (folder / RESULT_FILE).exists()):
                with contextlib.suppress(OSError):
                    (folder / ATTEMPTS_FILE).unlink(missing_ok=True)
                    folder.rmdir()
        runs = self.folder / RUNS_FOLDER
        with contextlib.suppress(OSError):
            if not existed[runs]:
                runs.rmdir()  # only when empty
            if runs.exists() and any(runs.iterdir()):
                return
            for name in (MANIFEST_FILE, GRID_FILE):
                if not existed[self.folder / name]:
                    (self.folder / name).unlink(missing_ok=True)
            if not existed[self.folder]:
                self.folder.rmdir()

    def _run(self) -> SweepResult:
        from xavinit.experiments.train import deferred_interrupt

        self.prepare()
        self.by_id = {run.id: run for run in self.runs}
        with atomic_write(self.folder / GRID_FILE) as stream:
            stream.write(to_yaml(self.config.grid()))
        try:
            with deferred_interrupt(escalate=True) as interrupted:
                for run in sorted(self.runs, key=lambda r: (r.point.dataset, r.point.seed)):
                    if run.record.status == "diverged":
                        continue
                    if run.result is None or run.result.runs[0].updates < self.first:
                        self._need(run, self.first)
                for model in dict.fromkeys(r.point.model for r in self.runs):
                    self._select(model)
                self.save(force=True)
                while any(r.pending for r in self.runs):
                    if (interrupted() or self.bad_input) and not self.stopping:
                        self.stopping = True
                        for dropped in self._running().stop_runs():
                            self._drop(self.by_id[dropped])
                    for event in self._running().poll(POLL_SECONDS):
                        self.handle(event)
                    self.save()
                    if self.progress is not None:
                        self.progress(self.status())
        finally:
            if self.executor is not None:
                self.executor.close()
            self.save(force=True)
        if self.bad_input is not None:
            raise XavinitError(self.bad_input)
        if self.stopping:
            saved = sum(1 for r in self.runs if r.record.status == "interrupted")
            raise SweepInterrupted(str(self.folder), saved)
        if self.progress is not None:
            self.progress(self.status())
        return self.result()

    def _drop(self, run: _Run) -> None:
        """A queued run that will not start in this invocation."""
        run.pending = False
        run.record.status = "interrupted" if run.progress else "queued"

    # -- the result --

    def sweep_run(self, run: _Run) -> SweepRun:
        record = run.record
        extra: dict[str, Any] = {
            "id": run.id,
            "dataset": run.point.dataset,
            "seed": run.point.seed,
            "wall_seconds": record.wall_seconds,
            "worker": record.worker,
            "retries": record.retries,
            "selection_valid_error": self._selection_error(run),
        }
        if run.result is not None:
            trained = run.result.runs[0]
            status = "diverged" if trained.diverged else "finished"
            if record.status == "failed":  # an extension that could not finish
                status, extra["error"] = "failed", record.error
            fields: dict[str, Any] = {k: getattr(trained, k) for k in trained.__dataclass_fields__}
            return SweepRun(**{**fields, **extra, "lr": run.point.lr, "status": status})
        return SweepRun(
            scheme=run.point.scheme,
            activation=run.point.activation,
            updates=run.progress,
            final_test_error=None,
            curve=[],
            layer_stats=[],
            lr=run.point.lr,
            status="failed",
            error=record.error or "did not finish",
            **extra,
        )

    def result(self) -> SweepResult:
        runs = [self.sweep_run(run) for run in self.runs]
        table = sweep_table(runs, self.first)
        return SweepResult(
            seed=self.config.seeds[0],
            config=self.config.to_dict(),
            passed=all(run.status == "finished" for run in runs),
            runs=runs,
            table=table,
            trained_updates=self.trained,
        )


def sweep_table(runs: list[SweepRun], selected_at: int) -> list[SweepEntry]:
    """Table 1 of the runs: per model the chosen rate, and the test error over its seeds.

    The test error's ``std`` is the sample standard deviation over seeds (None for one seed).
    """
    models: dict[tuple[str, str, str], list[SweepRun]] = {}
    for run in runs:
        models.setdefault((run.dataset, run.activation, run.scheme), []).append(run)
    table: list[SweepEntry] = []
    for (dataset, activation, scheme), mine in models.items():
        choice = choose_rate([(r.lr or 0.0, r.selection_valid_error) for r in mine])
        entry: SweepEntry = {
            "dataset": dataset,
            "activation": activation,
            "scheme": scheme,
            "lr": None,
            "validation_error": None,
            "test_error_mean": None,
            "test_error_std": None,
            "seeds": 0,
            "updates": 0,
            "selected_at": selected_at,
        }
        if choice is not None:
            lr, valid = choice
            chosen = [r for r in mine if r.lr == lr and r.status == "finished"]
            errors = [r.final_test_error for r in chosen if r.final_test_error is not None]
            entry["lr"] = lr
            entry["validation_error"] = valid
            entry["test_error_mean"] = statistics.fmean(errors) if errors else None
            entry["test_error_std"] = statistics.stdev(errors) if len(errors) > 1 else None
            entry["seeds"] = len(errors)
            entry["updates"] = min((r.updates for r in chosen), default=0)
        table.append(entry)
    return table


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


def run_sweep(config: SweepConfig, progress: SweepProgress | None = None) -> SweepResult:
    """Run (or resume, or extend) the sweep in ``config.dir`` and gather its table.

    Raises:
        XavinitError: a folder that cannot be used, a grid that changes a trained run's
            settings, a run that found bad input (its message), no Dask for ``--scheduler``.
        SweepInterrupted: on Ctrl-C, once every active run has checkpointed.
    """
    return _Sweep(config, progress).run()
