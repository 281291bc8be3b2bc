"""The live view shows a launch's reservation on the GPU bar as its own segment and a line
naming it, from a real ``vramtop launch`` whose stand-in engine is still loading."""

import re
import signal
import time

import pytest

import fakenvml
from launch_support import events, launch
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.live import LiveSource
from vramtop.widgets.gpu_bars import LAUNCH, GpuPanel


@pytest.fixture
def loading(node, monkeypatch, tmp_path):
    """A launch admitted and holding its reservation: its engine takes a quarter of its memory
    every 5 s."""
    scenario, env, log = node
    monkeypatch.setenv(fakenvml.SCENARIO_ENV, str(scenario.path))
    monkeypatch.setenv("VRAMTOP_RUNTIME_DIR", env["VRAMTOP_RUNTIME_DIR"])
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    p = launch(dict(env, STANDIN_STEP="5", STANDIN_HOLD="60"), "--", "vllm", "serve", "google/medgemma-4b-it",
               "--gpu-memory-utilization", "0.55", "--max-model-len", "8192")
    end = time.monotonic() + 20
    while not any(e["event"] == "start" for e in events(log)) and time.monotonic() < end:
        time.sleep(0.1)
    live = LiveSource()
    try:
        yield live
    finally:
        live.close()
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
        import pynvml

        while fakenvml.stub().vramtopFakeNvmlInitCount() > 0:
            pynvml.nvmlShutdown()


async def test_the_bar_draws_the_reservation_and_names_it(loading):
    snapshot = loading.sample()
    [held] = snapshot.reservations
    assert held.model == "google/medgemma-4b-it" and held.on(0) > 10_000
    app = VramtopApp(loading, Config(interval=3600.0))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.3)
        panel = app.query_one(GpuPanel)
        line, note = (strip.text for strip in panel.strips_of(0))
        # used, driver-reserved, promised to the launch (what its engine has not taken yet), free
        assert re.search(f"█+▒+{LAUNCH}{{5,}}░+", line) and panel.bars[0].height == 2
        assert note.strip().startswith(f"{LAUNCH} reserved for launch: google/medgemma-4b-it, ")
