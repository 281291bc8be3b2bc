"""Lines made of styled pieces, drawn straight into strips: for lines that change every tick.

A ``Line`` is a tuple of ``(text, styles)`` pieces; ``styles`` names Textual styles (theme
variables such as ``$vram-used``, ``bold``, or ``.name``: the widget's component class, for a
colour only CSS resolves, such as ``$text-muted``), later names over earlier ones, as nested
spans of ``Content`` combine. ``PieceStyles`` turns a line into a ``Strip`` for one widget: each
piece's segment is kept by its text and styles, each style resolved once per look of the widget
(a theme change resolves them again). Drawing a GPU bar this way costs a small part of what
``Content`` costs it (wrapping, spans and per-cell offsets on every repaint), and the bars
repaint on every tick of a node whose memory moves. Text is plain, never markup; control
characters (any local user names a process) show as U+FFFD.
"""

from __future__ import annotations

import unicodedata
from typing import Iterable, Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

Piece = tuple[str, tuple[str, ...]]
ELLIPSIS = "…"


class Line(tuple):
    """A line's pieces, in order."""

    @classmethod
    def assemble(cls, *lines: Line) -> Line:
        return cls(piece for line in lines for piece in line)

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self)

    @property
    def cell_length(self) -> int:
        """The cells the line draws (a control character is drawn as U+FFFD, one cell)."""
        return sum(_cells(text) for text, _ in self)

    def restyled(self, style: str) -> Line:
        """The line with ``style`` over every piece's own (a stale line greys at once)."""
        return Line((text, (*styles, style)) for text, styles in self)


def printable(text: str) -> str:
    """``text`` with control characters replaced: never sent to a terminal."""
    if text.isprintable():
        return text
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" else c for c in text)


SNAP = 8  # a repaint of changed lines starts and ends at a multiple of this many cells (or the line's end)


# A short piece's text -> its cells as drawn: most of a tick's pieces were the last tick's. Cleared
# when full (a tick of 16 GPUs' lines brings some 100 new texts); a longer text (a command line in
# the detail line) is measured each time, not kept alive here.
_WIDTHS: dict[str, int] = {}
_WIDTHS_MAX, _WIDTHS_TEXT = 1024, 64


def _cells(text: str) -> int:
    cells = _WIDTHS.get(text)
    if cells is None:
        cells = cell_len(printable(text))
        if len(text) <= _WIDTHS_TEXT:
            if len(_WIDTHS) >= _WIDTHS_MAX:
                _WIDTHS.clear()
            _WIDTHS[text] = cells
    return cells


def changed_cells(old: Line, new: Line) -> tuple[int, int] | None:
    """The cells ``(start, end)`` from the first at which ``new`` draws differently from ``old``
    to the one after the last (None where nothing does): the pieces they share at either end
    are the same cells, so only the first ones are measured, and the last ones where the pieces
    between differ in width. One walk over each line; a GPU's bar repaints every tick of a
    node whose memory moves."""
    if old == new:
        return None
    shorter = min(len(old), len(new))
    head = 0
    while head < shorter and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < shorter - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    start = sum(_cells(text) for text, _ in old[:head])
    widths = [sum(_cells(text) for text, _ in line[head:len(line) - tail]) for line in (old, new)]
    if widths[0] == widths[1]:
        return start, start + widths[0]
    return start, start + max(widths) + sum(_cells(text) for text, _ in old[len(old) - tail:])


def repaint_span(old: Sequence[Line], new: Sequence[Line], width: int) -> tuple[int, int] | None:
    """The cells, ``(start, end)``, of lines ``new`` drawn ``width`` cells wide that may draw
    differently from ``old``, the lines drawn before in their place (a repaint writes only those:
    lean_updates): from the first change to the end of the last, snapped out to multiples of
    ``SNAP`` cells; None where nothing changed. A GPU whose load moved repaints its figures, not
    its head and bar before them or its name after. Textual keeps each region a widget asks to
    repaint until the widget is repainted whole: snapped, the regions recur, where the edge of a
    bar's fill or a figure's first digit would make one for every cell."""
    if len(old) != len(new):
        return (0, width) if width else None
    spans = [span for a, b in zip(old, new) if (span := changed_cells(a, b)) is not None]
    if not spans or not width:
        return None
    start = min(min(x for x, _ in spans), width - 1) // SNAP * SNAP
    end = min(width, -(-max(end for _, end in spans) // SNAP) * SNAP)
    return start, max(end, min(width, start + SNAP))


def joined(parts: Iterable[tuple[str, RichStyle]]) -> list[Segment]:
    """``(text, style)`` parts as segments, neighbours of one look as one segment, as
    ``Segment.simplify`` merges them (Rich's styles are equal where their hashes are: its own
    comparison), empty parts left out: the compositor and the terminal's output pay per segment
    (the same line in fewer bytes)."""
    runs: list[list] = []  # [texts, style, its hash]
    for text, style in parts:
        if not text:
            continue
        if runs and runs[-1][1] is style:
            runs[-1][0].append(text)
            continue
        look = hash(style)
        if runs and runs[-1][2] == look:
            runs[-1][0].append(text)
        else:
            runs.append([[text], style, look])
    return [Segment(texts[0] if len(texts) == 1 else "".join(texts), style) for texts, style, _ in runs]


class PieceStyles:
    """The segments of pieces as one widget draws them, kept across repaints."""

    def __init__(self, size: int = 512) -> None:
        self._look: Style | None = None  # the widget's style the kept segments were drawn on
        self._styles: dict[tuple[str, ...], RichStyle] = {}
        self._size = size
        # piece -> ((its text as drawn, its style), its cells): a line is a sum and a join, where
        # segments measured their text and were merged by Segment.simplify on every repaint.
        self._kept: dict[Piece, tuple[tuple[str, RichStyle], int]] = {}

    def clear(self) -> None:
        """Forget every resolved style: the theme changed."""
        self._look = None
        self._styles.clear()
        self._kept.clear()

    def strip(self, widget: Widget, line: Line, width: int) -> Strip:
        """``line`` as a strip of ``width`` cells on ``widget``: cut with an ellipsis or padded."""
        look = widget.visual_style
        if look is not self._look:
            self.clear()
            self._look = look
        kept = self._kept
        parts: list[tuple[str, RichStyle]] = []
        length = 0
        for piece in line:
            made = kept.get(piece)
            if made is None:
                if not piece[0]:
                    continue
                if len(kept) >= self._size:  # a bound, not a recency order: a tick's pieces are made again
                    kept.clear()
                text = printable(piece[0])
                made = kept[piece] = ((text, self._style(widget, piece[1])), cell_len(text))
            parts.append(made[0])
            length += made[1]
        if length > width > 0:
            segments = [*Strip(joined(parts)).crop(0, width - 1), Segment(ELLIPSIS, parts[-1][1])]
            return Strip(Segment.simplify(segments)).adjust_cell_length(width, look.rich_style)
        if length < width:
            parts.append((" " * (width - length), look.rich_style))
            length = width
        return Strip(joined(parts), length).adjust_cell_length(width, look.rich_style)

    def _style(self, widget: Widget, styles: tuple[str, ...]) -> RichStyle:
        rich = self._styles.get(styles)
        if rich is None:
            look = self._look
            combined = Style.combine([look, *(widget._get_style(name) for name in styles)])
            rich = self._styles[styles] = (look + combined).rich_style
        return rich
