"""``xavinit train``: the paper's training experiments, with per-layer tracking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from xavinit.cli.common import (
    ActivationOption,
    ConfigOption,
    DepthOption,
    DtypeOption,
    FormatOption,
    OutputOption,
    QuietOption,
    SchemeOption,
    SeedOption,
    WidthOption,
    execute,
    fail,
)
from xavinit.config import TrainConfig
from xavinit.errors import XavinitError
from xavinit.experiments.train import Interrupted, load_checkpoint, run_train


def train(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="shapeset (generated, default), mnist:PATH, cifar10:PATH, npz:PATH or digits.",
        ),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            "-l",
            help="Full widths input,hidden...,output; they must match the dataset "
            "(default: the dataset's inputs, 1000x5, its classes).",
        ),
    ] = None,
    depth: DepthOption = None,
    width: WidthOption = None,
    scheme: SchemeOption = None,
    activation: ActivationOption = None,
    cost: Annotated[str | None, typer.Option(help="nll (default) or quadratic.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default 0.03).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Minibatch size (default 10, the paper's).")
    ] = None,
    updates: Annotated[int | None, typer.Option(help="SGD updates per run (default 2000).")] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Updates between test-error evaluations (default 500).")
    ] = None,
    track_every: Annotated[
        int | None,
        typer.Option(
            help="Updates between per-layer statistics on 300 test examples (default 100)."
        ),
    ] = None,
    test_size: Annotated[
        int | None, typer.Option(help="Evaluate on the first N test examples (default all).")
    ] = None,
    preprocess: Annotated[
        str | None,
        typer.Option(help="File datasets: scale (to [-1,1], default) or standardize."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Save the whole state to FILE.npz every --checkpoint-every updates and on Ctrl-C.",
            dir_okay=False,
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(help="Updates between checkpoints (default --eval-every).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue from a checkpoint; the configuration comes from it, and the result "
            "is identical to an uninterrupted run.",
            dir_okay=False,
        ),
    ] = None,
    dtype: DtypeOption = None,
    seed: SeedOption = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train MLPs with plain SGD as in the paper and track every layer during training.

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
    cli_values: dict[str, Any] = {
        "dataset": dataset, "layers": layers, "depth": depth, "width": width,
        "scheme": tuple(scheme) if scheme else None,
        "activation": tuple(activation) if activation else None, "cost": cost, "lr": lr,
        "batch_size": batch_size, "updates": updates, "eval_every": eval_every,
        "track_every": track_every, "test_size": test_size, "preprocess": preprocess,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "checkpoint_every": checkpoint_every, "dtype": dtype, "seed": seed,
    }  # fmt: skip
    build: Callable[[dict[str, Any], Callable[[str], str]], TrainConfig] = TrainConfig.from_mapping
    run: Any = run_train
    if resume is not None:
        given = [k for k, v in cli_values.items() if v is not None]
        if given or config is not None:
            fail(
                f"--resume takes the configuration from the checkpoint; drop --"
                f"{(given or ['config'])[0].replace('_', '-')}"
            )
        try:
            saved = load_checkpoint(str(resume))
        except XavinitError as error:
            fail(str(error))

        def build_from_checkpoint(mapping: dict[str, Any], origin: Any) -> TrainConfig:
            return saved.config

        def run_from_checkpoint(config: TrainConfig, progress: Any) -> Any:
            return run_train(config, progress, resume=saved)

        build = build_from_checkpoint
        run = run_from_checkpoint

    try:
        execute(
            cli_values=cli_values,
            config_file=config,
            build=build,
            run=run,
            fmt=fmt,
            output=output,
            quiet=quiet,
        )
    except Interrupted as stop:
        where = (
            f"; resume with: xavinit train --resume {stop.checkpoint}" if stop.checkpoint else ""
        )
        fail(f"interrupted{where}", 130)
