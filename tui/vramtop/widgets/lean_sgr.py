"""A line's terminal output sets only what changes from one piece of text to the next.

Textual writes each segment of a line as ``ESC[<all of its style>m text ESC[0m``: a table row of
a dozen segments in the same colours on the same background says those colours a dozen times and
resets after each. Over SSH, and for the terminal (tmux) that reads it, that is most of what a
repaint costs: on a pane at 8 GPUs x 64 processes, 58 % of the bytes were style sequences, a
quarter of them resets.

``install`` wraps ``Strip.render`` so that a line sets its first segment's style in full and then,
segment by segment, only what differs from the one before: an attribute turned on, the code that
turns a group of them off (bold and dim go off together, then whichever stays is set again), a
colour that changed; or a reset and the whole style where that is shorter. A segment with no style,
or one that sets nothing, is written after a reset. The line ends with a reset, as Textual's does,
so each line's output stands alone: Textual keeps it in the strip's own render cache and may join
it to others. A line with a link (which Textual writes around its segment) is written by Textual.

Installed once; where Textual's strips no longer look the way this relies on, nothing is changed.
"""

from __future__ import annotations

from typing import Any

from rich.color import ColorSystem
from rich.style import Style
from textual.strip import SGR_STYLES, Strip

_installed = False

# The attributes (bits of a Rich style, as Textual's SGR_STYLES maps them to codes) that one code
# turns off together: bold and dim; underline and double underline; the two blinks; frame and
# encircle. Each other attribute is a group of its own.
_OFF = ((0b11, "22"), (1 << 2, "23"), (1 << 3 | 1 << 9, "24"), (1 << 4 | 1 << 5, "25"), (1 << 6, "27"),
        (1 << 7, "28"), (1 << 8, "29"), (1 << 10 | 1 << 11, "54"), (1 << 12, "55"))
_KNOWN = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53"]  # SGR_STYLES as this reads it

RESET = "\x1b[0m"
_MAX_KEPT = 4096  # styles and changes between two styles kept; a theme has a few dozen styles
_parts: dict[tuple[Style, ColorSystem], tuple[int, tuple[str, ...], tuple[str, ...]]] = {}
_changes: dict[tuple[Style, Style, ColorSystem], str] = {}


def _codes(bits: int) -> list[str]:
    return [_KNOWN[n] for n in range(bits.bit_length()) if bits >> n & 1]


def style_parts(style: Style, color_system: ColorSystem) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(attribute bits, foreground codes, background codes) of ``style`` as Textual writes it."""
    key = (style, color_system)
    parts = _parts.get(key)
    if parts is None:
        if len(_parts) >= _MAX_KEPT:
            _parts.clear()
        color, bgcolor = style._color, style._bgcolor
        parts = _parts[key] = (
            style._attributes & style._set_attributes,
            () if color is None else tuple(color.downgrade(color_system).get_ansi_codes()),
            () if bgcolor is None else tuple(bgcolor.downgrade(color_system).get_ansi_codes(False)),
        )
    return parts


def sets_something(style: Style | None, color_system: ColorSystem) -> bool:
    """Whether ``style`` writes any attribute or colour (None and an empty style write none)."""
    return style is not None and any(style_parts(style, color_system))


def change(before: Style | None, after: Style, color_system: ColorSystem) -> str:
    """The sequence that takes the terminal from ``before``'s style (None: after a reset) to
    ``after``'s; "" where they write the same. ``after`` sets something."""
    key = (before, after, color_system)
    sequence = _changes.get(key)
    if sequence is not None:
        return sequence
    bits, fg, bg = style_parts(after, color_system)
    whole = ";".join([*_codes(bits), *fg, *bg])
    if before is None:
        sequence = f"\x1b[{whole}m"
    else:
        was, was_fg, was_bg = style_parts(before, color_system)
        codes, on = [], bits & ~was
        for group, off in _OFF:
            if was & group & ~bits:
                codes.append(off)
                on |= bits & group  # what the code turned off that stays on
        codes += _codes(on)
        if fg != was_fg:
            codes += fg or ("39",)
        if bg != was_bg:
            codes += bg or ("49",)
        sequence = "" if not codes else min(f"\x1b[{';'.join(codes)}m", f"\x1b[0;{whole}m", key=len)
    if len(_changes) >= _MAX_KEPT:
        _changes.clear()
    _changes[key] = sequence
    return sequence


def render(strip: Strip, color_system: ColorSystem) -> str | None:
    """``strip``'s segments as the terminal's bytes, each style said by what changes; None where
    a segment has a link (Textual writes the line)."""
    out: list[str] = []
    append = out.append
    current: Style | None = None  # the style the terminal is in; None: after a reset
    for text, style, _ in strip._segments:
        if style is not None and style._link:
            return None
        if not sets_something(style, color_system):
            if current is not None:
                append(RESET)
                current = None
        elif style is not current:
            append(change(current, style, color_system))
            current = style
        append(text)
    if current is not None:
        append(RESET)
    return "".join(out)


def install() -> bool:
    """Wrap ``Strip.render`` (once); False where Textual's strips are not as expected."""
    global _installed
    if _installed:
        return True
    original = getattr(Strip, "render", None)
    if (original is None or list(SGR_STYLES) != _KNOWN or "_render_cache" not in getattr(Strip, "__slots__", ())
            or not all(hasattr(Style(), name) for name in ("_color", "_bgcolor", "_attributes", "_set_attributes",
                                                            "_link"))):
        return False

    def render_strip(self: Strip, console: Any) -> str:
        if self._render_cache is None:
            text = render(self, console._color_system or ColorSystem.TRUECOLOR)
            if text is None:
                return original(self, console)
            self._render_cache = text
        return self._render_cache

    render_strip.__doc__ = original.__doc__
    render_strip.__wrapped__ = original  # type: ignore[attr-defined]
    Strip.render = render_strip  # type: ignore[method-assign]
    _installed = True
    return True
