"""A bare Textual app that shows one modal dialog and keeps what it returns, for tests of a dialog
on its own (the stop dialog, with real processes behind it)."""

from __future__ import annotations

from textual.app import App
from textual.screen import ModalScreen


class DialogHost(App):
    def __init__(self, dialog: ModalScreen) -> None:
        super().__init__()
        self.dialog = dialog
        self.outcomes: list = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.outcomes.append)
