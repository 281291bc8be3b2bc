"""The verdict follows the node: a RED candidate turns GREEN within one tick once the vLLM
workers that held the memory are gone (the stand-in NVML driver, real processes with vLLM titles)."""

from __future__ import annotations

import fakenvml
from textual.widgets import Static

from host_app import first_picture, next_tick
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.live import LiveSource
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory
from vramtop.widgets.whatif.panel import WhatIfPanel

WORKER_MIB = 20_730
CANDIDATE = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)  # the seed's 29 GB model


def headline(app) -> str:
    return str(app.screen.query_one("#wi-headline", Static).render())


async def test_a_red_candidate_turns_green_within_one_tick_when_the_vllm_workers_free_their_memory(
    fake_nvml, state_path
):
    save_memory(WhatIfMemory(current=CANDIDATE), state_path)
    titles = [f"VLLM::Worker_TP{rank}" for rank in range(4)]
    with fakenvml.spawn_processes(*titles) as pids:
        for gpu, pid in enumerate(pids):
            fake_nvml.add_process(gpu, pid, WORKER_MIB)
        fake_nvml.write()
        app = VramtopApp(LiveSource(), Config(interval=3600.0))
        async with app.run_test(size=(140, 50)) as pilot:
            await first_picture(pilot)
            await pilot.press("w")
            await pilot.pause()
            panel = app.screen.query_one(WhatIfPanel)
            assert panel.form == CANDIDATE
            assert "RED" in headline(app), headline(app)
            # The workers are listed in the "as if stopped" choices, by their vLLM titles.
            stopped = panel.query_one("#f-stopped")
            labels = [str(stopped.get_option_at_index(i).prompt) for i in range(stopped.option_count)]
            assert sum("Worker_TP" in label or "vLLM" in label for label in labels) == 4

            # The workers end: NVML lists no process and their memory is free again.
            fake_nvml.processes.clear()
            for gpu in fake_nvml.gpus:
                gpu.used -= WORKER_MIB * fakenvml.MIB
                gpu.free += WORKER_MIB * fakenvml.MIB
            fake_nvml.write()
            await next_tick(pilot)
            assert "GREEN" in headline(app), headline(app)
            assert all(need.fits for need in panel.result.per_gpu if need.needed_mib)
