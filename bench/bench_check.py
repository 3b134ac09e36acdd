"""``xavinit check`` on a 1 GB safetensors file against numpy only reading the same bytes.

Writes (once, into --folder) a safetensors file of sixteen 4096 x 4096 float32 matrices
(1.07 GB, PyTorch's default Linear) and its float16 twin, with the ``safetensors`` package.
Then measures whole processes, interleaved (numpy, check float32, check float16 in turn, so a
busy machine slows all three alike), with one BLAS thread (``OPENBLAS_NUM_THREADS=1``):

- numpy: a process that reads every tensor with ``numpy.fromfile`` at its offset (the bytes,
  nothing else);
- xavinit: ``xavinit check FILE -q -f json`` (every verdict: moments, KS, ranking, spectrum,
  spread and correlation tests), the command a CI job runs.

Prints the median wall time of each, the ratios (aims: check at most 3x numpy; the 16-bit
file no slower than its float32 twin), and each process's peak resident memory against the
largest tensor (aim: at most 2x the largest float32 tensor beyond a bare interpreter that has
imported what the process imports). The page cache is warm for all (a first read runs before
the timings), so the ratio compares work, not the disk, and xavinit's modules are compiled to
bytecode first, as ``pip install`` leaves them (a checkout run with PYTHONDONTWRITEBYTECODE
would otherwise compile every module in every process). Each ratio is the median of the
ratios of one round (the three processes run back to back), and the load average is printed
beside them: on a busy machine they are still like with like.

    python bench/bench_check.py [--folder /tmp/xavinit-bench] [--repeats 5]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from timing import load_average, median_ratio

SHAPES = [(4096, 4096)] * 16

NUMPY_READ = """
import json, struct, sys
import numpy as np
path = sys.argv[1]
with open(path, "rb") as stream:
    length = struct.unpack("<Q", stream.read(8))[0]
    header = json.loads(stream.read(length))
for name, entry in header.items():
    if name == "__metadata__":
        continue
    begin, end = entry["data_offsets"]
    array = np.fromfile(path, dtype="<f4", count=(end - begin) // 4, offset=8 + length + begin)
    del array
"""

BARE = "import numpy, xavinit.experiments.check"


def write_files(folder: Path) -> tuple[Path, Path]:
    """The float32 file and its float16 twin (PyTorch's default Linear, U(+-1/sqrt(fan_in)))."""
    from safetensors.numpy import save_file

    single, half = folder / "model.safetensors", folder / "model-f16.safetensors"
    if single.exists() and half.exists():
        return single, half
    rng = np.random.default_rng(0)
    tensors = {}
    for k, (rows, cols) in enumerate(SHAPES):
        bound = 1 / np.sqrt(cols)
        weight = np.empty((rows, cols), dtype=np.float32)
        rng.random(dtype=np.float32, out=weight)
        weight *= 2 * bound
        weight -= bound
        tensors[f"layers.{k}.weight"] = weight
    save_file(tensors, str(single))
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(half))
    return single, half


def run(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (bytes) of one whole process,
    one BLAS thread."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", *command],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-400:]}")
    peak_kib, user, system = done.stderr.strip().splitlines()[-1].split()
    return seconds, float(user) + float(system), int(peak_kib) * 1024


def mib(count: float) -> str:
    return f"{count / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/tmp/xavinit-bench")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    single, half = write_files(folder)
    import xavinit as package

    compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)
    xavinit = [sys.executable, "-m", "xavinit", "check"]
    commands = {
        "numpy reading the bytes": [sys.executable, "-c", NUMPY_READ, str(single)],
        "xavinit check, float32": [*xavinit, str(single), "-q", "-f", "json"],
        "xavinit check, float16": [*xavinit, str(half), "-q", "-f", "json"],
    }
    for command in commands.values():  # warm the page cache and the imports
        run(command)
    times: dict[str, list[float]] = {label: [] for label in commands}
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    peaks: dict[str, int] = dict.fromkeys(commands, 0)
    for _ in range(args.repeats):
        for label, command in commands.items():
            seconds, busy, peak = run(command)
            times[label].append(seconds)
            cpu[label].append(busy)
            peaks[label] = max(peaks[label], peak)
    bare = run([sys.executable, "-c", BARE])[2]
    largest = max(r * c for r, c in SHAPES) * 4
    medians = {label: statistics.median(values) for label, values in times.items()}
    print(
        f"files: {single} ({single.stat().st_size / 1e9:.2f} GB) and its float16 twin; "
        f"{len(SHAPES)} tensors of {SHAPES[0][0]} x {SHAPES[0][1]}; whole processes, one BLAS "
        f"thread, medians of {args.repeats} interleaved runs"
    )
    for label in commands:
        spread = f"{min(times[label]):.2f}-{max(times[label]):.2f}"
        print(
            f"{label:<26}: {medians[label]:6.2f} s ({spread}), CPU "
            f"{statistics.median(cpu[label]):6.2f} s   peak RSS {mib(peaks[label])}"
        )
    print(f"load average {load_average()}; ratios of wall time (and of CPU time, user + system)")
    for label, over, aim in (
        ("check float32 / numpy", ("xavinit check, float32", "numpy reading the bytes"), 3),
        ("check float16 / float32", ("xavinit check, float16", "xavinit check, float32"), 1),
    ):
        wall = median_ratio(times[over[0]], times[over[1]])
        busy = median_ratio(cpu[over[0]], cpu[over[1]])
        print(f"ratio {label}: {wall:5.2f}x (CPU {busy:5.2f}x)  (aim: <= {aim}x)")
    worst = max(peaks["xavinit check, float32"], peaks["xavinit check, float16"])
    print(
        f"peak RSS of check {mib(worst)} = interpreter with xavinit imported ({mib(bare)}) "
        f"+ {mib(worst - bare)}, against 2 x the largest tensor ({mib(2 * largest)})"
    )


if __name__ == "__main__":
    main()
