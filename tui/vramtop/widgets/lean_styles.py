"""A widget's content line between its borders and side padding, made in one step.

Textual's styles cache (``StylesCache.render_line``) makes every line a widget draws anew from
its styles: it reads the border and outline of all four edges, makes the border cells' styles,
defines the tint and hatch steps, and passes the line through each, also where the widget has no
tint, hatch, outline or opacity: some 15 us a line on top of the 3 us its widget took to make a
line of two segments. A tick on a busy node redraws a few dozen such lines.

``install`` wraps ``StylesCache.render``: where the widget has no outline, tint, hatch, text
opacity or opacity of its own, it takes the border cells and side padding once for the render,
and each content line (not a border or padding row) is the content line, made as long as the
content is wide, between them: the segments Textual's ``render_line`` gives such a line. Any
other line, and any widget with one of those effects, is Textual's own.

Installed once; where Textual's styles cache no longer looks the way this relies on, nothing is
changed.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

from textual._border import get_box
from textual._segment_tools import line_pad
from textual._styles_cache import StylesCache
from textual.strip import Strip
from textual.style import Style

_installed = False

# The arguments of Textual's ``StylesCache.render`` and ``render_line`` this reads, in order.
_RENDER = ["self", "styles", "size", "base_background", "background", "render_content_line", "filters",
           "border_title", "border_subtitle", "content_size", "padding", "crop", "opacity", "ansi_theme",
           "native_ansi"]
_RENDER_LINE = ["self", "styles", "y", "size", "content_size", "padding", "base_background", "background",
                "render_content_line", "border_title", "border_subtitle", "opacity", "ansi_theme", "native_ansi"]


class Sides(NamedTuple):
    """What a content line has around it in one render: the rows that are content lines, the
    content's width and blank style, the side padding, and the border cells (none, or one)."""

    first: int
    stop: int
    content_width: int
    content_height: int
    blank: Any  # the rich style of the padding and of the content's blank cells
    pad_left: int
    pad_right: int
    left: tuple
    right: tuple


def sides(cache: StylesCache, styles: Any, size: Any, content_size: Any, padding: Any, base_background: Any,
          background: Any, opacity: float) -> Sides | None:
    """The sides of the content lines of a widget drawn with ``styles``; None where a line of it
    takes a step past its borders and padding (an outline, tint, hatch or opacity)."""
    if (opacity != 1.0 or styles.text_opacity != 1.0 or styles.tint.a or styles.has_rule("hatch")
            or any(edge for edge, _ in styles.outline)):
        return None
    gutter = styles.gutter
    (_, (border_right, right_color), _, (border_left, left_color)) = styles.border
    inner, outer = cache.get_inner_outer(base_background, background)
    left = right = ()
    if border_left:
        colour = Style(foreground=base_background + left_color)  # opacity is 1 here
        left = (get_box(border_left, inner, outer, colour)[1][0],)
    if border_right:
        colour = Style(foreground=base_background + right_color)  # opacity is 1 here
        right = (get_box(border_right, inner, outer, colour)[1][2],)
    return Sides(gutter.top, size.height - gutter.bottom, content_size.width, content_size.height, inner.rich_style,
                 padding.left, padding.right, left, right)


def install() -> bool:
    """Wrap ``StylesCache.render`` and ``render_line`` (once); False where they are not as expected."""
    global _installed
    if _installed:
        return True
    render, render_line = (getattr(StylesCache, name, None) for name in ("render", "render_line"))
    if (render is None or render_line is None or not callable(getattr(StylesCache, "get_inner_outer", None))
            or list(inspect.signature(render).parameters) != _RENDER
            or list(inspect.signature(render_line).parameters) != _RENDER_LINE):
        return False

    def lean_render(self: StylesCache, styles: Any, size: Any, base_background: Any, background: Any,
                    render_content_line: Any, filters: Any, border_title: Any, border_subtitle: Any,
                    content_size: Any = None, padding: Any = None, crop: Any = None, opacity: float = 1.0,
                    **rest: Any) -> list[Strip]:
        self._lean_sides = sides(self, styles, size, size if content_size is None else content_size,
                                 styles.padding if padding is None else padding, base_background, background,
                                 opacity)
        try:
            return render(self, styles, size, base_background, background, render_content_line, filters,
                          border_title, border_subtitle, content_size, padding, crop, opacity, **rest)
        finally:
            self._lean_sides = None

    def lean_render_line(self: StylesCache, styles: Any, y: int, size: Any, content_size: Any, padding: Any,
                         base_background: Any, background: Any, render_content_line: Any, *rest: Any) -> Strip:
        at = self._lean_sides
        if at is None or not at.first <= y < at.stop:
            return render_line(self, styles, y, size, content_size, padding, base_background, background,
                               render_content_line, *rest)
        content_y = y - at.first
        if content_y < at.content_height:
            line = render_content_line(content_y).adjust_cell_length(at.content_width, at.blank)
        else:
            line = Strip.blank(at.content_width, at.blank)
        if at.pad_left or at.pad_right:
            line = line_pad(line, at.pad_left, at.pad_right, at.blank)
        return Strip([*at.left, *line, *at.right], size.width)

    for wrapper, wrapped in ((lean_render, render), (lean_render_line, render_line)):
        wrapper.__doc__ = wrapped.__doc__
        wrapper.__wrapped__ = wrapped  # type: ignore[attr-defined]
    StylesCache._lean_sides = None  # type: ignore[attr-defined]  # outside a render: Textual's own lines
    StylesCache.render = lean_render  # type: ignore[method-assign]
    StylesCache.render_line = lean_render_line  # type: ignore[method-assign]
    _installed = True
    return True
