"""Does vramtop's memory grow over a long run? RSS of the live view on a churning node.

vramtop runs live in a tmux pane at ``--interval 0.2`` on a stand-in NVML node of 8 GPUs and 64
processes (real ``sleep`` processes, see race_nvitop.py) whose memory moves every second, and
every ``--churn`` seconds a few of those processes end and new ones take their place (new PIDs,
so every per-process cache sees processes come and go). Its RSS is read every ``--every``
seconds; the report gives each reading and the slope of a least-squares line through them, in
MiB per hour, beside the first reading (the baseline of the same run), and the slope over the
second half alone: the app's history ring (900 snapshots) fills in its first 3 minutes at 0.2 s,
and only growth after that is a leak. The issue's run is an hour (``--minutes 60 --every 60``).

    .venv/bin/python bench/soak_rss.py [--minutes 60] [--every 60] [--churn 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from race_nvitop import ROOT, private_env, scenario, start_pane, stop_pane, tree_rss_mib  # noqa: E402

GPUS, PROCS, REPLACED = 8, 64, 4  # REPLACED processes end and start again at each churn


class Churn(threading.Thread):
    """Moves every process's memory once a second and replaces a few processes every ``churn`` s."""

    def __init__(self, path: Path, children: list[subprocess.Popen], churn: float) -> None:
        super().__init__(daemon=True)
        self.path, self.children, self.churn = path, children, churn
        self.stop = threading.Event()

    def run(self) -> None:
        tick, next_churn = 1, time.monotonic() + self.churn
        while not self.stop.wait(1.0):
            if time.monotonic() >= next_churn:
                for n in range(REPLACED):
                    slot = (tick * REPLACED + n) % len(self.children)
                    self.children[slot].kill()
                    self.children[slot].wait()
                    self.children[slot] = subprocess.Popen(["sleep", "3600"])
                next_churn += self.churn
            scenario(self.path, GPUS, [c.pid for c in self.children], tick, "changing")
            tick += 1


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mean_t) * (m - mean_m) for t, m in points) / var * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between RSS readings")
    parser.add_argument("--churn", type=float, default=5.0, help="seconds between process replacements")
    args = parser.parse_args()
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(PROCS)]
    session = f"soak{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.txt"
        env = private_env(scenario(path, GPUS, [c.pid for c in children], 0, "changing"), Path(tmp))
        churn = Churn(path, children, args.churn)
        churn.start()
        try:
            pane = start_pane(session, [str(ROOT / ".venv/bin/python"), "-m", "vramtop", "--no-ray",
                                        "--interval", "0.2"], env)
            time.sleep(10.0)  # start-up and the first frames are not growth
            start, points = time.monotonic(), []
            print(f"RSS of vramtop, {GPUS} GPUs x {PROCS} processes, interval 0.2 s, "
                  f"{REPLACED} processes replaced every {args.churn:g} s")
            while True:
                elapsed = time.monotonic() - start
                points.append((elapsed, tree_rss_mib(pane)))
                print(f"{elapsed / 60:6.1f} min  {points[-1][1]:6.1f} MiB", flush=True)
                if elapsed >= args.minutes * 60:
                    break
                time.sleep(min(args.every, max(0.0, args.minutes * 60 - elapsed)))
        finally:
            churn.stop.set()
            churn.join()
            stop_pane(session)
            for c in churn.children:
                c.kill()
                c.wait()
    first, last = points[0][1], points[-1][1]
    late = [p for p in points if p[0] >= points[-1][0] / 2]
    print(f"first {first:.1f} MiB, last {last:.1f} MiB ({last / first:.2f}x the first); "
          f"slope {slope_per_hour(points):+.1f} MiB/hour over {points[-1][0] / 60:.1f} min, "
          f"{slope_per_hour(late):+.1f} MiB/hour over its second half")


if __name__ == "__main__":
    main()
