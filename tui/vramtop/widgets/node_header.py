"""The top line: DEMO / REPLAY / CLUSTER / PAUSED badges first (always visible), then the host
(in cluster mode the Ray dashboard), driver and CUDA versions (the node count in cluster mode) and
the memory totals in MiB and GiB. It watches the app's ``tick`` and ``paused``."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from vramtop.snapshot import NodeSnapshot
from vramtop.units import gib
from vramtop.widgets.flow import flow
from vramtop.widgets.tick import Tick

BADGES = {"demo": "DEMO", "replay": "REPLAY", "cluster": "CLUSTER"}


def header_pieces(snapshot: NodeSnapshot | None, paused: bool, where: str | None = None) -> list[Content]:
    """``where``: the replay's position ("replay 14:02:11  +00:05:12 / 01:00:00 ..."), shown
    right after the badges."""
    badges: list[Content] = []
    if snapshot is not None and snapshot.source in BADGES:
        badges.append(Content(f" {BADGES[snapshot.source]} ").stylize("bold reverse $accent"))
    if paused:
        badges.append(Content(" PAUSED ").stylize("bold reverse $warning"))
    title = Content.assemble(*(p for b in badges for p in (b, " ")), ("vramtop", "bold"))
    if snapshot is None:
        return [title, Content("waiting for the first sample…").stylize("dim")]
    pieces = [title] + ([Content(where).stylize("bold $accent")] if where else [])
    pieces.append(Content(snapshot.hostname).stylize("bold"))
    if snapshot.source == "cluster":  # the GPUs of every Ray node, as Ray's reporters read them
        nodes = len({g.node for g in snapshot.gpus})
        pieces.append(Content(f"{nodes} node{'s' if nodes != 1 else ''} with GPUs"))
        pieces.append(Content("reserved memory counted as used").stylize("dim"))
    else:
        pieces.append(Content(f"driver {snapshot.driver_version or 'n/a'}"))
        pieces.append(Content(f"CUDA {snapshot.cuda_version or 'n/a'}"))
    lost = sum(g.lost for g in snapshot.gpus)
    stale = sum(g.stale_since is not None and not g.lost for g in snapshot.gpus)  # totals include old figures
    gpus = f"{len(snapshot.gpus)} GPU" + ("s" if len(snapshot.gpus) != 1 else "")
    gone = ", ".join(n for n in (f"{lost} lost" if lost else "", f"{stale} not live" if stale else "") if n)
    pieces.append(Content(gpus + (f" ({gone})" if gone else "")))
    used, total, free = snapshot.used_mib, snapshot.total_mib, snapshot.free_mib
    pieces.append(Content.assemble(
        "used ", (f"{used:,}", "bold"), f"/{total:,} MiB ({gib(used, unit=False)}/{gib(total, unit=False)} GiB)"
    ))
    pieces.append(Content.assemble("free ", (f"{free:,}", "bold"), f" MiB ({gib(free, unit=False)} GiB)"))
    return pieces


class NodeHeader(Widget):
    """Wraps between figures, never inside one, so nothing is cut at 40 columns."""

    DEFAULT_CSS = "NodeHeader { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: NodeSnapshot | None = None
        self.paused = False
        self._pieces = header_pieces(None, False)
        self._where: str | None = None

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
        """Repaint only when the words change: a node at rest costs no repaint a tick."""
        pieces = header_pieces(snapshot, paused, where)
        self.snapshot, self.paused = snapshot, paused
        if pieces == self._pieces:
            return
        before = self._lines(self.size.width)
        self._pieces = pieces
        self.refresh(layout=len(self._lines(self.size.width)) != len(before))

    def _lines(self, width: int) -> list[Content]:
        return flow(self._pieces, max(width, 1))

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.size.width))
