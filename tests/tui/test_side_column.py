"""The side column on a live node without Ray (the stand-in driver, a TP=4 `vllm serve` of real
processes): the pinned candidates' verdicts follow the node, Ray's absence is one line, and `w`
opens the what-if panel in the column while the GPU bars and the process table keep their width."""

from __future__ import annotations

import cProfile
import os
import pstats
import socket
from pathlib import Path

from textual.widgets import Static

from engine_tree import Proc, proc_tree
from tui_support import gpu_lines, next_sample, screen_text, wait_for
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.ray.poller import RayPoller
from vramtop.sources.live import LiveSource
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory
from vramtop.widgets.side_column import HINT
from vramtop.widgets.whatif.panel import WhatIfPanel, WhatIfScreen

# `vllm serve` (vllm/entrypoints/cli/serve.py) keeps its command line; its engine core is a child
# titled VLLM::EngineCore (vllm/v1/engine/utils.py starts it, vllm/v1/engine/core.py titles it),
# which starts one worker per TP rank titled VLLM::Worker_TP<r> (vllm/v1/executor/multiproc_executor.py).
VLLM_TP4 = (
    Proc("api", argv=("vllm", "serve", "google/medgemma-27b-it", "--tensor-parallel-size", "4")),
    Proc("engine", "VLLM::EngineCore", "api", {0: 1_234}),
    *(Proc(f"w{r}", f"VLLM::Worker_TP{r}", "engine", {r: 20_730}) for r in range(4)),
)
OLLAMA_27B = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)  # fits once the instance is gone
# 27B in bf16 at TP 1: its weights alone outgrow one A10's request, freed or not.
VLLM_27B_TP1 = FormState(model="google/medgemma-27b-it", tensor_parallel_size="1")


def state_path() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "vramtop" / "whatif.yaml"


def pins_text(app) -> str:
    return str(app.screen_stack[0].query_one("#side-pins", Static).render())


async def judged(pilot, start: str = "") -> str:
    """The pins' lines once the side column's worker has judged them (none pending), the first
    starting with ``start``."""
    app = pilot.app
    assert await wait_for(pilot, lambda: "⋯" not in pins_text(app) and pins_text(app).startswith(start)), pins_text(app)
    return pins_text(app)


