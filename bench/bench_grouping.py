"""CPU of grouping GPU processes into instances on a busy node, per tick.

Run from the repository root: ``python bench/bench_grouping.py [--gpus 16] [--procs 1000]``.

The stand-in NVML lists ``--procs`` real processes (children of this script, so the live source
reads real /proc entries) over ``--gpus`` GPUs, and each tick every process's memory moves.
Baseline in the same run: grouping from nothing, as every tick did before grouping remembered
its last shapes; beside it the live source's own sample (NVML and /proc), which grouping adds to.
Rows: a tick whose memory moved, a tick where nothing moved, and the second ask about the same
tick (the telemetry's snapshot of it), each in CPU ms (median of 7) and as a share of the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402
from cpu import median_ms  # noqa: E402

fakenvml.load_in_process()

from vramtop.analysis import instances  # noqa: E402
from vramtop.sources.live import LiveSource  # noqa: E402


def write(path: Path, gpus: int, pids: list[int], tick: int) -> None:
    sc = fakenvml.Scenario(path)
    for _ in range(gpus):
        sc.add_gpu("NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=545, used_mib=70_000,
                   utilization=90, temperature=60, power_mw=600_000, power_limit_mw=700_000)
    for i, pid in enumerate(pids):
        sc.add_process(i % gpus, pid, 2_000 + (i * 131 + tick * 37) % 900)
    sc.write()


def from_nothing(snapshot):
    instances._RECENT = ()
    return instances.group_instances(snapshot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=16)
    parser.add_argument("--procs", type=int, default=1000)
    args = parser.parse_args()
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(args.procs)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "node.txt"
            os.environ[fakenvml.SCENARIO_ENV] = str(path)
            pids = [c.pid for c in children]
            write(path, args.gpus, pids, 0)
            live = LiveSource()
            snaps = []
            for tick in range(8):
                write(path, args.gpus, pids, tick)
                snaps.append(live.sample())
            assert len(snaps[-1].gpu_processes) == args.procs
            sample, _ = median_ms(live.sample, 7)
            live.close()
            base, _ = median_ms(lambda: from_nothing(snaps[0]), 7)
            ticks = iter(snaps[1:] * 2)
            moved, _ = median_ms(lambda: instances.group_instances(next(ticks)), 7)
            assert instances.group_instances(snaps[3]) == from_nothing(snaps[3])
            instances.group_instances(snaps[3])
            still, _ = median_ms(lambda: instances.group_instances(snaps[3]), 7)
            twin = dataclasses.replace(snaps[3], errors=())
            again, _ = median_ms(lambda: instances.group_instances(twin), 7)
    finally:
        for c in children:
            c.kill()
            c.wait()
    print(f"{args.gpus} GPUs x {args.procs} processes; the live source's sample {sample:.1f} ms CPU")
    print(f"{'grouping':<44} {'ms CPU':>7} {'x baseline':>10}")
    print(f"{'from nothing (baseline: every tick before)':<44} {base:>7.1f} {1.0:>10.2f}")
    for what, ms in (("memory moved", moved), ("nothing moved", still), ("same tick, second ask", again)):
        print(f"{what:<44} {ms:>7.1f} {ms / base:>10.2f}")


if __name__ == "__main__":
    main()
