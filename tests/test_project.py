"""Project hygiene: lint, formatting, and every command documented with an example."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from xavinit.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install '.[test]'")
    return subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint_passes():
    result = _ruff("check", "xavinit", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = _ruff("format", "--check", "xavinit", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.list_commands(None))  # type: ignore[attr-defined]


def test_every_command_has_an_example_in_the_docs():
    text = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))
    )
    for command in _commands():
        assert f"xavinit {command}" in text, f"no example of 'xavinit {command}' in README or docs/"


def test_every_command_help_has_examples():
    from typer.testing import CliRunner

    for command in _commands():
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0
        assert "Examples" in result.stdout, command


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^pip install .*$", readme, flags=re.MULTILINE)
    assert commands == [
        "pip install . && xavinit init",
        "pip install '.[test]' && python -m pytest",
    ]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_mypy_passes():
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: pip install '.[test]'")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
