"""The execute pipeline every result command shares: merge the config file and the options,
build the config, check the outputs, run, render, write, and exit with the verdict's code."""

from __future__ import annotations

import contextlib
import gc
import importlib
import inspect
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import typer

from xavinit.cli.consoles import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    fail,
    progress_bar,
    silence_stdout,
    stdout_console,
)
from xavinit.cli.helptext import reflow
from xavinit.cli.options import COMMON, common_parameters, option_parameters
from xavinit.cli.outputs import check_outputs, chosen_formats
from xavinit.errors import XavinitError
from xavinit.render import FORMATS

if typing.TYPE_CHECKING:
    from xavinit.config import Config
    from xavinit.experiments import Progress as ProgressCallback

Display = Callable[[bool], contextlib.AbstractContextManager[Any]]
"""``display(quiet)``: a context giving the experiment's progress callback (or None)."""


def load_experiment(spec: str) -> Callable[[Any, ProgressCallback | None], Any]:
    """The experiment function ``"module:function"``, imported when the command runs (so
    ``--help`` stays fast)."""
    module, _, function = spec.partition(":")
    return typing.cast(
        Callable[[Any, "ProgressCallback | None"], Any],
        getattr(importlib.import_module(module), function),
    )


def result_command(
    config_type: type[Config],
    run: str,
    doc: str,
    *,
    extra: list[inspect.Parameter] | None = None,
    prepare: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None,
    display: Display | None = None,
) -> Callable[..., None]:
    """A typer command for ``config_type``: its options, the common ones, and ``extra``.

    ``run`` is ``"module:function"`` (imported when the command runs, so ``--help`` stays
    fast). ``prepare(values, extra_values)``, if given, may replace the build and run steps
    (``train --resume``); it returns ``(build, run)`` or None. ``display(quiet)`` replaces the
    progress bar (``sweep`` shows its runs).
    """
    parameters = (
        option_parameters(config_type) + (extra or []) + common_parameters(config_type.numeric)
    )
    extra_names = {p.name for p in extra or []}

    def command(**kwargs: Any) -> None:
        common = {k: kwargs.pop(k) for k in COMMON}
        threads = kwargs.pop("threads", None)
        extras = {k: kwargs.pop(k) for k in extra_names}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        steps = prepare(values, extras) if prepare is not None else None
        build, runner = steps or (
            config_type.from_mapping,
            lambda: load_experiment(run),
        )
        execute(
            command=config_type.command,
            cli_values=values,
            build=build,
            run=runner,
            fmt=getattr(common["fmt"], "value", common["fmt"]),  # typer's enum or its text
            output=common["output"],
            config_file=common["config"],
            quiet=common["quiet"],
            threads=threads,
            display=display,
        )

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = reflow(doc)
    command.__name__ = config_type.command
    return command


def _file_options(
    file_values: dict[str, Any], label: str, fmt: str | None, output: Path | None
) -> tuple[str | None, Path | None, bool]:
    """``format``, ``output`` and ``quiet`` taken out of a config file (options win)."""
    from pydantic import TypeAdapter, ValidationError

    fmt_value = file_values.pop("format", None)
    output_value = file_values.pop("output", None)
    quiet_value = file_values.pop("quiet", False)
    try:
        quiet = TypeAdapter(bool).validate_python(quiet_value)
    except ValidationError:
        fail(f"{label}: quiet: must be true or false, got {quiet_value!r}")
    if fmt is None and fmt_value is not None:
        fmt = str(fmt_value).lower()
        if fmt not in FORMATS:
            fail(f"{label}: format must be one of {', '.join(FORMATS)}")
    if output is None and output_value is not None:
        output = Path(str(output_value))
    return fmt, output, quiet


def _to_stdout(result: Any, screen: str | None, rendered: str | None = None) -> None:
    """Print the result (``rendered``: its text in ``screen``'s format, already made for the
    output file); a closed pipe (``| head``) ends quietly, a full device is one line."""
    from xavinit.render import print_table, render

    if screen is None or sys.stdout is None:  # nothing to show, or nowhere to show it
        return
    try:
        if screen == "table":
            print_table(result, stdout_console())
        elif screen is not None:
            sys.stdout.write(rendered if rendered is not None else render(result, screen))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except OSError as error:
        silence_stdout()
        fail(f"cannot write the result to stdout: {error.strerror or error}")


def execute(
    *,
    command: str,
    cli_values: dict[str, Any],
    build: Callable[[dict[str, Any], Callable[[str], str]], Any],
    run: Callable[[], Callable[[Any, ProgressCallback | None], Any]],
    fmt: str | None,
    output: Path | None,
    config_file: Path | None,
    quiet: bool,
    threads: int | None = None,
    display: Display | None = None,
) -> NoReturn:
    """Merge the config file and options, build the config, run, render, write, exit.

    ``build(mapping, origin)`` validates into a config; ``run()`` gives the experiment function
    (imported late), which returns a result with ``command``, ``to_dict()`` and ``passed``.
    """
    from xavinit.config import load_yaml, merge_options
    from xavinit.resources import blas_threads

    try:
        file_values: dict[str, Any] = {}
        label = ""
        if config_file is not None:
            file_values = load_yaml(config_file)
            label = str(config_file)
            fmt, output, file_quiet = _file_options(file_values, label, fmt, output)
            quiet = quiet or file_quiet
        screen, file_fmt = chosen_formats(command, fmt, output)
        if screen is not None and sys.stdout is None:  # started with stdout closed (>&-)
            if output is None:
                fail("standard output is closed; give --output FILE to write the result")
            screen = None
        merged, origin = merge_options(file_values, cli_values, label)
        config = build(merged, origin)
        check_outputs(config, output, config_file)
        experiment = run()
        if not gc.isenabled():  # off while the process started (xavinit.__main__.run)
            gc.freeze()  # what start-up built lives to the end: no collection walks it again
            gc.enable()  # the work may make cycles
        with (display or progress_bar)(quiet) as progress, blas_threads(threads):
            result = experiment(config, progress)
        text = None
        if output is not None and file_fmt is not None:
            from xavinit.fileio import atomic_write  # numpy: not for a usage error
            from xavinit.render import render

            text = render(result, file_fmt)
            with atomic_write(output) as stream:
                stream.write(text)
            if not quiet:
                print(f"wrote {output}", file=sys.stderr)
        _to_stdout(result, screen, text if screen == file_fmt else None)  # one rendering for both
    except XavinitError as error:
        fail(str(error))
    except MemoryError:
        fail("ran out of memory; use smaller layers or fewer trials")
    except KeyboardInterrupt as stop:
        if hasattr(stop, "checkpoint"):  # training saves its state first; its command says where
            raise
        fail("interrupted", EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)
