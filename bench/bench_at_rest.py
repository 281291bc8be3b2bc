"""What a sample costs on a node at rest, against one where every process's memory moved and the
bare reads, in the same run.

A node whose processes hold their memory (a serving engine between requests, a model loaded and
idle) is read every tick, and nothing on it moves: such a tick should cost what the reads cost,
not an object per process. Real ``sleep`` processes on the stand-in driver (8 GPUs x 64 and 16 x
1,000, as ``race_nvitop.py`` lists them), each process a minute old so that it is read every
``REREAD_S``: per node the CPU of one ``LiveSource.sample()`` where nothing moved, one where every
process's memory moved, and the bare NVML and ``/proc`` reads (``floor.py``), each the median of
``--ticks`` samples with ``--gap`` seconds between them (as a live pane's, whose caches have
cooled between ticks).

    .venv/bin/python bench/bench_at_rest.py [--ticks 40] [--gap 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402
from floor import bare_reads  # noqa: E402
from race_nvitop import scenario  # noqa: E402

NODES = ((8, 64), (16, 1000))


def median_ms(fn, ticks: int, gap: float, before=None) -> float:
    """Median CPU ms of ``fn`` over ``ticks`` calls, ``gap`` s apart; ``before`` runs ahead of each, untimed."""
    times = []
    for _ in range(ticks):
        if before is not None:
            before()
        time.sleep(gap)
        t0 = time.thread_time()
        fn()
        times.append((time.thread_time() - t0) * 1000)
    return statistics.median(times)


def node(tmp: Path, gpus: int, procs: int, ticks: int, gap: float) -> tuple[float, float, float]:
    import pynvml

    from vramtop.sources import processes
    from vramtop.sources.live import LiveSource

    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(procs)]
    try:
        pids = [c.pid for c in children]
        path = tmp / f"at-rest-{gpus}x{procs}.txt"
        scenario(path, gpus, pids, 0, "steady")
        os.environ[fakenvml.SCENARIO_ENV] = str(path)
        source = LiveSource()
        source._processes._settled_after_s = 0.0  # as a minute old: read every REREAD_S, not every tick
        try:
            for _ in range(3):
                source.sample()
            at_rest = median_ms(source.sample, ticks, gap)
            tick = [0]

            def move() -> None:
                tick[0] += 1
                scenario(path, gpus, pids, tick[0], "changing")
                pynvml.nvmlDeviceGetCount()  # the stand-in reads the rewritten node here, not in the sample

            moved = median_ms(source.sample, ticks, gap, before=move)
            scenario(path, gpus, pids, 0, "steady")
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(gpus)]
            floor = median_ms(lambda: bare_reads(pynvml, handles), ticks, gap)
        finally:
            source.close()
        assert processes.REREAD_S >= 1.0
        return at_rest, moved, floor
    finally:
        for c in children:
            c.kill()
            c.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()
    fakenvml.load_in_process()
    print(f"CPU ms of one sample, median of {args.ticks}, {args.gap} s apart")
    print(f"{'node':>10} {'at rest':>8} {'moved':>8} {'bare reads':>11} {'rest/moved':>11} {'rest/reads':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for gpus, procs in NODES:
            at_rest, moved, floor = node(Path(tmp), gpus, procs, args.ticks, args.gap)
            print(f"{f'{gpus}x{procs}':>10} {at_rest:>8.2f} {moved:>8.2f} {floor:>11.2f} {at_rest / moved:>10.2f}x"
                  f" {at_rest / floor:>10.2f}x")


if __name__ == "__main__":
    main()
