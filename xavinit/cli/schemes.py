"""``xavinit schemes``: every scheme with its aliases, distribution and variance formula."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from xavinit.cli.common import FormatOption, OutputFormat, fail, stdout_console
from xavinit.errors import XavinitError
from xavinit.render.blocks import Blocks, to_markdown
from xavinit.render.data import render_csv, render_json, render_yaml
from xavinit.render.format import num
from xavinit.schemes import PRESETS, get_scheme


def scheme_rows(fan_in: int | None, fan_out: int | None) -> list[dict[str, Any]]:
    """One row per preset; with both fans, its numeric variance and bound or std."""
    rows = []
    for preset in PRESETS.values():
        scheme = get_scheme(preset.name)
        row: dict[str, Any] = {
            "name": preset.name,
            "aliases": list(preset.aliases),
            "distribution": preset.distribution,
            "formula": preset.formula,
            "parameters": list(preset.params),
            "known_as": preset.known_as,
            "source": preset.source,
        }
        if fan_in is not None and fan_out is not None:
            row["fan_in"], row["fan_out"] = fan_in, fan_out
            row["variance"] = scheme.variance(fan_in, fan_out)
            row["bound"] = scheme.bound(fan_in, fan_out)
            row["std"] = scheme.std(fan_in, fan_out)
        rows.append(row)
    return rows


def schemes(
    fan_in: Annotated[
        int | None, typer.Option("--fan-in", min=1, help="Show numbers for this fan_in.")
    ] = None,
    fan_out: Annotated[
        int | None, typer.Option("--fan-out", min=1, help="... and this fan_out.")
    ] = None,
    spec: Annotated[
        str | None,
        typer.Argument(help="Optional: one scheme spec to show, e.g. 'he-normal:mode=fan_out'."),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """List every initialization scheme: name, aliases, distribution and Var formula.

    Examples:

      xavinit schemes

      xavinit schemes --fan-in 1024 --fan-out 1000

      xavinit schemes 'normalized:gain=tanh' --fan-in 256 --fan-out 256 -f json
    """
    if (fan_in is None) != (fan_out is None):
        fail("give both --fan-in and --fan-out, or neither")
    try:
        rows = scheme_rows(fan_in, fan_out)
        if spec is not None:
            scheme = get_scheme(spec)
            row = next(r for r in rows if r["name"] == scheme.name)
            row.update(spec=scheme.spec, formula=scheme.formula(), distribution=scheme.distribution)
            if fan_in is not None and fan_out is not None:
                row.update(
                    variance=scheme.variance(fan_in, fan_out),
                    bound=scheme.bound(fan_in, fan_out),
                    std=scheme.std(fan_in, fan_out),
                )
            rows = [row]
    except XavinitError as error:
        fail(str(error))
    document = {"command": "schemes", "schemes": rows}
    chosen = (fmt or OutputFormat.table).value
    if chosen == "json":
        print(render_json(document), end="")
    elif chosen == "yaml":
        print(render_yaml(document), end="")
    elif chosen == "csv":
        print(render_csv({"layers": rows}), end="")
    elif chosen == "markdown":
        header = ["name", "aliases", "distribution", "Var formula", "known as"]
        if fan_in is not None:
            header += ["Var", "bound", "std"]
        lines = []
        for r in rows:
            cells = [
                f"`{r['name']}`",
                ", ".join(r["aliases"]),
                r["distribution"],
                r["formula"],
                r["known_as"],
            ]
            if fan_in is not None:
                cells += [num(r["variance"]), num(r["bound"]), num(r["std"])]
            lines.append(cells)
        blocks = Blocks()
        blocks.table(header, lines)
        print(to_markdown(blocks), end="")
    else:
        table = Table(
            title="xavinit schemes" + (f" (fan_in={fan_in}, fan_out={fan_out})" if fan_in else "")
        )
        for column in ("name", "aliases", "distribution", "Var formula"):
            table.add_column(column, overflow="fold")
        if fan_in is not None:
            for column in ("Var", "bound", "std"):
                table.add_column(column, justify="right")
        for r in rows:
            cells = [r["name"], ", ".join(r["aliases"]), r["distribution"], r["formula"]]
            if fan_in is not None:
                cells += [num(r["variance"]), num(r["bound"]), num(r["std"])]
            table.add_row(*cells)
        stdout_console().print(table)
