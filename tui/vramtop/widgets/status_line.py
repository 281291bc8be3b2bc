"""One-line failures shown in place ("nvml: GPU 2 lost", "processes: permission denied",
"sample failed: …"), while every other part of the view stays live. Hidden when all is well.
It watches the app's ``status``. It takes at most ``MAX_LINES`` lines, a message longer than one
is cut with "…", and what does not fit is counted at the end ("+93 more").

It sits at the top of the main column, over the GPU panel: the lines it takes come from the
process table, and the header and the side column never move for it. New text on as many lines
is repainted in place; a layout (ten times a repaint's cost) comes only when it needs more lines.
A line that goes keeps its room, blank, for ``HOLD_S``: a warning that comes and goes every few
seconds (a process whose memory grows, then drops) neither moves the panels up and down nor lays
them out each time.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.timer import Timer
from textual.widget import Widget

from vramtop.widgets.flow import flow, line_counts

HOLD_S = 10.0
MAX_LINES = 4
GAP = Content("  ")
MARK = ("⚠ ", "bold")
MARK_CELLS = cell_len(MARK[0])


def _piece(message: str) -> Content:
    return Content.assemble(MARK, message)


def _flow(messages: tuple[str, ...], width: int) -> list[Content]:
    """Pieces are made for the messages shown, not for all (a node whose thousand processes all
    grow has hundreds of warnings, and they change on every telemetry poll)."""
    counts = line_counts([MARK_CELLS + cell_len(m) for m in messages], width, GAP.cell_length)
    if len(counts) <= MAX_LINES:
        return flow([_piece(m) for m in messages], width, GAP)
    shown = sum(counts[:MAX_LINES])
    pieces = [_piece(m) for m in messages[:shown]]
    while True:  # drop pieces from the end until the count fits on the last line
        more = Content(f"+{len(messages) - shown} more").stylize("bold")
        lines = flow([*pieces[:shown], more], width, GAP)
        if len(lines) <= MAX_LINES or shown == 0:
            return lines[:MAX_LINES]
        shown -= 1


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine { height: auto; color: $warning; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusLine.-empty { display: none; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.messages: tuple[str, ...] = ()
        self._room = 0  # the lines it took at the last layout; 0 while hidden
        self._hold = 0  # the lines it keeps while lines that went still hold their room
        self._shrink: Timer | None = None  # gives that room back
        self._flowed: tuple = ()  # (messages, width, their lines)
        self.add_class("-empty")

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda lines: self.show(tuple(lines or ())))

    def show(self, messages: tuple[str, ...]) -> None:
        if messages == self.messages:
            return
        self.messages = messages
        if not self._room:  # hidden: its width is known once it is laid out
            self.set_class(not messages, "-empty")
            self.refresh(layout=True)
            return
        lines = len(self._lines(self.size.width)) if messages else 0
        if lines < self._room:
            if self._shrink is None:
                self._hold = self._room
                self._shrink = self.set_timer(HOLD_S, self._give_back_room)
            self.refresh()
            return
        if self._shrink is not None:
            self._shrink.stop()
            self._shrink = None
            self._hold = 0
        self.refresh(layout=lines != self._room)

    def _give_back_room(self) -> None:
        self._shrink = None
        self._hold = 0
        if not self.messages:
            self._room = 0
            self.add_class("-empty")
        self.refresh(layout=True)

    def _lines(self, width: int) -> list[Content]:
        """At most ``MAX_LINES``; where the messages need more, the last line ends in how many
        are not shown ("+93 more": a node whose thousand processes all grow)."""
        if self._flowed[:2] != (self.messages, width):
            self._flowed = (self.messages, width, _flow(self.messages, max(width, 1)))
        return self._flowed[2]

    def get_content_height(self, container, viewport, width: int) -> int:
        self._room = max(len(self._lines(width)), self._hold)
        return self._room

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.size.width))
