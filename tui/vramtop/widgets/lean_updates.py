"""A partial repaint writes the cells it was asked for, not the line from the widget's left edge.

A widget that repaints part of its lines asks Textual for a region; the compositor's update
(``ChopsUpdate.render_segments``) writes each widget's piece of such a line from the widget's left
edge to the region's end, whatever the region's left edge. A process whose memory alone moved
rewrote its PID, user and GPU cells to reach its VRAM cell, and a GPU whose load moved its name
and bar to reach the load: over SSH that is what a pane costs (``bench/race_nvitop.sh`` counts the
bytes). Textual's other rendering of the same update (``__rich_console__``) does start at the
region's edge.

``install`` replaces ``ChopsUpdate.render_segments`` with one that starts a piece at the region's
left edge where that edge falls between two segments, or inside a segment of ASCII text; anywhere
else (inside a run of wider characters) it starts at the piece's edge, as Textual does: a wide
character cut in two would be written as a space over its other half. A piece that starts where
a span ends is not written (Textual writes a cursor move to it and nothing). Everything else is
Textual's: the spans, the pieces, their order, the line breaks.

Each piece's output (``Strip.render``, see ``lean_sgr``) opens by setting its first style in full
and ends with a reset. Where one piece's reset would be followed at once by the next piece's
opening, the update writes the change from the one style to the other instead: a table's rows in
one look say their colours once per update, not once per row.

Installed once; where Textual's update no longer looks the way this relies on, nothing is changed.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

from vramtop.widgets.lean_sgr import RESET, change, sets_something
from vramtop.widgets.lean_strips import one_cell

_installed = False


def clean_cut(strip: Strip, cut: int) -> bool:
    """Whether cell ``cut`` of ``strip`` starts a character that no wider one before it covers."""
    at = 0
    for segment in strip:
        text = segment.text
        if at == cut:
            return True
        width = cell_len(text)
        if at + width > cut:
            return text.isascii()
        at += width
    return at == cut


def crop_once(strip: Strip, start: int, end: int) -> Strip:
    """``strip.crop(start, end)``, the same segments, for a piece an update writes once: not kept
    in the strip's cache (a cache made for one answer no one asks again), and where each
    character is one cell wide, measured by its length and cut by slicing, as Rich does."""
    segments = strip._segments
    if not one_cell(segments):
        return strip.crop(start, end)
    length = strip.cell_length
    start, end = max(0, start), min(length, end)
    if start == 0 and end == length:
        return strip
    if end <= start:
        return Strip([], 0)
    pos = 0
    rest = iter(segments)
    for segment in rest:  # the segment the crop starts in, from there
        text = segment.text
        if pos + len(text) > start:
            segment = Segment(text[start - pos:], segment.style)
            break
        pos += len(text)
    if end == length:
        return Strip([segment, *rest], length - start)
    out: list[Segment] = []
    pos = start
    while segment is not None:
        text = segment.text
        if pos + len(text) >= end:
            out.append(Segment(text[:end - pos], segment.style))
            break
        out.append(segment)
        pos += len(text)
        segment = next(rest, None)
    return Strip(out, end - start)


class _Pieces:
    """The update's output, piece by piece. Each piece's output ends with a reset, and opens by
    setting its first style in full; where a piece's closing reset is followed by a piece that
    opens so, the two are written as the change from the one style to the other (a cursor move or
    a line break between them changes no style): the rows of a table in one look say their colours
    once, not once a row."""

    __slots__ = ("out", "color_system", "held")

    def __init__(self, color_system: Any) -> None:
        self.out: list[str] = []
        self.color_system = color_system
        self.held: Style | None = None  # the style the terminal is left in, its reset not yet written

    def _style(self, segments: list, at: int) -> Style | None:
        """The style of segment ``at``, where it sets something and has no link; else None."""
        style = segments[at].style if segments else None
        return style if sets_something(style, self.color_system) and not style._link else None

    def add(self, move: str, strip: Strip, text: str) -> None:
        out, held, segments = self.out, self.held, strip._segments
        out.append(move)
        if held is not None:
            first = self._style(segments, 0)
            opening = None if first is None else change(None, first, self.color_system)
            if opening is not None and text.startswith(opening):
                text = change(held, first, self.color_system) + text[len(opening):]
            else:
                out.append(RESET)
        self.held = None
        if text.endswith(RESET) and (last := self._style(segments, -1)) is not None:
            self.held = last
            text = text[:-len(RESET)]
        out.append(text)

    def text(self) -> str:
        if self.held is not None:
            self.out.append(RESET)
        return "".join(self.out)


def move_to(x: int, y: int) -> str:
    """The cursor move to cell ``x`` of line ``y``, as Rich's ``Control.move_to`` writes it (one
    string, where Rich makes a control object and its segment for each piece written)."""
    return f"\x1b[{y + 1};{x + 1}H"


def render_segments(self: Any, console: Any) -> str:
    """The update as the terminal's bytes: each span's cells, from the span's left edge."""
    pieces = _Pieces(console._color_system or ColorSystem.TRUECOLOR)
    add, line_break = pieces.add, pieces.out.append
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items()):
            if strip is None or x >= x2 or end <= x1:  # Textual writes a cursor move alone where x == x2
                continue
            if x2 > x >= x1 and end <= x2:
                add(move_to(x, y), strip, strip.render(console))
                continue
            start = x1 - x if x < x1 and clean_cut(strip, x1 - x) else 0
            strip = crop_once(strip, start, min(end, x2) - x)
            add(move_to(x + start, y), strip, strip.render(console))
        if y != last_y:
            line_break("\n")
    return pieces.text()


def install() -> bool:
    """Replace ``ChopsUpdate.render_segments`` (once); False where Textual's update is not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(ChopsUpdate, "render_segments", None)
    if original is None or list(inspect.signature(original).parameters) != ["self", "console"]:
        return False
    probe = ChopsUpdate([{}], [(0, 0, 0)], [[]])
    if not all(hasattr(probe, name) for name in ("chops", "spans", "chop_ends")):
        return False
    render_segments.__wrapped__ = original  # type: ignore[attr-defined]
    ChopsUpdate.render_segments = render_segments  # type: ignore[method-assign]
    _installed = True
    return True
