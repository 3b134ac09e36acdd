"""``xavinit schemes``: every scheme with its aliases, distribution and variance formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DOC = """List every initialization scheme: name, aliases, distribution and Var formula.

    Every scheme takes gain=NAME for any activation: PyTorch's calculate_gain where PyTorch has
    one (linear, sigmoid, tanh, relu, leaky-relu, selu), else the exact forward gain
    1/sqrt(E[f(z)^2]) that 'xavinit gain' prints (elu, silu, mish, gelu, softplus, ...).

    Examples:

      xavinit schemes

      xavinit schemes --fan-in 1024 --fan-out 1000

      xavinit schemes 'normalized:gain=tanh' --fan-in 256 --fan-out 256 -f json
    """


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.run import result_command
    from xavinit.config import SchemesConfig

    return result_command(SchemesConfig, "xavinit.experiments.schemes:run_schemes", DOC)
