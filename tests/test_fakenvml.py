"""The stand-in NVML, through the real nvidia-ml-py: what the other tests rely on it to do."""

import json
import os
import subprocess
import sys

import pynvml
import pytest

import fakenvml

MIB = 2**20


@pytest.fixture
def nvml(fake_nvml):
    pynvml.nvmlInit()
    yield fake_nvml
    pynvml.nvmlShutdown()


def test_pynvml_talks_to_the_stand_in_and_reads_the_seed_node(nvml):
    assert pynvml.nvmlLib.vramtopFakeNvml() == 1
    assert pynvml.nvmlDeviceGetCount() == 4
    handle = pynvml.nvmlDeviceGetHandleByIndex(3)
    mem = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    assert [-(-v // MIB) for v in (mem.total, mem.reserved, mem.used, mem.free)] == [23_028, 513, 21_151, 1_364]
    assert [v // MIB for v in (mem.total, mem.reserved, mem.used, mem.free)] == [23_027, 512, 21_150, 1_363]
    assert mem.total == mem.reserved + mem.used + mem.free
    assert mem.total % MIB != 0  # odd byte tails, as a real driver reports
    v1 = pynvml.nvmlDeviceGetMemoryInfo(handle)
    assert (v1.total, v1.free, v1.used) == (mem.total, mem.free, mem.used + mem.reserved)


def test_process_lists_follow_the_size_protocol_and_the_file_is_reread(nvml):
    handle = pynvml.nvmlDeviceGetHandleByIndex(1)
    assert pynvml.nvmlDeviceGetComputeRunningProcesses(handle) == []
    for pid in range(100, 140):
        nvml.add_process(1, pid, pid)
    nvml.add_process(1, 7, None, "graphics")
    nvml.write()
    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    assert [(p.pid, p.usedGpuMemory) for p in procs] == [(pid, pid * MIB) for pid in range(100, 140)]
    graphics = pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle)
    assert [(p.pid, p.usedGpuMemory) for p in graphics] == [(7, None)]
    count = pynvml.c_uint(0)
    fn = pynvml.nvmlLib.nvmlDeviceGetComputeRunningProcesses_v3
    assert fn(handle, pynvml.byref(count), None) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert count.value == 40


def test_faults_hit_the_named_function_and_gpu_only(nvml):
    nvml.fault("nvmlDeviceGetPowerUsage", 1, "NOT_SUPPORTED")
    nvml.fault("nvmlDeviceGetComputeRunningProcesses", 2, "NO_PERMISSION")
    nvml.lose(3)
    nvml.write()
    h = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(3)] + [pynvml.nvmlDeviceGetHandleByIndex(0)]
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetPowerUsage(h[1])
    assert pynvml.nvmlDeviceGetPowerUsage(h[0]) == 140_000
    with pytest.raises(pynvml.NVMLError_NoPermission):
        pynvml.nvmlDeviceGetComputeRunningProcesses_v2(h[2])  # the unversioned name covers _v2 too
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceGetHandleByIndex(3)
    assert pynvml.nvmlSystemGetDriverVersion() == "550.54.15"  # GPU faults leave system calls alone
    nvml.clear_faults()
    nvml.write()
    assert pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(3)) == "NVIDIA A10"


def test_init_faults_and_calls_before_init(fake_nvml):
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        pynvml.nvmlDeviceGetCount()
    fake_nvml.fault("nvmlInit", None, "DRIVER_NOT_LOADED")
    fake_nvml.write()
    with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
        pynvml.nvmlInit()


def test_an_unreadable_line_fails_every_call_and_names_the_line(fake_nvml):
    fake_nvml.path.write_text("gpu 0\nname X\nmemroy 1 2 3 4\n")
    with pytest.raises(pynvml.NVMLError_Unknown):
        pynvml.nvmlInit()


PROBE = """
import json, pynvml
try:
    pynvml.nvmlInit()
except pynvml.NVMLError as e:
    print(json.dumps({"init": str(e)})); raise SystemExit
print(json.dumps({name: hasattr(pynvml.nvmlLib, name) for name in
    ("vramtopFakeNvml", "nvmlDeviceGetMemoryInfo_v2", "nvmlDeviceGetComputeRunningProcesses_v3",
     "nvmlDeviceGetMigMode")}))
"""


@pytest.mark.parametrize(
    "variant, memory_v2, processes_v3, mig",
    [("full", True, True, True), ("no_memory_v2", False, True, True), ("no_processes_v3", True, False, True),
     ("no_mig", True, True, False)],
)
def test_variants_lack_the_symbols_older_drivers_lack(fake_nvml, variant, memory_v2, processes_v3, mig):
    out = subprocess.run([sys.executable, "-c", PROBE], env=fake_nvml.env(variant),
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"vramtopFakeNvml": True, "nvmlDeviceGetMemoryInfo_v2": memory_v2,
                               "nvmlDeviceGetComputeRunningProcesses_v3": processes_v3,
                               "nvmlDeviceGetMigMode": mig}


def test_a_child_without_the_scenario_variable_sees_no_driver(fake_nvml):
    env = fake_nvml.env()
    del env[fakenvml.SCENARIO_ENV]
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True).stdout
    assert json.loads(out) == {"init": "Driver Not Loaded"}


