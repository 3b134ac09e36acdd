"""BLAS threads on an idle and on a busy machine: ``xavinit propagate`` with 1 and 2 threads and
with the default (the cores not busy with other work, from the load average).

"Busy" starts one process that spins on a core for the whole measurement, as another job on a
shared 2-core machine would. The default should never be slower than one thread.

    python bench/bench_threads.py [REPEATS]
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import time

COMMAND = [sys.executable, "-m", "xavinit", "propagate", "-q", "-f", "json"]


def _spin() -> None:
    while True:
        pass


def _time(extra: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*COMMAND, *extra], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(repeats: int) -> dict[str, float]:
    return {
        "1 thread": _time(["--threads", "1"], repeats),
        "2 threads": _time(["--threads", "2"], repeats),
        "default": _time([], repeats),
    }


def main(repeats: int) -> None:
    from xavinit.resources import free_cores

    print(
        f"cores usable: {len(os.sched_getaffinity(0))}; median of {repeats} runs of the default propagate"
    )
    idle = measure(repeats)
    print(
        f"idle  (default chose {free_cores()} threads): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in idle.items())
    )
    spinner = multiprocessing.Process(target=_spin, daemon=True)
    spinner.start()
    try:
        time.sleep(65)  # let the 1-minute load average see the busy core
        busy = measure(repeats)
        chosen = free_cores()
    finally:
        spinner.terminate()
    print(
        f"busy  (default chose {chosen} threads): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in busy.items())
    )
    for name, runs in (("idle", idle), ("busy", busy)):
        print(
            f"{name}: default / 1 thread = {runs['default'] / runs['1 thread']:.2f}, "
            f"2 threads / 1 thread = {runs['2 threads'] / runs['1 thread']:.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
