"""The memory trend keeps its series in flat arrays: what it reads back (histories, phases,
warnings) is what a deque of (time, MiB) tuples, the plain way to keep them, gives for any run of
snapshots: repeated or backward timestamps, processes that come and go, a window or a sample cap
that drops the oldest, a node at rest (the live source hands out the last snapshot's processes,
the very tuple, when none moved: the trend holds those times and pushes them when read)."""

from __future__ import annotations

import dataclasses
import sys
from collections import deque

from hypothesis import example, given, settings, strategies as st

from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot
from vramtop.telemetry import trend as trend_module
from vramtop.telemetry.trend import JUDGED_PER_UPDATE, MemoryTrend, TrendRule, keeps_growing, phase, phase_text

TOTAL = 81_559


class DequeTrend:
    """The reference: each series a deque of (time, MiB) tuples, trimmed to the window."""

    def __init__(self, rule: TrendRule, max_samples: int) -> None:
        self.rule, self.max = rule, max_samples
        self.gpus: dict[int, deque] = {}
        self.procs: dict[tuple[int, int], deque] = {}

    def _push(self, store: dict, key, t: float, mib: int) -> None:
        series = store.setdefault(key, deque(maxlen=self.max))
        if series and t <= series[-1][0]:
            return
        series.append((t, mib))
        while series and t - series[0][0] > self.rule.window_s:
            series.popleft()

    def update(self, snapshot: NodeSnapshot) -> None:
        t = snapshot.timestamp
        for g in snapshot.gpus:
            self._push(self.gpus, g.index, t, g.used_mib)
        per_proc: dict[tuple[int, int], int] = {}
        for p in snapshot.gpu_processes:
            if p.used_mib is not None:
                per_proc[(p.gpu_index, p.pid)] = per_proc.get((p.gpu_index, p.pid), 0) + p.used_mib
        for key, mib in per_proc.items():
            self._push(self.procs, key, t, mib)
        for key in [k for k in self.procs if k not in per_proc]:
            del self.procs[key]

    def phases(self) -> dict[int, str]:
        order = ("growing", "shrinking", "volatile", "stable")
        worst: dict[int, tuple[str, float]] = {}
        for (_, pid), series in self.procs.items():
            found = phase(list(series), self.rule)
            if found is not None and (pid not in worst or order.index(found[0]) < order.index(worst[pid][0])):
                worst[pid] = found
        return {pid: phase_text(*found) for pid, found in worst.items()}

    def growing(self) -> dict[tuple[int, int], float]:
        return {key: rate for key, series in self.procs.items()
                if (rate := keeps_growing(list(series), self.rule)) is not None}


def _snapshot(t: float, procs: list[tuple[int, int, int | None]]) -> NodeSnapshot:
    gpus = (0, 1)
    used = {g: sum(m or 0 for pid, gg, m in procs if gg == g) for g in gpus}
    return NodeSnapshot(
        timestamp=t, hostname="h", source="test",
        gpus=tuple(GpuInfo(g, "NVIDIA H100 80GB HBM3", f"GPU-{g}", TOTAL, 545, used[g], TOTAL - 545 - used[g])
                   for g in gpus),
        gpu_processes=tuple(GpuProcess(pid, g, mib, host=HostProcess(pid, 1, "python3", "python3 train.py", ("python3",)))
                            for pid, g, mib in procs))


_tick = st.tuples(
    st.sampled_from([0.0, 1.0, 1.0, 2.5, 5.0, 10.0, 45.0, -3.0]),  # time step: repeats, jumps, a clock going back
    st.one_of(st.none(),  # at rest: the last snapshot's processes, the same tuple
              st.lists(st.tuples(st.integers(1, 6), st.integers(0, 1), st.one_of(st.none(), st.integers(0, 80_000))),
                       max_size=8)))


