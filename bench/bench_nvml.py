"""Cost of one NVML read (``NvmlSource.read``) against the stand-in driver, per node size.

Run from the repository root: ``python bench/bench_nvml.py``. It builds the stand-in NVML
(tests/nvml_stub, needs ``cc``) and measures in this process, through the real nvidia-ml-py.

Baseline, in the same run: one bare ``nvmlDeviceGetCount`` call, the cheapest NVML round trip
(ctypes + the stub). The ratio says how many such round trips one read costs. The stub answers
in microseconds where a real driver can take far longer (power readings especially), so these
figures measure vramtop's own overhead, not a real GPU's latency.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402

fakenvml.load_in_process()

import pynvml  # noqa: E402

from vramtop.sources.nvml import NvmlSource  # noqa: E402


def per_call_ms(fn, repeat: int = 7, budget_s: float = 0.2) -> float:
    """Median over ``repeat`` batches of the time of one ``fn()`` call, in ms."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.05:
        fn()
        n += 1
    batch = max(1, int(n * budget_s / 0.05 / repeat))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - t0) / batch * 1000)
    return statistics.median(samples)


def node(path: Path, gpus: int, processes: int) -> fakenvml.Scenario:
    scenario = fakenvml.Scenario(path)
    for _ in range(gpus):
        scenario.add_gpu("NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=545, used_mib=70_000,
                         utilization=95, temperature=60, power_mw=600_000, power_limit_mw=700_000)
    for i in range(processes):
        scenario.add_process(i % gpus, 10_000 + i, 8_000)
    return scenario


def mig_node(path: Path, gpus: int, processes: int) -> fakenvml.Scenario:
    """The same node with every GPU in MIG mode, split into seven 1g.10gb slices, the processes
    spread over the slices: the most MIG devices an H100 holds."""
    scenario = node(path, gpus, 0)
    for gpu in range(gpus):
        for _ in range(7):
            scenario.add_mig(gpu, "1g.10gb", total_mib=9_984, used_mib=8_000)
    for i in range(processes):
        scenario.add_process(i % gpus, 10_000 + i, 8_000, mig=i // gpus % 7)
    return scenario


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.txt"
        os.environ[fakenvml.SCENARIO_ENV] = str(path)
        node(path, 1, 0).write()
        pynvml.nvmlInit()
        base = per_call_ms(pynvml.nvmlDeviceGetCount)
        pynvml.nvmlShutdown()
        print(f"baseline: one bare nvmlDeviceGetCount call = {base * 1000:.2f} us")
        print(f"{'GPUs':>4} {'procs':>5} {'read ms':>8} {'per GPU ms':>10} {'x baseline':>10}")
        for gpus in (4, 8, 16):
            for processes in (8, 64):
                node(path, gpus, processes).write()
                source = NvmlSource()
                try:
                    reading = source.read()
                    assert len(reading.gpus) == gpus and len(reading.processes) == processes
                    ms = per_call_ms(source.read)
                finally:
                    source.close()
                print(f"{gpus:>4} {processes:>5} {ms:>8.3f} {ms / gpus:>10.3f} {ms / base:>10.0f}")
        print("MIG: every GPU split into 7 slices (their memory each tick, the layout every 10 s)")
        for gpus in (8,):
            for processes in (8, 64):
                mig_node(path, gpus, processes).write()
                source = NvmlSource()
                try:
                    reading = source.read()
                    assert sum(len(g.mig) for g in reading.gpus) == 7 * gpus
                    assert all(p.mig_slice is not None for p in reading.processes)
                    ms = per_call_ms(source.read)
                finally:
                    source.close()
                print(f"{gpus:>4} {processes:>5} {ms:>8.3f} {ms / gpus:>10.3f} {ms / base:>10.0f}")


if __name__ == "__main__":
    main()
