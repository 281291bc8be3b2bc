"""The live app with its telemetry poller and the stop key, on the demo node."""

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.demo import DemoSource
from vramtop.telemetry.demo import DemoTelemetry
from vramtop.widgets.process_table import ProcessTable
from vramtop.widgets.stop_dialog import StopDialog
from tui_support import gpu_lines


async def test_telemetry_rides_on_the_next_snapshot_and_reaches_the_detail_line():
    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05), telemetry_poller=DemoTelemetry(clock=lambda: 0.0))
    async with app.run_test(size=(160, 45)) as pilot:
        for _ in range(60):
            await pilot.pause(0.05)
            if app.snapshot is not None and app.snapshot.telemetry is not None:
                break
        assert app.snapshot.telemetry is not None
        table = app.query_one(ProcessTable)
        table.move_cursor(row=0)
        await pilot.pause(0.1)
        assert table.highlighted_row.kind == "instance"
        detail = app.query_one("#detail").text
        summary = app.snapshot.telemetry.for_instance(table.highlighted_row.instance_key).summary
        assert summary and summary[:30] in detail
        check = app.snapshot.telemetry.for_instance(table.highlighted_row.instance_key).kv_check
        assert check.actual_blocks == 16_912 and check.text in detail  # the fit engine checked live


async def test_k_on_the_demo_node_asks_and_refuses_to_signal_a_simulated_process():
    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query_one(ProcessTable).row_count > 1:
                break
        app.query_one(ProcessTable).move_cursor(row=1)
        await pilot.pause(0.05)
        await pilot.press("k")
        await pilot.pause(0.1)
        assert isinstance(app.screen, StopDialog)
        assert app.screen.plan.refusal  # demo PIDs are never signalled
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, StopDialog)


async def test_w_opens_the_what_if_panel_beside_the_live_view_and_closes_it():
    from vramtop.widgets.whatif.panel import WhatIfPanel

    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("w")
        await pilot.pause(0.2)
        panels = app.query(WhatIfPanel)
        assert len(panels) == 1 and panels.first().display
        assert app.query_one(ProcessTable).display  # beside the live view, not instead of it
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not any(p.display for p in app.query(WhatIfPanel))


async def test_a_missing_ray_dashboard_is_a_quiet_line_in_the_ray_tab_and_the_gpus_stay_live():
    import socket

    from vramtop.ray.poller import RayPoller
    from vramtop.widgets.ray_panel import RayPanel

    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = iter(range(10**6))
    app = VramtopApp(DemoSource(clock=lambda: float(next(clock))), Config(interval=0.05),
                     ray_poller=RayPoller(f"http://127.0.0.1:{port}", timeout=0.5))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("R")
        for _ in range(60):
            await pilot.pause(0.05)
            if app.snapshot is not None and app.snapshot.ray is not None:
                break
        first = app.snapshot.timestamp
        assert not app.snapshot.ray.found
        await pilot.pause(0.3)
        assert app.snapshot.timestamp > first  # sampling goes on
        text = " ".join(str(w.render()) for w in app.query_one(RayPanel).query("*")) + str(app.query_one(RayPanel).render())
        assert f"no ray at 127.0.0.1:{port}" in text.lower() or "unreachable" in text.lower()


async def _press_once_shown(app: VramtopApp, key: str) -> None:
    """Run ``app`` until its first picture is on screen, press ``key``, let it act, and quit."""
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        await pilot.press(key)
        await pilot.pause(0.2)


async def test_ctrl_s_saves_an_svg_of_the_screen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    await _press_once_shown(VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05)), "ctrl+s")
    (svg,) = tmp_path.glob("*.svg")
    assert "Worker_TP0" in svg.read_text() and "DEMO" in svg.read_text()


