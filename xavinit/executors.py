"""Where the runs of a sweep execute: a local pool of worker processes, or a Dask cluster.

Both executors run the same task function, ``function(task, stop, report, worker)``
(:func:`xavinit.experiments.sweep.worker.run_task`), which returns the run's outcome:
``stop()`` says when to checkpoint and return early, ``report(update)`` sends the run's
progress, ``worker`` names where it runs. A run's result depends on its task
only (the function pins BLAS to one thread), so both executors give the same results for the
same grid, whatever the number of workers.

The coordinator (:class:`xavinit.experiments.sweep.coordinator.SweepCoordinator`) submits
tasks and polls :class:`Event` s:

- ``started``: a worker took the run;
- ``progress``: the run reached ``update``;
- ``done``: the function returned ``outcome`` (finished, diverged, interrupted or failed);
- ``lost``: the worker died (killed, out of memory) before the function returned; the run may
  be submitted again and continues from its last checkpoint;
- ``failed``: the run cannot complete here (Dask gave up on it, or the task raised).

:class:`LocalPool`, the default, keeps one process per worker (``spawn``, so nothing is shared
with the parent), each connected by its own pipe; a worker that dies costs only its own run,
which ``concurrent.futures.ProcessPoolExecutor`` cannot offer (one dead worker breaks the whole
pool and every run in it). :class:`DaskExecutor` sends tasks to an existing
``dask.distributed`` scheduler (``pip install 'xavinit[cluster]'``); Dask's own scheduler
places them and reschedules the tasks of a worker that died.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import signal
import socket
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from xavinit.errors import XavinitError
from xavinit.extras import install

TaskFunction = Callable[[Any, Callable[[], bool], Callable[[int], None], str], Any]
"""``function(task, stop, report, worker) -> outcome``; importable by name (it is pickled by
reference to reach the workers)."""

PROGRESS_INTERVAL = 0.5
"""Seconds between two progress reports of one run."""
STOP_INTERVAL = 0.2
"""Seconds between two looks at the stop signal inside a run (local pool)."""


@dataclass(frozen=True)
class Event:
    """Something that happened to a run (see the module docstring for the kinds)."""

    kind: str
    run_id: str
    worker: str = ""
    update: int = 0
    outcome: Any = None
    reason: str = ""


class Executor(Protocol):
    """What the coordinator needs from an executor."""

    capacity: int
    """How many runs can be active at once."""
    description: str
    """Where the runs go, for messages: ``2 local worker processes``."""

    def submit(self, run_id: str, task: Any) -> None:
        """Queue a run."""

    def poll(self, timeout: float) -> list[Event]:
        """What happened since the last poll, waiting at most ``timeout`` seconds for it."""

    def stop_runs(self) -> list[str]:
        """Ask every active run to checkpoint and return; drop the queued ones (returned)."""

    def close(self) -> None:
        """Release the workers or the connection."""


def throttled(check: Callable[[], bool], interval: float) -> Callable[[], bool]:
    """``check`` called at most every ``interval`` seconds (the first call always); once it
    has said True it keeps saying so."""
    state = {"next": 0.0, "seen": False}

    def ask() -> bool:
        if state["seen"]:
            return True
        now = time.monotonic()
        if now >= state["next"]:
            state["next"] = now + interval
            state["seen"] = bool(check())
        return bool(state["seen"])

    return ask


def _reporter(send: Callable[[int], None]) -> Callable[[int], None]:
    """``send(update)`` at most every :data:`PROGRESS_INTERVAL` seconds."""
    last = {"at": 0.0}

    def report(update: int) -> None:
        now = time.monotonic()
        if now - last["at"] >= PROGRESS_INTERVAL:
            last["at"] = now
            send(update)

    return report


# --- the local pool ---------------------------------------------------------------------------


class _ParentGone(Exception):  # noqa: N818 (a condition, not an error of the run)
    """The pipe to the coordinator is broken: it has exited or was killed."""


def _worker_main(function: TaskFunction, conn: Connection, stop_event: Any) -> None:
    """A local worker: take a task from the pipe, run it, send its outcome; repeat.

    Ctrl-C is left to the parent, which asks every run to stop through ``stop_event``
    (a terminal's Ctrl-C reaches the whole process group, and a run in progress also stops on
    it by itself, after checkpointing). When the parent is gone (killed), the worker exits at
    its run's next progress report; the run continues from its last checkpoint next time.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name = f"{socket.gethostname()}:{os.getpid()}"

    def post(message: tuple[str, str, Any]) -> None:
        try:
            conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            raise _ParentGone from None

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        run_id, task = message

        def send(update: int, run_id: str = run_id) -> None:
            post(("progress", run_id, update))

        try:
            stop = throttled(stop_event.is_set, STOP_INTERVAL)
            post(("done", run_id, function(task, stop, _reporter(send), name)))
        except _ParentGone:
            return
        except Exception:
            try:
                post(("error", run_id, traceback.format_exc(limit=8)))
            except _ParentGone:
                return


