"""``xavinit sweep``: Table 1's protocol as one resumable command, locally or on a Dask cluster."""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xavinit.cli.consoles import EXIT_INTERRUPTED, fail, stderr_console

if TYPE_CHECKING:
    from xavinit.experiments.sweep import SweepStatus

DOC = """Run the paper's Table 1 protocol: one train run per grid point, in parallel, resumable.

    The grid is --dataset x --activation x --scheme x --lr x --seeds; each point is one
    'xavinit train' run (same code, same result fields). Each model (dataset, activation,
    scheme) gets the learning rate with the lowest validation error, mean over seeds (after
    --select-at updates, when given: then only that rate trains on to --updates), and the
    table gives the test error at that rate, mean and std over the seeds.

    DIR holds the grid, a checkpoint and a result per run, and a manifest of statuses: run the
    same command again to resume (bit-identical to an uninterrupted sweep), with a larger
    --updates to extend finished runs. Without GRID.yaml or --config, DIR's own grid.yaml (the
    grid it last ran) is the starting point and options change it.
    Runs go to --workers local processes (one BLAS thread each) or to the Dask cluster at
    --scheduler. Exit 0 when every run finished, 1 when a run diverged or failed, 2 on bad
    input (or a grid that changes a trained run's settings), 130 on Ctrl-C (every active run
    is checkpointed first).

    Examples:

      xavinit sweep --dir runs/ --depth 2 --width 50 --updates 2000 --seeds 0,1

      xavinit sweep grid.yaml --dir runs/ --workers 8 -o table.json

      xavinit sweep --dir paper/ --select-at 20000 --updates 200000 --eval-every 2500

      xavinit sweep --dir /shared/paper/ --scheduler tcp://head:8786
    """

GRID = inspect.Parameter(
    "grid",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None,
        typer.Argument(
            help="YAML file of the grid, the long option names as keys (as --config takes); "
            "options override it. Default: DIR/grid.yaml when DIR has one.",
            metavar="GRID.yaml",
            show_default=False,
            dir_okay=False,
        ),
    ],
)


def _clock(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@contextlib.contextmanager
def sweep_display(quiet: bool) -> Iterator[Callable[[SweepStatus], None] | None]:
    """Rich progress on stderr: runs done/active/queued, every active run's updates, an ETA
    from this invocation's update rate; None when quiet or stderr is not a terminal."""
    console = stderr_console()
    if quiet or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        overall = bar.add_task("starting", total=None, eta="")
        tasks: dict[str, Any] = {}
        start = time.monotonic()

        def update(status: SweepStatus) -> None:
            elapsed = time.monotonic() - start
            rate = status.updates_trained / elapsed if elapsed > 0 else 0.0
            eta = (
                f"ETA {_clock(status.updates_left / rate)}"
                if rate > 0 and status.updates_left
                else ""
            )
            words = f"runs: {status.done}/{status.total} done, {len(status.active)} active, {status.queued} queued"
            if status.diverged or status.failed:
                words += f", {status.diverged} diverged, {status.failed} failed"
            if status.stopping:
                words += " (stopping: checkpointing the active runs)"
            bar.update(
                overall,
                description=words,
                completed=status.updates_trained,
                total=status.updates_trained + status.updates_left,
                eta=eta,
            )
            active = {run_id: (done, target) for run_id, done, target in status.active}
            for run_id in list(tasks):
                if run_id not in active:
                    bar.remove_task(tasks.pop(run_id))
            for run_id, (done, target) in active.items():
                if run_id not in tasks:
                    tasks[run_id] = bar.add_task(f"  {run_id}", total=target, eta="")
                bar.update(tasks[run_id], completed=done, total=target)

        yield update


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast):
    GRID.yaml (or DIR's grid.yaml) is the config file; Ctrl-C says how to resume."""
    from xavinit.cli.run import result_command
    from xavinit.config import SweepConfig

    inner = result_command(
        SweepConfig, "xavinit.experiments.sweep:run_sweep", DOC, display=sweep_display
    )

    def sweep(**kwargs: Any) -> None:
        from xavinit.experiments.sweep import GRID_FILE, SweepInterrupted

        grid = kwargs.pop("grid")
        if grid is not None and kwargs.get("config") is not None:
            fail("give the grid as GRID.yaml or as --config, not both")
        if grid is None and kwargs.get("config") is None and kwargs.get("dir"):
            stored = Path(kwargs["dir"]).expanduser() / GRID_FILE
            if stored.is_file():
                grid = stored
        if grid is not None:
            kwargs["config"] = grid
        try:
            inner(**kwargs)
        except SweepInterrupted as stop:
            fail(
                f"interrupted; {stop.saved} active runs checkpointed in {stop.checkpoint}; run "
                "the same command again to resume",
                EXIT_INTERRUPTED,
            )

    sweep.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [GRID, *inspect.signature(inner).parameters.values()]
    )
    sweep.__annotations__ = {"grid": GRID.annotation, **inner.__annotations__}
    sweep.__doc__ = inner.__doc__
    return sweep
