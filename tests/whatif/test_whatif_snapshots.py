"""SVG snapshots of the panel in each verdict state, on the demo node at a fixed clock.

The candidate comes from the remembered state, so the picture does not depend on typing speed.
Regenerate deliberately: ``pytest tests/whatif/test_whatif_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import pytest
from textual.widgets import Input, Static

from host_app import demo_app, first_picture
from vramtop.widgets.whatif.form import OLLAMA, FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory

DEMO_REPLICA = "ray:4000"  # the demo node's Ray Serve replica that runs vLLM (its instance key)
# The seed's recommendation: medgemma-4b on vLLM with TP=2, 85 % of each GPU, 8k context.
SEED_TP2 = FormState(model="google/medgemma-4b-it", tensor_parallel_size="2",
                     gpu_memory_utilization="0.85", max_model_len="8192")

# verdict -> (the demo node with its replica stopped?, the candidate)
CANDIDATES = {
    "red": (False, FormState(model="medgemma-27b-it:q8", engine=OLLAMA)),
    "yellow": (False, SEED_TP2.with_(stopped=(DEMO_REPLICA,))),
    "green": (True, SEED_TP2),
    "invalid": (False, SEED_TP2.with_(gpu_memory_utilization="1.5")),
}


def run_before_for(verdict: str):
    async def run_before(pilot):
        await first_picture(pilot)
        await pilot.press("w")
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()
        headline = str(pilot.app.screen.query_one("#wi-headline", Static).render())
        assert verdict.upper() in headline, headline

    return run_before


@pytest.mark.parametrize("verdict", list(CANDIDATES))
@pytest.mark.parametrize("size", [(40, 60), (120, 50)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_panel_in_each_verdict_state(snap_compare, state_path, verdict, size):
    stopped, form = CANDIDATES[verdict]
    save_memory(WhatIfMemory(current=form), state_path)
    assert snap_compare(demo_app(stopped=stopped), terminal_size=size, run_before=run_before_for(verdict))
