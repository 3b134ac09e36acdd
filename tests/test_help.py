"""Every help screen: drawn from the declared command lines (``xavinit/cli/declared.py``, held
here to the declarations), complete (every flag, help text and default), and cheap (no
command built, no pydantic, no numpy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from startup_helpers import imported_by

from xavinit.cli import main
from xavinit.cli.declared import COMMAND_LINES
from xavinit.cli.helpscreen import requested

PATHS = sorted(COMMAND_LINES)


def test_declared_command_lines_are_current():
    """declared.py is what the declarations give now (regenerate it with ``python -m
    xavinit.cli.reference --declared``)."""
    from xavinit.cli.reference import DECLARED, declared_source

    assert Path(DECLARED).read_text(encoding="utf-8") == declared_source()


def test_every_command_and_subcommand_is_declared():
    from xavinit.commands import COMMAND_NAMES

    assert COMMAND_LINES[""]["commands"] == list(COMMAND_NAMES)
    assert set(PATHS) == {"", *COMMAND_NAMES, "data preview"}


@pytest.mark.parametrize("path", PATHS, ids=[p or "root" for p in PATHS])
def test_a_help_screen_shows_every_flag_and_help_text(path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per row: texts are found whole
    code = main([*path.split(), "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"Usage: xavinit {path} [OPTIONS]".replace("  ", " ") in out
    entry = COMMAND_LINES[path]
    for param in entry["params"]:
        for flag in param["flags"]:
            assert flag in out, (path, flag)
        assert param["help"] in out, (path, param["help"])
    for name in entry["commands"]:
        assert name in out
    assert "--help" in out and "Show this message and exit." in out
    if path and not entry["commands"]:
        assert "Examples:" in out, path


def test_help_shows_defaults_and_install_lines_as_text(capsys, monkeypatch):
    """Defaults are in the help text; ``xavinit[plot]`` is text, not a Rich style."""
    monkeypatch.setenv("COLUMNS", "400")
    main(["init", "-h"])
    out = capsys.readouterr().out
    assert "(default 1024,1000x5,10)" in out and "(default holm)" in out
    main(["data", "preview", "--help"])
    out = capsys.readouterr().out
    assert "pip install 'xavinit[plot]'" in out and "(default 6)" in out
    assert "INTEGER [1<=x<=200]" in out


def test_a_help_flag_is_found_where_an_option_stands_only():
    assert requested("init", ["--layers", "8,4", "--help"]) == "init"
    assert requested("init", ["-q", "-h"]) == "init"
    assert requested("init", ["--key", "--help"]) is None  # the value of --key
    assert requested("init", ["--", "--help"]) is None
    assert requested("init", ["--trials", "3"]) is None
    assert requested("data", ["--help"]) == "data"
    assert requested("data", ["preview", "shapeset", "-h"]) == "data preview"
    assert requested("data", ["preview", "--count", "-h"]) is None
    assert requested("data", []) is None


def test_a_group_without_a_command_shows_its_help_once_on_stderr(capsys):
    code = main(["data"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("Usage: xavinit data [OPTIONS] COMMAND") == 1


def test_typer_built_commands_draw_the_same_screen(monkeypatch):
    """A command typer builds (help reached after parsing) shows the fast path's screen."""
    import typer

    from xavinit.cli import app
    from xavinit.cli.helpscreen import help_text

    monkeypatch.setenv("COLUMNS", "120")
    root = typer.main.get_command(app)
    with root.make_context("xavinit", ["init"]) as ctx:
        command = root.get_command(ctx, "init")  # type: ignore[attr-defined]
        with command.make_context("init", [], parent=ctx) as sub:
            assert sub.get_help() == help_text("init").rstrip("\n")
    with root.make_context("xavinit", ["data"]) as ctx:
        group = root.get_command(ctx, "data")  # type: ignore[attr-defined]
        with group.make_context("data", ["preview"], parent=ctx) as sub:
            preview = group.get_command(sub, "preview")
            with preview.make_context("preview", ["x"], parent=sub) as leaf:
                assert leaf.get_help() == help_text("data preview").rstrip("\n")


def test_help_imports_no_pydantic_and_no_numpy():
    """Every help screen answers from the declared command lines: no config model is built, so
    neither pydantic nor numpy is imported, nor typer's Markdown help."""
    assert imported_by([[*path.split(), "--help"] for path in PATHS]) == []


def test_help_with_stdout_closed_is_quiet():
    """``xavinit init --help >&-``: nothing to print it on, no traceback."""
    import subprocess
    import sys

    probe = "import sys\nsys.stdout = None\nfrom xavinit.cli import main\nsys.exit(main(['init', '-h']))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-500:]
