"""Rich keeps the cell width of the last 4,096 strings it measured (``rich.cells.cached_cell_len``),
and a live view measures new strings each tick (its rows and figures): the app starts that cache
afresh each tick, so it holds what one tick measured, not 4,096 texts no line shows any more."""

from __future__ import annotations

import dataclasses

from rich.cells import cached_cell_len

from tui_support import ScriptedSource, demo_snapshot, make_app, next_sample, screen_text

TICKS = 12


def moving(tick: int):
    """The demo node with every process's memory moved by ``tick`` MiB: new figures each tick."""
    snapshot = demo_snapshot()
    procs = tuple(dataclasses.replace(p, used_mib=(p.used_mib or 0) + 7 * tick) for p in snapshot.gpu_processes)
    return dataclasses.replace(snapshot, timestamp=snapshot.timestamp + tick, gpu_processes=procs)


async def test_the_cell_width_cache_holds_one_tick_of_strings():
    app = make_app(ScriptedSource(*(moving(t) for t in range(TICKS))))
    sizes = []
    async with app.run_test(size=(160, 45)) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.05)
        for _ in range(TICKS - 1):
            await next_sample(app, pilot)
            screen_text(app)  # the compositor's crops measure the lines too
            sizes.append(cached_cell_len.cache_info().currsize)
    # Kept from tick to tick, each tick's new figures pile up: some thirty strings a tick here.
    assert max(sizes[3:]) <= sizes[1] + 40, sizes
