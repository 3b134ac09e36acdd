"""``xavinit report`` renderings: every included result, and the paper's values beside ours.

A report keeps each included result as its document (plain data with its ``file``); each is
read back into its typed result (:func:`xavinit.render.documents.included`) and shown by its
own command's renderer: its blocks (:func:`xavinit.render.markdown.blocks`) in Markdown and
HTML, its tables (through the registry, :func:`xavinit.render.print_table`) in the terminal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from xavinit.paper import JACOBIAN_SV_MEAN, SOURCE, table_1_value
from xavinit.render import print_table
from xavinit.render.blocks import Blocks, to_markdown
from xavinit.render.documents import included
from xavinit.render.html import page
from xavinit.render.markdown import blocks
from xavinit.render.sweep import sweep_blocks, table_sweep
from xavinit.results import ReportResult

Shown = list[tuple[str, Any]]
"""A report's included results: ``(file, typed result)`` in the report's order."""


def shown(result: ReportResult) -> Shown:
    """The report's documents as ``(file, typed result)`` pairs."""
    return [(document["file"], included(document)) for document in result.documents]


def report_summary(result: ReportResult, results: Shown) -> str:
    """One line: PASSED/FAILED over every included result."""
    failed = [(file, inner) for file, inner in results if not inner.passed]
    kinds = ", ".join(dict.fromkeys(inner.command for _, inner in results))
    if failed:
        names = ", ".join(f"{inner.command} ({file})" for file, inner in failed)
        return f"xavinit report: FAILED: {len(failed)} of {len(results)} results failed their checks: {names}"
    noun = "result" if len(results) == 1 else "results"
    return f"xavinit report: PASSED: {len(results)} {noun} ({kinds}), every check holds"


def paper_rows(results: Shown) -> list[list[str]]:
    """Rows of (file, what, ours, paper) where our results and the paper's correspond."""
    rows = []
    for file, inner in results:
        if inner.command == "propagate":
            for run in inner.runs:
                paper = JACOBIAN_SV_MEAN.get(run.scheme)
                values = [
                    layer.jacobian_sv_mean
                    for layer in run.layers[1:]
                    if layer.kind == "hidden" and layer.jacobian_sv_mean is not None
                ]
                if paper is None or run.activation != "tanh" or not values:
                    continue
                ours = f"{min(values):.3f}..{max(values):.3f}"
                what = f"mean singular value of the layer Jacobians, layers 2+ ({run.scheme}, tanh)"
                rows.append([file, what, ours, f"about {paper}"])
        elif inner.command == "train":
            for run in inner.runs:
                paper = table_1_value(run.activation, run.scheme, inner.dataset)
                if paper is None:
                    continue
                ours = (
                    "diverged"
                    if run.diverged
                    else f"{100 * run.final_test_error:.2f}% after {run.updates} updates"
                )
                what = f"test error, {run.activation}/{run.scheme} on {inner.dataset}"
                rows.append([file, what, ours, f"{paper}% (Table 1)"])
        elif inner.command == "sweep":
            for entry in inner.table:
                paper = table_1_value(entry["activation"], entry["scheme"], entry["dataset"])
                if paper is None:
                    continue
                mean, std = entry["test_error_mean"], entry["test_error_std"]
                ours = "no rate finished" if mean is None else f"{100 * mean:.2f}%"
                if std is not None:
                    ours += f" ± {100 * std:.2f}"
                what = (
                    f"test error, {entry['activation']}/{entry['scheme']} on {entry['dataset']} "
                    f"(lr {entry['lr']}, {entry['seeds']} seeds, {entry['updates']} updates)"
                )
                rows.append([file, what, ours, f"{paper}% (Table 1)"])
    return rows


def _blocks(result: ReportResult, results: Shown) -> Blocks:
    out = Blocks()
    out.verdict(report_summary(result, results), result.passed)
    for file, inner in results:
        out.heading(f"`xavinit {inner.command}`: `{file}`", level=2)
        if inner.command == "sweep" and result.paper:
            out.extend(sweep_blocks(inner, paper=True))  # Table 1 with the paper's beside ours
        elif inner.command == "report":
            out.extend(report_blocks(inner))
        else:
            out.extend(blocks(inner))
    if result.paper:
        out.heading("Beside the paper", level=2)
        out.text(f"Reference values from {SOURCE}.")
        rows = paper_rows(results)
        if rows:
            out.table(["file", "quantity", "measured here", "paper"], rows)
        else:
            out.text("None of these results corresponds to a value the paper reports.")
    if result.plots_note:
        out.text(result.plots_note)
    return out


def report_blocks(result: ReportResult) -> Blocks:
    """The verdict over all results, then each result's own blocks under a heading."""
    return _blocks(result, shown(result))


def markdown_report(result: ReportResult) -> str:
    """A report as Markdown."""
    return to_markdown(report_blocks(result))


def html_report(result: ReportResult) -> str:
    """A report as one HTML page: every result's blocks, then the figures of them all."""
    results = shown(result)
    return page(result.command, _blocks(result, results), [inner for _, inner in results])


def table_report(result: ReportResult, console: Console) -> None:
    """Each result's own table under a rule (propagate with its histograms), then the paper."""
    results = shown(result)
    for file, inner in results:
        console.print(Rule(f"xavinit {inner.command}: {file}"))
        if inner.command == "propagate":
            inner = dataclasses.replace(inner, config={**inner.config, "histograms": True})
        if inner.command == "sweep" and result.paper:
            table_sweep(inner, console, paper=True)
            continue
        print_table(inner, console)
    if result.paper:
        table = Table(title=f"Beside the paper: {SOURCE}", title_justify="left")
        for column in ("file", "quantity", "measured here", "paper"):
            table.add_column(column)
        rows = paper_rows(results)
        for row in rows:
            table.add_row(*row)
        console.print(table if rows else Text("No result corresponds to a value in the paper."))
    if result.plots_note:
        console.print(Text(result.plots_note, style="yellow"))
    if result.plots:
        folder = result.config.get("plots")
        console.print(Text(f"wrote {len(result.plots)} figure files to {folder}"))
    style = "bold green" if result.passed else "bold red"
    console.print(Text(report_summary(result, results), style=style))
