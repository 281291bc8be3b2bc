"""The live app on a node whose GPU 0 is split into MIG slices (stand-in driver, real processes):
each slice has its line under its GPU in every layout, and the process table says the slice."""

import re

import pytest

import fakenvml
from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.sources.live import LiveSource
from vramtop.widgets.gpu_bars import GpuPanel


@pytest.fixture
def source(fake_nvml):
    """Slice 0:1 holds a vLLM V1 EngineCore with TP=1 (titled by vllm/v1/engine/core.py through
    vllm/utils set_process_title), slice 0:0 is empty, GPU 1 is whole and idle."""
    scenario = fakenvml.a100_mig(fake_nvml.path)
    with fakenvml.spawn_processes("VLLM::EngineCore") as (engine,):
        mig = scenario.gpus[0].migs[1]
        mig.used, mig.free = mig.used + 39_000 * fakenvml.MIB, mig.free - 39_000 * fakenvml.MIB
        scenario.add_process(0, engine, 38_990, mig=1)
        scenario.write()
        live = LiveSource()
        try:
            yield live, engine
        finally:
            live.close()


@pytest.mark.parametrize("size", [(160, 45), (80, 24), (40, 30)])
async def test_each_slice_sits_under_its_gpu_with_its_memory_and_profile(source, size):
    live, engine = source
    app = VramtopApp(live, Config(interval=3600.0))
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.3)
        panel = app.query_one(GpuPanel)
        lines = [strip.text for strip in panel.strips_of(0)]
        assert len(lines) == 3 and panel.bars[0].height == 3
        gpu, first, second = lines
        assert first.startswith(" ├0 ● ok ") and second.startswith(" └1 ▲ low ")
        # The slices' figures stand in the GPU's columns: each line ends at the same cell.
        assert len(first) == len(second) == len(gpu)
        assert first.rstrip().endswith("40,179 free" if size[0] < 60 else "40,179 free 3g.40gb")
        if size[0] >= 60:
            assert "13/40,192 MiB" in first and "39,013/40,192 MiB" in second
        assert len(panel.strips_of(1)) == 1  # a whole GPU: one line
        screen = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert re.search(rf"[│ ]0:1 +{engine} ", screen), screen  # the table's GPU column names the slice
