"""Verification streams: the extra memory it needs does not grow with the matrix."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from xavinit.config import InitConfig
from xavinit.core.schemes import get_scheme
from xavinit.experiments.init import run_init


def test_checking_a_large_npy_memory_maps_it_and_streams(tmp_path):
    # 6000 x 6000 float32 is 137 MiB on disk. Checked with --check, the file is memory-mapped
    # (not traced by tracemalloc), and verification adds only chunk buffers and the KS
    # subsample: at most 10^6 values, a few copies of 8 MB, whatever the matrix size.
    path = tmp_path / "big.npy"
    weights = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(6000, 6000))
    get_scheme("normalized").sample((6000, 6000), np.random.default_rng(0), out=weights)
    weights.flush()
    del weights
    config = InitConfig.from_mapping({"check": str(path), "scheme": ["normalized"]})
    tracemalloc.start()
    result = run_init(config)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.passed
    assert result.layers[0].count == 36_000_000
    assert peak < 48 * 2**20, f"verification held {peak / 2**20:.0f} MiB beyond the matrix"


def _resident_mib() -> float:
    """This process's resident memory (``VmRSS``, mapped file pages included), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_16_bit_tensor_widened_from_the_mapped_file_lets_its_pages_go(tmp_path):
    # A float16 tensor is mapped and widened into the float32 workspace range by range; the
    # mapped pages it has widened leave the process, so memory holds the 64 MiB workspace and
    # not also the 32 MiB of stored bytes (the page cache keeps them, outside the process).
    from safetensors.numpy import save_file

    from xavinit.formats import open_tensors
    from xavinit.formats.base import Workspace

    values = np.random.default_rng(0).standard_normal((4096, 4096), dtype=np.float32)
    path = tmp_path / "half.safetensors"
    save_file({"w": values.astype(np.float16)}, str(path))
    path.read_bytes()  # in the page cache: what the reader maps is there already
    del values
    workspace = Workspace()
    workspace.array(4096 * 4096)[:] = 0.0  # the workspace's pages are resident before
    with open_tensors(path) as source:
        (info,) = source.tensors
        before = _resident_mib()
        array, fill = source.read_lazily(info, workspace)
        assert fill is not None
        with fill:
            for first in range(0, info.size, 1 << 20):
                fill(first, first + (1 << 20))
            grown = _resident_mib() - before
        assert float(array[4095, 4095]) == float(array.reshape(-1)[-1])
    assert grown < 8, f"{grown:.0f} MiB of the stored tensor stayed resident"
