"""The replay source's controls, the app's history ring, and ``vramtop record`` — against the demo
node, a recorder killed mid-run, and the NVML stand-in driver with real processes."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest

import fakenvml
from recording_support import changing_node
from vramtop.cli import record
from vramtop import history
from vramtop.history import History
from vramtop.recording import Recorder, Recording, write_recording
from vramtop.sources.demo import DemoSource
from vramtop.sources.feed import Feed
from vramtop.sources.replay import ReplaySource

SNAPSHOTS = changing_node(120, step=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def replay(tmp_path):
    path = tmp_path / "r.vtrec"
    write_recording(path, SNAPSHOTS, 2.0)
    clock = Clock()
    return ReplaySource(path, clock=clock), clock


def truth_at(t):
    """The last recorded snapshot at or before recorded time ``t``."""
    return max((s for s in SNAPSHOTS if s.timestamp <= t), key=lambda s: s.timestamp)


def test_replay_follows_the_clock_as_a_source_of_replay_snapshots(replay):
    src, clock = replay
    first = src.sample()
    assert first.source == "replay" and first == dataclasses.replace(SNAPSHOTS[0], source="replay")
    clock.now += 30  # 30 s of wall time at 1x: 30 s of recorded time
    assert src.sample().timestamp == truth_at(SNAPSHOTS[0].timestamp + 30).timestamp
    src.set_speed(10)
    clock.now += 20
    assert src.sample().timestamp == truth_at(SNAPSHOTS[0].timestamp + 30 + 200).timestamp
    clock.now += 10_000  # past the end: it stays on the last snapshot
    assert src.sample() == dataclasses.replace(SNAPSHOTS[-1], source="replay")
    assert src.at_end and src.paused and "end" in src.status()


def test_pause_step_and_jump(replay):
    src, clock = replay
    clock.now += 11
    at = src.index
    assert src.toggle_pause() is True
    clock.now += 500
    assert src.index == at  # paused: the clock no longer moves it
    assert src.step(5) == at + 5 and src.sample().timestamp == SNAPSHOTS[at + 5].timestamp
    assert src.step(-100) == 0
    assert src.step(10_000) == len(SNAPSHOTS) - 1
    middle = SNAPSHOTS[60].timestamp + 0.5
    assert src.jump_to(middle) == 60
    assert src.jump_to(0) == 0  # before the start: the first snapshot
    src.play()
    clock.now += 4
    assert src.sample().timestamp == truth_at(SNAPSHOTS[0].timestamp + 4).timestamp
    assert src.seek(-100) == 0


def test_speed_stays_between_1_and_60(replay):
    src, _ = replay
    assert src.set_speed(0.1) == 1 and src.set_speed(500) == 60
    assert src.slower() == 30 and src.faster() == 60 and src.faster() == 60
    src.set_speed(1)
    assert [src.faster() for _ in range(5)] == [2, 5, 10, 30, 60]
    assert "60×" in src.status() and "#1/120" in src.status()


def test_history_is_bounded_and_keeps_each_gpus_series():
    h = History(length=50)
    for s in SNAPSHOTS[:80]:
        h.add(s)
    assert len(h) == 50 and h.snapshots() == tuple(SNAPSHOTS[30:80]) and h.latest is SNAPSHOTS[79]
    assert h.gpu_indices() == (0, 1, 2, 3)
    for gpu in range(4):
        expected = tuple(None if s.gpu(gpu).lost else s.gpu(gpu).used_mib for s in SNAPSHOTS[30:80])
        assert h.used_peaks(gpu, 50, 1) == (expected, sum(v is not None for v in expected))
    assert None in h.used_peaks(1, 50, 1)[0]  # GPU 1 was lost for a while
    assert h.used_peaks(7, 50, 1) == ((None,) * 50, 0)


def test_a_gpu_that_appears_late_has_a_series_as_long_as_the_others():
    h = History(length=10)
    base = SNAPSHOTS[0]
    for i in range(4):
        h.add(dataclasses.replace(base, gpus=base.gpus[:2]))
    h.add(base)
    assert h.used_peaks(3, 10, 1)[0] == (None,) * 9 + (base.gpu(3).used_mib,)


def test_saving_the_history_gives_a_recording_of_it(tmp_path):
    h = History(length=40)
    assert "nothing to save" in history.save_history(h, tmp_path / "x.vtrec")
    for s in SNAPSHOTS[:60]:
        h.add(s)
    line = history.save_history(h, tmp_path / "h.vtrec", 2.0)
    assert line == f"saved 40 snapshots to {tmp_path / 'h.vtrec'}"
    assert list(Recording(tmp_path / "h.vtrec")) == SNAPSHOTS[20:60]
    bad = history.save_history(h, tmp_path / "no-such-dir" / "h.vtrec")
    assert bad.startswith("could not save the history to") and "No such file" in bad
    assert history.default_path(SNAPSHOTS[0]).name.startswith("vramtop-demo-a10-node-")


def test_the_record_loop_keeps_its_schedule_and_duration(tmp_path):
    clock = Clock()
    node_time = [SNAPSHOTS[0].timestamp]
    feed = Feed(DemoSource(clock=lambda: node_time[0]))

    def sleep(seconds):
        assert seconds >= 0
        clock.now += seconds
        node_time[0] += seconds

    with Recorder(tmp_path / "l.vtrec", "demo-a10-node", 0.5) as rec:
        count = record.record_loop(feed, rec, 0.5, duration=10, clock=clock, sleep=sleep)
    assert count == 20
    times = Recording(tmp_path / "l.vtrec").timestamps
    assert [round(b - a, 6) for a, b in zip(times, times[1:])] == [0.5] * 19


def _parse(argv):
    parser = argparse.ArgumentParser(prog="vramtop")
    record.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_record_command_on_the_demo_node(tmp_path, capsys):
    out = tmp_path / "demo.vtrec"
    args = _parse(["record", "-o", str(out), "--demo", "--interval", "0.05", "--duration", "0.3"])
    assert args.run(args) == 0
    rec = Recording(out)
    assert 4 <= len(rec) <= 7 and rec.problem is None
    s = rec.snapshot(len(rec) - 1)
    assert s.source == "demo" and s.ray.deployments[0].autoscaling.min_replicas == 2 and s.telemetry is not None
    err = capsys.readouterr().err
    assert f"{len(rec)} snapshots" in err and str(out) in err


def test_record_command_says_in_one_line_when_it_cannot_write(tmp_path, capsys):
    args = _parse(["record", "-o", str(tmp_path / "missing" / "x.vtrec"), "--demo", "--duration", "1"])
    assert args.run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vramtop record: cannot write") and "\n" not in err


CHILD = """
import argparse, sys
from vramtop.cli import record
p = argparse.ArgumentParser(); record.add_parser(p.add_subparsers())
a = p.parse_args(sys.argv[1:]); sys.exit(a.run(a))
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_recorder_stopped_by_a_signal_leaves_a_replayable_file(tmp_path, how):
    out = tmp_path / "killed.vtrec"
    child = subprocess.Popen([sys.executable, "-c", CHILD, "record", "-o", str(out), "--demo", "--interval", "0.02"],
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 3000):
        time.sleep(0.05)
    os.kill(child.pid, how)
    child.wait(timeout=30)
    child.stderr.close()
    rec = Recording(out)
    assert len(rec) >= 3
    last = rec.snapshot(len(rec) - 1)
    assert last.hostname == "demo-a10-node" and len(last.gpus) == 4
    if how == signal.SIGTERM:
        assert child.returncode == 0 and rec.problem is None  # stopped cleanly
    else:
        assert rec.problem is not None


