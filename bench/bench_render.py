"""Rendering speed per format: rows per second for a large ``check`` result.

Writes a safetensors file of ``--tensors`` (default 20,000) 8x8 float32 tensors, runs ``check``
on it once in-process (every tensor is one row of the table, with about 15 candidate schemes in
the document), then renders the result as a terminal table (on a 160-column console that writes
to memory), YAML, Markdown, CSV and JSON, and prints rows per second and seconds per format with
the load average. Each rendering does what the command line does: for the table and Markdown,
the sanitiser (``xavinit.text.printable_strings``) too; for JSON and YAML, the document written
from the result's own objects; for CSV, its rows.

Quiet machine (load 1.0), ``--tensors 5000 --layers 2000``, medians of 3, two runs of the code
before the change and after in turn: YAML 7,900-8,500 -> 10,500-11,100 rows/s, JSON 7,700 ->
9,900-10,200, table 13,000-15,500 and 15,100-15,300 (unchanged code), Markdown 27,700-32,300
and 26,600-29,600, CSV 31,800-34,700 and 28,100-33,600 (unchanged, noise); init's 2,000 rows:
YAML 72,000-76,000 -> 141,000, JSON 37,000-38,000 -> 45,000-46,000.

``--compare`` also times what rendering cost before (Rich printing every cell itself, and
``yaml.dump`` with libyaml), in turns with xavinit's, and prints the ratio of medians of the
per-round ratios: slow (tens of seconds a round at 20,000 rows).

Then the same for an ``init`` result of ``--layers`` rows (one scheme, 15 fields a row, as a
sampled run gives): the rows of most commands are of this size.

    python bench/bench_render.py [--tensors 20000] [--layers 20000] [--repeats 3] [--compare]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
from timing import interleaved_times, load_average, median_ratio

FORMATS = ("table", "yaml", "markdown", "csv", "json")


def check_result(tensors: int, folder: Path) -> Any:
    """``check`` of a generated file of ``tensors`` 8x8 float32 tensors (uniform, Xavier-like)."""
    from safetensors.numpy import save_file

    from xavinit.experiments.check import check_weights

    rng = np.random.default_rng(0)
    path = folder / f"tiny-{tensors}.safetensors"
    bound = np.sqrt(6 / 16)
    save_file(
        {
            f"layers.{k}.weight": rng.uniform(-bound, bound, (8, 8)).astype(np.float32)
            for k in range(tensors)
        },
        str(path),
    )
    start = time.perf_counter()
    result = check_weights(path)
    print(f"check of {tensors:,} tensors: {time.perf_counter() - start:.1f} s", flush=True)
    return result


def init_result(rows: int) -> Any:
    """An init result of ``rows`` layers, values as a sampled run would give."""
    from xavinit.results import InitCheck, InitResult

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


def rates(result: Any, rows: int, repeats: int) -> None:
    """Rows per second of each format."""
    print(f"rendering {rows:,} rows, medians of {repeats}; load average {load_average()}")
    for fmt in FORMATS:
        times = interleaved_times({fmt: renderer(result, fmt)}, repeats, warmup=0)[fmt]
        seconds = statistics.median(times)
        print(f"{fmt:>9}: {rows / seconds:>9,.0f} rows/s ({seconds:5.2f} s); "
              f"load average {load_average()}", flush=True)  # fmt: skip


def renderer(result: Any, fmt: str) -> Any:
    """A call that renders ``result`` as ``fmt`` the way the command line does."""
    from rich.console import Console

    from xavinit.render import print_table, render

    if fmt == "table":
        return lambda: print_table(
            result, Console(file=StringIO(), width=160, markup=False, emoji=False)
        )
    return lambda: render(result, fmt)


def before(result: Any, fmt: str) -> Any:
    """The same rendering as it was: Rich lays out every row; YAML through ``yaml.dump``."""
    import yaml
    from rich.console import Console

    import xavinit.render.table as tables
    from xavinit.render import print_table

    if fmt == "yaml":
        dumper = yaml.CSafeDumper
        return lambda: yaml.dump(
            result.to_dict(), Dumper=dumper, sort_keys=False, allow_unicode=True,
            default_flow_style=False,
        )  # fmt: skip

    def table() -> None:
        saved = tables.print_table_fast
        tables.print_table_fast = lambda console, table: console.print(table)
        try:
            console = Console(file=StringIO(), width=160, markup=False, emoji=False)
            print_table(result, console)
        finally:
            tables.print_table_fast = saved

    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=20_000)
    parser.add_argument("--layers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = check_result(args.tensors, Path(folder))
    rates(result, len(result.tensors), args.repeats)
    if args.compare:
        for fmt in ("table", "yaml"):
            times = interleaved_times(
                {"now": renderer(result, fmt), "before": before(result, fmt)}, args.repeats, 0
            )
            print(
                f"{fmt:>9}: before {statistics.median(times['before']):6.2f} s, now "
                f"{statistics.median(times['now']):5.2f} s: "
                f"{median_ratio(times['before'], times['now']):.1f}x faster; "
                f"load average {load_average()}",
                flush=True,
            )
    print(f"init result of {args.layers:,} layers")
    rates(init_result(args.layers), args.layers, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
