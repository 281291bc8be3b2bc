"""MIG through the real nvidia-ml-py and the stand-in driver: slices, their memory and processes."""

import json
import subprocess
import sys

import pytest

import fakenvml
from vramtop.sources import nvml as nvml_source
from vramtop.sources.nvml import NvmlSource


@pytest.fixture
def a100(fake_nvml):
    scenario = fakenvml.a100_mig(fake_nvml.path)
    scenario.write()
    return scenario


@pytest.fixture
def source(a100):
    src = NvmlSource()
    yield src
    src.close()


def slices(reading, gpu=0):
    return [(s.index, s.profile, s.gpu_instance_id, s.compute_instance_id, s.total_mib, s.used_mib, s.free_mib)
            for s in reading.gpus[gpu].mig]


def test_a_gpu_in_mig_mode_lists_its_slices_with_their_memory(a100, source):
    reading = source.read()
    assert slices(reading) == [(0, "3g.40gb", 1, 0, 40_192, 13, 40_179), (1, "3g.40gb", 2, 0, 40_192, 13, 40_179)]
    gpu0, gpu1 = reading.gpus
    assert gpu0.mig[1].name == "NVIDIA A100-SXM4-80GB MIG 3g.40gb"
    assert gpu0.mig[0].uuid.startswith("MIG-") and gpu0.mig[0].uuid != gpu0.mig[1].uuid
    assert (gpu0.total_mib, gpu0.used_mib) == (81_920, 26)  # the parent keeps the whole GPU's figures
    # No utilization under MIG, by design of the driver: not an error to show.
    assert (gpu0.utilization_pct, gpu0.error) == (None, None)
    assert gpu1.mig == () and gpu1.utilization_pct == 0 and reading.errors == ()


def test_processes_on_slices_carry_their_slice(a100, source):
    with fakenvml.spawn_processes("VLLM::EngineCore", "ollama runner", "python3 train.py") as pids:
        a100.add_process(0, pids[0], 30_000, mig=1)
        a100.add_process(0, pids[1], None, mig=0)  # per-process memory may be N/A under MIG
        a100.add_process(1, pids[2], 5_000)
        a100.write()
        procs = {p.pid: (p.gpu_index, p.mig_slice, p.used_mib) for p in source.read().processes}
    assert procs == {pids[0]: (0, 1, 30_000), pids[1]: (0, 0, None), pids[2]: (1, None, 5_000)}


def test_where_the_gpu_list_is_refused_each_slice_is_read(a100, source):
    a100.add_process(0, 4101, 1_000, mig=0)
    a100.add_process(0, 4102, 2_000, mig=1)
    a100.fault("nvmlDeviceGetComputeRunningProcesses", "0:gpu", "NO_PERMISSION")
    a100.write()
    reading = source.read()
    assert sorted((p.pid, p.mig_slice) for p in reading.processes) == [(4101, 0), (4102, 1)]
    assert reading.gpus[0].error is None and reading.errors == ()


def test_slices_made_and_destroyed_are_followed(a100, source, monkeypatch):
    source.read()
    # GPU 1 turned to MIG mode without the reset that takes: read as it was opened, whole.
    a100.add_mig(1, "1g.10gb", total_mib=9_728, used_mib=13)
    del a100.gpus[0].migs[1]
    a100.write()
    # GPU 0's slice 1 stops answering at once, and the listing follows on the next tick.
    second = source.read()
    assert "MIG 0:1 memory" in second.gpus[0].error
    third = source.read()
    assert [s.index for s in third.gpus[0].mig] == [0] and third.gpus[0].error is None
    # A slice made later shows when a process on it names its instance IDs ...
    a100.add_mig(0, "3g.40gb", total_mib=40_192, used_mib=20_000, gpu_instance=5)
    a100.add_process(0, 4103, 20_000, mig=1)
    a100.write()
    fourth = source.read()
    assert [p.mig_slice for p in fourth.processes] == [None]  # not known yet: the whole GPU
    assert [(s.index, s.gpu_instance_id) for s in source.read().gpus[0].mig] == [(0, 1), (1, 5)]
    assert [p.mig_slice for p in source.read().processes] == [1]
    # ... and an empty one at the next periodic listing.
    a100.add_mig(0, "1g.10gb", total_mib=9_728, used_mib=13, gpu_instance=9)
    a100.write()
    assert len(source.read().gpus[0].mig) == 2 and source.read().gpus[1].mig == ()
    monkeypatch.setattr(nvml_source, "MIG_RESCAN_S", 0.0)
    assert [s.profile for s in source.read().gpus[0].mig] == ["3g.40gb", "3g.40gb", "1g.10gb"]


def test_a_lost_mig_gpu_shows_no_slices(a100, source):
    source.read()
    a100.lose(0)
    a100.write()
    gpu0 = source.read().gpus[0]
    assert gpu0.lost and gpu0.mig == ()


@pytest.mark.parametrize("function", ["nvmlDeviceGetMigMode", "nvmlDeviceGetMaxMigDeviceCount",
                                      "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetGpuInstanceId"])
def test_a_gpu_lost_while_its_mig_layout_is_read_is_lost_not_a_crash(a100, function):
    a100.fault(function, 0, "GPU_IS_LOST")
    a100.write()
    src = NvmlSource()
    try:
        gpu0, gpu1 = src.read().gpus
        assert gpu0.lost and gpu0.mig == () and not gpu1.lost
        a100.clear_faults()
        a100.write()
        assert [s.index for s in src.read().gpus[0].mig] == [0, 1]  # back once it answers
    finally:
        src.close()


CHILD = """
import dataclasses, json
from vramtop.sources.nvml import NvmlSource
src = NvmlSource()
reading = src.read()
src.close()
print(json.dumps(dataclasses.asdict(reading)))
"""


@pytest.mark.parametrize("variant", ["no_mig", "full"])
def test_without_mig_calls_or_mig_support_a_gpu_reads_as_before(fake_nvml, variant):
    """A driver without the MIG symbols (no_mig) and a GPU that cannot do MIG (the A10s: NOT_SUPPORTED)."""
    scenario = fakenvml.a100_mig(fake_nvml.path) if variant == "no_mig" else fake_nvml
    scenario.add_process(0, 4242, 1_000)
    scenario.write()
    done = subprocess.run([sys.executable, "-c", CHILD], env=scenario.env(variant), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    reading = json.loads(done.stdout)
    assert [g["mig"] for g in reading["gpus"]] == [[]] * len(scenario.gpus)
    assert reading["processes"] == [{"pid": 4242, "gpu_index": 0, "used_mib": 1_000, "kind": "compute", "mig_slice": None}]
    if variant == "no_mig":  # the stand-in gives a MIG-mode GPU no utilization; without MIG calls it is asked
        assert reading["gpus"][0]["error"] == "utilization: Not Supported"
    else:
        assert reading["errors"] == [] and all(g["error"] is None for g in reading["gpus"])
