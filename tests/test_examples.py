"""The README's examples, and the shell examples of docs/*.md, run as printed, in order, in an
empty folder, with the exit code they state (0 unless a comment says ``exit N``, or a console
example prints ``Error:`` (2) or ``echo $?``). A doc skips an example only through a visible
``# long: ...`` or ``# needs X`` comment."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_examples() -> list[tuple[str, int]]:
    """``(command, expected exit code)`` for each line of the README's "More examples" block."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## More examples") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    examples = []
    for line in block.group(1).splitlines():
        command, _, comment = line.partition("  #")
        if not command.startswith("xavinit "):
            continue
        code = re.search(r"exit (\d)", comment)
        examples.append((command.strip(), int(code.group(1)) if code else 0))
    return examples


def test_the_readme_block_has_every_command():
    commands = {shlex.split(c)[1] for c, _ in readme_examples()}
    assert {"init", "check", "propagate", "train", "sweep", "report", "schemes", "data"} <= commands


def test_readme_examples_run_as_printed(tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    for command, expected in readme_examples():
        args = [sys.executable, "-m", "xavinit", *shlex.split(command)[1:]]
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == expected, (command, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, command


DOCS = ["usage", "check", "report", "ci", "propagate", "sweep", "train", "gain", "backends"]
RUNNABLE = ("xavinit ", "python -c ")


def _commands(lines: list[str], console: bool) -> list[tuple[str, list[str]]]:
    """Each command of a block with the output lines printed after it (none in a bash block).

    A command goes on while its line ends with a backslash or a quote is still open."""
    commands: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if console:
            if not line.startswith("$ "):
                if commands:
                    commands[-1][1].append(line)
                continue
            line = line[2:]
        parts = [line]
        while parts[-1].endswith("\\") or not _balanced("\n".join(parts)):
            if i == len(lines):
                break
            parts.append(lines[i])
            i += 1
        commands.append(("\n".join(parts), []))
    return commands


def _balanced(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def _skip_reason(comment: str) -> str | None:
    """Why a commented example cannot run here: ``# long: ...`` always, ``# needs X`` unless X
    is a program on PATH or an importable module, or each of ``X and Y`` is (``# needs a Dask
    cluster`` never)."""
    if re.search(r"\blong:", comment):
        return comment.strip(" #")
    need = re.search(r"\bneeds (.*)", comment)
    if need:
        wanted = need.group(1).split(" and ")
        if wanted[0].split()[0] in ("a", "an", "the") or not all(
            shutil.which(what) or find_spec(what) for what in wanted
        ):
            return comment.strip(" #")
    return None


def doc_examples(name: str) -> list[tuple[str, int, str | None]]:
    """``(command, expected exit code, reason to skip or None)`` for each ``xavinit`` or
    ``python -c`` command of a doc's bash and console blocks, in order.

    The exit code is the comment's ``exit N``, else in a console block 2 when an ``Error:``
    line follows and N when ``$ echo $?`` prints N, else 0."""
    text = (ROOT / "docs" / f"{name}.md").read_text()
    examples = []
    for kind, body in re.findall(r"^```(bash|console)\n(.*?)^```", text, re.S | re.M):
        console = kind == "console"
        commands = _commands(body.splitlines(), console)
        for j, (command, output) in enumerate(commands):
            if not command.startswith(RUNNABLE):
                continue
            comment = command.splitlines()[-1].partition("  #")[2]
            code = re.search(r"exit (\d+)", comment)
            following = commands[j + 1][0] if j + 1 < len(commands) else ""
            if code:
                expected = int(code.group(1))
            elif console and output and output[0].startswith("Error:"):
                expected = 2
            elif console and following == "echo $?" and commands[j + 1][1]:
                expected = int(commands[j + 1][1][0])
            else:
                expected = 0
            examples.append((command, expected, _skip_reason(comment)))
    return examples


@pytest.mark.parametrize("name", DOCS)
def test_doc_examples_run_as_printed(name, tmp_path):
    """Each doc's examples run in order in an empty folder, ``xavinit`` as ``python -m
    xavinit``, through bash (pipes, globs and redirections as printed; ``set -o pipefail``)."""
    examples = doc_examples(name)
    assert examples, name
    bin_dir = tmp_path / ".bin"
    bin_dir.mkdir()
    for program, line in (("xavinit", '-m xavinit "$@"'), ("python", '"$@"')):
        (bin_dir / program).write_text(f'#!/bin/sh\nexec "{sys.executable}" {line}\n')
        (bin_dir / program).chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "COLUMNS": "120",
        "OMP_NUM_THREADS": "1",  # a 2-core machine shared with other jobs: no thread contention
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
    }
    for command, expected, skip in examples:
        if skip and command.startswith("python -c "):
            pytest.skip(f"docs/{name}.md: {skip}; the examples after it read the files it makes")
        if skip:
            continue
        proc = subprocess.run(
            ["bash", "-c", "set -o pipefail\n" + command],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode == expected, (command, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, command


def test_every_doc_command_is_collected():
    """No ``xavinit`` line of a doc's bash or console block slips past the parser."""
    for name in DOCS:
        text = (ROOT / "docs" / f"{name}.md").read_text()
        blocks = re.findall(r"^```(bash|console)\n(.*?)^```", text, re.S | re.M)
        prompt = {"bash": "xavinit ", "console": "$ xavinit "}
        printed = sum(
            line.startswith(prompt[kind]) for kind, block in blocks for line in block.splitlines()
        )
        collected = sum(c.startswith("xavinit ") for c, _, _ in doc_examples(name))
        assert (name, collected) == (name, printed)


def test_skip_markers():
    assert _skip_reason("  # long: about 5 minutes") == "long: about 5 minutes"
    assert _skip_reason(" needs a Dask cluster") == "needs a Dask cluster"
    assert _skip_reason(" needs sh") is None  # a program on PATH
    assert _skip_reason(" needs json and sh") is None  # a module and a program
    assert _skip_reason(" needs no-such-program-xyz") == "needs no-such-program-xyz"
    assert _skip_reason(" PyTorch nn.Linear") is None
