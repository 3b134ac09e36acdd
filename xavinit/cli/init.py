"""``xavinit init``: sample weights under each scheme and verify them statistically."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xavinit.cli.common import (
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
from xavinit.config import InitConfig
from xavinit.experiments.init import run_init


def init(
    layers: LayersOption = None,
    depth: DepthOption = None,
    width: WidthOption = None,
    inputs: InputsOption = None,
    outputs: OutputsOption = None,
    scheme: SchemeOption = None,
    trials: TrialsOption = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            help="Family-wise false-alarm rate over all layers and schemes (default 0.01)."
        ),
    ] = None,
    correction: Annotated[
        str | None, typer.Option(help="Multiple-testing correction: holm (default) or bonferroni.")
    ] = None,
    dtype: DtypeOption = None,
    save: Annotated[
        Path | None,
        typer.Option(help="Write the sampled weights (first trial) to FILE.npz.", dir_okay=False),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(
            help="Verify the 2-D arrays of a .npy/.npz file instead of sampling; without "
            "--scheme, rank the known schemes for each.",
            dir_okay=False,
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(help="With --check: array names or patterns (fc*) to verify, repeatable."),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(help="With --check: in-out (fan_in, fan_out; default) or out-in (PyTorch)."),
    ] = None,
    ks_sample: Annotated[
        int | None,
        typer.Option(help="At most this many entries per matrix enter the KS test (default 10^6)."),
    ] = None,
    seed: SeedOption = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Sample W (fan_in x fan_out) for each layer and scheme and verify Var, CDF and support.

    Reports expected and observed variance, a confidence interval, p-values (variance z-test and
    Kolmogorov-Smirnov), and the paper's conditions fan_in·Var and fan_out·Var. Exit 1 when a
    check fails at the family-wise --alpha, 2 on bad input.

    Examples:

      xavinit init                                  # the paper's 1024-1000x5-10 net, standard vs normalized

      xavinit init --layers 784,256,10 -s he-normal -s 'normalized:gain=tanh' --trials 5

      xavinit init -s orthogonal --depth 3 --width 512 -f json -o init.json

      xavinit init --check model.npz --layout out-in          # which scheme made these weights?

      xavinit init --check model.npz --key 'fc*' -s standard  # exit 1 unless they follow it
    """
    cli_values = {
        "layers": layers, "depth": depth, "width": width, "inputs": inputs, "outputs": outputs,
        "scheme": tuple(scheme) if scheme else None, "trials": trials, "alpha": alpha,
        "correction": correction, "dtype": dtype, "save": str(save) if save else None,
        "check": str(check) if check else None, "key": tuple(key) if key else None,
        "layout": layout, "ks_sample": ks_sample, "seed": seed,
    }  # fmt: skip
    execute(
        cli_values=cli_values,
        config_file=config,
        build=InitConfig.from_mapping,
        run=run_init,
        fmt=fmt,
        output=output,
        quiet=quiet,
    )
