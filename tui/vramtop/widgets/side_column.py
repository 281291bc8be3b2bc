"""The side column: what is useful beside the live view now, each source in as few lines as it
needs: the pinned what-if candidates' live verdicts (one entry each) and the Ray panel.

It watches the app's ``tick`` and ``whatif_memory`` (the pins, as the what-if panel last said or
as remembered from its last use) and judges the pins on each new snapshot and each change of
pins. With nothing pinned it is one hint line. On a wide terminal ``w`` opens the what-if panel
inside it; while the panel is open it takes the whole column (it shows the pins itself), and the
column judges nothing until it closes.
"""

from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from vramtop.fit.verdict import GREEN, FitResult
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.tick import Tick
from vramtop.widgets.whatif.assess import pin_verdicts
from vramtop.widgets.whatif.form import FormState, describe
from vramtop.widgets.whatif.persist import WhatIfMemory

HINT = "w what if · + pin: its verdict stays here"


def pin_verdict(form: FormState, result: FitResult) -> str:
    """One pin: "✗ RED  medgemma-27b-it:q8 · Ollama · GPU 0 needs 4,672 of 32 MiB free", then the
    fit engine's reason where that figure is not the whole story: a verdict that is not GREEN
    although the tightest GPU has the room (too few requests, thin margin), or weights that alone
    outgrow each GPU's request, which no freed memory mends."""
    line = f"{result.symbol} {result.word}  {describe(form)}"
    tight = min(result.per_gpu, key=lambda g: g.left_mib) if result.per_gpu else None
    if tight is not None:
        line += f" · GPU {tight.gpu_index} needs {tight.needed_mib:,} of {tight.free_mib:,} MiB free"
    weights_exceed = any(r.weights_bytes > r.requested_bytes for r in result.ranks)
    if result.verdict != GREEN and (tight is None or tight.fits or weights_exceed):
        line += f" · {result.headline}"
    return line


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
        self._judged: tuple[NodeSnapshot, tuple[FormState, ...]] | None = None

    def compose(self) -> ComposeResult:
        yield Static(HINT, id="side-pins", classes="-hint")
        yield self._ray

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)
        self.watch(self.app, "whatif_memory", self._take_memory)

    def _take_tick(self, tick: Tick | None) -> None:
        if tick is not None and not tick.at_rest:
            self._snapshot = tick.snapshot
            self._judge()

    def _take_memory(self, memory: WhatIfMemory | None) -> None:
        if memory is not None:
            self._pins = memory.pins
            self._judge()

    def _judge(self) -> None:
        """The pins on the newest snapshot, unless judged so already or the what-if panel,
        open in the column, shows them itself."""
        judged = self._judged
        if (self._snapshot is None or self.has_class("-whatif")
                or (judged is not None and judged[0] is self._snapshot and judged[1] == self._pins)):
            return
        self._judged = (self._snapshot, self._pins)
        self.show_pins(zip(self._pins, pin_verdicts(self._pins, self._snapshot)))

    def show_pins(self, pins: Iterable[tuple[FormState, FitResult]]) -> None:
        """The pinned candidates with their verdicts on the newest snapshot (plain text: a model
        name is anyone's text)."""
        lines = [pin_verdict(form, result) for form, result in pins]
        text = "\n".join(lines) or HINT
        if text == self._text:
            return
        self._text = text
        box = self.query_one("#side-pins", Static)
        box.set_class(not lines, "-hint")
        box.update(Content(text))
