"""The ``xavinit`` command line: a thin typer layer over the library."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import typer

from xavinit._version import __version__
from xavinit.cli.commandline import declared_command
from xavinit.cli.helpscreen import ScreenCommand, ScreenGroup, print_help, requested
from xavinit.commands import COMMAND_NAMES as COMMANDS

# Every command of :mod:`xavinit.commands` is the module ``xavinit.cli.NAME`` with a ``DOC``
# string and a ``command()`` that builds it.


class LazyGroup(ScreenGroup):
    """The root command: a command's module is imported only when that command is used.

    Every help screen is drawn from the declared command lines and the modules' ``DOC``
    strings (:mod:`xavinit.cli.helpscreen`) without building a command: building one imports
    its config models and validation. ``xavinit init ...`` builds ``init`` alone.
    """

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """A command's help answered from its declared command line (the command unbuilt)."""
        if args and args[0] in COMMANDS:
            path = requested(args[0], args[1:])
            if path is not None:
                print_help(path)
                ctx.exit(0)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        declared = declared_command(cmd_name)  # parsed from the declarations, built on success
        if declared is not None:
            return declared
        built = importlib.import_module(f"xavinit.cli.{cmd_name}").command()
        holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        if isinstance(built, typer.Typer):  # a group of commands (``data preview``)
            holder.add_typer(built, name=cmd_name)
        else:
            holder.command(cmd_name, cls=ScreenCommand)(built)
            holder.command("_")(lambda: None)  # two commands: typer keeps the group
        return typer.main.get_command(holder).get_command(ctx, cmd_name)  # type: ignore[attr-defined]


app = typer.Typer(
    cls=LazyGroup,
    name="xavinit",
    help="Empirical variance analysis of neural-network initialization, after Glorot and "
    "Bengio (2010). Run 'xavinit COMMAND --help' for each command's options and examples.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"xavinit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Empirical variance analysis of neural-network initialization."""


def _click_exceptions() -> ModuleType:
    """The click exceptions typer raises: its vendored copy (typer >= 0.20) or click itself."""
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("typer's click exceptions are not importable")


def _plain_streams() -> None:
    """Make the standard streams safe for any text: characters the terminal's encoding cannot
    show are replaced (``LANG=C``), and Python's warnings stay out of the one-line errors."""
    import warnings

    warnings.simplefilter("ignore")
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        if stream is not None and encoding != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors become one line on stderr with exit code 2."""
    _plain_streams()
    click = _click_exceptions()
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="xavinit", standalone_mode=False)
    except click.NoArgsIsHelpError as error:
        print(error.ctx.get_help() if error.ctx else "", file=sys.stderr)
        return 2
    except click.UsageError as error:
        where = (
            f" (see 'xavinit {error.ctx.info_name} --help')"
            if error.ctx and error.ctx.parent
            else ""
        )
        print(f"Error: {error.format_message()}{where}", file=sys.stderr)
        return 2
    except typer.Exit as error:
        return error.exit_code
    except typer.Abort:
        print("Error: interrupted", file=sys.stderr)
        return 130
    return code if isinstance(code, int) else 0
