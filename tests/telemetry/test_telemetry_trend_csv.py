"""Memory trend warnings (a growing process; never a vLLM one), each process's memory phase and
the CSV process table."""

from __future__ import annotations

import csv
import io

from hypothesis import given, strategies as st

from vramtop.analysis.instances import group_instances
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot
from vramtop.sources.demo import DemoSource
from vramtop.telemetry import csv_export
from vramtop.telemetry.trend import MemoryTrend, TrendRule, keeps_growing, phase, slope

TOTAL, RESERVED = 23_028, 513


def _node(t: float, procs: dict[int, tuple[str, int]]) -> NodeSnapshot:
    used = sum(m for _, m in procs.values())
    hosts = {pid: HostProcess(pid, 1, title.split()[0][:15], title, tuple(title.split())) for pid, (title, _) in procs.items()}
    return NodeSnapshot(
        timestamp=t, hostname="h", source="test",
        gpus=(GpuInfo(0, "NVIDIA A10", "GPU-0", TOTAL, RESERVED, used, TOTAL - RESERVED - used),),
        gpu_processes=tuple(GpuProcess(pid, 0, mib, host=hosts[pid]) for pid, (_, mib) in procs.items()),
    )


def test_a_growing_process_gets_a_time_to_full_and_a_vllm_one_does_not():
    trend = MemoryTrend()
    warnings = ()
    for i in range(31):  # 60 s, one sample every 2 s; the trainer adds 50 MiB/s, vLLM starts up alongside
        t = 1000.0 + 2 * i
        snap = _node(t, {10: ("python3 train.py", 2_000 + 100 * i), 20: ("VLLM::EngineCore", min(8_000, 500 * i))})
        warnings = trend.update(snap, group_instances(snap))
    (w,) = warnings
    assert w.pid == 10 and w.gpu_index == 0
    assert abs(w.mib_per_s - 50.0) < 1e-6
    free = TOTAL - RESERVED - (2_000 + 3_000) - 8_000
    assert abs(w.seconds_to_full - free / 50.0) < 1e-6
    assert w.message == f"pid 10 (python3 train.py) grows 50 MiB/s: GPU 0 full in about {round(free / 50 / 60)} min at this rate"
    assert trend.gpu_history(0)[-1] == 2_000 + 3_000 + 8_000
    assert len(trend.process_history(0, 20)) == 31


def test_steady_or_jittery_memory_is_not_a_trend():
    trend = MemoryTrend()
    for i in range(40):
        wobble = (i % 3) * 40
        assert trend.update(_node(float(i * 2), {10: ("python3 serve.py", 6_000 + wobble)})) == ()


def test_growth_that_gives_memory_back_is_not_kept_growing():
    rule = TrendRule(min_growth_mib=100, max_drop_mib=64)
    samples = [(float(t), v) for t, v in enumerate([1_000, 1_200, 1_400, 1_100, 1_500, 1_600] * 5)]
    assert keeps_growing(samples, rule) is None


def test_each_process_reads_stable_growing_shrinking_or_volatile_once_the_window_can_say():
    trend = MemoryTrend()
    shapes = {  # pid -> MiB at sample i (every 2 s)
        10: lambda i: 6_000 + (i % 3) * 20,  # a server: flat but for noise
        11: lambda i: 2_000 + 100 * i,  # a trainer ramping up: 50 MiB/s
        12: lambda i: 9_000 - 60 * i,  # a cache being released: 30 MiB/s
        13: lambda i: 3_000 + (1_500 if i % 4 < 2 else 0),  # a batch job filling and emptying
    }
    for i in range(4):  # 6 s: too soon to judge anything
        trend.update(_node(2.0 * i, {pid: ("python3 job.py", f(i)) for pid, f in shapes.items()}))
    assert trend.phases() == {}
    for i in range(4, 30):
        trend.update(_node(2.0 * i, {pid: ("python3 job.py", f(i)) for pid, f in shapes.items()}))
    assert trend.phases() == {10: "memory stable", 11: "memory growing 50 MiB/s",
                              12: "memory shrinking 30 MiB/s", 13: "memory volatile"}
    window = [(2.0 * i, shapes[13](i)) for i in range(30)]
    assert phase(window, TrendRule()) == ("volatile", 0.0)  # no steady rate: none is fitted


