"""A partial repaint writes the terminal's cells from the region's left edge, where that edge does
not cut a wide character in two; elsewhere as Textual writes it, from the widget's left edge."""

from __future__ import annotations

import io

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

from vramtop.widgets import lean_updates

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
