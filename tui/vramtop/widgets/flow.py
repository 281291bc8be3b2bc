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


def flow(figures: list[Figure], width: int, separator: Figure = SEPARATOR) -> list[Figure]:
    """Lines of at most ``width`` cells (a figure longer than a line gets a line of its own)."""
    lines: list[Figure] = []
    line: Figure | None = None
    for figure in figures:
        if line is None:
            line = figure
        elif line.cell_length + separator.cell_length + figure.cell_length <= width:
            line = type(line).assemble(line, separator, figure)
        else:
            lines.append(line)
            line = figure
    if line is not None:
        lines.append(line)
    return lines
