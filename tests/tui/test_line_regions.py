"""A GPU bar, or the header, that changed is repainted from where its lines first draw differently
to where they last do (snapped out to ``pieces.SNAP`` cells, so that the regions recur): a GPU whose
load alone moved costs the terminal its figures, not its head and bar before them or its name after,
and memory that moved the header's totals, not the host's name. Every cell that changed lies in a
region asked for."""

from __future__ import annotations

import dataclasses

from tui_support import ScriptedSource, demo_snapshot, drawn_cells, make_app, next_sample, regions_asked
from vramtop.widgets import gpu_bars, pieces
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.node_header import NodeHeader


def node(tick: int, **gpu_changes):
    """The demo node; ``gpu_changes`` maps a GPU index to the changes of its record."""
    snapshot = demo_snapshot()
    gpus = tuple(dataclasses.replace(g, **gpu_changes.get(f"gpu{g.index}", {})) for g in snapshot.gpus)
    return dataclasses.replace(snapshot, gpus=gpus, timestamp=snapshot.timestamp + tick)


def drawn(widget: GpuPanel | NodeHeader) -> dict[tuple[int, int], tuple]:
    return drawn_cells(widget, range(widget.scrollable_content_region.height))


async def test_a_changed_bar_is_repainted_from_its_first_changed_cell():
    gpu0 = demo_snapshot().gpus[0]
    load = {"utilization_pct": (gpu0.utilization_pct or 0) + 7}
    more = {"used_mib": gpu0.used_mib + 9_000}
    lost = {"lost": True}
    ticks = [node(0), node(1, gpu0=load), node(2, gpu0={**load, **more}), node(3, gpu0={**load, **more}, gpu1=lost)]
    app = make_app(ScriptedSource(*ticks))
    async with app.run_test(size=(160, 45)) as pilot:
        panel = app.query_one(GpuPanel)
        await pilot.pause()
        repainted = regions_asked(panel)
        starts, ends = [], []
        for _ in range(3):
            before = drawn(panel)
            repainted.clear()
            await next_sample(app, pilot)
            after = drawn(panel)
            changed = [at for at, cell in after.items() if before.get(at) != cell]
            assert changed and None not in repainted
            assert all(any(r.contains(*at) for r in repainted) for at in changed)
            width = panel.scrollable_content_region.width
            assert all(r.x % pieces.SNAP == 0 and (r.right % pieces.SNAP == 0 or r.right == width) for r in repainted)
            starts.append(sorted(r.x for r in repainted))
            ends.append(sorted(r.right for r in repainted))
        # the load, among the figures; then the bar's fill, after the head; then a GPU lost: its head
        assert starts[0][0] > starts[1][0] > gpu_bars.HEAD_WIDTH - pieces.SNAP and starts[2] == [0]
        # the load's repaint ends before the GPUs' names, the last field: their cells are not written again
        assert max(ends[0]) < width - panel._widths["name"] + pieces.SNAP <= width


async def test_the_header_is_repainted_from_its_totals_where_memory_alone_moved():
    gpu0 = demo_snapshot().gpus[0]
    ticks = [node(0), node(1, gpu0={"used_mib": gpu0.used_mib + 1_234})]
    app = make_app(ScriptedSource(*ticks))
    async with app.run_test(size=(160, 45)) as pilot:
        header = app.query_one(NodeHeader)
        await pilot.pause()
        repainted = regions_asked(header)
        before = drawn(header)
        await next_sample(app, pilot)
        changed = [at for at, cell in drawn(header).items() if before.get(at) != cell]
        assert changed and None not in repainted and len(repainted) == 1
        assert all(repainted[0].contains(*at) for at in changed)
        host = header.text.index(ticks[1].hostname) + len(ticks[1].hostname)
        assert repainted[0].x >= host and repainted[0].x % pieces.SNAP == 0


def crowded(tick: int):
    """The demo node and 60 more processes (more rows than the table shows), every process's
    memory moved by ``tick`` MiB, each by its own amount: the order changes each tick."""
    from tui_support import visible_process

    snapshot = demo_snapshot()
    more = tuple(visible_process(30_000 + n, n % 2, 500 + (n * 37 * tick) % 900, f"python worker_{n}.py")
                 for n in range(60))
    moved = tuple(dataclasses.replace(p, used_mib=p.used_mib + tick) for p in snapshot.gpu_processes)
    return dataclasses.replace(snapshot, gpu_processes=moved + more, timestamp=snapshot.timestamp + tick)


async def test_a_table_with_a_scrollbar_repaints_the_changed_cells_and_never_its_scrollbar():
    # The scrollbar is drawn over the table's last column of cells: a region reaching it has the
    # compositor draw the scrollbar again.
    from vramtop.widgets.process_table import HEADER, ProcessTable

    app = make_app(ScriptedSource(*(crowded(tick) for tick in range(4))))
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        content = table.scrollable_content_region.width
        assert table.show_vertical_scrollbar and content < table.size.width  # the scrollbar takes a column
        table.move_cursor(row=10)  # its process moves up and down as the order changes: whole lines repainted
        await pilot.pause()
        repainted = regions_asked(table)
        for _ in range(3):
            rows = range(HEADER, table.scrollable_content_region.height)
            before = drawn_cells(table, rows)
            repainted.clear()
            await next_sample(app, pilot)
            changed = [at for at, cell in drawn_cells(table, rows).items() if before.get(at) != cell and at[0] < content]
            assert changed and None not in repainted
            assert all(any(r.contains(*at) for r in repainted) for at in changed)
            assert all(r.right <= content for r in repainted)
