"""The live view's recurring jobs, each sample of the node and each judging of the what-if pins,
run on threads that live as long as the view (vramtop/job_thread.py). A Textual thread worker a
job ended in a reference cycle (the worker and the task whose context names it) holding the job's
arguments, whole snapshots among them, until a full collection, which the app keeps rare: at five
samples a second the RSS grew by megabytes between them (bench/soak_rss.py)."""

from __future__ import annotations

import gc
import itertools
import os
from pathlib import Path

from tui_support import make_app, next_sample, wait_for
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory

PINS = (FormState(model="medgemma-27b-it:q8", engine=OLLAMA),
        FormState(model="google/medgemma-27b-it", tensor_parallel_size="1"))
TICKS = 20


def pins_text(app) -> str:
    return str(app.query_one("#side-pins").render())


async def test_samples_and_pin_judgements_leave_nothing_for_the_cycle_collector():
    save_memory(WhatIfMemory(current=PINS[1], pins=PINS), Path(os.environ["XDG_STATE_HOME"]) / "vramtop" / "whatif.yaml")
    clock = itertools.count(1_800_000_000, 7)  # the demo node moves: every tick is a new picture, judged again
    app = make_app(DemoSource(clock=lambda: float(next(clock))))
    async with app.run_test(size=(160, 45)) as pilot:
        await next_sample(app, pilot)
        assert await wait_for(pilot, lambda: pins_text(app).startswith("✗ RED") and "⋯" not in pins_text(app))
        gc.collect()
        gc.disable()  # what the ticks leave in cycles stays for the count below
        try:
            judged = pins_text(app)
            for _ in range(TICKS):
                shown = app.snapshot
                await next_sample(app, pilot)
                assert app.snapshot is not shown and app.sample_error is None
                assert await wait_for(pilot, lambda: "⋯" not in pins_text(app))
            assert pins_text(app) == judged  # judged again on each new picture: the same verdicts
            unreachable = gc.collect()
        finally:
            gc.enable()
    # A worker a job left about 25 objects each (and the snapshots it was given): 1,000 here.
    assert unreachable < TICKS, unreachable
