"""The live view on the demo node and on scripted sources: header, bars, table, errors."""

from __future__ import annotations

import dataclasses

import pytest

from tui_support import (
    ScriptedSource, demo_snapshot, hidden_process, make_app, next_sample, screen_text, visible_process, wait_for,
)
from vramtop.snapshot import SourceError
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.process_table import ProcessTable


async def test_demo_node_header_bars_and_table():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        text = screen_text(app)
        assert "DEMO" in text and "demo-a10-node" in text
        assert "driver 550.127.05" in text and "CUDA 12.4" in text
        snap = app.snapshot
        assert f"{snap.used_mib:,}/{snap.total_mib:,} MiB" in text
        assert f"free {snap.free_mib:,} MiB" in text
        bars = app.query_one(GpuPanel).bars
        assert [b.gpu.index for b in bars] == [0, 1, 2, 3]
        assert [b.state for b in bars] == ["critical", "low", "low", "low"]
        assert "✖ critical" in text and "▲ low" in text
        table = app.query_one(ProcessTable)
        keys = [r.key for r in table.rows]
        assert keys[0].startswith("i:")  # the replica's header row first: it holds the most
        assert len(keys) == 1 + len(snap.gpu_processes)
        assert "medgemma/VLLMDeployment" in text and "Worker_TP0" in text


def _grown(mib: int):
    """The demo node, then the same node with process 4100's memory grown by ``mib``."""
    first = demo_snapshot()
    grown = [dataclasses.replace(p, used_mib=p.used_mib + mib) if p.pid == 4100 else p
             for p in first.gpu_processes]
    return first, dataclasses.replace(first, gpu_processes=tuple(grown))


async def test_live_source_switch_keeps_cursor_on_the_same_process_and_updates_in_place():
    first, second = _grown(25_000)
    app = make_app(ScriptedSource(first, second))
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is first)
        table = app.query_one(ProcessTable)
        target = "p:4100:0"
        table.move_cursor(row=[r.key for r in table.rows].index(target))
        await pilot.pause()
        await next_sample(app, pilot)
        assert app.snapshot is second
        order = [r.key for r in table.rows]
        assert order[1] == target  # largest member now, right under its instance
        assert order[table.cursor_row] == target  # the cursor followed the process
        assert table.cell(target, "vram") == "26,234"


@pytest.mark.parametrize("mib", [1_000, 25_000], ids=["in place", "moved up by the sort"])
async def test_a_rows_new_figures_reach_the_detail_line_from_the_tick_and_only_a_move_is_announced(mib):
    """The table announces the cursor's move to another row; a tick's new figures for the same
    row, and its new place in the order, are shown by the app from the tick (no message through
    the screen's containers)."""
    first, second = _grown(mib)
    app = make_app(ScriptedSource(first, second))
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is first)
        table, detail = app.query_one(ProcessTable), app.query_one("#detail")
        announced = []
        own = table.post_message
        table.post_message = lambda message: (
            isinstance(message, ProcessTable.Highlighted) and announced.append(message.row and message.row.key)
        ) or own(message)
        table.move_cursor(row=[r.key for r in table.rows].index("p:4100:0"))
        await pilot.pause()
        before, place = detail.text, table.cursor_row
        assert table.highlighted_row.detail in before
        await next_sample(app, pilot)
        await pilot.pause()
        after = detail.text
        assert (table.cursor_row != place) == (mib == 25_000) and table.highlighted_row.key == "p:4100:0"
        assert announced == ["p:4100:0"]  # the move; not the tick
        assert after != before and table.highlighted_row.detail in after


async def test_unchanged_snapshot_repaints_no_line():
    app = make_app(ScriptedSource(demo_snapshot()))
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        table = app.query_one(ProcessTable)
        repainted = []
        own = table.refresh
        table.refresh = lambda *regions, **kw: repainted.append(regions) or own(*regions, **kw)
        await next_sample(app, pilot)
        assert repainted == []


async def test_source_that_raises_mid_run_keeps_the_last_picture():
    good = demo_snapshot()
    app = make_app(ScriptedSource(good, RuntimeError("NVML call timed out\nsecond line")))
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is good)
        rows = app.query_one(ProcessTable).row_count
        await next_sample(app, pilot)
        text = screen_text(app)
        assert "sample failed: NVML call timed out" in text and "second line" not in text
        assert app.snapshot is good and app.query_one(ProcessTable).row_count == rows
        assert "demo-a10-node" in text and "✖ critical" in text
        assert text.count("not live: last read") == 4 and "4 GPUs (4 not live)" in text  # not shown as live
        assert all(bar.stale_age is not None for bar in app.query_one(GpuPanel).bars)


