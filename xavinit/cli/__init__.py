"""The ``xavinit`` command line: a thin typer layer over the library."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import typer

from xavinit._version import __version__
from xavinit.cli import gain as gain_command
from xavinit.cli import init as init_command
from xavinit.cli import propagate as propagate_command
from xavinit.cli import report as report_command
from xavinit.cli import schemes as schemes_command
from xavinit.cli import train as train_command
from xavinit.cli.data import data_app

app = typer.Typer(
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


app.command("init")(init_command.init)
app.command("propagate")(propagate_command.propagate)
app.command("train")(train_command.train)
app.command("report")(report_command.report)
app.command("schemes")(schemes_command.schemes)
app.command("gain")(gain_command.gain)
app.add_typer(data_app, name="data")


def _click_exceptions() -> ModuleType:
    """The click exceptions typer raises: its vendored copy (typer >= 0.20) or click itself."""
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("typer's click exceptions are not importable")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors become one line on stderr with exit code 2."""
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
