"""Lay short pieces of text into lines of a given width, breaking only between pieces.

The header and the status line use it so that, in a 40-column pane, a figure moves to the next
line whole instead of being cut. A piece is anything with a ``cell_length`` whose class
``assemble``-s pieces into one: Textual's ``Content``, or a ``Line`` of styled pieces.
"""

from __future__ import annotations

from typing import TypeVar

from textual.content import Content

from vramtop.widgets.pieces import Line

SEPARATOR = Line([(" · ", ("dim",))])

Piece = TypeVar("Piece", Content, Line)


def flow(pieces: list[Piece], width: int, separator: Piece = SEPARATOR) -> list[Piece]:
    """Lines of at most ``width`` cells (a piece longer than a line gets a line of its own)."""
    lines: list[Piece] = []
    line: Piece | None = None
    for piece in pieces:
        if line is None:
            line = piece
        elif line.cell_length + separator.cell_length + piece.cell_length <= width:
            line = type(line).assemble(line, separator, piece)
        else:
            lines.append(line)
            line = piece
    if line is not None:
        lines.append(line)
    return lines