async def test_trend_warnings_and_notices_reach_the_status_line():
    from vramtop.telemetry.model import Telemetry, TrendWarning
    from vramtop.widgets.status_line import StatusLine

    class Growing:
        def poll(self, snapshot):
            return Telemetry(0.0, notices=("vramtop runs in its own PID namespace",),
                             trends=(TrendWarning(10, 0, 50.0, 240.0, "pid 10 grows: GPU 0 full in about 4 min"),))

    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05), telemetry_poller=Growing())
    async with app.run_test(size=(160, 45)) as pilot:
        for _ in range(40):
            await pilot.pause(0.05)
            if app.snapshot is not None and app.snapshot.telemetry is not None:
                break
        await pilot.pause(0.1)
        text = " ".join(app.query_one(StatusLine).messages)
        assert "GPU 0 full in about 4 min" in text and "PID namespace" in text


async def test_more_warnings_than_four_lines_hold_end_in_how_many_are_not_shown():
    """A node whose hundred processes all grow: four lines, each message whole or cut with "…",
    and the count of the rest, not ninety lines silently clipped."""
    from vramtop.telemetry.model import Telemetry, TrendWarning
    from vramtop.widgets.status_line import StatusLine

    class Growing:
        def poll(self, snapshot):
            return Telemetry(0.0, trends=tuple(
                TrendWarning(p, 0, 37.0, 1_600.0, f"pid {p} (python train.py) grows 37 MiB/s: GPU 0 full in about 27 min")
                for p in range(1_000, 1_100)))

    for width in (160, 40):
        app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05), telemetry_poller=Growing())
        async with app.run_test(size=(width, 45)) as pilot:
            line = app.query_one(StatusLine)
            for _ in range(60):
                await pilot.pause(0.05)
                if len(line.messages) == 100:
                    break
            await pilot.pause(0.2)
            drawn = [strip.text.rstrip() for strip in line.render_lines(line.region.reset_offset)]
            assert line.size.height == 4 and len(drawn) == 4
            shown = sum(text.count("⚠") for text in drawn)
            assert drawn[-1].endswith(f"+{100 - shown} more") and shown >= (4 if width == 160 else 3)
            assert all(len(text) <= line.region.width for text in drawn)
            if width == 40:
                assert drawn[0].endswith("…")


async def test_a_warning_whose_figures_move_is_repainted_without_a_layout(monkeypatch):
    """New text on as many lines repaints the status line; a layout (of the whole screen) comes
    only when it needs another line, and a line that went keeps its room for a while."""
    from vramtop.telemetry.model import Telemetry, TrendWarning
    from vramtop.widgets import status_line
    from vramtop.widgets.status_line import StatusLine

    monkeypatch.setattr(status_line, "HOLD_S", 0.6)

    texts = ["pid 10 grows: GPU 0 full in about 4 min"]

    class Growing:
        def poll(self, snapshot):
            return Telemetry(0.0, trends=tuple(TrendWarning(10, 0, 50.0, 240.0, t) for t in texts))

    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05), telemetry_poller=Growing())
    async with app.run_test(size=(160, 45)) as pilot:
        line = app.query_one(StatusLine)

        async def shown(text: str) -> None:
            for _ in range(60):
                await pilot.pause(0.05)
                if text in " ".join(line.messages):
                    await pilot.pause(0.1)
                    return
            raise AssertionError(f"{text!r} never reached the status line")

        await shown("about 4 min")
        layouts, height = line._layout_updates, line.size.height
        texts[0] = "pid 10 grows: GPU 0 full in about 3 min"
        await shown("about 3 min")
        assert "about 3 min" in line.render().plain
        assert (line._layout_updates, line.size.height) == (layouts, height) == (layouts, 1)
        texts.append("pid 11 grows: GPU 1 full in about 9 min " + "x" * 150)
        await shown("about 9 min")
        assert line._layout_updates > layouts and line.size.height == 2
        layouts = line._layout_updates
        del texts[1]
        for _ in range(60):
            await pilot.pause(0.05)
            if "about 9 min" not in " ".join(line.messages):
                break
        await pilot.pause(0.1)
        assert (line._layout_updates, line.size.height, line.render().plain.count("grows")) == (layouts, 2, 1)
        await pilot.pause(0.8)
        assert line._layout_updates > layouts and line.size.height == 1
        texts.clear()
        for _ in range(60):
            await pilot.pause(0.05)
            if not line.messages:
                break
        await pilot.pause(0.1)
        assert line.display and line.size.height == 1
        await pilot.pause(0.8)
        assert not line.display



