"""The real NVML source against the stand-in driver, through the real nvidia-ml-py."""

import ctypes.util
import json
import subprocess
import sys

import pytest

import fakenvml
from vramtop.sources.nvml import LIBRARY_NOT_FOUND, NvmlSource, NvmlUnavailable

SEED_USED = [22_483, 21_259, 21_261, 21_151]
SEED_FREE = [32, 1_256, 1_254, 1_364]


@pytest.fixture
def workers():
    """Four real processes titled as vLLM's tensor-parallel workers."""
    with fakenvml.spawn_processes(*(f"VLLM::Worker_TP{r}" for r in range(4))) as pids:
        yield pids


@pytest.fixture
def source(fake_nvml):
    src = NvmlSource()
    yield src
    src.close()


def memory(reading):
    return [(g.total_mib, g.reserved_mib, g.used_mib, g.free_mib) for g in reading.gpus]


def test_the_seed_node_is_read_to_the_mib(fake_nvml, workers):
    for gpu, pid in enumerate(workers):
        fake_nvml.add_process(gpu, pid, 20_730)
    fake_nvml.write()
    src = NvmlSource()
    try:
        reading = src.read()
    finally:
        src.close()
    assert (reading.driver_version, reading.cuda_version, reading.nvml_version) == ("550.54.15", "12.4", "12.550.54.15")
    assert memory(reading) == [(23_028, 513, u, f) for u, f in zip(SEED_USED, SEED_FREE)]
    assert [(g.index, g.name, g.memory_api, g.lost, g.error) for g in reading.gpus] == [
        (i, "NVIDIA A10", "v2", False, None) for i in range(4)
    ]
    assert [g.uuid for g in reading.gpus] == [g.uuid for g in fake_nvml.gpus]
    assert [(g.utilization_pct, g.temperature_c, g.power_w, g.power_limit_w) for g in reading.gpus] == [
        (90 + i, 60 + i, 140.0 + i, 150.0) for i in range(4)
    ]
    assert [(p.pid, p.gpu_index, p.used_mib, p.kind) for p in reading.processes] == [
        (pid, gpu, 20_730, "compute") for gpu, pid in enumerate(workers)
    ]
    assert reading.errors == ()


def test_memory_in_mib_as_nvidia_smi_shows_it_rounded_up(fake_nvml, source):
    """Bytes an H200 gave (driver 580.159.04) beside what nvidia-smi printed for them in the same
    second: ``--query-gpu=memory.total,memory.used,memory.free,memory.reserved`` said 143771,
    2129, 141028, 616. Used 2,128.375 MiB shows as 2,129 and reserved 615.0625 as 616: each
    figure rounded up, so the parts add up to 2 MiB over the total there."""
    gpu = fake_nvml.gpus[0]
    gpu.total, gpu.reserved, gpu.used, gpu.free = 150_754_820_096, 644_939_776, 2_231_762_944, 147_878_117_376
    fake_nvml.add_process(0, 4242, 818)
    fake_nvml.write()
    reading = source.read()
    assert memory(reading)[0] == (143_771, 616, 2_129, 141_028)
    assert reading.processes[0].used_mib == 818


def test_a_gpu_lost_mid_run_keeps_its_name_while_the_others_update(fake_nvml, source):
    fake_nvml.add_process(2, 4242, 20_730)
    fake_nvml.write()
    before = source.read()
    fake_nvml.lose(2)
    fake_nvml.gpus[0].used -= 1_000 * fakenvml.MIB  # a process on GPU 0 gave memory back
    fake_nvml.gpus[0].free += 1_000 * fakenvml.MIB
    fake_nvml.write()
    after = source.read()
    lost = after.gpus[2]
    assert lost.lost and (lost.index, lost.name, lost.uuid) == (2, "NVIDIA A10", before.gpus[2].uuid)
    assert "lost" in lost.error and lost.utilization_pct is None and lost.power_w is None
    assert (after.gpus[0].used_mib, after.gpus[0].free_mib) == (SEED_USED[0] - 1_000, SEED_FREE[0] + 1_000)
    assert not any(g.lost for i, g in enumerate(after.gpus) if i != 2)
    assert [p.pid for p in after.processes] == []  # the lost GPU lists nothing
    assert [e.source for e in after.errors] == ["nvml:gpu2"]
    fake_nvml.clear_faults()
    fake_nvml.write()
    back = source.read()
    assert not back.gpus[2].lost and [p.pid for p in back.processes] == [4242]


