"""``xavinit check``: which initialisation made each tensor of a checkpoint, or was it trained?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xavinit.extras import install

DOC = f"""Read checkpoints and say, tensor by tensor, how each was initialised or that it was trained.

    Reads .npy/.npz, .safetensors, PyTorch .pt/.pth/.bin, TorchScript and legacy torch pickles
    (nothing in the file is run), Keras .keras/.h5 and ONNX .onnx with external data (the last
    two need {install("formats")}). Each tensor gets a role (dense, conv, embedding,
    attention, recurrent, bias, norm, other), its fans and a verdict: constant, init (the best
    scheme, its p-value and the runner-up), trained (its top singular value beyond the Bai-Yin
    edge, rows or columns unlike i.i.d. entries, or no candidate law fits) or unknown (with the
    reason). Without --expect it reports and exits 0; with --expect it exits 1 unless every
    selected tensor fits; 2 on bad input.

    Examples:

      xavinit check model.pt                                # every tensor of a state dict

      xavinit check model.safetensors --key '*.weight' --key '!*embed*'

      xavinit check loaded.safetensors --role '!norm' --role '!bias' --expect trained   # CI: did it load?

      xavinit check gpt2.safetensors --layout '*.c_fc.weight=in-out'   # a layout for some tensors

      xavinit check fresh.pt --key 'fc*.weight' --expect standard

      xavinit check model.npz --layout out-in -f json -o check.json
    """


def command() -> Callable[..., Any]:
    """The typer command (built when the command is used, so ``xavinit --help`` stays fast)."""
    from xavinit.cli.run import result_command
    from xavinit.config import CheckConfig

    return result_command(CheckConfig, "xavinit.experiments.check:run_check", DOC)
