"""Where a live pane's tick goes: each part's CPU on its own thread, per tick, on the stand-in node.

vramtop runs live in a tmux pane at a 1 s interval (``tick_probe.py`` times each part where the
app calls it), on the race's node (``race_nvitop.py``: real ``sleep`` processes, each one's memory
moving every second, or as ``--motion`` says; with ``--settled`` the window starts a minute after
the pane and the processes, as the race's).
Per tick: the sampling thread's sample (NVML and /proc, the grouping, the process table's rows),
the UI thread's showing of it (the panels take the tick, the GPU bars, the process table and the
header each apart; the history keeps it) and Textual's repaint of what changed, with any layout
of the whole screen in it; apart from the ticks, the telemetry poll. Each as the median and the worst of the window, in CPU ms. Then each thread's whole
CPU over the window (the kernel's count, to the nanosecond) beside what the parts account for: the
rest is Textual's loop, its timers and the driver's threads.

Baselines measured in the same run: the bare reads with no UI (``floor.py``), against the sample;
and a bare Textual app repainting every line of a pane of the same size once a second (the
race's), against the repaint: what Textual alone costs where everything on screen moves.

    .venv/bin/python bench/tick_parts.py [--nodes 8x64,16x1000] [--seconds 25] [--settled]
                                         [--motion changing|serving|steady]
                                         [--interval 1] [--age 6]

``--age`` is how long the pane runs before the window. A pane's 900-snapshot history fills in
15 minutes at 1 s, 3 at 0.2 s: ``--interval 0.2 --age 190`` against ``--interval 0.2`` shows
what a tick costs more in a pane left open than in a new one (the race's window opens a minute
after its panes with ``--settled``, else ``WARMUP_S`` after).
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
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from race_nvitop import (MOTIONS, ROOT, SETTLED_S, WARMUP_S, Mover, bare_textual_repaint_ms, floor_ms,  # noqa: E402
                         monitor, private_env, scenario, start_pane, stop_pane)

# The parts no other part holds, and the thread each runs on.
TOP = {"sample": "sampling thread", "show": "UI thread", "paint": "UI thread", "poll": "telemetry poller"}
# Parts of a tick, as tick_probe.py names them, and how the table names them.
SAMPLING = (("sample", "sample (sampling thread)"), ("processes", "  of it: /proc reads"),
            ("grouping", "  of it: grouping into instances"), ("rows", "  of it: the process table's rows"))
UI = (("show", "show (UI thread: panels, history)"), ("bars", "  of it: the GPU bars"),
      ("table", "  of it: the process table"), ("header", "  of it: the header"), ("history", "  of it: the history"),
      ("paint", "repaint (UI thread: Textual's compositor)"), ("layout", "  of it: layouts of the whole screen"))


Event = tuple[float, str, float, int]  # began (monotonic s), part, CPU ms, thread id


def parse(lines: list[str]) -> list[Event]:
    """The probe's lines, as events in the order they began."""
    events = []
    for line in lines:
        began, part, ms, thread = line.split()
        events.append((float(began), part, float(ms), int(thread)))
    return sorted(events)


class Run(NamedTuple):
    """A pane's run on one node: the probe's events, its threads' CPU clocks (ns) at the window's
    start and end, the window (monotonic s), and the bare reads' CPU ms a tick on the node."""

    events: list[Event]
    before: dict[int, int]
    after: dict[int, int]
    start: float
    end: float
    floor: float


def ticks(run: Run) -> tuple[list[dict[str, float]], list[float], list[float]]:
    """Per tick whose sample began in the window (to the next sample), each part's CPU ms summed;
    the telemetry polls' and the collector's full passes' CPU ms apart."""
    events, start, end = run.events, run.start, run.end
    starts = [began for began, part, _, _ in events if part == "sample" and start <= began < end]
    per_tick: list[dict[str, float]] = [{} for _ in starts]
    polls, full = [], []
    for began, part, ms, _ in events:
        if not start <= began < end:
            continue
        if part == "poll":
            polls.append(ms)
        elif part == "gc2":
            full.append(ms)
        elif not part.startswith("gc") and (n := bisect.bisect_right(starts, began) - 1) >= 0:
            per_tick[n][part] = per_tick[n].get(part, 0.0) + ms
    return per_tick[:-1], polls, full  # the last tick may not have been shown yet


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Each thread of ``pid``: nanoseconds on a CPU so far (the first field of its schedstat)."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                found[int(task)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended
            pass
    return found


