"""A result command's command line parsed from its declaration (``xavinit.cli.commandline``):
config options handed on as typed (their model validates them), the others checked here, the
real command built only once the line parses."""

from __future__ import annotations

from typing import Any

import pytest
from startup_helpers import imported_by

import xavinit.cli.init
from xavinit.cli import main


@pytest.fixture
def captured(monkeypatch) -> dict[str, Any]:
    """The values ``init``'s built command is called with."""
    seen: dict[str, Any] = {}

    def command() -> Any:
        def record(**values: Any) -> None:
            seen.update(values)

        return record

    monkeypatch.setattr(xavinit.cli.init, "command", command)
    return seen


def test_values_reach_the_command_as_typed_or_checked(captured):
    words = ["init", "--layers", "8,4", "-s", "a", "-s", "b", "-q", "-f", "JSON", "--threads", "2"]
    assert main(words) == 0
    assert captured["layers"] == "8,4"
    assert captured["scheme"] == ["a", "b"]
    assert captured["quiet"] is True and captured["fmt"] == "json" and captured["threads"] == 2
    # an option not given is None (a flag too: ``train --resume`` refuses any option given)
    assert captured["trials"] is None and captured["key"] is None and captured["output"] is None


def test_a_config_flag_not_given_is_none_and_its_negation_is_false(monkeypatch):
    import xavinit.cli.propagate

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(xavinit.cli.propagate, "command", lambda: lambda **v: seen.append(v))
    main(["propagate"])
    main(["propagate", "--no-histograms"])
    main(["propagate", "--histograms", "-q"])
    assert [v["histograms"] for v in seen] == [None, False, True]
    assert [v["quiet"] for v in seen] == [False, False, True]


@pytest.mark.parametrize(
    ("words", "named"),
    [
        (["--threads", "0"], "'--threads'"),
        (["--threads", "two"], "'--threads'"),
        (["-f", "xml"], "'--format' / '-f'"),
        (["-o", "."], "'--output' / '-o'"),
        (["-c", "."], "'--config' / '-c'"),
        (["--no-such"], "--no-such"),
        (["--trials", "twelve"], "--trials"),
    ],
)
def test_a_refused_value_is_one_line_naming_the_option(words, named, capsys):
    assert main(["init", *words]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], lines


def test_a_usage_error_imports_no_pydantic():
    """A command line that does not parse is refused before any command is built."""
    argvs = [
        ["init", "--no-such"],
        ["check", "--threads", "0"],
        ["schemes", "a", "b"],
        ["train", "--format", "xml"],
    ]
    assert imported_by(argvs) == []


def test_without_typers_own_click_the_typer_built_command_gives_the_same_result(
    monkeypatch, capsys
):
    """An older typer (on click, no ``typer._coercion``): the command is built by typer, the
    same command line gives the same document and the same refusal."""
    import xavinit.cli.commandline

    words = ["init", "--layers", "16,8", "-s", "normalized", "-q", "-f", "json", "--seed", "3"]
    assert main(words) == 0
    declared = capsys.readouterr().out
    monkeypatch.setattr(xavinit.cli.commandline, "_param_classes", lambda: None)
    assert xavinit.cli.commandline.declared_command("init") is None
    assert main(words) == 0
    assert capsys.readouterr().out == declared
    assert main(["init", "--trials", "twelve"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--trials" in lines[0], lines


def test_the_process_entry_collects_garbage_again_once_the_command_works(monkeypatch, capsys):
    """``xavinit.__main__.run`` (the ``xavinit`` script) starts with the cyclic collector off;
    the command's work runs with it on, and what start-up built is frozen out of its walks."""
    import gc
    import sys

    import xavinit.__main__ as entry
    import xavinit.experiments.schemes as schemes

    real = schemes.run_schemes
    seen: list[tuple[bool, int]] = []

    def watched(config: Any, progress: Any) -> Any:
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return real(config, progress)

    monkeypatch.setattr(schemes, "run_schemes", watched)
    monkeypatch.setattr(sys, "argv", ["xavinit", "schemes", "-q", "-f", "json"])
    try:
        with pytest.raises(SystemExit) as stop:
            entry.run()
    finally:
        gc.unfreeze()
        gc.enable()
    assert stop.value.code == 0 and '"command": "schemes"' in capsys.readouterr().out
    assert seen and seen[0][0] is True and seen[0][1] > 1000
