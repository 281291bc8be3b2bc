"""The what-if panel resolves a model that is not here in a worker: keys are answered while the
registry takes its time, a spinner line says what is going on, and the source when done."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App
from textual.widgets import Input, Static

from checkpoints import config, gguf_blob
from vramtop.sources.demo import DemoSource
from vramtop.widgets.whatif.panel import WhatIfPanel, WhatIfScreen

NAME = "qwen2.5-coder:7b"


class Host(App):
    def __init__(self, state_path) -> None:
        super().__init__()
        self.state_path = state_path

    def on_mount(self) -> None:  # the panel as a screen of its own, as narrow terminals get it
        snapshot = DemoSource(clock=lambda: 1_700_000_000.0).sample()
        self.push_screen(WhatIfScreen(WhatIfPanel(snapshot, state_path=self.state_path)))


@pytest.fixture
def slow_registry(registry, tmp_path, monkeypatch):
    registry.add(f"library/{NAME}", gguf_blob(config("Qwen/Qwen2.5-7B-Instruct"), "Q4_K_M", tmp_path))
    registry.manifest_delay_s = 3.0
    monkeypatch.setenv("VRAMTOP_OLLAMA_REGISTRY", registry.url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama-store"))
    return registry


async def _until(predicate, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


async def test_keys_are_answered_while_a_model_resolves_on_a_slow_registry(slow_registry, tmp_path):
    app = Host(tmp_path / "whatif.yaml")
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        panel = app.screen.query_one(WhatIfPanel)
        source = app.screen.query_one("#wi-model-source", Static)
        await pilot.press(*NAME)
        assert "model" in panel.result.errors  # unknown until the worker has read the registry
        assert await _until(lambda: panel._resolving == NAME, 5)
        assert source.display and "resolving qwen2.5-coder:7b" in str(source.render())
        # The registry holds the manifest back 3 s; the form takes keys meanwhile.
        await pilot.press("tab", "tab", "2")
        assert panel.form.tensor_parallel_size == "2"
        assert app.screen.query_one("#f-tensor_parallel_size", Input).value == "2"
        assert panel._resolving == NAME  # still in flight
        assert await _until(lambda: panel._resolving is None, 30)
        await pilot.pause()
        assert "model" not in panel.result.errors
        assert str(source.render()).startswith(f"from {slow_registry.url}/library/{NAME}")


async def test_a_failed_lookup_says_why_under_the_field(slow_registry, tmp_path):
    slow_registry.manifest_delay_s = 0.0
    app = Host(tmp_path / "whatif.yaml")
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        panel = app.screen.query_one(WhatIfPanel)
        await pilot.press(*"qwen2.5-coder:99b")
        assert await _until(lambda: panel._resolving is None and app.screen.query_one("#wi-model-source").display, 10)
        line = str(app.screen.query_one("#wi-model-source", Static).render())
        assert line == ("qwen2.5-coder:99b: no such tag in the Ollama library; see "
                        "https://ollama.com/library/qwen2.5-coder/tags")
