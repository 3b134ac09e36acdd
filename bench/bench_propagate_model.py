"""``propagate --model``'s overhead: its probe (hooks and per-module statistics) against a bare
torch forward + backward of the same model and batch, interleaved, medians.

    python bench/bench_propagate_model.py [--repeats 5] [--batch 16] [--size 64] [--model resnet]

Models built in this file, no download: ``resnet``, a ResNet-50-shaped bottleneck stack
(3-4-6-3 blocks, widths 256-2048, batch norm) at ``--size`` pixels; ``mlp``, 20 x 1024 ReLU.
Both timings run the same model object on the same input in one process; the probe's time
includes its hooks, statistics and the parameter-gradient variances, not loading.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn

from xavinit.core.modelprobe import Loaded, measure


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.branch = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + self.skip(x))


def resnet50() -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for k in range(blocks):
            layers.append(Bottleneck(cin, width, 2 if k == 0 and stage > 0 else 1))
            cin = 4 * width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))


def mlp() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(20):
        layers += [nn.Linear(1024, 1024), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(1024, 10))


def bare(model: nn.Module, x: np.ndarray) -> None:
    """What the probe replaces: forward, the same unit Gaussian top gradient, backward."""
    model.zero_grad(set_to_none=True)
    out = model(torch.from_numpy(x))
    out.backward(torch.randn_like(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", choices=("resnet", "mlp"), default="resnet")
    parser.add_argument("--depth-of", choices=("block", "leaf"), default="block")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet50() if args.model == "resnet" else mlp()
    model.train()
    types = {
        name: f"{type(m).__module__}.{type(m).__qualname__}" for name, m in model.named_modules()
    }
    loaded = Loaded("factory", model, types)
    shape = (3, args.size, args.size) if args.model == "resnet" else (1024,)
    x = np.random.default_rng(0).standard_normal((args.batch, *shape), dtype=np.float32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.2f}; {args.model} batch {args.batch} x {shape}, {args.depth_of}")  # fmt: skip
    bare(model, x)  # warm up both paths
    measure(loaded, x, args.depth_of, 0)
    times: dict[str, list[float]] = {"bare": [], "probe": []}
    for _ in range(args.repeats):
        for name in ("bare", "probe"):
            start = time.perf_counter()
            if name == "bare":
                bare(model, x)
            else:
                measure(loaded, x, args.depth_of, 0)
            times[name].append(time.perf_counter() - start)
    b, p = statistics.median(times["bare"]), statistics.median(times["probe"])
    print(f"bare forward+backward {b * 1e3:.0f} ms, probe {p * 1e3:.0f} ms, ratio {p / b:.2f} "
          f"(medians of {args.repeats}); load average now {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
