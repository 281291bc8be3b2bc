"""A panel that repaints every tick joins its screen's dirty widgets in the same call, with no
prompt to its own message loop and no Update message to the screen (one prompt to the screen, where
nothing is queued for it); a layout still goes through Textual's round. Either way the screen
draws it."""

from __future__ import annotations

import pytest
from textual.geometry import Region

from tui_support import make_app, wait_for
from vramtop.widgets.detail_line import DetailLine
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.node_header import NodeHeader
from vramtop.widgets.process_table import ProcessTable


def _posted(pump) -> list:
    """From now on, each message posted to ``pump``: (its type's name, the widget it names)."""
    seen: list = []
    own = pump.post_message

    def post(message):
        seen.append((type(message).__name__, getattr(message, "widget", None)))
        return own(message)

    pump.post_message = post
    return seen


@pytest.mark.parametrize("kind", [GpuPanel, ProcessTable, NodeHeader, DetailLine], ids=lambda k: k.__name__)
async def test_a_panels_repaint_reaches_the_screen_with_no_round_of_its_own(kind):
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.pause()
        panel = app.query_one(kind)
        panel.display = True
        await pilot.pause()
        to_panel, to_screen = _posted(panel), _posted(app.screen)
        painted: list = []
        own_paint = app.screen._compositor_refresh
        app.screen._compositor_refresh = lambda: painted.append(set(app.screen._dirty_widgets)) or own_paint()
        others = [app.query_one(k) for k in (GpuPanel, ProcessTable, NodeHeader, DetailLine) if k is not kind]
        panel.refresh(Region(0, 0, 4, 1))
        for other in others:  # a tick repaints them all: the screen is prompted once
            other.refresh(Region(0, 0, 1, 1))
        assert panel in app.screen._dirty_widgets
        assert to_screen in ([], [("Prompt", None)]) and to_panel == []  # [] where the screen has a message queued
        assert await wait_for(pilot, lambda: any(panel in dirty for dirty in painted))

        to_screen.clear()
        panel.refresh(layout=True)  # Textual's own round: a prompt, then the screen hears of it at idle
        assert ("Prompt", None) in to_panel and to_screen == []
        assert await wait_for(pilot, lambda: any(name == "Layout" for name, _ in to_screen))
