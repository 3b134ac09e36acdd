"""Throughput of ``xavinit sweep``: runs per hour with 1 worker and with 2, and their ratio.

The same grid (Shapeset, 1024-500-500-9, tanh and softsign, standard and normalized, two
learning rates, one seed: 8 runs) is swept from scratch into a fresh folder with ``--workers 1``
and then ``--workers 2``; each worker is a process with one BLAS thread. The wall time includes
everything a sweep does (starting the workers, generating the data once per worker, training,
evaluating, checkpointing), so the ratio is what a user gets. On an idle 2-core machine the
ideal is 2.0. On a shared machine other processes take cores too: the load average is printed,
and the share of the cores the workers got (their CPU seconds over wall seconds times workers)
tells a slow machine from a slow sweep.

    python bench/bench_sweep.py [--updates 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from timing import blas_info

GRID = {
    "layers": "1024,500,500,9",
    "activations": ["tanh", "softsign"],
    "schemes": ["standard", "normalized"],
    "lrs": [0.01, 0.03],
    "seeds": "0",
    "test_size": 1000,
    "eval_every": 500,
    "track_every": 500,
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep_seconds(workers: int, updates: int, folder: Path) -> tuple[float, float, int]:
    """Wall seconds of one sweep of the grid from scratch, its workers' CPU seconds, and its
    number of runs."""
    from xavinit.config import SweepConfig
    from xavinit.experiments.sweep import run_sweep

    config = SweepConfig.from_mapping(
        {**GRID, "updates": updates, "workers": workers, "dir": str(folder)}
    )
    cpu = _children_cpu()
    start = time.perf_counter()
    result = run_sweep(config)
    seconds = time.perf_counter() - start
    if not result.passed:
        raise SystemExit("a benchmark run diverged or failed")
    return seconds, _children_cpu() - cpu, len(result.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3000, help="updates per run")
    parser.add_argument("--workers", type=int, default=2, help="the parallel sweep's workers")
    args = parser.parse_args()
    np.ones((2, 2)) @ np.ones((2, 2))  # load BLAS, so that blas_info sees it
    print(
        f"grid: 8 runs of {GRID['layers']}, {args.updates} updates each; BLAS of this process: "
        f"{blas_info()} (every worker pins it to 1 thread)"
    )
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rates = {}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, args.workers):
            folder = Path(scratch) / f"w{workers}"
            seconds, cpu, runs = sweep_seconds(workers, args.updates, folder)
            rates[workers] = runs / seconds * 3600
            print(
                f"{workers} worker{'s' if workers > 1 else ''}: {runs} runs in {seconds:.1f} s "
                f"({rates[workers]:.0f} runs/hour); the workers got {cpu / (seconds * workers):.0%} "
                f"of {workers} core{'s' if workers > 1 else ''}"
            )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"throughput ratio {args.workers} workers / 1 worker: "
        f"{rates[args.workers] / rates[1]:.2f} (ideal {args.workers:.1f} on idle cores)"
    )


if __name__ == "__main__":
    main()
