"""How much memory this machine has for a request, and refusing one that would not fit."""

from __future__ import annotations

import os

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
