"""SVG snapshots of the main views on the demo node (fixed clock) at three terminal sizes, and of
the layouts the README shows (``scripts/export_screenshots.py`` writes the same pictures) at 40,
80, 120, 160 and 200 columns: Ray absent, Ray present with two pins, the what-if panel open.

Regenerate deliberately with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after a
visible change (and a Textual upgrade), and look at the report before committing.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tui_support import make_app

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from export_screenshots import LAYOUT_SIZES, LAYOUTS, layout_app, settle  # noqa: E402

SIZES = [(40, 30), (80, 24), (160, 45)]


async def _first_picture(pilot) -> None:
    for _ in range(250):
        if pilot.app.snapshot is not None:
            break
        await asyncio.sleep(0.02)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_view(snap_compare, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_first_picture)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_folded_and_filtered(snap_compare, size):
    async def run_before(pilot):
        await _first_picture(pilot)
        await pilot.press("enter", "slash", *"eng")

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await _first_picture(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app(), terminal_size=(80, 40), run_before=run_before)


def test_side_panel_open_when_narrow(snap_compare):
    async def run_before(pilot):
        await _first_picture(pilot)
        await pilot.press("R")

    assert snap_compare(make_app(), terminal_size=(40, 30), run_before=run_before)


@pytest.mark.parametrize("columns", list(LAYOUT_SIZES))
@pytest.mark.parametrize("state", list(LAYOUTS))
def test_layout(snap_compare, state, columns):
    app, keys = layout_app(state)
    assert snap_compare(app, terminal_size=LAYOUT_SIZES[columns], run_before=lambda pilot: settle(pilot, keys))