@settings(max_examples=150, deadline=None)
@given(ticks=st.lists(_tick, min_size=1, max_size=60),
       window=st.sampled_from([10.0, 30.0, 120.0]), cap=st.sampled_from([3, 8, 600]),
       shape=st.sampled_from(["random", "steady", "sawtooth"]), looked=st.booleans(),
       growth=st.sampled_from([256, 32]))
# Stable, then a MiB given at the same time (its sample dropped) and judged at once: at rest that
# MiB is what repeats, so the verdict cannot stand.
@example(ticks=[(0.0, [(1, 0, 1_000)]), (1.0, None), (1.0, None), (0.0, [(1, 0, 5_000)]), (1.0, None)],
         window=10.0, cap=600, shape="random", looked=False, growth=256)
# Growth within the allowed drop warns while the memory reads stable; held flat, the warning goes.
@example(ticks=[(0.0, [(1, 0, 1_000)]), *((1.0, [(1, 0, 1_000 + 10 * i)]) for i in range(1, 5)), *[(1.0, None)] * 12],
         window=10.0, cap=600, shape="random", looked=False, growth=32)
def test_histories_phases_and_warnings_are_the_deque_trends(ticks, window, cap, shape, looked, growth):
    """``looked``: the histories read after every update (each series catches up), else after the
    last. ``growth``: 32 MiB counts as growth within the 64 MiB that stable memory may move."""
    rule = TrendRule(window_s=window, min_span_s=window / 6, min_samples=3, min_growth_mib=growth, max_drop_mib=64)
    ours, ref = MemoryTrend(rule, max_samples=cap), DequeTrend(rule, cap)
    t, snap = 1_000.0, _snapshot(1_000.0, [])
    for n, (step, procs) in enumerate(ticks):
        t += step
        if procs is None:
            snap = dataclasses.replace(snap, timestamp=t)
        elif shape == "steady":  # steady growth for some, so that the growing and shrinking verdicts are reached
            procs = [(pid, g, None if mib is None else 1_000 + (300 * n if pid % 2 else -40 * n) + mib % 50)
                     for pid, g, mib in procs]
        elif shape == "sawtooth":  # climbs, then gives memory back: volatile verdicts kept while they stand
            procs = [(pid, g, None if mib is None else 1_000 + (n * 37 * pid + mib % 3 * 131) % 900)
                     for pid, g, mib in procs]
        if procs is not None:
            snap = _snapshot(t, procs)
        warnings = ours.update(snap)
        ref.update(snap)
        assert ours.phases() == ref.phases()
        assert {(w.gpu_index, w.pid): w.mib_per_s for w in warnings} == ref.growing()
        if looked or n == len(ticks) - 1:
            for g in (0, 1):
                assert ours.gpu_history(g) == tuple(v for _, v in ref.gpus.get(g, ()))
            for (g, pid), series in ref.procs.items():
                assert ours.process_history(g, pid) == tuple(v for _, v in series)
            assert ours.process_history(0, 99) == ()


def test_a_volatile_series_is_judged_again_only_once_what_made_it_so_leaves_the_window(monkeypatch):
    # The race's node: each process climbs 37 MiB a second for 24 s, then gives memory back.
    rule = TrendRule()
    ours, ref = MemoryTrend(rule), DequeTrend(rule, 600)
    judged = []
    own_judge = MemoryTrend._judge
    monkeypatch.setattr(MemoryTrend, "_judge", lambda self, series: judged.append(1) or own_judge(self, series))
    for i in range(0, 560, 2):  # the telemetry's 2 s, past four windows
        procs = [(pid, pid % 2, 2_000 + (pid * 131 + i * 37) % 900) for pid in range(1, 65)]
        if i == 300:  # one process turns steady: its verdict must follow once its drops age out
            procs[0] = (1, 1, 5_000)
        elif i > 300:
            procs[0] = (1, 1, 5_000 + (i - 300) * 10)
        snap = _snapshot(1_000.0 + i, procs)
        warnings = ours.update(snap)
        ref.update(snap)
        assert ours.phases() == ref.phases()
        assert {(w.gpu_index, w.pid): w.mib_per_s for w in warnings} == ref.growing()
    assert set(ours.phases().values()) >= {"memory volatile", "memory growing 10 MiB/s"}
    assert len(judged) < 280 * 64 / 4  # most updates keep a volatile verdict standing


