"""A widget's content lines are made between its borders and side padding in one step, and read
as Textual's styles cache makes them, for any border, padding, background and content; a
widget with an outline, tint, hatch or opacity gets Textual's own lines."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st
from rich.segment import Segment
from rich.style import Style
from textual._styles_cache import StylesCache
from textual.app import App
from textual.color import Color
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from vramtop.widgets import lean_styles

SIZE = (40, 12)
EDGES = ["none", "round", "vkey", "hkey", "heavy", "ascii", "tall", "wide", "blank", "outer"]
COLOURS = ["red", "#336699", "#20202080", "blue 40%", "ansi_bright_blue"]
STYLES = [Style(), Style(color="red"), Style.parse("bold #ff8800 on #101010"), Style(bgcolor="#202020")]
# Effects that take a line past its borders and padding; the line is then Textual's own.
EFFECTS = ["", "outline: round red;", "tint: red 30%;", "opacity: 50%;", "text-opacity: 60%;",
           "hatch: cross green;"]


class Lines(Widget):
    """A widget drawing the lines it is given (its content lines from the top)."""

    lines: list[Strip] = []

    def render_line(self, y: int) -> Strip:
        return self.lines[y] if y < len(self.lines) else Strip.blank(self.size.width, Style())


class Host(App):
    def compose(self):
        yield Lines()


class Bordered(Host):
    CSS = "Lines { border: round $primary 40%; padding: 0 1; height: 10; }"


def _drawn(widget: Widget) -> list:
    widget._styles_cache.clear()
    return [(list(strip), strip.cell_length) for strip in widget.render_lines(widget.region.size.region)]


def _made(render, styles, size: Size, base: Color, background: Color, lines: list[Strip]) -> list | str:
    """The lines ``render`` (a ``StylesCache.render``) makes of ``lines`` in a fresh cache, or the
    name of what it raised (Textual's own steps fail on some edges, a widget no cell wide with an
    outline: ours must fail alike there)."""
    content = Size(max(0, size.width - styles.gutter.width), max(0, size.height - styles.gutter.height))
    try:
        strips = render(StylesCache(), styles, size, base, background,
                        lambda y: lines[y] if y < len(lines) else Strip.blank(content.width, Style()), [], None,
                        None, content_size=content, padding=styles.padding, crop=size.region, opacity=styles.opacity)
    except Exception as exc:
        return type(exc).__name__
    return [(list(strip), strip.cell_length) for strip in strips]


async def test_any_widgets_lines_read_as_textuals_styles_cache_makes_them():
    assert lean_styles.install()
    ours, textuals = StylesCache.render, StylesCache.render.__wrapped__
    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.query_one(Lines)
        segments = st.builds(Segment, st.text("ab 漢", min_size=1, max_size=12), st.sampled_from(STYLES), st.none())
        css = st.tuples(st.lists(st.sampled_from(EDGES), min_size=4, max_size=4),
                        st.lists(st.sampled_from(COLOURS), min_size=4, max_size=4),
                        st.lists(st.integers(0, 2), min_size=4, max_size=4), st.sampled_from(EFFECTS))
        colours = st.sampled_from([Color(0, 0, 0), Color(30, 30, 46), Color(250, 250, 250, 0.5), Color(0, 0, 0, 0)])

        @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
        @given(css=css, lines=st.lists(st.lists(segments, max_size=5).map(Strip), max_size=SIZE[1]),
               size=st.builds(Size, st.integers(0, SIZE[0]), st.integers(1, SIZE[1])), base=colours,
               background=colours)
        def check(css, lines, size, base, background):
            edges, colours, padding, effect = css
            widget.styles.reset()
            widget.set_styles("".join(f"border-{side}: {edge} {colour};" for side, edge, colour
                                      in zip(("top", "right", "bottom", "left"), edges, colours))
                              + f"padding: {' '.join(map(str, padding))}; {effect}")
            styles = widget.styles
            assert _made(ours, styles, size, base, background, lines) == _made(
                textuals, styles, size, base, background, lines)

        check()
        widget.styles.reset()  # Textual's own opacity step fails on a line of unstyled segments
        await pilot.pause()


async def test_a_bordered_widget_makes_only_its_border_rows_through_textuals_line(monkeypatch):
    assert lean_styles.install()
    app = Bordered()
    async with app.run_test(size=SIZE) as pilot:
        widget = app.query_one(Lines)
        widget.lines = [Strip([Segment("row", Style(color="red"))])] * 8
        asked: list[int] = []
        textuals_line = StylesCache.render_line.__wrapped__

        def spy(self, styles, y, size, content_size, padding, base_background, background, render_content_line,
                border_title, border_subtitle, opacity, ansi_theme, native_ansi):
            asked.append(y)
            return textuals_line(self, styles, y, size, content_size, padding, base_background, background,
                                 render_content_line, border_title, border_subtitle, opacity, ansi_theme, native_ansi)

        monkeypatch.setattr(lean_styles, "_installed", False)
        monkeypatch.setattr(StylesCache, "render", StylesCache.render.__wrapped__)
        monkeypatch.setattr(StylesCache, "render_line", spy)
        assert lean_styles.install()
        drawn = _drawn(widget)
        assert asked == [0, 9]  # the top and bottom border; the eight rows between them made here
        assert "".join(segment.text for segment in drawn[1][0]) == "│ row".ljust(SIZE[0] - 1) + "│"
        widget.styles.tint = "red 10%"  # an effect past the borders: every line is Textual's
        asked.clear()
        _drawn(widget)
        assert asked == list(range(10))
        await pilot.pause()


def test_nothing_is_changed_where_textual_is_not_as_expected(monkeypatch):
    def render_line(self, styles, y, size):  # a line made from other arguments than this knows
        return Strip.blank(size.width)

    current = StylesCache.render
    monkeypatch.setattr(lean_styles, "_installed", False)
    monkeypatch.setattr(StylesCache, "render_line", render_line)
    assert lean_styles.install() is False
    assert StylesCache.render is current
