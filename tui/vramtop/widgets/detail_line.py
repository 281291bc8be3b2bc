"""The lines under the process table: everything about the highlighted row, its fields joined by
" · " (``Row.detail``, with its instance's telemetry).

The row's memory figure moves on every tick of a busy node, so its lines are styled pieces drawn
straight into strips (``pieces.py``), not ``Content``: a new figure costs its strip and a repaint
from the first cell that changed, where a ``Static`` laid out and wrote both lines again. The
words flow onto the lines the widget is tall (CSS: two, one in the medium layout), breaking only
between words as a ``Static`` wraps; what does not fit goes on the last line, cut with an
ellipsis. Text is plain, never markup; control characters show as U+FFFD.
"""

from __future__ import annotations

import re

from rich.cells import cell_len
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from vramtop.widgets.lean_refresh import PromptlessRefresh
from vramtop.widgets.pieces import Line, PieceStyles, printable, repaint_span

_WORD = re.compile(r"\s*\S+\s*")  # a word and the spaces around it, as Rich's wrap (a Static's) reads text


def detail_lines(text: str, width: int, height: int) -> list[Line]:
    """``text`` in at most ``height`` lines of ``width`` cells, the last holding the rest. A word
    goes on a line where it fits, the spaces after it not counted, as a ``Static`` wraps; a line's
    trailing spaces are dropped (a word wider than a line is not folded: it has a line of its own).
    Each word is a piece: a repaint starts at the first that changed."""
    lines: list[list[str]] = []
    room = 0
    for word in _WORD.findall(printable(text)):
        if lines and (cell_len(word.rstrip()) <= room or len(lines) == height):
            lines[-1].append(word)
        else:
            lines.append([word])
            room = width
        room -= cell_len(word)
    for line in lines:
        line[-1] = line[-1].rstrip() if line is not lines[-1] else line[-1]
    return [Line((chunk, ()) for chunk in line) for line in lines[:max(height, 0)]]


class DetailLine(PromptlessRefresh, Widget):
    """Shows one text; ``show`` repaints the cells that changed."""

    ALLOW_SELECT = False  # its lines are drawn as strips, without the cell offsets selection reads

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._text = ""
        self._styles = PieceStyles(128)
        self._laid: tuple = ()  # (text, width, height, its lines)

    def show(self, text: str) -> None:
        if text == self._text:
            return
        width, height = self.size
        before = self._lines(width, height)
        self._text = text
        span = repaint_span(before, self._lines(width, height), width)
        if span is not None and height:
            self.refresh(Region(span[0], 0, span[1] - span[0], height))

    @property
    def text(self) -> str:
        """The text shown, as given (``lines``: as drawn)."""
        return self._text

    @property
    def lines(self) -> list[str]:
        """The text as drawn at the widget's size, a string a line."""
        return [line.plain for line in self._lines(*self.size)]

    def _lines(self, width: int, height: int) -> list[Line]:
        if self._laid[:3] != (self._text, width, height):  # asked for by each line drawn
            self._laid = (self._text, width, height, detail_lines(self._text, width, height))
        return self._laid[3]

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        lines = self._lines(width, height)
        if y >= len(lines):
            return Strip.blank(width, self.visual_style.rich_style)
        return self._styles.strip(self, lines[y], width)
