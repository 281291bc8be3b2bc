"""Cost of one full sampling tick (NVML + psutil + grouping), and the live app's idle CPU.

Run from the repository root: ``python bench/bench_tick.py [--idle-seconds 20]``.

1. One tick of ``LiveSource.sample()`` followed by ``group_instances`` on stand-in nodes of 4, 8
   and 16 GPUs with 8 to 64 real processes (children of this script, so psutil reads real
   /proc entries), in CPU milliseconds. Baseline in the same run: the NVML read alone, so the
   ratio shows what the OS side and the grouping add.
2. The whole app, live on the stand-in 8-GPU node at the default 1 s interval, run in a tmux
   pane: its CPU use as a share of one core over the run, beside the same measure for
   ``vramtop --demo``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402
from cpu import median_ms  # noqa: E402
from race_nvitop import start_pane, stop_pane  # noqa: E402

fakenvml.load_in_process()

import psutil  # noqa: E402

from vramtop.analysis.instances import group_instances  # noqa: E402
from vramtop.sources.live import LiveSource  # noqa: E402
from vramtop.sources.nvml import NvmlSource  # noqa: E402


def scenario(path: Path, gpus: int, pids: list[int]) -> fakenvml.Scenario:
    sc = fakenvml.Scenario(path)
    for _ in range(gpus):
        sc.add_gpu("NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=545, used_mib=70_000,
                   utilization=95, temperature=60, power_mw=600_000, power_limit_mw=700_000)
    for i, pid in enumerate(pids):
        sc.add_process(i % gpus, pid, 8_000)
    sc.write()
    return sc


def ticks(tmp: Path) -> None:
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(64)]
    try:
        print(f"{'GPUs':>4} {'procs':>5} {'NVML ms':>8} {'tick ms':>8} {'x NVML':>7}")
        for gpus in (4, 8, 16):
            for procs in (8, 32, 64):
                if procs < gpus:
                    continue
                path = tmp / f"s{gpus}-{procs}.txt"
                os.environ[fakenvml.SCENARIO_ENV] = str(path)
                scenario(path, gpus, [c.pid for c in children[:procs]])
                nvml = NvmlSource()
                base, _ = median_ms(nvml.read, 15)
                nvml.close()
                live = LiveSource()
                snap = live.sample()
                assert len(snap.gpu_processes) == procs and all(p.host for p in snap.gpu_processes)
                tick, _ = median_ms(lambda: group_instances(live.sample()), 15)
                live.close()
                print(f"{gpus:>4} {procs:>5} {base:>8.2f} {tick:>8.2f} {tick / base:>7.1f}")
    finally:
        for c in children:
            c.kill()
            c.wait()


def idle_share(command: list[str], env: dict[str, str], seconds: float) -> float:
    """CPU share of one core that ``command`` uses in a 120x40 tmux pane over ``seconds``."""
    session = f"vramtop-bench-{os.getpid()}"
    pane_pid = start_pane(session, command, env, size=(120, 40))
    try:
        time.sleep(3)  # start-up is not idle
        proc = psutil.Process(pane_pid)
        t0, c0 = time.monotonic(), proc.cpu_times()
        time.sleep(seconds)
        c1, t1 = proc.cpu_times(), time.monotonic()
        return (c1.user + c1.system - c0.user - c0.system) / (t1 - t0) * 100
    finally:
        stop_pane(session)


def idle(tmp: Path, seconds: float) -> None:
    if not shutil.which("tmux"):
        print("idle CPU: skipped (tmux is needed to give the app a terminal)")
        return
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(16)]
    try:
        sc = scenario(tmp / "idle.txt", 8, [c.pid for c in children])
        app = [sys.executable, "-m", "vramtop"]
        live = idle_share(app, sc.env(), seconds)
        demo = idle_share([*app, "--demo"], dict(os.environ), seconds)
        print(f"idle CPU at the default 1 s interval over {seconds:.0f} s: live 8-GPU stand-in node "
              f"{live:.2f} % of one core; demo node {demo:.2f} %; ratio live/demo {live / demo if demo else float('nan'):.2f}")
    finally:
        for c in children:
            c.kill()
            c.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ticks(Path(tmp))
        idle(Path(tmp), args.idle_seconds)


if __name__ == "__main__":
    main()
