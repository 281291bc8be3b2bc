"""The process table: keyed, diff-applied updates so the cursor and scroll survive every tick.

Rows are never cleared and refilled: each tick adds the new keys, removes the gone ones and
updates only the cells whose text changed, all inside one ``batch_update``; an unchanged
snapshot touches nothing. Sorting, filtering and grouping live in ``process_rows``.

Any cell update makes the DataTable render every visible cell again (its cell cache is keyed by an
update counter), so the table keeps rendered cells by what they show instead: a cell whose text,
place and styles are unchanged is not rendered again, and a tick where every process's memory moved
renders one cell per row, not a whole screen of them. On a busy node the CPU % and RSS of every
process move on every tick while its VRAM stays put, so figures that move alone are shown every
``VOLATILE_EVERY_S`` seconds; any other change (memory, a new process, the order) shows at once,
with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

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
    """A cell that knows its row, so ``DataTable.sort`` can put rows in our order."""

    row_key: str = ""

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
        self.border_title = "Processes"

    # -- rendering -------------------------------------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """DataTable's cell rendering, kept by what the cell shows and where (its mouse meta
        names row and column), in DataTable's own cache so a style change clears it as well."""
        if row_index < 0 or column_index < 0:  # the header: rendered again only when labels change
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        cell = self._data[row_key][self._column_locations.get_key(column_index)]
        if not isinstance(cell, _Cell):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = ("look", column_index, cell.look(), width, self.rows[row_key].height, self.cell_padding,
               base_style, cursor, hover, self.show_cursor, self._show_hover_cursor, self._pseudo_class_state)
        kept = self._cell_render_cache.get(key)
        if kept is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        elif kept[0] != row_index:  # the same cell moved (rows sorted by a figure that moved)
            lines = _moved(kept[1], row_index, column_index)
        else:
            return kept[1]
        self._cell_render_cache[key] = (row_index, lines)
        return lines

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
        cell.row_key = row.key
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
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
            for row in rows:
                old = self._shown.get(row.key)
                if old is None:
                    self.add_row(*(self._cell(row, c) for c in self._columns), key=row.key)
                elif old != row:
                    for c in self._columns:
                        c_text = "role_short" if c == "role" and self._narrow else c
                        if old.cells[c_text] != row.cells[c_text] or old.kind != row.kind or old.hidden != row.hidden:
                            self.update_cell(row.key, c, self._cell(row, c))
                self._shown[row.key] = row
            if order != [r.key.value for r in self.ordered_rows]:
                rank = {key: n for n, key in enumerate(order)}
                self.sort(self._columns[0], key=lambda cell: rank[cell.row_key])
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
