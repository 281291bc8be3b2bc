"""One-line failures shown in place ("nvml: GPU 2 lost", "processes: permission denied",
"sample failed: …"), while every other part of the view stays live. Hidden when all is well.
It watches the app's ``status``. New text on as many lines is repainted in place: a layout of
the whole screen (about ten times a repaint's cost) is asked for only when the height changes,
so a warning whose figures move every second ("full in about 27 min") costs what a figure does."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from vramtop.widgets.flow import flow


class StatusLine(Widget):
    DEFAULT_CSS = """
    StatusLine { height: auto; max-height: 4; color: $warning; }
    StatusLine.-empty { display: none; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.messages: tuple[str, ...] = ()
        self.add_class("-empty")

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda lines: self.show(tuple(lines or ())))

    def show(self, messages: tuple[str, ...]) -> None:
        if messages == self.messages:
            return
        height = len(self._lines(self.size.width)) if self.messages else 0
        self.messages = messages
        self.set_class(not messages, "-empty")
        if messages and len(self._lines(self.size.width)) == height:
            self.refresh()
        else:
            self.refresh(layout=True)

    def _lines(self, width: int) -> list[Content]:
        pieces = [Content.assemble(("⚠ ", "bold"), m) for m in self.messages]
        return flow(pieces, max(width, 1), Content("  "))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.size.width))
