"""The process table renders and repaints only the rows whose content or place changed, and what it
draws from its kept lines is exactly what DataTable draws with every cache emptied: after cells
changed in place, after rows moved, after the cursor moved and after a fold."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from textual.geometry import Region  # noqa: E402

from tui_support import ScriptedSource, demo_snapshot, make_app, next_sample, visible_process  # noqa: E402
from vramtop.widgets.process_table import ProcessTable  # noqa: E402


def node(tick: int, mib: dict[int, int] | None = None):
    """Twelve processes on four GPUs, 1,000 MiB apart; ``mib`` overrides some of them."""
    mib = mib or {}
    procs = tuple(visible_process(20_000 + n, n % 4, mib.get(n, 1_000 + n * 1_000), f"python train.py --run {n}")
                  for n in range(12))
    return dataclasses.replace(demo_snapshot(), gpu_processes=procs, ancestors={}, timestamp=1_700_000_000.0 + tick)


def lines(table: ProcessTable) -> list[list]:
    return [list(strip) for strip in table.render_lines(Region(0, 0, *table.size))]


def fresh_lines(table: ProcessTable) -> list[list]:
    table._clear_caches()
    return lines(table)


def recording(table: ProcessTable) -> tuple[list[int], list]:
    """Records the pid of every row DataTable renders a line of from now on, and every region
    the table asks to repaint (``None``: the whole widget)."""
    rendered: list[int] = []
    repainted: list = []
    own, own_refresh = table._render_line_in_row, table.refresh

    def render(row_key, *args, **kwargs):
        row = table._shown.get(row_key.value)
        rendered.append(row.pid if row else None)
        return own(row_key, *args, **kwargs)

    def refresh(*regions, **kwargs):
        repainted.extend(regions or [None])
        return own_refresh(*regions, **kwargs)

    table._render_line_in_row = render
    table.refresh = refresh
    return rendered, repainted


async def test_only_rows_that_changed_are_rendered_and_repainted():
    app = make_app(ScriptedSource(
        node(0),
        node(1, {4: 5_100}),  # memory moved, the order did not
        node(2, {4: 5_100, 6: 8_600}),  # two rows swap places, one of them unchanged
    ))
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        lines(table)
        rendered, repainted = recording(table)
        await next_sample(app, pilot)
        assert rendered == [20_004]
        assert len(repainted) == 1 and repainted[0] is not None and repainted[0].height == 1
        rendered.clear()
        repainted.clear()
        await next_sample(app, pilot)
        assert sorted(rendered) == [20_006, 20_007]
        assert None not in repainted and len(set(repainted)) == 2 and {r.height for r in repainted} == {1}


async def test_kept_lines_are_what_datatable_renders():
    # every process's memory moves on every tick; the order turns on every other tick only, so
    # some ticks change cells of rows that stay in place and others move rows as well
    app = make_app(ScriptedSource(*(node(t, {n: 1_000 + ((n + t // 2) % 12) * 100 + t for n in range(12)})
                                    for t in range(6))))
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        moved = []
        for _ in range(4):
            lines(table)  # every line kept before the tick
            before = [row.key for row in table.ordered_rows]
            await next_sample(app, pilot)
            moved.append([row.key for row in table.ordered_rows] != before)
            assert lines(table) == fresh_lines(table)
        assert moved == [False, True, False, True]
        await pilot.press("down", "down")
        assert lines(table) == fresh_lines(table)
        await next_sample(app, pilot)
        assert lines(table) == fresh_lines(table)
        await pilot.press("t")
        assert lines(table) == fresh_lines(table)