def threads(run: Run) -> list[tuple[str, float, float]]:
    """(thread, its CPU ms a second over the window, the ms a second its outermost parts took)."""
    seconds = run.end - run.start
    own: dict[int, float] = {}
    role: dict[int, str] = {}
    for began, part, ms, thread in run.events:
        if part in TOP and run.start <= began < run.end:
            own[thread] = own.get(thread, 0.0) + ms
            role.setdefault(thread, TOP[part])
    rows, rest = [], 0.0
    for thread, ns in run.after.items():
        cpu = (ns - run.before.get(thread, 0)) / 1e6 / seconds
        if thread in role:
            rows.append((role[thread], cpu, own[thread] / seconds))
        else:
            rest += cpu
    return sorted(rows) + [("other threads", rest, 0.0)]


def run_node(tmp: Path, gpus: int, procs: int, motion: str, seconds: float,
             interval: float = 1.0, age: float = WARMUP_S) -> Run:
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(procs)]
    try:
        pids = [c.pid for c in children]
        path = tmp / f"parts-{gpus}x{procs}.txt"
        env = private_env(scenario(path, gpus, pids, 0, motion), tmp)
        log = tmp / f"parts-{gpus}x{procs}.log"
        mover = Mover(path, gpus, pids, motion) if motion != "steady" else None
        session = f"parts{os.getpid()}"
        if mover:
            mover.start()
        try:
            pane = start_pane(session, [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/tick_probe.py"),
                                        str(log), "--no-ray", "--interval", f"{interval:g}"], env)
            time.sleep(age)
            probe = monitor(pane).pid
            start, before = time.monotonic(), thread_cpu_ns(probe)
            time.sleep(seconds)
            end, after = time.monotonic(), thread_cpu_ns(probe)
        finally:
            stop_pane(session)
            if mover:
                mover.stop.set()
                mover.join()
        floor = floor_ms(path, gpus, pids, motion, min(seconds, 10.0))
        return Run(parse(log.read_text().splitlines()), before, after, start, end, floor)
    finally:
        for c in children:
            c.kill()
            c.wait()


def report(run: Run, title: str, bare: float, age: float = WARMUP_S) -> None:
    def figures(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} | {max(values):.1f}" if values else "– | –"

    per_tick, polls, full = ticks(run)
    if not per_tick:
        sys.exit("tick_parts: the pane logged no tick (see bench/tick_probe.py)")
    print(f"{title}: {len(per_tick)} ticks over {run.end - run.start:.0f} s after {age:.0f} s of the pane running, "
          "CPU of each part on its own thread")
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
    print("\n| thread | CPU ms a second | in the parts above | outside them |")
    print("|---|---|---|---|")
    for name, cpu, parts in threads(run):
        print(f"| {name} | {cpu:.1f} | {parts:.1f} | {cpu - parts:.1f} |")
    sample = statistics.median(t.get("sample", 0.0) for t in per_tick)
    paint = statistics.median(t.get("paint", 0.0) for t in per_tick)
    print(f"baselines, same run: the bare reads {run.floor:.1f} ms (sample / floor {sample / run.floor:.1f}x); "
          f"a bare Textual app repainting every line {bare:.1f} ms a tick (repaint / that {paint / bare:.2f}x)\n",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="8x64,16x1000", help="GPUs x processes, comma-separated")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--settled", action="store_true",
                        help=f"count from {SETTLED_S:.0f} s after the pane and the processes start, or --age if "
                             "longer (else from --age): a pane left open")
    parser.add_argument("--motion", choices=list(MOTIONS), default="changing",
                        help="how the node moves (race_nvitop.MOTIONS)")
    parser.add_argument("--interval", type=float, default=1.0, help="the pane's refresh interval, seconds")
    parser.add_argument("--age", type=float, default=WARMUP_S, help="seconds the pane runs before the window")
    args = parser.parse_args()
    if not shutil.which("tmux"):
        sys.exit("tick_parts: tmux is needed (apt-get install -y tmux)")
    age = max(args.age, SETTLED_S) if args.settled else args.age  # settled: as the race's, a pane left open
    bare = bare_textual_repaint_ms(min(args.seconds, 20.0))
    with tempfile.TemporaryDirectory() as tmp:
        for node in args.nodes.split(","):
            gpus, procs = map(int, node.split("x"))
            run = run_node(Path(tmp), gpus, procs, args.motion, args.seconds, args.interval, age)
            report(run, f"{gpus} GPUs x {procs} processes, {MOTIONS[args.motion]}{', settled' if args.settled else ''}, "
                        f"a tick every {args.interval:g} s", bare, age)


if __name__ == "__main__":
    main()
