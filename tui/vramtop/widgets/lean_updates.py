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
character cut in two would be written as a space over its other half. Everything else is
Textual's: the spans, the pieces, their order, the line breaks.

Installed once; where Textual's update no longer looks the way this relies on, nothing is changed.
"""

from __future__ import annotations

import inspect
from typing import Any

from rich.cells import cell_len
from rich.control import Control
from textual._compositor import ChopsUpdate
from textual.strip import Strip

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


def render_segments(self: Any, console: Any) -> str:
    """The update as the terminal's bytes: each span's cells, from the span's left edge."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops, chop_ends = self.chops, self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        for end, (x, strip) in zip(chop_ends[y], chops[y].items()):
            if strip is None or x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start = x1 - x if x < x1 and clean_cut(strip, x1 - x) else 0
            strip = strip.crop(start, min(end, x2) - x)
            append(move_to(x + start, y).segment.text)
            append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


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
