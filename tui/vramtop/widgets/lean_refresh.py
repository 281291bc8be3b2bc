"""A panel's repaint of part of itself reaches its screen in the same call.

Textual's ``Widget.refresh(*regions)`` marks the regions dirty and prompts the widget's own
message loop; at that loop's next idle the widget tells its screen (``messages.Update``), and the
screen repaints on its update timer. The panels that repaint on every tick of a busy node (the
GPU bars, the process table, the header, the detail line) each woke their own loop for that
round every tick: a prompt, an idle event and their dispatch, to pass on what the panel knew
already. ``PromptlessRefresh.refresh`` does for a repaint what Textual's does and then what the
idle round would do (``_check_refresh``), at once. A layout, a recompose, a widget not mounted
yet, and a Textual whose widgets lack what this relies on go through Textual's own ``refresh``.
"""

from __future__ import annotations

from typing import Any

from textual.geometry import Region

# What a repaint touches on a mounted widget, as Textual's refresh does, and its idle round.
_USES = ("_is_mounted", "_layout_cache", "_set_dirty", "clear_cached_dimensions", "_rich_style_cache",
         "_repaint_required", "_check_refresh")
_fits: bool | None = None  # whether widgets have all of it: found on the first repaint


class PromptlessRefresh:
    """Mixed into a widget class before Textual's: its repaints tell the screen at once. (Not a
    Widget itself: a widget's class attributes, its focus and its CSS, stay its Textual base's.)"""

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False,
                **rest: Any) -> Any:
        global _fits
        if _fits is None:
            _fits = all(hasattr(self, name) for name in _USES)
        if layout or recompose or not repaint or rest or not _fits or not self._is_mounted:
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose, **rest)
        self._layout_cache.clear()
        self._set_dirty(*regions)
        self.clear_cached_dimensions()
        self._rich_style_cache.clear()
        self._repaint_required = True
        self._check_refresh()
        return self