def test_recording_the_nvml_stand_in_with_real_processes(fake_nvml, tmp_path):
    from vramtop.sources.live import LiveSource

    with fakenvml.spawn_processes("VLLM::EngineCore", *(f"VLLM::Worker_TP{r}" for r in range(2))) as pids:
        engine, *workers = pids
        for gpu, pid in enumerate(workers):
            fake_nvml.add_process(gpu, pid, 20_730 * 1024 * 1024)
        fake_nvml.add_process(0, engine, 1_234 * 1024 * 1024)
        fake_nvml.write()
        source = LiveSource()
        truth = []
        path = tmp_path / "live.vtrec"
        try:
            with Recorder(path, "live", 1.0, keyframe_every=4) as rec:
                for tick in range(10):
                    if tick == 3:  # a worker grows, a GPU gets hot
                        fake_nvml.processes[1].used += 512 * 1024 * 1024
                        fake_nvml.gpus[1].temperature = 83
                    if tick == 6:  # a process leaves GPU 0
                        fake_nvml.processes.pop()
                    if tick == 8:
                        fake_nvml.lose(2)
                    fake_nvml.write()
                    snap = source.sample()
                    truth.append(snap)
                    rec.write(snap)
        finally:
            source.close()
    replayed = list(Recording(path))
    assert replayed == truth
    assert {p.pid for p in replayed[0].gpu_processes} == set(pids)
    assert any(p.host is not None and p.host.title == "VLLM::Worker_TP1" for p in replayed[0].gpu_processes)
    assert replayed[-1].gpu(2).lost and replayed[-1].errors


