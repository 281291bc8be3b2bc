"""Cost of one UI update of the live view, by node size, against an unchanged-snapshot baseline.

Each node is synthetic: vLLM instances with tensor parallelism across its GPUs (an engine core
and one worker per GPU), plus single training processes to reach the process count. A "tick"
shows a snapshot whose memory, CPU and utilization moved (as a live node's do); the baseline
shows the very same snapshot again, which must cost next to nothing; "one" is a tick where one
process's memory moved (the table renders and repaints that row alone). "busy" is a node whose
VRAM stays put while CPU %, RSS and utilization move every second (a serving vLLM node). Times include the
repaint (``pilot.pause()`` waits until the screen is idle), as process CPU time, headless at 160x45.

    python bench/bench_ui.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time

from vramtop.app import VramtopApp
from vramtop.config import Config
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot

NODES = [(4, 8), (4, 16), (8, 16), (8, 32), (16, 32), (16, 64)]


def synthetic(gpus: int, procs: int, tick: int, memory: bool = True) -> NodeSnapshot:
    """A node of ``gpus`` H100s and ``procs`` GPU processes; ``tick`` moves the live figures
    (without ``memory``, only CPU %, RSS and utilization move, as on a busy vLLM node)."""
    m = tick if memory else 0
    processes: list[GpuProcess] = []
    ancestors: dict[int, HostProcess] = {}
    pid = 10_000
    tp = 2 if gpus >= 4 else 1
    for first in range(0, gpus, tp):  # one TP instance per pair of GPUs
        if len(processes) + tp + 1 > procs:
            break
        engine = HostProcess(pid, 1, "VLLM::EngineCor", "VLLM::EngineCore", ("VLLM::EngineCore",), "svc", 9.0, 3_000)
        ancestors[pid] = engine
        processes.append(GpuProcess(pid, first, 900 + m % 3, host=engine))
        for rank in range(tp):
            wpid = pid + 1 + rank
            host = HostProcess(wpid, pid, "VLLM::Worker_TP", f"VLLM::Worker_TP{rank}", (f"VLLM::Worker_TP{rank}",),
                               "svc", 90.0 + (tick + rank) % 7, 5_000 + tick % 5)
            processes.append(GpuProcess(wpid, first + rank, 60_000 + (m * 37 + rank) % 500, host=host))
        pid += 100
    while len(processes) < procs:
        n = len(processes)
        host = HostProcess(pid, 1, "python", f"python train.py --run {n}", ("python", "train.py", "--run", str(n)),
                           "alice", float((tick + n) % 100), 1_000 + n)
        processes.append(GpuProcess(pid, n % gpus, 500 + (m * 13 + n) % 300, host=host))
        pid += 1
    infos = []
    for g in range(gpus):
        used = sum(p.used_mib or 0 for p in processes if p.gpu_index == g)
        infos.append(GpuInfo(g, "NVIDIA H100 80GB HBM3", f"GPU-{g:08d}", 81_559, 527, used, 81_559 - 527 - used,
                             utilization_pct=(tick * 7 + g) % 100, temperature_c=60 + (tick + g) % 10,
                             power_w=400.0 + (tick + g) % 50, power_limit_w=700.0))
    return NodeSnapshot(1_700_000_000.0 + tick, "bench-node", "replay", "550.127.05", "12.4",
                        gpus=tuple(infos), gpu_processes=tuple(processes), ancestors=ancestors)


class Fixed:
    def __init__(self, snapshot: NodeSnapshot) -> None:
        self.snapshot = snapshot

    def sample(self) -> NodeSnapshot:
        return self.snapshot


def one_moved(snapshot: NodeSnapshot, tick: int) -> NodeSnapshot:
    """``snapshot`` with the last process's memory moved by one MiB, the order kept."""
    *rest, last = snapshot.gpu_processes
    moved = dataclasses.replace(last, used_mib=last.used_mib + (1 if tick % 2 else -1))
    return dataclasses.replace(snapshot, gpu_processes=(*rest, moved), timestamp=snapshot.timestamp + tick)


async def measure(gpus: int, procs: int, repeat: int) -> tuple[float, float, float, float]:
    """Ms per update: median for the same snapshot again and for a moved one; mean over a busy
    run where only CPU %, RSS and utilization move, one snapshot a second (the table shows
    those every few seconds, so its cost comes in some ticks, not all)."""
    snaps = [synthetic(gpus, procs, t) for t in range(repeat + 1)]
    busy = [synthetic(gpus, procs, t, memory=False) for t in range(repeat + 1, 2 * repeat + 1)]
    app = VramtopApp(Fixed(snaps[0]), Config(interval=3600.0))
    async with app.run_test(size=(160, 45)) as pilot:
        for _ in range(500):
            if app.snapshot is not None:
                break
            await pilot.pause(0.01)
        await pilot.pause()

        async def once(snapshot: NodeSnapshot) -> float:
            start = time.process_time()
            await app.show_snapshot(snapshot)
            await pilot.pause()
            return (time.process_time() - start) * 1000

        same = [await once(app.snapshot) for _ in range(repeat)]
        base = app.snapshot
        one = [await once(one_moved(base, t)) for t in range(1, repeat + 1)]
        moved = [await once(s) for s in snaps[1:]]
        cpu_only = [await once(s) for s in busy]
    return statistics.median(same), statistics.median(one), statistics.median(moved), statistics.mean(cpu_only)


async def main(repeat: int) -> None:
    print(f"CPU time of one UI update incl. repaint, headless 160x45, median of {repeat} (ms)")
    print(f"{'GPUs':>4} {'procs':>5} {'unchanged':>10} {'one':>8} {'one/unch.':>10} {'tick':>8} {'tick/unchanged':>15}"
          f" {'busy':>8} {'busy/tick':>10}")
    for gpus, procs in NODES:
        same, one, moved, busy = await measure(gpus, procs, repeat)
        print(f"{gpus:>4} {procs:>5} {same:>10.2f} {one:>8.2f} {one / same:>9.1f}x {moved:>8.2f} {moved / same:>14.1f}x"
              f" {busy:>8.2f} {busy / moved:>9.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Cost of one vramtop UI update by node size.")
    parser.add_argument("--repeat", type=int, default=15)
    asyncio.run(main(parser.parse_args().repeat))
