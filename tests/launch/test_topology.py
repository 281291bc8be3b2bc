"""Placement by NVML topology, through the stand-in driver's nvmlDeviceGetTopologyCommonAncestor:
a tensor-parallel pair goes to two GPUs behind one PCIe switch rather than to the two with most
free memory across NUMA nodes, when that is as good a verdict."""

import subprocess
import sys

import pytest

import fakenvml
from vramtop.sources.nvml import NvmlSource


@pytest.fixture
def two_switches(tmp_path):
    """4x A10: GPUs 0 and 1 behind one PCIe switch, 2 and 3 behind another, on two NUMA nodes.
    GPUs 0 and 2 are empty; 1 and 3 hold 1,000 MiB of someone's job."""
    scenario = fakenvml.Scenario(tmp_path / "nvml-scenario.txt")
    for used in (0, 1_000, 0, 1_000):
        scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=used)
    for a in range(4):
        for b in range(a + 1, 4):
            same = a // 2 == b // 2
            scenario.topology[a, b] = fakenvml.TOPOLOGY_SINGLE if same else fakenvml.TOPOLOGY_SYSTEM
    scenario.write()
    return scenario


def test_the_source_reads_each_pair_once(two_switches, monkeypatch):
    monkeypatch.setenv(fakenvml.SCENARIO_ENV, str(two_switches.path))
    source = NvmlSource()
    try:
        pairs = source.topology()
        assert sorted(pairs) == [(0, 1, 10), (0, 2, 50), (0, 3, 50), (1, 2, 50), (1, 3, 50), (2, 3, 10)]
        two_switches.topology.clear()
        two_switches.write()
        source.read()
        assert source.topology() == pairs  # cached: the topology does not change under a driver
    finally:
        source.close()


def _vramtop(scenario, *args):
    return subprocess.run([sys.executable, "-m", "vramtop", *args], env=scenario.env(), capture_output=True,
                          text=True, timeout=60)


def test_a_tp_pair_goes_behind_one_switch(two_switches, tmp_path):
    model = ["google/medgemma-4b-it", "--tp", "2", "--util", "0.5", "--max-model-len", "8192"]
    line = _vramtop(two_switches, "fit", *model, "--command")
    assert line.returncode == 0 and "CUDA_VISIBLE_DEVICES=0,1 vllm serve" in line.stdout
    plain = _vramtop(two_switches, "fit", *model, "--json")  # the verdict alone: most free memory
    assert '"gpu_index": 2' in plain.stdout
    env = dict(two_switches.env(), VRAMTOP_RUNTIME_DIR=str(tmp_path / "run"))
    dry = subprocess.run([sys.executable, "-m", "vramtop", "launch", "--dry-run", "--", "vllm", "serve",
                          "google/medgemma-4b-it", "-tp", "2", "--gpu-memory-utilization", "0.5"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "CUDA_VISIBLE_DEVICES=0,1 vllm serve" in dry.stdout


def test_no_closer_set_that_does_as_well_keeps_the_most_free(two_switches):
    """At utilization 0.95 the 1,000 MiB on GPUs 1 and 3 fail vLLM's start-up check: only 0 and 2
    start it, across the NUMA nodes."""
    line = _vramtop(two_switches, "fit", "google/medgemma-4b-it", "--tp", "2", "--util", "0.95",
                    "--max-model-len", "8192", "--command")
    assert "CUDA_VISIBLE_DEVICES=0,2 vllm serve" in line.stdout
