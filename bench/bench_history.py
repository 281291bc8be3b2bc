"""Memory of the app's history ring (900 snapshots) on an 8 x 64 stand-in node.

Run from the repository root: ``python bench/bench_history.py [--ticks 900]``.

The live source samples a stand-in NVML node of 8 GPUs and 64 real processes (children of this
script) ``--ticks`` times; every process's memory moves every ``change`` ticks (1: every tick, a
node at 1 s whose allocators all move every second; 5: the soak's 0.2 s interval with memory
moving every second). Baseline in the same run: the snapshots held as the source made them in a ring of the same
length (what the history held before it shared equal records with the tick before). Figures are
the Python heap each ring holds once filled (tracemalloc), and the CPU one ``History.add`` costs.
Then, on the full ring, the CPU a GPU's used-memory sparkline (the GPU bars' trend) costs a tick,
against drawing it from the GPU's figures read out of the ring as a tuple (how it was drawn before).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402

fakenvml.load_in_process()

from vramtop.history import _NO_USED, History  # noqa: E402
from vramtop.sources.live import LiveSource  # noqa: E402
from vramtop.widgets.gpu_bars import TREND_CELLS, used_trend  # noqa: E402
from vramtop.widgets.spark import spark  # noqa: E402

GPUS, PROCS = 8, 64


def write(path: Path, pids: list[int], step: int) -> None:
    sc = fakenvml.Scenario(path)
    for _ in range(GPUS):
        sc.add_gpu("NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=545, used_mib=30_000,
                   utilization=90 + step % 7, temperature=60, power_mw=600_000, power_limit_mw=700_000)
    for i, pid in enumerate(pids):
        sc.add_process(i % GPUS, pid, 2_000 + (i * 131 + step * 37) % 900)
    sc.write()


def run(live: LiveSource, path: Path, pids: list[int], ticks: int, change: int, keep,
        trace: bool = True) -> tuple[float, float]:
    """Sample ``ticks`` snapshots and hand each to ``keep``: the heap MiB still held after the
    last (with ``trace``: tracemalloc, which slows every allocation), and the CPU microseconds
    ``keep`` took per snapshot."""
    gc.collect()
    if trace:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if trace else 0
    spent = 0.0
    for tick in range(ticks):
        if tick % change == 0:
            write(path, pids, tick // change)
        snapshot = live.sample()
        t0 = time.process_time()
        keep(snapshot)
        spent += time.process_time() - t0
    del snapshot
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before if trace else 0
    tracemalloc.stop()
    return held / 2**20, spent * 1e6 / ticks


def trend_from_tuple(history: History, gpu) -> str:
    """The trend as the bars drew it before: the GPU's figures out of the ring as a tuple, oldest
    first, then ``spark`` over all of them."""
    count, series = len(history), history._used[gpu.index]
    start = history.added % history.length - count
    figures = tuple(None if v == _NO_USED else v for v in (series[start:] + series[:start])[-count:])
    return spark(figures, TREND_CELLS, top=gpu.total_mib, per_cell=-(-history.length // TREND_CELLS),
                 first=history.added - count)


def trend_us(live: LiveSource, path: Path, pids: list[int], history: History, draw, ticks: int = 300) -> float:
    """CPU microseconds ``draw`` takes for one GPU's trend, each GPU once after each of ``ticks``
    more snapshots (memory moving every tick) added to the full ``history``."""
    spent = 0.0
    for tick in range(ticks):
        write(path, pids, 10_000 + tick)
        snapshot = live.sample()
        history.add(snapshot)
        t0 = time.process_time()
        for gpu in snapshot.gpus:
            draw(history, gpu)
        spent += time.process_time() - t0
    return spent * 1e6 / ticks / len(snapshot.gpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=900)
    args = parser.parse_args()
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(PROCS)]
    pids = [c.pid for c in children]
    print(f"{GPUS} GPUs x {PROCS} processes, {args.ticks} snapshots")
    print(f"{'memory moves every':<20} {'as sampled MiB':>15} {'ring MiB':>9} {'x':>6} {'add us':>7}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "node.txt"
            os.environ[fakenvml.SCENARIO_ENV] = str(path)
            write(path, pids, 0)
            live = LiveSource()
            run(live, path, pids, 20, 1, lambda s: None)  # the source's own caches warm
            for change in (1, 5):
                ring = deque(maxlen=args.ticks)
                base, _ = run(live, path, pids, args.ticks, change, ring.append)
                del ring
                history = History(args.ticks)
                held, _ = run(live, path, pids, args.ticks, change, history.add)
                del history
                _, add_us = run(live, path, pids, args.ticks, change, History(args.ticks).add, trace=False)
                what = "tick" if change == 1 else f"{change} ticks"
                print(f"{what:<20} {base:>15.1f} {held:>9.1f} {held / base:>6.2f} {add_us:>7.0f}")
            history = History(args.ticks)
            run(live, path, pids, args.ticks, 1, history.add, trace=False)
            ours = trend_us(live, path, pids, history, used_trend)
            before = trend_us(live, path, pids, history, trend_from_tuple)
            print(f"a GPU's trend a tick, full ring: {ours:.1f} us, from the ring as a tuple {before:.1f} us "
                  f"({ours / before:.2f}x)")
            live.close()
    finally:
        for c in children:
            c.kill()
            c.wait()


if __name__ == "__main__":
    main()
