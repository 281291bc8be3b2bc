"""The lines that change every tick (the process table's rows, the GPU bars, the header) go to the
terminal in as few segments as their look allows: each segment is its own style sequence in
the output, so cells or pieces of one look drawn as separate segments cost bytes (over SSH) and
compositor work for nothing. Checked on what the widgets draw for the demo node."""

from __future__ import annotations

import pytest
from tui_support import make_app, wait_for
from vramtop.widgets.gpu_bars import GpuPanel
from vramtop.widgets.node_header import NodeHeader
from vramtop.widgets.process_table import HEADER, ProcessTable


def _looks_repeated(widget) -> list[tuple[int, str]]:
    """(line, text) of each segment that looks like the one before it on its line, in the lines
    the widget draws (its border is Textual's)."""
    found = []
    for y in range(widget.size.height):
        last = None
        strip = widget.render_line(y)
        for segment in strip:
            look = segment.style.clear_meta_and_links() if segment.style is not None else None
            if last is not None and look == last:
                found.append((y, segment.text))
            last = look
    return found


@pytest.mark.parametrize("kind", [ProcessTable, GpuPanel, NodeHeader], ids=lambda k: k.__name__)
async def test_next_segments_of_a_drawn_line_differ_in_look(kind):
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.pause()
        widget = app.query_one(kind)
        assert widget.size.height > 0
        assert _looks_repeated(widget) == []


async def test_a_process_row_in_one_look_is_one_segment_with_all_its_cells():
    app = make_app()
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        table = app.query_one(ProcessTable)
        n = next(n for n, row in enumerate(table.rows) if row.kind == "process" and n != table.cursor_row)
        strip = table.render_line(HEADER + n - round(table.scroll_y))
        content = [s for s in strip if s.text.strip()]
        assert len(content) == 1
        row = table.rows[n]
        for key, _ in table.columns:
            assert row.cells[key].strip()[:4] in content[0].text