def nothing_listens() -> str:
    """A dashboard address where nothing answers (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_pins_follow_the_node_and_the_whatif_panel_opens_in_the_column_at_160(fake_nvml):
    save_memory(WhatIfMemory(current=VLLM_27B_TP1, pins=(OLLAMA_27B, VLLM_27B_TP1)), state_path())
    address = nothing_listens()
    with proc_tree(*VLLM_TP4) as tree:
        tree.list_on(fake_nvml)
        app = VramtopApp(LiveSource(), Config(interval=3600.0), ray_poller=RayPoller(address, timeout=1.0))
        async with app.run_test(size=(160, 50)) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)
            absent = f"no Ray at {address.removeprefix('http://')} · --ray-address"
            assert await wait_for(pilot, lambda: absent in screen_text(app), seconds=10)
            assert app.query_one("RayPanel").region.height == 1  # a line, not a box

            ollama, vllm_tp1 = (await judged(pilot)).split("\n")
            assert ollama.startswith("✗ RED  medgemma-27b-it:q8 · Ollama · GPU ")
            assert vllm_tp1.startswith("✗ RED  google/medgemma-27b-it · vLLM · TP=1")
            assert "weights need" in vllm_tp1 and "per GPU at TP 4" in vllm_tp1  # the plain reason
            assert "−" not in pins_text(app) and "-" not in vllm_tp1.split("free")[-1]

            await pilot.press("w")
            await pilot.pause()
            panel = app.query_one(WhatIfPanel)
            assert not isinstance(app.screen, WhatIfScreen) and panel.parent is app.query_one("#side")
            assert app.query_one("#gpus").region.width >= 100 and app.query_one("#procs").region.width >= 100
            assert panel.region.x >= app.query_one("#procs").region.right  # beside, not over
            # The panel says why the current candidate (TP 1) cannot start, never a negative cache.
            headline = str(panel.query_one("#wi-headline", Static).render())
            assert "RED" in headline and "weights need" in headline, headline
            assert "−" not in str(panel.query_one("#wi-budget", Static).render())
            pins = panel.query_one("#wi-pins")
            assert [str(pins.get_option_at_index(i).prompt)[:5] for i in range(2)] == ["✗ RED"] * 2

            # The live view stays live beside the panel, and the panel's pins follow the node.
            gpu_line = gpu_lines(app, 0)[0]
            tree.freed_on(fake_nvml)
            await next_sample(app, pilot)
            assert gpu_lines(app, 0)[0] != gpu_line
            assert str(pins.get_option_at_index(0).prompt).startswith("✓ GREEN")
            assert str(pins.get_option_at_index(1).prompt).startswith("✗ RED")

            await pilot.press("escape")
            await pilot.pause()
            assert not app.query(WhatIfPanel)
            ollama, vllm_tp1 = (await judged(pilot, "✓ GREEN")).split("\n")
            assert ollama.startswith("✓ GREEN  medgemma-27b-it:q8 · Ollama · GPU ")
            assert vllm_tp1.startswith("✗ RED") and "weights need" in vllm_tp1


async def test_the_side_column_judges_the_remembered_pins_on_every_new_snapshot(fake_nvml):
    """With the panel never opened, the pins read from the state file turn GREEN on the tick the
    memory is freed."""
    save_memory(WhatIfMemory(pins=(OLLAMA_27B,)), state_path())
    with proc_tree(*VLLM_TP4) as tree:
        tree.list_on(fake_nvml)
        app = VramtopApp(LiveSource(), Config(interval=3600.0))
        async with app.run_test(size=(160, 50)) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)
            assert (await judged(pilot)).startswith("✗ RED")
            tree.freed_on(fake_nvml)
            await next_sample(app, pilot)
            await judged(pilot, "✓ GREEN")
            assert "Ray: not polled" in screen_text(app)


async def test_the_pins_are_judged_in_a_worker_and_read_judging_until_then(fake_nvml):
    """A new pin reads "judging" at once; its verdict, and the next one on a new snapshot, come
    from the side column's worker: the fit engine never runs on the UI thread (profiled: cProfile
    sees only the thread that enables it, here the app's)."""
    with proc_tree(*VLLM_TP4) as tree:
        tree.list_on(fake_nvml)
        app = VramtopApp(LiveSource(), Config(interval=3600.0))
        async with app.run_test(size=(160, 50)) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)
            assert pins_text(app) == HINT
            ui_thread = cProfile.Profile()
            ui_thread.enable()
            app.whatif_memory = WhatIfMemory(pins=(OLLAMA_27B,))
            assert pins_text(app) == "⋯ judging  medgemma-27b-it:q8 · Ollama"
            await judged(pilot, "✗ RED  medgemma-27b-it:q8 · Ollama")
            tree.freed_on(fake_nvml)
            await next_sample(app, pilot)
            await judged(pilot, "✓ GREEN  medgemma-27b-it:q8 · Ollama")
            ui_thread.disable()
    fit_engine = f"vramtop{os.sep}fit{os.sep}"
    on_ui = {f"{Path(path).stem}.{name}" for path, _, name in pstats.Stats(ui_thread).stats if fit_engine in path}
    # Drawing a verdict reads its properties (word, symbol, the tightest GPU); judging is the rest.
    judging = sorted(f for f in on_ui if f in ("verdict.evaluate", "verdict._judge")
                     or f.split(".")[0] in ("vllm", "ollama", "placement", "specs"))
    assert on_ui and not judging, judging


async def test_nothing_pinned_is_a_hint_and_a_new_pin_shows_once_the_panel_closes():
    save_memory(WhatIfMemory(current=FormState(model="google/medgemma-4b-it", tensor_parallel_size="2")),
                state_path())
    app = VramtopApp(DemoSource(clock=lambda: 1_700_000_000.0), Config(interval=3600.0))
    async with app.run_test(size=(160, 50)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        assert pins_text(app) == HINT and HINT in screen_text(app)
        await pilot.press("w")
        await pilot.pause()
        await pilot.press("+", "escape")
        await pilot.pause()
        await judged(pilot, "✗ RED  google/medgemma-4b-it · vLLM · TP=2 · GPU ")
        assert HINT not in screen_text(app)


async def test_with_nothing_pinned_a_new_snapshot_starts_no_worker(fake_nvml):
    """Nothing to judge: a tick costs the side column no thread (it did one a tick, for nothing)."""
    with proc_tree(*VLLM_TP4) as tree:
        tree.list_on(fake_nvml)
        app = VramtopApp(LiveSource(), Config(interval=3600.0))
        async with app.run_test(size=(160, 50)) as pilot:
            assert await wait_for(pilot, lambda: app.snapshot is not None)
            side = app.query_one("#side")
            started = []
            original = side._judge_pins
            side._judge_pins = lambda *args: started.append(args) or original(*args)
            tree.freed_on(fake_nvml)
            await next_sample(app, pilot)
            assert pins_text(app) == HINT and not started
            app.whatif_memory = WhatIfMemory(pins=(OLLAMA_27B,))  # a pin: judged at once
            await judged(pilot, "✓ GREEN  medgemma-27b-it:q8 · Ollama")
            assert len(started) == 1


async def test_under_150_columns_the_panel_is_a_screen_and_escape_returns():
    app = VramtopApp(DemoSource(clock=lambda: 1_700_000_000.0), Config(interval=3600.0))
    async with app.run_test(size=(149, 50)) as pilot:
        assert await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, WhatIfScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, WhatIfScreen) and not app.query(WhatIfPanel)
