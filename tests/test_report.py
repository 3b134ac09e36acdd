"""``xavinit report``: golden renderings, the HTML report, figures, exit codes, bad input.

The inputs are small fixed result files in ``tests/data`` (made with the commands themselves:
``init.json``, ``propagate.json``, ``train.json`` and a failing ``failed_init.json``). The golden
files are ``tests/data/golden_report.md`` and ``golden_report.json``; regenerate them with
``XAVINIT_UPDATE_GOLDEN=1 python -m pytest tests/test_report.py`` after a deliberate change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xavinit.cli import app

DATA = Path(__file__).parent / "data"
RESULTS = ["init.json", "propagate.json", "train.json"]
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_data_folder(monkeypatch):
    monkeypatch.chdir(DATA)


def _golden(name: str, text: str) -> None:
    path = DATA / name
    if os.environ.get("XAVINIT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"rendering differs from {path}"


def _contains(newer, older) -> bool:
    """``older`` is part of ``newer``: every key and value kept; a newer version adds fields."""
    if isinstance(older, dict):
        return isinstance(newer, dict) and all(
            k in newer and _contains(newer[k], v) for k, v in older.items()
        )
    if isinstance(older, list):
        return (
            isinstance(newer, list)
            and len(newer) == len(older)
            and all(_contains(n, o) for n, o in zip(newer, older, strict=True))
        )
    return newer == older


def _report(*args: str):
    return runner.invoke(app, ["report", *args])


def test_markdown_golden():
    result = _report(*RESULTS, "--paper", "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("**xavinit report: PASSED")
    _golden("golden_report.md", result.stdout)


def test_json_golden_and_merge():
    result = _report(*RESULTS, "-f", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["command"] == "report" and doc["passed"] is True
    assert [d["command"] for d in doc["documents"]] == ["init", "propagate", "train"]
    assert [d["file"] for d in doc["documents"]] == RESULTS
    for original, merged in zip(RESULTS, doc["documents"], strict=True):
        source = json.loads((DATA / original).read_text())
        assert _contains({k: v for k, v in merged.items() if k != "file"}, source)
    _golden("golden_report.json", result.stdout)


def test_paper_values_beside_ours():
    result = _report("propagate.json", "train.json", "--paper", "-f", "markdown")
    assert "Glorot and Bengio (2010)" in result.stdout
    assert "about 0.5" in result.stdout and "about 0.8" in result.stdout


def test_table_groups_by_command_with_sparklines():
    result = _report(*RESULTS)
    assert result.exit_code == 0
    out = result.stdout
    assert out.index("xavinit init") < out.index("xavinit propagate") < out.index("xavinit train")
    assert any(block in out for block in "▁▂▃▄▅▆▇█")


def test_exit_code_follows_the_inputs():
    result = _report("init.json", "failed_init.json", "-f", "markdown")
    assert result.exit_code == 1
    assert result.stdout.startswith("**xavinit report: FAILED")
    assert "failed_init.json" in result.stdout.splitlines()[0]


class _Checker(HTMLParser):
    """Collects tags and image sources; html.parser reports malformed markup as errors."""

    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.problems: list[str] = []
        self.figures: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes.get("src", ""))
        if tag == "figure":
            self.figures.append(attributes.get("id", ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()


def _parse(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.problems, checker.problems
    assert checker.stack == [], checker.stack
    return checker


def test_html_report_is_valid_self_contained_and_embeds_every_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from xavinit.loading import load_result
    from xavinit.render.plots import figures

    target = tmp_path / "report.html"
    result = _report(*RESULTS, "--paper", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    checker = _parse(text)
    expected = sum(len(figures(load_result(DATA / f))) for f in RESULTS)
    assert len(checker.images) == expected > 0
    assert all(src.startswith("data:image/png;base64,") for src in checker.images)
    assert "http://" not in text and "https://" not in text  # no network, no external assets


def test_html_without_matplotlib_keeps_tables_and_says_how(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    target = tmp_path / "report.html"
    result = _report(*RESULTS, "-o", str(target))
    assert result.exit_code == 0, result.stderr
    text = target.read_text()
    checker = _parse(text)
    assert checker.images == []
    assert "<table>" in text and "pip install &#x27;xavinit[plot]&#x27;" in text.replace(
        "'", "&#x27;"
    )


def test_plots_folder_gets_png_and_svg_for_each_kind(tmp_path):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "figures"
    result = _report(*RESULTS, "--plots", str(folder), "-f", "json")
    assert result.exit_code == 0, result.stderr
    written = json.loads(result.stdout)["plots"]
    names = [Path(p).name for p in written]
    for kind in ("init", "propagate", "train"):
        assert any(n.startswith(kind) or f"-{kind}" in n for n in names), (kind, names)
    for path in map(Path, written):
        assert path.stat().st_size > 0
        assert path.suffix in (".png", ".svg")
    assert {p.suffix for p in folder.iterdir()} == {".png", ".svg"}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_html_opens_in_headless_chromium_without_console_errors(tmp_path):
    pytest.importorskip("matplotlib")
    page = tmp_path / "report.html"
    assert _report(*RESULTS, "--paper", "-o", str(page)).exit_code == 0
    screenshot = tmp_path / "report.png"
    proc = subprocess.run(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
            "--v=0", "--window-size=1280,2000", f"--screenshot={screenshot}", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert screenshot.exists() and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["no_such_file.json"], "does not exist"),
        (["blobs.npz"], "blobs.npz"),
        (["{tmp}/truncated.json"], "malformed JSON"),
        (["{tmp}/not_a_result.json"], "not an xavinit result"),
        (["{tmp}/future.json"], "schema_version 99"),
        (["{tmp}/wrong_command.json"], "unknown command"),
    ],
)
def test_bad_input(files, message, tmp_path):
    text = (DATA / "init.json").read_text()
    (tmp_path / "truncated.json").write_text(text[: len(text) // 2])
    (tmp_path / "not_a_result.json").write_text('{"hello": "world"}')
    (tmp_path / "future.json").write_text(
        text.replace('"schema_version": 1', '"schema_version": 99')
    )
    (tmp_path / "wrong_command.json").write_text(
        text.replace('"command": "init"', '"command": "x"')
    )
    target = tmp_path / "out.html"
    args = [f.replace("{tmp}", str(tmp_path)) for f in files]
    result = _report(*args, "-o", str(target))
    assert result.exit_code == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not target.exists()


def test_no_files_is_bad_input():
    result = _report()
    assert result.exit_code == 2 and "result file" in result.stderr
