"""Documents as blocks (verdict, heading, text, table), emitted as Markdown or HTML.

The Markdown and HTML renderings are built from the same blocks, so they say the same thing.
Inline code is written with backticks in block text and cells (```scheme```), as in Markdown.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    """One block: ``kind`` is verdict, heading, text or table."""

    kind: str
    text: str = ""
    passed: bool | None = None
    level: int = 3
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


class Blocks(list[Block]):
    """A list of blocks with one method per kind."""

    def verdict(self, text: str, passed: bool | None) -> None:
        self.append(Block("verdict", text, passed=passed))

    def heading(self, text: str, level: int = 3) -> None:
        self.append(Block("heading", text, level=level))

    def text(self, text: str) -> None:
        self.append(Block("text", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.append(Block("table", header=tuple(header), rows=tuple(tuple(r) for r in rows)))


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown: bold verdict, ``#`` headings, pipe tables."""
    parts: list[str] = []
    for block in blocks:
        if block.kind == "verdict":
            parts.append(f"**{block.text}**")
        elif block.kind == "heading":
            parts.append("#" * block.level + " " + block.text)
        elif block.kind == "text":
            parts.append(block.text)
        else:
            lines = [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in block.header) + " |",
                "|" + "|".join("---" for _ in block.header) + "|",
            ]
            lines += [
                "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                for row in block.rows
            ]
            parts.append("\n".join(lines))
    return "\n\n".join(parts).rstrip() + "\n"


_CODE = re.compile(r"`([^`]*)`")


def inline_html(text: str) -> str:
    """Escape text for HTML, turning ```code``` spans into ``<code>`` and **bold** into <b>."""
    escaped = html.escape(text, quote=False)
    escaped = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def to_html(blocks: list[Block]) -> str:
    """An HTML fragment: the verdict as a coloured banner, tables with a header row."""
    parts: list[str] = []
    for block in blocks:
        if block.kind == "verdict":
            state = "pass" if block.passed else "fail"
            parts.append(f'<p class="verdict {state}">{inline_html(block.text)}</p>')
        elif block.kind == "heading":
            level = min(max(block.level, 1), 6)
            parts.append(f"<h{level}>{inline_html(block.text)}</h{level}>")
        elif block.kind == "text":
            parts.append(f"<p>{inline_html(block.text)}</p>")
        else:
            head = "".join(f"<th>{inline_html(cell)}</th>" for cell in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{_cell(cell)}</td>" for cell in row) + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def _cell(cell: str) -> str:
    """A table cell; the Markdown's emoji marks become plain marks (no emoji font needed)."""
    content = inline_html(cell)
    content = content.replace("✅", '<span class="good">✓</span>')
    return content.replace("❌", '<span class="bad">✗</span>')