async def test_first_sample_failing_still_shows_a_view():
    app = make_app(ScriptedSource(OSError("libnvidia-ml.so.1: cannot open shared object file")))
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: app.sample_error is not None)
        text = screen_text(app)
        assert "sample failed: libnvidia-ml.so.1" in text and "waiting for the first sample" in text


async def test_a_gpu_going_lost_marks_its_bar_and_the_others_keep_updating():
    first = demo_snapshot()
    gpus = list(first.gpus)
    gpus[2] = dataclasses.replace(gpus[2], lost=True, error="GPU is lost")
    gpus[0] = dataclasses.replace(gpus[0], utilization_pct=12)
    second = dataclasses.replace(
        first, gpus=tuple(gpus), errors=(SourceError("nvml", "GPU 2 lost"),),
        gpu_processes=tuple(p for p in first.gpu_processes if p.gpu_index != 2),
    )
    app = make_app(ScriptedSource(first, second))
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is first)
        await next_sample(app, pilot)
        bars = {b.gpu.index: b for b in app.query_one(GpuPanel).bars}
        assert bars[2].state == "lost" and bars[0].gpu.utilization_pct == 12
        text = screen_text(app)
        assert "? lost" in text and "GPU lost" in text
        assert "nvml: GPU 2 lost" in text  # the status line
        assert "⚠ GPU is lost" in text  # the GPU's own error, in place
        assert "util 12%" in text


async def test_source_errors_show_in_the_status_line_and_the_rest_stays_live():
    snap = demo_snapshot(errors=(SourceError("processes", "permission denied"),))
    app = make_app(ScriptedSource(snap))
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is snap)
        text = screen_text(app)
        assert "processes: permission denied" in text
        assert app.query_one(ProcessTable).row_count > 0


async def test_a_pid_not_visible_here_still_shows_its_memory_and_why():
    snap = demo_snapshot(
        gpu_processes=demo_snapshot().gpu_processes + (hidden_process(77_777, 1, 3_210),)
    )
    app = make_app(ScriptedSource(snap))
    async with app.run_test(size=(140, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is snap)
        table = app.query_one(ProcessTable)
        key = "p:77777:1"
        assert table.cell(key, "vram") == "3,210"
        assert table.cell(key, "role") == "not visible"
        assert table.cell(key, "command") == "another PID namespace"
        table.move_cursor(row=[r.key for r in table.rows].index(key))
        await pilot.pause()
        assert "not visible here (another PID namespace)" in app.query_one("#detail").text


async def test_the_ui_never_waits_on_a_slow_source():
    import threading

    release = threading.Event()

    class Slow:
        def sample(self):
            release.wait(10)
            return demo_snapshot()

    app = make_app(Slow())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")  # keys work while the sample is still running
        assert app.paused and "PAUSED" in screen_text(app)
        await pilot.press("p")
        release.set()
        assert await wait_for(pilot, lambda: app.snapshot is not None)


async def test_panels_subscribe_to_new_snapshots():
    first = demo_snapshot()
    second = demo_snapshot(hostname="other-node")
    app = make_app(ScriptedSource(first, second))
    seen = []
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is first)
        app.query_one("#side").watch(app, "tick", lambda tick: seen.append(tick.snapshot), init=False)
        await next_sample(app, pilot)
        assert await wait_for(pilot, lambda: seen == [second])
        assert app.instances and app.instances[0].name == "medgemma/VLLMDeployment"


async def test_table_handles_processes_appearing_and_leaving():
    base = demo_snapshot()
    extra = visible_process(9_001, 3, 800, "python train.py")
    more = dataclasses.replace(base, gpu_processes=base.gpu_processes + (extra,))
    fewer = dataclasses.replace(base, gpu_processes=tuple(p for p in base.gpu_processes if p.pid != 4100))
    app = make_app(ScriptedSource(base, more, fewer))
    async with app.run_test(size=(120, 40)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is base)
        table = app.query_one(ProcessTable)
        await next_sample(app, pilot)
        assert "p:9001:3" in [r.key for r in table.rows]
        await next_sample(app, pilot)
        keys = [r.key for r in table.rows]
        assert "p:9001:3" not in keys and "p:4100:0" not in keys
        assert len(keys) == len(set(keys)) == 1 + len(fewer.gpu_processes)


async def test_a_sample_that_cannot_start_ends_the_app_with_its_error_not_silently():
    # The next sample is armed on the event loop, outside Textual's timers: an error there must
    # still reach the app (shown, and the app ends) rather than stop sampling without a word.
    app = make_app(interval=0.05)
    with pytest.raises(RuntimeError, match="cannot start"):
        async with app.run_test(size=(120, 40)) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)

            def broken() -> None:
                raise RuntimeError("cannot start")

            app.sample_now = broken
            await pilot.pause(1.0)
    assert app.return_code == 1
