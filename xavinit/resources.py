"""How much memory this machine has for a request, and refusing one that would not fit."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from xavinit.errors import ResourceError


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024:
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} PiB"


def require_memory(need: int, what: str, share: float = 0.9) -> None:
    """Raise ResourceError, saying how much is needed and available, when ``need`` bytes
    exceed ``share`` of the available memory. ``what`` names the request."""
    have = available_memory()
    if need > share * have:
        raise ResourceError(
            f"{what} would need {format_bytes(need)} of memory; "
            f"this machine has {format_bytes(have)} available"
        )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux (macOS, Windows)
        return os.cpu_count() or 1


def free_cores() -> int:
    """Cores not busy with other work: usable cores minus the 1-minute load average, at least 1.

    OpenBLAS threads spin when they cannot get a core, so on a 2-core machine with one other busy
    process two BLAS threads are slower than one (PERF.md: 8.9 s against 5.7 s).
    """
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


@contextlib.contextmanager
def blas_threads(count: int | None) -> Iterator[int]:
    """Run the block with ``count`` BLAS threads (default :func:`free_cores`); yields the count."""
    from threadpoolctl import threadpool_limits

    threads = count if count is not None else free_cores()
    with threadpool_limits(limits=threads, user_api="blas"):
        yield threads


def side_blas_threads(threads: int) -> int:
    """Threads for a second BLAS library working beside numpy's ``threads`` (scipy's own
    OpenBLAS in a wheel): an OpenBLAS thread spins for a while after each call, so while one
    library works the other's ``threads - 1`` idle threads still hold cores. The two fit when
    ``1 + (threads - 1) + (M - 1) <= cores``: ``M = cores - threads + 1``, at most ``threads``,
    at least 1. (The paper's network trained at batch 10 on 2 cores with both libraries at 2
    threads took 4x as long as with scipy's at 1, docs/train.md.)"""
    return max(1, min(threads, usable_cores() - threads + 1))


def blas_thread_count() -> int:
    """The threads a library with a pool of its own (torch) should take: the BLAS limit in
    force when one was set (:func:`blas_threads`, ``--threads``), else the :func:`free_cores`
    (its threads spin when they cannot get a core: a tiny torch network trained 40 times slower
    with two threads beside two busy processes on two cores)."""
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    limit = min(counts) if counts else usable_cores()
    return limit if limit < usable_cores() else min(limit, free_cores())
