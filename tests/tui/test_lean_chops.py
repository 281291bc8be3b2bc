"""A repaint asks each widget only for the lines it writes where nothing in front covers them and a
span of the update reaches it, keeps the very pieces Textual's compositor keeps, and writes the
same bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from textual._compositor import ChopsUpdate
from textual.geometry import Region

import sgr_screen
from tui_support import make_app, wait_for
from vramtop.widgets import lean_chops

SIZE = (120, 40)
WIDE = (160, 45)  # the side column beside the table


def _pieces(chops, lines) -> list:
    return [[(x, None if strip is None else (list(strip), strip.cell_length)) for x, strip in sorted(chops[y].items())]
            for y in lines]


@contextlib.asynccontextmanager
async def _compositor(keys: tuple[str, ...] = (), size: tuple[int, int] = SIZE):
    """The compositor of the app's screen on the demo node, its first tick shown (after ``keys``),
    and the app's console."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press(*keys)
        await pilot.pause(0.3)
        assert len(app.screen_stack) == 1 + len(keys)  # each key here opens a screen over the view
        assert lean_chops.install()
        yield app.screen._compositor, app.console


@pytest.mark.parametrize("keys", [(), ("question_mark",)], ids=["main view", "the keys' help over it"])
async def test_any_repaint_keeps_the_pieces_textuals_compositor_keeps(keys):
    async with _compositor(keys) as (compositor, _):
        original = lean_chops.render_chops.__wrapped__
        width, height = SIZE
        boxes = st.tuples(st.integers(0, width - 1), st.integers(0, height - 1), st.integers(1, width),
                          st.integers(1, 6))

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(regions=st.lists(boxes, min_size=1, max_size=4))
        def check(regions):
            update = [Region(*box).intersection(compositor.size.region) for box in regions]
            crop = Region.from_union(update)
            lines = sorted({y for region in update for y in region.line_range})
            rendered = set(lines).__contains__
            ours = lean_chops.render_chops(compositor, crop, rendered)
            theirs = original(compositor, crop, rendered)
            assert _pieces(ours, range(height)) == _pieces(theirs, range(height))

        check()


async def test_a_repaint_of_one_row_asks_the_widgets_for_that_row_only():
    async with _compositor() as (compositor, _):
        asked: list[tuple[str, int]] = []
        for widget in compositor.visible_widgets:
            def spy(crop, widget=widget, render=widget.render_lines):
                asked.append((type(widget).__name__, crop.height))
                return render(crop)
            widget.render_lines = spy
        row = Region(0, 30, SIZE[0], 1)
        lean_chops.render_chops(compositor, row, {30}.__contains__)
        ours, asked[:] = list(asked), []
        lean_chops.render_chops.__wrapped__(compositor, row, {30}.__contains__)
        assert ours and all(height == 1 for _, height in ours)  # the row, of each widget it shows
        assert sum(h for _, h in ours) * 10 < sum(h for _, h in asked), (ours, asked)
        assert {"Screen", "Horizontal"} & {name for name, _ in asked} - {name for name, _ in ours}  # behind


@pytest.mark.parametrize("size", [SIZE, WIDE], ids=["narrow", "wide"])
async def test_any_partial_update_writes_what_textuals_writes(size):
    async with _compositor(size=size) as (compositor, console):
        width, height = size
        boxes = st.tuples(st.integers(0, width - 1), st.integers(0, height - 1), st.integers(1, width),
                          st.integers(1, 6))
        textuals_bytes = getattr(ChopsUpdate.render_segments, "__wrapped__", ChopsUpdate.render_segments)

        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        @given(regions=st.lists(boxes, min_size=1, max_size=4))
        def check(regions):
            updates = []
            screen = compositor.size.region
            for partial in (lean_chops.render_partial_update, lean_chops.render_partial_update.__wrapped__):
                compositor._dirty_regions.update(Region(*box).intersection(screen) for box in regions)
                updates.append(partial(compositor))
            ours, theirs = updates
            assert ours.spans == theirs.spans and ours.chop_ends == theirs.chop_ends
            assert ChopsUpdate.render_segments(ours, console) == ChopsUpdate.render_segments(theirs, console)
            # Textual's own writing of its update writes each of these cells the same (and more: from
            # each widget's left edge, and a cursor move alone to a piece at a span's end)
            cells = sgr_screen.screen(ChopsUpdate.render_segments(ours, console))[0]
            assert cells and cells.items() <= sgr_screen.screen(textuals_bytes(theirs, console))[0].items()

        check()


@pytest.mark.parametrize("where, beside", [("procs", "SideColumn"), ("side", "ProcessTable")])
async def test_a_repaint_of_one_cell_asks_nothing_of_the_widgets_beside_it(where, beside):
    # The side column is right of the table and the table left of the side column: a span on their
    # shared lines asks only the one it reaches, on either side.
    async with _compositor(size=WIDE) as (compositor, _):
        asked: list[str] = []
        for widget in compositor.visible_widgets:
            def spy(crop, widget=widget, render=widget.render_lines):
                asked.append(type(widget).__name__)
                return render(crop)
            widget.render_lines = spy
        widget = next(w for w in compositor.visible_widgets if w.id == where)
        table = next(w for w in compositor.visible_widgets if w.id == "procs")
        region, line = compositor.visible_widgets[widget][0], compositor.visible_widgets[table][0].y + 3
        cell = Region(region.x + min(40, region.width // 2), line, 8, 1)
        tick = (cell, Region(0, 0, WIDE[0], 1))  # a cell, the header
        compositor._dirty_regions.update(tick)
        lean_chops.render_partial_update(compositor)
        ours, asked[:] = list(asked), []
        compositor._dirty_regions.update(tick)
        lean_chops.render_partial_update.__wrapped__(compositor)
        assert type(widget).__name__ in ours and beside in asked  # they share the cell's line
        assert set(ours) < set(asked) and beside not in ours, (ours, asked)
