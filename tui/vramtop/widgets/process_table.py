"""The process table: keyed, diff-applied updates so the cursor and scroll survive every tick.

Rows are never cleared and refilled: each tick adds the new keys, removes the gone ones and
updates only the cells whose text changed, all inside one ``batch_update``; an unchanged
snapshot touches nothing. Sorting, filtering and grouping live in ``process_rows``.

DataTable's own ``update_cell`` and ``sort`` render every visible row again and repaint the whole
widget (its caches are keyed by one update counter), so the table does neither: a changed cell is
stored in place and only its row is repainted, a new order repaints only the rows whose place
changed, and each row's line is kept by the row's content, place, width and cursor/hover state, so
a tick where one process's memory moved renders and repaints one line. Rendered cells are kept by
what they show as well: a row that moved is put together from its kept cells, not rendered anew.
On a busy node the CPU % and RSS of every process move on every tick while its VRAM stays put, so
figures that move alone are shown every ``VOLATILE_EVERY_S`` seconds; any other change (memory, a
new process, the order) shows at once, with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from vramtop.analysis.instances import Instance
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.process_rows import COLUMN, Row, build_rows, columns_for_width, short_label


VOLATILE = ("cpu", "rss")  # columns whose figures move on every tick of a busy node
VOLATILE_EVERY_S = 3.0


def _only_volatile(old: Row, new: Row) -> bool:
    """``new`` differs from ``old`` in volatile figures at most."""
    return (old.kind == new.kind and old.hidden == new.hidden and old.instance_key == new.instance_key
            and all(old.cells.get(k) == v for k, v in new.cells.items() if k not in VOLATILE))


class _Cell(Text):
    """A cell of the table, kept rendered by its look."""

    def look(self) -> tuple:
        """Everything about the cell that its rendering depends on."""
        return (self.plain, self.justify, self.overflow, self.no_wrap, self.style, tuple(self.spans))


def _moved(lines: list[list[Segment]], row_index: int, column_index: int) -> list[list[Segment]]:
    """A rendered cell's lines at another place: only the mouse meta (row, column) differs."""
    meta = Style.from_meta({"row": row_index, "column": column_index})
    return [[Segment(text, style + meta if style is not None else None, control) for text, style, control in line]
            for line in lines]


@dataclass
class TableView:
    """What the user chose: the table rebuilds its rows from this and the latest snapshot."""

    sort_column: str = "vram"
    reverse: bool = True
    grouped: bool = True
    filter_text: str = ""