def test_a_volatile_verdict_goes_when_a_sample_cap_leaves_its_window_too_short_to_judge():
    rule = TrendRule(window_s=120.0, min_span_s=12.0, min_samples=3)
    ours, ref = MemoryTrend(rule, max_samples=4), DequeTrend(rule, 4)
    for t, mib in ((0, 1_000), (10, 1_000), (11, 2_000), (12, 1_000), (13, 1_000)):
        snap = _snapshot(1_000.0 + t, [(1, 0, mib)])
        ours.update(snap)
        ref.update(snap)
        assert ours.phases() == ref.phases()
    assert ours.phases() == {}  # the last four samples span 3 s: too short to say, the rise and the fall still in


def test_a_rule_that_counts_growth_within_its_allowed_drop_warns_of_memory_that_reads_stable():
    rule = TrendRule(window_s=30.0, min_span_s=3.0, min_samples=3, min_growth_mib=32, max_drop_mib=64)
    ours, ref = MemoryTrend(rule), DequeTrend(rule, 600)
    for i in range(6):  # 10 MiB a second: 50 MiB over the window, within the 64 that "stable" allows
        snap = _snapshot(1_000.0 + i, [(1, 0, 4_000 + 10 * i)])
        warnings = ours.update(snap)
        ref.update(snap)
    assert ours.phases() == ref.phases() == {1: "memory stable"}
    assert [(w.pid, round(w.mib_per_s)) for w in warnings] == [(1, 10)] and ref.growing() == {(0, 1): 10.0}


def test_on_a_node_of_many_processes_each_judgement_is_at_most_a_few_updates_old():
    rule = TrendRule(window_s=30.0, min_span_s=5.0, min_samples=3)
    count = 3 * JUDGED_PER_UPDATE - 100  # judged in turns of three updates
    ours, ref = MemoryTrend(rule), DequeTrend(rule, 600)
    answers: list[tuple[dict, dict]] = []  # the reference's phases and growing series, update by update
    differed = 0
    for i in range(60):
        # a third holds, a third grows 40 MiB/s from update 20 on, a third moves back and forth
        procs = [(pid, pid % 2, 4_000 + (40 * max(0, i - 20) if pid % 3 == 1 else (pid * 131 + i * 97) % 900
                                         if pid % 3 == 2 else 0)) for pid in range(1, count + 1)]
        snap = _snapshot(1_000.0 + i, procs)
        warned = {(w.gpu_index, w.pid) for w in ours.update(snap)}
        ref.update(snap)
        answers.append((ref.phases(), ref.growing()))
        recent = answers[-3:]
        phases = ours.phases()
        # each process's phase (or none yet) is what the reference said on one of the last three
        assert all(any(phases.get(pid) == seen.get(pid) for seen, _ in recent) for pid in range(1, count + 1))
        assert all(any(key in growing for _, growing in recent) for key in warned)
        differed += phases != answers[-1][0]
    assert differed  # judged in turns: not every series on every update
    assert len(warned) == len(range(1, count + 1, 3))
    assert set(phases.values()) >= {"memory stable", "memory growing 40 MiB/s"}


