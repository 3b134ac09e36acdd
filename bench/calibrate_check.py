"""How often ``check`` calls a fresh tensor trained (false alarms), and how often it catches a
trained one, by simulation: the table of ``docs/check.md``.

For each shape, ``--draws`` fresh matrices (uniform, normal and truncated normal in turn) are
each checked as a run of one tensor at ``alpha = 0.01`` (the per-tensor rate; a run of m
tensors is family-wise <= alpha by Holm), and the same matrices with

- a rank-1 update whose singular value is 0.75x and 1.0x the Bai-Yin edge
  ``sigma (sqrt n + sqrt p)`` (a low-rank direction training added);
- every row scaled by ``exp(0.1 Z)`` (the units' norms grown apart by 10%, as training does to
  a small matrix without lifting any singular value out of the bulk).

Prints the rate of ``trained`` in each cell with its binomial standard error, the median
``sigma1/edge`` the test used on fresh matrices and the median Lanczos steps.

    python bench/calibrate_check.py [--draws 100] [--shapes small|large|all]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from xavinit.core.roles import Tensor
from xavinit.core.verdicts import decide, examine

SMALL = {
    "16 x 16": (16, 16),
    "16 x 88 (1x1 conv)": (16, 88),
    "64 x 64": (64, 64),
    "256 x 64 (1x1 conv)": (256, 64),
    "256 x 256": (256, 256),
}
LARGE = {
    "1000 x 1000": (1000, 1000),
    "4096 x 1024": (4096, 1024),
    "50257 x 768": (50257, 768),
}
LAWS = ("uniform", "normal", "truncated")
ALTERNATIVES = ("rank-1 0.75x", "rank-1 1.0x", "rows x e^0.1Z")


def fresh(shape: tuple[int, int], law: str, rng: np.random.Generator) -> np.ndarray:
    """A fresh matrix of unit-scale i.i.d. entries, float32."""
    out = np.empty(shape, dtype=np.float32)
    if law == "uniform":
        rng.random(dtype=np.float32, out=out)
        out *= 2.0
        out -= 1.0
        return out
    rng.standard_normal(dtype=np.float32, out=out)
    if law == "truncated":
        bad = np.flatnonzero(np.abs(out) > 2.0)
        while bad.size:
            out.flat[bad] = rng.standard_normal(bad.size, dtype=np.float32)
            bad = bad[np.abs(out.flat[bad]) > 2.0]
    return out


def altered(matrix: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The matrix with one of :data:`ALTERNATIVES` applied (a new array)."""
    n, p = matrix.shape
    sigma = math.sqrt(float(np.mean(matrix.astype(np.float64) ** 2)))
    if kind.startswith("rank-1"):
        factor = float(kind.split()[1].rstrip("x"))
        u = rng.standard_normal(n)
        v = rng.standard_normal(p)
        u *= factor * sigma * (math.sqrt(n) + math.sqrt(p)) / np.linalg.norm(u) / np.linalg.norm(v)
        return matrix + np.outer(u.astype(np.float32), v.astype(np.float32))
    scales = np.exp(0.1 * rng.standard_normal(n)).astype(np.float32)
    return matrix * scales[:, None]


def judge(matrix: np.ndarray, seed: int) -> tuple[bool, float | None, int | None]:
    n, p = matrix.shape
    tensor = Tensor("w", (n, p), "float32", "dense", "out-in", p, n)
    found = examine(tensor, matrix, file="sim", alpha=0.01, rng=np.random.default_rng(seed),
                    ks_sample=1 << 17)  # fmt: skip
    return decide([found], 0.01)[0], found.top_singular_ratio, found.spectral_steps


def cell(hits: int, draws: int) -> str:
    rate = hits / draws
    se = math.sqrt(max(rate * (1 - rate), 1.0 / draws) / draws)
    return f"{rate:.3f}±{se:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--shapes", choices=("small", "large", "all"), default="all")
    args = parser.parse_args()
    shapes = {"small": SMALL, "large": LARGE, "all": {**SMALL, **LARGE}}[args.shapes]
    print(
        f"rate of 'trained' over {args.draws} matrices per cell (laws uniform, normal, "
        "truncated in turn; alpha 0.01, one tensor per run; one BLAS thread)"
    )
    header = f"| shape | fresh | {' | '.join(ALTERNATIVES)} | σ1/edge fresh | steps |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    with threadpool_limits(1):
        for label, shape in shapes.items():
            rng = np.random.default_rng(sum(shape))
            counts = [0] * (1 + len(ALTERNATIVES))
            ratios: list[float] = []
            steps: list[int] = []
            start = time.perf_counter()
            for k in range(args.draws):
                matrix = fresh(shape, LAWS[k % len(LAWS)], rng)
                trained, ratio, used = judge(matrix, k)
                counts[0] += trained
                ratios.append(ratio or math.nan)
                steps.append(used or 0)
                for j, kind in enumerate(ALTERNATIVES):
                    counts[1 + j] += judge(altered(matrix, kind, rng), k)[0]
            cells = " | ".join(cell(c, args.draws) for c in counts)
            print(
                f"| {label} | {cells} | {statistics.median(ratios):.3f} | "
                f"{statistics.median(steps):.0f} |",
                flush=True,
            )
            print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
