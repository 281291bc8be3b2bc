"""Keys (sort, filter, pause, fold, help, panels, palette) and the layouts by terminal width."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.widgets import Input

from tui_support import make_app, next_sample, screen_text, wait_for
from vramtop.widgets.help_screen import HelpScreen
from vramtop.widgets.process_rows import PADDING
from vramtop.widgets.process_table import ProcessTable


async def started(app, pilot):
    assert await wait_for(pilot, lambda: app.snapshot is not None)
    return app.query_one(ProcessTable)


def keys(table):
    return [r.key for r in table.rows]


def column(table, name):
    return [table.cell(k, name) for k in keys(table)]


async def test_sort_cycles_columns_and_reverses():
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        table = await started(app, pilot)
        assert table.view.sort_column == "vram" and table.view.reverse
        members = [k for k in keys(table) if k.startswith("p:")]
        vram = [int(table.cell(k, "vram").replace(",", "")) for k in members]
        assert vram == sorted(vram, reverse=True)
        await pilot.press("s")
        assert table.view.sort_column == "cpu"
        assert "CPU%▼" in screen_text(app)
        await pilot.press("s", "s", "s")  # rss -> command -> wraps to gpu
        assert table.view.sort_column == "gpu" and table.view.reverse
        await pilot.press("S")
        assert not table.view.reverse
        gpus = [int(table.cell(k, "gpu")) for k in keys(table) if k.startswith("p:")]
        assert gpus == sorted(gpus)
        await pilot.press("S")
        gpus = [int(table.cell(k, "gpu")) for k in keys(table) if k.startswith("p:")]
        assert gpus == sorted(gpus, reverse=True)
        assert keys(table)[0].startswith("i:")  # the instance stays whole, header first


async def test_filter_keeps_matching_rows_and_escape_clears_it():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await started(app, pilot)
        everything = keys(table)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"tp2")
        assert keys(table) == [everything[0], "p:4103:2"]
        assert "filter: tp2" in screen_text(app)
        await pilot.press("q")  # typed into the box, it does not quit
        assert app.is_running and keys(table) == []  # "tp2q" matches nothing
        await pilot.press("backspace", "enter")
        assert app.focused is table and app.query_one(Input).display
        await pilot.press("slash", "escape")
        assert keys(table) == everything and not app.query_one(Input).display
        assert app.focused is table


async def test_filter_that_matches_nothing_empties_the_table():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await started(app, pilot)
        await pilot.press("slash", *"nosuchthing")
        assert table.row_count == 0
        assert not app.query_one("#detail").display


async def test_pause_stops_sampling_and_says_so():
    from tui_support import ScriptedSource, demo_snapshot

    source = ScriptedSource(demo_snapshot())
    app = make_app(source, interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(app, pilot)
        await pilot.press("p")
        assert app.paused and "PAUSED" in screen_text(app)
        await pilot.pause(0.1)
        calls = source.calls
        await pilot.pause(0.3)
        assert source.calls == calls
        await pilot.press("p")
        assert "PAUSED" not in screen_text(app)
        assert await wait_for(pilot, lambda: source.calls > calls + 1)


async def test_enter_folds_and_unfolds_an_instance():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        table = await started(app, pilot)
        header = keys(table)[0]
        assert len(keys(table)) == 10
        table.move_cursor(row=3)  # a member row folds its instance too
        await pilot.press("enter")
        assert keys(table) == [header] and table.cursor_row == 0
        assert "▸ medgemma/VLLMDeployment" in screen_text(app)
        await pilot.press("space")
        assert len(keys(table)) == 10
        assert "▾ medgemma/VLLMDeployment" in screen_text(app)


async def test_t_switches_to_a_flat_list_with_the_instance_column():
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        table = await started(app, pilot)
        app.action_toggle_panel("side")
        await pilot.pause()
        await pilot.press("t")
        assert all(k.startswith("p:") for k in keys(table))
        assert set(column(table, "instance")) == {"medgemma/VLLMDeployment"}


async def test_help_lists_every_key_and_closes():
    app = make_app()
    async with app.run_test(size=(80, 40)) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for binding in app.BINDINGS + ProcessTable.BINDINGS:
            assert binding.description in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_tab_moves_between_panels():
    from vramtop.ray.demo import DemoRayPoller

    app = make_app()
    app.feed.ray_poller = DemoRayPoller()  # the side column's Ray table takes the focus in turn
    async with app.run_test(size=(160, 45)) as pilot:
        table = await started(app, pilot)
        assert app.focused is table
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            seen.append(app.focused)
        assert any(w.id == "gpus" for w in seen)
        assert any(app.query_one("#side") in w.ancestors_with_self for w in seen)


async def test_panels_collapse_with_number_keys():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await started(app, pilot)
        await pilot.press("1")
        assert not app.query_one("#gpus").display
        assert "✖ critical" not in screen_text(app)
        await pilot.press("1")
        assert "✖ critical" in screen_text(app)
        await pilot.press("R")
        assert app.query_one("#side").region.height > 0
        assert "Ray: not polled" in screen_text(app)
        await pilot.press("3")
        assert "Ray: not polled" not in screen_text(app)


async def test_command_palette_offers_the_actions():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await started(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Pause / resume sampling", "Filter processes", "Open the Ray panel", "Theme", "Keys"):
            assert wanted in titles
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"pause", "enter")
        assert await wait_for(pilot, lambda: app.paused)


@pytest.mark.parametrize(
    "size, layout, columns",
    [
        ((40, 20), "-narrow", ["gpu", "pid", "role", "vram"]),
        ((80, 24), "-medium", ["gpu", "pid", "user", "role", "vram", "cpu", "rss"]),
        ((200, 50), "-wide", ["gpu", "pid", "user", "role", "instance", "vram", "cpu", "rss", "command"]),
    ],
)
async def test_layouts_by_width(size, layout, columns):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        table = await started(app, pilot)
        if layout == "-wide":
            await pilot.press("3")  # without the side panel the table is wide enough for all
        assert layout in app.screen.classes
        assert [key for key, _ in table.columns] == columns
        # Nothing that matters is cut off: every column ends inside the screen.
        used = sum(width + PADDING for _, width in table.columns)
        assert table.region.x + used <= size[0]
        text = screen_text(app)
        assert "DEMO" in text and "✖ critical" in text and "32 free" in text
        assert "medgemma" in text


async def test_narrow_pane_keeps_every_gpu_and_the_memory_column():
    app = make_app()
    async with app.run_test(size=(40, 20)) as pilot:
        await started(app, pilot)
        lines = screen_text(app).splitlines()
        for gpu, free in enumerate(("32", "1,256", "1,254", "1,364")):
            assert any(line.lstrip().startswith(f"{gpu} ") and f"{free} free" in line for line in lines)
        assert any("MiB" in line for line in lines)
        assert all(len(line.rstrip()) <= 40 for line in lines)
        assert not app.query_one("#side").display  # side panels only on request when narrow
        await pilot.press("3")
        assert "Ray: not polled" in screen_text(app)


async def test_resizing_moves_between_layouts_and_keeps_the_cursor():
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        table = await started(app, pilot)
        table.move_cursor(row=4)
        await pilot.pause()
        chosen = keys(table)[4]
        await pilot.resize_terminal(40, 20)
        await pilot.pause()
        assert "-narrow" in app.screen.classes
        assert keys(table)[table.cursor_row] == chosen
        await pilot.resize_terminal(90, 30)
        await pilot.pause()
        assert "-medium" in app.screen.classes and keys(table)[table.cursor_row] == chosen
        await next_sample(app, pilot)
        assert keys(table)[table.cursor_row] == chosen
