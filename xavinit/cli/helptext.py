"""A command's docstring as ``--help`` shows it."""

from __future__ import annotations

import inspect
import re


def reflow(doc: str) -> str:
    """A docstring for ``--help``: each prose paragraph on one line (the terminal wraps it at its
    own width), example lines (indented, or after ``Examples:``) kept as they are."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if any(line.startswith(" ") or line.startswith("xavinit ") for line in lines):
            out.append("\n".join(re.sub(r"\s{3,}#", "  #", line) for line in lines))
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)
