"""A propagate run against the bare matrix products of the same shapes, in one process.

Times one ``run_one`` (forward, backward, every per-layer statistic, histograms and both
predictions; no Jacobian) on the paper's 1024-1000x5-10 tanh network at batch 1000, and the same
forward products ``Z @ W``, backward products ``dS @ W^T`` and weight-gradient products
``Z^T @ dS`` on preallocated float32 arrays (``out=``: nothing but the products), and drawing
the six weight matrices into reused arrays (as the run draws them), interleaved (each in turn,
every round), on one BLAS thread. Prints the medians, the median of the rounds' ratios (with
and without the weights' draw) and the load average (aim: at most 1.2). Then the default command's whole run with the Jacobian, and one line
per installed array backend (docs/backends.md): the same ``run_one`` with the passes on torch
(CPU, CUDA when visible) or cupy, in a process of its own, against numpy's.

    python bench/bench_propagate.py [--batch 1000] [--repeats 7] [--ratio-only]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys

import numpy as np
from timing import blas_info, interleaved_times, load_average, median_ratio, median_time

from xavinit.config import PAPER_LAYERS, PropagateConfig
from xavinit.core.activations import get_activation
from xavinit.core.backends import usable_backends
from xavinit.core.network import Buffers
from xavinit.core.sampling import draw_weights
from xavinit.core.schemes import get_scheme
from xavinit.experiments.propagate import run_one, run_propagate
from xavinit.resources import blas_threads


def bare_products(batch: int, widths: tuple[int, ...]):
    """The products of one forward and backward pass, into preallocated outputs."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b), dtype=np.float32) for a, b in itertools.pairwise(widths)]
    zs = [rng.standard_normal((batch, n), dtype=np.float32) for n in widths]
    ds = [rng.standard_normal((batch, n), dtype=np.float32) for n in widths[1:]]
    outs = [np.empty_like(z) for z in zs[1:]]
    dws = [np.empty_like(w) for w in weights]
    dzs = [np.empty_like(z) for z in zs]

    def run() -> None:
        for k, w in enumerate(weights):
            np.matmul(zs[k], w, out=outs[k])
        for k in range(len(weights) - 1, -1, -1):
            np.matmul(zs[k].T, ds[k], out=dws[k])
            if k:
                np.matmul(ds[k], weights[k].T, out=dzs[k])

    return run


BACKEND_SCRIPT = r"""
import json, statistics, sys, time
from xavinit.core.activations import get_activation
from xavinit.core.backends import get_backend
from xavinit.config import PropagateConfig
from xavinit.experiments.propagate import run_one
from xavinit.resources import blas_thread_count
from xavinit.core.schemes import get_scheme
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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--ratio-only", action="store_true", help="skip the default command and the backends"
    )
    args = parser.parse_args()
    config = PropagateConfig(batch=args.batch, jacobian_samples=0)
    scheme, activation = get_scheme("normalized"), get_activation("tanh")
    dtype = np.dtype(config.dtype)
    buffers = Buffers()  # as run_propagate hands them from one network to the next
    drawn = [  # the draw as the run makes it: into the same arrays every time
        np.empty((a, b), dtype=dtype) for a, b in itertools.pairwise(PAPER_LAYERS)
    ]
    with blas_threads(1):
        times = interleaved_times(
            {
                "bare": bare_products(args.batch, PAPER_LAYERS),
                "run": lambda: run_one(config, scheme, activation, buffers),
                "draw": lambda: draw_weights(scheme, PAPER_LAYERS, 0, 0, dtype, drawn),
            },
            args.repeats,
        )
        info = blas_info()
    bare, run, draw = times["bare"], times["run"], times["draw"]
    undrawn = [r - d for r, d in zip(run, draw, strict=True)]
    print(
        f"paper network 1024-1000x5-10 tanh, batch {args.batch}, float32, interleaved, medians "
        f"of {args.repeats}; BLAS: {info}; load average {load_average()}"
    )
    for label, seconds in [
        ("bare products (forward, backward, weight gradients)", bare),
        ("xavinit run without the Jacobian", run),
        ("  of which drawing the six weight matrices", draw),
    ]:
        print(f"  {label:<52} {statistics.median(seconds) * 1e3:8.1f} ms")
    print(
        f"  ratio (median of the rounds'): {median_ratio(run, bare):.2f} "
        f"({median_ratio(undrawn, bare):.2f} without drawing the weights)"
    )
    if args.ratio_only:
        return
    with blas_threads(None) as threads:  # as the command runs it: the free cores
        t_default = median_time(lambda: run_propagate(PropagateConfig()), max(1, args.repeats // 3))
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
            f"(numpy/it {statistics.median(run) / seconds:.2f}; the statistics stay on the host)"
        )


if __name__ == "__main__":
    main()