@contextlib.contextmanager
def _live(command: list[str], count: int):
    """The live source on the stand-in node, and the PIDs of ``count`` real children running
    ``command`` to list in its scenario."""
    from vramtop.sources.live import LiveSource

    children = [subprocess.Popen(command) for _ in range(count)]
    try:
        live = LiveSource()
        try:
            yield live, [c.pid for c in children]
        finally:
            live.close()
    finally:
        for c in children:
            c.kill()
            c.wait()


def test_the_history_gives_back_live_ticks_whose_memory_alone_moved(fake_nvml):
    """Read live from the stand-in driver with real processes: ticks where only the processes'
    memory moved (one process's becoming unknown to the driver, then known again) read back from
    the ring as they were taken, and so does the tick where a process left."""
    taken, h = [], History(length=5)
    with _live(["sleep", "60"], 3) as (live, pids):
        for used in ((100, 200, 300), (150, 200, 300), (150, None, 300), (150, 250, 300), (150, 250, 300), (160, 250)):
            fake_nvml.processes.clear()
            for gpu, (pid, mib) in enumerate(zip(pids, used)):
                fake_nvml.add_process(gpu, pid, mib)
            fake_nvml.write()
            taken.append(live.sample())
            h.add(taken[-1])
    assert h.snapshots() == tuple(taken[1:]) and h.latest is taken[-1]
    assert [[p.used_mib for p in s.gpu_processes] for s in h] == [
        [150, 200, 300], [150, None, 300], [150, 250, 300], [150, 250, 300], [160, 250]]


# A busy process, as an engine's worker is: it burns CPU and its RSS grows, a page at a time. It
# spins most of each 10 ms: the kernel charges CPU time a clock tick at a time to whoever runs at
# the tick, so a process that mostly sleeps may show 0 % read after read on a loaded machine.
BUSY = ("import time\nheld = []\nwhile True:\n    held.append(b'x' * 100_000)\n"
        "    t = time.monotonic()\n    while time.monotonic() - t < 0.008:\n        pass\n    time.sleep(0.002)\n")


