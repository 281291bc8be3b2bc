"""Lines that Textual's ANSI colour filter would leave as they are keep no converted copy.

Textual passes every line a widget draws through the app's line filters; the first is
``ANSIToTruecolor`` (ANSI colours to the theme's truecolour, dim text to a blended colour). It
builds a new ``Strip`` of new segments for each line and keeps it in the line's filter cache,
even where no segment changes: vramtop draws in the theme's truecolours, so nearly every line on
screen was held twice, and a strip with its seven caches is about a kilobyte (at 8 GPUs x 64
processes, 0.7 MiB of RSS half a minute in, more as the screen's lines change).

``install`` wraps ``Strip.apply_filter``: for that filter, a line none of whose segments it
would change (each style maps to itself, no control codes, which the filter drops) is returned
as it is, the same text and styles the copy would hold. Any other line, and any other filter,
goes through Textual's own method. The verdict is kept in the line's filter cache, where the
copy was (a line is drawn many times). Installed once; where Textual's classes no longer look the
way this relies on, nothing is changed.
"""

from __future__ import annotations

from typing import Any

from textual.filter import ANSIToTruecolor
from textual.strip import Strip

_installed = False
_SAME = object()  # in a strip's filter cache: the filter gives the strip back as it is


def _unchanged(strip: Strip, line_filter: ANSIToTruecolor, background: Any) -> bool:
    """Whether ``line_filter`` would give back ``strip``'s segments as they are."""
    truecolor_style = line_filter.truecolor_style
    rich_background = background.rich_color
    for _, style, control in strip._segments:
        if control is not None:
            return False
        if style is not None and truecolor_style(style, rich_background) is not style:
            return False
    return True


def install() -> bool:
    """Wrap ``Strip.apply_filter`` (once); False where Textual's classes are not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(Strip, "apply_filter", None)
    if (original is None or "_segments" not in getattr(Strip, "__slots__", ())
            or not callable(getattr(ANSIToTruecolor, "truecolor_style", None))):
        return False

    def apply_filter(self: Strip, filter: Any, background: Any) -> Strip:
        if type(filter) is ANSIToTruecolor:
            key = (filter, background)
            cached = self._filter_cache.get(key)
            if cached is _SAME:
                return self
            if cached is None and _unchanged(self, filter, background):
                self._filter_cache[key] = _SAME  # the verdict, where Textual keeps its copy
                return self
        return original(self, filter, background)

    apply_filter.__doc__ = original.__doc__
    apply_filter.__wrapped__ = original  # type: ignore[attr-defined]
    Strip.apply_filter = apply_filter  # type: ignore[method-assign]
    _installed = True
    return True
