"""A result command's command line parsed from its declaration as plain data
(:mod:`xavinit.cli.declared`), without building the typer command.

typer builds a command from a function's signature and coerces every parameter through a
pydantic ``TypeAdapter`` (importing pydantic and building one validator per option, on every
run and every usage error). The options of a config model need none of it: their model
validates what was typed, and names the option in its message (``--trials: must be an integer,
got 'x'``). So the command here hands config options on as typed, checks the few others itself
(``--threads``, ``--format``, the file options), and builds the real command only once the
command line parses: a misspelt option costs no more than importing typer.

Only for typer's own click (``typer._click``, typer >= 0.20, with ``typer._coercion``); with an
older typer the command is built by typer (:func:`declared_command` returns None).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from xavinit.cli.helpscreen import ScreenCommand


def _convert(record: dict[str, Any], value: Any) -> Any:
    """The value handed to the command, or ``ValueError`` naming what is allowed."""
    kind = record["type"]
    if value is None or kind in ("bool", "text"):
        return value
    if kind == "int":
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
        low, high = record["min"], record["max"]
        if (low is not None and number < low) or (high is not None and number > high):
            span = f">= {low}" if high is None else f"between {low} and {high}"
            raise ValueError(f"must be {span}, got {number}")
        return number
    if kind == "choice":
        text = str(value).lower()
        if text not in record["choices"]:
            raise ValueError(f"{value!r} is not one of {', '.join(record['choices'])}")
        return text
    path = Path(value)
    if record["file_only"] and path.is_dir():
        raise ValueError(f"file {value!r} is a directory")
    return path


def _param_classes() -> tuple[type, type, Any, Any, Any, Any] | None:
    """typer's parameter classes and what builds them, when typer has its own click."""
    try:
        from typer._click.exceptions import BadParameter
        from typer._coercion import resolve_type_descriptor
        from typer.core import TyperArgument, TyperOption
        from typer.models import ArgumentInfo, OptionInfo
    except ImportError:  # an older typer on click: typer builds the command
        return None

    def process(self: Any, ctx: Any, value: Any) -> Any:
        record = self.record
        if record["multiple"]:
            value = list(value) if value else None
        elif value is None:
            value = record["default"]
        try:
            return (
                [_convert(record, v) for v in value]
                if isinstance(value, list)
                else _convert(record, value)
            )
        except ValueError as error:
            raise BadParameter(str(error), ctx=ctx, param=self) from None

    option = type("DeclaredOption", (TyperOption,), {"process_value": process})
    argument = type("DeclaredArgument", (TyperArgument,), {"process_value": process})
    return option, argument, resolve_type_descriptor, OptionInfo, ArgumentInfo, BadParameter


def _decls(record: dict[str, Any]) -> list[str]:
    """The flags as typer declares them: a flag and its negation as ``--a/--no-a``."""
    negative = record["negative"]
    positive = [flag for flag in record["flags"] if flag not in negative]
    if negative:
        return [f"{positive[0]}/{negative[0]}", *positive[1:]]
    return positive


def declared_command(name: str) -> Any:
    """The click command of result command ``name``, parsed from its declaration; its callback
    builds the real command (``xavinit.cli.NAME.command()``) and calls it. None with a typer
    whose parameters cannot be made so."""
    from xavinit.cli.declared import COMMAND_LINES

    classes = _param_classes()
    entry = COMMAND_LINES.get(name)
    if classes is None or entry is None or entry["commands"]:
        return None
    option, argument, describe, option_info, argument_info, _ = classes
    params = []
    for record in entry["params"]:
        annotation: Any = bool if record["type"] == "bool" else str
        if record["multiple"]:
            annotation = list[str]
        if record["argument"]:
            param = argument(
                param_decls=[record["name"]],
                type_descriptor=describe(annotation, argument_info()),
                required=record["required"],
                nargs=-1 if record["multiple"] else None,
                metavar=record["value"],
            )
        else:
            param = option(
                param_decls=[record["name"], *_decls(record)],
                type_descriptor=describe(annotation, option_info()),
                is_flag=record["type"] == "bool",
                multiple=record["multiple"],
                metavar=record["value"] or None,
            )
        param.record = record
        params.append(param)

    def run(**values: Any) -> Any:
        built = importlib.import_module(f"xavinit.cli.{name}").command()
        return built(**values)

    return ScreenCommand(name, callback=run, params=params)