def _busy_ticks(fake_nvml, keep) -> list[tuple]:
    """Ten ticks of eight new busy processes (the reader reads a new process on each of its first
    reads), the GPUs' memory, load, temperature and power moving too; each handed to ``keep``.
    Gives each tick's moving figures, to check that they moved."""
    moved = []
    with _live([sys.executable, "-c", BUSY], 8) as (live, pids):
        for n in range(10):
            fake_nvml.processes.clear()
            for i, pid in enumerate(pids):
                fake_nvml.add_process(i % 4, pid, 1_000 + 37 * n + i)
            for gpu in fake_nvml.gpus:
                gpu.utilization, gpu.temperature, gpu.power_mw = 50 + n, 60 + n % 3, 100_000 + 1_234 * n
            fake_nvml.write()
            time.sleep(0.05)
            snapshot = live.sample()
            moved.append(tuple((p.used_mib, p.host.cpu_pct, p.host.rss_mib) for p in snapshot.gpu_processes)
                         + tuple((g.utilization_pct, g.power_w) for g in snapshot.gpus))
            keep(snapshot)
    return moved


def _heap_per_tick(fake_nvml, ticks) -> dict[str, float]:
    """The heap a ring and a list of the snapshots as taken each keep per tick of ``ticks``, over
    the last five of ten (their fixed costs and first ticks aside)."""
    import tracemalloc

    grew = {}
    for name, kept in (("ring", History(length=20)), ("as taken", [])):
        held = []
        add = getattr(kept, "add", None) or kept.append
        tracemalloc.start()
        ticks(fake_nvml, lambda s: (add(s), held.append(tracemalloc.get_traced_memory()[0])))
        tracemalloc.stop()
        grew[name] = (held[-1] - held[4]) / 5
    return grew


def test_live_ticks_whose_cpu_rss_and_gpu_figures_moved_read_back_whole_from_a_smaller_ring(fake_nvml):
    """Where every figure moves from tick to tick (a busy node: memory, CPU % and RSS of each
    process, the GPUs' memory, load, temperature and power), the ring keeps the first tick's
    records once and gives every tick back as it was taken, holding under half of what the
    snapshots as taken hold."""
    taken, h = [], History(length=20)
    moved = _busy_ticks(fake_nvml, lambda s: (taken.append(s), h.add(s)))
    assert len({m[:8] for m in moved}) == 10  # the processes' figures moved on every tick
    assert len({tuple(f[1] for f in m[:8]) for m in moved}) > 2  # CPU %, at each read
    assert len({tuple(f[2] for f in m[:8]) for m in moved}) > 2  # RSS
    assert h.snapshots() == tuple(taken)
    assert [[type(p.host.cpu_pct) for p in s.gpu_processes] for s in h] == [
        [type(p.host.cpu_pct) for p in s.gpu_processes] for s in taken]  # a float stays a float, None None

    grew = _heap_per_tick(fake_nvml, _busy_ticks)
    assert grew["ring"] < grew["as taken"] / 2, grew


def test_ticks_that_repeat_the_last_ticks_records_read_back_as_they_were_taken():
    """A cluster between two dashboard polls gives the very same process records tick after
    tick, after a tick whose memory alone moved: the ring keeps them as that tick's frame does
    and gives each tick back whole."""
    import dataclasses

    base = DemoSource(clock=lambda: 1_700_000_000.0).sample()
    moved = tuple(dataclasses.replace(p, used_mib=p.used_mib + 7) for p in base.gpu_processes)
    taken = [base, dataclasses.replace(base, timestamp=base.timestamp + 1, gpu_processes=moved)]
    taken += [dataclasses.replace(taken[-1], timestamp=base.timestamp + t) for t in (2, 3)]  # the same records
    h = History(length=10)
    for snapshot in taken:
        h.add(snapshot)
    assert h.snapshots() == tuple(taken)
    assert [[p.used_mib for p in s.gpu_processes] for s in h][-1] == [p.used_mib for p in moved]