async def test_a_recording_replays_through_the_same_views_with_its_controls(tmp_path):
    from vramtop.history import History
    from vramtop.history import save_history
    from vramtop.sources.replay import ReplaySource
    from vramtop.widgets.node_header import NodeHeader

    history = History()
    demo = DemoSource(clock=lambda: 0.0)
    for t in range(5):
        history.add(DemoSource(clock=lambda t=t: 1.7e9 + t).sample())
    path = tmp_path / "node.vtrec"
    save_history(history, path, interval=1.0)

    app = VramtopApp(ReplaySource(path), Config(interval=0.05))
    async with app.run_test(size=(160, 45)) as pilot:
        for _ in range(60):
            await pilot.pause(0.05)
            if app.snapshot is not None:
                break
        assert app.snapshot.source == "replay" and app.snapshot.free_mib == demo.sample().free_mib
        await pilot.press("p")  # pauses the recording, not the sampling
        await pilot.press("greater_than_sign")
        await pilot.pause(0.2)
        at = app.snapshot.timestamp
        await pilot.press("less_than_sign")
        await pilot.pause(0.2)
        assert app.snapshot.timestamp == at - 1
        header = app.query_one(NodeHeader).text
        assert "REPLAY" in header and "paused" in header and f"#{app.source.index + 1}/5" in header  # where it stands


async def test_ctrl_r_dumps_the_last_minutes_to_a_recording(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.05))
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(40):
            await pilot.pause(0.05)
            if len(app.history.snapshots()) >= 3:
                break
        await pilot.press("ctrl+r")
        await pilot.pause(0.1)
    (rec,) = tmp_path.glob("*.vtrec")
    from vramtop.sources.replay import ReplaySource

    assert ReplaySource(rec).count >= 3


def _recording(tmp_path, count: int = 10):
    from vramtop.history import History
    from vramtop.history import save_history

    history = History()
    for t in range(count):
        history.add(DemoSource(clock=lambda t=t: 1.7e9 + t).sample())
    path = tmp_path / "node.vtrec"
    save_history(history, path, interval=1.0)
    return path


async def test_g_in_a_replay_jumps_to_the_typed_time_and_says_what_it_cannot_read(tmp_path):
    from vramtop.sources.replay import ReplaySource
    from vramtop.widgets.jump_dialog import JumpDialog

    app = VramtopApp(ReplaySource(_recording(tmp_path)), Config(interval=0.05))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("p")
        await pilot.press("g")
        await pilot.pause(0.1)
        assert isinstance(app.screen, JumpDialog)
        await pilot.press(*"+7s", "enter")
        await pilot.pause(0.2)
        assert app.snapshot.timestamp == 1.7e9 + 7
        await pilot.press("g")
        await pilot.press(*"now-5s", "enter")
        await pilot.pause(0.2)
        assert app.snapshot.timestamp == 1.7e9 + 2
        await pilot.press("g")
        await pilot.press(*"soon", "enter")
        await pilot.pause(0.2)
        assert app.snapshot.timestamp == 1.7e9 + 2
        assert any("cannot read 'soon'" in n.message for n in app._notifications)


