"""A line-API widget's drawing geometry (its width and scroll), read once for all the lines of a
repaint.

Each read of a widget's size, content region or scroll offset walks up to its screen and looks
up its region; a repaint of forty lines read them forty times. ``GeometryOnce.render_lines`` takes
the widget's ``_geometry()`` once, for its ``render_line`` to read from ``_drawing``; a line asked
for outside a repaint takes ``_geometry()`` itself.
"""

from __future__ import annotations

from typing import Any

from textual.geometry import Region
from textual.strip import Strip


class GeometryOnce:
    """Mixed into a line-API widget class before Textual's (not a Widget itself, as
    ``PromptlessRefresh``); the widget says what its lines are drawn from in ``_geometry``."""

    _drawing: Any = None  # what ``_geometry()`` gave, while ``render_lines`` runs

    def _geometry(self) -> tuple:
        raise NotImplementedError

    def render_lines(self, crop: Region) -> list[Strip]:
        self._drawing = self._geometry()
        try:
            return super().render_lines(crop)  # type: ignore[misc]
        finally:
            self._drawing = None
