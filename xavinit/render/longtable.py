"""Rich tables of many rows, laid out at thousands of rows a second, as Rich lays them out.

Rich renders every cell of a table through its whole machinery (measure, pad, wrap, crop,
align: about 0.1 ms a cell), so a table of 20,000 rows took 20 s. :func:`print_table_fast` gives
the same characters in the same styles: Rich measures a sample (for each column the cell with
the longest line and the cell with the longest word, which fix its measurement and so the
widths Rich computes), Rich draws the title, header, edges and caption of the table without its
rows, and the rows are written here, one segment per cell; only a cell that must wrap goes
through Rich. Tables this module cannot lay out exactly (row styles, lines between rows, a
footer, styled columns, Text with spans or its own justification) are printed by Rich as they
are.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from rich._wrap import divide_line
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

LONG_TABLE = 200
"""Rows from which a table's body is laid out here (below it Rich's own speed is fine)."""


def print_table_fast(console: Console, table: Table) -> None:
    """Print ``table`` on ``console`` exactly as ``console.print(table)`` would, fast for many
    rows (see the module docstring)."""
    if table.row_count >= LONG_TABLE and _simple(table):
        console.print(_Body(table), crop=False)  # its lines fit: no cropping, char by char
    else:
        console.print(table)


def _simple(table: Table) -> bool:
    """Whether the table uses only what :class:`_Body` reproduces."""
    return bool(
        table.box
        and table.show_edge
        and table.show_header
        and not table.show_footer
        and not table.show_lines
        and not table.row_styles
        and not table.leading
        and table.style in (None, "", "none")
        and table.padding == (0, 1, 0, 1)
        and table.pad_edge
        and not table.collapse_padding
        and not table.expand
        and all(not row.style and not row.end_section for row in table.rows)
        and all(
            not c.style and c.vertical == "top" and c.justify in ("left", "right", "center")
            for c in table.columns
        )
    )


def _measure(cell: Any) -> tuple[int, int]:
    """Rich's measurement of a str or Text cell's text (``Text.__rich_measure__``): its longest
    word and its longest line."""
    text = cell if isinstance(cell, str) else cell.plain
    if text.isascii() and text.isprintable():  # one line, a character a cell
        words = text.split()
        return (max(map(len, words)) if words else len(text)), len(text)
    lines = text.splitlines()
    longest = max(cell_len(line) for line in lines) if lines else 0
    words = text.split()
    return (max(cell_len(word) for word in words) if words else longest), longest


def _sample(table: Table) -> Table:
    """A copy of ``table`` with only the rows whose cells fix each column's measurement: the
    longest word (its minimum width) and the longest line (its maximum width)."""
    keep: set[int] = set()
    for column in table.columns:
        sizes = [_measure(cell) for cell in column._cells]
        keep.add(max(range(len(sizes)), key=lambda i: sizes[i][0]))
        keep.add(max(range(len(sizes)), key=lambda i: sizes[i][1]))
    rows = sorted(keep)
    sample = copy.copy(table)
    sample.columns = [
        dataclasses.replace(c, _cells=[c._cells[i] for i in rows]) for c in table.columns
    ]
    sample.rows = [table.rows[i] for i in rows]
    return sample


class _Body:
    """The renderable: Rich's frame of the table around rows written here."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        sample = _sample(table)
        max_width = options.max_width if table.width is None else table.width
        widths = sample._calculate_column_widths(
            console, options.update_width(max_width - sample._extra_width)
        )
        frame = copy.copy(table)
        frame.columns = [
            dataclasses.replace(c, _cells=[], width=w - 2, min_width=None, max_width=None)
            for c, w in zip(table.columns, widths, strict=True)
        ]
        frame.rows = []
        lines = list(Segment.split_lines(console.render(frame, options)))
        assert table.box is not None  # _simple
        box = table.box.substitute(options, safe=table.safe_box if table.safe_box is not None
                                   else console.safe_box)  # fmt: skip
        bottom = box.get_bottom(widths)
        cut = next(i for i, line in enumerate(lines) if "".join(s.text for s in line) == bottom)
        for line in lines[:cut]:
            yield from line
            yield Segment.line()
        yield from self._rows(console, options, widths, box)
        for line in lines[cut:]:
            yield from line
            yield Segment.line()

    def _rows(
        self, console: Console, options: ConsoleOptions, widths: list[int], box: Any
    ) -> Iterator[Segment]:
        """The body: each line one segment per run of one style (Rich then splits and crops
        lines segment by segment)."""
        table = self.table
        border = console.get_style(table.border_style or "") or None
        middle = (box.mid_left, box.mid_vertical, box.mid_right)
        foot = (box.foot_left, box.foot_vertical, box.foot_right)
        columns = [(c._cells, c.justify, c) for c in table.columns]
        count = table.row_count
        for index in range(count):
            left, divider, right = foot if index == count - 1 else middle
            cells = [
                _cell(console, options, column, cells[index], width, justify)
                for (cells, justify, column), width in zip(columns, widths, strict=True)
            ]
            for line_no in range(max(len(c) for c in cells)):
                parts: list[tuple[str, Style | None]] = [(left, border)]
                for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
                    if k:
                        parts.append((divider, border))
                    if line_no < len(cell):
                        parts.extend(cell[line_no])
                    else:
                        parts.append((" " * width, None))
                parts.append((right, border))
                parts.append(("\n", None))
                yield from _merged(parts)


