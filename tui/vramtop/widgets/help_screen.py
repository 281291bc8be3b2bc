"""The ``?`` screen: every key, by the panel where it works, built from the bindings themselves
so it cannot drift from what the keys do."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static


def _key_text(binding: Binding) -> str:
    names = {"question_mark": "?", "slash": "/", "space": "space", "enter": "enter", "escape": "esc"}
    return ", ".join(binding.key_display or names.get(k, k) for k in binding.key.split(","))


def help_text(sections: list[tuple[str, list[BindingType]]]) -> Content:
    lines: list[Content] = []
    for title, bindings in sections:
        lines.append(Content(title).stylize("bold $accent"))
        for b in bindings:
            if isinstance(b, Binding) and b.description:
                lines.append(Content.assemble((f"  {_key_text(b):>12}  ", "bold"), b.description))
        lines.append(Content(""))
    lines.append(Content("ctrl+p opens the command palette: every action, and the themes.").stylize("dim"))
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close", show=True)]

    def __init__(self, sections: list[tuple[str, list[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "vramtop keys"
            yield Static(help_text(self.sections), id="help-text")
