"""``init``'s sample-and-verify of one matrix against numpy's bare sampling of the same count.

For a 4096 x 4096 float32 matrix and each distribution, times what ``xavinit init`` does per
matrix (``Scheme.sample`` measuring each chunk as it is drawn, then the variance, KS and
support tests of ``assess_iid``) against numpy's bare draw into a preallocated array: for the
truncated normal, the bare draw includes the rejection step (entries beyond 2 std redrawn once
over the matrix, then the few still beyond, as a bare implementation would). The two run in
turn, interleaved, one BLAS thread; the ratio is the median of each round's ratio, printed with
the load average. Aims (issue 22): uniform <= 1.5x, normal and truncated <= 1.3x.

    python bench/bench_init.py [--size 4096] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_info, interleaved_times, load_average, median_ratio

from xavinit.core.schemes import get_scheme
from xavinit.core.stats import Scanner
from xavinit.core.verification import assess_iid, measurement_of
from xavinit.limits import KS_SAMPLE


def bare_truncated(rng: np.random.Generator, out: np.ndarray, cut: float) -> None:
    """Standard normals into ``out``, those beyond ``+-cut`` redrawn until none is left."""
    rng.standard_normal(dtype=out.dtype, out=out)
    flat = out.reshape(-1)
    bad = np.flatnonzero(np.abs(flat) > cut)
    while bad.size:
        flat[bad] = rng.standard_normal(bad.size, dtype=out.dtype)
        bad = bad[np.abs(flat[bad]) > cut]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    n = args.size
    out = np.empty((n, n), dtype=np.float32)
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        print(
            f"{n} x {n} float32 ({n * n / 1e6:.1f} M values), medians of {args.repeats} "
            f"interleaved rounds; BLAS: {blas_info()}"
        )
        print(f"{'scheme':<26}{'bare numpy':>12}{'xavinit':>12}{'ratio':>8}")
        for spec, bare in (
            ("normalized", lambda: rng.random(dtype=np.float32, out=out)),
            ("xavier-normal", lambda: rng.standard_normal(dtype=np.float32, out=out)),
            ("glorot-normal-truncated", lambda: bare_truncated(rng, out, 2.0)),
        ):
            scheme = get_scheme(spec)

            def both(scheme=scheme):
                scanner = Scanner(out.size, out.dtype, KS_SAMPLE)
                scheme.sample((n, n), rng, out=out, observe=scanner.add)
                found = measurement_of(scanner.result())
                return assess_iid(scheme, n, n, [found], 0.01, out.dtype)

            times = interleaved_times({"bare": bare, "xavinit": both}, args.repeats)
            t_bare = statistics.median(times["bare"])
            t_both = statistics.median(times["xavinit"])
            ratio = median_ratio(times["xavinit"], times["bare"])
            print(f"{spec:<26}{t_bare * 1e3:>10.1f}ms{t_both * 1e3:>10.1f}ms{ratio:>8.2f}")
        print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
