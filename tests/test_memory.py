"""Verification streams: the extra memory it needs does not grow with the matrix."""

from __future__ import annotations

import tracemalloc

import numpy as np

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
