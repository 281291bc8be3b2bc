"""A line written with only the style changes between its segments shows, cell by cell, what
Textual's own writing of it shows, in fewer bytes, and leaves the terminal as Textual's does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

import sgr_screen
from vramtop.widgets import lean_sgr

STYLES = [
    None,
    Style(),  # sets nothing
    Style(color="#e0e0e0", bgcolor="#1e1e2e"),
    Style(color="#e0e0e0", bgcolor="#1e1e2e", bold=True),
    Style(color="#e0e0e0", bgcolor="#1e1e2e", dim=True),
    Style(color="#e0e0e0", bgcolor="#1e1e2e", bold=True, dim=True),
    Style(color="#ff8800", bgcolor="#1e1e2e", bold=True),
    Style(color="#8a8a8a", bgcolor="#202020", italic=True, underline=True),
    Style(bgcolor="#202020", underline2=True, strike=True),
    Style(color="red", reverse=True),
    Style(color="color(208)", blink=True, conceal=True),
    Style(bgcolor="bright_blue", frame=True, overline=True),
    Style(color="#e0e0e0", encircle=True, blink2=True),
    Style(bold=False, color="#e0e0e0"),  # bold set off explicitly
]

def screen(output: str) -> tuple[list[tuple], tuple]:
    """The cells one line's ``output`` writes, in order, and the style it leaves the terminal in."""
    cells, state = sgr_screen.screen(output)
    return [cells[key] for key in sorted(cells)], state


class _Console:
    """What ``Strip.render`` reads of a console: its colour system."""

    def __init__(self, color_system: ColorSystem) -> None:
        self._color_system = color_system


def _textuals(strip: Strip, color_system: ColorSystem) -> str:
    """The line as Textual writes it, on a copy (its render cache is its own)."""
    assert lean_sgr.install()
    for segment in strip:
        if segment.style is not None:
            segment.style._ansi = None  # Textual keeps a style's codes for the first colour system it met

    return Strip.render.__wrapped__(Strip(strip._segments), _Console(color_system))


SYSTEMS = [ColorSystem.TRUECOLOR, ColorSystem.EIGHT_BIT, ColorSystem.STANDARD]


@settings(max_examples=300, deadline=None)
@given(picks=st.lists(st.tuples(st.text("ab █", min_size=1, max_size=3), st.integers(0, len(STYLES) - 1)),
                      max_size=10),
       color_system=st.sampled_from(SYSTEMS))
def test_any_line_shows_as_textuals_writing_shows_it(picks, color_system):
    strip = Strip([Segment(text, STYLES[i]) for text, i in picks])
    ours = lean_sgr.render(strip, color_system)
    theirs = _textuals(strip, color_system)
    assert screen(ours) == screen(theirs)
    assert screen(ours)[1] == (frozenset(), None, None)  # the line stands alone: it ends reset
    assert len(ours) <= len(theirs) + 4  # at worst one reset more: a last segment with no style


def test_a_table_row_says_its_colours_once():
    base = Style(color="#e0e0e0", bgcolor="#1e1e2e")
    bold = base + Style(bold=True)
    muted = Style(color="#8a8a8a", bgcolor="#1e1e2e")
    row = Strip([Segment(" 41,656", bold), Segment(" MiB  ", base), Segment("python3", base + Style(italic=True)),
                 Segment("  vllm serve  ", base), Segment("0", bold), Segment(" · ", muted), Segment("  61°C  ", base)])
    ours = lean_sgr.render(row, ColorSystem.TRUECOLOR)
    theirs = _textuals(row, ColorSystem.TRUECOLOR)
    assert screen(ours) == screen(theirs)
    assert ours.count("\x1b[0m") == 1 and ours.count("#") == 0
    assert len(ours) < 0.6 * len(theirs), (len(ours), len(theirs))
    assert "\x1b[22m" in ours and "\x1b[23m" in ours  # bold and italic turned off, not a reset and all again


def test_the_app_writes_lines_so_and_a_line_with_a_link_as_textual_does():
    assert lean_sgr.install()
    console = _Console(ColorSystem.TRUECOLOR)
    plain = Strip([Segment("GPU 0 ", STYLES[2]), Segment("72%", STYLES[3])])
    assert plain.render(console) == lean_sgr.render(plain, ColorSystem.TRUECOLOR)
    linked = Strip([Segment("docs", Style(link="https://example.org", color="#e0e0e0")), Segment(" x", STYLES[2])])
    assert linked.render(console) == _textuals(linked, ColorSystem.TRUECOLOR)
    assert "\x1b]8;" in linked.render(console)


def test_nothing_is_changed_where_textuals_attribute_codes_differ(monkeypatch):
    import textual.strip

    current = Strip.render
    monkeypatch.setattr(lean_sgr, "_installed", False)
    monkeypatch.setattr(lean_sgr, "SGR_STYLES", [*textual.strip.SGR_STYLES, "60"])
    assert lean_sgr.install() is False
    assert Strip.render is current


@pytest.mark.parametrize("color_system", SYSTEMS)
def test_a_style_that_sets_nothing_writes_its_text_plainly(color_system):
    strip = Strip([Segment("a", STYLES[3]), Segment("b", Style()), Segment("c", None), Segment("d", STYLES[3])])
    ours = lean_sgr.render(strip, color_system)
    assert screen(ours) == screen(_textuals(strip, color_system))
    assert ours.startswith("\x1b[1;") and ours.count("\x1b[0m") == 2
