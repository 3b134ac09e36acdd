"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The terminal size the runner may export (pytest-xdist's workers set COLUMNS=80): the tests
# read tables as a pipe gets them, 160 columns (xavinit.cli.consoles.stdout_console), unless a
# test sets COLUMNS itself.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


# pytest-xdist's workers share the cores: each runs its BLAS on one thread (a second thread
# spins on the core the other worker's test needs). Libraries loaded later (scipy's own
# OpenBLAS, a subprocess's) read the variable; numpy's is loaded already and is limited here.
if os.environ.get("PYTEST_XDIST_WORKER"):
    from threadpoolctl import threadpool_limits

    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    threadpool_limits(limits=1, user_api="blas")


def write_blobs(path: Path, n_train=1200, n_test=400, inputs=12, classes=3, seed=0) -> Path:
    """A small, learnable npz dataset: Gaussian blobs around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-1, 1, (classes, inputs))

    def draw(n):
        y = rng.integers(0, classes, n)
        x = centres[y] + 0.35 * rng.standard_normal((n, inputs))
        return x.astype(np.float32), y

    x_train, y_train = draw(n_train)
    x_test, y_test = draw(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def blobs(tmp_path):
    """A blobs dataset written for one test."""
    return write_blobs(tmp_path / "blobs.npz")


@pytest.fixture(scope="module")
def module_blobs(tmp_path_factory):
    """A blobs dataset shared by a test module."""
    return write_blobs(tmp_path_factory.mktemp("data") / "blobs.npz")
