"""``xavinit train``: the paper's training experiments, with per-layer tracking."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from xavinit.cli.consoles import EXIT_INTERRUPTED, fail
from xavinit.errors import XavinitError

DOC = """Train MLPs with plain SGD as in the paper and track every layer during training.

    One run per (scheme, activation). Reports learning curves (test error), per-layer
    activation mean/std/98th percentile/saturation and weight-gradient std on 300 fixed test
    examples, and final histograms. Exit 1 when a run diverges (cost NaN or inf), 2 on bad
    input, 130 when interrupted (resume with --resume).

    Examples:

      xavinit train --updates 3000                     # Shapeset, tanh, standard vs normalized

      xavinit train -a sigmoid -s standard --depth 4 --track-every 50 -o sigmoid.json

      xavinit train -d mnist:~/data/mnist -a softsign -a tanh -s normalized --updates 20000

      xavinit train --checkpoint run.npz ...; xavinit train --resume run.npz
    """

RESUME = inspect.Parameter(
    "resume",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None,
        typer.Option(
            help="Continue from a checkpoint; the configuration comes from it, and the result "
            "is identical to an uninterrupted run.",
            dir_okay=False,
        ),
    ],
)


def _prepare(
    values: dict[str, Any], extras: dict[str, Any]
) -> tuple[Callable[..., Any], Any] | None:
    """With ``--resume``: the config comes from the checkpoint, and no option may change it."""
    resume = extras["resume"]
    if resume is None:
        return None
    given = [k for k, v in values.items() if v is not None]
    if given:
        fail(
            f"--resume takes the configuration from the checkpoint; drop --{given[0].replace('_', '-')}"
        )
    from xavinit.experiments.checkpoint import load_checkpoint
    from xavinit.experiments.train import run_train

    try:
        saved = load_checkpoint(str(resume))
    except XavinitError as error:
        fail(str(error))

    def run(config: Any, progress: Any) -> Any:
        return run_train(config, progress, resume=saved)

    # Further checkpoints go to the file named here, never to a path stored in the checkpoint
    # (it may be relative to another folder, or someone else's file).
    config = saved.config.model_copy(update={"checkpoint": str(resume)})
    return (lambda mapping, origin: config), lambda: run


def interrupted_message(stop: Any) -> str:
    """Where an interrupted run stood and what its checkpoint holds: the whole state at that
    update, so that ``--resume`` ends exactly as an uninterrupted run would."""
    import shlex

    which = f"in run {stop.run} of {stop.runs} ({stop.label}) " if stop.runs > 1 else ""
    where = f"interrupted {which}at update {stop.update} of {stop.updates}"
    if not stop.checkpoint:
        return f"{where}; nothing was saved (give --checkpoint FILE to keep a run's state)"
    done = f" and the {stop.run - 1} finished before it" if stop.run > 1 else ""
    return (
        f"{where}; {stop.checkpoint} holds this run at update {stop.update}{done}; resume "
        f"with: xavinit train --resume {shlex.quote(stop.checkpoint)}"
    )


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast).

    Ctrl-C saves a checkpoint first and says how to resume.
    """
    from xavinit.cli.run import result_command
    from xavinit.config import TrainConfig

    inner = result_command(
        TrainConfig, "xavinit.experiments.train:run_train", DOC, extra=[RESUME], prepare=_prepare
    )

    def train(**kwargs: Any) -> None:
        from xavinit.experiments.train import Interrupted

        if kwargs.get("resume") is not None and kwargs.get("config") is not None:
            fail("--resume takes the configuration from the checkpoint; drop --config")
        try:
            inner(**kwargs)
        except Interrupted as stop:
            fail(interrupted_message(stop), EXIT_INTERRUPTED)

    train.__signature__ = inner.__signature__  # type: ignore[attr-defined]
    train.__annotations__ = inner.__annotations__
    train.__doc__ = inner.__doc__
    return train
