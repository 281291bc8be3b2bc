"""A panel's repaint of part of itself reaches its screen in the same call, with no message.

Textual's ``Widget.refresh(*regions)`` marks the regions dirty and prompts the widget's own
message loop; at that loop's next idle the widget posts its screen an ``Update``, and the screen,
on each, adds the widget to the ones it will draw and prompts its own loop, whose idle starts its
update timer. The panels that repaint on every tick of a busy node (the GPU bars, the process
table, the header, the detail line) went through both rounds every tick: four widget rounds and
four ``Update`` messages, each a dispatch, to pass on what the panel knew already.
``PromptlessRefresh.refresh`` marks the regions as Textual's does and then does what the screen
does on an ``Update`` (adds the panel to its dirty widgets and prompts it, where nothing is queued
for it yet) at once. A layout, a recompose, a widget not mounted yet, and a Textual whose widgets
or screens lack what this relies on go through Textual's own ``refresh``.
"""

from __future__ import annotations

from typing import Any

from textual.dom import NoScreen
from textual.geometry import Region

# What a repaint touches on a mounted widget, as Textual's refresh does, and on its screen, as the
# screen's handling of an Update does.
_USES = ("_is_mounted", "_layout_cache", "_set_dirty", "clear_cached_dimensions", "_rich_style_cache", "_closing")
_SCREEN_USES = ("_compositor", "_dirty_widgets", "check_idle")
_fits: bool | None = None  # whether widgets and screens have all of it: found on the first repaint


class PromptlessRefresh:
    """Mixed into a widget class before Textual's: its repaints tell the screen at once. (Not a
    Widget itself: a widget's class attributes, its focus and its CSS, stay its Textual base's.)"""

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False,
                **rest: Any) -> Any:
        global _fits
        if _fits is None and not all(hasattr(self, name) for name in _USES):
            _fits = False
        if layout or recompose or not repaint or rest or _fits is False or not self._is_mounted:
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose, **rest)
        try:
            screen = self.screen
        except NoScreen:
            return super().refresh(*regions)
        if _fits is None:
            _fits = all(hasattr(screen, name) for name in _SCREEN_USES)
        if not _fits:
            return super().refresh(*regions)
        self._layout_cache.clear()
        self._set_dirty(*regions)
        self.clear_cached_dimensions()
        self._rich_style_cache.clear()
        if self.display and not self._closing and screen in screen._compositor:  # as Update is taken
            screen._dirty_widgets.add(self)
            screen.check_idle()
        return self
