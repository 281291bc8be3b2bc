"""The process table: a line-API view that draws only the lines in view whose text changed.

Each tick the rows from ``process_rows.build_rows`` are compared place by place with the rows
shown, in view only: a line is repainted only where the row at that place now shows other text
(or the cursor came or went), from its first changed cell to the end of its last, and a row
out of view is not even made until it comes in. A row's line is kept by what it shows (its
cells' text, emphasis, cursor and hover), not by where it stands, so a row that moved up or down
is not drawn again; a new line is put together from kept cells. It looks exactly as Textual's
DataTable did (the same component styles, padding and ellipsis).

On a busy node the CPU % and RSS of every process move on every tick while its VRAM stays put,
so figures in view that move alone are shown every ``VOLATILE_EVERY_S`` seconds; any other
change (memory, a new process, the order) shows at once, with them. Cells are plain text:
process titles are never read as markup, and control characters in them are shown as U+FFFD.
"""

from __future__ import annotations

from dataclasses import replace

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vramtop.analysis.instances import Instance
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.drawn_geometry import GeometryOnce
from vramtop.widgets.lean_refresh import PromptlessRefresh
from vramtop.widgets.pieces import joined, printable
from vramtop.widgets.process_rows import (
    COLUMN, NO_ROWS, PADDING, Row, Rows, RowView, build_rows, columns_for_width, short_label,
)
from vramtop.widgets.tick import Tick


VOLATILE = ("cpu", "rss")  # columns whose figures move on every tick of a busy node
VOLATILE_EVERY_S = 3.0
HEADER = 1  # lines of column labels above the rows; they do not scroll
KEPT_TICKS = 2  # the kept lines and cells hold this many ticks of the rows in view, each row changing
NORMAL, HOVER, CURSOR = 0, 1, 2  # a line's state: flags


def _key(row: Row | None) -> str | None:
    return None if row is None else row.key


def _only_volatile(old: Row, new: Row) -> bool:
    """``new`` differs from ``old`` in volatile figures at most."""
    return (old.kind == new.kind and old.hidden == new.hidden and old.instance_key == new.instance_key
            and all(old.cells.get(k) == v for k, v in new.cells.items() if k not in VOLATILE))


def fit(text: str, width: int, right: bool, ellipsis: bool = True) -> tuple[str, str, str]:
    """(spaces before, text, spaces after) filling ``width`` cells as Rich lays out a one-line
    cell: right-aligned text loses its trailing spaces, text too long ends in "…" (or is cut)."""
    text = printable(text)
    if right:
        text = text.rstrip()
    length = cell_len(text)
    if length > width:
        text = set_cell_size(text, width - 1) + "…" if ellipsis else set_cell_size(text, width)
        length = cell_len(text)
    room = " " * max(0, width - length)
    return (room, text, "") if right else ("", text, room)


