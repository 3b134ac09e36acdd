"""A propagate run against the bare matrix products of the same shapes, in one process.

Prints the median time of one ``run_one`` (forward, backward, every per-layer statistic,
histograms and both predictions; no Jacobian) on the paper's 1024-1000x5-10 tanh network at
batch 1000, beside the median time of the same forward products ``Z @ W``, backward products
``dS @ W^T`` and weight-gradient products ``Z^T @ dS`` on preallocated float32 arrays, and their
ratio (aim: at most 1.3). Then the default command's whole run with the Jacobian, and one line
per installed array backend (docs/backends.md): the same ``run_one`` with the passes on torch
(CPU, CUDA when visible) or cupy, in a process of its own, against numpy's.

    python bench/bench_propagate.py [--batch 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys

import numpy as np
from timing import blas_info, median_time

from xavinit.activations import get_activation
from xavinit.backends import usable_backends
from xavinit.config import PAPER_LAYERS, PropagateConfig
from xavinit.experiments.propagate import draw_weights, run_one, run_propagate
from xavinit.resources import blas_threads
from xavinit.schemes import get_scheme


def bare_products(batch: int, widths: tuple[int, ...]):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b), dtype=np.float32) for a, b in itertools.pairwise(widths)]
    zs = [rng.standard_normal((batch, n), dtype=np.float32) for n in widths]
    ds = [rng.standard_normal((batch, n), dtype=np.float32) for n in widths[1:]]

    def run() -> None:
        for k, w in enumerate(weights):
            zs[k] @ w
        for k in range(len(weights) - 1, -1, -1):
            zs[k].T @ ds[k]
            if k:
                ds[k] @ weights[k].T

    return run


BACKEND_SCRIPT = r"""
import json, statistics, sys, time
from xavinit.activations import get_activation
from xavinit.backends import get_backend
from xavinit.config import PropagateConfig
from xavinit.experiments.propagate import run_one
from xavinit.resources import blas_thread_count
from xavinit.schemes import get_scheme
name, device, batch, repeats = json.loads(sys.argv[1])
get_backend(name, device).activate(blas_thread_count())
config = PropagateConfig(batch=batch, jacobian_samples=0, backend=name, device=device)
scheme, activation = get_scheme("normalized"), get_activation("tanh")
times = []
for i in range(repeats + 1):
    start = time.perf_counter()
    run_one(config, scheme, activation)
    if i:
        times.append(time.perf_counter() - start)
print(json.dumps(statistics.median(times)))
"""


def backend_time(name: str, device: str, batch: int, repeats: int) -> float | None:
    """Median seconds of ``run_one`` on a backend, in a process of its own."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", BACKEND_SCRIPT, json.dumps([name, device, batch, repeats])],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return float(json.loads(proc.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = PropagateConfig(batch=args.batch, jacobian_samples=0)
    scheme, activation = get_scheme("normalized"), get_activation("tanh")
    t_bare = median_time(bare_products(args.batch, PAPER_LAYERS), args.repeats)
    t_run = median_time(lambda: run_one(config, scheme, activation), args.repeats)
    dtype = np.dtype(config.dtype)
    t_draw = median_time(lambda: draw_weights(scheme, PAPER_LAYERS, 0, 0, dtype), args.repeats)
    print(
        f"paper network 1024-1000x5-10 tanh, batch {args.batch}, float32, medians of "
        f"{args.repeats}; BLAS: {blas_info()}"
    )
    print(f"  bare products (forward, backward, weight gradients): {t_bare * 1e3:8.1f} ms")
    print(f"  xavinit run without the Jacobian:                    {t_run * 1e3:8.1f} ms")
    print(f"    of which drawing the six weight matrices:          {t_draw * 1e3:8.1f} ms")
    print(
        f"  ratio: {t_run / t_bare:.2f} ({(t_run - t_draw) / t_bare:.2f} without drawing the weights)"
    )
    with blas_threads(None) as threads:  # as the command runs it: the free cores
        t_default = median_time(lambda: run_propagate(PropagateConfig()), max(1, args.repeats // 2))
    print(
        f"  'xavinit propagate' defaults (2 networks, Jacobian on 4 examples, {threads} BLAS "
        f"threads): {t_default:.2f} s"
    )
    for name, device in usable_backends():
        seconds = backend_time(name, device, args.batch, args.repeats)
        if seconds is None:
            print(f"  backend {name} on {device}: failed to run")
            continue
        print(
            f"  backend {name:>5} on {device:>4}: run without the Jacobian {seconds * 1e3:8.1f} ms "
            f"(numpy/it {t_run / seconds:.2f}; the statistics stay on the host)"
        )


if __name__ == "__main__":
    main()
