"""vramtop against nvitop, both live in tmux at a 1 s interval on the same stand-in NVML node.

Run through ``bench/race_nvitop.sh`` (it installs nvitop into a venv of its own, not vramtop's
dependencies). For each node (GPUs x processes) and each motion (``MOTIONS``: memory steady; a
serving node's, the memory held and each GPU's utilization, power and temperature moving every
second; each process's memory moving every second) it starts real processes (``sleep``: their PIDs are the scenario's GPU processes),
runs ``vramtop`` and ``nvitop`` side by side in two tmux panes on the same scenario file, and,
``WARMUP_S`` later (with ``--settled``, a minute later), counts the CPU seconds of each one's
process tree over the same window (read from the kernel's per-process CPU clocks, to the
nanosecond), its RSS at the end, and the bytes it wrote to its terminal over the window (what a
pane costs over SSH). Beside the mean, the two most each spent in any one second and in any one
burst, and for vramtop how many of either went over 50 ms. A burst is CPU with no pause of
``TICK_GAP_S`` in it, read from the clock every ``CLOCK_S``: a monitor's tick (its sample and the
repaint after it), or a slower poll run apart from the ticks (vramtop's telemetry, every 2 s
halfway between two), or both where they meet. A second holds about one tick, and more where a
tick falls across its edge or a poll lands in it: the seconds say how the cost is spread, the
bursts what a tick costs.

``--settled`` measures a pane left open beside work that has run as long: a pane's first minute
holds work done once. vramtop reads a process more often in its first ticks, and a thousand new
ones in turns over some forty. The memory trend judges a process on what the pane has seen: on
the changing node (each process climbs for 24 s, then gives memory back) a process that has only
climbed since the pane opened warns at about 20 s, until its first drop (14 warnings at 8 x 64,
gone by 27 s; their line lays the screen out as it comes and as its room goes back 10 s later),
and never again once the pane has seen each process drop.

The floor is the CPU of the bare reads a monitor cannot avoid, with no UI (``floor.py``), once a
second for the same window. Both monitors pay the stand-in driver's re-reading of the scenario
file after each change; the floor does too.

Beside the table, the RSS of a bare Textual app (a line of text and the footer) in a tmux pane
of the same size, measured in the same run: the part of vramtop's RSS that any Textual app pays;
and the CPU of a bare Textual app that repaints every line of the pane once a second (one
bordered widget, one segment a line): what Textual alone costs where everything on screen moves.

One-shot: ``vramtop --once --no-ray`` against ``nvitop -1``, wall time, medians of 7; beside them
``vramtop fit`` on a catalog model and a paper node, and the bare interpreter's start.

    bench/race_nvitop.sh [--seconds 25] [--nodes 8x64,16x512] [--motions steady,serving,changing]
                         [--nvitop PATH] [--settled]
    bench/race_nvitop.sh --nodes ''     # the one-shot line alone
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import fakenvml  # noqa: E402

import psutil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARMUP_S = 6.0  # start-up (imports, first frame) is not what a pane left open costs
TICK_LIMIT_MS = 50  # the bound on any one tick of a 16 GPUs x 1,000 processes node
CLOCK_S = 0.01  # how often each monitor's CPU clock is read, to find its bursts
TICK_GAP_S = 0.15  # a pause this long (no CPU) ends a burst
ACTIVE_S = 0.0005  # CPU seconds in one read's interval that count as work, not a thread waking
SETTLED_S = 61.0  # --settled: how long the monitors and the processes run before the window


# How the node moves from one second to the next, and how the tables name it.
MOTIONS = {
    "steady": "memory steady",
    "serving": "memory steady, each GPU's utilization, power and temperature moving every second",
    "changing": "each process's memory changing every second",
}


def scenario(path: Path, gpus: int, pids: list[int], tick: int, motion: str) -> fakenvml.Scenario:
    """The node at ``tick``. ``motion`` (``MOTIONS``): "steady", nothing moves; "serving", what a
    node of loaded engines shows, their memory held and the GPUs' utilization, power and
    temperature moving every second; "changing", every process's memory (and so each GPU's used)
    differs from the last tick's, and the utilization moves."""
    sc = fakenvml.Scenario(path)
    per_gpu = [0] * gpus
    used = []
    for i, _ in enumerate(pids):
        mib = 2_000 + ((i * 131 + (tick * 37 if motion == "changing" else 0)) % 900)
        used.append(mib)
        per_gpu[i % gpus] += mib
    for g in range(gpus):
        utilization, temperature, power_w = 90, 60, 600
        if motion == "changing":
            utilization = 90 + tick % 7
        elif motion == "serving":
            utilization, temperature, power_w = 60 + (tick * 7 + g) % 40, 55 + (tick + g) % 10, 400 + (tick * 13 + g) % 200
        sc.add_gpu("NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=545, used_mib=min(per_gpu[g], 80_000),
                   utilization=utilization, temperature=temperature, power_mw=power_w * 1000,
                   power_limit_mw=700_000)
    for i, pid in enumerate(pids):
        sc.add_process(i % gpus, pid, used[i])
    sc.write()
    return sc