class ProcessTable(DataTable):
    """GPU processes grouped under their serving instance; enter/space folds an instance."""

    BINDINGS = [Binding("enter,space", "toggle_instance", "Fold / unfold the instance", show=False)]

    class Highlighted(Message):
        """The row under the cursor changed (or its content did): ``row`` is None when empty."""

        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.view = TableView()
        self.collapsed: set[str] = set()
        self.snapshot: NodeSnapshot | None = None
        self.instances: tuple[Instance, ...] = ()
        self._columns: tuple[str, ...] = ()
        self._layout: tuple[tuple[str, int], ...] = ()
        self._shown: dict[str, Row] = {}
        self._order: list[str] = []
        self._volatile_at = float("-inf")  # snapshot time of the last CPU / RSS figures shown
        self._revision = 0
        self._row_revision: dict[RowKey, int] = {}  # a new number when a row is added or changes
        self._kept_cells: LRUCache[tuple, tuple[int, list[list[Segment]]]] = LRUCache(10_000)
        self._kept_lines: LRUCache[tuple, Strip] = LRUCache(4096)
        self._line_style = Style()  # the table's style, taken once per repaint
        self.border_title = "Processes"

    # -- rendering -------------------------------------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """DataTable's cell rendering, kept by what the cell shows and where (its mouse meta
        names row and column), cleared with DataTable's caches (a style change clears them)."""
        if row_index < 0 or column_index < 0:  # the header: rendered again only when labels change
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        cell = self._data[row_key][self._column_locations.get_key(column_index)]
        if not isinstance(cell, _Cell):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = ("look", column_index, cell.look(), width, self.rows[row_key].height, self.cell_padding,
               base_style, cursor, hover, self.show_cursor, self._show_hover_cursor, self._pseudo_class_state)
        kept = self._kept_cells.get(key)
        if kept is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        elif kept[0] != row_index:  # the same cell moved (rows sorted by a figure that moved)
            lines = _moved(kept[1], row_index, column_index)
        else:
            return kept[1]
        self._kept_cells[key] = (row_index, lines)
        return lines

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """One line of the table, kept by its row's content and place rather than DataTable's
        update counter: lines of rows that did not change are not rendered again."""
        width = self.size.width
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        if row_key is self._header_row_key:
            return super()._render_line(y, x1, x2, base_style)
        row_index = self._row_locations.get(row_key)
        cursor, hover = self.cursor_coordinate, self.hover_coordinate
        key = (row_key, self._row_revision.get(row_key, 0), row_index, line_no, x1, x2, width, base_style,
               cursor.row == row_index, hover.row == row_index, self.cursor_type, self.show_cursor,
               self._show_hover_cursor, self._pseudo_class_state)
        strip = self._kept_lines.get(key)
        if strip is None:
            strip = super()._render_line(y, x1, x2, base_style)
            self._kept_lines[key] = strip
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        self._line_style = self.rich_style  # once per repaint, not once per line as DataTable does
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        """DataTable's ``render_line`` (the table has no fixed rows) with the style of this repaint."""
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, self._line_style)

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._kept_cells.clear()
        self._kept_lines.clear()

    def notify_style_update(self) -> None:
        self._kept_cells.clear()
        self._kept_lines.clear()
        super().notify_style_update()

    def _revise(self, row_key: RowKey) -> None:
        self._revision += 1
        self._row_revision[row_key] = self._revision

    def _set_cell(self, row_key: RowKey, column: str, cell: Text) -> None:
        """``update_cell`` without its whole-table render: the cell is stored and its row revised;
        ``_repaint`` then repaints it if it is in view."""
        self._data[row_key][ColumnKey(column)] = cell
        self._revise(row_key)
        self._row_renderable_cache.discard((self._update_count, self._row_locations.get(row_key)))

    def _reorder(self, order: list[str]) -> list[int]:
        """``sort`` without its whole-widget repaint: the places of rows that moved."""
        before = self._row_locations
        keys = {key.value: key for key in self._data}
        self._row_locations = TwoWayDict({keys[k]: n for n, k in enumerate(order)})
        self._update_count += 1  # row offsets and DataTable's own caches follow the order
        return [n for n, k in enumerate(order) if before.get(keys[k]) != n]

    def _repaint(self, row_indices: Iterable[int]) -> None:
        """Repaint these rows where they are in view. DataTable's own cell, row and line caches are
        keyed by its update counter, which a cell stored in place keeps: they are emptied here."""
        self._cell_render_cache.clear()
        self._row_render_cache.clear()
        self._line_cache.clear()
        top = self.scroll_offset.y
        for n in sorted(set(row_indices)):
            if top <= n <= top + self.size.height:
                self.refresh_row(n)

    # -- data in ---------------------------------------------------------------------------

    def show(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...]) -> None:
        """Show a new snapshot (and its instances, grouped once by the app)."""
        self.snapshot = snapshot
        self.instances = instances
        self._apply()

    def on_resize(self) -> None:
        wanted = columns_for_width(self.size.width)
        if wanted != self._layout:
            self._set_columns(wanted)

    # -- the diff --------------------------------------------------------------------------

    def _set_columns(self, layout: tuple[tuple[str, int], ...]) -> None:
        """A new column set or widths (on resize only): the one time rows are rebuilt."""
        highlighted = self._highlighted_key()
        self.clear(columns=True)
        self._shown.clear()
        self._row_revision.clear()
        self._order = []
        self._layout = layout
        self._columns = tuple(key for key, _ in layout)
        for key, width in layout:
            self.add_column(self._label(key), key=key, width=width)
        self._apply(keep=highlighted)

    def _label(self, key: str) -> Text:
        col = COLUMN[key]
        label = short_label(key, self._narrow)
        if key == self.view.sort_column:
            label += "▼" if self.view.reverse else "▲"
        return Text(label, justify="right" if col.numeric else "left")

    def _cell(self, row: Row, key: str) -> Text:
        text = row.cells["role_short" if key == "role" and self._narrow else key]
        cell = _Cell(text, justify="right" if COLUMN[key].numeric else "left",
                     no_wrap=True, overflow="ellipsis")
        if row.kind == "instance":
            cell.stylize("bold")
        elif row.hidden:
            cell.stylize("italic")
        return cell

    @property
    def _narrow(self) -> bool:
        return "user" not in self._columns

    def _highlighted_key(self) -> str | None:
        if not self.row_count or not self.is_valid_row_index(self.cursor_row):
            return None
        return self._order[self.cursor_row] if self.cursor_row < len(self._order) else None

    def _apply(self, keep: str | None = None) -> None:
        if self.snapshot is None or not self._columns:
            return
        keep = keep or self._highlighted_key()
        rows = build_rows(
            self.snapshot,
            self.instances,
            grouped=self.view.grouped,
            collapsed=frozenset(self.collapsed),
            sort_column=self.view.sort_column,
            reverse=self.view.reverse,
            filter_text=self.view.filter_text,
        )
        order = [row.key for row in rows]
        if (order == self._order and self.view.sort_column not in VOLATILE
                and self.snapshot.timestamp - self._volatile_at < VOLATILE_EVERY_S):
            rows = [old if (old := self._shown.get(row.key)) is not None and _only_volatile(old, row) else row
                    for row in rows]
        else:
            self._volatile_at = self.snapshot.timestamp
        wanted = {row.key: row for row in rows}
        if wanted == self._shown and order == self._order:
            return
        changed: list[str] = []
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
                self._row_revision.pop(RowKey(key), None)
            for row in rows:
                old = self._shown.get(row.key)
                if old is None:
                    self._revise(self.add_row(*(self._cell(row, c) for c in self._columns), key=row.key))
                elif old != row:
                    for c in self._columns:
                        c_text = "role_short" if c == "role" and self._narrow else c
                        if old.cells[c_text] != row.cells[c_text] or old.kind != row.kind or old.hidden != row.hidden:
                            self._set_cell(RowKey(row.key), c, self._cell(row, c))
                    changed.append(row.key)
                self._shown[row.key] = row
            moved = self._reorder(order) if order != [r.key.value for r in self.ordered_rows] else []
            self._repaint([self._row_locations.get(RowKey(k)) for k in changed] + moved)
            self._order = order
            if keep in wanted:
                self.move_cursor(row=order.index(keep), scroll=False)
        self._announce()

    @property
    def highlighted_row(self) -> Row | None:
        key = self._highlighted_key()
        return self._shown.get(key) if key else None

    def _announce(self) -> None:
        key = self._highlighted_key()
        self.post_message(self.Highlighted(self._shown.get(key) if key else None))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()

    # -- what the user does ----------------------------------------------------------------

    def set_view(self, **changes) -> None:
        for name, value in changes.items():
            setattr(self.view, name, value)
        for key in self._columns:
            self.columns[key].label = self._label(key)
        self._apply()
        self.refresh()

    def cycle_sort(self) -> None:
        keys = list(self._columns)
        nxt = keys[(keys.index(self.view.sort_column) + 1) % len(keys)] if self.view.sort_column in keys else keys[0]
        self.set_view(sort_column=nxt, reverse=COLUMN[nxt].numeric)

    def reverse_sort(self) -> None:
        self.set_view(reverse=not self.view.reverse)

    def toggle_grouping(self) -> None:
        self.set_view(grouped=not self.view.grouped)

    def action_toggle_instance(self) -> None:
        key = self._highlighted_key()
        row = self._shown.get(key) if key else None
        if row is None or row.instance_key is None or not self.view.grouped:
            return
        header = f"i:{row.instance_key}"
        if header not in self._shown:
            return
        self.collapsed.symmetric_difference_update({row.instance_key})
        self._apply(keep=header)
