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


def blas_info() -> str:
    """The BLAS libraries loaded and their thread counts (threadpoolctl, when installed)."""
    from threadpoolctl import threadpool_info

    return ", ".join(
        f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}"
        for i in threadpool_info()
    )
