"""On the seed node as it really runs (a Serve replica holding CUDA contexts, its engine core and
four TP workers, all real processes), the what-if panel offers only the whole instance to stop, and
a RED candidate turns GREEN once that instance is stopped through vramtop's own stop plan."""

from __future__ import annotations

import time

from textual.widgets import Static

from engine_tree import Proc, proc_tree
from host_app import first_picture, next_tick
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.live import LiveSource
from vramtop.actions import Stopper, plan_for_instance
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory
from vramtop.widgets.whatif.panel import WhatIfPanel

CANDIDATE = FormState(model="medgemma-27b-it:q8", engine=OLLAMA)  # the seed's 29 GB model
REPLICA_MIB = {0: 519, 1: 529, 2: 531, 3: 421}
# Parentage and titles as in tests/instances/test_real_trees.py (sources cited there).
SEED_TREE = (
    Proc("replica", "ray::ServeReplica:medgemma:VLLMDeployment", None, REPLICA_MIB),
    Proc("engine", "VLLM::EngineCore", "replica", {0: 1_234}),
    *(Proc(f"w{r}", f"VLLM::Worker_TP{r}", "engine", {r: 20_730}) for r in range(4)),
)


def headline(app) -> str:
    return str(app.screen.query_one("#wi-headline", Static).render())


async def test_only_the_whole_instance_is_offered_and_stopping_it_turns_red_into_green(fake_nvml, state_path):
    save_memory(WhatIfMemory(current=CANDIDATE), state_path)
    with proc_tree(*SEED_TREE) as tree:
        tree.list_on(fake_nvml)  # the seed's figures: 32 / 1,256 / 1,254 / 1,364 MiB free
        app = VramtopApp(LiveSource(), Config(interval=3600.0))
        async with app.run_test(size=(140, 50)) as pilot:
            await first_picture(pilot)
            await pilot.press("w")
            await pilot.pause()
            panel = app.screen.query_one(WhatIfPanel)
            assert "RED" in headline(app), headline(app)
            stopped = panel.query_one("#f-stopped")
            labels = [str(stopped.get_option_at_index(i).prompt) for i in range(stopped.option_count)]
            assert labels == ["medgemma/VLLMDeployment (GPUs 0,1,2,3, 86,154 MiB)"]
            stops = [s.text for s in panel.result.suggestions if s.field == "stopped"]
            assert stops and all("medgemma/VLLMDeployment (frees 86,154 MiB)" in s for s in stops), stops

            (inst,) = app.instances
            plan = plan_for_instance(app.snapshot, inst)
            assert {t.pid for t in plan.term} == set(tree.pid.values())
            stopper = Stopper()
            assert stopper.terminate(plan).ok
            deadline = time.monotonic() + 10
            while stopper.remaining(plan) and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert stopper.remaining(plan) == ()

            tree.freed_on(fake_nvml)  # the driver lists no process any more
            await next_tick(pilot)
            assert "GREEN" in headline(app), headline(app)
