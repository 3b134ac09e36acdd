"""A report's documents read back as typed results, each shown by its own command's renderer.

``ReportResult.documents`` keeps plain documents (the JSON contract); the report's renderers
rebuild each one's typed result (:func:`xavinit.render.documents.included`) and hand it to the
renderer of its command, so a result reads the same inside a report as on its own.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from xavinit.config import PropagateConfig, ReportConfig
from xavinit.experiments.propagate import run_propagate
from xavinit.experiments.report import run_report
from xavinit.loading import load_result
from xavinit.render import print_table
from xavinit.render.blocks import to_markdown
from xavinit.render.documents import included
from xavinit.render.markdown import blocks
from xavinit.render.report import markdown_report, table_report

DATA = Path(__file__).parent / "data"
FILES = [str(DATA / name) for name in ("init.json", "propagate.json", "train.json")]


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, markup=False, emoji=False, color_system=None), out


def test_a_document_is_rebuilt_as_the_result_it_was():
    config = PropagateConfig(layers=(8, 6, 4), batch=10, jacobian_samples=0)
    built = run_propagate(config)
    assert included({"file": "p.json", **built.to_dict()}) == built
    saved = load_result(DATA / "train.json")
    assert included({"file": "train.json", **saved.to_dict()}) == saved
    assert included(saved.to_dict()) == saved  # a document without its file, as figures get


def test_each_included_result_is_shown_by_its_own_markdown():
    report = run_report(ReportConfig.from_mapping({"files": FILES}))
    text = markdown_report(report)
    assert len(report.documents) == 3
    for document in report.documents:
        own = to_markdown(blocks(included(document))).rstrip("\n")
        heading = f"## `xavinit {document['command']}`: `{document['file']}`"
        assert f"{heading}\n\n{own}\n" in text, document["command"]


@pytest.mark.parametrize("command", ["init", "train"])
def test_each_included_result_is_shown_by_its_own_table(command):
    report = run_report(ReportConfig.from_mapping({"files": FILES}))
    console, out = _console()
    table_report(report, console)
    (document,) = [d for d in report.documents if d["command"] == command]
    alone, own = _console()
    print_table(included(document), alone)
    assert own.getvalue() and own.getvalue() in out.getvalue()
