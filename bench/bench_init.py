"""Sample-and-verify of one matrix against numpy's bare sampling of the same count.

Prints, for a 4096 x 4096 float32 matrix and each distribution, the median time of
``Scheme.sample`` + verification (moments, KS on <= 10^6 values, support) next to the median of
``Generator.random`` / ``Generator.standard_normal`` into a preallocated array, measured in the
same run, and their ratio. Aim: within 2x of bare sampling.

    python bench/bench_init.py [--size 4096] [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from timing import blas_info, median_time

from xavinit.checks import assess_iid, measure
from xavinit.schemes import get_scheme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.size
    out = np.empty((n, n), dtype=np.float32)
    rng = np.random.default_rng(0)
    print(
        f"{n} x {n} float32 ({n * n / 1e6:.1f} M values), medians of {args.repeats}; "
        f"BLAS: {blas_info()}"
    )
    print(f"{'scheme':<26}{'bare numpy':>12}{'xavinit':>12}{'ratio':>8}   sample / verify")
    for spec, bare in (
        ("normalized", lambda: rng.random(dtype=np.float32, out=out)),
        ("xavier-normal", lambda: rng.standard_normal(dtype=np.float32, out=out)),
        ("glorot-normal-truncated", lambda: rng.standard_normal(dtype=np.float32, out=out)),
    ):
        scheme = get_scheme(spec)

        def sample(scheme=scheme):
            scheme.sample((n, n), rng, out=out)

        def verify(scheme=scheme):
            found = measure(out)
            return assess_iid(scheme, n, n, [found], 0.01, out.dtype)

        def both(sample=sample, verify=verify):
            sample()
            return verify()

        t_bare = median_time(bare, args.repeats)
        t_sample = median_time(sample, args.repeats)
        t_verify = median_time(verify, args.repeats)
        t_both = median_time(both, args.repeats)
        print(
            f"{spec:<26}{t_bare * 1e3:>10.1f}ms{t_both * 1e3:>10.1f}ms{t_both / t_bare:>8.2f}"
            f"   {t_sample * 1e3:.1f} / {t_verify * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
