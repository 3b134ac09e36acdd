"""Time per SGD step of the paper's network: xavinit against bare products and PyTorch.

For the 1024-1000x5-9 tanh network at batch 10 and 128 (float32, NLL, plain SGD) prints the
median time of one ``xavinit.sgd.SGD.step``, the median time of the step's bare matrix products
(forward ``Z @ W``, backward ``dS @ W^T``, weight gradients ``Z^T @ dS``) on preallocated
arrays, and, when PyTorch is installed, the median time of the same step in PyTorch, measured in
a separate process (two BLAS thread pools in one process interfere; PERF.md). Then one column
per installed array backend (docs/backends.md): xavinit's own step on torch (CPU, and CUDA when
a GPU is visible) and cupy, each in its own process, with the hours that 5 million updates (the
paper's budget per model) would take at that speed. Also the Shapeset-3x2 generator's images
per second.

    python bench/bench_train.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time

import numpy as np
from timing import blas_info, median_time

LAYERS = (1024, 1000, 1000, 1000, 1000, 1000, 9)

TORCH_SCRIPT = r"""
import json, statistics, sys, time
import torch
layers, batches, repeats = json.loads(sys.argv[1])
torch.manual_seed(0)
mods = []
for a, b in zip(layers, layers[1:]):
    mods += [torch.nn.Linear(a, b), torch.nn.Tanh()]
net = torch.nn.Sequential(*mods[:-1])
opt = torch.optim.SGD(net.parameters(), lr=0.01)
loss = torch.nn.CrossEntropyLoss()
out = {}
for batch in batches:
    x = torch.rand(batch, layers[0]) * 2 - 1
    y = torch.randint(0, layers[-1], (batch,))
    times = []
    for i in range(repeats + 5):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss(net(x), y).backward()
        opt.step()
        if i >= 5:
            times.append(time.perf_counter() - start)
    out[batch] = statistics.median(times)
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "times": out}))
"""


BACKEND_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np
from xavinit.activations import get_activation
from xavinit.backends import get_backend
from xavinit.resources import blas_thread_count
from xavinit.schemes import get_scheme
from xavinit.sgd import SGD
name, device, layers, batches, repeats = json.loads(sys.argv[1])
backend = get_backend(name, device)
threads = blas_thread_count()
backend.activate(threads)
rng = np.random.default_rng(0)
scheme = get_scheme("normalized")
out = {}
for batch in batches:
    weights = [backend.asarray(scheme.sample((a, b), rng)) for a, b in zip(layers, layers[1:])]
    biases = [backend.asarray(np.zeros(b, dtype=np.float32)) for b in layers[1:]]
    sgd = SGD(weights, biases, get_activation("tanh"))
    x = backend.asarray(rng.uniform(-1, 1, (batch, layers[0])).astype(np.float32))
    y = backend.asarray(rng.integers(0, layers[-1], batch))
    block = 100 if backend.on_gpu else 1  # a GPU is timed over blocks of queued updates
    times = []
    for i in range(repeats + 5):
        backend.synchronize()
        start = time.perf_counter()
        for _ in range(block):
            sgd.step(x, y, 1e-4)
        backend.synchronize()
        if i >= 5:
            times.append((time.perf_counter() - start) / block)
    out[batch] = statistics.median(times)
print(json.dumps({"threads": threads, "times": out}))
"""

PAPER_UPDATES = 5_000_000
"""The paper's budget per model (Glorot and Bengio 2010, section 2.3)."""


def bare_products(batch: int):
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((a, b), dtype=np.float32) for a, b in itertools.pairwise(LAYERS)]
    zs = [rng.standard_normal((batch, n), dtype=np.float32) for n in LAYERS[:-1]]
    ss = [np.empty((batch, n), dtype=np.float32) for n in LAYERS[1:]]
    dws = [np.empty_like(w) for w in weights]
    dzs = [np.empty((batch, n), dtype=np.float32) for n in LAYERS[:-1]]

    def run() -> None:
        for k, w in enumerate(weights):
            np.matmul(zs[k], w, out=ss[k])
        for k in range(len(weights) - 1, -1, -1):
            if k:
                np.matmul(ss[k], weights[k].T, out=dzs[k])
            np.matmul(zs[k].T, ss[k], out=dws[k])

    return run


def torch_times(batches: list[int], repeats: int) -> dict | None:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", TORCH_SCRIPT, json.dumps([LAYERS, batches, repeats])],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    return json.loads(proc.stdout)


def backend_times(name: str, device: str, batches: list[int], repeats: int) -> dict | None:
    """Median seconds per xavinit step on a backend, by batch, and its CPU threads (torch on
    the CPU follows the BLAS limit, e.g. OPENBLAS_NUM_THREADS), in a process of its own."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", BACKEND_SCRIPT,
             json.dumps([name, device, LAYERS, batches, repeats])],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        return None
    result = json.loads(proc.stdout)
    return {"threads": result["threads"], **{int(k): v for k, v in result["times"].items()}}


def main() -> None:
    from xavinit.activations import get_activation
    from xavinit.backends import usable_backends
    from xavinit.schemes import get_scheme
    from xavinit.sgd import SGD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    batches = [10, 128]
    rng = np.random.default_rng(0)
    scheme = get_scheme("normalized")
    print(
        f"network {'-'.join(map(str, LAYERS))} tanh, float32, medians of {args.repeats}; BLAS: {blas_info()}"
    )
    theirs = torch_times(batches, args.repeats)
    numpy_times: dict[int, float] = {}
    for batch in batches:
        weights = [scheme.sample((a, b), rng) for a, b in itertools.pairwise(LAYERS)]
        biases = [np.zeros(b, dtype=np.float32) for b in LAYERS[1:]]
        sgd = SGD(weights, biases, get_activation("tanh"))
        x = rng.uniform(-1, 1, (batch, LAYERS[0])).astype(np.float32)
        y = rng.integers(0, LAYERS[-1], batch)
        ours = median_time(lambda sgd=sgd, x=x, y=y: sgd.step(x, y, 1e-4), args.repeats, warmup=5)
        bare = median_time(bare_products(batch), args.repeats, warmup=5)
        line = (
            f"batch {batch:>4}: xavinit {ours * 1e3:6.2f} ms, bare products {bare * 1e3:6.2f} ms "
            f"(xavinit reaches {bare / ours:.0%} of the bare-product bound)"
        )
        if theirs is not None:
            torch_ms = theirs["times"][str(batch)] * 1e3
            line += f", PyTorch {theirs['torch']} x{theirs['threads']} {torch_ms:6.2f} ms (ratio {ours * 1e3 / torch_ms:.2f})"
        else:
            line += ", PyTorch not installed"
        print(line)
        numpy_times[batch] = ours
    for name, device in usable_backends():
        times = backend_times(name, device, batches, args.repeats)
        if times is None:
            print(f"backend {name} on {device}: failed to run")
            continue
        for batch in batches:
            hours = times[batch] * PAPER_UPDATES / 3600
            print(
                f"backend {name:>5} on {device:>4} x{times['threads']}, batch {batch:>4}: "
                f"{times[batch] * 1e3:7.3f} ms "
                f"per update (numpy/it {numpy_times[batch] / times[batch]:5.2f}); "
                f"5 million updates: {hours:6.1f} h"
            )
    try:
        from xavinit.datasets.shapeset import generate_shapeset
    except ImportError:
        return
    generator = np.random.default_rng(0)
    start = time.perf_counter()
    generate_shapeset(10_000, generator)
    print(f"Shapeset-3x2 generator: {10_000 / (time.perf_counter() - start):,.0f} images/s")


if __name__ == "__main__":
    main()