def test_spawned_processes_carry_their_titles():
    with fakenvml.spawn_processes("VLLM::Worker_TP0", "VLLM::Worker_TP1") as pids:
        titles = [open(f"/proc/{p}/cmdline", "rb").read().rstrip(b"\0") for p in pids]
        assert titles == [b"VLLM::Worker_TP0", b"VLLM::Worker_TP1"]
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)  # killed and reaped


def test_quick_same_size_rewrites_are_all_seen(nvml):
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    for step in range(50):  # same size each time, faster than the file clock ticks
        nvml.gpus[0].temperature = 10 + step
        nvml.write()
        assert pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU) == 10 + step


@pytest.fixture
def mig_nvml(fake_nvml):
    scenario = fakenvml.a100_mig(fake_nvml.path)
    scenario.write()
    pynvml.nvmlInit()
    yield scenario
    pynvml.nvmlShutdown()


def test_mig_slices_answer_as_the_driver_does(mig_nvml):
    gpu0, gpu1 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
    assert pynvml.nvmlDeviceGetMigMode(gpu0) == [1, 1]
    assert pynvml.nvmlDeviceGetMigMode(gpu1) == [0, 0]
    assert pynvml.nvmlDeviceGetMaxMigDeviceCount(gpu0) == 7
    slices = [pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, i) for i in range(2)]
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, 2)
    with pytest.raises(pynvml.NVMLError_NotFound):  # MIG off: no slice at all
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu1, 0)
    assert [pynvml.nvmlDeviceIsMigDeviceHandle(h).value for h in (gpu0, *slices)] == [0, 1, 1]
    assert [pynvml.nvmlDeviceGetGpuInstanceId(h) for h in slices] == [1, 2]
    assert [pynvml.nvmlDeviceGetComputeInstanceId(h) for h in slices] == [0, 0]
    assert pynvml.nvmlDeviceGetName(slices[1]) == "NVIDIA A100-SXM4-80GB MIG 3g.40gb"
    assert pynvml.nvmlDeviceGetUUID(slices[0]).startswith("MIG-")
    parent = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(slices[1])
    assert pynvml.nvmlDeviceGetUUID(parent) == pynvml.nvmlDeviceGetUUID(gpu0)
    mem = pynvml.nvmlDeviceGetMemoryInfo(slices[0], version=pynvml.nvmlMemory_v2)
    assert (-(-mem.total // MIB), -(-mem.used // MIB)) == (40_192, 13)  # rounded up, as nvidia-smi shows
    assert mem.total == mem.reserved + mem.used + mem.free
    with pytest.raises(pynvml.NVMLError_NotSupported):  # no utilization on a MIG-enabled GPU
        pynvml.nvmlDeviceGetUtilizationRates(gpu0)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetPowerUsage(slices[0])
    with pytest.raises(pynvml.NVMLError_InvalidArgument):  # a GPU handle is no MIG device
        pynvml.nvmlDeviceGetGpuInstanceId(gpu0)
    assert pynvml.nvmlDeviceGetUtilizationRates(gpu1).gpu == 0


def test_mig_processes_come_per_slice_and_with_instance_ids_on_the_gpu(mig_nvml):
    mig_nvml.add_process(0, 501, 1_000, mig=0)
    mig_nvml.add_process(0, 502, None, mig=1)
    mig_nvml.add_process(1, 503, 2_000)
    mig_nvml.fault("nvmlDeviceGetGraphicsRunningProcesses", "0:1", "NOT_SUPPORTED")
    mig_nvml.write()
    gpu0, gpu1 = (pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
    slices = [pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, i) for i in range(2)]
    on_gpu0 = pynvml.nvmlDeviceGetComputeRunningProcesses(gpu0)
    assert [(p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId) for p in on_gpu0] == [
        (501, 1_000 * MIB, 1, 0), (502, None, 2, 0)]
    assert [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(slices[1])] == [502]
    assert [p.gpuInstanceId for p in pynvml.nvmlDeviceGetComputeRunningProcesses(gpu1)] == [0xFFFFFFFF]
    with pytest.raises(pynvml.NVMLError_NotSupported):  # "0:1" names that slice only
        pynvml.nvmlDeviceGetGraphicsRunningProcesses(slices[1])
    assert pynvml.nvmlDeviceGetGraphicsRunningProcesses(slices[0]) == []
    mig_nvml.clear_faults()
    mig_nvml.fault("nvmlDeviceGetComputeRunningProcesses", "0:gpu", "NO_PERMISSION")
    mig_nvml.lose(1)
    mig_nvml.write()
    with pytest.raises(pynvml.NVMLError_NoPermission):
        pynvml.nvmlDeviceGetComputeRunningProcesses(gpu0)
    assert [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(slices[0])] == [501]
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        pynvml.nvmlDeviceGetMemoryInfo(gpu1)


def test_a_slice_that_goes_away_leaves_its_handle_invalid(mig_nvml):
    gpu0 = pynvml.nvmlDeviceGetHandleByIndex(0)
    second = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu0, 1)
    del mig_nvml.gpus[0].migs[1]
    mig_nvml.write()
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetMemoryInfo(second)
