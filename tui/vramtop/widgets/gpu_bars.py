"""One line per GPU: a memory bar in three segments (used, driver-reserved, free), its numbers,
a sparkline of its used memory over the app's history, utilization, temperature, power and the
state word with its symbol. In cluster mode the GPUs come grouped under their Ray node.

A line is (text, style) pieces drawn straight into a strip (``widgets/pieces.py``): no
ProgressBar, no timers, no child widgets, and a repaint a fraction of what ``Content`` costs,
since on a node whose memory moves every bar repaints every tick. Segments differ by glyph as
well as colour, so they read under NO_COLOR and for colour-blind users. Fields drop by priority
as the line gets narrower; the index, the state and the bar always stay. A GPU in MIG mode has
a line per slice under it, as nvidia-smi lists its MIG devices: ``├0``, ``└1`` (slice ``0:0``,
``0:1``), its state, bar, figures and profile, aligned with the GPUs' columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from rich.cells import cell_len
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vramtop.analysis.states import SYMBOLS, Thresholds, gpu_state
from vramtop.history import History
from vramtop.snapshot import GpuInfo, MigSlice, NodeSnapshot
from vramtop.units import duration
from vramtop.widgets.drawn_geometry import GeometryOnce
from vramtop.widgets.lean_refresh import PromptlessRefresh
from vramtop.widgets.pieces import Line, Piece, PieceStyles, printable, repaint_span
from vramtop.widgets.spark import peaks_line
from vramtop.widgets.tick import Tick

USED, RESERVED, FREE = "█", "▒", "░"
LAUNCH = "▚"  # free memory promised to an engine that vramtop launch is starting
MIN_BAR = 8
STATE_WIDTH = len("critical")
TREND_CELLS = 12


def split_cells(width: int, parts: list[int]) -> list[int]:
    """Share ``width`` cells among ``parts`` in proportion (largest remainder); a part above
    zero gets at least one cell when there is room, so a small reserve never vanishes."""
    total = sum(parts)
    if width <= 0 or total <= 0:
        return [0] * len(parts)
    exact = [width * p / total for p in parts]
    cells = [int(x) for x in exact]
    for i in sorted(range(len(parts)), key=lambda i: exact[i] - cells[i], reverse=True)[: width - sum(cells)]:
        cells[i] += 1
    for i, p in enumerate(parts):
        if p > 0 and cells[i] == 0:
            donor = max(range(len(parts)), key=lambda j: cells[j])
            if cells[donor] > 1:
                cells[donor] -= 1
                cells[i] = 1
    return cells


def field_widths(gpus: tuple[GpuInfo, ...], trend: bool = False) -> dict[str, int]:
    """Widths that every GPU's fields fit in, from totals and limits (not from the current
    values), so the bars of a node line up and do not jitter from one tick to the next;
    ``trend`` adds the sparkline's."""
    mib = max((len(f"{g.total_mib:,}") for g in gpus), default=6)
    watts = max((len(f"{g.power_limit_w or g.power_w or 0:.0f}") for g in gpus), default=3)
    widths = {
        "used": 2 * mib + 5, "reserved": mib + 4, "free": mib + 5, "util": 9, "temp": 5,
        "power": 2 * watts + 3, "name": max((len(g.name) for g in gpus), default=0),
    }
    if trend:
        widths["trend"] = TREND_CELLS
    return widths


# Display order after the bar, with the priority at which a field drops (highest first).
FIELDS = (("used", 3), ("reserved", 4), ("free", 1), ("trend", 5), ("util", 2), ("temp", 5), ("power", 5),
          ("name", 6))


def fields_that_fit(widths: dict[str, int], width: int) -> tuple[str, ...]:
    """The fields that leave the bar a sixth of the line (at least ``MIN_BAR`` cells)."""
    return _fitting(tuple(widths.items()), width)


