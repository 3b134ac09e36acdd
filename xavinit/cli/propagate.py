"""``xavinit propagate``: activations forward, gradients backward, theory beside measurement."""

from __future__ import annotations

from typing import Annotated

import typer

from xavinit.cli.common import (
    ActivationOption,
    ConfigOption,
    DepthOption,
    DtypeOption,
    FormatOption,
    InputsOption,
    LayersOption,
    OutputOption,
    OutputsOption,
    QuietOption,
    SchemeOption,
    SeedOption,
    TrialsOption,
    WidthOption,
    execute,
)
from xavinit.config import PropagateConfig
from xavinit.experiments.propagate import run_propagate


def propagate(
    layers: LayersOption = None,
    depth: DepthOption = None,
    width: WidthOption = None,
    inputs: InputsOption = None,
    outputs: OutputsOption = None,
    scheme: SchemeOption = None,
    activation: ActivationOption = None,
    batch: Annotated[
        int | None, typer.Option(help="Examples pushed through (default 1000).")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option("--input", help="Input distribution: uniform (U[-1,1], default) or normal."),
    ] = None,
    backward: Annotated[
        str | None,
        typer.Option(
            help="Top gradient: nll (softmax NLL with random labels, default) or unit "
            "(unit-variance noise at the logits)."
        ),
    ] = None,
    jacobian_samples: Annotated[
        int | None,
        typer.Option(help="Examples whose layer Jacobians are decomposed (default 4; 0 skips)."),
    ] = None,
    bins: Annotated[int | None, typer.Option(help="Histogram bins per layer (default 41).")] = None,
    histograms: Annotated[
        bool | None,
        typer.Option(
            "--histograms/--no-histograms",
            help="Draw per-layer histograms in the terminal (the paper's figures 6 and 7).",
        ),
    ] = None,
    trials: TrialsOption = None,
    dtype: DtypeOption = None,
    seed: SeedOption = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Push a batch forward and gradients backward through a network at initialization.

    Per layer: activation mean/variance/percentiles/saturation, back-propagated gradient
    variance Var[dC/ds], weight-gradient variance, the mean singular value of the layer
    Jacobian, histograms, and the mean-field and linear-regime predictions. Exit 1 when a
    network's values overflow (naming the first layer), 2 on bad input.

    Examples:

      xavinit propagate                             # paper: 1024-1000x5-10 tanh, standard vs normalized

      xavinit propagate --histograms                # figures 6 and 7 in the terminal

      xavinit propagate -a relu -s he-normal -s normalized --depth 10 --width 500

      xavinit propagate -a tanh -a softsign -a sigmoid --trials 3 -f json -o propagate.json
    """
    cli_values = {
        "layers": layers, "depth": depth, "width": width, "inputs": inputs, "outputs": outputs,
        "scheme": tuple(scheme) if scheme else None,
        "activation": tuple(activation) if activation else None, "batch": batch,
        "input": input, "backward": backward, "jacobian_samples": jacobian_samples,
        "bins": bins, "histograms": histograms, "trials": trials, "dtype": dtype, "seed": seed,
    }  # fmt: skip
    execute(
        cli_values=cli_values,
        config_file=config,
        build=PropagateConfig.from_mapping,
        run=run_propagate,
        fmt=fmt,
        output=output,
        quiet=quiet,
    )
