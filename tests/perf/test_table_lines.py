"""The process table lays out only the cells whose text changed and repaints only the lines whose
row changed; a row that moved keeps its line. What it draws from kept lines is exactly what it
draws with nothing kept: after cells changed in place, after rows moved, after the cursor moved
and after a fold."""

from __future__ import annotations

import dataclasses
import sys
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from textual.geometry import Region  # noqa: E402

from tui_support import (ScriptedSource, demo_snapshot, drawn_cells, make_app, next_sample, regions_asked,  # noqa: E402
                         visible_process)
from vramtop.widgets import process_rows, process_table  # noqa: E402
from vramtop.widgets.process_table import HEADER, ProcessTable  # noqa: E402


def node(tick: int, mib: dict[int, int] | None = None):
    """Twelve processes on four GPUs, 1,000 MiB apart; ``mib`` overrides some of them."""
    mib = mib or {}
    procs = tuple(visible_process(20_000 + n, n % 4, mib.get(n, 1_000 + n * 1_000), f"python train.py --run {n}")
                  for n in range(12))
    return dataclasses.replace(demo_snapshot(), gpu_processes=procs, ancestors={}, timestamp=1_700_000_000.0 + tick)


def lines(table: ProcessTable) -> list[list]:
    return [list(strip) for strip in table.render_lines(Region(0, 0, *table.size))]


def fresh_lines(table: ProcessTable) -> list[list]:
    table._kept_cells.clear()
    table._kept_lines.clear()
    table._styles_cache.clear()
    return lines(table)


def strips_by_row(table: ProcessTable) -> dict[str, object]:
    """The strip each row in view is drawn from, by row key."""
    top = round(table.scroll_y)
    return {table.rows[top + y - HEADER].key: table.render_line(y)
            for y in range(HEADER, table.size.height) if top + y - HEADER < table.row_count}


def recording(table: ProcessTable, monkeypatch) -> tuple[list[str], list]:
    """Records the text of every cell laid out from now on, and every region the table asks to
    repaint (``None``: the whole widget)."""
    laid_out: list[str] = []
    own_fit = process_table.fit

    def fit(text, *args, **kwargs):
        laid_out.append(text)
        return own_fit(text, *args, **kwargs)

    monkeypatch.setattr(process_table, "fit", fit)
    return laid_out, regions_asked(table)


@asynccontextmanager
async def recorded(app, monkeypatch, size: tuple[int, int]):
    """The app running at ``size`` with every line of its table drawn, recording from then on:
    (pilot, table, cells laid out, regions repainted)."""
    async with app.run_test(size=size) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        lines(table)
        yield (pilot, table, *recording(table, monkeypatch))


async def test_only_changed_cells_are_laid_out_and_only_changed_lines_repainted(monkeypatch):
    app = make_app(ScriptedSource(
        node(0),
        node(1, {4: 5_100}),  # memory moved, the order did not
        node(2, {4: 5_100, 6: 8_600}),  # two rows swap places, one of them unchanged
    ))
    async with recorded(app, monkeypatch, (160, 45)) as (pilot, table, laid_out, repainted):
        await next_sample(app, pilot)
        assert laid_out == ["5,100"]
        assert len(repainted) == 1 and repainted[0] is not None and repainted[0].height == 1
        before = strips_by_row(table)
        laid_out.clear()
        repainted.clear()
        await next_sample(app, pilot)
        assert laid_out == ["8,600"]  # the row that only moved is not laid out again ...
        assert None not in repainted and sorted(r.height for r in repainted) == [1, 1]  # a region a line
        after = strips_by_row(table)
        assert after["p:20007:3"] is before["p:20007:3"]  # ... and its line is the one it had


async def test_kept_lines_are_what_the_table_draws_anew():
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
            before = [row.key for row in table.rows]
            await next_sample(app, pilot)
            moved.append([row.key for row in table.rows] != before)
            assert lines(table) == fresh_lines(table)
        assert moved == [False, True, False, True]
        await pilot.press("down", "down")
        assert lines(table) == fresh_lines(table)
        await next_sample(app, pilot)
        assert lines(table) == fresh_lines(table)
        await pilot.press("t")
        assert lines(table) == fresh_lines(table)


def drawn(table: ProcessTable) -> dict[tuple[int, int], tuple]:
    """What the table's rows show, cell by cell: (x, y) -> (character, style); not the cells its
    vertical scrollbar is drawn over."""
    shown = table.scrollable_content_region.width
    return {at: cell for at, cell in drawn_cells(table, range(HEADER, table.size.height)).items() if at[0] < shown}


def stale(before: dict, after: dict, repainted: list) -> list[tuple[int, int]]:
    """The cells that changed but that no repainted region covers: the terminal would keep them."""
    return [at for at, cell in after.items()
            if before.get(at) != cell and not any(r is None or r.contains(*at) for r in repainted)]


def vram_cells(table: ProcessTable) -> tuple[int, int]:
    """(x, width) of the VRAM column's cells, padding included."""
    x = 0
    for key, width in table.columns:
        if key == "vram":
            return x, width + process_rows.PADDING
        x += width + process_rows.PADDING
    raise AssertionError("no VRAM column")


