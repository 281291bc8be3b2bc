"""A process title reaches the process table as the text it is: markup stays markup-looking text
and control characters (a terminal's escape sequences) are drawn as U+FFFD, never sent.

The titles are real: children titled with setproctitle (as vLLM and Ray title their workers),
listed by the stand-in NVML driver under their real PIDs and read by the live source."""

from __future__ import annotations

from textual.geometry import Region

import fakenvml
from tui_support import wait_for
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.live import LiveSource
from vramtop.widgets.process_table import ProcessTable

ESCAPES = "train \x1b]0;owned\x07 \x1b[2J[bold]x[/bold]"


async def test_a_title_with_escape_sequences_and_markup_is_drawn_as_plain_text(fake_nvml):
    with fakenvml.spawn_processes(ESCAPES) as (pid,):
        fake_nvml.add_process(0, pid, 1_000)
        fake_nvml.write()
        source = LiveSource()
        app = VramtopApp(source, Config(interval=3600.0))
        try:
            async with app.run_test(size=(200, 50)) as pilot:
                table = app.query_one(ProcessTable)
                assert await wait_for(pilot, lambda: any(row.pid == pid for row in table.rows))
                await pilot.press("3")  # the side column away: the command column is wide
                await pilot.pause()
                assert table.cell(f"p:{pid}:0", "command") == ESCAPES  # the data keeps the title as it is
                drawn = "\n".join(strip.text for strip in table.render_lines(Region(0, 0, *table.size)))
                assert not {"\x1b", "\x07"} & set(drawn)
                assert "train \ufffd]0;owned\ufffd \ufffd[2J[bold]x[/bold]" in drawn
        finally:
            source.close()
