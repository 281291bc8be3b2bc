"""What one keystroke in the what-if panel costs: the fit engine's recompute and the redraw.

On the demo node (fixed clock), the panel open beside the live view (160x50) with three pinned
candidates (the seed's two Ollama models and a vLLM TP=2 variant). Measured in the same run:

  fields, assess  fit.fields.candidate_from_fields on the form's texts (the floor any form
                  pays per key), and assess: the same plus the fit engine's verdict, its
                  suggestions and what the panel shows of them on the current form, no Textual
  frame           CPU ms of the screen's frame after a key: layout when needed, paint of what
                  changed (Screen._on_timer_update), for
                    bare input     a plain Input beside the live view, panel closed (baseline)
                    panel, frozen  the panel's field with the recompute switched off: what
                                   Textual spends on a key on this fuller screen
                    panel, steady  max_model_len typed through valid values: only figures change
                    panel, flips   gpu_memory_utilization typed through "0" and "0." (out of
                                   range): error lines and verdict sections come and go, so the
                                   screen is laid out again (the worst case)
  handler         CPU ms in WhatIfPanel.recompute (assess + updating the verdict's widgets)

Pilot's waiting between keys visits every widget and is not counted. Target: handler + frame
minus the frozen panel's frame (the recompute and redraw one key causes) under 16 ms.
Run: python bench/bench_whatif.py [keystrokes]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from textual.screen import Screen
from textual.widgets import Input

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.fit import specs
from vramtop.fit.fields import candidate_from_fields
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif import assess as wa, form as wf, persist
from vramtop.widgets.whatif.panel import WhatIfPanel

FIXED = 1_700_000_000.0
SEED_PINS = (
    wf.FormState(model="medgemma-27b-it:q8", engine=wf.OLLAMA),
    wf.FormState(model="amsaravi/medgemma-4b-it:q8", engine=wf.OLLAMA),
    wf.FormState(model="google/medgemma-4b-it", tensor_parallel_size="2", gpu_memory_utilization="0.85",
                 max_model_len="8192"),
)
# Typed and erased in turn, so every key changes the form and the verdict is judged again.
# "steady": every value on the way is valid (the usual case: only figures change on screen).
# "flips": "0" and "0." are out of range, so the field's error line and the verdict's sections
# come and go; each such key lays the screen out again (the worst case).
TYPING = {
    "steady": ("max_model_len", ["1", "6", "3", "8", "4", "backspace", "backspace", "backspace", "backspace",
                                 "backspace"]),
    "flips": ("gpu_memory_utilization", ["0", ".", "8", "5", "backspace", "backspace", "backspace",
                                         "backspace"]),
}


def per_call_ms(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


class Spent:
    """CPU milliseconds spent inside the wrapped methods since the last ``take()``."""

    def __init__(self) -> None:
        self.ms = 0.0

    def wrap(self, cls, name: str) -> None:
        original = getattr(cls, name)
        spent = self

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent.ms += (time.process_time() - start) * 1000

        setattr(cls, name, timed)

    def take(self) -> float:
        ms, self.ms = self.ms, 0.0
        return ms


# Where a keystroke's own work happens: the panel's handler (recompute + widget updates) and the
# screen's frame (layout when needed, then paint of the dirty widgets). Pilot's waiting between
# keys visits every widget and would swamp both, so it is left out by measuring only these.
HANDLER, FRAME = Spent(), Spent()
HANDLER.wrap(WhatIfPanel, "recompute")
FRAME.wrap(Screen, "_on_timer_update")


async def keystrokes_ms(n: int, *, panel: bool, typing: str = "steady",
                        judge: bool = True) -> tuple[list[float], list[float]]:
    """Per key: (handler ms, frame ms)."""
    app = VramtopApp(DemoSource(clock=lambda: FIXED), Config(interval=3600.0))
    handler, frame = [], []
    field, keys = TYPING[typing]
    async with app.run_test(size=(160, 50)) as pilot:
        while app.snapshot is None:
            await asyncio.sleep(0.02)
        await pilot.pause()
        if panel:
            await pilot.press("w")
            await pilot.pause()
            whatif = app.screen.query_one(WhatIfPanel)
            target = whatif.query_one(f"#f-{field}", Input)
            if not judge:  # the verdict stays as it is: only Textual's own cost of the key is left
                whatif.recompute = lambda **_: None
        else:
            target = Input(id="bare")
            target.styles.dock = "right"
            target.styles.width = 80
            await app.screen.mount(target)
        target.focus()
        await pilot.pause()
        HANDLER.take(), FRAME.take()
        for i in range(n):
            await pilot.press(keys[i % len(keys)])
            await pilot.pause()
            handler.append(HANDLER.take())
            frame.append(FRAME.take())
    return handler, frame


def stats(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), sorted(samples)[int(0.95 * (len(samples) - 1))]


def line(name: str, samples: list[float], base: list[float] | None = None) -> str:
    med, p95 = stats(samples)
    ratio = f"  x{med / statistics.median(base):.1f} vs baseline" if base else ""
    return f"{name:<22} median {med:8.3f} ms   p95 {p95:8.3f} ms{ratio}"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="bench-whatif-")
    memory = persist.WhatIfMemory()
    for pin in SEED_PINS:
        memory = memory.pin(pin)
    memory = memory.remember(SEED_PINS[2])
    persist.save_memory(memory)

    snapshot = DemoSource(clock=lambda: FIXED).sample()
    form = SEED_PINS[2]
    wa.assess(form, snapshot)  # warm any caches (catalog) as the open panel would have
    spec = specs.resolve(form.model)
    parse = per_call_ms(lambda: candidate_from_fields(wf.form_fields(form), model=spec), n * 5)
    assess = per_call_ms(lambda: wa.assess(form, snapshot), n * 5)
    runs = {
        "bare input": asyncio.run(keystrokes_ms(n, panel=False)),
        "panel, frozen": asyncio.run(keystrokes_ms(n, panel=True, judge=False)),
        "panel, steady": asyncio.run(keystrokes_ms(n, panel=True)),
        "panel, flips": asyncio.run(keystrokes_ms(n, panel=True, typing="flips")),
    }

    print(f"what-if keystroke on the demo node, {n} keys (CPU: {os.cpu_count()} cores)")
    print(line("fields", parse))
    print(line("assess", assess, parse))
    print("per key, frame = layout + paint of the screen; handler = recompute + verdict redraw")
    base_frame = runs["bare input"][1]
    for name, (handler, frame) in runs.items():
        print(line(f"{name}: frame", frame, base_frame if name != "bare input" else None))
        if name.startswith("panel") and name != "panel, frozen":
            print(line(f"{name}: handler", handler))
    frozen_frame = statistics.median(runs["panel, frozen"][1])
    for name in ("panel, steady", "panel, flips"):
        handler, frame = runs[name]
        own = statistics.median([h + f for h, f in zip(handler, frame)]) - frozen_frame
        print(f"{name}: recompute + redraw per key {own:.2f} ms over the frozen panel "
              f"(target < 16 ms): {'OK' if own < 16 else 'OVER'}")

if __name__ == "__main__":
    main()