@dataclass
class _Worker:
    process: Any
    conn: Connection
    name: str
    run_id: str | None = None


class LocalPool:
    """``workers`` processes on this machine, each running one run at a time.

    A worker that dies is replaced; its run comes back as a ``lost`` event.
    """

    def __init__(self, function: TaskFunction, workers: int) -> None:
        self._function = function
        self._context = multiprocessing.get_context("spawn")
        self._stop = self._context.Event()
        self.capacity = workers
        self.description = f"{workers} local worker process{'es' if workers != 1 else ''}"
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[str, Any]] = deque()

    def submit(self, run_id: str, task: Any) -> None:
        self._queue.append((run_id, task))

    def _start_worker(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(self._function, child, self._stop), daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent, f"{socket.gethostname()}:{process.pid}")
        self._workers.append(worker)
        return worker

    def _dispatch(self, events: list[Event]) -> None:
        while self._queue:
            idle = next((w for w in self._workers if w.run_id is None), None)
            if idle is None:
                if len(self._workers) >= self.capacity:
                    return
                idle = self._start_worker()
            run_id, task = self._queue.popleft()
            try:
                idle.conn.send((run_id, task))
            except (BrokenPipeError, OSError):
                self._queue.appendleft((run_id, task))
                self._bury(idle, events)
                continue
            idle.run_id = run_id
            events.append(Event("started", run_id, worker=idle.name))

    def _bury(self, worker: _Worker, events: list[Event]) -> None:
        """Forget a dead worker; its run, if any, is lost."""
        worker.process.join(timeout=1.0)
        code = worker.process.exitcode
        if worker.run_id is not None:
            how = (
                f"was killed by signal {-code}"
                if code is not None and code < 0
                else f"exited with code {code}"
            )
            events.append(
                Event(
                    "lost", worker.run_id, worker=worker.name, reason=f"worker {worker.name} {how}"
                )
            )
        worker.conn.close()
        self._workers.remove(worker)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        self._dispatch(events)
        if not self._workers:
            time.sleep(timeout)
            return events
        handles: list[Any] = [w.conn for w in self._workers]
        handles += [w.process.sentinel for w in self._workers]
        wait(handles, timeout)
        for worker in list(self._workers):
            dead = False
            try:
                while worker.conn.poll():
                    kind, run_id, value = worker.conn.recv()
                    if kind == "progress":
                        events.append(Event("progress", run_id, worker=worker.name, update=value))
                    elif kind == "done":
                        events.append(Event("done", run_id, worker=worker.name, outcome=value))
                        worker.run_id = None
                    else:
                        events.append(Event("failed", run_id, worker=worker.name, reason=value))
                        worker.run_id = None
            except (EOFError, OSError):
                dead = True
            if dead or not worker.process.is_alive():
                self._bury(worker, events)
        self._dispatch(events)
        return events

    def stop_runs(self) -> list[str]:
        self._stop.set()
        dropped = [run_id for run_id, _ in self._queue]
        self._queue.clear()
        return dropped

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(BrokenPipeError, OSError):
                worker.conn.send(None)
        deadline = time.monotonic() + 5.0
        for worker in self._workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=1.0)
            worker.conn.close()
        self._workers.clear()