class Mover(threading.Thread):
    """Rewrites the scenario once a second (as ``motion`` moves it) until stopped."""

    def __init__(self, path: Path, gpus: int, pids: list[int], motion: str = "changing") -> None:
        super().__init__(daemon=True)
        self.args = (path, gpus, pids)
        self.motion = motion
        self.stop = threading.Event()

    def run(self) -> None:
        tick = 1
        while not self.stop.wait(1.0):
            scenario(*self.args, tick, self.motion)
            tick += 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def process_cpu(proc: psutil.Process) -> float:
    """CPU seconds of one process, all its threads (those that ended too), to the nanosecond.

    The kernel's per-process CPU clock (``clock_getcpuclockid``): ``/proc/PID/stat`` counts in
    clock ticks of 10 ms, so a one-second delta read from it is off by up to a tick each way,
    as large as the differences a worst second is meant to show. Where the clock cannot be read,
    the ticks."""
    clock, now = ctypes.c_int(), _Timespec()
    if (_LIBC.clock_getcpuclockid(proc.pid, ctypes.byref(clock)) == 0
            and _LIBC.clock_gettime(clock.value, ctypes.byref(now)) == 0):
        return now.tv_sec + now.tv_nsec / 1e9
    t = proc.cpu_times()
    return t.user + t.system


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (and of children they have reaped)."""
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += process_cpu(p) + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def monitor(pane: int) -> psutil.Process:
    """The process of a pane's tree that holds the most memory: the monitor, not a shell before it."""
    root = psutil.Process(pane)
    return max([root, *root.children(recursive=True)], key=lambda p: p.memory_info().rss)


def bursts_ms(clock: list[tuple[float, float]]) -> list[float]:
    """CPU ms of each burst in ``clock``, (monotonic s, CPU s) read every ``CLOCK_S``: work with no
    pause of ``TICK_GAP_S`` or more in it (intervals of less than ``ACTIVE_S`` are not work). The
    first and last are left out: the window may cut them."""
    bursts: list[float] = []
    last_work = None
    for (t0, c0), (t1, c1) in zip(clock, clock[1:]):
        if c1 - c0 < ACTIVE_S:
            continue
        if last_work is None or t0 - last_work >= TICK_GAP_S:
            bursts.append(0.0)
        bursts[-1] += (c1 - c0) * 1000
        last_work = t1
    return bursts[1:-1]