def test_a_process_on_several_gpus_reads_as_its_worst_gpu():
    trend = MemoryTrend()
    host = HostProcess(7, 1, "python3", "python3 fsdp.py")
    for i in range(20):
        trend.update(NodeSnapshot(2.0 * i, "h", "test", gpu_processes=(
            GpuProcess(7, 0, 5_000, host=host), GpuProcess(7, 1, 5_000 + 80 * i, host=host))))
    assert trend.phases() == {7: "memory growing 40 MiB/s"}
    assert phase([(0.0, 1), (1.0, 1)], TrendRule()) is None  # two samples say nothing


@given(st.floats(-500, 500), st.floats(0, 50_000), st.integers(3, 40))
def test_slope_recovers_a_straight_line(rate, start, n):
    samples = [(float(t), start + rate * t) for t in range(n)]
    assert abs(slope(samples) - rate) < 1e-6 * max(1.0, abs(rate))


def test_csv_has_one_row_per_process_and_gpu_with_the_documented_columns():
    snap = DemoSource(clock=lambda: 0.0).sample()
    text = csv_export.to_csv(snap)
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames) == ("gpu", "pid", "user", "engine", "role", "label", "instance",
                                         "used_mib", "cpu_pct", "rss_mib", "command", "container", "frameworks")
    rows = list(reader)
    assert len(rows) == len(snap.gpu_processes)
    (inst,) = group_instances(snap)
    by_key = {(int(r["gpu"]), int(r["pid"])): r for r in rows}
    for p in snap.gpu_processes:
        r = by_key[(p.gpu_index, p.pid)]
        assert int(r["used_mib"]) == p.used_mib and r["command"] == p.host.title and r["user"] == p.host.user
        assert r["instance"] == inst.key
    assert sum(int(r["used_mib"]) for r in rows) == snap.used_mib


def test_csv_quotes_commands_and_leaves_unknowns_empty():
    host = HostProcess(5, 1, "python3", 'python3 -c "a, b = 1, 2"', ("python3", "-c", "a, b = 1, 2"), user="ana")
    snap = NodeSnapshot(timestamp=0, hostname="h", source="test", gpu_processes=(
        GpuProcess(5, 0, None, host=host), GpuProcess(6, 1, 300, host=None, hidden_reason="not visible")))
    rows = list(csv.DictReader(io.StringIO(csv_export.to_csv(snap))))
    assert rows[0]["command"] == 'python3 -c "a, b = 1, 2"' and rows[0]["used_mib"] == ""
    assert rows[1]["engine"] == "unknown" and rows[1]["user"] == "" and rows[1]["command"] == ""


def test_demo_node_telemetry_explains_the_replica_that_cannot_scale():
    from vramtop.telemetry.demo import DemoTelemetry

    clock = iter(range(0, 1000, 2))
    source, tel_source = DemoSource(clock=lambda: 0.0), DemoTelemetry(clock=lambda: float(next(clock)))
    snap = source.sample()
    (inst,) = group_instances(snap)
    for _ in range(3):
        tel = tel_source.poll(snap)
    line = tel.for_instance(inst.key)
    budget = 0.9 * snap.gpus[0].total_mib / 1024
    assert line.summary.startswith(f"VRAM fixed at {budget:.1f} GiB/GPU by gpu_memory_utilization=0.9 · KV ")
    assert line.summary.endswith("serve: 7 ongoing / target 5 → wants 2 replicas; 1 fits → requests queue")
    assert len(line.history.generation_tokens_per_s) == 3 and len(line.history.requests_waiting) == 3
    assert tel.trends == ()
