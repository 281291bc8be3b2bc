"""The reads any GPU monitor makes each tick, with no UI: the floor the benchmarks set vramtop's
cost against. Per GPU its memory, utilization, temperature, power and process lists from NVML;
per process one read of ``/proc/PID/stat`` and ``/proc/PID/statm``."""

from __future__ import annotations


def bare_reads(pynvml, handles: list) -> None:
    """One tick of the bare reads on ``handles`` (NVML opened by the caller, through ``pynvml``)."""
    pids = []
    for h in handles:
        pynvml.nvmlDeviceGetMemoryInfo(h)
        pynvml.nvmlDeviceGetUtilizationRates(h)
        pynvml.nvmlDeviceGetTemperature(h, 0)
        pynvml.nvmlDeviceGetPowerUsage(h)
        pids += [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)]
        pynvml.nvmlDeviceGetGraphicsRunningProcesses(h)
    for pid in pids:
        for name in ("stat", "statm"):
            with open(f"/proc/{pid}/{name}", "rb") as f:
                f.read()