@lru_cache(maxsize=64)
def _fitting(items: tuple[tuple[str, int], ...], width: int) -> tuple[str, ...]:
    """``fields_that_fit``, kept: every GPU line of a tick asks it the same."""
    widths = dict(items)
    keep = [key for key, _ in FIELDS if key in widths]
    priority = dict(FIELDS)
    min_bar = max(MIN_BAR, width // 6)
    while keep and width - HEAD_WIDTH - sum(widths[k] + 1 for k in keep) < min_bar:
        keep.remove(max(reversed(keep), key=lambda k: priority[k]))
    return tuple(keep)


@lru_cache(maxsize=256)
def _field_pieces(key: str, text: str, width: int) -> Line:
    """A field's text, styled and padded to its width: kept, since most fields of a line read the
    same from one tick to the next (a bar repaints when any one of them moves). The text is
    made printable here, where its width is counted (a name comes from a driver or a peer).
    An entry is about half a KiB, and the figures that move make new ones each tick: 256 hold a
    tick of 16 GPUs (8 fields each) twice, or of 8 GPUs each cut into 7 MIG slices (3 each)."""
    text = printable(text)
    if key == "free":
        number, _, rest = text.partition(" ")
        pieces = [(number, ("bold",)), (f" {rest}", ())]
    else:
        style = {"reserved": "$vram-reserved", "trend": "$vram-used", "name": "dim"}.get(key)
        pieces = [(text, (style,) if style else ())]
    pad = (" " * max(0, width - cell_len(text)), ())
    return Line([*pieces, pad] if key == "name" else [pad, *pieces])


def _field(gpu: GpuInfo | MigSlice, key: str, width: int, trend: str = "") -> Line:
    if key == "used":
        text = f"{gpu.used_mib:,}/{gpu.total_mib:,} MiB"
    elif key == "reserved":  # NVML's v1 memory (and Ray's reporter) folds the reserve into used
        text = f"{gpu.reserved_mib:,} rsv" if gpu.memory_api == "v2" else "– rsv"
    elif key == "free":
        text = f"{gpu.free_mib:,} free"
    elif key == "trend":
        text = trend[-width:]
    elif key == "util":
        text = "" if gpu.utilization_pct is None else f"util {gpu.utilization_pct}%"
    elif key == "temp":
        text = "" if gpu.temperature_c is None else f"{gpu.temperature_c}°C"
    elif key == "power":
        limit = f"/{gpu.power_limit_w:.0f}" if gpu.power_limit_w else ""
        text = "" if gpu.power_w is None else f"{gpu.power_w:.0f}{limit} W"
    else:
        text = gpu.name
    return _field_pieces(key, text, width)


def _state_word(state: str) -> Piece:
    return (f"{SYMBOLS[state]} {state:<{STATE_WIDTH}}", (f"$state-{state}",))


@lru_cache(maxsize=256)
def _head(index: int, state: str) -> Line:
    """A GPU line's index and state word."""
    return Line([(f"{index:>2} ", ("bold",)), _state_word(state), (" ", ())])


HEAD_WIDTH = 3 + 2 + STATE_WIDTH + 1


def _bar(cells: list[int], glyphs: tuple[tuple[str, str], ...]) -> list[Piece]:
    return [(glyph * n, (style,)) for n, (glyph, style) in zip(cells, glyphs) if n]


BAR = ((USED, "$vram-used"), (RESERVED, "$vram-reserved"), (LAUNCH, "$warning"), (FREE, "$vram-free"))


def _fields(gpu: GpuInfo | MigSlice, keys: tuple[str, ...], widths: dict[str, int], trend: str = "") -> list[Piece]:
    return [piece for k in keys for piece in ((" ", ()), *_field(gpu, k, widths[k], trend))]


def gpu_line(gpu: GpuInfo, state: str, width: int, widths: dict[str, int] | None = None,
             trend: str = "", promised_mib: int = 0) -> Line:
    """The GPU's line at ``width`` cells; ``widths`` (shared by a node's GPUs) align the bars;
    ``trend`` is its used-memory sparkline; ``promised_mib`` of the free memory is drawn as
    reserved for launches."""
    widths = widths or field_widths((gpu,))
    head = _head(gpu.index, state)
    keys = fields_that_fit(widths, width)
    bar_width = max(MIN_BAR, width - HEAD_WIDTH - sum(widths[k] + 1 for k in keys))
    if gpu.lost:
        room = bar_width + sum(widths[k] + 1 for k in keys if k != "name")
        label = " no figures: GPU lost "
        lost = (label.center(room, "╌")[:room], ("$state-lost",))
        name = _fields(gpu, ("name",), widths) if "name" in keys else []
        return Line([*head, lost, *name])
    free_mib = max(gpu.free_mib, 0)
    promised = min(max(promised_mib, 0), free_mib)
    cells = split_cells(bar_width, [max(gpu.used_mib, 0), max(gpu.reserved_mib, 0), promised, free_mib - promised])
    return Line([*head, *_bar(cells, BAR), *_fields(gpu, keys, widths, trend)])


def slice_line(mig: MigSlice, state: str, width: int, widths: dict[str, int], last: bool) -> Line:
    """A MIG slice's line under its GPU's: the head one cell wider (tree glyph and slice index),
    the bar one cell shorter, so its figures stand under the GPU's. The driver gives no
    utilization, temperature, power or trend per slice; its profile takes the name column, or
    where that is dropped, those empty columns when it fits there."""
    head = [(f" {'└' if last else '├'}", ()), (f"{mig.index} ", ("bold",)), _state_word(state), (" ", ())]
    keys = fields_that_fit(widths, width)
    bar_width = max(MIN_BAR, width - sum(cell_len(t) for t, _ in head) - sum(widths[k] + 1 for k in keys))
    cells = split_cells(bar_width, [max(mig.used_mib, 0), max(mig.reserved_mib, 0), max(mig.free_mib, 0)])
    bar = _bar(cells, (BAR[0], BAR[1], BAR[3]))
    figures = _fields(mig, tuple(k for k in keys if k in ("used", "reserved", "free")), widths)
    empty = sum(widths[k] + 1 for k in keys if k not in ("used", "reserved", "free", "name"))
    if "name" in keys:
        name = (f"MIG {printable(mig.profile)}"[: widths["name"]].ljust(widths["name"]), ("dim",))
        return Line([*head, *bar, *figures, (" " * empty, ()), (" ", ()), name])
    profile = f" {printable(mig.profile)}" if len(mig.profile) < empty else ""
    return Line([*head, *bar, *figures, (profile.ljust(empty), ("dim",))])


@dataclass(frozen=True)
class GpuBar:
    """What one GPU's lines are drawn from: its figures and state word, what its sparkline is
    drawn from (``trend_key``: the sparkline itself is drawn only for a bar in view), the age of
    figures that are not live (None while they are) and what launches have reserved on it
    ((model, MiB, seconds held) each)."""

    gpu: GpuInfo
    state: str
    trend_key: tuple = ()
    stale_age: int | None = None
    launch: tuple[tuple[str, int, int], ...] = ()

    @property
    def height(self) -> int:
        return 1 + len(self.gpu.mig) + bool(self.gpu.error or self.stale_age is not None) + bool(self.launch)

    def lines(self, width: int, widths: dict[str, int], thresholds: Thresholds, trend: str = "") -> list[Line]:
        """The GPU's line (``trend``: its sparkline), its slices', then a note why figures are
        missing (an NVML error, or figures of an earlier read: greyed, never shown as live) and
        one naming the launches."""
        gpu = self.gpu
        lines = [gpu_line(gpu, self.state, width, widths, trend, sum(m for _, m, _ in self.launch)),
                 *(slice_line(m, gpu_state(m, thresholds), width, widths, m is gpu.mig[-1]) for m in gpu.mig)]
        error = gpu.error
        if self.stale_age is not None:
            lines = [line.restyled("$text-disabled") for line in lines]
            error = f"not live: last read {duration(self.stale_age)} ago" + (f" · {error}" if error else "")
        if error:
            lines.append(Line([("   ", ()), (f"⚠ {error}", ("$warning",))]))
        if self.launch:
            held = "; ".join(f"{model}, {duration(age)}" for model, _, age in self.launch)
            lines.append(Line([("   ", ()), (f"{LAUNCH} reserved for launch: {held}", ("$warning",))]))
        return lines


def stale_age(gpu: GpuInfo, now: float) -> int | None:
    """Whole seconds between the read of a GPU's figures and ``now``, where the latest read of
    its memory failed; None while they are live."""
    return None if gpu.stale_since is None else max(0, int(now - gpu.stale_since))


def used_trend(history: History | None, gpu: GpuInfo) -> str:
    """The GPU's used memory over the whole history, scaled to its total memory."""
    if history is None or not len(history):
        return ""
    peaks, known = history.used_peaks(gpu.index, TREND_CELLS, -(-history.length // TREND_CELLS))
    return peaks_line(peaks, top=gpu.total_mib) if known >= 2 else " " * TREND_CELLS  # one figure is no trend


def launch_held(snapshot: NodeSnapshot, gpu_index: int) -> tuple[tuple[str, int, int], ...]:
    """(model, MiB, seconds held) for each launch reservation on the GPU (cluster GPUs: none)."""
    return tuple((r.model, r.on(gpu_index), max(0, int(snapshot.timestamp - r.since)))
                 for r in snapshot.reservations if r.on(gpu_index))


def node_title(node: str, count: int) -> str:
    return f"{node} · {count} GPU{'s' if count != 1 else ''}"


class GpuPanel(PromptlessRefresh, GeometryOnce, ScrollView):
    """The GPU bars, a line-API view: a GPU's lines are drawn only when it changed and is in
    view, so a cluster of a thousand GPUs costs the lines on screen. GPUs that carry a Ray node
    (cluster mode) come under a title line per node. Scrolls when there are more lines than room,
    up and down only: the lines are drawn to the panel's width, so its virtual width is none. (It
    was the width, set again on each resize: a vertical scrollbar coming narrowed the panel under
    it, a horizontal one came for a column and went at the next resize, each a layout of the
    whole screen, when a status line took a line from a 16-GPU panel.)"""

    DEFAULT_CSS = """
    GpuPanel { height: auto; overflow-x: hidden; }
    GpuPanel > .gpu-panel--node { text-style: bold; color: $text-muted; }
    """
    COMPONENT_CLASSES = {"gpu-panel--node"}  # a node's title line (CSS resolves the muted colour)
    ALLOW_SELECT = False  # its lines are drawn as strips, without the cell offsets selection reads

    def __init__(self, thresholds: Thresholds = Thresholds(), history: History | None = None,
                 interval: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds, self.history, self.interval = thresholds, history, interval
        self.border_title = "GPUs"
        self.bars: tuple[GpuBar, ...] = ()
        self.rows: tuple[tuple, ...] = ()  # ("title", node, GPUs on it) or ("bar", which bar, which of its lines)
        self._first_row: list[int] = []  # the row of each bar's first line
        self._drawn: dict[int, tuple[GpuBar, int, list[Line]]] = {}  # bar -> (bar, width, its lines)
        self._trends: dict[int, tuple[tuple, str]] = {}  # GPU index -> (what it was drawn from, sparkline)
        self._span = ""  # "trend: used, last 15 min" (the subtitle, where the trend fits)
        self._widths: dict[str, int] = {}
        self._pieces = PieceStyles()
        self._drawn_from: tuple = ()  # (GPUs, sparkline buckets) of the last tick with nothing moving

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)  # the app publishes each tick (attributes down)

    def _take_tick(self, tick: Tick | None) -> None:
        """Show the tick's GPUs; with a history, each bar also draws its used memory over the
        history's span. Only the lines of bars that changed are repainted."""
        if tick is None:
            return
        snapshot, history = tick.snapshot, self.history
        buckets = self._buckets(history)
        # The same GPUs (a cluster between dashboard polls), no figure aging, no launch, no new
        # sparkline bucket: no bar can differ from the last tick's.
        steady = (not snapshot.reservations and not any(g.stale_since is not None for g in snapshot.gpus))
        drawn_from = (snapshot.gpus, buckets) if steady else ()
        if drawn_from and self._drawn_from and drawn_from[0] is self._drawn_from[0] and buckets == self._drawn_from[1]:
            return
        self._drawn_from = drawn_from
        widths = field_widths(snapshot.gpus, trend=history is not None)
        self._span = f"trend: used, last {duration(history.length * self.interval)}" if history is not None else ""
        bars = tuple(GpuBar(gpu, gpu_state(gpu, self.thresholds),
                            (buckets, gpu.used_mib, gpu.total_mib, gpu.lost) if buckets else (),
                            stale_age(gpu, snapshot.timestamp), launch_held(snapshot, gpu.index))
                     for gpu in snapshot.gpus)
        before, self.bars = self.bars, bars
        if widths != self._widths:
            self._widths = widths
            self._drawn.clear()
            self.refresh()
        self._subtitle()
        rows = self._rows_for(bars)
        if rows != self.rows:
            self.rows = rows
            self._drawn.clear()
            self.virtual_size = Size(0, len(rows))
            self.refresh(layout=True)
            return
        content = self.scrollable_content_region  # once a tick: each read walks up to the screen
        view, width, whole = self._in_view(content), content.width, self.size.width
        changed = []
        for n, (old, new) in enumerate(zip(before, bars)):
            if old != new:
                first = self._first_row[n]
                lines = range(first, first + new.height)
                if lines.start < view.stop and view.start < lines.stop:
                    span = self._repaint_span(n, width, whole)
                    if span is not None:
                        changed.append(Region(span[0], first - view.start, span[1] - span[0], new.height))
        if changed:
            self.refresh(*changed)  # one call: each finds the panel's offset on the screen again

    def _repaint_span(self, n: int, width: int, whole: int) -> tuple[int, int] | None:
        """The cells of the bar ``n``'s lines drawn ``width`` cells wide that draw differently from
        those drawn of it (``pieces.repaint_span``; all ``whole`` cells of the panel's width where
        none were drawn at this width; None where they draw the same)."""
        drawn = self._drawn.get(n)
        if drawn is None or drawn[1] != width:
            return 0, whole
        return repaint_span(drawn[2], self._lines(n, width), width)

    def _rows_for(self, bars: tuple[GpuBar, ...]) -> tuple:
        rows: list[tuple] = []
        self._first_row = []
        on_node = Counter(bar.gpu.node for bar in bars)
        for n, bar in enumerate(bars):
            node = bar.gpu.node
            if node is not None and (n == 0 or bars[n - 1].gpu.node != node):
                rows.append(("title", node, on_node[node]))
            self._first_row.append(len(rows))
            rows.extend(("bar", n, line) for line in range(bar.height))
        return tuple(rows)

    def _in_view(self, content: Region) -> range:
        """The rows shown in ``content``, the panel's scrollable content region."""
        top = round(self.scroll_y)
        return range(top, top + content.height)

    def strips_of(self, index: int) -> list[Strip]:
        """The lines of the GPU ``index`` as the panel draws them, in view or not."""
        width = self.scrollable_content_region.width
        n = next(n for n, bar in enumerate(self.bars) if bar.gpu.index == index)
        return [self._pieces.strip(self, line, width) for line in self._lines(n, width)]

    def _lines(self, n: int, width: int) -> list[Line]:
        bar = self.bars[n]
        drawn = self._drawn.get(n)
        if drawn is None or drawn[0] is not bar or drawn[1] != width:
            lines = bar.lines(width, self._widths, self.thresholds, self.trend(bar))
            drawn = self._drawn[n] = (bar, width, lines)
        return drawn[2]

    def _geometry(self) -> tuple[int, int]:
        """(width, top row) of the lines drawn."""
        return self.scrollable_content_region.width, round(self.scroll_y)

    def render_line(self, y: int) -> Strip:
        width, top = self._drawing or self._geometry()
        row_at = y + top
        if row_at >= len(self.rows):
            return Strip.blank(width, self.visual_style.rich_style)
        row = self.rows[row_at]
        if row[0] == "title":
            line = Line([(node_title(row[1], row[2]), (".gpu-panel--node",))])
        else:
            line = self._lines(row[1], width)[row[2]]
        return self._pieces.strip(self, line, width)

    def notify_style_update(self) -> None:
        self._pieces.clear()
        super().notify_style_update()

    def on_resize(self) -> None:
        self._subtitle()

    def _subtitle(self) -> None:
        """Name the sparkline's span where the bars have room to draw it."""
        width = self.scrollable_content_region.width
        subtitle = self._span if self._span and width and "trend" in fields_that_fit(self._widths, width) else ""
        if subtitle != self.border_subtitle:  # setting it repaints the panel, even to the same text
            self.border_subtitle = subtitle

    @staticmethod
    def _buckets(history: History | None) -> tuple:
        """The history's first and last sparkline buckets: with a GPU's used, total and lost,
        what ``used_trend`` draws from. A sparkline changes only when a bucket starts or the
        GPU's memory moved (the oldest cell may show a dropped sample's height until its
        bucket goes)."""
        if history is None or not len(history):
            return ()
        per_cell = -(-history.length // TREND_CELLS)
        return ((history.added - len(history)) // per_cell, (history.added - 1) // per_cell,
                len(history) > 1)  # one sample draws nothing

    def trend(self, bar: GpuBar) -> str:
        """The bar's sparkline, drawn again only when what it is drawn from changed: a node at
        rest, or a bar out of view, draws none."""
        if not bar.trend_key:
            return ""
        cached = self._trends.get(bar.gpu.index)
        if cached is None or cached[0] != bar.trend_key:
            cached = self._trends[bar.gpu.index] = (bar.trend_key, used_trend(self.history, bar.gpu))
        return cached[1]
