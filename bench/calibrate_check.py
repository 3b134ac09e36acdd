"""How often ``check`` calls a fresh tensor trained (false alarms), and how often it catches a
low-rank update, measured by simulation (the figures of docs/theory.md).

For each shape and scheme, ``--draws`` fresh tensors are each checked as a run of one tensor at
``alpha = 0.01`` (the per-tensor rate; a run of m tensors is family-wise <= alpha by Holm), and
the same tensors plus a rank-1 update whose singular value is 1.2x, 1.5x and 2x the Bai-Yin
edge. Prints the rate of ``trained`` in each cell with its binomial standard error.

    python bench/calibrate_check.py [--draws 200]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from xavinit.roles import Tensor
from xavinit.schemes import get_scheme
from xavinit.verdicts import decide, examine

SHAPES = {
    "dense 16x16": ((16, 16), (16, 16)),
    "dense 64x64": ((64, 64), (64, 64)),
    "dense 512x128": ((512, 128), (512, 128)),
    "conv 3x3x32x64": ((3, 3, 32, 64), (288, 576)),
}
SCHEMES = ("standard", "he-normal", "glorot-normal-truncated", "normal:std=0.02", "orthogonal")
SPIKES = (1.2, 1.5, 2.0)


def draw(
    spec: str, shape: tuple[int, ...], fans: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    scheme = get_scheme(spec)
    if not scheme.iid:
        return scheme.sample(shape, rng)  # type: ignore[arg-type]
    return scheme.sample(fans, rng).reshape(-1)[: math.prod(shape)].reshape(shape).copy()


def spiked(array: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    matrix = array.reshape(-1, array.shape[-1]).astype(np.float64)
    n, p = matrix.shape
    sigma = math.sqrt(np.mean(array.astype(np.float64) ** 2))
    u, v = rng.standard_normal(n), rng.standard_normal(p)
    update = (
        factor
        * sigma
        * (math.sqrt(n) + math.sqrt(p))
        * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    )
    return (matrix + update).astype(np.float32).reshape(array.shape)


def trained(tensor: Tensor, array: np.ndarray, seed: int) -> bool:
    found = examine(tensor, array, file="sim", alpha=0.01, rng=np.random.default_rng(seed))
    return decide([found], 0.01)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    n = args.draws
    header = f"{'shape':<16}{'scheme':<26}{'fresh':>14}" + "".join(
        f"{f'+{s}x edge':>14}" for s in SPIKES
    )
    print(f"rate of 'trained' over {n} tensors per cell (alpha 0.01, one tensor per run)")
    print(header)
    for label, (shape, fans) in SHAPES.items():
        role = "conv" if len(shape) > 2 else "dense"
        tensor = Tensor("w", shape, "float32", role, "in-out", fans[0], fans[1])
        for spec in SCHEMES:
            if spec == "orthogonal" and len(shape) != 2:
                continue
            rng = np.random.default_rng(hash((label, spec)) % 2**32)
            counts = [0] * (1 + len(SPIKES))
            for k in range(n):
                array = draw(spec, shape, fans, rng)
                counts[0] += trained(tensor, array, k)
                for j, factor in enumerate(SPIKES):
                    counts[1 + j] += trained(tensor, spiked(array, factor, rng), k)
            cells = "".join(
                f"{c / n:>8.3f}±{math.sqrt(max(c, 1) / n * (1 - c / n) / n):.3f}" for c in counts
            )
            print(f"{label:<16}{spec:<26}{cells}", flush=True)


if __name__ == "__main__":
    main()