async def test_r_writes_the_report_of_the_screen_with_the_remembered_what_if_candidates(tmp_path, monkeypatch):
    from vramtop.widgets.whatif import form as wf, persist

    monkeypatch.chdir(tmp_path)
    form = wf.FormState(model="amsaravi/medgemma-27b-it:q8", engine="ollama")
    assert persist.save_memory(persist.WhatIfMemory(current=form)) is None
    await _press_once_shown(VramtopApp(DemoSource(clock=lambda: 1.7e9), Config(interval=3600.0)), "r")
    (report,) = tmp_path.glob("vramtop-report-*.md")
    text = report.read_text()
    assert text.startswith("# VRAM report: demo-a10-node")
    assert f"### {wf.describe(form)}" in text and "RED" in text  # the seed's 27B does not fit beside vLLM
    assert "| 0 | NVIDIA A10 | 23,028 MiB | 513 MiB | 22,483 MiB | **32 MiB** | ✖ critical |" in text  # as on screen


async def test_serving_telemetry_is_read_at_its_own_interval_not_every_tick():
    from vramtop.telemetry.model import Telemetry

    class Counting:
        polls = 0

        def poll(self, snapshot):
            Counting.polls += 1
            return Telemetry(snapshot.timestamp)

    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=0.02, telemetry_interval=0.5),
                     telemetry_poller=Counting())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(1.2)
        ticks = app.history.added
    assert ticks >= 10 and 2 <= Counting.polls <= 4  # at 0, 0.5 and 1.0 s (give or take a tick)


async def test_replay_keys_do_nothing_in_a_live_view():
    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=3600.0))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        shown = app.snapshot
        await pilot.press("less_than_sign", "greater_than_sign", "left_square_bracket", "g")
        await pilot.pause(0.2)
        assert app.screen is app.screen_stack[0] and app.snapshot is shown  # no dialog, no new sample


