"""On the demo node, the seed's candidates typed into the panel get the verdicts `vramtop fit`
prints for them (the CLI run as its own process, as a user runs it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from textual.widgets import Input, OptionList, Select

from host_app import demo_app, first_picture
from vramtop.widgets.whatif.panel import WhatIfPanel

# The seed analysis's questions: its two Ollama models, and the vLLM TP=2 variant it recommends,
# as it runs now and as if the running vLLM replica were stopped.
SEED = [
    ("medgemma 27b", "ollama", {"quantization": "q8_0"}, ()),
    ("medgemma 4b", "ollama", {"quantization": "q8_0"}, ()),
    ("medgemma 4b", "vllm", {"tensor_parallel_size": "2", "gpu_memory_utilization": "0.85",
                             "max_model_len": "8192"}, ()),
    ("medgemma 4b", "vllm", {"tensor_parallel_size": "2", "gpu_memory_utilization": "0.85",
                             "max_model_len": "8192"}, ("ray:4000",)),
    ("medgemma 27b", "ollama", {"quantization": "q8_0", "num_ctx": "8192"}, ("ray:4000",)),
]
FLAGS = {"tensor_parallel_size": "--tp", "gpu_memory_utilization": "--util", "max_model_len": "--max-model-len",
         "quantization": "--quant", "num_ctx": "--num-ctx"}


def cli_verdict(model: str, engine: str, fields: dict[str, str], stopped: tuple[str, ...]) -> dict:
    argv = [sys.executable, "-m", "vramtop", "fit", model, "--engine", engine, "--demo", "--json"]
    for name, value in fields.items():
        argv += [FLAGS[name], value]
    for key in stopped:
        argv += ["--assume-stopped", key]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


async def type_candidate(pilot, search: str, engine: str, fields: dict[str, str], stopped) -> WhatIfPanel:
    """Keys only: search the model, choose the engine, fill the fields, tick instances to stop."""
    app = pilot.app
    panel = app.screen.query_one(WhatIfPanel)
    await pilot.press(*search)
    matches = panel.query_one("#wi-matches", OptionList)
    ids = [matches.get_option_at_index(i).id for i in range(matches.option_count)]
    await pilot.press(*["down"] * ids.index(next(i for i in ids if i.startswith("google/"))), "enter")
    assert app.focused is panel.query_one("#f-engine", Select)
    if panel.query_one("#f-engine", Select).value != engine:
        await pilot.press("enter", "down" if engine == "ollama" else "up", "enter")
    await pilot.pause()
    assert panel.form.engine == engine
    for name, text in fields.items():
        target = panel.query_one(f"#f-{name}", Input)
        while app.focused is not target:
            await pilot.press("tab")
        await pilot.press(*text)
    if stopped:
        choices = panel.query_one("#f-stopped")
        while app.focused is not choices:
            await pilot.press("tab")
        for key in stopped:
            keys = [choices.get_option_at_index(i).value for i in range(choices.option_count)]
            choices.highlighted = keys.index(key)
            await pilot.press("space")
    await pilot.pause()
    return panel


@pytest.mark.parametrize(("search", "engine", "fields", "stopped"), SEED,
                         ids=["27b-q8-ollama", "4b-q8-ollama", "4b-vllm-tp2", "4b-vllm-tp2-stopped",
                              "27b-q8-ollama-8k-stopped"])
async def test_the_panel_and_vramtop_fit_agree_on_the_seeds_candidates(search, engine, fields, stopped):
    app = demo_app()
    async with app.run_test(size=(140, 60)) as pilot:
        await first_picture(pilot)
        await pilot.press("w")
        await pilot.pause()
        panel = await type_candidate(pilot, search, engine, fields, stopped)
        shown = panel.result
        expected = cli_verdict(panel.form.model, engine, fields, stopped)
        assert (shown.verdict, shown.headline) == (expected["verdict"], expected["headline"])
        assert [s.text for s in shown.suggestions] == [s["text"] for s in expected["suggestions"]]
        assert expected["word"] in str(panel.query_one("#wi-headline").render())
