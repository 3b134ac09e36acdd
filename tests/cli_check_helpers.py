"""What the format tests assert of ``xavinit check`` on a file: refused in one line, or read
cleanly (imported by the test modules; holds no tests)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xavinit.cli import app

runner = CliRunner()


def refused_by_cli(path: Path, match: str, folder: Path, *extra: str) -> str:
    """``xavinit check`` exits 2 with one line naming the problem, no traceback, and writes
    nothing (no output file, nothing on stdout)."""
    target = folder / "result.json"
    result = runner.invoke(app, ["check", str(path), *extra, "-o", str(target)])
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.stderr and not target.exists() and not result.stdout
    return lines[0]


def checked_by_cli(path: Path) -> dict[str, dict]:
    """``xavinit check -f json`` exits 0; its rows by tensor name."""
    result = runner.invoke(app, ["check", str(path), "-q", "-f", "json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    return {row["name"]: row for row in document["tensors"]}
