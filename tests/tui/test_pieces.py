"""A line of pieces is drawn as the segments of its pieces would be after Rich's own merging
(``Segment.simplify``), cut with an ellipsis or padded to its width, whatever its pieces, widths
and the pieces kept from earlier lines (a bound of a few, so that the kept ones are dropped too)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st
from rich.cells import cell_len
from rich.segment import Segment
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.widget import Widget

from vramtop.widgets.pieces import ELLIPSIS, SNAP, Line, PieceStyles, changed_cells, printable, repaint_span

NAMES = ("bold", "italic", "reverse", "underline")


class _Host(App):
    def compose(self) -> ComposeResult:
        yield Widget()


def merged(styles: PieceStyles, widget: Widget, line: Line, width: int) -> Strip:
    """The pieces' segments as Rich merges them, cut or padded as a line of ``width`` cells is."""
    look = widget.visual_style
    segments = [Segment(printable(text), styles._style(widget, names)) for text, names in line if text]
    length = sum(segment.cell_length for segment in segments)
    if length > width > 0:
        segments = [*Strip(segments).crop(0, width - 1), Segment(ELLIPSIS, segments[-1].style)]
    elif length < width:
        segments.append(Segment(" " * (width - length), look.rich_style))
    return Strip(Segment.simplify(segments)).adjust_cell_length(width, look.rich_style)


async def test_a_line_is_its_pieces_segments_merged_as_rich_merges_them():
    app = _Host()
    async with app.run_test(size=(60, 4)):
        widget = app.query_one(Widget)
        styles = PieceStyles(size=3)
        piece = st.tuples(st.text(st.sampled_from("ab 漢\x07"), max_size=6),
                          st.lists(st.sampled_from(NAMES), max_size=2).map(tuple))

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(line=st.lists(piece, max_size=8).map(Line), width=st.integers(0, 30))
        def check(line, width):
            strip = styles.strip(widget, line, width)
            assert list(strip) == list(merged(styles, widget, line, width))
            assert strip.cell_length == width

        check()


def _cells_of(line: Line, width: int) -> list:
    """Each cell a line draws, (character, styles); a wide character's second cell (None, styles)."""
    cells: list = []
    for text, styles in line:
        for char in printable(text):
            cells.append((char, styles))
            if cell_len(char) == 2:
                cells.append((None, styles))
    return cells + [(" ", ())] * max(0, width - len(cells))


_piece = st.tuples(st.text(alphabet="ab █界\x07", max_size=5), st.sampled_from([(), ("bold",), ("$vram-used",)]))


@settings(max_examples=300, deadline=None)
@given(old=st.lists(st.lists(_piece, max_size=6), min_size=1, max_size=3), edits=st.data(),
       width=st.integers(1, 40))
def test_a_repaint_span_holds_every_cell_that_changed_snapped_to_recur(old, edits, width):
    old = [Line(pieces) for pieces in old]
    new = [Line(edits.draw(st.one_of(st.just(list(line)), st.lists(_piece, max_size=6)))) for line in old]
    span = repaint_span(old, new, width)
    changed = {x for a, b in zip(old, new) for x, (p, q) in enumerate(zip(_cells_of(a, width), _cells_of(b, width)))
               if p != q and x < width}
    if old == new:
        assert span is None
        return
    assert span is not None
    start, end = span
    assert 0 <= start < end <= width and start % SNAP == 0 and (end % SNAP == 0 or end == width)
    assert all(start <= x < end for x in changed)


@settings(max_examples=500, deadline=None)
@given(old=st.lists(_piece, max_size=6), edits=st.data())
def test_the_changed_cells_of_a_line_hold_every_cell_drawn_differently(old, edits):
    """Unsnapped, on lines that keep some of their first and last pieces (a GPU's line keeps its
    head and its name): the span holds every cell drawn differently, the line grown or shrunk
    by a piece like its neighbours' included."""
    old = Line(old)
    keep_head = edits.draw(st.integers(0, len(old)))
    keep_tail = edits.draw(st.integers(0, len(old) - keep_head))
    middle = edits.draw(st.lists(st.one_of(_piece, st.sampled_from(old or [("a", ())])), max_size=3))
    new = Line([*old[:keep_head], *middle, *old[len(old) - keep_tail:]])
    width = max(old.cell_length, new.cell_length) + 1
    changed = [x for x, (p, q) in enumerate(zip(_cells_of(old, width), _cells_of(new, width))) if p != q]
    span = changed_cells(old, new)
    if old == new:
        assert span is None
        return
    assert span is not None
    start, end = span
    assert start <= end and all(start <= x < end for x in changed)


def test_the_kept_piece_widths_are_bounded_and_keep_no_long_text():
    """A detail line carries a process's whole command line, and a node's lines bring new figures
    every tick: the widths kept for the spans stay a bounded set of short texts."""
    from vramtop.widgets import pieces

    def line(n: int) -> Line:
        title = f"python -m vllm.entrypoints.openai.api_server --model m{n} " + "--flag " * 40
        return Line([(f"{n:,} MiB", ()), (title, ())])

    for n in range(3 * pieces._WIDTHS_MAX):
        before, after = line(n), line(n + 1)
        span = repaint_span([before], [after], 400)
        assert span is not None and span[0] == 0
        assert len(pieces._WIDTHS) <= pieces._WIDTHS_MAX
    assert all(len(text) <= pieces._WIDTHS_TEXT for text in pieces._WIDTHS)


@settings(max_examples=300, deadline=None)
@given(line=st.lists(_piece, max_size=6).map(Line))
def test_a_line_measures_the_cells_it_draws(line):
    """The header's and the status line's layout measure a line (``flow``) as it is drawn: a
    control character any local user puts in a title, or a recording in a host name, takes the
    cell of the U+FFFD drawn for it."""
    assert line.cell_length == len(_cells_of(line, 0))

