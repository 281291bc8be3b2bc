"""Lay short pieces of text into lines of a given width, breaking only between pieces.

The header and the status line use it so that, in a 40-column pane, a figure moves to the next
line whole instead of being cut.
"""

from __future__ import annotations

from textual.content import Content

SEPARATOR = Content(" · ").stylize("dim")


def flow(pieces: list[Content], width: int, separator: Content = SEPARATOR) -> list[Content]:
    """Lines of at most ``width`` cells (a piece longer than a line gets a line of its own)."""
    lines: list[Content] = []
    line: Content | None = None
    for piece in pieces:
        if line is None:
            line = piece
        elif line.cell_length + separator.cell_length + piece.cell_length <= width:
            line = Content.assemble(line, separator, piece)
        else:
            lines.append(line)
            line = piece
    if line is not None:
        lines.append(line)
    return lines