def test_no_permission_on_processes_keeps_memory_and_says_why(fake_nvml, source):
    fake_nvml.add_process(0, 4000, 20_730)
    fake_nvml.add_process(1, 4001, 20_730)
    fake_nvml.fault("nvmlDeviceGetComputeRunningProcesses", 1, "NO_PERMISSION")
    fake_nvml.write()
    reading = source.read()
    assert memory(reading)[1] == (23_028, 513, SEED_USED[1], SEED_FREE[1])
    assert reading.gpus[1].error == "processes: Insufficient Permissions"
    assert [(p.pid, p.gpu_index) for p in reading.processes] == [(4000, 0)]
    [error] = reading.errors
    assert error.source == "nvml:gpu1" and "GPU 1" in error.message and "Insufficient Permissions" in error.message


def test_unsupported_fields_become_none_with_one_line_each(fake_nvml):
    fake_nvml.fault("nvmlDeviceGetPowerUsage", None, "NOT_SUPPORTED")
    fake_nvml.fault("nvmlDeviceGetEnforcedPowerLimit", 3, "NOT_SUPPORTED")
    fake_nvml.fault("nvmlDeviceGetTemperature", 3, "UNKNOWN")
    fake_nvml.write()
    src = NvmlSource()
    try:
        reading = src.read()
    finally:
        src.close()
    assert [g.power_w for g in reading.gpus] == [None] * 4
    assert [g.power_limit_w for g in reading.gpus] == [150.0] * 3 + [None]
    assert reading.gpus[0].error == "power: Not Supported"
    assert reading.gpus[3].error == "power limit: Not Supported; temperature: Unknown Error; power: Not Supported"
    assert "\n" not in reading.gpus[3].error
    assert reading.gpus[3].temperature_c is None and reading.gpus[3].utilization_pct == 93
    assert memory(reading) == [(23_028, 513, u, f) for u, f in zip(SEED_USED, SEED_FREE)]


def test_memory_v2_not_supported_falls_back_to_v1_and_says_so_once(fake_nvml, source):
    fake_nvml.fault("nvmlDeviceGetMemoryInfo_v2", 1, "NOT_SUPPORTED")
    fake_nvml.write()
    first, second = source.read(), source.read()
    # v1 folds the driver's reserved memory into used; free and total stay exact.
    assert memory(first)[1] == (23_028, 0, SEED_USED[1] + 513, SEED_FREE[1])
    assert [g.memory_api for g in first.gpus] == ["v2", "v1", "v2", "v2"]
    assert [g.memory_api for g in second.gpus] == ["v2", "v1", "v2", "v2"]
    [note] = first.errors
    assert note.source == "nvml" and "GPU 1" in note.message and "v1" in note.message
    assert second.errors == ()


def test_a_memory_read_that_fails_keeps_the_last_figures_and_says_so(fake_nvml, source):
    source.read()
    fake_nvml.fault("nvmlDeviceGetMemoryInfo", 0, "UNKNOWN")
    fake_nvml.write()
    reading = source.read()
    assert memory(reading)[0] == (23_028, 513, SEED_USED[0], SEED_FREE[0])
    assert reading.gpus[0].error == "memory: Unknown Error" and reading.gpus[0].memory_api == "v2"


def test_processes_merge_lists_and_keep_unknown_memory_as_none(fake_nvml, source):
    fake_nvml.add_process(0, 500, 1_234)
    fake_nvml.add_process(0, 500, 1_234, "graphics")  # C+G: one process, listed once
    fake_nvml.add_process(0, 501, None, "graphics")
    fake_nvml.write()
    assert [(p.pid, p.used_mib, p.kind) for p in source.read().processes] == [
        (500, 1_234, "compute"), (501, None, "graphics"),
    ]


def test_a_process_list_longer_than_any_before_is_read_whole_and_a_shorter_one_after_it_alone(fake_nvml, source):
    fake_nvml.add_process(0, 500, 1_000)
    fake_nvml.write()
    assert [p.pid for p in source.read().processes] == [500]
    # Past the buffer the first list sized (twice 1 and 5): the driver says INSUFFICIENT_SIZE.
    fake_nvml.processes = [fakenvml.FakeProcess(g % 4, 600 + g, (100 + g) * fakenvml.MIB, "compute", None)
                           for g in range(200)]
    fake_nvml.write()
    assert sorted((p.pid, p.gpu_index, p.used_mib) for p in source.read().processes) == [
        (600 + g, g % 4, 100 + g) for g in range(200)]
    fake_nvml.processes = [fakenvml.FakeProcess(1, 700, 5 * fakenvml.MIB, "compute", None)]
    fake_nvml.write()
    assert [(p.pid, p.gpu_index, p.used_mib) for p in source.read().processes] == [(700, 1, 5)]


