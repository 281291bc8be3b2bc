"""The line under the table: its words flow onto its lines as a Static wraps them, what does not
fit ends the last line with an ellipsis, a new text repaints from its first changed word, and a
process title's control characters never reach the terminal."""

from __future__ import annotations

import re

from hypothesis import given, strategies as st
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widgets import Static

from tui_support import drawn_cells, regions_asked
from vramtop.widgets import pieces
from vramtop.widgets.detail_line import DetailLine, detail_lines

DETAIL = "pid 4100 · alice · vLLM worker (TP 0) · GPU 0 · 20,730 MiB · python -m vllm.entrypoints.openai"


def cells(text: str) -> int:
    return pieces.Line([(text, ())]).cell_length


@given(text=st.text(st.sampled_from("ab 漢·\x1b"), max_size=60), width=st.integers(1, 30), height=st.integers(1, 3))
def test_words_flow_whole_onto_the_lines_the_last_holding_the_rest(text, width, height):
    # Each line takes the next words while they fit, the spaces after them not counted (a word
    # wider than a line alone), drops its trailing spaces, and the last line takes all the rest.
    lines = detail_lines(text, width, height)
    chunks = re.findall(r"\s*\S+\s*", pieces.printable(text))
    assert len(lines) <= height and sum(len(line) for line in lines) == len(chunks)
    start = 0
    for n, line in enumerate(lines):
        own = chunks[start:start + len(line)]
        last = n == len(lines) - 1
        assert [chunk for chunk, _ in line] == own[:-1] + [own[-1] if last else own[-1].rstrip()]
        if not last:
            assert sum(map(cells, own)) - cells(own[-1]) + cells(own[-1].rstrip()) <= width or len(own) == 1
            assert sum(map(cells, own)) + cells(chunks[start + len(line)].rstrip()) > width
        start += len(line)


class _Both(App):
    CSS = "DetailLine, Static { height: 4; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        yield DetailLine()
        yield Static(markup=False)


async def test_a_text_that_fits_is_wrapped_as_a_static_wraps_it():
    app = _Both()
    async with app.run_test(size=(80, 8)) as pilot:
        detail, static = app.query_one(DetailLine), app.query_one(Static)
        for width in range(40, 80, 3):  # the text fits in its four lines
            detail.styles.width = static.styles.width = width
            detail.show(DETAIL + f" · {width}")
            static.update(DETAIL + f" · {width}")
            await pilot.pause()
            wrapped = [line.text[1:].rstrip() for line in static.render_lines(Region(0, 0, width, 4))]
            assert detail.lines == [line for line in wrapped if line], width


class _One(App):
    CSS = "DetailLine { height: 2; padding: 0 1; }"

    def compose(self) -> ComposeResult:
        yield DetailLine()


async def test_a_text_wider_than_its_lines_is_cut_with_an_ellipsis_and_a_new_figure_repaints_from_it():
    app = _One()
    async with app.run_test(size=(40, 4)) as pilot:
        detail = app.query_one(DetailLine)
        detail.show(DETAIL)
        await pilot.pause()
        first, second = (strip.text for strip in (detail.render_line(0), detail.render_line(1)))
        assert first.rstrip() == "pid 4100 · alice · vLLM worker (TP 0)"
        assert second.endswith("…") and second.startswith("· GPU 0 · 20,730 MiB · python")
        asked = regions_asked(detail)
        before = drawn_cells(detail, range(2))
        detail.show(DETAIL.replace("20,730", "20,931"))
        changed = [at for at, cell in drawn_cells(detail, range(2)).items() if before[at] != cell]
        assert changed and len(asked) == 1 and all(asked[0].contains(*at) for at in changed)
        assert asked[0].x == len("· GPU 0 · ") // pieces.SNAP * pieces.SNAP  # not the line from its start
        asked.clear()
        detail.show(DETAIL.replace("20,730", "20,931"))
        assert asked == []  # the same text: nothing


async def test_control_characters_in_a_title_are_drawn_as_replacement_characters():
    app = _One()
    async with app.run_test(size=(60, 4)) as pilot:
        detail = app.query_one(DetailLine)
        detail.show("pid 9 · evil\x1b[2J\x07title [b]x[/b]")
        await pilot.pause()
        drawn = "".join(segment.text for segment in detail.render_line(0))
        assert "\x1b" not in drawn and "\x07" not in drawn and "evil\ufffd[2J\ufffdtitle [b]x[/b]" in drawn
