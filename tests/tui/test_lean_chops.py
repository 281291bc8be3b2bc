"""A repaint asks each widget only for the lines it writes where nothing in front covers them, and
keeps the very pieces Textual's compositor keeps."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from textual.geometry import Region

from tui_support import make_app, wait_for
from vramtop.widgets import lean_chops

SIZE = (120, 40)


def _pieces(chops, lines) -> list:
    return [[(x, None if strip is None else (list(strip), strip.cell_length)) for x, strip in sorted(chops[y].items())]
            for y in lines]


@contextlib.asynccontextmanager
async def _compositor(keys: tuple[str, ...] = ()):
    """The compositor of the app's screen on the demo node, its first tick shown (after ``keys``)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press(*keys)
        await pilot.pause(0.3)
        assert len(app.screen_stack) == 1 + len(keys)  # each key here opens a screen over the view
        assert lean_chops.install()
        yield app.screen._compositor


@pytest.mark.parametrize("keys", [(), ("question_mark",)], ids=["main view", "the keys' help over it"])
async def test_any_repaint_keeps_the_pieces_textuals_compositor_keeps(keys):
    async with _compositor(keys) as compositor:
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
    async with _compositor() as compositor:
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
