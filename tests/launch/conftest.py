"""A one-GPU node on the stand-in driver, a ``vllm`` on PATH that is the stand-in engine, and a
private runtime directory for the reservations."""

import os
import sys
from pathlib import Path

import pytest

import fakenvml

HERE = Path(__file__).resolve().parent


@pytest.fixture
def node(tmp_path):
    """(scenario, env, log): one empty A10 (22,515 MiB as CUDA counts it) and the environment a
    launch runs in."""
    scenario = fakenvml.Scenario(tmp_path / "nvml-scenario.txt")
    scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=0)
    scenario.write()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    vllm = bin_dir / "vllm"
    vllm.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(HERE / 'standin_engine.py')!r}, "
                    "run_name='__main__')\n")
    vllm.chmod(0o755)
    runtime = tmp_path / "run"
    log = tmp_path / "engine.log"
    env = scenario.env()
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", VRAMTOP_RUNTIME_DIR=str(runtime),
               STANDIN_LOG=str(log), PYTHONUNBUFFERED="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return scenario, env, log
