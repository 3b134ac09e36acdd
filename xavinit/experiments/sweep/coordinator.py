"""The coordinator: one invocation of a sweep. It reads the folder and checks the grid against
what its runs were trained with, schedules the runs on an executor (first to the selection
point, then the chosen rates on to ``updates``), records every event in the manifest, and
gathers the result from the runs' own results.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xavinit.config import SweepConfig, TrainConfig
from xavinit.core.schemes import get_scheme
from xavinit.errors import XavinitError
from xavinit.experiments.sweep.grid import (
    GRID_FILE,
    Point,
    check_unchanged,
    grid_points,
    grid_settings,
    run_id,
    shown,
    train_mapping,
)
from xavinit.experiments.sweep.manifest import (
    ATTEMPTS_FILE,
    CHECKPOINT_FILE,
    MANIFEST_FILE,
    RESULT_FILE,
    RUNS_FOLDER,
    SELECTION_FILE,
    RunRecord,
    file_sha256,
    read_manifest,
    same_history,
    write_manifest,
)
from xavinit.experiments.sweep.selection import choose_rate, sweep_table
from xavinit.experiments.sweep.worker import Outcome, Task, run_task
from xavinit.fileio import atomic_write
from xavinit.results import SweepResult, SweepRun, TrainResult, TrainRun
from xavinit.serialize import to_yaml

if TYPE_CHECKING:
    from xavinit.executors import Executor

POLL_SECONDS = 0.2
MANIFEST_SECONDS = 1.0
"""While runs progress the manifest is rewritten at most this often (at once on a status)."""


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


class SweepCoordinator:
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
            check_unchanged(run.id, recorded, wanted)
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
                    f"{path}: runs[0].{field_name} is {shown(getattr(trained, field_name))}, "
                    f"but the run {run.id} is {field_name} {shown(value)}; refused (edited "
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
                    f"{shown(stored['valid_error'])}, but the run's result at update "
                    f"{self.first} gives {shown(found)}; refused (edited or damaged)"
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
            stream.write(to_yaml(grid_settings(self.config)))
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
            "scheme_name": get_scheme(run.point.scheme).name,  # the grid's, never the file's
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


def run_sweep(config: SweepConfig, progress: SweepProgress | None = None) -> SweepResult:
    """Run (or resume, or extend) the sweep in ``config.dir`` and gather its table.

    Raises:
        XavinitError: a folder that cannot be used, a grid that changes a trained run's
            settings, a run that found bad input (its message), no Dask for ``--scheduler``.
        SweepInterrupted: on Ctrl-C, once every active run has checkpointed.
    """
    return SweepCoordinator(config, progress).run()
