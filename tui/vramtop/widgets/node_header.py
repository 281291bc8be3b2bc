"""The top line: DEMO / REPLAY / CLUSTER / PAUSED badges first (always visible), then the host
(in cluster mode the Ray dashboard), driver and CUDA versions (the node count in cluster mode) and
the memory totals in MiB and GiB. It watches the app's ``tick`` and ``paused``."""

from __future__ import annotations

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from vramtop.snapshot import NodeSnapshot
from vramtop.units import gib
from vramtop.widgets.flow import flow
from vramtop.widgets.lean_refresh import PromptlessRefresh
from vramtop.widgets.pieces import Line, Piece, PieceStyles, repaint_span
from vramtop.widgets.tick import Tick

BADGES = {"demo": "DEMO", "replay": "REPLAY", "cluster": "CLUSTER"}


def header_pieces(snapshot: NodeSnapshot | None, paused: bool, where: str | None = None) -> list[Line]:
    """``where``: the replay's position ("replay 14:02:11  +00:05:12 / 01:00:00 ..."), shown
    right after the badges."""
    badges: list[Piece] = []
    if snapshot is not None and snapshot.source in BADGES:
        badges.append((f" {BADGES[snapshot.source]} ", ("bold reverse $accent",)))
    if paused:
        badges.append((" PAUSED ", ("bold reverse $warning",)))
    title = Line([*(p for b in badges for p in (b, (" ", ()))), ("vramtop", ("bold",))])
    if snapshot is None:
        return [title, Line([("waiting for the first sample…", ("dim",))])]
    pieces = [title] + ([Line([(where, ("bold $accent",))])] if where else [])
    pieces.append(Line([(snapshot.hostname, ("bold",))]))
    if snapshot.source == "cluster":  # the GPUs of every Ray node, as Ray's reporters read them
        nodes = len({g.node for g in snapshot.gpus})
        pieces.append(Line([(f"{nodes} node{'s' if nodes != 1 else ''} with GPUs", ())]))
        pieces.append(Line([("reserved memory counted as used", ("dim",))]))
    else:
        pieces.append(Line([(f"driver {snapshot.driver_version or 'n/a'}", ())]))
        pieces.append(Line([(f"CUDA {snapshot.cuda_version or 'n/a'}", ())]))
    lost = sum(g.lost for g in snapshot.gpus)
    stale = sum(g.stale_since is not None and not g.lost for g in snapshot.gpus)  # totals include old figures
    gpus = f"{len(snapshot.gpus)} GPU" + ("s" if len(snapshot.gpus) != 1 else "")
    gone = ", ".join(n for n in (f"{lost} lost" if lost else "", f"{stale} not live" if stale else "") if n)
    pieces.append(Line([(gpus + (f" ({gone})" if gone else ""), ())]))
    used, total, free = snapshot.used_mib, snapshot.total_mib, snapshot.free_mib
    pieces.append(Line([("used ", ()), (f"{used:,}", ("bold",)), (f"/{total:,} MiB", ()),
                        (f" ({gib(used, unit=False)}/{gib(total, unit=False)} GiB)", ())]))
    pieces.append(Line([("free ", ()), (f"{free:,}", ("bold",)), (" MiB", ()), (f" ({gib(free, unit=False)} GiB)", ())]))
    return pieces


def fitted(piece: Line, width: int) -> Line:
    """A figure wider than the line without its last part where that only repeats it in GiB."""
    if piece.cell_length > width and piece[-1][0].endswith(" GiB)"):
        return Line(piece[:-1])
    return piece


class NodeHeader(PromptlessRefresh, Widget):
    """Wraps between figures, never inside one, so nothing is cut at 40 columns (the memory
    totals drop their GiB where the line is narrower than them). Its figures
    move on every tick of a busy node: its lines are styled pieces drawn straight into strips
    (``pieces.py``), not ``Content``."""

    DEFAULT_CSS = "NodeHeader { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: NodeSnapshot | None = None
        self.paused = False
        self._pieces = header_pieces(None, False)
        self._where: str | None = None
        self._styles = PieceStyles(64)
        self._flowed: tuple = ()  # (pieces, width, their lines)

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)
        self.watch(self.app, "paused", self._take_paused)

    def _take_tick(self, tick: Tick | None) -> None:
        if tick is not None:
            self._where = tick.where
            self.show(tick.snapshot, self.paused, tick.where)

    def _take_paused(self, paused: bool | None) -> None:
        self.show(self.snapshot, bool(paused), self._where)

    def show(self, snapshot: NodeSnapshot | None, paused: bool, where: str | None = None) -> None:
        """Repaint only when the words change: a node at rest costs no repaint a tick, and one
        whose memory moved its totals, from where they first draw differently to where they last do."""
        pieces = header_pieces(snapshot, paused, where)
        self.snapshot, self.paused = snapshot, paused
        if pieces == self._pieces:
            return
        width = self.size.width
        before = self._lines(width)
        self._pieces = pieces
        after = self._lines(width)
        if len(after) != len(before) or not width:
            self.refresh(layout=len(after) != len(before))
        elif (span := repaint_span(before, after, width)) is not None:
            self.refresh(Region(span[0], 0, span[1] - span[0], len(after)))

    @property
    def text(self) -> str:
        """The header's words, a line each, as drawn at its width."""
        return "\n".join(line.plain for line in self._lines(self.size.width))

    def _lines(self, width: int) -> list[Line]:
        if self._flowed[:2] != (self._pieces, width):  # asked for by each line drawn
            self._flowed = (self._pieces, width, flow([fitted(p, width) for p in self._pieces], max(width, 1)))
        return self._flowed[2]

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        lines, width = self._lines(self.size.width), self.size.width
        if y >= len(lines):
            return Strip.blank(width, self.visual_style.rich_style)
        return self._styles.strip(self, lines[y], width)
