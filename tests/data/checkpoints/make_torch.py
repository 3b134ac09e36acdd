"""Make the small PyTorch checkpoints under tests/data/checkpoints/ (CI does not install torch).

Run from the repository root with torch installed:

    python tests/data/checkpoints/make_torch.py

Each file is what a user's ``torch.save`` writes; the seed fixes the weights.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

HERE = Path(__file__).parent


def fresh_model() -> torch.nn.Module:
    """Every layer kind the checks know, at PyTorch's default initialisation."""
    torch.manual_seed(0)
    return torch.nn.ModuleDict(
        OrderedDict(
            fc=torch.nn.Linear(96, 64),
            conv=torch.nn.Conv2d(8, 16, 3),
            depthwise=torch.nn.Conv2d(16, 16, 3, groups=16),
            embed=torch.nn.Embedding(200, 32),
            attn=torch.nn.MultiheadAttention(32, 4),
            norm=torch.nn.LayerNorm(64),
        )
    )


def main() -> None:
    model = fresh_model()
    torch.save(model.state_dict(), HERE / "fresh.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, HERE / "nested.pt")
    halves = {
        k: v.to(torch.bfloat16) for k, v in model.state_dict().items() if v.is_floating_point()
    }
    torch.save(halves, HERE / "bfloat16.pt")
    # A transposed view keeps its storage and strides: the reader must honour them.
    torch.save({"fc.weight": model.state_dict()["fc.weight"].t()}, HERE / "strided.pt")
    torch.save(torch.nn.Linear(4, 3), HERE / "module.pt")  # a whole pickled nn.Module
    legacy = torch.nn.Linear(4, 3).state_dict()
    torch.save(legacy, HERE / "legacy.pt", _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()
