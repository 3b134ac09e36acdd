"""``xavinit init``: sample weights under each scheme and verify them statistically."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DOC = """Sample W (fan_in x fan_out) for each layer and scheme and verify Var, CDF and support.

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


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.run import result_command
    from xavinit.config import InitConfig

    return result_command(InitConfig, "xavinit.experiments.init:run_init", DOC)
