"""What every command shares: options made from the config declarations, config merging,
errors -> exit codes, output, progress, and the consoles (this module owns them).

Exit codes: 0 all checks hold, 1 a check failed, 2 bad input (one line on stderr, no traceback,
no output file), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape as markup_escape

from xavinit.errors import XavinitError
from xavinit.render import EXTENSIONS, FORMATS, formats, supported
from xavinit.text import printable

if typing.TYPE_CHECKING:
    from rich.console import Console

    from xavinit.experiments import Progress as ProgressCallback
    from xavinit.config import Config, Opt

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

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
Display = Callable[[bool], contextlib.AbstractContextManager[Any]]
"""``display(quiet)``: a context giving the experiment's progress callback (or None)."""
COMMON = ("fmt", "output", "config", "quiet")
"""The parameters every result command takes besides its config's options."""


# --- consoles -------------------------------------------------------------------------------


def stderr_console() -> Console:
    """The console for progress, notes and errors (honours NO_COLOR)."""
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False)


def stdout_console() -> Console:
    """The console for the result itself; piped output is 160 columns unless COLUMNS says. It
    reads no Rich markup and no emoji codes: a ``[bold]`` or ``:fire:`` in a name read from a
    file is shown as it is (the renderers style with ``Text``, never with markup).

    A closed pipe raises ``BrokenPipeError`` to the caller, which ends quietly with the
    verdict's exit code (Rich's own handler would exit 1)."""
    from rich.console import Console

    class ResultConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    console = ResultConsole(file=sys.stdout, highlight=False, markup=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160
    return console


MESSAGE_LIMIT = 1000
"""An error line is cut to this many characters: a 20,000-character tensor name is not a
message."""


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``Error: message`` as one line of visible characters on stderr (control characters
    and undecodable bytes escaped, at most :data:`MESSAGE_LIMIT`) and exit with ``code``."""
    line = printable(" ".join(str(message).split()), MESSAGE_LIMIT)
    print(f"Error: {line}", file=sys.stderr)
    raise typer.Exit(code)


@contextlib.contextmanager
def progress_bar(quiet: bool) -> Iterator[ProgressCallback | None]:
    """A Rich progress bar on stderr, or None when quiet or stderr is not a terminal."""
    if quiet:  # no console to build (nor Rich to import) for a run that shows none
        yield None
        return
    console = stderr_console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(done: int, total: int, what: str) -> None:
            # a tensor or file name is text, not Rich markup or terminal escapes
            description = markup_escape(printable(what, 60))
            bar.update(task, completed=done, total=total, description=description)

        yield update


# --- options from declarations ----------------------------------------------------------------


def _cli_type(annotation: Any, opt: Opt) -> Any:
    """The type typer parses an option into: the field's, without None and constraints."""
    if opt.cli_type is not None:
        return opt.cli_type
    kind = annotation
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        while typing.get_origin(kind) is Annotated:
            kind = typing.get_args(kind)[0]
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
    params = []
    options = sorted(config_type.options(), key=lambda item: item[0] == "seed")  # seed last
    for name, opt, info in options:
        if not opt.cli:
            continue
        key = opt.key or name
        kind = _cli_type(info.annotation, opt)
        text = opt.help
        if (
            not info.is_required()
            and not opt.argument
            and (info.default is not None or opt.default_text is not None)
        ):
            text = f"{text} (default {_default_text(info.default, opt)})"
        text = markup_escape(text)  # 'xavinit[torch]' is text, not a Rich style
        if opt.argument:
            marker: Any = typer.Argument(help=text, metavar=opt.metavar, show_default=False)
        else:
            flag = "--" + key.replace("_", "-")
            flags = (f"{flag}/--no-{key.replace('_', '-')}",) if kind is bool else (flag,)
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


def _common_parameters(numeric: bool) -> list[inspect.Parameter]:
    keyword = inspect.Parameter.KEYWORD_ONLY
    threads = [inspect.Parameter("threads", keyword, default=None, annotation=ThreadsOption)]
    return (threads if numeric else []) + [
        inspect.Parameter("fmt", keyword, default=None, annotation=FormatOption),
        inspect.Parameter("output", keyword, default=None, annotation=OutputOption),
        inspect.Parameter("config", keyword, default=None, annotation=ConfigOption),
        inspect.Parameter("quiet", keyword, default=False, annotation=QuietOption),
    ]


def reflow(doc: str) -> str:
    """A docstring for ``--help``: each prose paragraph on one line (the terminal wraps it at its
    own width), example lines (indented, or after ``Examples:``) kept as they are; brackets are
    text ('xavinit[formats]'), not Rich styles."""
    paragraphs = markup_escape(inspect.cleandoc(doc)).split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if any(line.startswith(" ") or line.startswith("xavinit ") for line in lines):
            out.append("\n".join(re.sub(r"\s{3,}#", "  #", line) for line in lines))
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


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
        option_parameters(config_type) + (extra or []) + _common_parameters(config_type.numeric)
    )
    extra_names = {p.name for p in extra or []}

    def command(**kwargs: Any) -> None:
        common = {k: kwargs.pop(k) for k in COMMON}
        threads = kwargs.pop("threads", None)
        extras = {k: kwargs.pop(k) for k in extra_names}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
        module, _, function = run.partition(":")
        steps = prepare(values, extras) if prepare is not None else None
        build, runner = steps or (
            config_type.from_mapping,
            lambda: getattr(importlib.import_module(module), function),
        )
        execute(
            command=config_type.command,
            cli_values=values,
            build=build,
            run=runner,
            fmt=common["fmt"],
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


# --- running a command ------------------------------------------------------------------------


def chosen_formats(
    command: str, fmt: OutputFormat | None, output: Path | None
) -> tuple[str | None, str | None]:
    """``(stdout format or None, file format or None)``, refused before any work if the
    command's result cannot be rendered so."""
    file_fmt = None
    if output is not None:
        file_fmt = EXTENSIONS.get(output.suffix.lower())
        if file_fmt is None:
            fail(
                f"--output {str(output)!r}: unknown extension {output.suffix or '(none)'!r}; "
                f"use one of {', '.join(EXTENSIONS)}"
            )
        if not output.parent.is_dir():
            fail(f"--output {str(output)!r}: folder {str(output.parent)!r} does not exist")
    screen = None if output is not None and fmt is None else (fmt.value if fmt else "table")
    for name in (screen, file_fmt):
        if name is not None and not supported(command, name):
            fail(f"{command} cannot be rendered as {name}; formats: {', '.join(formats(command))}")
    return screen, file_fmt


def check_outputs(config: Config, output: Path | None, config_file: Path | None = None) -> None:
    """Before any work: every file the command will write has an existing folder, no two
    outputs are the same file (a 10-minute run must not end in "folder does not exist"), and
    no output is one of the command's inputs (the config file, a file an option names) or lies
    in a folder the command writes (``sweep --dir runs -o runs/manifest.json``): an input is
    never overwritten."""
    named = {output.resolve(): "--output"} if output is not None else {}
    inputs: dict[Path, str] = {}
    if config_file is not None:
        inputs[Path(config_file).resolve()] = f"the config file {str(config_file)!r}"
    folders: dict[Path, str] = {}
    for name, opt, _ in type(config).options():
        value = getattr(config, name)
        flag = "--" + (opt.key or name).replace("_", "-")
        if opt.writes is None:
            for text in value if isinstance(value, tuple | list) else [value]:
                if isinstance(text, str) and text and Path(text).is_file():
                    inputs.setdefault(Path(text).resolve(), f"the input {text!r} ({flag})")
            continue
        if value is None:
            continue
        path = Path(value)
        if not path.parent.is_dir():
            fail(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist")
        if opt.writes == "folder" and path.exists() and not path.is_dir():
            fail(f"{flag} {str(path)!r}: exists and is not a folder")
        if opt.writes == "folder":
            folders[path.resolve()] = flag
        if path.resolve() in named:
            fail(f"{flag} and {named[path.resolve()]} name the same file {str(path)!r}")
        named[path.resolve()] = flag
    for target, flag in named.items():
        if target in inputs:
            fail(f"{flag} {str(target)!r} is {inputs[target]}: an input is never overwritten")
        for folder, owner in folders.items():
            if flag != owner and target.is_relative_to(folder):
                fail(
                    f"{flag} {str(target)!r} lies in the folder {owner} writes; write it elsewhere"
                )


def _file_options(
    file_values: dict[str, Any], label: str, fmt: OutputFormat | None, output: Path | None
) -> tuple[OutputFormat | None, Path | None, bool]:
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
        try:
            fmt = OutputFormat(str(fmt_value).lower())
        except ValueError:
            fail(f"{label}: format must be one of {', '.join(FORMATS)}")
    if output is None and output_value is not None:
        output = Path(str(output_value))
    return fmt, output, quiet


def _to_stdout(result: Any, screen: str | None) -> None:
    """Print the result; a closed pipe (``| head``) ends quietly, a full device is one line."""
    from xavinit.render import print_table, render

    if screen is None or sys.stdout is None:  # nothing to show, or nowhere to show it
        return
    try:
        if screen == "table":
            print_table(result, stdout_console())
        elif screen is not None:
            sys.stdout.write(render(result, screen))
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as error:
        _silence_stdout()
        fail(f"cannot write the result to stdout: {error.strerror or error}")


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: a stdout without a descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def execute(
    *,
    command: str,
    cli_values: dict[str, Any],
    build: Callable[[dict[str, Any], Callable[[str], str]], Any],
    run: Callable[[], Callable[[Any, ProgressCallback | None], Any]],
    fmt: OutputFormat | None,
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
    from xavinit.fileio import atomic_write
    from xavinit.render import render
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
        with (display or progress_bar)(quiet) as progress, blas_threads(threads):
            result = experiment(config, progress)
        if output is not None and file_fmt is not None:
            text = render(result, file_fmt)
            with atomic_write(output) as stream:
                stream.write(text)
            if not quiet:
                print(f"wrote {output}", file=sys.stderr)
        _to_stdout(result, screen)
    except XavinitError as error:
        fail(str(error))
    except MemoryError:
        fail("ran out of memory; use smaller layers or fewer trials")
    except KeyboardInterrupt as stop:
        if hasattr(stop, "checkpoint"):  # training saves its state first; its command says where
            raise
        fail("interrupted", EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)
