"""Start-up: what a shell user waits for, as a ratio to importing numpy, typer and rich.

python bench/bench_startup.py [REPEATS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

CASES = (
    ["--help"],
    ["init", "--help"],
    ["init", "--layers", "x"],  # a usage error
    ["schemes"],
    ["init", "--layers", "64,32,10", "-q"],
)


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int) -> None:
    floor = median_seconds([sys.executable, "-c", "import numpy, typer, rich"], repeats)
    print(f"floor (import numpy, typer, rich): {floor:.3f} s, median of {repeats}")
    for case in CASES:
        seconds = median_seconds([sys.executable, "-m", "xavinit", *case], repeats)
        print(f"xavinit {' '.join(case):<32} {seconds:.3f} s  {seconds / floor:.2f}x the floor")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
