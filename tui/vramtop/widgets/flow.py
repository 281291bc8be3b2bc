"""Lay short figures of text into lines of a given width, breaking only between figures.

The header and the status line use it so that, in a 40-column pane, a figure moves to the next
line whole instead of being cut. A figure is anything with a ``cell_length`` whose class
``assemble``-s figures into one: Textual's ``Content``, or a ``Line`` of styled pieces.
"""

from __future__ import annotations

from typing import TypeVar

from textual.content import Content

from vramtop.widgets.pieces import Line

SEPARATOR = Line([(" · ", ("dim",))])

Figure = TypeVar("Figure", Content, Line)


def line_counts(lengths: list[int], width: int, gap: int) -> list[int]:
    """How many figures of these cell lengths each line takes, ``gap`` cells between two on a
    line (a figure longer than a line gets a line of its own)."""
    counts: list[int] = []
    used = 0
    for length in lengths:
        if counts and used + gap + length <= width:
            counts[-1] += 1
            used += gap + length
        else:
            counts.append(1)
            used = length
    return counts


def flow(figures: list[Figure], width: int, separator: Figure = SEPARATOR) -> list[Figure]:
    """Lines of at most ``width`` cells, as ``line_counts`` breaks them."""
    lines: list[Figure] = []
    start = 0
    for count in line_counts([f.cell_length for f in figures], width, separator.cell_length):
        line = figures[start]
        for figure in figures[start + 1:start + count]:
            line = type(line).assemble(line, separator, figure)
        lines.append(line)
        start += count
    return lines
