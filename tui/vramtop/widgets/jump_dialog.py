"""``g`` in a replay: one line asking where to jump; the replay source reads the answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class JumpDialog(ModalScreen[str | None]):
    """Returns the typed text on enter, None on escape."""

    DEFAULT_CSS = """
    JumpDialog { align: center middle; }
    JumpDialog > Vertical { width: 64; max-width: 100%; height: auto; border: round $accent; padding: 0 1;
                            background: $panel; }
    JumpDialog #jump-hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Jump to · now {self.where}", markup=False)
            yield Input(placeholder="14:02  ·  +5:00  ·  now-30s", id="jump-to")
            yield Static("clock time, time from the start (+), or from now", id="jump-hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