def _merged(parts: list[tuple[str, Style | None]]) -> Iterator[Segment]:
    """Segments of ``(text, style)`` parts, neighbours of one style joined."""
    texts: list[str] = []
    current: Style | None = None
    for text, style in parts:
        if style != current and texts:
            yield Segment("".join(texts), current)
            texts = []
        current = style
        texts.append(text)
    if texts:
        yield Segment("".join(texts), current)


def _width(text: str) -> int:
    """Cells ``text`` takes on a terminal (its length when printable ASCII)."""
    return len(text) if text.isascii() and text.isprintable() else cell_len(text)


_TRAILING_SPACE = re.compile(r"\s+$")


def _wrapped(text: str, width: int, justify: str, overflow: Any) -> list[str]:
    """The lines of one-line ``text`` wrapped ``width`` cells wide, each exactly that wide, as
    Rich's ``Text.wrap`` gives them: broken where ``rich._wrap.divide_line`` breaks (folding
    long words when ``overflow`` is ``fold``), spaces past the width cut from a line's end,
    then justified (``Lines.justify``) and cut to the width (``Text.truncate``)."""
    offsets = [0, *divide_line(text, width, fold=overflow == "fold"), len(text)]
    lines = []
    for start, end in zip(offsets, offsets[1:], strict=False):
        line = text[start:end]
        if len(line) > width:  # Text.rstrip_end
            trailing = _TRAILING_SPACE.search(line)
            if trailing is not None:
                line = line[: -min(len(trailing.group()), len(line) - width)]
        if justify != "left":
            line = line.rstrip()
        size = cell_len(line)
        if size > width:  # Text.truncate
            line = (
                (set_cell_size(line, width - 1) + "…")
                if overflow == "ellipsis"
                else (set_cell_size(line, width))
            )
        if justify == "left":
            line += " " * (width - size)
        elif justify == "right":
            line = " " * (width - cell_len(line)) + line
        else:
            line = " " * ((width - cell_len(line)) // 2) + line
            line += " " * (width - cell_len(line))
        lines.append(line)
    return lines


def _cell(
    console: Console, options: ConsoleOptions, column: Any, cell: Any, width: int, justify: Any
) -> list[list[tuple[str, Style | None]]]:
    """The lines of one cell ``width`` wide, padding included, as ``(text, style)`` parts."""
    text: str | None = None
    style: Style | None = None
    if type(cell) is str:
        text = cell
    elif (
        isinstance(cell, Text)
        and not cell.spans
        and cell.justify is None
        and cell.overflow is None
        and cell.no_wrap is None
    ):
        text, style = cell.plain, (console.get_style(cell.style) or None)
    if text is not None and "\n" not in text and "\t" not in text:
        raw, text = text, text.rstrip()
        space = width - 2 - _width(text)
        if space >= 0:
            if justify == "right":
                text = " " * space + text
            elif justify == "center":
                text = " " * (space // 2) + text + " " * (space - space // 2)
            else:
                text = text + " " * space
            return [[(" ", None), (text, style), (" ", None)]]
        overflow = column.overflow or "fold"
        if (
            not column.no_wrap
            and width > 2
            and justify in ("left", "right", "center")
            and overflow in ("fold", "crop", "ellipsis")
        ):
            return [
                [(" ", None), (line, style), (" ", None)]
                for line in _wrapped(raw, width - 2, justify, overflow)
            ]
    render_options = options.update(
        width=width, justify=justify, no_wrap=column.no_wrap, overflow=column.overflow,
        height=None, highlight=column.highlight,
    )  # fmt: skip
    lines = console.render_lines(Padding(cell, (0, 1, 0, 1)), render_options, style=Style.null())
    return [[(segment.text, segment.style or None) for segment in line] for line in lines]