def test_a_node_of_many_processes_at_rest_judges_in_turns_and_reads_back_every_sample(monkeypatch):
    """Stretches at rest (the last snapshot's processes, the same tuple) between moves: each
    judgement is one the reference gave on one of the last three updates, the histories are the
    reference's sample for sample, and a rest that changes no judgement builds no new phases."""
    rule = TrendRule(window_s=30.0, min_span_s=5.0, min_samples=3)
    count = 3 * JUDGED_PER_UPDATE - 100
    ours, ref = MemoryTrend(rule), DequeTrend(rule, 600)
    judged = []
    own_judge = MemoryTrend._judge
    monkeypatch.setattr(MemoryTrend, "_judge", lambda self, series: judged.append(1) or own_judge(self, series))
    worded = []
    monkeypatch.setattr(trend_module, "phase_text", lambda *found: worded.append(1) or phase_text(*found))
    answers: list[dict] = []
    snap, mib = _snapshot(1_000.0, []), 4_000
    for i in range(90):
        if i in (0, 40, 45) or 60 <= i < 70:  # moves: the first MiB, a step up, steady growth for ten
            mib += 0 if i == 0 else 500 if i < 60 else 40
            snap = _snapshot(1_000.0 + i, [(pid, pid % 2, mib + pid) for pid in range(1, count + 1)])
        else:
            snap = dataclasses.replace(snap, timestamp=1_000.0 + i)
        judged.clear()
        worded.clear()
        ours.update(snap)
        ref.update(snap)
        answers.append(ref.phases())
        phases = ours.phases()
        assert all(any(phases.get(pid) == seen.get(pid) for seen in answers[-3:]) for pid in range(1, count + 1))
        assert i == 0 or len(judged) <= JUDGED_PER_UPDATE  # the first update judges every series
        if 30 <= i < 40:  # long at rest: every series stable, the same answer update after update
            assert set(phases.values()) == {"memory stable"} and phases is before and not worded
        before = phases
    assert any(text.startswith("memory growing") for text in ours.phases().values())  # the last move in the window
    for (g, pid), series in ref.procs.items():
        assert ours.process_history(g, pid) == tuple(v for _, v in series)


def test_a_full_window_of_many_processes_takes_a_fraction_of_the_deques_memory():
    rule = TrendRule()
    ours, ref = MemoryTrend(rule), DequeTrend(rule, 600)
    for i in range(150):  # past the 120 s window: 8 GPUs x 8 processes, each a different MiB every second
        procs = [(pid, pid % 2, 2_000 + (pid * 131 + i * 37) % 900) for pid in range(1, 65)]
        snap = _snapshot(1_000.0 + i, procs)
        ours.update(snap)
        ref.update(snap)

    def held(store: dict, flat: bool) -> int:
        total = sys.getsizeof(store)
        for series in store.values():
            if flat:
                total += sys.getsizeof(series) + sys.getsizeof(series.times) + sys.getsizeof(series.values)
            else:
                total += sys.getsizeof(series) + sum(sys.getsizeof(s) + sys.getsizeof(s[1]) for s in series)
        return total

    assert len(ours.process_history(1, 1)) == len(ref.procs[(1, 1)]) == 121
    assert held(ours._procs, True) * 4 < held(ref.procs, False)


def test_phases_that_hold_are_the_last_answer_and_equal_texts_one_string():
    rule = TrendRule(window_s=30.0, min_span_s=5.0, min_samples=3)
    trend = MemoryTrend(rule)
    answers = []
    for i in range(20):  # eight processes whose memory holds: all "memory stable" once the window can say
        trend.update(_snapshot(1_000.0 + i, [(pid, pid % 2, 4_000 + pid) for pid in range(1, 9)]))
        answers.append(trend.phases())
    first = next(a for a in answers if a)
    assert set(first.values()) == {"memory stable"} and len(first) == 8
    assert len({id(a) for a in answers[answers.index(first):]}) == 1  # one dict while the phases hold
    assert len({id(text) for text in first.values()}) == 1  # and one string for the eight processes
    before = dict(first)
    for i in range(20, 40):  # process 1 starts to grow: a new answer, the last one left as it was
        trend.update(_snapshot(1_000.0 + i, [(pid, pid % 2, 4_000 + pid + (300 * (i - 19) if pid == 1 else 0))
                                             for pid in range(1, 9)]))
    now = trend.phases()
    assert now is not first and first == before
    assert now[1].startswith("memory growing ") and now[2] == "memory stable"
    assert now[2] is first[2]
