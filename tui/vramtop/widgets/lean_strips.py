"""Lines on screen keep less: no copy the ANSI colour filter would not change, no self-reference.

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
copy was (a line is drawn many times).

It wraps ``Strip.divide`` too. The compositor divides each line it draws at the edges of the
widgets on that row; a line cut only at its own end is its own one piece, and Textual kept that
answer, ``[line]``, in the line's divide cache: each such line referred to itself, so it outlived
its last use until a cyclic collection found it (with its caches and its rendered text), and at
a tick's allocation rate that is many lines. The answer is now given and not kept: a line that
is no longer drawn is freed at once. Other cuts go through Textual's own method.

Installed once; where Textual's classes no longer look the way this relies on, nothing is
changed.
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
    """Wrap ``Strip.apply_filter`` and ``Strip.divide`` (once); False where Textual's classes are
    not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(Strip, "apply_filter", None)
    original_divide = getattr(Strip, "divide", None)
    if (original is None or original_divide is None or "_segments" not in getattr(Strip, "__slots__", ())
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

    def divide(self: Strip, cuts: Any) -> Any:
        cuts = list(cuts)
        cell_length = self.cell_length
        if [cut for cut in cuts if cut <= cell_length] == [cell_length]:
            return [self]  # what Textual answers, not kept in the strip's own cache
        return original_divide(self, cuts)

    for name, wrapper, wrapped in (("apply_filter", apply_filter, original), ("divide", divide, original_divide)):
        wrapper.__doc__ = wrapped.__doc__
        wrapper.__wrapped__ = wrapped  # type: ignore[attr-defined]
        setattr(Strip, name, wrapper)
    _installed = True
    return True
