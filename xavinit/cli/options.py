"""Command-line options made from the config declarations (:class:`xavinit.config.Opt`), and
the options every result command takes besides its config's."""

from __future__ import annotations

import inspect
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from xavinit.render import FORMATS

if typing.TYPE_CHECKING:
    from xavinit.config import Config, Opt

OutputFormat = Enum("OutputFormat", {name: name for name in FORMATS}, type=str)  # type: ignore[misc]
"""``--format`` values: one per renderer format."""

FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format", "-f", help="Result format on stdout (default table).", case_sensitive=False
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o",
        help="Also write the result to FILE (.json, .yaml, .csv, .md or .html, by extension); "
        "stdout then stays empty unless --format is given.",
        dir_okay=False,
    ),
]  # fmt: skip
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c",
        help="YAML file whose keys are this command's long option names; options override it.",
        dir_okay=False,
    ),
]  # fmt: skip
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="BLAS threads for the matrix products (default: the cores not busy with other "
        "work, so never slower than one thread on a loaded machine).",
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no notes on stderr.")
]
COMMON = ("fmt", "output", "config", "quiet")
"""The parameters every result command takes besides its config's options."""


def bare_type(annotation: Any) -> Any:
    """A type without its ``Annotated`` metadata and without ``None`` (``X | None`` -> ``X``)."""
    kind = annotation
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        while typing.get_origin(kind) is Annotated:
            kind = typing.get_args(kind)[0]
    return kind


def cli_type(annotation: Any, opt: Opt) -> Any:
    """The type typer parses an option into: the field's, without None and constraints."""
    if opt.cli_type is not None:
        return opt.cli_type
    kind = bare_type(annotation)
    if typing.get_origin(kind) is tuple:
        return list[typing.get_args(kind)[0]]  # type: ignore[misc]
    return kind


def _default_text(value: Any, opt: Opt) -> str:
    if opt.default_text is not None:
        return opt.default_text
    if isinstance(value, tuple):
        return " and ".join(map(str, value)) if value else "none"
    if isinstance(value, bool):
        return "off" if not value else "on"
    return str(value)


def option_parameters(config_type: type[Config]) -> list[inspect.Parameter]:
    """One typer parameter per option of ``config_type``, in declaration order."""
    from xavinit.config.base import flag as flag_of  # config_type is imported already

    params = []
    options = sorted(config_type.options(), key=lambda item: item[0] == "seed")  # seed last
    for name, opt, info in options:
        if not opt.cli:
            continue
        key = opt.key or name
        kind = cli_type(info.annotation, opt)
        text = opt.help
        if (
            not info.is_required()
            and not opt.argument
            and (info.default is not None or opt.default_text is not None)
        ):
            text = f"{text} (default {_default_text(info.default, opt)})"
        if opt.argument:
            marker: Any = typer.Argument(help=text, metavar=opt.metavar, show_default=False)
        else:
            flag = flag_of(key)
            flags = (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,)
            metavar = opt.metavar or ("TEXT" if typing.get_origin(kind) is list else None)
            marker = typer.Option(
                *flags, *opt.flags, help=text, metavar=metavar, show_default=False
            )
        params.append(
            inspect.Parameter(
                key,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, marker],
            )
        )
    return params


def common_parameters(numeric: bool) -> list[inspect.Parameter]:
    """``--threads`` (for a numeric command), ``--format``, ``--output``, ``--config`` and
    ``--quiet``."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    threads = [inspect.Parameter("threads", keyword, default=None, annotation=ThreadsOption)]
    return (threads if numeric else []) + [
        inspect.Parameter("fmt", keyword, default=None, annotation=FormatOption),
        inspect.Parameter("output", keyword, default=None, annotation=OutputOption),
        inspect.Parameter("config", keyword, default=None, annotation=ConfigOption),
        inspect.Parameter("quiet", keyword, default=False, annotation=QuietOption),
    ]
