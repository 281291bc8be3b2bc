"""``vramtop --export``: the live view serves the very snapshots it samples, without a sampler of
its own, and the scrape is answered while the view runs."""

from __future__ import annotations

import asyncio

import pytest

from exporter_support import free_port, scrape
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.cli.export import export_live_view
from vramtop.sources.demo import DemoSource


class CountingDemo(DemoSource):
    """The demo node, counting how often anything samples it."""

    samples = 0

    def sample(self):
        CountingDemo.samples += 1
        return super().sample()


@pytest.fixture(autouse=True)
def _own_state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


async def test_live_view_exports_the_samples_it_takes(tmp_path):
    port = free_port()
    latest = export_live_view(f"127.0.0.1:{port}", Config(interval=0.2))
    source = CountingDemo()
    app = VramtopApp(source, Config(interval=0.2), exporter=latest)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if CountingDemo.samples >= 3 and app.snapshot is not None:
                break
        status, body = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert b'vramtop_gpu_memory_free_bytes{gpu="0"} 3.3554432e+07' in body
        assert b'vramtop_instance_info{container="",engine="vllm",gpus="0,1,2,3",name="medgemma/VLLMDeployment"' in body
        await pilot.press("p")  # paused: the view samples no more
        await pilot.pause(0.5)
        taken = CountingDemo.samples
        assert latest.snapshot is app.snapshot  # the endpoint serves the picture the view shows
        for _ in range(3):
            status, _ = await asyncio.to_thread(scrape, f"http://127.0.0.1:{port}/metrics")
            assert status == 200
        assert CountingDemo.samples == taken  # a scrape samples nothing