async def test_repainted_regions_span_the_changed_cells_of_a_line_or_of_the_body(monkeypatch):
    # Textual keeps each region a line-API widget asks to repaint until the widget is repainted
    # whole (and its geometry caches key on them): runs of rows, of every length at every place,
    # kept adding regions for hours.
    # The table asks for a changed row's cells alone, from its first changed cell to the end of
    # its last, or, where most rows changed, for one region over the body from the nearest start
    # to the furthest end: a repaint writes the cells asked for (lean_updates), and a process
    # whose memory alone moved costs the terminal its VRAM cell.
    moves = [(0, 1, 2), (3, 4), (0, 5, 6, 7, 8), (2,), (1, 2, 3, 9, 10)]
    ticks, mib = [node(0)], {}
    for t, moved in enumerate(moves, start=1):
        mib.update({n: 1_000 + n * 1_000 + t for n in moved})  # within 1,000 MiB: no row moves
        ticks.append(node(t, dict(mib)))
    app = make_app(ScriptedSource(*ticks))
    async with recorded(app, monkeypatch, (160, 45)) as (pilot, table, _, repainted):
        x, width = vram_cells(table)
        for moved in moves:
            repainted.clear()
            before = drawn(table)
            await next_sample(app, pilot)
            places = sorted(table.rows.place(f"p:{20_000 + n}:{n % 4}") for n in moved)
            assert sorted(repainted) == [Region(x, HEADER + place, width, 1) for place in places]
            assert stale(before, drawn(table), repainted) == []
            assert lines(table) == fresh_lines(table)

    app = make_app(ScriptedSource(*forty(2)))  # every row in view moved its memory, none its place
    async with recorded(app, monkeypatch, (100, 24)) as (pilot, table, _, repainted):
        before = drawn(table)
        await next_sample(app, pilot)
        x, width = vram_cells(table)
        assert repainted == [Region(x, HEADER, width, table.size.height - HEADER)]
        assert stale(before, drawn(table), repainted) == []
        assert lines(table) == fresh_lines(table)


async def test_rows_that_change_places_are_repainted_wherever_their_cells_differ(monkeypatch):
    # Every process's memory moves and the order turns: the rows' lines change in cells all
    # along them, and no changed cell is left out of what is repainted.
    turning = [dataclasses.replace(snap, gpu_processes=tuple(
        dataclasses.replace(p, used_mib=50_000 - ((n * 7 + t * 13) % 40) * 100)
        for n, p in enumerate(snap.gpu_processes))) for t, snap in enumerate(forty(4))]
    app = make_app(ScriptedSource(*turning))
    async with recorded(app, monkeypatch, (100, 24)) as (pilot, table, _, repainted):
        for _ in range(3):
            repainted.clear()
            before = drawn(table)
            await next_sample(app, pilot)
            assert repainted and stale(before, drawn(table), repainted) == []
            assert lines(table) == fresh_lines(table)


def forty(ticks: int) -> list:
    """Forty processes, every one's memory moving on every tick, for a table with room for about ten rows."""
    return [dataclasses.replace(demo_snapshot(), ancestors={}, timestamp=1_700_000_000.0 + t, gpu_processes=tuple(
        visible_process(30_000 + n, n % 4, 50_000 - n * 100 + t, f"python train.py --run {n}") for n in range(40)))
        for t in range(ticks)]


async def test_rows_out_of_view_are_neither_made_nor_laid_out_and_come_in_with_the_newest_figures(monkeypatch):
    # Every process's memory moves on every tick: the build keeps what each row is made from and
    # makes only the rows the table reads, those in view, and lays out only their cells; a row
    # scrolled into view later is made from the newest tick, not the one it was last made for.
    app = make_app(ScriptedSource(*forty(3)))
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        lines(table)
        in_view = table.size.height - HEADER
        assert table.row_count == 40 > in_view
        made: list[str] = []
        own_at = process_rows._Made.at

        def at(self, used_mib, branch):
            made.append(self.row.key)
            return own_at(self, used_mib, branch)

        monkeypatch.setattr(process_rows._Made, "at", at)
        laid_out, _ = recording(table, monkeypatch)
        await next_sample(app, pilot)
        lines(table)
        assert 0 < len([t for t in laid_out if t.replace(",", "").isdigit()]) <= in_view
        await next_sample(app, pilot)
        lines(table)
        assert 0 < len(made) <= 2 * in_view
        assert set(made) == {row.key for row in table.rows[:in_view]}
        await pilot.press("end")
        assert table.cell("p:30039:3", "vram") == "46,102"  # 50,000 - 39 x 100 + the third tick's 2
        assert lines(table) == fresh_lines(table)


async def test_a_new_snapshots_rows_are_built_off_the_ui_thread_and_a_new_view_on_it():
    """The sampling worker builds the rows for the table's view; the UI thread only compares
    them (cProfile sees only the thread that enables it, here the app's). A key that changes the
    view builds its rows at once, on the UI thread, and the next sample is built for it."""
    import cProfile
    import pstats

    app = make_app(ScriptedSource(node(0), node(1, {4: 5_100}), node(2, {4: 5_100, 6: 9_900})))
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(ProcessTable)
        await pilot.pause()
        ui_thread = cProfile.Profile()
        ui_thread.enable()
        await next_sample(app, pilot)
        ui_thread.disable()
        built = {name for (path, _, name) in pstats.Stats(ui_thread).stats if path.endswith("process_rows.py")}
        assert "build_rows" not in built and table.rows == app.tick.rows
        assert table.cell("p:20004:0", "vram") == "5,100"
        await pilot.press("s")  # sort by the next column: this view's rows come from the UI thread
        assert table.view.sort_column != app.tick.rows_view.sort_column
        by_gpu = [row.key for row in table.rows]
        await next_sample(app, pilot)
        assert app.tick.rows_view == table.view and table.rows == app.tick.rows
        assert [row.key for row in table.rows] == by_gpu and table.cell("p:20006:2", "vram") == "9,900"