def tree_rss_mib(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def private_env(sc: fakenvml.Scenario, tmp: Path) -> dict[str, str]:
    """The scenario's environment with config and state folders of the run's own: what-if pins
    or a theme saved on this machine would otherwise change what vramtop does per tick."""
    env = sc.env()
    env.update(TERM="xterm-256color", XDG_CONFIG_HOME=str(tmp / "config"), XDG_STATE_HOME=str(tmp / "state"))
    return env


def start_pane(session: str, command: list[str], env: dict[str, str], size: tuple[int, int] = (160, 45)) -> int:
    """Run ``command`` in a tmux pane of a server of its own (socket ``session``) and return the
    pane's PID. A server already running (the one the user's own panes live in) would start the
    command in the server's environment, not ``env``: another driver, node and config."""
    subprocess.run(["tmux", "-L", session, "-f", "/dev/null", "new-session", "-d", "-s", session,
                    "-x", str(size[0]), "-y", str(size[1]), *command], env=env, check=True)
    out = subprocess.run(["tmux", "-L", session, "list-panes", "-t", session, "-F", "#{pane_pid}"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def count_output(session: str, path: Path) -> Path:
    """From now on, what the pane's program writes to its terminal goes to ``path`` too (tmux's
    pipe-pane: the copy is the tmux server's child, not the program's, and not in its CPU)."""
    subprocess.run(["tmux", "-L", session, "pipe-pane", "-o", "-t", session, f"cat > {path}"], check=True)
    return path


def stop_pane(session: str) -> None:
    subprocess.run(["tmux", "-L", session, "kill-server"], check=False, capture_output=True)


def floor_ms(path: Path, gpus: int, pids: list[int], motion: str, seconds: float) -> float:
    """CPU ms per 1 s tick of the bare reads, in a child with the stand-in driver loaded."""
    code = f"""
import sys, time, pynvml
sys.path.insert(0, {str(ROOT / "bench")!r})
from floor import bare_reads
pynvml.nvmlInit()
handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
bare_reads(pynvml, handles)
n, c0, end = 0, time.process_time(), time.monotonic() + {seconds}
while time.monotonic() < end:
    bare_reads(pynvml, handles); n += 1
    time.sleep(1.0)
print((time.process_time() - c0) * 1000 / n)
"""
    sc = scenario(path, gpus, pids, 0, motion)
    mover = Mover(path, gpus, pids, motion) if motion != "steady" else None
    if mover:
        mover.start()
    try:
        out = subprocess.run([sys.executable, "-c", code], env=sc.env(), capture_output=True, text=True,
                             check=True, timeout=seconds + 60).stdout
    finally:
        if mover:
            mover.stop.set()
            mover.join()
    return float(out)


def race(tmp: Path, gpus: int, procs: int, motion: str, seconds: float, nvitop: str,
         settled: bool = False) -> dict[str, float]:
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(procs)]
    pids = [c.pid for c in children]
    path = tmp / f"race-{gpus}x{procs}.txt"
    sc = scenario(path, gpus, pids, 0, motion)
    env = private_env(sc, tmp)
    tag = f"race{os.getpid()}"
    mover = Mover(path, gpus, pids, motion) if motion != "steady" else None
    try:
        if mover:
            mover.start()
        ours = start_pane(f"{tag}-v", [str(ROOT / ".venv/bin/python"), "-m", "vramtop", "--no-ray",
                                       "--interval", "1"], env)
        theirs = start_pane(f"{tag}-n", [nvitop, "--interval", "1"], env)
        time.sleep(SETTLED_S if settled else WARMUP_S)  # settled: a pane left open, beside work as old
        mon_v, mon_n = monitor(ours), monitor(theirs)
        out_v, out_n = count_output(f"{tag}-v", tmp / "out-v"), count_output(f"{tag}-n", tmp / "out-n")
        t0, v0, n0 = time.monotonic(), tree_cpu(ours), tree_cpu(theirs)
        seconds_v: list[float] = []  # the CPU each spent in each second
        seconds_n: list[float] = []
        clock_v: list[tuple[float, float]] = []  # each monitor's CPU clock, read every CLOCK_S (its bursts)
        clock_n: list[tuple[float, float]] = []
        v, n, t = v0, n0, t0
        while t - t0 < seconds:
            while (now := time.monotonic()) < t + 1.0:
                clock_v.append((now, process_cpu(mon_v)))
                clock_n.append((now, process_cpu(mon_n)))
                time.sleep(min(CLOCK_S, max(0.0, t + 1.0 - time.monotonic())))
            v_now, n_now, t_now = tree_cpu(ours), tree_cpu(theirs), time.monotonic()
            seconds_v.append((v_now - v) * 1000 / (t_now - t))
            seconds_n.append((n_now - n) * 1000 / (t_now - t))
            v, n, t = v_now, n_now, t_now
        row = {"vramtop": (v - v0) * 1000 / (t - t0), "nvitop": (n - n0) * 1000 / (t - t0),
               "seconds_v": seconds_v, "seconds_n": seconds_n, "bursts_v": bursts_ms(clock_v),
               "bursts_n": bursts_ms(clock_n),
               "vramtop_rss": tree_rss_mib(ours), "nvitop_rss": tree_rss_mib(theirs),
               "vramtop_out": out_v.stat().st_size / 1000 / (t - t0),
               "nvitop_out": out_n.stat().st_size / 1000 / (t - t0)}
    finally:
        if mover:
            mover.stop.set()
            mover.join()
        for s in (f"{tag}-v", f"{tag}-n"):
            stop_pane(s)
    try:
        row["floor"] = floor_ms(path, gpus, pids, motion, min(seconds, 10.0))
    finally:
        for c in children:
            c.kill()
            c.wait()
    return row


BARE_TEXTUAL = """
from textual.app import App
from textual.widgets import Footer, Static

class Bare(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Static("a bare Textual app")
        yield Footer()

Bare().run()
"""


BARE_REPAINT = """
from rich.segment import Segment
from textual.app import App
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer

class Lines(Widget):
    DEFAULT_CSS = "Lines { border: round $primary; height: 1fr; }"
    tick = 0

    def on_mount(self):
        self.set_interval(1.0, self.next_tick)

    def next_tick(self):
        self.tick += 1
        self.refresh()

    def render_line(self, y):
        return Strip([Segment(f"{y:>4} {self.tick * 37 + y * 131:>10,} MiB".ljust(self.size.width))])

class Bare(App):
    def compose(self):
        yield Lines()
        yield Footer()

Bare().run()
"""


_BARE_PANES = itertools.count()


@contextmanager
def bare_app(script: str):
    """The PID of a bare Textual app running ``script`` in a pane like the race's, once it has
    warmed up as long as they do. Each pane gets a server of its own name: tmux's ``kill-server``
    returns before the old server has gone, and a new session on its socket can meet it dying."""
    session = f"bare{os.getpid()}-{next(_BARE_PANES)}"
    try:
        pane = start_pane(session, [str(ROOT / ".venv/bin/python"), "-c", script],
                          {**os.environ, "TERM": "xterm-256color"})
        time.sleep(WARMUP_S)
        yield pane
    finally:
        stop_pane(session)


def bare_textual_repaint_ms(seconds: float) -> float:
    """CPU ms a second of a bare Textual app whose every line (one bordered widget filling the
    pane, one segment a line) shows new text once a second: what Textual alone costs to repaint
    a screen that changes everywhere, as a node whose every process's memory moves does."""
    with bare_app(BARE_REPAINT) as pane:
        c0, t0 = tree_cpu(pane), time.monotonic()
        time.sleep(seconds)
        return (tree_cpu(pane) - c0) * 1000 / (time.monotonic() - t0)


def bare_textual_rss() -> float:
    """RSS MiB of a bare Textual app after the same warm-up as the race's panes."""
    with bare_app(BARE_TEXTUAL) as pane:
        return tree_rss_mib(pane)


def one_shot(tmp: Path, nvitop: str, runs: int = 7) -> tuple[float, float, float, float]:
    """Median wall seconds of ``vramtop --once --no-ray`` and ``nvitop -1`` on an 8 x 64 node, of
    ``vramtop fit`` on a catalog model and a paper node, and of the bare interpreter starting."""
    children = [subprocess.Popen(["sleep", "3600"]) for _ in range(64)]
    try:
        env = private_env(scenario(tmp / "once.txt", 8, [c.pid for c in children], 0, "steady"), tmp)
        # As installed: pip compiled nvitop's bytecode in its venv; vramtop, run from a source
        # checkout under PYTHONDONTWRITEBYTECODE, would compile its own on every start.
        compiled = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compiled["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")

        def wall(cmd: list[str], env: dict[str, str]) -> float:
            t0 = time.monotonic()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            return time.monotonic() - t0

        python = str(ROOT / ".venv/bin/python")
        vramtop = [python, "-m", "vramtop", "--once", "--no-ray"]
        fit = [python, "-m", "vramtop", "fit", "medgemma-4b-it", "--on", "2x80GiB"]
        wall(vramtop, compiled)  # writes the bytecode
        wall(fit, compiled)
        ours, theirs, fits, bare = [], [], [], []
        for _ in range(runs):  # interleaved, so load on the machine falls on all alike
            ours.append(wall(vramtop, compiled))
            theirs.append(wall([nvitop, "-1"], env))
            fits.append(wall(fit, compiled))
            bare.append(wall([python, "-c", "pass"], compiled))
        return tuple(statistics.median(t) for t in (ours, theirs, fits, bare))
    finally:
        for c in children:
            c.kill()
            c.wait()


def ratio(ours: float, theirs: float) -> str:
    """The ratio as " (0.50×)", or nothing where nvitop's figure is 0 (a steady node's output)."""
    return f" ({ours / theirs:.2f}×)" if theirs else ""


def worst(figures: list[float], count: bool = False) -> str:
    """The two highest seconds or bursts, highest first ("63, 48"): a one-off (a layout of the
    whole screen) and what a monitor reaches again and again read apart; with ``count``, how many
    of them went over the issue's ``TICK_LIMIT_MS`` ("63, 48 (2 of 25 over 50)")."""
    text = ", ".join(f"{s:.0f}" for s in sorted(figures, reverse=True)[:2])
    over = sum(f > TICK_LIMIT_MS for f in figures)
    return f"{text} ({over} of {len(figures)} over {TICK_LIMIT_MS})" if count else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--nodes", default="8x64,16x512", help="GPUs x processes, comma-separated")
    parser.add_argument("--nvitop", default=str(ROOT / "bench/.venv-race/bin/nvitop"))
    parser.add_argument("--motions", default="steady,serving,changing",
                        help="how each node moves, comma-separated: " + ", ".join(MOTIONS))
    parser.add_argument("--no-once", action="store_true")
    parser.add_argument("--settled", action="store_true",
                        help=f"count from {SETTLED_S:.0f} s after the monitors and the processes start "
                             f"(else {WARMUP_S:.0f} s): a pane left open")
    args = parser.parse_args()
    if unknown := set(filter(None, args.motions.split(","))) - set(MOTIONS):
        sys.exit(f"race_nvitop: no such motion {', '.join(sorted(unknown))} (one of {', '.join(MOTIONS)})")
    if not shutil.which("tmux"):
        sys.exit("race_nvitop: tmux is needed (apt-get install -y tmux)")
    if not Path(args.nvitop).exists():
        sys.exit(f"race_nvitop: no nvitop at {args.nvitop} (bench/race_nvitop.sh installs it)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; CPU over {args.seconds:.0f} s "
          f"after {SETTLED_S if args.settled else WARMUP_S:.0f} s of the panes running, ms per 1 s tick")
    print("| node | vramtop ms CPU / tick | nvitop | ratio | floor | vramtop / floor | nvitop / floor "
          "| worst two seconds: vramtop / nvitop | worst two bursts: vramtop / nvitop | vramtop RSS | nvitop RSS "
          "| output to the terminal: vramtop / nvitop |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"a bare Textual app (a line of text and the footer): {bare_textual_rss():.1f} MiB RSS", flush=True)
        if args.nodes:
            print(f"a bare Textual app repainting every line once a second: "
                  f"{bare_textual_repaint_ms(min(args.seconds, 20.0)):.1f} ms CPU / tick", flush=True)
        for node in filter(None, args.nodes.split(",")):  # --nodes '': the one-shot line alone
            gpus, procs = map(int, node.split("x"))
            for motion in filter(None, args.motions.split(",")):
                r = race(Path(tmp), gpus, procs, motion, args.seconds, args.nvitop, args.settled)
                print(f"| {gpus} GPUs × {procs} processes, {MOTIONS[motion]} | {r['vramtop']:.1f} | {r['nvitop']:.1f} "
                      f"| {r['vramtop'] / r['nvitop']:.2f}× | {r['floor']:.1f} | {r['vramtop'] / r['floor']:.1f}× "
                      f"| {r['nvitop'] / r['floor']:.1f}× "
                      f"| {worst(r['seconds_v'], count=True)} / {worst(r['seconds_n'])} ms "
                      f"| {worst(r['bursts_v'], count=True)} / {worst(r['bursts_n'])} ms "
                      f"| {r['vramtop_rss']:.1f} MiB | {r['nvitop_rss']:.1f} MiB "
                      f"| {r['vramtop_out']:.1f} / {r['nvitop_out']:.1f} kB/s"
                      f"{ratio(r['vramtop_out'], r['nvitop_out'])} |",
                      flush=True)
        if not args.no_once:
            ours, theirs, fit, bare = one_shot(Path(tmp), args.nvitop)
            print(f"one-shot, 8 GPUs × 64 processes, wall, median of 7: vramtop --once {ours:.2f} s, "
                  f"nvitop -1 {theirs:.2f} s ({ours / theirs:.2f}×); vramtop fit medgemma-4b-it --on 2x80GiB "
                  f"{fit:.2f} s; the bare interpreter {bare:.2f} s")


if __name__ == "__main__":
    main()
