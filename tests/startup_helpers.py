"""What a command line imports: run in a fresh interpreter, so that modules the test process
holds already do not hide an import."""

from __future__ import annotations

import ast
import subprocess
import sys

WATCHED = ("numpy", "scipy", "pydantic", "typer._adapters", "markdown_it", "xavinit.config")


def imported_by(argvs: list[list[str]], watched: tuple[str, ...] = WATCHED) -> list[str]:
    """The ``watched`` modules imported by running ``xavinit.cli.main`` on each of ``argvs``
    (output discarded, exit codes ignored)."""
    probe = (
        "import contextlib, io, sys\n"
        "from xavinit.cli import main\n"
        f"for argv in {argvs!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return list(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