def _churning_ticks(fake_nvml, keep) -> None:
    """Ten ticks of eight real processes whose memory moves on every tick, one of them replaced by
    a new process (a new PID) on each; each tick handed to ``keep``."""
    from vramtop.sources.live import LiveSource

    children = [subprocess.Popen(["sleep", "60"]) for _ in range(8)]
    live = LiveSource()
    try:
        for n in range(10):
            slot = n % len(children)  # the new process takes the old one's GPU
            children[slot].kill()
            children[slot].wait()
            children[slot] = subprocess.Popen(["sleep", "60"])
            fake_nvml.processes.clear()
            for i, child in enumerate(children):
                fake_nvml.add_process(i % 4, child.pid, 1_000 + 37 * n + i)
            fake_nvml.write()
            keep(live.sample())
    finally:
        live.close()
        for child in children:
            child.kill()
            child.wait()


def test_ticks_where_processes_come_and_go_read_back_whole_and_keep_the_others_records_once(fake_nvml):
    """A process replaced on every tick while every process's memory moves (a node where jobs
    start and end): each tick reads back as it was taken, and the ring keeps the processes that
    stayed as their earlier records and a figure each, under half of what the ticks as taken hold."""
    taken, h = [], History(length=20)
    _churning_ticks(fake_nvml, lambda s: (taken.append(s), h.add(s)))
    assert len({frozenset(p.pid for p in s.gpu_processes) for s in taken}) == 10
    assert h.snapshots() == tuple(taken)

    grew = _heap_per_tick(fake_nvml, _churning_ticks)
    assert grew["ring"] < grew["as taken"] / 2, grew


def test_a_used_figure_no_machine_integer_holds_is_absent_from_the_series():
    # A peer's snapshot may say anything: the ring keeps its figures as 64-bit integers.
    h = History(length=5)
    base = SNAPSHOTS[0]
    huge = dataclasses.replace(base.gpus[0], used_mib=2**70)
    h.add(base)
    h.add(dataclasses.replace(base, gpus=(huge, *base.gpus[1:])))
    assert h.used_peaks(0, 2, 1) == ((base.gpu(0).used_mib, None), 1)
    assert h.used_peaks(1, 2, 1) == ((base.gpu(1).used_mib,) * 2, 2)


def test_ticks_whose_figures_did_not_move_since_the_tick_before_cost_the_ring_one_small_frame(fake_nvml):
    """At 0.2 s with memory moving each second, four ticks in five repeat the figures of the tick
    before, though each is sampled anew: the ring keeps each of those as a copy of its snapshot's record
    and the frame before's very figures, nothing of them copied (at 900 frames, 0.11 MiB)."""
    import tracemalloc

    h = History(length=60)
    with _live(["sleep", "60"], 8) as (live, pids):
        for n in range(2):
            fake_nvml.processes.clear()
            for i, pid in enumerate(pids):
                fake_nvml.add_process(i % 4, pid, 1_000 + 37 * n + i)
            for gpu in fake_nvml.gpus:
                gpu.utilization = 50 + n
            fake_nvml.write()
            h.add(live.sample())  # a tick whose memory and load moved: figures of their own
        still = [live.sample() for _ in range(40)]
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for snapshot in still:
            h.add(snapshot)
        grew = (tracemalloc.get_traced_memory()[0] - before) / len(still)
        copies = [dataclasses.replace(s, gpus=s.gpus) for s in still]  # a frame's own record of its tick
        own = (tracemalloc.get_traced_memory()[0] - before) / len(still) - grew
        tracemalloc.stop()
    moved = [p.used_mib for p in still[0].gpu_processes]
    assert [[p.used_mib for p in s.gpu_processes] for s in h][-41:] == [moved] * 41
    assert len(copies) == len(still)
    # What a still frame holds of its own: a copy of the snapshot's record, the frame's tuple and
    # its slot in the ring; the figures' tuples (a 3- and a 7-tuple, 160 bytes) are the frame before's.
    own += sys.getsizeof((1, 2, 3)) + 8
    assert grew <= own + 48, (grew, own)
