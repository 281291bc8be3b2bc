"""The process table keeps rendered cells by what they show: what it draws must be exactly what
DataTable itself renders, also after rows moved (sorted by a figure that changed) and after the
cursor moved, so that rendering less never draws anything else."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from textual.widgets import DataTable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from tui_support import ScriptedSource, demo_snapshot, make_app, next_sample, visible_process  # noqa: E402
from vramtop.widgets.process_table import ProcessTable  # noqa: E402


def node(tick: int):
    """Twelve processes on four GPUs whose memory order turns with ``tick``."""
    procs = tuple(visible_process(20_000 + n, n % 4, 1_000 + ((n + tick) % 12) * 100, f"python train.py --run {n}")
                  for n in range(12))
    return dataclasses.replace(demo_snapshot(), gpu_processes=procs, ancestors={}, timestamp=1_700_000_000.0 + tick)


def drawn(table: ProcessTable) -> list:
    return [table._render_cell(r, c, table.rich_style, col.get_render_width(table))
            for r in range(table.row_count) for c, col in enumerate(table.ordered_columns)]


def datatable_own(table: ProcessTable) -> list:
    table._cell_render_cache.clear()
    return [DataTable._render_cell(table, r, c, table.rich_style, col.get_render_width(table))
            for r in range(table.row_count) for c, col in enumerate(table.ordered_columns)]


async def test_kept_cells_are_what_datatable_renders_after_rows_moved():
    app = make_app(ScriptedSource(*(node(t) for t in range(4))))
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        first = [row.key for row in table.ordered_rows]
        drawn(table)  # every cell kept at its first place
        for _ in range(3):
            await next_sample(app, pilot)
            assert [row.key for row in table.ordered_rows] != first  # the rows did move
            kept = drawn(table)
            assert kept == datatable_own(table)
        await pilot.press("down", "down")
        drawn(table)
        await next_sample(app, pilot)
        assert drawn(table) == datatable_own(table)
