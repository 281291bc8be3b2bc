"""Themes: the shipped YAML files, user themes, bad files, live switching, NO_COLOR."""

from __future__ import annotations

import pytest
from textual.theme import BUILTIN_THEMES

from tui_support import make_app, screen_text, wait_for
from vramtop import themes

SHIPPED = ["vramtop-ansi", "vramtop-colorblind", "vramtop-dark", "vramtop-high-contrast", "vramtop-light"]


def test_shipped_themes_load_and_set_every_app_variable():
    found, errors = themes.load_themes([themes.bundled_dir()])
    assert errors == []
    assert sorted(found) == SHIPPED
    for theme in found.values():
        assert set(themes.APP_VARIABLES) <= set(theme.variables), theme.name
    assert found["vramtop-ansi"].ansi and not found["vramtop-light"].dark


@pytest.mark.parametrize("name", ["textual-dark", "nord", "ansi-light"])
def test_any_textual_theme_gets_app_variables_from_its_palette(name):
    defaults = themes.variable_defaults(BUILTIN_THEMES[name])
    assert set(defaults) == set(themes.APP_VARIABLES)
    assert defaults["state-critical"] == BUILTIN_THEMES[name].to_color_system().generate()["error"]


def test_bad_theme_files_are_one_line_each(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nprimary: [1, 2\n")
    (tmp_path / "b.yaml").write_text("name: b\n")
    (tmp_path / "c.yaml").write_text("name: c\nprimary: '#zzzzzz'\n")
    (tmp_path / "d.yaml").write_text("name: d\nprimary: '#112233'\ncolour: red\n")
    (tmp_path / "e.yaml").write_text("- just\n- a list\n")
    (tmp_path / "ok.yaml").write_text("name: ok\nprimary: '#112233'\nvariables:\n  vram-used: '#ff0000'\n")
    found, errors = themes.load_dir(tmp_path)
    assert [t.name for t in found] == ["ok"] and found[0].variables == {"vram-used": "#ff0000"}
    lines = {e.path.name: str(e) for e in errors}
    assert set(lines) == {"a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml"}
    assert all("\n" not in line for line in lines.values())
    assert "line 3" in lines["a.yaml"] or "line 2" in lines["a.yaml"]
    assert "'primary' is required" in lines["b.yaml"]
    assert "bad colour" in lines["c.yaml"]
    assert "unknown field 'colour'" in lines["d.yaml"]


async def test_user_theme_dir_is_read_and_bad_files_show_in_place(tmp_path, monkeypatch):
    folder = tmp_path / "vramtop" / "themes"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("name: mine\nprimary: '#123456'\ndark: true\n")
    (folder / "broken.yaml").write_text("name: broken\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    app = make_app(theme="mine")
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        assert app.theme == "mine"
        assert "theme broken.yaml: 'primary' is required" in screen_text(app)


async def test_unknown_theme_falls_back_and_says_so():
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        assert app.theme == "vramtop-dark"
        assert "theme 'no-such-theme' not found; using vramtop-dark" in screen_text(app)


async def test_switching_theme_live_recolours_the_bars():
    app = make_app(theme="vramtop-dark")
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        dark = app.export_screenshot()
        assert "#4c9be8" in dark  # vramtop-dark's vram-used
        app.theme = "vramtop-high-contrast"
        await pilot.pause()
        bright = app.export_screenshot()
        assert "#4c9be8" not in bright and "#ffffff" in bright
        app.theme = "nord"  # a Textual theme without vramtop's variables still works
        await pilot.pause()
        assert "✖ critical" in screen_text(app)


async def test_no_color_keeps_states_readable(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        text = screen_text(app)
        assert "✖ critical" in text and "▲ low" in text
        assert "█" in text and "▒" in text  # used and reserved differ by glyph too
        assert "#ef5350" not in app.export_screenshot()


async def test_the_cursor_row_follows_focus_and_theme():
    """The table takes its styles once per look, not per repaint: focus moving away, coming back
    and a new theme each draw the cursor row in the look of the moment."""
    from textual.geometry import Region

    from vramtop.widgets.process_table import HEADER, ProcessTable

    app = make_app(theme="vramtop-dark")
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        table = app.query_one(ProcessTable)
        table.focus()
        await pilot.pause()

        def cursor_colours():
            y = 1 + HEADER + table.cursor_row - round(table.scroll_y)  # 1: the border
            (strip,) = table.render_lines(Region(0, y, table.size.width, 1))
            return {seg.style.bgcolor for seg in strip if seg.text.strip(" │")}  # not the border's

        def expected():
            return {table.get_component_rich_style("process-table--cursor").bgcolor}

        focused = cursor_colours()
        assert focused == expected()
        app.query_one("#filter").focus()
        await pilot.pause()
        blurred = cursor_colours()
        assert blurred == expected() != focused
        table.focus()
        await pilot.pause()
        assert cursor_colours() == focused
        app.theme = "vramtop-high-contrast"
        await pilot.pause()
        assert cursor_colours() == expected() != focused
