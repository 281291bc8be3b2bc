"""The built-in demo node: the 4× A10 node of the seed analysis, for machines without a GPU.

One vLLM replica (tensor_parallel_size=4) under Ray Serve: four ``VLLM::Worker_TP0..3`` of
20,730 MiB, the engine core and the replica's own CUDA contexts, leaving 32 / 1,256 / 1,254 /
1,364 MiB free. The replica and the engine core hold GPU memory and are the workers' parents, as
on the seed's node; grouping finds one instance of 86,154 MiB from that parentage alone. Memory stays put, as vLLM's does; utilization, temperature and power move with
the clock so the view behaves live. It is a source like any other: it only builds snapshots.
"""

from __future__ import annotations

import math
import time
from typing import Callable

from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot

A10_TOTAL_MIB = 23_028
A10_RESERVED_MIB = 513
HOSTNAME = "demo-a10-node"

_REPLICA, _ENGINE, _WORKER0 = 4000, 4100, 4101
_WORKER_MIB = 20_730
_ENGINE_MIB = {0: 1_234}
_REPLICA_MIB = {0: 519, 1: 529, 2: 531, 3: 421}

_HOSTS = {
    _REPLICA: HostProcess(
        _REPLICA, 3900, "ray::ServeRepli", "ray::ServeReplica:medgemma:VLLMDeployment",
        ("ray::ServeReplica:medgemma:VLLMDeployment",), "svc-llm", 3.0, 2_310, 1.7e9,
    ),
    _ENGINE: HostProcess(
        _ENGINE, _REPLICA, "VLLM::EngineCor", "VLLM::EngineCore", ("VLLM::EngineCore",),
        "svc-llm", 11.0, 3_950, 1.7e9 + 20,
    ),
}
for _rank in range(4):
    _HOSTS[_WORKER0 + _rank] = HostProcess(
        _WORKER0 + _rank, _ENGINE, "VLLM::Worker_TP", f"VLLM::Worker_TP{_rank}",
        (f"VLLM::Worker_TP{_rank}",), "svc-llm", 96.0, 5_870, 1.7e9 + 25,
    )
_RAYLET = HostProcess(
    3900, 1, "raylet", "/usr/local/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet",
    ("/usr/local/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet",), "svc-llm",
    1.0, 180, 1.7e9 - 60,
)


def _wave(t: float, period: float, phase: float) -> float:
    """A smooth value in [0, 1] so figures drift without randomness (screenshots reproduce)."""
    return 0.5 + 0.5 * math.sin(2 * math.pi * t / period + phase)


class DemoSource:
    """Builds the demo node's snapshot at the time ``clock()`` gives."""

    name = "demo"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def sample(self) -> NodeSnapshot:
        now = self._clock()
        procs: list[GpuProcess] = []
        for gpu in range(4):
            procs.append(GpuProcess(_WORKER0 + gpu, gpu, _WORKER_MIB, host=_HOSTS[_WORKER0 + gpu]))
            if gpu in _ENGINE_MIB:
                procs.append(GpuProcess(_ENGINE, gpu, _ENGINE_MIB[gpu], host=_HOSTS[_ENGINE]))
            procs.append(GpuProcess(_REPLICA, gpu, _REPLICA_MIB[gpu], host=_HOSTS[_REPLICA]))
        used = {g: sum(p.used_mib or 0 for p in procs if p.gpu_index == g) for g in range(4)}
        gpus = []
        for g in range(4):
            load = _wave(now, 37.0, g * 0.9)
            gpus.append(
                GpuInfo(
                    index=g,
                    name="NVIDIA A10",
                    uuid=f"GPU-5e1d0a10-0000-4000-8000-00000000000{g}",
                    total_mib=A10_TOTAL_MIB,
                    reserved_mib=A10_RESERVED_MIB,
                    used_mib=used[g],
                    free_mib=A10_TOTAL_MIB - A10_RESERVED_MIB - used[g],
                    utilization_pct=round(55 + 40 * load),
                    memory_utilization_pct=round(30 + 35 * load),
                    temperature_c=round(58 + 14 * load),
                    power_w=round(90 + 55 * load, 1),
                    power_limit_w=150.0,
                )
            )
        return NodeSnapshot(
            timestamp=now,
            hostname=HOSTNAME,
            source="demo",
            driver_version="550.127.05",
            cuda_version="12.4",
            nvml_version="12.550.127.05",
            gpus=tuple(gpus),
            gpu_processes=tuple(procs),
            ancestors=_parents(procs),
        )


def _parents(procs: list[GpuProcess]) -> dict[int, HostProcess]:
    """The parents of the GPU processes up to PID 1, as the process reader finds them on a real
    node: the replica and the engine core are there because they are parents, not by hand."""
    known = {**_HOSTS, _RAYLET.pid: _RAYLET}
    out: dict[int, HostProcess] = {}
    for proc in procs:
        ppid = proc.host.ppid if proc.host else None
        while ppid and ppid > 1 and ppid not in out and ppid in known:
            out[ppid] = known[ppid]
            ppid = known[ppid].ppid
    return out
