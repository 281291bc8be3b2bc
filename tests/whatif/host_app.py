"""The real app on the demo node (or a live source), and helpers to read what it shows.

The app mounts the panel on ``w`` and the panel watches the app's ``tick`` for each snapshot,
so these tests prove that wiring as well as the panel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io

from rich.console import Console
from textual.app import App

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.snapshot import NodeSnapshot
from vramtop.sources.demo import DemoSource

FIXED = 1_700_000_000.0


class StoppedDemoSource:
    """The demo node after its vLLM replica stopped: no GPU processes, all memory but the
    driver's reserve free (as nvidia-smi shows an idle GPU)."""

    def sample(self) -> NodeSnapshot:
        snapshot = DemoSource(clock=lambda: FIXED).sample()
        gpus = tuple(dataclasses.replace(g, used_mib=0, free_mib=g.total_mib - g.reserved_mib)
                     for g in snapshot.gpus)
        return dataclasses.replace(snapshot, gpus=gpus, gpu_processes=(), ancestors={})


def demo_app(interval: float = 3600.0, *, stopped: bool = False) -> VramtopApp:
    """The demo node at a fixed clock (``stopped``: with its replica gone); it samples once at
    start, tests ask for more."""
    source = StoppedDemoSource() if stopped else DemoSource(clock=lambda: FIXED)
    return VramtopApp(source, Config(interval=interval))


async def first_picture(pilot) -> None:
    for _ in range(250):
        if pilot.app.snapshot is not None:
            break
        await asyncio.sleep(0.02)
    await pilot.pause()


async def next_tick(pilot) -> None:
    """One more sample, shown everywhere (the panel included) before this returns."""
    app = pilot.app
    before = app.snapshot
    app.sample_now()
    for _ in range(250):
        if app.snapshot is not before:
            break
        await asyncio.sleep(0.02)
    assert app.snapshot is not before, "no new sample arrived"
    await pilot.pause()


def screen_text(app: App) -> str:
    """What the terminal shows now, as plain text (for asserting what a user reads)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system=None, record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()
