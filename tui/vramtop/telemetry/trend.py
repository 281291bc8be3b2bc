"""Memory history per GPU and per process: each process's phase (stable, growing, shrinking,
volatile) and a warning for a process that keeps growing.

A serving engine holds a fixed amount (vLLM reserves ``gpu_memory_utilization`` x total at start),
so growth is the signature of something else: a leak, a notebook caching tensors, a trainer
ramping up. A process whose memory rose steadily over the window gets "GPU 0 full in about 4 min
at this rate" ("GPU 0:1 full ..." for a process on a MIG slice: the slice's own free memory is
what it can fill). vLLM processes never do: their memory is fixed once loaded, and their start-up
climb is not a leak. No I/O and no clock here: the tracker is fed snapshots and their timestamps.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate, repeat
from operator import mul, sub
from typing import Sequence

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import GpuProcess, NodeSnapshot, slice_label
from vramtop.telemetry.model import TrendWarning
from vramtop.units import duration


@dataclass(frozen=True)
class TrendRule:
    """When growth counts: over at least ``min_span_s`` with ``min_samples``, up by at least
    ``min_growth_mib``, with at most ``max_drop_mib`` given back along the way."""

    window_s: float = 120.0
    min_span_s: float = 20.0
    min_samples: int = 5
    min_growth_mib: int = 256
    max_drop_mib: int = 64


# Each judgement reads a series as its times and MiB side by side (``_Series`` keeps them so);
# the public forms take (time, MiB) samples.

def _slope(times: Sequence[float], values: Sequence[int]) -> float:
    """Least squares, its sums taken by ``map`` in C rather than by a generator's steps (a node
    whose processes grow has a fit a process each poll). Times and values count from their
    first, so the squares of epoch seconds do not swamp a two-minute window."""
    n = len(times)
    if n < 2:
        return 0.0
    ts = list(map(sub, times, repeat(times[0], n)))
    vs = list(map(sub, values, repeat(values[0], n)))
    sum_t = sum(ts)
    var = sum(map(mul, ts, ts)) - sum_t * sum_t / n
    if var <= 0:
        return 0.0
    return (sum(map(mul, ts, vs)) - sum_t * sum(vs) / n) / var


def _keeps_growing(times: Sequence[float], values: Sequence[int], rule: TrendRule) -> float | None:
    if len(times) < rule.min_samples or times[-1] - times[0] < rule.min_span_s:
        return None
    if values[-1] - values[0] < rule.min_growth_mib:
        return None
    peak, drop = values[0], rule.max_drop_mib
    for v in values:
        if v > peak:
            peak = v
        elif peak - v > drop:
            return None
    rate = _slope(times, values)
    return rate if rate > 0 else None


def _split(samples: list[tuple[float, int]]) -> tuple[list[float], list[int]]:
    return [t for t, _ in samples], [v for _, v in samples]


def slope(samples: list[tuple[float, int]]) -> float:
    """Least-squares growth in MiB per second of (time, MiB) samples."""
    return _slope(*_split(samples))


def keeps_growing(samples: list[tuple[float, int]], rule: TrendRule) -> float | None:
    """The growth rate (MiB/s) when ``samples`` show steady growth under ``rule``, else None."""
    return _keeps_growing(*_split(samples), rule)

STABLE, GROWING, SHRINKING, VOLATILE = "stable", "growing", "shrinking", "volatile"
_PHASE_ORDER = (GROWING, SHRINKING, VOLATILE, STABLE)  # a process on several GPUs reads as its worst
_MAX_TEXTS = 1024  # phase texts kept for sharing; a growing process's rate makes a new one each read
# Process series judged on one update, about: a node of more has each judged every few updates,
# by PID in turn, its last judgement standing between (1,000 processes: every 4th, 8 s apart at
# the telemetry's 2 s; judging them all was most of a poll).
JUDGED_PER_UPDATE = 256


def _phase(times: Sequence[float], values: Sequence[int], rule: TrendRule) -> tuple[str, float] | None:
    if len(times) < rule.min_samples or times[-1] - times[0] < rule.min_span_s:
        return None
    if max(values) - min(values) <= rule.max_drop_mib:
        return STABLE, 0.0
    if (rate := _keeps_growing(times, values, rule)) is not None:
        return GROWING, rate
    shrinks = values[0] - values[-1] >= rule.min_growth_mib  # the first test of the one below, before a copy
    if shrinks and (rate := _keeps_growing(times, [-v for v in values], rule)) is not None:
        return SHRINKING, -rate
    return VOLATILE, 0.0  # no steady rate to speak of: a least-squares fit of it was most of a poll


def phase(samples: list[tuple[float, int]], rule: TrendRule) -> tuple[str, float] | None:
    """How a process's memory moved over the window, with its rate (MiB/s): ``stable`` (within
    ``rule.max_drop_mib``), ``growing`` / ``shrinking`` (steadily, as ``keeps_growing`` judges),
    else ``volatile``; the rate is the steady growth of a growing or shrinking one, 0 otherwise.
    None until the window holds enough to say."""
    return _phase(*_split(samples), rule)


def phase_text(name: str, rate: float) -> str:
    """"memory growing 12 MiB/s", "memory stable"."""
    if name in (GROWING, SHRINKING):
        return f"memory {name} {abs(rate):,.1f} MiB/s".replace(".0 MiB", " MiB")
    return f"memory {name}"


def _volatile_until(times: Sequence[float], values: Sequence[int], rule: TrendRule) -> float | None:
    """For a series judged volatile: the time of its oldest sample the verdict rests on. While
    that sample is still in the window (and the window still holds ``rule.min_samples`` over
    ``rule.min_span_s``), the series holds a drop and a rise each past ``rule.max_drop_mib``: it
    neither keeps growing nor keeps shrinking, and is not stable, whatever samples come. None where
    it holds no such pair. Each is the pair that starts latest, found from the right by running
    minima and maxima."""
    n, drop = len(values), rule.max_drop_mib
    backwards = values[::-1]
    lows, highs = list(accumulate(backwards, min)), list(accumulate(backwards, max))  # of values[i:], at n - 1 - i
    fall = next((i for i in range(n - 2, -1, -1) if values[i] - lows[n - 2 - i] > drop), None)
    rise = next((i for i in range(n - 2, -1, -1) if highs[n - 2 - i] - values[i] > drop), None)
    return None if fall is None or rise is None else times[min(fall, rise)]


class _Series:
    """One memory series over the window: its times and MiB side by side in two flat arrays, 16
    bytes a sample (a deque of (time, MiB) tuples held about 100: the tuple, the int, the slot).
    Times only grow: a sample not newer than the last is dropped. Where its last judgement stands
    while samples come: ``volatile_until``, for a series found volatile, the time its oldest sample
    may reach with that verdict standing (``_volatile_until``); ``settled``, for one found stable,
    that every MiB given since is the last one it was judged on (a window that only repeats a
    value in it, or loses its oldest, stays within the allowed drop)."""

    __slots__ = ("times", "values", "volatile_until", "given", "settled")

    def __init__(self) -> None:
        self.times = array("d")
        self.values = array("q")
        self.volatile_until: float | None = None
        self.given = 0  # the MiB of the last push, kept or not
        self.settled = False

    def push(self, t: float, mib: int, window_s: float, cap: int) -> None:
        if mib != self.given:
            self.settled = False
        self.given = mib
        times = self.times
        if times and t <= times[-1]:
            return  # the same snapshot twice, or a clock that went back
        times.append(t)
        self.values.append(mib)
        self._trim(window_s, cap)

    def catch_up(self, held: array, window_s: float, cap: int) -> None:
        """Push the last MiB given again at each of ``held``'s times newer than the last sample: the
        series as the pushes of those updates would have left it (the window and the cap trimmed
        at the newest time, as a push at each would have done in turn)."""
        times = self.times
        start = bisect_right(held, times[-1]) if times else len(held)
        if start < len(held):
            times.extend(held[start:])
            self.values.extend(repeat(self.given, len(held) - start))
            self._trim(window_s, cap)

    def _trim(self, window_s: float, cap: int) -> None:
        times = self.times
        t, drop = times[-1], max(0, len(times) - cap)
        while drop < len(times) and t - times[drop] > window_s:
            drop += 1
        if drop:
            del times[:drop]
            del self.values[:drop]


class MemoryTrend:
    """Keeps the recent used memory of each GPU and each (GPU, process), and judges growth: each
    process's series on each update, or in turns on a node of more than ``JUDGED_PER_UPDATE``."""

    def __init__(self, rule: TrendRule = TrendRule(), max_samples: int = 600) -> None:
        self.rule = rule
        self._max = max_samples
        self._gpus: dict[int, _Series] = {}
        self._procs: dict[tuple[int, int], _Series] = {}
        self._phases: dict[int, str] = {}  # the last answer of ``phases``: not changed once returned
        self._texts: dict[str, str] = {}
        # Each process series judged once per update, for ``phases`` and ``warnings`` both: its
        # phase (None until the window can say), and its steady growth rate where it keeps growing
        self._judged: dict[tuple[int, int], tuple[tuple[str, float] | None, float | None]] = {}
        self._updates = 0
        # A node at rest: the snapshot's processes are the last update's very tuple, so no
        # process's MiB moved. Their times are held here, not pushed to each series; a series
        # catches up (``_Series.catch_up``) when it is read, and all do when the processes move.
        self._processes: tuple[GpuProcess, ...] | None = None
        self._held = array("d")
        self._judgements_moved = True  # since ``phases`` last built its answer

    def _push(self, store: dict, key, t: float, mib: int) -> None:
        series = store.get(key)
        if series is None:
            series = store[key] = _Series()
        series.push(t, mib, self.rule.window_s, self._max)

    def update(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...] = ()) -> tuple[TrendWarning, ...]:
        """Record ``snapshot`` and return the warnings it raises, fastest-filling first."""
        t = snapshot.timestamp
        for g in snapshot.gpus:
            if not g.lost:
                self._push(self._gpus, g.index, t, g.used_mib)
        procs, window, cap, held = self._procs, self.rule.window_s, self._max, self._held
        resting = snapshot.gpu_processes is self._processes
        if resting:
            if not held or t > held[-1]:
                held.append(t)
        else:
            self._processes = snapshot.gpu_processes
            if held:
                for series in procs.values():
                    series.catch_up(held, window, cap)
                del held[:]
            per_proc: dict[tuple[int, int], int] = {}
            for p in snapshot.gpu_processes:
                if p.used_mib is not None:
                    key = (p.gpu_index, p.pid)
                    per_proc[key] = per_proc.get(key, 0) + p.used_mib
            for key, mib in per_proc.items():  # a thousand a poll on a busy node: ``_push`` inlined
                series = procs.get(key)
                if series is None:
                    series = procs[key] = _Series()
                series.push(t, mib, window, cap)
            for key in [k for k in procs if k not in per_proc]:
                del procs[key]
        for key in [k for k in self._gpus if snapshot.gpu(k) is None]:
            del self._gpus[key]
        self._updates += 1
        turns = -(-len(procs) // JUDGED_PER_UPDATE)  # each series judged at least this often
        # At rest the series are the last update's, so their judgements are changed in place and
        # only a judgement that differs makes ``phases`` build its answer again.
        last = self._judged
        judged = last if resting else {}
        self._judgements_moved |= not resting
        min_samples, min_span = self.rule.min_samples, self.rule.min_span_s
        for key, series in procs.items():
            kept = last.get(key) if turns > 1 and (key[1] + self._updates) % turns else None
            if kept is None:
                if held:
                    series.catch_up(held, window, cap)
                # A volatile series stays so while the drop and the rise it was judged by are in
                # its window (a busy node's processes mostly are: allocators give memory back); a
                # stable one while its MiB holds (a node at rest). Either while the window can judge.
                times, until = series.times, series.volatile_until
                if ((series.settled or (until is not None and times[0] <= until))
                        and len(times) >= min_samples and times[-1] - times[0] >= min_span):
                    kept = last.get(key)
            if kept is None:
                kept = self._judge(series)
                if resting and kept != last.get(key):
                    self._judgements_moved = True
            judged[key] = kept
        self._judged = judged
        return self.warnings(snapshot, instances)

    def _judge(self, series: _Series) -> tuple[tuple[str, float] | None, float | None]:
        """(phase, growth rate) of one series, from its arrays: no samples built."""
        rule = self.rule
        found = _phase(series.times, series.values, rule)
        series.volatile_until = (_volatile_until(series.times, series.values, rule)
                                 if found is not None and found[0] == VOLATILE else None)
        series.settled = (found is not None and found[0] == STABLE and series.given == series.values[-1]
                          and rule.min_growth_mib > rule.max_drop_mib)
        if found is not None and found[0] == GROWING:
            return found, found[1]
        if found is not None and found[0] == STABLE and rule.min_growth_mib <= rule.max_drop_mib:
            # a rule under which memory within its allowed drop may still grow enough to warn
            return found, _keeps_growing(series.times, series.values, rule)
        return found, None  # the phase tested growth first: none

    def gpu_history(self, gpu_index: int) -> tuple[int, ...]:
        """Used MiB of one GPU over the window, oldest first (for a sparkline)."""
        series = self._gpus.get(gpu_index)
        return tuple(series.values) if series is not None else ()

    def process_history(self, gpu_index: int, pid: int) -> tuple[int, ...]:
        series = self._procs.get((gpu_index, pid))
        if series is None:
            return ()
        series.catch_up(self._held, self.rule.window_s, self._max)
        return tuple(series.values)

    def phases(self) -> dict[int, str]:
        """PID -> how its memory moved over the window ("memory growing 12 MiB/s"), for the
        processes the window can judge; a process on several GPUs reads as its worst GPU. The
        answer may be the last call's very dict: read it, never change it."""
        if not self._judgements_moved:
            return self._phases
        self._judgements_moved = False
        worst: dict[int, tuple[str, float]] = {}
        for (_, pid), (found, _) in self._judged.items():
            if found is not None and (pid not in worst or _PHASE_ORDER.index(found[0]) < _PHASE_ORDER.index(worst[pid][0])):
                worst[pid] = found
        # Each telemetry read keeps its answer, and the app's history keeps each tick's telemetry:
        # an answer equal to the last is the last (one dict for a node whose phases hold), and
        # equal texts are one string (64 processes all "memory stable" hold one).
        if len(self._texts) > _MAX_TEXTS:
            self._texts.clear()
        texts = self._texts
        phases = {}
        for pid, found in worst.items():
            text = phase_text(*found)
            phases[pid] = texts.setdefault(text, text)
        if phases == self._phases:
            return self._phases
        self._phases = phases
        return phases

    def warnings(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...] = ()) -> tuple[TrendWarning, ...]:
        growing = [(key, rate) for key, (_, rate) in self._judged.items() if rate is not None]
        if not growing:  # most polls: no lookups built over the node's processes
            return ()
        fixed = {pid for inst in instances if inst.engine == roles.VLLM for pid in inst.pids}
        out: list[TrendWarning] = []
        procs: dict[tuple[int, int], GpuProcess] = {}
        for p in snapshot.gpu_processes:
            procs.setdefault((p.gpu_index, p.pid), p)
        for key, rate in growing:
            gpu_index, pid = key
            proc = procs.get(key)
            if pid in fixed or (proc is not None and roles.classify(proc.host).engine == roles.VLLM):
                continue
            gpu = snapshot.gpu(gpu_index)
            mig = proc.mig_slice if proc is not None else None
            device = gpu if mig is None or gpu is None else next((m for m in gpu.mig if m.index == mig), None)
            left = device.free_mib / rate if device is not None and gpu is not None and not gpu.lost else None
            what = proc.host.title if proc is not None and proc.host is not None else "not visible"
            where = f"GPU {slice_label(gpu_index, mig)}"
            when = f"{where} full in about {duration(max(1.0, left))} at this rate" if left is not None else where
            speed = f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"
            out.append(TrendWarning(pid, gpu_index, rate, left, f"pid {pid} ({what[:40]}) grows {speed} MiB/s: {when}"))
        out.sort(key=lambda w: (w.seconds_to_full is None, w.seconds_to_full or 0.0))
        return tuple(out)
