"""``xavinit propagate``: activations forward, gradients backward, theory beside measurement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DOC = """Push a batch forward and gradients backward through a network at initialization.

    Per layer: activation mean/variance/percentiles/saturation, back-propagated gradient
    variance Var[dC/ds], weight-gradient variance, the mean singular value of the layer
    Jacobian, histograms, and the mean-field and linear-regime predictions. Exit 1 when a
    network's values overflow (naming the first layer), 2 on bad input.

    Examples:

      xavinit propagate                             # paper: 1024-1000x5-10 tanh, standard vs normalized

      xavinit propagate --histograms                # figures 6 and 7 in the terminal

      xavinit propagate -a relu -s he-normal -s normalized --depth 10 --width 500

      xavinit propagate -a tanh -a softsign -a sigmoid --trials 3 -f json -o propagate.json

      xavinit propagate --weights model.pt -a relu       # through a checkpoint's own dense layers

      xavinit propagate --model mypkg.nets:resnet --input-shape 3,32,32   # your own model

      xavinit propagate --model model.onnx --max-drift 4   # forward only, shape from the graph
    """


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.propagate_model import model_options, prepare
    from xavinit.cli.run import result_command
    from xavinit.config import PropagateConfig

    return result_command(
        PropagateConfig,
        "xavinit.experiments.propagate:run_propagate",
        DOC,
        extra=model_options(),
        prepare=prepare,
    )
