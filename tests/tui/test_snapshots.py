"""SVG snapshots of the main views on the demo node (fixed clock) at three terminal sizes.

Regenerate deliberately with ``pytest tests/tui/test_snapshots.py --snapshot-update`` after a
visible change (and a Textual upgrade), and look at the report before committing.
"""

from __future__ import annotations

import asyncio

import pytest

from tui_support import make_app

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
