"""Text that came from a file or the command line, made safe to show (a leaf: standard library).

A tensor name, a file name or a value read from a file can hold anything: bytes that are not
UTF-8 (a file name on a Linux disk), terminal escape sequences, newlines, Rich markup, Markdown
table syntax, or 20,000 characters. :func:`printable` is the one place that turns such text into
one line of visible characters: undecodable bytes and control characters become backslash
escapes (``\\xff``, ``\\x1b``, ``\\n``), so the text shows what is there without acting on the
terminal, and :func:`shorten` bounds it for messages. :func:`printable_strings` does it to a
whole result document before the renderers for people see it; they add their own escaping on
top (the result console reads no Rich markup, ``|`` in Markdown cells, HTML entities).
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, limit: int | None = None) -> str:
    """``text`` as visible characters on one line: lone surrogates (undecodable bytes of a file
    name) as ``\\xNN``, control characters as ``\\n``, ``\\x1b``...; cut to ``limit``
    characters when given (:func:`shorten`)."""
    if not text.isprintable() or _has_surrogates(text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        text = _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
    return shorten(text, limit) if limit is not None else text


def printable_strings(data: Any) -> Any:
    """Plain data (dicts, lists, strings, numbers) with every string, dict keys included, made
    :func:`printable`: what a renderer for people (a terminal table, Markdown, HTML) is given,
    so that no name read from a file reaches it as anything but one line of visible text."""
    kind = type(data)
    if kind is str:
        return printable(data)
    if kind is dict:
        return {
            printable(k) if type(k) is str else k: v if type(v) in _LEAVES else printable_strings(v)
            for k, v in data.items()
        }
    if kind is list or kind is tuple:
        return [v if type(v) in _LEAVES else printable_strings(v) for v in data]
    return data


_LEAVES = frozenset({float, int, bool, type(None)})


def shorten(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
