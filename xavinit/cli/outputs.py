"""Checks on what a command will write, made before any work starts: its formats, its files'
folders, and that no output overwrites an input."""

from __future__ import annotations

import typing
from pathlib import Path

from xavinit.cli.consoles import fail
from xavinit.errors import XavinitError
from xavinit.render import EXTENSIONS, require_supported

if typing.TYPE_CHECKING:
    from xavinit.config import Config


def chosen_formats(
    command: str, fmt: str | None, output: Path | None
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
    screen = None if output is not None and fmt is None else (fmt or "table")
    for name in (screen, file_fmt):
        if name is not None:
            try:
                require_supported(command, name)
            except XavinitError as error:
                fail(str(error))
    return screen, file_fmt


def check_outputs(config: Config, output: Path | None, config_file: Path | None = None) -> None:
    """Before any work: every file the command will write has an existing folder, no two
    outputs are the same file (a 10-minute run must not end in "folder does not exist"), and
    no output is one of the command's inputs (the config file, a file an option names) or lies
    in a folder the command writes (``sweep --dir runs -o runs/manifest.json``): an input is
    never overwritten."""
    from xavinit.config.base import flag as flag_of  # the config is built: no cost

    named = {output.resolve(): "--output"} if output is not None else {}
    inputs: dict[Path, str] = {}
    if config_file is not None:
        inputs[Path(config_file).resolve()] = f"the config file {str(config_file)!r}"
    folders: dict[Path, str] = {}
    for name, opt, _ in type(config).options():
        value = getattr(config, name)
        flag = flag_of(opt.key or name)
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
