"""The consoles (this module owns them), one-line errors with their exit codes, and the
progress bar.

Exit codes: 0 all checks hold, 1 a check failed, 2 bad input (one line on stderr, no traceback,
no output file), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing
from collections.abc import Iterator
from typing import NoReturn

import typer

from xavinit.text import printable

if typing.TYPE_CHECKING:
    from rich.console import Console

    from xavinit.experiments import Progress as ProgressCallback

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def help_console() -> Console:
    """The console for ``--help`` on stdout: text as it is (no markup, no emoji codes, no
    highlighting), the terminal's width (80 columns in a pipe unless COLUMNS says)."""
    from rich.console import Console

    return Console(highlight=False, markup=False, emoji=False)


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: a stdout without a descriptor
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


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
    from rich.markup import escape as markup_escape
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
