"""Rich tables for the terminal: schemes side by side, failures in red."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from xavinit.render.format import init_summary, layer_names, num, pct, pval
from xavinit.schemes import get_scheme


def _ok(passed: Any) -> Text:
    return Text("✓", style="green") if passed else Text("✗", style="bold red")


def _verdict(document: dict[str, Any], line: str) -> Text:
    return Text(line, style="bold green" if document.get("passed") else "bold red")


def table_init(document: dict[str, Any], console: Console) -> None:
    """Sampling: one row per layer, one column group per scheme; check: one row per array."""
    mode = document.get("mode", "sample")
    if mode == "rank":
        for ranking in document.get("rankings", []):
            table = Table(
                title=f"{ranking['array']} ({ranking['fan_in']} x {ranking['fan_out']}): "
                f"{ranking['verdict']}",
                title_justify="left",
            )
            for column in ("scheme", "score", "expected Var", "rel. error", "p (Var)", "p (KS)"):
                table.add_column(column, justify="left" if column == "scheme" else "right")
            table.add_column("fits")
            for c in ranking["candidates"]:
                table.add_row(
                    c["scheme"], pval(c["score"]), num(c["expected_var"]), pct(c["rel_error"]),
                    pval(c["p_value"]), pval(c["ks_p_value"]), _ok(c["explains"]),
                )  # fmt: skip
            console.print(table)
        console.print(Text(init_summary(document)))
        return
    rows = document.get("layers", [])
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    keyed = {(r["scheme"], r["layer"], r.get("array")): r for r in rows}
    units = list(
        dict.fromkeys((r["layer"], r.get("array"), r["fan_in"], r["fan_out"]) for r in rows)
    )
    title = (
        f"xavinit init: {layer_names(document)}, seed {document.get('seed')}"
        if mode == "sample"
        else f"xavinit init --check {document['config'].get('check')}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("layer" if mode == "sample" else "array", justify="right", no_wrap=True)
    table.add_column("shape", justify="right", no_wrap=True)
    for spec in schemes:
        table.add_column(f"{spec}\nVar", justify="right", no_wrap=True)
        table.add_column("vs exp.", justify="right", no_wrap=True)
        table.add_column("n_in·Var", justify="right", no_wrap=True)
        table.add_column("n_out·Var", justify="right", no_wrap=True)
    for layer, array, fan_in, fan_out in units:
        cells: list[Any] = [str(layer) if array is None else array, f"{fan_in}→{fan_out}"]
        for spec in schemes:
            row = keyed.get((spec, layer, array))
            if row is None:
                cells += ["-"] * 4
                continue
            mark = "✓" if row["passed"] else "✗"
            cells += [
                num(row["observed_var"], 3),
                Text(
                    f"{pct(row['rel_error'])} {mark}",
                    style="green" if row["passed"] else "bold red",
                ),
                num(row["fan_in_var"], 3),
                num(row["fan_out_var"], 3),
            ]
        table.add_row(*cells)
    console.print(table)
    for spec in schemes:
        console.print(Text(f"  {spec}: {get_scheme(spec).describe()}", style="dim"))
    console.print(
        Text(
            "  n_in·Var = 1 keeps activation variance (forward), n_out·Var = 1 keeps gradient "
            "variance (backward); normalized's Var = 2/(n_in+n_out) is the compromise (paper eq. 12-16).",
            style="dim",
        )
    )
    failed = [r for r in rows if not r["passed"]]
    for row in failed:
        where = f"layer {row['layer']}" if row.get("array") is None else row["array"]
        console.print(
            Text(
                f"  ✗ {row['scheme']} {where}: {', '.join(row.get('failures') or ['failed'])} "
                f"(p={pval(row.get('p_value'))}, KS p={pval(row.get('ks_p_value'))})",
                style="red",
            )
        )
    console.print(_verdict(document, init_summary(document)))


TABLES: dict[str, Callable[[dict[str, Any], Console], None]] = {"init": table_init}


def print_table(document: dict[str, Any], console: Console) -> None:
    """Print a result document as Rich tables, by its ``command``."""
    TABLES[document["command"]](document, console)
