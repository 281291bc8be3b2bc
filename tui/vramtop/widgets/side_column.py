"""The side column: what is useful beside the live view now, each source in as few lines as it
needs: the pinned what-if candidates' live verdicts (one entry each) and the Ray panel.

It watches the app's ``tick`` and ``whatif_memory`` (the pins, as the what-if panel last said or
as remembered from its last use) and judges the pins on each new snapshot and each change of pins,
on a thread of its own (``job_thread``): on a cluster a pin weighs thousands of instances, which
the UI thread must not. One judgement runs at a time; what changed meanwhile is judged when it
ends, the newest snapshot and pins only. A pin not judged yet reads "judging"; the others keep
their last verdict, marked pending without its figures once a judgement of a newer picture has run
``PENDING_AFTER`` seconds. With nothing pinned it is one hint line. On a wide terminal ``w`` opens
the what-if panel inside it; while the panel is open it takes the whole column (it shows the pins
itself), and the column judges nothing until it closes. The fit engine is imported by the first
judgement: with nothing pinned the live view does not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from vramtop.job_thread import JobThread
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.tick import Tick
from vramtop.widgets.whatif.form import FormState, describe
from vramtop.widgets.whatif.persist import WhatIfMemory

if TYPE_CHECKING:
    from vramtop.fit.verdict import FitResult

HINT = "w what if · + pin: its verdict stays here"
PENDING_AFTER = 0.5  # s: a judgement that ends sooner changes no line twice (the node is sampled every 1 s)


def pin_verdict(form: FormState, result: FitResult) -> str:
    """One pin: "✗ RED  medgemma-27b-it:q8 · Ollama · GPU 0 needs 4,672 of 32 MiB free", then the
    fit engine's reason where that figure is not the whole story: a verdict that is not GREEN
    although the tightest GPU has the room (too few requests, thin margin), or weights that alone
    outgrow each GPU's request, which no freed memory mends."""
    from vramtop.fit.verdict import GREEN

    line = f"{result.symbol} {result.word}  {describe(form)}"
    tight = min(result.per_gpu, key=lambda g: g.left_mib) if result.per_gpu else None
    if tight is not None:
        line += f" · GPU {tight.gpu_index} needs {tight.needed_mib:,} of {tight.free_mib:,} MiB free"
    weights_exceed = any(r.weights_bytes > r.requested_bytes for r in result.ranks)
    if result.verdict != GREEN and (tight is None or tight.fits or weights_exceed):
        line += f" · {result.headline}"
    return line


def pending_line(form: FormState, result: FitResult | None) -> str:
    """A pin whose verdict on the newest picture is still being judged: its last verdict's word,
    none of its figures (they are of an older picture)."""
    if result is None:
        return f"⋯ judging  {describe(form)}"
    return f"⋯ {result.word}?  {describe(form)} · judging the newest picture"


class PinsJudged(Message):
    """The judging thread's verdicts: ``results`` for ``pins`` on ``snapshot``."""

    def __init__(self, snapshot: NodeSnapshot, pins: tuple[FormState, ...], results: tuple[FitResult, ...]) -> None:
        super().__init__()
        self.snapshot, self.pins, self.results = snapshot, pins, results


class PinsNotJudged(Message):
    """The judgement raised (a fit engine bug): the last lines stay, the next tick tries again."""


class SideColumn(Vertical):
    """The pins' verdicts, then ``ray`` (the Ray panel, or one line when Ray is not polled)."""

    DEFAULT_CSS = """
    SideColumn > #side-pins { height: auto; }
    SideColumn > #side-pins.-hint { color: $text-muted; }
    SideColumn.-whatif > * { display: none; }
    SideColumn.-whatif > WhatIfPanel { display: block; }
    """

    def __init__(self, ray: Widget, **kwargs) -> None:
        super().__init__(**kwargs)
        self._ray = ray
        self._text: str | None = None
        self._snapshot: NodeSnapshot | None = None
        self._pins: tuple[FormState, ...] = ()
        self._judged: tuple[NodeSnapshot, tuple[FormState, ...]] | None = None  # what the verdicts are of
        self._verdicts: dict[FormState, FitResult] = {}
        self._judging = False  # a judgement is on the thread now
        self._pending: Timer | None = None
        self._thread: JobThread | None = None  # started by the first judgement

    def compose(self) -> ComposeResult:
        yield Static(HINT, id="side-pins", classes="-hint")
        yield self._ray

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)
        self.watch(self.app, "whatif_memory", self._take_memory)

    def on_unmount(self) -> None:
        if self._thread is not None:
            self._thread.stop()

    def _take_tick(self, tick: Tick | None) -> None:
        if tick is not None and not tick.at_rest:
            self._snapshot = tick.snapshot
            self._judge()

    def _take_memory(self, memory: WhatIfMemory | None) -> None:
        if memory is not None:
            self._pins = memory.pins
            self._judge()

    def _judge(self) -> None:
        """Judge the pins on the newest snapshot on the thread, unless judged so already, a
        judgement is running (it calls again when it ends), or the what-if panel, open in the
        column, shows them itself."""
        wanted = (self._snapshot, self._pins)
        judged = self._judged
        if (self._snapshot is None or self._judging or self.has_class("-whatif")
                or (judged is not None and judged[0] is self._snapshot and judged[1] == self._pins)):
            return
        if not self._pins:  # nothing to judge: no thread, the hint line
            self._judged, self._verdicts = wanted, {}
            self._draw(pending=False)
            return
        self._judging = True
        self._draw(pending=False)  # a new pin reads "judging" at once
        if self._verdicts and (judged is None or judged[0] is not self._snapshot):
            self._pending = self.set_timer(PENDING_AFTER, lambda: self._draw(pending=True))
        if self._thread is None:
            self._thread = JobThread("pins", self._judge_pins, self.post_message)
        self._thread.start(wanted)

    @staticmethod
    def _judge_pins(wanted: tuple[NodeSnapshot, tuple[FormState, ...]]) -> Message:
        """On the thread: the verdicts of the pins on the snapshot."""
        snapshot, pins = wanted
        try:
            from vramtop.widgets.whatif.assess import pin_verdicts

            return PinsJudged(snapshot, pins, pin_verdicts(pins, snapshot))
        except Exception:
            return PinsNotJudged()

    def on_pins_judged(self, message: PinsJudged) -> None:
        self._end_judging()
        self._judged = (message.snapshot, message.pins)
        self._verdicts = dict(zip(message.pins, message.results))
        self._draw(pending=False)
        self._judge()  # a newer snapshot or other pins came meanwhile

    def on_pins_not_judged(self, message: PinsNotJudged) -> None:
        self._end_judging()

    def _end_judging(self) -> None:
        self._judging = False
        if self._pending is not None:
            self._pending.stop()
            self._pending = None

    def _draw(self, pending: bool) -> None:
        """The pins with their verdicts; ``pending``: the verdicts shown are of an older picture."""
        lines = [pin_verdict(form, result) if (result := self._verdicts.get(form)) is not None and not pending
                 else pending_line(form, result) for form in self._pins]
        text = "\n".join(lines) or HINT
        if text == self._text:
            return
        self._text = text
        box = self.query_one("#side-pins", Static)
        box.set_class(not lines, "-hint")
        box.update(Content(text))  # plain text: a model name is anyone's text
