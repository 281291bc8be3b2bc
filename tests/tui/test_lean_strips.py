"""A line Textual's ANSI colour filter would not change is given back as it is; any other line,
and any other filter, gets what Textual's own method gives."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from rich.segment import Segment
from rich.style import Style
from textual._ansi_theme import ALABASTER, MONOKAI
from textual.color import Color
from textual.filter import ANSIToTruecolor, Monochrome
from textual.strip import Strip

from vramtop.widgets import lean_strips

STYLES = [
    None,
    Style(color="#e0e0e0", bgcolor="#1e1e2e"),
    Style.parse("bold #ff8800"),
    Style(bgcolor="#202020"),
    Style(color="red"),  # ANSI: the filter turns these into the theme's truecolour
    Style(bgcolor="bright_blue"),
    Style.parse("dim #aaaaaa on #101010"),  # dim: blended into the background
    Style(color="color(208)"),
    Style.parse("underline"),
]
BACKGROUNDS = [Color(0, 0, 0), Color(30, 30, 46), Color(250, 250, 250)]


def _original():
    assert lean_strips.install()
    return Strip.apply_filter.__wrapped__


def test_a_line_in_truecolour_is_given_back_as_it_is():
    segments = [Segment("GPU 0 ", STYLES[1]), Segment("72%", STYLES[2]), Segment("  ", None)]
    f = ANSIToTruecolor(MONOKAI)
    theirs = Strip(segments)
    assert _original()(theirs, f, BACKGROUNDS[1]) is not theirs  # Textual's own: a copy of each segment
    line = Strip(segments)
    assert line.apply_filter(f, BACKGROUNDS[1]) is line
    assert line.apply_filter(f, BACKGROUNDS[1]) is line  # drawn again: the verdict kept
    assert all(not isinstance(v, Strip) for v in line._filter_cache._cache.values())


@settings(max_examples=200, deadline=None)
@given(picks=st.lists(st.tuples(st.text("ab █", max_size=4), st.integers(0, len(STYLES) - 1), st.booleans()),
                      max_size=8),
       bg=st.sampled_from(BACKGROUNDS), light=st.booleans())
def test_any_line_reads_as_textuals_filter_makes_it(picks, bg, light):
    original = _original()
    segments = [Segment(text, STYLES[i], [(1,)] if control else None) for text, i, control in picks]
    styled = [s for s in segments if s.style is not None]  # (Textual's Monochrome needs a style)
    for f, line in ((ANSIToTruecolor(ALABASTER if light else MONOKAI), segments), (Monochrome(), styled)):
        ours = Strip(line).apply_filter(f, bg)
        theirs = original(Strip(line), f, bg)
        assert list(ours) == list(theirs)
        assert ours.cell_length == theirs.cell_length
    changes = any(c or (STYLES[i] is not None and (STYLES[i].dim or STYLES[i].color and STYLES[i].color.triplet is None
                                                    or STYLES[i].bgcolor and STYLES[i].bgcolor.triplet is None))
                  for _, i, c in picks)
    line, f = Strip(segments), ANSIToTruecolor(MONOKAI)
    for _ in range(2):  # the first draw and one from the line's cache
        assert (line.apply_filter(f, bg) is line) is not changes


def test_another_filter_still_gets_a_copy():
    line = Strip([Segment("x", STYLES[1])])
    _original()
    assert line.apply_filter(Monochrome(), BACKGROUNDS[0]) is not line


def test_nothing_is_changed_where_textual_is_not_as_expected(monkeypatch):
    class Bare:  # a filter class without the per-style conversion this relies on
        pass

    current = Strip.apply_filter
    monkeypatch.setattr(lean_strips, "_installed", False)
    monkeypatch.setattr(lean_strips, "ANSIToTruecolor", Bare)
    assert lean_strips.install() is False
    assert Strip.apply_filter is current


def test_a_line_cut_only_at_its_end_is_its_one_piece_and_keeps_no_reference_to_itself():
    import sys

    _original()
    line = Strip([Segment("GPU 0 ", STYLES[1]), Segment("72%", STYLES[2])])
    held = sys.getrefcount(line)
    for cuts in ([9], [9, 12], (c for c in [9])):  # cuts past the end are dropped, as Textual drops them
        (piece,) = line.divide(cuts)
        assert piece is line
    del piece
    assert sys.getrefcount(line) == held  # nothing in its caches refers to it: freed when last drawn
    assert Strip([Segment("x", STYLES[1])]).divide([]) == []


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text("ab█ ", min_size=1, max_size=5), max_size=6),
       cuts=st.lists(st.integers(0, 24), max_size=5))
def test_any_cuts_give_textuals_pieces(texts, cuts):
    original_divide = (_original(), Strip.divide.__wrapped__)[1]
    segments = [Segment(t, STYLES[i % len(STYLES)]) for i, t in enumerate(texts)]
    ordered = sorted(set(cuts))
    for pick in (ordered, ordered + [Strip(segments).cell_length]):
        ours = Strip(segments).divide(pick)
        theirs = original_divide(Strip(segments), pick)
        assert [(list(s), s.cell_length) for s in ours] == [(list(s), s.cell_length) for s in theirs]


def _made_by_textual(segments) -> Strip:
    """A strip as Textual's own ``__init__`` makes it: all seven caches at once."""
    _original()
    line = Strip.__new__(Strip)
    Strip.__init__.__wrapped__(line, segments)
    return line


