"""Every ``--help`` of the command line, drawn with plain Rich (a panel of a table of text) from
the declared command lines (:mod:`xavinit.cli.declared`, generated from the config
declarations) and the commands' ``DOC`` strings.

Asking for help builds no command: no config model, no pydantic, no typer parameter adapters
and no Markdown parser are imported, so ``xavinit COMMAND --help`` costs about as much as
importing typer and rich. The commands typer builds draw their help here too
(:class:`ScreenCommand`, :class:`ScreenGroup`), so every path to a help screen shows the same.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from typer.core import TyperCommand, TyperGroup

HELP_FLAGS = ("--help", "-h")
"""The help flags of every command (the root's ``context_settings``, inherited)."""
HELP_TEXT = "Show this message and exit."


def _entry(path: str) -> dict[str, Any]:
    from xavinit.cli.declared import COMMAND_LINES

    return dict(COMMAND_LINES[path])


def doc(path: str) -> str:
    """The help text of a command path (``""`` the root, ``"init"``, ``"data preview"``)."""
    if not path:
        from xavinit.cli import app

        return str(app.info.help or "")
    name, _, sub = path.partition(" ")
    module = importlib.import_module(f"xavinit.cli.{name}")
    text = getattr(module, "DOC", None)
    if text is not None:
        return str(text)
    group = module.command()  # a typer group (``data``): its own help or a command's docstring
    if not sub:
        return str(group.info.help or "")
    for info in group.registered_commands:
        if info.name == sub:
            return str(info.callback.__doc__ or "")
    raise KeyError(path)


def summary(path: str) -> str:
    """A command's one-line summary: the first paragraph of its help, on one line."""
    return " ".join(doc(path).strip().split("\n\n")[0].split())


def requested(path: str, words: Sequence[str]) -> str | None:
    """The command path whose help ``words`` (what follows ``path`` on the command line) ask
    for, or None: a help flag in the place of an option, not the value of one that takes a
    value, nor after ``--``."""
    from xavinit.cli.declared import COMMAND_LINES

    entry = COMMAND_LINES.get(path)
    if entry is None:
        return None
    if entry["commands"]:  # a group: its help, or one of its commands'
        if words and words[0] in HELP_FLAGS:
            return path
        if words and words[0] in entry["commands"]:
            return requested(f"{path} {words[0]}", words[1:])
        return None
    takes_value = {
        flag
        for param in entry["params"]
        if not param["argument"] and param["value"]
        for flag in param["flags"]
    }
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--":
            return None
        elif word in HELP_FLAGS:
            return path
        else:
            skip = word in takes_value
    return None


def _usage(path: str, entry: dict[str, Any]) -> str:
    words = ["xavinit", *path.split(), "[OPTIONS]"]
    for param in entry["params"]:
        if param["argument"]:
            name = param["value"]
            if param["multiple"] and not name.endswith("..."):
                name += "..."
            words.append(name if param["required"] else f"[{name}]")
    if entry["commands"]:
        words += ["COMMAND", "[ARGS]..."]
    return " ".join(words)


def _panel(title: str, rows: list[tuple[Any, ...]], widths: int) -> Any:
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2), expand=True)
    for column in range(widths - 1):  # a value's placeholder (the third) may fold
        grid.add_column(no_wrap=column < 2, max_width=20 if column == 2 else None, overflow="fold")
    grid.add_column(ratio=1, overflow="fold")  # the help text: words wrap, none is cut
    for row in rows:
        grid.add_row(*row)
    return Panel(grid, title=title, title_align="left", border_style="dim")


def _option_row(param: dict[str, Any]) -> tuple[Any, ...]:
    from rich.text import Text

    longs = [f for f in param["flags"] if f.startswith("--") and f not in param["negative"]]
    others = [f for f in param["flags"] if f not in longs]
    return (
        Text(", ".join(longs), style="bold cyan"),
        Text(", ".join(others), style="bold green"),
        Text(param["value"], style="bold yellow"),
        Text(param["help"]),
    )


def screen(path: str) -> list[Any]:
    """The renderables of one help screen: usage, help text, arguments, options, commands."""
    from rich.padding import Padding
    from rich.text import Text

    from xavinit.cli.helptext import reflow

    entry = _entry(path)
    usage = Text.assemble(("Usage: ", "yellow"), (_usage(path, entry), "bold"))
    parts: list[Any] = [Text(""), Padding(usage, (0, 1)), Text("")]
    text = reflow(doc(path))
    if text:
        parts += [Padding(Text(text), (0, 1)), Text("")]
    arguments = [p for p in entry["params"] if p["argument"]]
    if arguments:
        rows = [
            (
                Text(p["value"], style="bold cyan"),
                Text(p["help"] + (" [required]" if p["required"] else "")),
            )
            for p in arguments
        ]
        parts.append(_panel("Arguments", rows, 2))
    options = [_option_row(p) for p in entry["params"] if not p["argument"]]
    help_row = {"flags": ["--help", "-h"], "negative": [], "value": "", "help": HELP_TEXT}
    parts.append(_panel("Options", [*options, _option_row(help_row)], 4))
    if entry["commands"]:
        sub = f"{path} " if path else ""
        rows = [
            (Text(name, style="bold cyan"), Text(summary(sub + name))) for name in entry["commands"]
        ]
        parts.append(_panel("Commands", rows, 2))
    return parts


def help_text(path: str) -> str:
    """The help screen of a command path as text, styled when stdout is a terminal."""
    from xavinit.cli.consoles import help_console

    console = help_console()
    with console.capture() as captured:
        for part in screen(path):
            console.print(part)
    return captured.get()


def print_help(path: str) -> None:
    """Print the help screen of a command path on stdout (none when stdout is closed; a pipe
    closed early, ``| head``, ends quietly)."""
    from xavinit.cli.consoles import silence_stdout

    if sys.stdout is None:
        return
    try:
        sys.stdout.write(help_text(path))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def context_path(ctx: Any) -> str:
    """The command path of a click context, without the program's name (``"data preview"``)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


class _Screen:
    """The help of a typer command or group: this module's screen, and a help flag that is off
    unless given (typer's is None, and coercing None builds a pydantic adapter: pydantic
    imported for every command line)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(help_text(context_path(ctx)))

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.default is None:
            option.default = False
        return option


class ScreenCommand(_Screen, TyperCommand):
    """A typer command whose help is this module's screen."""


class ScreenGroup(_Screen, TyperGroup):
    """A typer group whose help is this module's screen."""