# --- Dask -------------------------------------------------------------------------------------


def _dask_task(function: TaskFunction, task: Any, run_id: str, stop_name: str, topic: str) -> Any:
    """Run one task on a Dask worker: progress through the worker's event log, the stop signal
    through a named ``distributed.Event``."""
    from distributed import Event as DaskEvent
    from distributed import get_worker

    worker = get_worker()
    name = str(worker.address)
    worker.log_event(topic, {"kind": "started", "run": run_id, "worker": name})

    def send(update: int) -> None:
        worker.log_event(
            topic, {"kind": "progress", "run": run_id, "worker": name, "update": update}
        )

    stop = throttled(DaskEvent(stop_name).is_set, 1.0)
    return function(task, stop, _reporter(send), name)


class DaskExecutor:
    """Runs on an existing Dask cluster, reached through its scheduler's address.

    Every worker must import the same xavinit and see the sweep's folder at the same path (a
    shared file system), since runs write their checkpoints and results there.
    """

    def __init__(self, function: TaskFunction, address: str, name: str) -> None:
        try:
            import distributed
        except ImportError:
            raise XavinitError(
                f"--scheduler needs Dask's distributed scheduler: {install('cluster')}"
            ) from None
        try:
            self._client = distributed.Client(address, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise XavinitError(
                f"--scheduler {address}: cannot reach a Dask scheduler there ({error}); start one "
                "with 'dask scheduler' (see docs/sweep.md)"
            ) from None
        self._function = function
        self._topic = f"xavinit-sweep-{name}"
        self._stop_name = f"xavinit-sweep-stop-{name}"
        self._stop = distributed.Event(self._stop_name, client=self._client)
        self._received: deque[dict[str, Any]] = deque()
        self._client.subscribe_topic(self._topic, lambda event: self._received.append(event[1]))
        self._futures: dict[Any, str] = {}
        self._count = itertools.count()
        threads = sum(self._client.nthreads().values())
        self.capacity = max(1, threads)
        self.description = f"the Dask cluster at {address} ({threads} worker threads)"

    def submit(self, run_id: str, task: Any) -> None:
        key = f"{self._topic}-{run_id}-{next(self._count)}"
        future = self._client.submit(
            _dask_task, self._function, task, run_id, self._stop_name, self._topic,
            key=key, pure=False,
        )  # fmt: skip
        self._futures[future] = run_id

    def poll(self, timeout: float) -> list[Event]:
        deadline = time.monotonic() + timeout
        while not any(f.done() for f in self._futures) and not self._received:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        events: list[Event] = []
        while self._received:
            message = self._received.popleft()
            events.append(
                Event(
                    message["kind"],
                    message["run"],
                    worker=message.get("worker", ""),
                    update=message.get("update", 0),
                )
            )
        for future in [f for f in self._futures if f.done()]:
            run_id = self._futures.pop(future)
            if future.status == "finished":
                events.append(Event("done", run_id, outcome=future.result()))
                continue
            error = future.exception() if future.status == "error" else None
            if error is not None and type(error).__name__ == "KilledWorker":
                reason = f"its workers died {self._allowed_failures() + 1} times ({error})"
            else:
                reason = f"{type(error).__name__}: {error}" if error is not None else future.status
            events.append(Event("failed", run_id, reason=reason))
        return events

    def _allowed_failures(self) -> int:
        import dask

        return int(dask.config.get("distributed.scheduler.allowed-failures", 3))

    def stop_runs(self) -> list[str]:
        self._stop.set()
        return []

    def close(self) -> None:
        self._client.close()
