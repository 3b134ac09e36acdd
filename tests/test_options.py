"""Every declared option of every command refuses an invalid value on the real command line
(in the manner of scikit-learn's ``_parameter_constraints`` tests): exit 2, one line on stderr
naming the option, no traceback, and the experiment never starts.

The options are walked from the config models (not a hand list) and each invalid value is
derived from the option's declaration: below a declared lower bound (or above an upper one),
a word for an unbounded integer, ``nan`` for an unbounded float, an empty string for text, a
value for a flag that takes none.
"""

from __future__ import annotations

import typing
from typing import Any

import annotated_types
import pytest
from startup_helpers import imported_by

import xavinit.cli.propagate_model
import xavinit.cli.run
from xavinit.cli import main
from xavinit.cli.options import cli_type
from xavinit.commands import RESULT_COMMANDS
from xavinit.config import Config, Opt, PropagateConfig, PropagateModelConfig, config_type
from xavinit.config.fields import ACTIVATION_HELP

REQUIRED: dict[str, list[str]] = {
    "check": ["no-such-checkpoint.npz"],
    "report": ["no-such-result.json"],
    "sweep": ["--dir", "SWEEP"],
}
"""What a command needs besides the option under test (a missing file is read only by the
experiment, so a value refused while the config is built never gets that far)."""


def _options() -> list[tuple[str, type[Config], str, Opt, Any]]:
    """``(command, model, field, Opt, field info)`` for every option of every command, and the
    model-only options ``propagate --model`` adds."""
    out = []
    for command in RESULT_COMMANDS:
        model = config_type(command.name)
        out += [(command.name, model, *option) for option in model.options() if option[1].cli]
    shared = set(PropagateConfig.accepted_keys())
    out += [
        ("propagate", PropagateModelConfig, *option)
        for option in PropagateModelConfig.options()
        if option[1].cli and (option[1].key or option[0]) not in shared
    ]
    return out


OPTIONS = _options()


def _bound(info: Any, kind: Any) -> str | None:
    """A value just outside the field's declared range, or None when it declares none."""
    for meta in info.metadata:
        if isinstance(meta, annotated_types.Ge):
            return str(kind(meta.ge) - 1)
        if isinstance(meta, annotated_types.Gt):
            return str(kind(meta.gt))
        if isinstance(meta, annotated_types.Le):
            return str(kind(meta.le) + 1)
        if isinstance(meta, annotated_types.Lt):
            return str(kind(meta.lt))
    return None


def invalid_arguments(opt: Opt, name: str, info: Any) -> list[str]:
    """The command-line words that give this option an invalid value."""
    flag = "--" + (opt.key or name).replace("_", "-")
    kind = cli_type(info.annotation, opt)
    if typing.get_origin(kind) is list:
        kind = typing.get_args(kind)[0]
    if opt.argument:
        return ["no-such-" + name]
    if kind is bool:
        return [f"{flag}=maybe"]
    if kind is int:
        return [flag, _bound(info, int) or "twelve"]
    if kind is float:
        return [flag, _bound(info, float) or "nan"]
    return [flag, ""]


def test_every_command_has_options_to_walk():
    commands = {command for command, *_ in OPTIONS}
    assert commands == {c.name for c in RESULT_COMMANDS}
    assert len(OPTIONS) > 80


@pytest.mark.parametrize(
    "command, model, name, opt, info",
    OPTIONS,
    ids=[f"{c}-{(o.key or n)}" for c, _, n, o, _ in OPTIONS],
)
def test_an_invalid_value_is_exit_2_naming_the_option(
    command, model, name, opt, info, capsys, monkeypatch, tmp_path
):
    def never(*args: Any) -> Any:
        raise AssertionError(f"{command} ran with an invalid --{name}")

    if command not in ("check", "report"):  # their argument is a file the experiment reads
        monkeypatch.setattr(xavinit.cli.run, "load_experiment", lambda spec: never)
        monkeypatch.setattr(xavinit.cli.propagate_model, "run", lambda: never)
    words = invalid_arguments(opt, name, info)
    base = [str(tmp_path / w) if w == "SWEEP" else w for w in REQUIRED.get(command, [])]
    if opt.argument:
        base = []
    if model is PropagateModelConfig and name != "model":
        base = ["--model", "no_such_module:factory"]
    if command == "sweep" and name == "dir":
        base = []
    capsys.readouterr()
    code = main([command, *base, *words])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, (words, err)
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    named = words[0] if opt.argument else "--" + (opt.key or name).replace("_", "-")
    assert named in lines[0], (named, lines[0])


def test_the_activation_help_names_every_activation():
    from xavinit.core.activations import ACTIVATION_NAMES

    listed = ACTIVATION_HELP.partition(":")[2].rstrip(".").split(",")
    names = [item.strip().partition("[")[0] for item in listed]
    assert sorted(names) == sorted(ACTIVATION_NAMES)  # the same names, each once


def test_the_option_reference_in_usage_md_is_current():
    """docs/usage.md's option reference is what the declarations give now (regenerate it with
    ``python -m xavinit.cli.reference --write docs/usage.md``)."""
    from pathlib import Path

    from xavinit.cli.reference import BEGIN, END, reference

    page = (Path(__file__).resolve().parent.parent / "docs" / "usage.md").read_text()
    block = page[page.index(BEGIN) : page.index(END) + len(END) + 1]
    assert block == reference()


def test_the_option_reference_lists_every_declared_option():
    from xavinit.cli.reference import reference

    text = reference()
    for command, _, name, opt, _ in OPTIONS:
        if not opt.argument:
            assert f"`--{(opt.key or name).replace('_', '-')}`" in text, (command, name)


def test_help_and_a_usage_error_import_no_numpy():
    """``xavinit COMMAND --help`` and a refused option answer without the numeric code (the
    placement rules and the option declarations are standard library and pydantic only)."""
    argvs = [["init", "--help"], ["train", "--help"], ["propagate", "--bins", "1"]]
    assert imported_by(argvs, ("numpy", "scipy")) == []
