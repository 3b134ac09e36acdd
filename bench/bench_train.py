"""Time per SGD step of the paper's network: xavinit against its bare products and PyTorch.

For the 1024-1000x5-9 tanh network at batch 10 and 128 (float32, NLL, plain SGD), every BLAS on
one thread, prints the median time of one ``xavinit.core.sgd.SGD.step``, of the same step's bare split
matrix products (forward ``Z @ W``, backward ``dS @ W^T``, weight gradients ``Z^T @ dS`` on
preallocated arrays, no update) and of PyTorch's own step, in rounds that take turns: xavinit and
the products step by step in this process, then a round of PyTorch in a process of its own (two
BLAS pools in one process interfere; PERF.md). Ratios are medians of per-round ratios, printed
with the load average. Then xavinit's own step on each installed array backend (docs/backends.md;
torch on one CPU thread, CUDA when a GPU is visible) with the hours that 5 million updates (the
paper's budget per model) would take. Also the Shapeset-3x2 generator's images per second.

    python bench/bench_train.py [--rounds 7] [--repeats 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from timing import blas_info, interleaved_times, load_average, median_ratio

LAYERS = (1024, 1000, 1000, 1000, 1000, 1000, 9)

TORCH_SCRIPT = r"""
import json, statistics, sys, time
import torch
torch.set_num_threads(1)
layers = json.loads(sys.argv[1])
torch.manual_seed(0)
mods = []
for a, b in zip(layers, layers[1:]):
    mods += [torch.nn.Linear(a, b), torch.nn.Tanh()]
net = torch.nn.Sequential(*mods[:-1])
opt = torch.optim.SGD(net.parameters(), lr=0.01)
loss = torch.nn.CrossEntropyLoss()
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:  # one round: "[batch, repeats]" -> the seconds of each step
    batch, repeats = json.loads(line)
    x = torch.rand(batch, layers[0]) * 2 - 1
    y = torch.randint(0, layers[-1], (batch,))
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss(net(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    print(json.dumps(times), flush=True)
"""
"""PyTorch's own step, one BLAS thread, in a process of its own that times a round on request,
so its rounds interleave with xavinit's."""


BACKEND_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np
from xavinit.core.activations import get_activation
from xavinit.core.backends import get_backend
from xavinit.core.schemes import get_scheme
from xavinit.core.sgd import SGD
name, device, layers, batches, repeats = json.loads(sys.argv[1])
backend = get_backend(name, device)
threads = 1
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


class TorchWorker:
    """PyTorch's step in a process of its own (two BLAS pools in one process interfere)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TORCH_SCRIPT, json.dumps(LAYERS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())

    def round(self, batch: int, repeats: int) -> list[float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([batch, repeats]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def torch_worker() -> TorchWorker | None:
    try:
        return TorchWorker()
    except (OSError, ValueError):  # no PyTorch: the process exits before its first line
        return None


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
    from threadpoolctl import threadpool_limits

    from xavinit.core.activations import get_activation
    from xavinit.core.backends import usable_backends
    from xavinit.core.schemes import get_scheme
    from xavinit.core.sgd import SGD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="steps per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    batches = [10, 128]
    rng = np.random.default_rng(0)
    scheme = get_scheme("normalized")
    theirs = torch_worker()
    numpy_times: dict[int, float] = {}
    steps = {}
    for batch in batches:
        weights = [scheme.sample((a, b), rng) for a, b in itertools.pairwise(LAYERS)]
        biases = [np.zeros(b, dtype=np.float32) for b in LAYERS[1:]]
        sgd = SGD(weights, biases, get_activation("tanh"))  # loads scipy's BLAS when installed
        x = rng.uniform(-1, 1, (batch, LAYERS[0])).astype(np.float32)
        y = rng.integers(0, LAYERS[-1], batch)
        steps[batch] = (sgd, x, y)
    threadpool_limits(limits=1)  # every BLAS in this process, scipy's included: one thread
    torch_note = (
        f"PyTorch {theirs.info['torch']} x{theirs.info['threads']}" if theirs else "no PyTorch"
    )
    print(
        f"network {'-'.join(map(str, LAYERS))} tanh, float32; {args.rounds} interleaved rounds "
        f"of {args.repeats} steps; BLAS: {blas_info()}; {torch_note}"
    )
    for batch in batches:
        sgd, x, y = steps[batch]
        bare = bare_products(batch)
        fns = {
            "xavinit": lambda sgd=sgd, x=x, y=y: sgd.step(x, y, 1e-4),
            "bare": bare,
        }
        rounds: dict[str, list[float]] = {"xavinit": [], "bare": [], "torch": []}
        for i in range(args.rounds + 1):  # the first round warms up
            times = interleaved_times(fns, args.repeats, warmup=1)
            torch_round = theirs.round(batch, args.repeats) if theirs else []
            if i == 0:
                continue
            rounds["xavinit"].append(statistics.median(times["xavinit"]))
            rounds["bare"].append(statistics.median(times["bare"]))
            if torch_round:
                rounds["torch"].append(statistics.median(torch_round))
        ours = statistics.median(rounds["xavinit"])
        line = (
            f"batch {batch:>4}: xavinit {ours * 1e3:6.2f} ms, its bare split products "
            f"{statistics.median(rounds['bare']) * 1e3:6.2f} ms (step / products "
            f"{median_ratio(rounds['xavinit'], rounds['bare']):.2f}x)"
        )
        if rounds["torch"]:
            line += (
                f", PyTorch {statistics.median(rounds['torch']) * 1e3:6.2f} ms (PyTorch / xavinit "
                f"{median_ratio(rounds['torch'], rounds['xavinit']):.2f}x)"
            )
        print(line + f"; load average {load_average()}", flush=True)
        numpy_times[batch] = ours
    if theirs:
        theirs.close()
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
