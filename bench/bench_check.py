"""``xavinit check`` on a 1 GB safetensors file against numpy only reading the same bytes.

Writes (once, into --folder) a safetensors file of about 1 GB of float32 tensors: twelve
4096 x 4096 and twelve 1024 x 4096 matrices, drawn as PyTorch's default Linear, with the
``safetensors`` package. Then, in fresh processes (so each peak RSS is its own), measures:

- numpy: every tensor read with ``numpy.fromfile`` at its offset (the bytes, nothing else);
- xavinit: ``run_check`` on the file (every verdict: moments, KS, ranking, spectrum);

and prints the median wall time of each, their ratio (aim: at most 3x), the peak resident
memory of each process against the largest tensor (aim: below 2x the largest tensor plus the
interpreter) and of a bare interpreter that imports xavinit. The page cache is warm for both
(the numpy read runs first), so the ratio compares work, not the disk.

    python bench/bench_check.py [--folder /tmp/xavinit-bench] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

SHAPES = [(4096, 4096)] * 12 + [(1024, 4096)] * 12

PEAK = """
def peak():
    # VmHWM: this process's own high-water mark (ru_maxrss survives exec from a large parent).
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
"""

NUMPY_READ = (
    PEAK
    + """
import json, struct, sys, time
import numpy as np
path = sys.argv[1]
start = time.perf_counter()
with open(path, "rb") as stream:
    length = struct.unpack("<Q", stream.read(8))[0]
    header = json.loads(stream.read(length))
for name, entry in header.items():
    if name == "__metadata__":
        continue
    begin, end = entry["data_offsets"]
    array = np.fromfile(path, dtype="<f4", count=(end - begin) // 4, offset=8 + length + begin)
    del array
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak": peak()}))
"""
)

XAVINIT_CHECK = (
    PEAK
    + """
import json, sys, time
from xavinit.config import CheckConfig
from xavinit.experiments.check import run_check
config = CheckConfig.from_mapping({"files": [sys.argv[1]]})
start = time.perf_counter()
result = run_check(config)
seconds = time.perf_counter() - start
counts = result.counts
print(json.dumps({"seconds": seconds, "counts": counts, "peak": peak()}))
"""
)

BARE = (
    PEAK
    + """
import json
import xavinit.experiments.check
print(json.dumps({"peak": peak()}))
"""
)


def write_file(path: str | Path) -> None:
    """The 1 GB file, PyTorch's default Linear (U(+-1/sqrt(fan_in))), written by safetensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {}
    for k, (rows, cols) in enumerate(SHAPES):
        bound = 1 / np.sqrt(cols)
        weight = np.empty((rows, cols), dtype=np.float32)
        rng.random(dtype=np.float32, out=weight)
        weight *= 2 * bound
        weight -= bound
        tensors[f"layers.{k}.weight"] = weight
    save_file(tensors, str(path))


def run(code: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(count: float) -> str:
    return f"{count / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/tmp/xavinit-bench")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    if not path.exists():  # in a child, so that this process stays small
        subprocess.run(
            [sys.executable, "-c", f"import bench_check; bench_check.write_file({str(path)!r})"],
            cwd=Path(__file__).parent, check=True,
        )  # fmt: skip
    size = path.stat().st_size
    largest = max(r * c for r, c in SHAPES) * 4
    run(NUMPY_READ, str(path))  # warm the page cache
    numpy_runs = [run(NUMPY_READ, str(path)) for _ in range(args.repeats)]
    check_runs = [run(XAVINIT_CHECK, str(path)) for _ in range(args.repeats)]
    bare = run(BARE)["peak"]
    t_numpy = statistics.median(r["seconds"] for r in numpy_runs)
    t_check = statistics.median(r["seconds"] for r in check_runs)
    peak = max(r["peak"] for r in check_runs)
    print(f"file: {path} ({size / 1e9:.2f} GB, {len(SHAPES)} tensors), medians of {args.repeats}")
    print(
        f"numpy reading the bytes : {t_numpy:7.2f} s   peak RSS {mib(max(r['peak'] for r in numpy_runs))}"
    )
    print(f"xavinit check           : {t_check:7.2f} s   peak RSS {mib(peak)}")
    print(f"ratio check / numpy     : {t_check / t_numpy:7.2f}x  (aim: <= 3x)")
    print(
        f"peak RSS {mib(peak)} vs 2 x largest tensor ({mib(2 * largest)}) + interpreter with "
        f"xavinit imported ({mib(bare)}) = {mib(2 * largest + bare)}"
    )
    print(f"verdicts: {check_runs[0]['counts']}")


if __name__ == "__main__":
    main()
