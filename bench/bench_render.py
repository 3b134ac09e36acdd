"""Rendering speed per format: rows per second for init results of growing size.

A result of N rows (one scheme, N layers) is rendered in every format; the time should grow
linearly with N (the rows-per-second column stays about flat), and a 200,000-row report should
render in seconds. Figures (HTML with matplotlib) are drawn from every row.

    python bench/bench_render.py            # sizes 2,000, 20,000 and 200,000
    python bench/bench_render.py 1000 10000
"""

from __future__ import annotations

import sys

from timing import median_time

from xavinit.render import FORMATS, print_table, render
from xavinit.results import InitCheck, InitResult


def synthetic(rows: int) -> InitResult:
    """An init result with ``rows`` layers, values as a sampled run would give."""
    checks = [
        InitCheck(
            scheme="normalized",
            layer=k + 1,
            fan_in=1000,
            fan_out=1000,
            distribution="uniform",
            expected_var=1e-3,
            observed_var=1e-3 * (1 + 1e-3 * ((k % 7) - 3)),
            rel_error=1e-3,
            ci_low=0.99e-3,
            ci_high=1.01e-3,
            p_value=0.5,
            passed=True,
            bound=0.0548,
            ks_p_value=0.4,
            count=10**6,
        )
        for k in range(rows)
    ]
    config = {"layers": [1000] * (rows + 1), "schemes": ["normalized"]}
    return InitResult(
        seed=0, config=config, passed=True, layers=checks, alpha=0.01, correction="holm"
    )


def main(sizes: list[int]) -> None:
    from io import StringIO

    from rich.console import Console

    print(f"{'rows':>8} " + " ".join(f"{fmt:>16}" for fmt in FORMATS) + "   (rows per second)")
    for rows in sizes:
        result = synthetic(rows)
        cells = []
        for fmt in FORMATS:
            if fmt == "table":
                seconds = median_time(
                    lambda result=result: print_table(result, Console(file=StringIO(), width=160)),
                    1,
                    0,
                )
            else:
                seconds = median_time(lambda fmt=fmt, result=result: render(result, fmt), 1, 0)
            cells.append(f"{rows / seconds:>9.0f} ({seconds:4.1f}s)")
        print(f"{rows:>8} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2_000, 20_000, 200_000])
