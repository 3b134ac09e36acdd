"""``xavinit gain``: exact gains of every activation, PyTorch's beside them, checked at depth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DOC = """Exact gains of activations by Gauss-Hermite quadrature, beside PyTorch's calculate_gain.

    Per activation (default: all): the forward gain 1/sqrt(E[f(z)^2]) (keeps the second moment
    going up), the backward gain 1/sqrt(E[f'(z)^2]) (keeps gradients going down), the gain with
    the mean-field fixed point q* = 1 and that map's slope there, chi1, the phase and the depth
    scale of correlations, E[f(z)] and E[f(z)^2], and PyTorch's gain with its ratio to ours.
    With --check, one deep network per activation at its gain: the variance ratio of the last
    hidden layer over the first must fall in a Monte-Carlo interval of the finite-width theory
    (exit 1 when one does not).

    Examples:

      xavinit gain

      xavinit gain tanh gelu silu 'elu:alpha=0.5' -f json

      xavinit gain relu tanh --check

      xavinit gain relu --check --gain-scale 0.8      # a gain 20% too small: exit 1
    """


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.run import result_command
    from xavinit.config import GainConfig

    return result_command(GainConfig, "xavinit.experiments.gain:run_gain", DOC)
