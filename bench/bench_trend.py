"""What the memory trend's judgements cost a telemetry poll on a busy node, in CPU milliseconds.

Run from the repository root: ``python bench/bench_trend.py [--processes 1000]``.

A ``MemoryTrend`` is fed 120 snapshots a second apart (its whole two-minute window) of one GPU
with ``--processes`` processes: a quarter stable, a quarter growing, a quarter whose memory
rises and drops back (volatile, as a saw-tooth allocator), a quarter shrinking. Measured on the
full window: what a telemetry poll asks of it, ``update()`` (one new snapshot recorded, its
series judged, with its warnings) then ``phases()`` (each process's phase). Over 256 processes
the series are judged in turns, a share of them each update (``JUDGED_PER_UPDATE``). Then the
same poll on the node at rest: no process's memory moves, and each snapshot carries the last
one's processes (the very tuple, as the live source hands them out when nothing moved). Baseline
in the same run: one pass over every series' values (``max`` and ``min``: the least any judgement
of a series reads), so the ratio says how far above reading the whole window a poll is.
"""

from __future__ import annotations

import argparse
import dataclasses
from array import array

from cpu import median_ms
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot
from vramtop.telemetry.trend import MemoryTrend

TOTAL = 81_559


def mib(i: int, t: int) -> int:
    shape = i % 4
    if shape == 0:
        return 4_000
    if shape == 1:
        return 2_000 + 20 * t
    if shape == 2:
        return 2_000 + (i * 131 + t * 37) % 900
    return 9_000 - 20 * t


def snapshot(processes: int, t: int) -> NodeSnapshot:
    procs = tuple(GpuProcess(10_000 + i, 0, mib(i, t), host=HostProcess(10_000 + i, 1, "python3", "python3 job.py"))
                  for i in range(processes))
    used = min(TOTAL - 545, sum(p.used_mib for p in procs))
    return NodeSnapshot(1_700_000_000.0 + t, "bench", "test", gpu_processes=procs,
                        gpus=(GpuInfo(0, "NVIDIA H100 80GB HBM3", "GPU-0", TOTAL, 545, used, TOTAL - 545 - used),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=1000)
    args = parser.parse_args()
    trend = MemoryTrend()
    for t in range(120):
        trend.update(snapshot(args.processes, t))
    windows = [array("q", [mib(i, t) for t in range(120)]) for i in range(args.processes)]  # what it holds
    floor, _ = median_ms(lambda: [max(w) - min(w) for w in windows], 15)
    nxt = [snapshot(args.processes, t) for t in range(120, 136)]
    poll, _ = median_ms(lambda: (trend.update(nxt.pop(0)), trend.phases()), 15)
    print(f"{args.processes} processes, 120 samples each (the whole window), median of 15")
    print(f"one pass over the values  {floor:7.2f} ms   (baseline)")
    print(f"a poll: update(), phases() {poll:6.2f} ms   {poll / floor:5.1f}x the pass")
    at_rest, still = MemoryTrend(), snapshot(args.processes, 0)
    for t in range(120):
        at_rest.update(dataclasses.replace(still, timestamp=still.timestamp + t))
    later = [dataclasses.replace(still, timestamp=still.timestamp + t) for t in range(120, 136)]
    rest, _ = median_ms(lambda: (at_rest.update(later.pop(0)), at_rest.phases()), 15)
    print(f"a poll, the node at rest   {rest:6.2f} ms   {rest / floor:5.1f}x the pass")


if __name__ == "__main__":
    main()
