"""Where a live pane's tick goes: each part's CPU on its own thread, per tick, on the stand-in node.

vramtop runs live in a tmux pane at a 1 s interval (``tick_probe.py`` times each part where the
app calls it), on the race's node (``race_nvitop.py``: real ``sleep`` processes, each one's memory
moving every second unless ``--steady``; with ``--settled`` started a minute before the pane).
Per tick: the sampling thread's sample (NVML and /proc, the grouping, the process table's rows),
the UI thread's showing of it (the panels take the tick, the history keeps it) and Textual's
repaint of what changed, with any layout of the whole screen in it; apart from the ticks, the
telemetry poll. Each as the median and the worst of the window, in CPU ms.

Baselines measured in the same run: the bare reads with no UI (``floor.py``), against the sample;
and a bare Textual app repainting every line of a pane of the same size once a second (the
race's), against the repaint: what Textual alone costs where everything on screen moves.

    .venv/bin/python bench/tick_parts.py [--nodes 8x64,16x1000] [--seconds 25] [--settled] [--steady]
"""

from __future__ import annotations

import argparse
import bisect
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from race_nvitop import (ROOT, SETTLED_S, WARMUP_S, Mover, bare_textual_repaint_ms, floor_ms,  # noqa: E402
                         private_env, scenario, start_pane, stop_pane)

# Parts of a tick, as tick_probe.py names them, and how the table names them.
SAMPLING = (("sample", "sample (sampling thread)"), ("processes", "  of it: /proc reads"),
            ("grouping", "  of it: grouping into instances"), ("rows", "  of it: the process table's rows"))
UI = (("show", "show (UI thread: panels, history)"), ("paint", "repaint (UI thread: Textual's compositor)"),
      ("layout", "  of it: layouts of the whole screen"))


def ticks(lines: list[str], skip: float) -> tuple[list[dict[str, float]], list[float], list[float]]:
    """Per tick (from one sample's start to the next), each part's CPU ms summed; the telemetry
    polls' and the collector's full passes' CPU ms apart. Events in the first ``skip`` s go."""
    events = sorted((float(began), part, float(ms)) for began, part, ms in (line.split() for line in lines))
    if not events:
        return [], [], []
    first = events[0][0] + skip
    starts = [began for began, part, _ in events if part == "sample" and began >= first]
    per_tick: list[dict[str, float]] = [{} for _ in starts]
    polls, full = [], []
    for began, part, ms in events:
        if began < first:
            continue
        if part == "poll":
            polls.append(ms)
        elif part == "gc2":
            full.append(ms)
        elif not part.startswith("gc") and (n := bisect.bisect_right(starts, began) - 1) >= 0:
            per_tick[n][part] = per_tick[n].get(part, 0.0) + ms
    return per_tick[:-1], polls, full  # the last tick may not have been shown yet


def run_node(tmp: Path, gpus: int, procs: int, changing: bool, seconds: float,
             settled: bool) -> tuple[list[str], float]:
    """The probe's lines of a pane on the node, and the bare reads' CPU ms a tick on it."""
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(procs)]
    try:
        if settled:
            time.sleep(SETTLED_S)
        pids = [c.pid for c in children]
        path = tmp / f"parts-{gpus}x{procs}.txt"
        env = private_env(scenario(path, gpus, pids, 0, changing), tmp)
        log = tmp / f"parts-{gpus}x{procs}.log"
        mover = Mover(path, gpus, pids) if changing else None
        session = f"parts{os.getpid()}"
        if mover:
            mover.start()
        try:
            start_pane(session, [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/tick_probe.py"), str(log),
                                 "--no-ray", "--interval", "1"], env)
            time.sleep(WARMUP_S + seconds)
        finally:
            stop_pane(session)
            if mover:
                mover.stop.set()
                mover.join()
        floor = floor_ms(path, gpus, pids, changing, min(seconds, 10.0))
        return log.read_text().splitlines(), floor
    finally:
        for c in children:
            c.kill()
            c.wait()


def report(per_tick: list[dict[str, float]], polls: list[float], full: list[float], floor: float,
           bare: float) -> None:
    def figures(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} | {max(values):.1f}" if values else "– | –"

    print("| part | median ms | worst ms |")
    print("|---|---|---|")
    for part, label in (*SAMPLING, *UI):
        values = [t.get(part, 0.0) for t in per_tick]
        if part == "layout":
            values = [v for v in values if v]
            label += f" ({len(values)} in {len(per_tick)} ticks)"
        print(f"| {label} | {figures(values)} |")
    total = [t.get("sample", 0.0) + t.get("show", 0.0) + t.get("paint", 0.0) for t in per_tick]
    print(f"| a tick (sample + show + repaint) | {figures(total)} |")
    print(f"| telemetry poll, apart from the ticks ({len(polls)}) | {figures(polls)} |")
    print(f"| full collector passes, within the parts above ({len(full)}) | {figures(full)} |")
    sample = statistics.median(t.get("sample", 0.0) for t in per_tick)
    paint = statistics.median(t.get("paint", 0.0) for t in per_tick)
    print(f"baselines, same run: the bare reads {floor:.1f} ms (sample / floor {sample / floor:.1f}x); a bare Textual "
          f"app repainting every line {bare:.1f} ms a tick (repaint / that {paint / bare:.2f}x)\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="8x64,16x1000", help="GPUs x processes, comma-separated")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--settled", action="store_true",
                        help=f"start each node's processes {SETTLED_S:.0f} s before the pane (else with it)")
    parser.add_argument("--steady", action="store_true", help="memory steady (else each process's moves every second)")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tick_parts: tmux is needed (apt-get install -y tmux)")
    bare = bare_textual_repaint_ms(min(args.seconds, 20.0))
    with tempfile.TemporaryDirectory() as tmp:
        for node in args.nodes.split(","):
            gpus, procs = map(int, node.split("x"))
            lines, floor = run_node(Path(tmp), gpus, procs, not args.steady, args.seconds, args.settled)
            per_tick, polls, full = ticks(lines, WARMUP_S)
            what = "memory steady" if args.steady else "each process's memory moving every second"
            print(f"{gpus} GPUs x {procs} processes, {what}{', settled' if args.settled else ''}: "
                  f"{len(per_tick)} ticks after {WARMUP_S:.0f} s of start-up, CPU of each part on its own thread")
            if not per_tick:
                sys.exit("tick_parts: the pane logged no tick (see bench/tick_probe.py)")
            report(per_tick, polls, full, floor, bare)


if __name__ == "__main__":
    main()