class ProcessTable(PromptlessRefresh, GeometryOnce, ScrollView, can_focus=True):
    """GPU processes grouped under their serving instance; enter/space folds an instance."""

    BINDINGS = [
        Binding("enter,space", "toggle_instance", "Fold / unfold the instance", show=False),
        # moving the cursor: the help lists these keys once, by hand, so they have no description
        Binding("up", "cursor(-1)", show=False),
        Binding("down", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home,ctrl+home", "cursor_to(0)", show=False),
        Binding("end,ctrl+end", "cursor_to(-1)", show=False),
    ]

    COMPONENT_CLASSES = {"process-table--header", "process-table--cursor", "process-table--hover"}

    DEFAULT_CSS = """
    ProcessTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .process-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .process-table--header { background-tint: $foreground 5%; }
        }
        & > .process-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .process-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .process-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .process-table--hover { background: $block-hover-background; }
    }
    """

    class Highlighted(Message):
        """The cursor is on another row: ``row`` is None when there are none. A tick's new figures
        for the same row are not announced: the app shows them from the tick it publishes."""

        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.view = RowView()  # what the user chose: sort, grouping, filter, folded instances
        self.snapshot: NodeSnapshot | None = None
        self.instances: tuple[Instance, ...] = ()
        self.rows: Rows = NO_ROWS  # in the order shown
        self.cursor_row = 0
        self._hover_row: int | None = None  # the row under the mouse, while it is there
        self._keys: tuple[str, ...] = ()  # the columns shown
        self.columns: tuple[tuple[str, int], ...] = ()  # (column, width) shown, from the table's width
        self._looks: dict[int, tuple] = {}  # by place, for rows in view or drawn: what the line shows
        self._volatile_at = float("-inf")  # snapshot time of the last CPU / RSS figures shown
        self._styles: tuple[Style, ...] = ()  # base, header, cursor, hover: taken once per look
        self._styles_drawn: tuple[Style, ...] = ()  # what the kept cells and lines were drawn in
        self._state_looks: dict[int, tuple[Style, Style]] = {}  # by state: from _styles
        # Kept for the rows in view over a few ticks, no more (sized to the terminal once laid
        # out, by _size_kept; until then for a 50-line one): on a node whose memory moves, each
        # tick brings new cells and lines, and a larger cache only fills up (512 lines held 0.5
        # MiB more than 160 at 8 GPUs x 64 processes).
        self._kept_cells: dict[tuple, tuple[tuple[str, Style], ...]] = {}
        self._kept_cells_max = KEPT_TICKS * 50 * 10
        self._kept_lines: LRUCache[tuple, Strip] = LRUCache(KEPT_TICKS * 50)
        self.border_title = "Processes"

    # -- data in ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)  # the app publishes each tick (attributes down)

    def _take_tick(self, tick: Tick | None) -> None:
        if tick is not None and not tick.at_rest:  # a node at rest shows what it showed
            self.show(tick.snapshot, tick.instances, tick.rows if tick.rows_view == self.view else None)

    def show(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...], rows: Rows | None = None) -> None:
        """Show a new snapshot (and its instances, grouped once by the app); ``rows``: its rows
        for the table's view, where the app built them off the UI thread."""
        self.snapshot = snapshot
        self.instances = instances
        self._apply(rows=rows)

    def on_resize(self) -> None:
        wanted = columns_for_width(self.size.width)
        if wanted != self.columns:
            self.columns = wanted
            self._keys = tuple(key for key, _ in wanted)
            self._looks = {}
            self._set_virtual_size()
            self.refresh()
            self._apply()
        self._size_kept()

    def _size_kept(self) -> None:
        """The kept lines and cells, sized to ``KEPT_TICKS`` ticks of as many rows as the terminal
        has lines (a line and its crop are some 2.5 KiB): not of the table's own height, which a
        status line coming or going changes, and each new size is a new cache. (Textual's cache,
        once full, stays at the size it filled to; a terminal's resize draws every line again.)"""
        rows = max(1, self.app.size.height)
        lines, cells = KEPT_TICKS * rows, KEPT_TICKS * rows * max(1, len(self.columns))
        if (lines, cells) != (self._kept_lines.maxsize, self._kept_cells_max):
            self._kept_lines, self._kept_cells, self._kept_cells_max = LRUCache(lines), {}, cells

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def highlighted_row(self) -> Row | None:
        return self.rows[self.cursor_row] if self.cursor_row < len(self.rows) else None

    def cell(self, key: str, column: str) -> str:
        """The text shown in ``column`` of the row ``key`` (before it is cut to the column)."""
        place = self.rows.place(key)
        if place is None:
            raise KeyError(key)
        return self._look(self.rows[place])[0][self._keys.index(column)]

    # -- the diff --------------------------------------------------------------------------

    @property
    def _narrow(self) -> bool:
        return "user" not in self._keys

    def _look(self, row: Row) -> tuple:
        """What the row's line shows but for cursor and hover: its cells' text and emphasis."""
        narrow = self._narrow
        texts = tuple(row.cells["role_short" if c == "role" and narrow else c] for c in self._keys)
        return texts, "bold" if row.kind == "instance" else "italic" if row.hidden else None

    def _apply(self, keep: str | None = None, rows: Rows | None = None) -> None:
        if self.snapshot is None or not self._keys:
            return
        highlighted = self.highlighted_row
        keep = keep or _key(highlighted)
        if rows is None:
            rows = build_rows(self.snapshot, self.instances, self.view)
        before, view = self.rows, self._in_view()
        # Only the rows in view (and the cursor's) are looked at: one out of view is made and
        # drawn from the newest build when it comes in.
        looked = [n for n in view if n < len(rows)]
        if (rows.keys == before.keys and self.view.sort_column not in VOLATILE
                and self.snapshot.timestamp - self._volatile_at < VOLATILE_EVERY_S):
            for n in {*looked, self.cursor_row} if self.cursor_row < len(rows) else looked:
                if _only_volatile(old := before[n], rows[n]):
                    rows.keep(n, old)
        else:
            self._volatile_at = self.snapshot.timestamp
        recounted = len(rows) != len(before)
        self.rows = rows
        if recounted:
            self._set_virtual_size()
        if self.cursor_row < len(rows) and rows.keys[self.cursor_row] == keep:
            cursor = self.cursor_row  # most ticks: the cursor's row stays where it was
        elif (place := rows.place(keep) if keep is not None else None) is not None:
            cursor = place
        else:
            cursor = min(self.cursor_row, max(len(rows) - 1, 0))
        looks = self._looks
        self._looks = {n: self._look(rows[n]) for n in looked}
        self._repaint_changes(looks)
        self._move(cursor, scroll=False)
        if _key(self.highlighted_row) != _key(highlighted):  # its row moving up or down is no news
            self._announce()

    def _set_virtual_size(self) -> None:
        width = sum(w + PADDING for _, w in self.columns)
        self.virtual_size = Size(width, HEADER + len(self.rows))

    # -- the cursor ------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        self._move(row, scroll)
        self._announce()

    def _move(self, row: int, scroll: bool = True) -> None:
        row = max(0, min(row, len(self.rows) - 1))
        if row != self.cursor_row:
            self._repaint([self.cursor_row, row])
            self.cursor_row = row
        if scroll:
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        rows_in_view = max(1, self.scrollable_content_region.height - HEADER)
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, force=True, immediate=True)
        elif self.cursor_row >= top + rows_in_view:
            self.scroll_to(y=self.cursor_row - rows_in_view + 1, animate=False, force=True, immediate=True)

    def _announce(self) -> None:
        self.post_message(self.Highlighted(self.highlighted_row))

    def _keyboard(self) -> None:
        """Keys move the cursor: the mouse's hover line goes."""
        if self._hover_row is not None:
            self._repaint([self._hover_row])
            self._hover_row = None

    def action_cursor(self, step: int) -> None:
        self._keyboard()
        self.move_cursor(row=self.cursor_row + step)

    def action_cursor_to(self, row: int) -> None:
        self._keyboard()
        self.move_cursor(row=row if row >= 0 else len(self.rows) - 1)

    def action_page(self, direction: int) -> None:
        self._keyboard()
        page = max(1, self.scrollable_content_region.height - HEADER)
        self.scroll_to(y=self.scroll_y + direction * page, animate=False, force=True, immediate=True)
        self.move_cursor(row=self.cursor_row + direction * page)

    def _row_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER:
            return None
        row = offset.y - HEADER + round(self.scroll_y)
        return row if row < len(self.rows) else None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        if row != self._hover_row:
            self._repaint([n for n in (self._hover_row, row) if n is not None])
            self._hover_row = row

    def on_leave(self, event: events.Leave) -> None:
        self._keyboard()

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is not None:
            self.move_cursor(row=row)

    # -- what the user does ----------------------------------------------------------------

    def set_view(self, **changes) -> None:
        self.view = replace(self.view, **changes)
        self._apply()
        self.refresh()  # the column labels

    def cycle_sort(self) -> None:
        keys = list(self._keys)
        nxt = keys[(keys.index(self.view.sort_column) + 1) % len(keys)] if self.view.sort_column in keys else keys[0]
        self.set_view(sort_column=nxt, reverse=COLUMN[nxt].numeric)

    def reverse_sort(self) -> None:
        self.set_view(reverse=not self.view.reverse)

    def toggle_grouping(self) -> None:
        self.set_view(grouped=not self.view.grouped)

    def action_toggle_instance(self) -> None:
        row = self.highlighted_row
        if row is None or row.instance_key is None or not self.view.grouped:
            return
        header = f"i:{row.instance_key}"
        if self.rows.place(header) is None:
            return
        self.view = replace(self.view, collapsed=self.view.collapsed ^ {row.instance_key})
        self._apply(keep=header)

    # -- rendering -------------------------------------------------------------------------

    def _in_view(self) -> range:
        top = round(self.scroll_y)
        return range(top, top + max(0, self.scrollable_content_region.height - HEADER))

    def _repaint(self, rows: list[int]) -> None:
        """Repaint the whole lines of these rows where they are in view (to the scrollbar)."""
        width = self.scrollable_content_region.width
        self._repaint_to({n: (0, width) for n in rows})

    def _repaint_to(self, cells: dict[int, tuple[int, int]]) -> None:
        """Repaint the rows in view among ``cells``, each line's cells from its start to its end
        there (a repaint writes only the cells asked for: lean_updates): one region over the body,
        from the nearest start to the furthest end, where most of it changed, else each row's cells
        as a region of their own. Textual keeps each region a line-API widget asks to repaint until
        the widget is repainted whole (and its geometry caches key on them): runs of rows, of every
        length at every place, added regions for hours; these recur (starts and ends are the
        columns' edges)."""
        view = self._in_view()
        shown = sorted((n, span) for n, span in cells.items() if n in view)
        if 2 * len(shown) > len(view):
            start = min(span[0] for _, span in shown)
            self.refresh(Region(start, HEADER, max(span[1] for _, span in shown) - start, len(view)))
            return
        for n, (start, end) in shown:
            self.refresh(Region(start, HEADER + n - view.start, end - start, 1))

    def _repaint_changes(self, before: dict[int, tuple]) -> None:
        """Repaint what changed in view since the looks ``before``: of a row whose line keeps its
        emphasis, from its first changed cell to the end of its last (a process whose memory alone
        moved: its VRAM cell; its PID, user and GPU before it, its CPU, RSS and command after it,
        are not written again), else its whole line."""
        view, now, width = self._in_view(), self._looks, self.scrollable_content_region.width
        edges = [0]
        for _, w in self.columns:
            edges.append(edges[-1] + w + PADDING)
        cells: dict[int, tuple[int, int]] = {}
        for n in view:
            old, new = before.get(n), now.get(n)
            if old == new:
                continue
            if old is None or new is None or old[1] != new[1] or len(old[0]) != len(new[0]) or self.scroll_x:
                cells[n] = (0, width)
            else:
                changed = [c for c, (a, b) in enumerate(zip(old[0], new[0])) if a != b]
                cells[n] = (min(width, edges[changed[0]]), min(width, edges[changed[-1] + 1]))
        self._repaint_to(cells)

    def notify_style_update(self) -> None:
        """A theme or focus change (Textual calls this on either): the styles are taken again at
        the next repaint, not on every one (three component styles cost a tenth of a repaint)."""
        self._styles = ()
        super().notify_style_update()

    def render_lines(self, crop: Region) -> list[Strip]:
        if not self._styles:
            styles = (self.rich_style, *(self.get_component_rich_style(f"process-table--{name}")
                                         for name in ("header", "cursor", "hover")))
            if styles != self._styles_drawn:  # every kept cell and line was drawn in the old look
                self._kept_cells.clear()
                self._kept_lines.clear()
                self._state_looks.clear()
            self._styles = self._styles_drawn = styles
        return super().render_lines(crop)

    def _geometry(self) -> tuple[int, int, int]:
        """(width, scroll x, scroll y) of the lines drawn."""
        return self.size.width, *self.scroll_offset

    def render_line(self, y: int) -> Strip:
        width, scroll_x, scroll_y = self._drawing or self._geometry()
        base = self._styles[0]
        if y < HEADER:
            strip = self._header_line(width)
        else:
            n = y - HEADER + scroll_y
            if n >= len(self.rows):
                return Strip.blank(width, base)
            state = (CURSOR if n == self.cursor_row else NORMAL) | (HOVER if n == self._hover_row else NORMAL)
            look = self._looks.get(n)
            if look is None:
                look = self._looks[n] = self._look(self.rows[n])
            strip = self._row_line(look, state, width)
        if scroll_x or strip.cell_length != width:
            strip = strip.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base)
        return strip

    def _header_line(self, width: int) -> Strip:
        header = self._styles[1]
        segments = []
        for key, w in self.columns:
            label = short_label(key, self._narrow)
            if key == self.view.sort_column:
                label += "▼" if self.view.reverse else "▲"
            before, text, after = fit(label, w, COLUMN[key].numeric, ellipsis=False)
            segments.append(Segment(f" {before}{text}{after} ", header))
        segments.append(Segment(" " * max(0, width - self.virtual_size.width), header))
        return Strip(Segment.simplify(segments))

    def _state_styles(self, state: int) -> tuple[Style, Style]:
        """(the style of a cell's spaces, of the line past the last column) in this state."""
        looks = self._state_looks.get(state)
        if looks is None:
            base, _, cursor, hover = self._styles
            part = Style()
            if state & HOVER:
                part += hover
            if state & CURSOR:
                part += cursor
            looks = self._state_looks[state] = (
                base + part + Style.from_color(part.color) + Style.from_color(bgcolor=part.bgcolor), base + part)
        return looks

    def _row_line(self, look: tuple, state: int, width: int) -> Strip:
        """The line, its cells of one style as one segment: Textual's compositor and the
        terminal's output pay per segment, and a row of nine cells in one look is one."""
        key = (look, state, width)
        strip = self._kept_lines.get(key)
        if strip is None:
            texts, emphasis = look
            pad, rest = self._state_styles(state)
            kept = self._kept_cells
            parts: list[tuple[str, Style]] = []
            for text, (column, w) in zip(texts, self.columns):
                right = COLUMN[column].numeric
                parts += kept.get((text, w, right, emphasis, state)) or self._cell(text, w, right, emphasis, state, pad)
            parts.append((" " * max(0, width - self.virtual_size.width), rest))
            strip = self._kept_lines[key] = Strip(joined(parts))
        return strip

    def _cell(self, text: str, width: int, right: bool, emphasis: str | None, state: int,
              pad: Style) -> tuple[tuple[str, Style], ...]:
        """A cell's (text, style) parts, made and kept by what it shows (``_row_line`` looks them
        up): its spaces and text as DataTable's rendering merged them (emphasis covers the text,
        not the spaces)."""
        before, shown, after = fit(text, width, right)
        emphasised = pad + Style.parse(emphasis) if emphasis else pad
        if emphasised == pad or not shown:  # the cursor's own style may be bold already
            parts = ((f" {before}{shown}{after} ", pad),)
        else:
            parts = ((f" {before}", pad), (shown, emphasised), (f"{after} ", pad))
        kept = self._kept_cells
        if len(kept) >= self._kept_cells_max:  # a bound: the rows in view for KEPT_TICKS ticks
            kept.clear()
        kept[text, width, right, emphasis, state] = parts
        return parts
