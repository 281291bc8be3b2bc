"""What the app's garbage-collector settings save on the UI thread of ``vramtop --cluster`` over
bench_cluster's stand-in dashboard (128 nodes x 8 GPUs, 2,000 Serve replicas, the demo's two
what-if pins): ``gc.freeze()`` after the first tick, and the young collections' threshold raised
(``app.GC_THRESHOLDS``), against the same run with neither (the baseline) and with the freeze
alone, each in a child process of its own, in turns.

Measured from the first tick on: the collector's passes that ran on the UI thread, all of them and
the full (generation 2) ones, their count, total and slowest wall time (``gc.callbacks``), then
bench_cluster's UI thread CPU per tick and its keys' latency to their frame. Python runs a young
pass every ``threshold`` allocations and a full pass when the objects that survived younger ones
grow by a quarter of those already old, on whichever thread allocates then; frozen objects are
never walked again.

    python bench/bench_gc.py [--runs 2] [--ticks 8] [--keys 6]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


SETTINGS = (("neither (baseline)", False, False), ("gc.freeze alone", True, False),
            ("gc.freeze and the thresholds (the app)", True, True))


def measure(freeze: bool, thresholds: bool, ticks: int, keys: int) -> dict:
    """One live run (in this process): the collector's passes on the UI thread after the first tick."""
    sys.path.insert(0, HERE)
    import bench_cluster
    from vramtop.app import VramtopApp
    from vramtop.ray import poller as ray_poller

    if not freeze:
        gc.freeze = lambda: None
    if not thresholds:
        gc.set_threshold = lambda *args: None
    passes: list[float] = []  # full ones
    every: list[float] = []
    began = [0.0]
    ui = threading.get_ident()
    first_shown = [False]

    def on_gc(phase: str, info: dict) -> None:
        if threading.get_ident() != ui or not first_shown[0]:
            return
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            every.append((time.perf_counter() - began[0]) * 1000)
            if info["generation"] == 2:
                passes.append(every[-1])

    gc.callbacks.append(on_gc)
    show = VramtopApp.show_snapshot

    async def shown(self, snapshot, tick=None):
        await show(self, snapshot, tick)
        first_shown[0] = True

    VramtopApp.show_snapshot = shown
    bench_cluster.PATHS = [ray_poller.SERVE]
    child = subprocess.Popen([sys.executable, bench_cluster.__file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        address = f"http://127.0.0.1:{child.stdout.readline().strip()}"
        out = asyncio.run(bench_cluster.run_app(address, ticks, keys, pins=True))
    finally:
        child.kill()
        child.wait()
    return {"passes": passes, "every": every, "frozen": gc.get_freeze_count(), "ui": out["ui"],
            "keys": [ms for lat in out["keys"].values() for ms in lat]}


def main(runs: int, ticks: int, keys: int) -> None:
    got: dict[int, list[dict]] = {n: [] for n in range(len(SETTINGS))}
    for _ in range(runs):
        for n, (_, freeze, thresholds) in enumerate(SETTINGS):
            line = subprocess.run([sys.executable, __file__, "--child", str(int(freeze)), str(int(thresholds)),
                                   str(ticks), str(keys)], capture_output=True, text=True, check=True).stdout
            got[n].append(json.loads(line.strip().splitlines()[-1]))
    print(f"vramtop --cluster (bench_cluster's node, two pins), {runs} run(s) each of {ticks} ticks and "
          f"{keys} presses of each key; the collector's passes on the UI thread after the first tick:")
    base = None
    for n, (label, _, _) in enumerate(SETTINGS):
        rows = got[n]
        every = [p for r in rows for p in r["every"]]
        passes = [p for r in rows for p in r["passes"]]
        total = sum(every) / runs
        base = total if base is None else base
        ui = [u for r in rows for u in r["ui"]]
        key = [k for r in rows for k in r["keys"]]
        print(f"  {label:<40} {len(every) / runs:6.1f} passes a run, {total:6.0f} ms a run (x{total / base:.2f}), "
              f"slowest {max(every, default=0):4.0f} ms; full passes {len(passes) / runs:.1f} a run, "
              f"{sum(passes) / runs:.0f} ms; UI thread per tick median {statistics.median(ui):.0f} ms, worst "
              f"{max(ui):.0f} ms; keys to their frame median {statistics.median(key):.0f} ms, worst {max(key):.0f} ms")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        freeze, thresholds, ticks, keys = bool(int(sys.argv[2])), bool(int(sys.argv[3])), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(measure(freeze, thresholds, ticks, keys)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description="GC passes on the UI thread with and without the app's settings.")
    parser.add_argument("--runs", type=int, default=2, help="live runs of each")
    parser.add_argument("--ticks", type=int, default=8, help="ticks of each run")
    parser.add_argument("--keys", type=int, default=6, help="presses of each key in each run")
    args = parser.parse_args()
    main(args.runs, args.ticks, args.keys)
