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

And a strip makes each of its seven caches (crop, divide, filter, style and three more) the first
time it is asked for that one, not all seven when it is made: a cache and its table are two
objects, a strip with its caches about 1.1 kB where the strip alone is 0.2, and most strips
are cut or filtered once or twice before they are dropped. A live pane at 8 GPUs x 64 processes
holds about 1,400 strips, so that was 1.2 MiB of its heap, and the 200 or so strips a tick
makes cost a third of the time to make (the caches are Textual's, of Textual's sizes).

Installed once; where Textual's classes no longer look the way this relies on, that part is not
changed.
"""

from __future__ import annotations

from typing import Any

from rich import cells
from rich.segment import Segment
from textual.cache import FIFOCache
from textual.filter import ANSIToTruecolor
from textual.strip import Strip

_installed = False
_SAME = object()  # in a strip's filter cache: the filter gives the strip back as it is

# Whether each character of a text is one cell wide, as Rich measures it: Rich's own test of
# that, which its cell_len and split_cells use, where it has one; else printable ASCII.
_one_cell_each = getattr(cells, "_is_single_cell_widths", None) or (lambda text: text.isascii() and text.isprintable())


def one_cell(segments: list[Segment]) -> bool:
    """Whether ``segments`` are text (no control codes) whose every character is one cell wide:
    such a strip is measured by its length and cut by slicing, as Rich cuts it."""
    return all(control is None and _one_cell_each(text) for text, _, control in segments)


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


def _divide_one_cell(strip: Strip, cuts: list[int]) -> list[Strip] | None:
    """``Strip.divide(cuts)`` (``cuts`` ascending, none past the strip's end) for a strip each of
    whose characters is one cell wide, by slicing: Rich's ``Segment.divide`` step for step, with a
    text's width its length. None for any other strip."""
    segments = strip._segments
    if not one_cell(segments):
        return None
    parts: list[list[Segment]] = []
    each_cut = iter(cuts)
    cut = next(each_cut, -1)
    while cut == 0:  # an empty part for each cut at 0
        parts.append([])
        cut = next(each_cut, -1)
    if cut != -1:
        part: list[Segment] = []
        pos = 0
        for segment in segments:
            text = segment.text
            while text and cut != -1:  # an empty segment is in no part
                end = pos + len(text)
                if end < cut:
                    part.append(segment)
                    pos = end
                    break
                if end == cut:
                    part.append(segment)
                else:  # the segment goes on past the cut: its rest is the next part's
                    part.append(Segment(text[:cut - pos], segment.style))
                    segment = Segment(text[cut - pos:], segment.style)
                    text = segment.text
                parts.append(part)
                part, pos, cut = [], cut, next(each_cut, -1)
                if end == pos:  # the segment ended at the cut
                    break
            if cut == -1:
                break
        else:
            parts.append(part)
    strips, pos = [], 0
    for part, cut in zip(parts, cuts):
        strips.append(Strip(part, cut - pos))
        pos = cut
    return strips


class _CacheOnUse:
    """A strip's slot for one of its caches, which makes the cache when it is first read."""

    __slots__ = ("_read", "_write", "_size")

    def __init__(self, slot: Any, size: int) -> None:
        self._read, self._write, self._size = slot.__get__, slot.__set__, size

    def __get__(self, strip: Strip | None, owner: type | None = None) -> Any:
        try:
            return self._read(strip, owner)
        except AttributeError:  # not made yet
            cache = FIFOCache(self._size)
            self._write(strip, cache)
            return cache

    def __set__(self, strip: Strip, value: Any) -> None:
        self._write(strip, value)


def _caches_on_use() -> bool:
    """Give ``Strip`` its caches at first use, where a strip made by Textual's own ``__init__``
    has the slots and values this knows: its segments, its length, three attributes that start
    as None and, in each other slot, an empty FIFOCache (whose size is kept)."""
    slots = getattr(Strip, "__slots__", ())
    plain = {"_segments", "_cell_length", "_render_cache", "_link_ids", "_cell_count"}
    caches = [name for name in slots if name not in plain]
    if (not plain <= set(slots) or any(not name.endswith("_cache") for name in caches)
            or not all(type(Strip.__dict__.get(name)).__name__ == "member_descriptor" for name in slots)):
        return False
    try:
        made = Strip([], 0)
    except TypeError:
        return False
    if (any(getattr(made, name) is not None for name in ("_render_cache", "_link_ids", "_cell_count"))
            or any(type(getattr(made, name)) is not FIFOCache or len(getattr(made, name)) for name in caches)):
        return False
    original_init = Strip.__init__

    def __init__(self: Strip, segments: Any, cell_length: int | None = None) -> None:
        self._segments = list(segments)
        self._cell_length = cell_length
        self._render_cache = None
        self._link_ids = None
        self._cell_count = None

    __init__.__doc__ = original_init.__doc__
    __init__.__wrapped__ = original_init  # type: ignore[attr-defined]
    for name in caches:
        setattr(Strip, name, _CacheOnUse(Strip.__dict__[name], getattr(made, name)._maxsize))
    Strip.__init__ = __init__  # type: ignore[method-assign]
    return True


def install() -> bool:
    """Wrap ``Strip.apply_filter`` and ``Strip.divide`` and give strips their caches at first
    use (once); False where Textual's classes are not as expected (what fits is still done)."""
    global _installed
    if _installed:
        return True
    caches = _caches_on_use()
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
        kept = [cut for cut in cuts if cut <= cell_length]
        if kept == [cell_length]:
            return [self]  # what Textual answers, not kept in the strip's own cache
        if kept == sorted(set(kept)) and (parts := _divide_one_cell(self, kept)) is not None:
            return parts  # the same parts, not kept either: a line's parts are asked for once
        return original_divide(self, cuts)

    for name, wrapper, wrapped in (("apply_filter", apply_filter, original), ("divide", divide, original_divide)):
        wrapper.__doc__ = wrapped.__doc__
        wrapper.__wrapped__ = wrapped  # type: ignore[attr-defined]
        setattr(Strip, name, wrapper)
    _installed = True
    return caches
