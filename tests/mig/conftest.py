import subprocess
import sys

import pytest

import fakenvml


@pytest.fixture(autouse=True)
def _no_user_state(tmp_path, monkeypatch):
    """The app must not read the user's themes or what-if state, nor write there."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _run_vramtop(scenario: fakenvml.Scenario, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vramtop", *args, "--no-ray"], env=scenario.env(),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def serving_node(tmp_path):
    """GPU 0 split into two 3g.40gb slices: on slice 1 a vLLM V1 engine with TP=1 (the
    EngineCore owns the GPU; vllm/v1/engine/core.py titles it EngineCore through
    vllm/utils set_process_title, prefix VLLM), on slice 0 a llama.cpp llama-server; GPU 1 whole,
    with a python3 job."""
    scenario = fakenvml.a100_mig(tmp_path / "scenario.txt")
    with fakenvml.spawn_processes("VLLM::EngineCore", "llama-server -m /models/gemma.gguf",
                                  "python3 train.py") as pids:
        engine, llama, job = pids
        scenario.gpus[0].migs[1].used += 36_000 * fakenvml.MIB
        scenario.gpus[0].migs[1].free -= 36_000 * fakenvml.MIB
        scenario.add_process(0, engine, 35_990, mig=1)
        scenario.add_process(0, llama, 5_120, mig=0)
        scenario.add_process(1, job, 2_048)
        scenario.write()
        yield scenario, engine, llama, job


@pytest.fixture
def run_vramtop():
    """``run_vramtop(scenario, *args)``: vramtop in a child on the stand-in driver, Ray not polled."""
    return _run_vramtop


@pytest.fixture
def live_mig_node(fake_nvml):
    """Read live from the stand-in driver: GPU 0's slice 0:0 empty, slice 0:1 holding a vLLM V1
    engine with TP=1 (the EngineCore owns the GPU; vllm/v1/engine/core.py titles it through
    vllm/utils set_process_title, prefix VLLM); GPU 1 whole with a training job that leaves
    about 11 GiB free. Yields (snapshot, engine PID, job PID)."""
    from vramtop.sources.live import LiveSource

    scenario = fakenvml.a100_mig(fake_nvml.path)
    with fakenvml.spawn_processes("VLLM::EngineCore", "python3 train.py") as (engine, job):
        mig = scenario.gpus[0].migs[1]
        mig.used, mig.free = mig.used + 36_000 * fakenvml.MIB, mig.free - 36_000 * fakenvml.MIB
        gpu1 = scenario.gpus[1]
        gpu1.used, gpu1.free = gpu1.used + 70_000 * fakenvml.MIB, gpu1.free - 70_000 * fakenvml.MIB
        scenario.add_process(0, engine, 35_990, mig=1)
        scenario.add_process(1, job, 70_000)
        scenario.write()
        source = LiveSource()
        try:
            yield source.sample(), engine, job
        finally:
            source.close()
