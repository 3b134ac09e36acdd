"""``init``'s sample-and-verify of one matrix against numpy's bare sampling of the same count.

For a 4096 x 4096 float32 matrix and each distribution, times what ``xavinit init`` does per
matrix (``Scheme.sample`` measuring each chunk as it is drawn, then the variance, KS and
support tests of ``assess_iid``) against numpy's bare draws into a preallocated array, two of
them: the standard draw (``U[0, 1)``, ``N(0, 1)``; for the truncated normal with its rejection
step: entries beyond 2 redrawn once over the matrix, then the few still beyond, as a bare
implementation would) and the law itself (that draw mapped in place to ``U[-b, b]`` or scaled by
the std, as a user of numpy writes it: what ``init`` draws). Beside them, xavinit's draw alone
(``Scheme.sample``, the same numbers as the law's numpy draw; a uniform float32 one reads the
bit generator's words in blocks, :mod:`xavinit.core.uniform32`). Each xavinit run starts a
fresh generator, as ``init`` does for every matrix. The four run in turn, interleaved, one BLAS
thread; each ratio is the median of the rounds' ratios, printed with the load average
(``--cpu``: this thread's CPU time instead of the wall clock, steadier on a shared machine).
Aims (issue 22): uniform <= 1.5x, normal and truncated <= 1.3x (``xavinit / standard``).

    python bench/bench_init.py [--size 4096] [--repeats 9] [--cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits
from timing import blas_info, interleaved_times, load_average, median_ratio

from xavinit.core.schemes import OBSERVED_PIECE, Scheme, get_scheme
from xavinit.core.streams import layer_rng
from xavinit.core.verification import assess_iid, draw_and_measure
from xavinit.limits import KS_SAMPLE


def bare_draw(scheme: Scheme, rng: np.random.Generator, out: np.ndarray, scaled: bool) -> None:
    """numpy's bare draw of ``scheme``'s entries into ``out``: its standard draw (``U[0, 1)``
    or ``N(0, 1)``; a truncated normal's entries beyond +-2 redrawn until none is left), and
    with ``scaled`` the law itself, the standard draw mapped in place as a user would
    (``out *= 2b; out -= b`` for ``U[-b, b]``, ``out *= std`` for the normals)."""
    n = out.shape[0]
    if scheme.distribution == "uniform":
        rng.random(dtype=out.dtype, out=out)
        if scaled:
            bound = scheme.bound(n, n)
            assert bound is not None
            out *= 2.0 * bound
            out -= bound
        return
    rng.standard_normal(dtype=out.dtype, out=out)
    if scheme.distribution != "normal":
        flat = out.reshape(-1)
        bad = np.flatnonzero(np.abs(flat) > scheme.truncation)
        while bad.size:
            flat[bad] = rng.standard_normal(bad.size, dtype=out.dtype)
            bad = bad[np.abs(flat[bad]) > scheme.truncation]
    if scaled:
        std = scheme.std(n, n)
        assert std is not None
        out *= std


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--cpu", action="store_true", help="time this thread's CPU, not the wall clock"
    )
    args = parser.parse_args()
    n = args.size
    out = np.empty((n, n), dtype=np.float32)
    widened = np.empty(min(OBSERVED_PIECE, n * n))  # init's float64 buffer, shared by its scans
    rng = np.random.default_rng(0)
    clock = time.thread_time if args.cpu else time.perf_counter
    with threadpool_limits(1):
        print(
            f"{n} x {n} float32 ({n * n / 1e6:.1f} M values), medians of {args.repeats} "
            f"interleaved rounds ({'CPU' if args.cpu else 'wall'} time); BLAS: {blas_info()}"
        )
        print(
            f"{'scheme':<26}{'standard':>10}{'the law':>10}{'draw':>10}{'xavinit':>10}"
            f"{'/standard':>11}{'/law':>7}{'draw/standard':>15}"
        )
        for spec in ("normalized", "xavier-normal", "glorot-normal-truncated"):
            scheme = get_scheme(spec)

            def standard(scheme: Scheme = scheme) -> None:
                bare_draw(scheme, rng, out, scaled=False)

            def law(scheme: Scheme = scheme) -> None:
                bare_draw(scheme, rng, out, scaled=True)

            def draw(scheme: Scheme = scheme) -> None:
                scheme.sample((n, n), layer_rng(0, 0, 1), out=out)

            def both(scheme: Scheme = scheme) -> None:
                found = draw_and_measure(
                    scheme, out, layer_rng(0, 0, 1), KS_SAMPLE, widened=widened
                )
                assess_iid(scheme, n, n, [found], 0.01, out.dtype)

            times = interleaved_times(
                {"standard": standard, "law": law, "draw": draw, "xavinit": both},
                args.repeats,
                clock=clock,
            )
            medians = {label: statistics.median(t) * 1e3 for label, t in times.items()}
            print(
                f"{spec:<26}{medians['standard']:>8.1f}ms{medians['law']:>8.1f}ms"
                f"{medians['draw']:>8.1f}ms{medians['xavinit']:>8.1f}ms"
                f"{median_ratio(times['xavinit'], times['standard']):>11.2f}"
                f"{median_ratio(times['xavinit'], times['law']):>7.2f}"
                f"{median_ratio(times['draw'], times['standard']):>15.2f}"
            )
        print(f"load average {load_average()}")


if __name__ == "__main__":
    main()
