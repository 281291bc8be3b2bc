"""Grouping across ticks, read live from the stand-in driver on a real vLLM tree (an API server
whose engine core starts one worker per TP rank, as vllm/v1/executor/multiproc_executor.py does,
each titled through vllm/utils set_process_title): the shapes of instances are reused while the
processes and their parents stay, memory is added up again every tick, and a process that ends
or appears regroups the node as a first tick would."""

import dataclasses
import os
import signal
import subprocess
import sys

import pytest

import fakenvml
from engine_tree import Proc, proc_tree
from vramtop.analysis import instances
from vramtop.analysis.instances import group_instances
from vramtop.sources.live import LiveSource
from vramtop.telemetry.model import Telemetry
from vramtop.telemetry.trend import phase_text
from vramtop.widgets.process_rows import RowMemo, RowView
from vramtop.widgets.tick import derive

PROCS = (
    Proc("shell", argv=("bash",)),
    Proc("api", parent="shell", argv=("vllm", "serve", "Qwen/Qwen3-8B", "--tensor-parallel-size", "2")),
    Proc("engine", "VLLM::EngineCore", "api"),
    Proc("w0", "VLLM::Worker_TP0", "engine", {0: 20_000}),
    Proc("w1", "VLLM::Worker_TP1", "engine", {1: 20_000}),
    Proc("job", parent="shell", argv=("python3", "train.py"), gpu_mib={2: 4_000}),
)


def write(tree, path, w1_mib=20_000, listed=(("w0", 0, 20_000), ("w1", 1, None), ("job", 2, None)), job_mib=4_000):
    """The node as the driver lists it: each GPU process with its real PID."""
    scenario = fakenvml.Scenario(path)
    for _ in range(4):
        scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=22_000)
    for name, gpu, mib in listed:
        scenario.add_process(gpu, tree.pid[name], (w1_mib if name == "w1" else job_mib) if mib is None else mib)
    scenario.write()


def first_tick(snapshot):
    """What grouping gives with nothing remembered from earlier ticks."""
    saved = instances._RECENT
    instances._RECENT = ()
    try:
        return group_instances(snapshot)
    finally:
        instances._RECENT = saved


@pytest.fixture
def node(fake_nvml):
    with proc_tree(*PROCS) as tree:
        write(tree, fake_nvml.path)
        source = LiveSource()
        try:
            yield tree, source
        finally:
            source.close()


def test_memory_moves_shapes_stay(node, fake_nvml):
    tree, source = node
    before = {i.root_pid: i for i in group_instances(source.sample())}
    write(tree, fake_nvml.path, w1_mib=21_500, job_mib=4_300)  # an instance of one process moves too
    snap = source.sample()
    after = group_instances(snap)
    assert after == first_tick(snap)
    by_root = {i.root_pid: i for i in after}
    job = by_root[tree.pid["job"]]
    assert job.per_gpu_mib == {2: 4_300} and job.per_slice_mib == {"2": 4_300} and job.members[0].per_gpu_mib == {2: 4_300}
    assert before[tree.pid["job"]].total_mib == 4_000
    vllm = by_root[tree.pid["api"]]
    assert vllm.per_gpu_mib == {0: 20_000, 1: 21_500} and vllm.total_mib == 41_500
    assert vllm.tp_size == 2 and vllm.name == "vLLM Qwen/Qwen3-8B" and vllm.api_pid == tree.pid["api"]
    assert [m.role.label for m in vllm.members] == ["Worker_TP0", "Worker_TP1"]
    assert before[tree.pid["api"]].total_mib == 40_000  # the earlier tick's instance is left as it was
    # The telemetry asks about the same tick through a snapshot object of its own: nothing is rebuilt.
    again = group_instances(dataclasses.replace(snap, errors=()))
    assert again is after


def test_a_new_poll_that_finds_the_same_keeps_the_tick_s_instances_and_rows(node, fake_nvml):
    """A poll comes every two seconds; on a node whose processes stay, the rows of 1,000
    processes were built again for it (6 ms of the sampling thread at 16 GPUs x 1,000)."""
    tree, source = node
    view, memo = RowView(), RowMemo()
    source.sample()  # a process's first read has no CPU % yet: its record moves on the second
    first = derive(dataclasses.replace(source.sample(), telemetry=Telemetry(1.0)), None, view, memo)
    again = derive(dataclasses.replace(source.sample(), telemetry=Telemetry(3.0)), first, view, memo)
    assert again.instances is first.instances and again.rows is first.rows
    worker = tree.pid["w0"]
    phase = phase_text("growing", 12.0)
    told = derive(dataclasses.replace(source.sample(), telemetry=Telemetry(5.0, phases={worker: phase})),
                  again, view, memo)
    assert told.instances is first.instances and told.rows is not first.rows
    (row,) = [r for r in told.rows if r.kind == "process" and r.pid == worker]
    assert row.detail.endswith(f" · {phase}") and phase not in first.rows[first.rows.place(row.key)].detail


def test_a_process_that_leaves_or_joins_the_gpus_regroups_the_node(node, fake_nvml):
    tree, source = node
    group_instances(source.sample())
    # Worker 1 releases its GPU; the engine core takes memory on GPU 3 (the driver lists it now).
    write(tree, fake_nvml.path, listed=(("w0", 0, 20_000), ("engine", 3, 600), ("job", 2, 4_000)))
    snap = source.sample()
    after = group_instances(snap)
    assert after == first_tick(snap)
    vllm = next(i for i in after if i.root_pid == tree.pid["api"])
    assert vllm.pids == tuple(sorted((tree.pid["engine"], tree.pid["w0"]))) and vllm.per_gpu_mib == {0: 20_000, 3: 600}
    assert {m.pid: m.role.kind for m in vllm.members}[tree.pid["engine"]] == "engine"


# A vLLM worker is started as a plain Python process and takes its title once it runs
# (vllm/v1/executor/multiproc_executor.py calls set_process_title, vllm/utils/system_utils.py);
# this one takes it when told to, between two ticks.
RETITLING = r"""
import setproctitle, subprocess, sys
setproctitle.setproctitle("VLLM::EngineCore")
worker = subprocess.Popen([sys.executable, "-c",
    "import setproctitle, sys; print(flush=True); sys.stdin.readline(); "
    "setproctitle.setproctitle('VLLM::Worker_TP0'); print(flush=True); sys.stdin.readline()"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
worker.stdout.readline()
print(worker.pid, flush=True)
sys.stdin.readline()
worker.stdin.write("\n"); worker.stdin.flush(); worker.stdout.readline()
print(flush=True)
sys.stdin.readline()
"""


def test_a_worker_that_retitles_between_ticks_regroups_the_node(fake_nvml):
    engine = subprocess.Popen([sys.executable, "-c", RETITLING], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    worker = int(engine.stdout.readline())
    source = LiveSource()
    try:
        scenario = fakenvml.Scenario(fake_nvml.path)
        scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=20_000)
        scenario.add_process(0, worker, 20_000)
        scenario.write()
        (before,) = group_instances(source.sample())
        assert [m.role.label for m in before.members] != ["Worker_TP0"]
        engine.stdin.write("\n")
        engine.stdin.flush()
        engine.stdout.readline()  # the worker took its title
        snap = source.sample()
        after = group_instances(snap)
        assert after == first_tick(snap)
        (inst,) = after
        assert [m.role.label for m in inst.members] == ["Worker_TP0"] and inst.root_pid == engine.pid
    finally:
        source.close()
        for pid in (worker, engine.pid):
            os.kill(pid, signal.SIGKILL)
        engine.wait()