def test_the_kept_buffer_reads_every_list_as_nvidia_ml_pys_own_functions_do(fake_nvml, source):
    import pynvml

    from vramtop.sources.nvml_lists import ProcessLists

    fake_nvml.add_process(0, 500, 1_234)
    fake_nvml.add_process(0, 501, None, "graphics")  # WDDM: NVML cannot say
    for n in range(40):
        fake_nvml.add_process(1 + n % 3, 900 + n, 77 + n)
    fake_nvml.write()
    direct, own = ProcessLists(pynvml), ProcessLists(pynvml)
    own.direct = False  # through pynvml's nvmlDevice...RunningProcesses_v3, entry by entry
    assert direct.direct
    for index in range(4):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        for symbol in ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v3"):
            assert direct.read(symbol, handle) == own.read(symbol, handle)
    assert direct.read("nvmlDeviceGetGraphicsRunningProcesses_v3", pynvml.nvmlDeviceGetHandleByIndex(0)) == [
        (501, None, 0xFFFFFFFF, 0xFFFFFFFF)]


def test_names_and_limits_are_read_once_memory_every_tick(fake_nvml, source):
    source.read()
    fake_nvml.gpus[0].name = "Renamed"
    fake_nvml.gpus[0].power_limit_mw = 1
    fake_nvml.gpus[0].used -= fakenvml.MIB
    fake_nvml.gpus[0].free += fakenvml.MIB
    fake_nvml.write()
    gpu0 = source.read().gpus[0]
    assert (gpu0.name, gpu0.power_limit_w, gpu0.used_mib) == ("NVIDIA A10", 150.0, SEED_USED[0] - 1)


def test_close_shuts_nvml_down_once(fake_nvml):
    src = NvmlSource()
    assert fakenvml.stub().vramtopFakeNvmlInitCount() == 1
    src.close()
    src.close()
    assert fakenvml.stub().vramtopFakeNvmlInitCount() == 0


@pytest.mark.parametrize(
    "error, message",
    [("DRIVER_NOT_LOADED", "the NVIDIA driver is not loaded (NVML: Driver Not Loaded)"),
     ("LIBRARY_NOT_FOUND", LIBRARY_NOT_FOUND),
     ("NO_PERMISSION", "NVML refused access to the GPUs (Insufficient Permissions)")],
)
def test_init_failures_raise_one_clean_line(fake_nvml, error, message):
    fake_nvml.fault("nvmlInit", None, error)
    fake_nvml.write()
    with pytest.raises(NvmlUnavailable) as info:
        NvmlSource()
    assert str(info.value) == message
    assert fakenvml.stub().vramtopFakeNvmlInitCount() == 0


CHILD = """
import dataclasses, json
from vramtop.sources.nvml import NvmlSource, NvmlUnavailable
try:
    src = NvmlSource()
except NvmlUnavailable as exc:
    print(json.dumps({"unavailable": str(exc)}))
    raise SystemExit
readings = [src.read(), src.read()]
src.close()
print(json.dumps([dataclasses.asdict(r) for r in readings]))
"""


def run_child(env):
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return json.loads(done.stdout)


def test_a_driver_without_memory_v2_is_read_with_v1_and_said_once(fake_nvml):
    first, second = run_child(fake_nvml.env("no_memory_v2"))
    assert [(g["total_mib"], g["reserved_mib"], g["used_mib"], g["free_mib"]) for g in first["gpus"]] == [
        (23_028, 0, u + 513, f) for u, f in zip(SEED_USED, SEED_FREE)
    ]
    assert {g["memory_api"] for g in first["gpus"] + second["gpus"]} == {"v1"}
    assert [e["message"] for e in first["errors"]] == [
        "GPU 0, 1, 2, 3: the driver has no memory info v2, so the memory it reserves is counted as used (v1)"
    ]
    assert second["errors"] == []


def test_a_driver_without_processes_v3_is_read_with_v2(fake_nvml):
    fake_nvml.add_process(3, 777, 20_730)
    fake_nvml.write()
    first, second = run_child(fake_nvml.env("no_processes_v3"))
    for reading in (first, second):
        assert reading["processes"] == [
            {"pid": 777, "gpu_index": 3, "used_mib": 20_730, "kind": "compute", "mig_slice": None}]
        assert reading["errors"] == []


def test_no_library_at_all_says_the_nvml_library_was_not_found(fake_nvml, tmp_path):
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("this machine has a real NVIDIA driver library, so it cannot be made absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = fake_nvml.env()
    env["LD_LIBRARY_PATH"] = str(empty)
    assert run_child(env) == {"unavailable": LIBRARY_NOT_FOUND}
