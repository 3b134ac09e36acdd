"""The README's examples run as printed, in order, in an empty folder, with the exit code their
comment states (0 unless it says ``exit N``)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

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