def test_a_strip_makes_each_cache_when_it_is_first_used_and_keeps_using_it():
    import tracemalloc

    segments = [Segment("GPU 0 ", STYLES[1]), Segment("72%", STYLES[2]), Segment(" 61 GiB", STYLES[3])]
    theirs = _made_by_textual(segments)
    tracemalloc.start()
    held = [tracemalloc.get_traced_memory()[0]]
    ours_made = [Strip(segments) for _ in range(100)]
    held.append(tracemalloc.get_traced_memory()[0])
    theirs_made = [_made_by_textual(segments) for _ in range(100)]
    held.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    ours_each, theirs_each = (held[1] - held[0]) / 100, (held[2] - held[1]) / 100
    assert ours_each * 3 < theirs_each, (ours_each, theirs_each)  # 0.2 against 1.1 kB
    assert len(ours_made) == len(theirs_made)

    line = Strip(segments)
    piece = line.crop(2, 9)
    assert list(piece) == list(theirs.crop(2, 9)) and piece.cell_length == 7
    assert line.crop(2, 9) is piece  # kept in the cache made for it, of Textual's size
    assert line._crop_cache._maxsize == theirs._crop_cache._maxsize == 16
    line._crop_cache = theirs._crop_cache  # a cache given to a strip is the one it uses
    assert line._crop_cache is theirs._crop_cache


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(st.text("ab█ ", min_size=1, max_size=5), max_size=6),
       ops=st.lists(st.tuples(st.sampled_from(["crop", "divide", "style", "filter", "length", "extend", "offsets"]),
                              st.integers(0, 20), st.integers(0, 20)), max_size=8))
def test_a_strip_with_caches_made_on_use_answers_as_textuals_does(texts, ops):
    segments = [Segment(t, STYLES[i % len(STYLES)]) for i, t in enumerate(texts)]
    answers = []
    for line in (Strip(segments), _made_by_textual(segments)):
        got = []
        for _ in range(2):  # the first answer and the one from the cache
            for op, a, b in ops:
                if op == "crop":
                    out = [line.crop(min(a, b), max(a, b))]
                elif op == "divide":
                    out = line.divide(sorted({a, b}))
                elif op == "style":
                    out = [line.apply_style(STYLES[a % len(STYLES)] or Style())]
                elif op == "filter":
                    out = [line.apply_filter(ANSIToTruecolor(MONOKAI), BACKGROUNDS[a % 3])]
                elif op == "length":
                    out = [line.adjust_cell_length(a, STYLES[b % len(STYLES)])]
                elif op == "extend":
                    out = [line.crop_extend(min(a, b), max(a, b), STYLES[b % len(STYLES)])]
                else:
                    out = [line.apply_offsets(a, b)]
                got.append([(list(s), s.cell_length) for s in out])
        answers.append(got)
    assert answers[0] == answers[1]


def test_strips_keep_their_caches_made_at_once_where_textual_makes_them_otherwise(monkeypatch):
    from textual.cache import FIFOCache, LRUCache

    def strip_class(extra: tuple[str, ...], cache: type):
        class Other:  # a strip class as Textual might change it
            __slots__ = ("_segments", "_cell_length", "_render_cache", "_link_ids", "_cell_count", "_crop_cache",
                         *extra)

            def __init__(self, segments, cell_length=None):
                self._segments, self._cell_length, self._crop_cache = list(segments), cell_length, cache(16)
                self._render_cache = self._link_ids = self._cell_count = None
                for name in extra:
                    setattr(self, name, None)

        return Other

    plain = strip_class((), FIFOCache)
    made = plain.__init__
    monkeypatch.setattr(lean_strips, "Strip", plain)
    assert lean_strips._caches_on_use() is True  # as this knows it: the crop cache made on use
    assert plain.__init__ is not made and type(plain([])._crop_cache) is FIFOCache
    assert plain([])._crop_cache._maxsize == 16
    for other in (strip_class(("_tint",), FIFOCache), strip_class((), LRUCache)):  # a slot it does not know,
        made = other.__init__                                                      # another kind of cache
        monkeypatch.setattr(lean_strips, "Strip", other)
        assert lean_strips._caches_on_use() is False
        assert other.__init__ is made and type(other.__dict__["_crop_cache"]).__name__ == "member_descriptor"


def _one_cell_or_not(alphabet: str):
    segment = st.builds(Segment, st.text(alphabet, max_size=6), st.sampled_from([None, Style(bold=True)]), st.none())
    return st.lists(segment, max_size=6)


@settings(max_examples=500, deadline=None)
@given(segments=st.sampled_from(["ab │", "ab │漢\x07"]).flatmap(_one_cell_or_not),
       cuts=st.lists(st.integers(0, 30), max_size=5).map(sorted), length=st.none() | st.integers(0, 30))
def test_a_line_is_divided_into_the_parts_textuals_divide_gives(segments, cuts, length):
    assert lean_strips.install()
    ours = Strip(segments, length).divide(cuts)
    theirs = Strip.divide.__wrapped__(Strip(segments, length), cuts)
    assert [(list(part), part.cell_length) for part in ours] == [(list(part), part.cell_length) for part in theirs]
