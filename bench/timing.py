"""What the benchmarks share: medians of repeated timings and which BLAS threads ran."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` calls (page in buffers, load BLAS)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_times(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each call, the functions run in turn ``repeats`` times (after ``warmup``
    rounds), so that a machine that grows busy slows every one of them alike. ``clock``:
    wall time by default; ``time.thread_time`` counts this thread's CPU time only (steadier
    when other processes share the cores)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {label: [] for label in fns}
    for _ in range(repeats):
        for label, fn in fns.items():
            start = clock()
            fn()
            times[label].append(clock() - start)
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """The median over rounds of one round's ratio (like with like on a busy machine)."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, to print beside a ratio."""
    import os

    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def blas_info() -> str:
    """The BLAS libraries loaded and their thread counts (threadpoolctl, when installed)."""
    from threadpoolctl import threadpool_info

    return ", ".join(
        f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}"
        for i in threadpool_info()
    )