async def test_r_writes_in_the_configured_language(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = VramtopApp(DemoSource(clock=lambda: 1.7e9), Config(interval=3600.0, report_lang="es"))
    await _press_once_shown(app, "r")
    (report,) = tmp_path.glob("vramtop-report-*.md")
    assert report.read_text().startswith("# Informe de VRAM: demo-a10-node")


async def test_a_node_at_rest_moves_only_the_clock_bound_parts():
    import dataclasses

    from tui_support import ScriptedSource

    first = DemoSource(clock=lambda: 1.7e9).sample()
    source = ScriptedSource(first)
    app = VramtopApp(source, Config(interval=3600.0))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        grouped = app.instances

        async def tick(snapshot):
            source.items.append(snapshot)
            app.sample_now()
            await pilot.pause(0.2)

        await tick(dataclasses.replace(first, timestamp=first.timestamp + 1))
        assert app.snapshot.timestamp == first.timestamp + 1 and app.history.added == 2
        assert app.instances is grouped  # nothing regrouped, nothing redrawn
        moved = dataclasses.replace(first.gpu_processes[0], used_mib=first.gpu_processes[0].used_mib + 100)
        await tick(dataclasses.replace(first, timestamp=first.timestamp + 2,
                                       gpu_processes=(moved,) + first.gpu_processes[1:]))
        assert app.instances is not grouped and app.instances[0].total_mib == grouped[0].total_mib + 100


async def test_r_focuses_the_ray_table_and_sets_no_screen_class_where_the_column_shows_already():
    """At 160 columns the side column is shown: ``R`` focuses the Ray table and leaves the screen's
    classes as they are (a class set on the screen restyles every widget: half a second on a
    cluster's process table); in a 40-column pane it brings the column up."""
    from vramtop.ray.demo import DemoRayPoller

    for columns in (160, 40):
        app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=3600.0), ray_poller=DemoRayPoller(clock=lambda: 0.0))
        async with app.run_test(size=(columns, 45)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if app.query("#ray-table"):
                    break
            shown, classes = app.query_one("#side").display, set(app.screen.classes)
            await pilot.press("R")
            await pilot.pause()
            assert app.focused is app.query_one("#ray-table")
            assert app.query_one("#side").display
            if shown:
                assert set(app.screen.classes) == classes
            else:
                assert set(app.screen.classes) == classes | {"-side"}
        assert shown == (columns == 160)


async def test_a_tick_landing_while_the_app_shuts_down_is_dropped():
    """The app takes its screen apart widget by widget as it shuts down; a tick (or the process
    table's cursor) that lands when the GPU bars are gone but other widgets are still there is
    dropped, not a NoMatches error.
    Here a widget of the screen, while it is being unmounted (so still on the screen), waits for
    the GPU bars to go and then hands the app the last tick again, as a sample ending then does."""
    import asyncio

    from textual.widget import Widget

    from vramtop.app import SnapshotReady
    from vramtop.widgets.gpu_bars import GpuPanel

    class LastToGo(Widget):
        bars_gone = False

        async def on_unmount(self) -> None:
            app = self.app
            for _ in range(200):
                if not app.screen.query(GpuPanel):
                    break
                await asyncio.sleep(0.01)
            self.bars_gone = not app.screen.query(GpuPanel) and bool(app.screen.children)
            app.post_message(SnapshotReady(app.tick))
            app.post_message(ProcessTable.Highlighted(None))  # and the table's cursor moved
            await asyncio.sleep(0.3)  # the app handles them meanwhile

    app = VramtopApp(DemoSource(clock=lambda: 0.0), Config(interval=3600.0))
    last = LastToGo()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.tick is not None:
                break
        await app.screen.mount(last)
    assert last.bars_gone  # and the app raised nothing (run_test re-raises what it did)


async def test_the_gpu_bars_and_the_process_table_take_each_published_tick():
    """Attributes down: the app only sets its ``tick``; the bars and the table, like every
    panel, watch it (nothing is pushed into them)."""
    import dataclasses

    from vramtop.widgets.tick import derive

    app = VramtopApp(DemoSource(clock=lambda: 1.7e9), Config(interval=3600.0))
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause(0.2)
        first = app.snapshot
        gpu0 = dataclasses.replace(first.gpus[0], used_mib=first.gpus[0].used_mib - 5_000,
                                   free_mib=first.gpus[0].free_mib + 5_000)
        proc = dataclasses.replace(first.gpu_processes[0], used_mib=first.gpu_processes[0].used_mib + 777)
        moved = dataclasses.replace(first, timestamp=first.timestamp + 1, gpus=(gpu0, *first.gpus[1:]),
                                    gpu_processes=(proc, *first.gpu_processes[1:]))
        app.tick = derive(moved, app.tick)
        await pilot.pause(0.1)
        assert f"{gpu0.used_mib:,}/" in gpu_lines(app, 0)[0]
        table = app.query_one(ProcessTable)
        assert table.snapshot is moved and table.instances == app.tick.instances


async def test_the_header_cuts_no_figure_in_a_40_column_pane():
    """Eight H100s: "used 156,568/652,472 MiB (152.9/637.2 GiB)" is wider than a 40-column pane's
    header; it drops the GiB, which only repeat it, and no figure ends in "…"."""
    import dataclasses

    from textual.geometry import Region

    from tui_support import ScriptedSource, demo_snapshot, make_app, wait_for
    from vramtop.widgets.node_header import NodeHeader

    base = demo_snapshot()
    gpus = tuple(dataclasses.replace(base.gpus[0], index=i, total_mib=81_559, used_mib=19_571, free_mib=61_443)
                 for i in range(8))
    app = make_app(ScriptedSource(dataclasses.replace(base, gpus=gpus, gpu_processes=())))
    async with app.run_test(size=(40, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        header = app.query_one(NodeHeader)
        drawn = [strip.text.strip() for strip in header.render_lines(Region(0, 0, *header.region.size))]
        used = f"used {app.snapshot.used_mib:,}/{app.snapshot.total_mib:,} MiB"
        assert used in drawn and not any("…" in line for line in drawn)
        assert f"free {app.snapshot.free_mib:,} MiB" in " ".join(drawn)
    app = make_app(ScriptedSource(dataclasses.replace(base, gpus=gpus, gpu_processes=())))
    async with app.run_test(size=(160, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        assert " GiB) · free " in app.query_one(NodeHeader).text  # where there is room, the GiB stay
