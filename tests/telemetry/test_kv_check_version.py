"""The KV check models the vLLM release the instance runs, read from the package its processes
loaded: a real process maps a ``vllm`` extension module from a site-packages directory (as
``import vllm._C`` does, ``vllm/_custom_ops.py``) beside the dist-info pip writes."""

from __future__ import annotations

import _ctypes
import dataclasses
import shutil
import subprocess
import sys

import pytest

from vramtop.fit import specs
from vramtop.fit.verdict import Candidate, predicted_kv_blocks
from vramtop.snapshot import GpuInfo, HostProcess
from vramtop.sources.processes import ProcessReader
from vramtop.telemetry import kv_check as kv
from vramtop.telemetry.model import CacheConfig, VllmMetrics

A10 = GpuInfo(0, "NVIDIA A10", "GPU-0", 23_028, 513, 0, 22_515)
MODEL = "Qwen/Qwen3-8B"
LOADER = "import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); print('loaded', flush=True); time.sleep(60)"


def _package(site, version_dist=None, version_py=None):
    """A vllm package in ``site`` whose extension module is a real shared library."""
    (site / "vllm").mkdir(parents=True)
    shutil.copy(_ctypes.__file__, site / "vllm" / "_C.abi3.so")
    if version_dist:
        (site / f"vllm-{version_dist}.dist-info").mkdir()
    if version_py:
        (site / "vllm" / "_version.py").write_text(
            f"__version__: str\nversion: str\n__version__ = version = '{version_py}'\n")
    return site / "vllm" / "_C.abi3.so"


@pytest.fixture
def loaded(tmp_path):
    procs = []

    def start(library):
        """The process as the process reader sees it (its start time keys what is remembered)."""
        proc = subprocess.Popen([sys.executable, "-c", LOADER, str(library)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "loaded"
        return ProcessReader().read({proc.pid})[0][proc.pid]

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
    kv._version_of_pid.cache_clear()


def test_the_release_is_read_from_the_dist_info_beside_the_loaded_package(tmp_path, loaded):
    site = tmp_path / "venv" / "lib" / "site-packages"
    proc = loaded(_package(site, version_dist="0.19.1"))
    assert kv.vllm_version_of([proc]) == "0.19.1"
    # remembered for that process; a later process that gets the same PID is read again
    (site / "vllm-0.19.1.dist-info").rename(site / "vllm-0.20.0.dist-info")
    assert kv.vllm_version_of([proc]) == "0.19.1"
    reused = dataclasses.replace(proc, create_time=proc.create_time + 60)
    assert kv.vllm_version_of([reused]) == "0.20.0"


def test_a_source_checkout_is_read_from_its_version_file_and_other_processes_are_passed_over(tmp_path, loaded):
    plain = loaded(_ctypes.__file__)  # a Python process without vLLM: says nothing
    checkout = loaded(_package(tmp_path / "src", version_py="0.10.1.dev3+g1234abc"))
    assert kv.vllm_version_of([plain]) is None
    assert kv.vllm_version_of([plain, checkout]) == "0.10.1.dev3+g1234abc"
    assert kv.vllm_version_of([HostProcess(2 ** 22 + 12345, 1, "gone", "gone")]) is None  # no such process


def test_the_check_models_the_release_the_instance_runs():
    metrics = VllmMetrics("u", model_names=(MODEL,), cache=CacheConfig(0.9, 2_000, 16, "auto"))
    old = kv.kv_check(metrics, 1, A10, vllm_version="0.19.1")
    new = kv.kv_check(metrics, 1, A10)
    cand = Candidate(specs.resolve(MODEL), gpu_memory_utilization=0.9, kv_cache_dtype="auto", vllm_version="0.19.1")
    assert old.predicted_blocks == predicted_kv_blocks(cand, 22_515, "NVIDIA A10") and old.vllm_version == "0.19.1"
    # before 0.21 the CUDA graphs were not taken out of the KV budget: more blocks
    assert old.predicted_blocks > new.predicted_blocks


def test_a_version_file_that_is_a_fifo_or_a_device_says_nothing_and_does_not_block(tmp_path, loaded):
    """Inside a container someone else controls, vllm/_version.py may be anything."""
    import os

    fifo = _package(tmp_path / "fifo")
    os.mkfifo(tmp_path / "fifo" / "vllm" / "_version.py")
    device = _package(tmp_path / "device")
    os.symlink("/dev/zero", tmp_path / "device" / "vllm" / "_version.py")
    assert kv.vllm_version_of([loaded(fifo), loaded(device)]) is None
