"""``xavinit report`` renderings: every included result, and the paper's values beside ours."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from xavinit.paper import JACOBIAN_SV_MEAN, SOURCE, table_1_value
from xavinit.render.blocks import Blocks
from xavinit.render.markdown import blocks
from xavinit.render.sweep import markdown_sweep, table_sweep
from xavinit.render.table import print_table


def report_summary(document: dict[str, Any]) -> str:
    """One line: PASSED/FAILED over every included result."""
    docs = document.get("documents", [])
    failed = [d for d in docs if not d.get("passed")]
    kinds = ", ".join(dict.fromkeys(d["command"] for d in docs))
    if failed:
        names = ", ".join(f"{d['command']} ({d['file']})" for d in failed)
        return f"xavinit report: FAILED: {len(failed)} of {len(docs)} results failed their checks: {names}"
    noun = "result" if len(docs) == 1 else "results"
    return f"xavinit report: PASSED: {len(docs)} {noun} ({kinds}), every check holds"


def paper_rows(document: dict[str, Any]) -> list[list[str]]:
    """Rows of (file, what, ours, paper) where our results and the paper's correspond."""
    rows = []
    for doc in document.get("documents", []):
        if doc["command"] == "propagate":
            for run in doc.get("runs", []):
                paper = JACOBIAN_SV_MEAN.get(run["scheme"])
                values = [
                    layer["jacobian_sv_mean"]
                    for layer in run.get("layers", [])[1:]
                    if layer.get("kind") == "hidden" and layer.get("jacobian_sv_mean") is not None
                ]
                if paper is None or run["activation"] != "tanh" or not values:
                    continue
                ours = f"{min(values):.3f}..{max(values):.3f}"
                what = (
                    f"mean singular value of the layer Jacobians, layers 2+ ({run['scheme']}, tanh)"
                )
                rows.append([doc["file"], what, ours, f"about {paper}"])
        elif doc["command"] == "train":
            for run in doc.get("runs", []):
                paper = table_1_value(run["activation"], run["scheme"], doc.get("dataset", ""))
                if paper is None:
                    continue
                ours = (
                    "diverged"
                    if run.get("diverged")
                    else f"{100 * run['final_test_error']:.2f}% after {run['updates']} updates"
                )
                what = f"test error, {run['activation']}/{run['scheme']} on {doc.get('dataset')}"
                rows.append([doc["file"], what, ours, f"{paper}% (Table 1)"])
        elif doc["command"] == "sweep":
            for entry in doc.get("table", []):
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
                rows.append([doc["file"], what, ours, f"{paper}% (Table 1)"])
    return rows


def markdown_report(document: dict[str, Any]) -> Blocks:
    """The verdict over all results, then each result's own blocks under a heading."""
    out = Blocks()
    out.verdict(report_summary(document), document.get("passed"))
    for doc in document.get("documents", []):
        out.heading(f"`xavinit {doc['command']}`: `{doc['file']}`", level=2)
        if doc["command"] == "sweep" and document.get("paper"):
            out.extend(markdown_sweep(doc, paper=True))  # Table 1 with the paper's beside ours
        else:
            out.extend(blocks(doc))
    if document.get("paper"):
        out.heading("Beside the paper", level=2)
        out.text(f"Reference values from {SOURCE}.")
        rows = paper_rows(document)
        if rows:
            out.table(["file", "quantity", "measured here", "paper"], rows)
        else:
            out.text("None of these results corresponds to a value the paper reports.")
    if document.get("plots_note"):
        out.text(document["plots_note"])
    return out


def table_report(document: dict[str, Any], console: Console) -> None:
    """Each result's own table under a rule (propagate with its histograms), then the paper."""
    for doc in document.get("documents", []):
        console.print(Rule(f"xavinit {doc['command']}: {doc['file']}"))
        if doc["command"] == "propagate":
            doc = {**doc, "config": {**doc.get("config", {}), "histograms": True}}
        if doc["command"] == "sweep" and document.get("paper"):
            table_sweep(doc, console, paper=True)
            continue
        print_table(doc, console)
    if document.get("paper"):
        table = Table(title=f"Beside the paper: {SOURCE}", title_justify="left")
        for column in ("file", "quantity", "measured here", "paper"):
            table.add_column(column)
        rows = paper_rows(document)
        for row in rows:
            table.add_row(*row)
        console.print(table if rows else Text("No result corresponds to a value in the paper."))
    if document.get("plots_note"):
        console.print(Text(document["plots_note"], style="yellow"))
    if document.get("plots"):
        folder = document.get("config", {}).get("plots")
        console.print(Text(f"wrote {len(document['plots'])} figure files to {folder}"))
    style = "bold green" if document.get("passed") else "bold red"
    console.print(Text(report_summary(document), style=style))
