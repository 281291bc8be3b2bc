"""A partial repaint writes the terminal's cells from the region's left edge, where that edge does
not cut a wide character in two; elsewhere as Textual writes it, from the widget's left edge."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

import sgr_screen
from vramtop.widgets import lean_sgr, lean_updates

RED = Style(color="red")


def written(strip: Strip, x1: int, x2: int, at: int = 0) -> str:
    """What the update writes of ``strip`` (a widget's piece of line 0, from cell ``at``) for a
    repaint of cells ``x1`` to ``x2``."""
    assert lean_updates.install()
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=80)
    update = ChopsUpdate([{at: strip}], [(0, x1, x2)], [[at + strip.cell_length]])
    return update.render_segments(console)


def theirs(strip: Strip, x1: int, x2: int, at: int = 0) -> str:
    assert lean_updates.install()
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=80)
    update = ChopsUpdate([{at: strip}], [(0, x1, x2)], [[at + strip.cell_length]])
    return lean_updates.render_segments.__wrapped__(update, console)


def test_a_repaint_inside_a_line_starts_at_its_left_edge():
    line = Strip([Segment("  4242 alice   0 "), Segment(" 2,131 MiB", RED), Segment(" python serve.py")])
    out = written(line, 19, 29, at=2)  # the VRAM cell: cells 17 to 26 of the piece, which starts at 2
    assert out.startswith("\x1b[1;20H")  # row 1, column 20: cell 19 of the screen
    assert "2,131 MiB" in out and "alice" not in out and "serve.py" not in out
    assert theirs(line, 19, 29, at=2).startswith("\x1b[1;3H") and "alice" in theirs(line, 19, 29, at=2)


def test_a_whole_piece_inside_the_span_is_written_as_textual_writes_it():
    line = Strip([Segment("GPU 0 "), Segment("72%", RED)])
    assert written(line, 0, 40) == theirs(line, 0, 40)
    assert written(line, 3, 40, at=5) == theirs(line, 3, 40, at=5)  # the span begins before the piece


def test_an_edge_between_segments_is_clean_even_after_wide_characters():
    line = Strip([Segment("日本 "), Segment("util 90%", RED)])
    out = written(line, 5, 13)
    assert out.startswith("\x1b[1;6H") and "日本" not in out and "util 90%" in out


def test_an_edge_inside_wide_characters_starts_at_the_piece_as_textual_does():
    line = Strip([Segment("ab日本語cd")])
    assert lean_updates.clean_cut(line, 2) is False and lean_updates.clean_cut(line, 1) is False
    assert written(line, 3, 10) == theirs(line, 3, 10)
    assert written(line, 3, 10).startswith("\x1b[1;1H")


def test_only_the_cells_of_the_span_leave():
    line = Strip([Segment("0123456789")])
    out = written(line, 3, 6)
    assert out.startswith("\x1b[1;4H") and "345" in out and "2" not in out.split("H", 1)[1] and "6" not in out


BASE = Style(color="#e0e0e0", bgcolor="#1e1e2e")
BOLD = BASE + Style(bold=True)


def _update(rows: list[list[tuple[int, Strip]]], spans: list[tuple[int, int, int]]):
    """Textual's update of the pieces ``rows`` (per line: (x, strip) in order) over ``spans``;
    what ours writes and what Textual's writes, on a console of its own each (the lines written
    as the app writes them: ``lean_sgr``)."""
    assert lean_updates.install() and lean_sgr.install()
    chops = [dict(row) for row in rows]
    ends = [[x + strip.cell_length for x, strip in row] for row in rows]
    outs = []
    for method in (ChopsUpdate.render_segments, lean_updates.render_segments.__wrapped__):
        console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=80)
        outs.append(method(ChopsUpdate(chops, spans, ends), console))
    return outs


def test_rows_in_one_look_say_their_colours_once_and_show_what_textuals_update_shows():
    rows = [[(0, Strip([Segment(f" {n:>5} ", BOLD), Segment(" python serve.py ", BASE), Segment(" " * 9, BASE)]))]
            for n in range(6)]
    ours, textuals = _update(rows, [(y, 0, 32) for y in range(6)])
    assert sgr_screen.screen(ours) == sgr_screen.screen(textuals)
    assert sgr_screen.screen(ours)[1] == sgr_screen.DEFAULT  # left as it was found: reset
    assert ours.count("\x1b[0m") == 1 and ours.count("\x1b[1;38;2;224;224;224;48;2;30;30;46m") == 1
    assert len(ours) < 0.7 * len(textuals), (len(ours), len(textuals))


STYLES = [None, Style(), BASE, BOLD, Style(color="#ff8800", bgcolor="#1e1e2e"), Style(color="red", italic=True),
          Style(link="https://example.org", color="#e0e0e0")]


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.lists(st.lists(st.tuples(st.text("ab█", min_size=1, max_size=3),
                                                  st.integers(0, len(STYLES) - 1)), min_size=1, max_size=4),
                               min_size=1, max_size=3), min_size=1, max_size=4),
       cut=st.integers(0, 6))
def test_any_update_shows_what_textuals_update_shows(lines, cut):
    rows, spans = [], []
    for y, pieces in enumerate(lines):
        x, row = 0, []
        for picks in pieces:
            strip = Strip([Segment(text, STYLES[i]) for text, i in picks])
            row.append((x, strip))
            x += strip.cell_length
        rows.append(row)
        spans.append((y, min(cut, x - 1), x))
    ours, textuals = _update(rows, spans)
    (cells, state), (their_cells, _) = sgr_screen.screen(ours), sgr_screen.screen(textuals)
    assert all(their_cells.get(at) == cell for at, cell in cells.items())  # as Textual's update shows them
    assert all(at in cells for at in their_cells if any(y + 1 == at[0] and x1 < at[1] <= x2 for y, x1, x2 in spans))
    assert state == sgr_screen.DEFAULT


def _segments(alphabet: str):
    segment = st.builds(Segment, st.text(alphabet, max_size=6), st.sampled_from([None, RED]), st.none())
    return st.lists(segment, max_size=6)


@settings(max_examples=400, deadline=None)
@given(segments=st.sampled_from(["ab │", "ab │漢\x07"]).flatmap(_segments), start=st.integers(-2, 30),
       end=st.integers(-2, 30))
def test_a_piece_is_cut_into_the_segments_textuals_crop_gives(segments, start, end):
    strip = Strip(segments)
    assert list(lean_updates.crop_once(strip, start, end)) == list(Strip(segments).crop(start, end))
    assert lean_updates.crop_once(strip, start, end).cell_length == Strip(segments).crop(start, end).cell_length


@given(x=st.integers(0, 400), y=st.integers(0, 200))
def test_a_cursor_move_is_written_as_rich_writes_it(x, y):
    assert lean_updates.move_to(x, y) == Control.move_to(x, y).segment.text
