"""Stopping real processes: SIGTERM honoured, SIGKILL only after a second confirmation,
read-only refuses, a reused PID is never signalled."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from telemetry_support import snapshot_of
from vramtop.analysis.instances import group_instances
from vramtop import actions
from vramtop.actions import Stopper, plan_for_instance, plan_for_process

IGNORES_TERM = ("import signal, setproctitle, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "setproctitle.setproctitle('python3 stubborn.py'); print('ready', flush=True); time.sleep(120)")
HONOURS_TERM = "import time; print('ready', flush=True); time.sleep(120)"


@pytest.fixture
def spawn():
    procs: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _gone(stopper, plan, seconds=5.0):
    deadline = time.monotonic() + seconds
    while stopper.remaining(plan) and time.monotonic() < deadline:
        time.sleep(0.05)
    return stopper.remaining(plan)


def test_sigterm_stops_a_process_that_honours_it(spawn):
    p = spawn(HONOURS_TERM)
    snap = snapshot_of({p.pid: (0, 2_000)})
    plan = plan_for_process(snap, p.pid)
    assert plan.per_gpu_mib == {0: 2_000}
    stopper = Stopper()
    result = stopper.terminate(plan)
    assert result.ok and result.message == f"sent SIGTERM to pid {p.pid}"
    assert _gone(stopper, plan) == ()
    assert p.wait(timeout=5) == -15


def test_sigkill_needs_the_second_confirmation(start_stand_in, spawn):
    p = spawn(IGNORES_TERM)
    snap = snapshot_of({p.pid: (1, 700)})
    plan = plan_for_process(snap, p.pid)
    stopper = Stopper()
    assert stopper.terminate(plan).ok
    assert _gone(stopper, plan, seconds=1.0) == (p.pid,)  # SIGTERM ignored
    refused = stopper.kill(plan, confirmed=False)
    assert not refused.ok and refused.remaining == (p.pid,) and p.poll() is None
    killed = stopper.kill(plan, confirmed=True)
    assert killed.ok and "SIGKILL" in killed.message
    assert p.wait(timeout=5) == -9


def test_a_whole_instance_stops_root_and_every_member(start_stand_in):
    server = start_stand_in("/usr/local/bin/vllm serve m --port 0", child_title="VLLM::EngineCore")
    snap = snapshot_of({server.child_pid: (0, 20_730)})
    (inst,) = group_instances(snap)
    plan = plan_for_instance(snap, inst)
    assert [t.pid for t in plan.term] == [server.pid, server.child_pid]  # the root first
    assert {t.pid for t in plan.watch} == {server.pid, server.child_pid}
    assert plan.per_gpu_mib == {0: 20_730} and plan.refusal is None
    stopper = Stopper()
    assert stopper.terminate(plan).ok
    # the engine child got its own SIGTERM: it does not outlive its parent
    assert _gone(stopper, plan, seconds=5.0) == ()


def test_readonly_refuses_everything(spawn):
    p = spawn(HONOURS_TERM)
    plan = plan_for_process(snapshot_of({p.pid: (0, 1)}), p.pid)
    stopper = Stopper(readonly=True)
    for result in (stopper.terminate(plan), stopper.kill(plan, confirmed=True)):
        assert not result.ok and result.message == actions.READONLY_MESSAGE
    time.sleep(0.2)
    assert p.poll() is None


def test_permission_refused_is_one_clear_line(spawn):
    p = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable, "-c",
                          "import os, sys; os.kill(int(sys.argv[1]), 0)", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    if "Operation not permitted" not in err and "PermissionError" not in err:
        pytest.skip("cannot run a process without the right to signal others here")
    # Run the stopper itself as an unprivileged user against a root-owned process.
    victim = spawn(HONOURS_TERM)
    code = ("import sys; from vramtop.actions import Stopper, Target, StopPlan; "
            "import psutil; pid = int(sys.argv[1]); ct = psutil.Process(pid).create_time(); "
            "t = Target(pid, ct, 'victim', 'root'); "
            "print(Stopper().terminate(StopPlan('victim', (t,), (t,))).message)")
    run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable, "-c",
                          code, str(victim.pid)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (f"permission denied signalling pid {victim.pid} (owned by root): "
                                  "run vramtop as that user or as root")
    assert victim.poll() is None


def test_a_pid_reused_since_the_snapshot_is_not_signalled(spawn):
    p = spawn(HONOURS_TERM)
    plan = plan_for_process(snapshot_of({p.pid: (0, 1)}), p.pid)
    t = plan.term[0]
    stale = actions.StopPlan(plan.label, (actions.Target(t.pid, t.create_time - 100, t.title),),
                             (actions.Target(t.pid, t.create_time - 100, t.title),))
    result = Stopper().terminate(stale)
    assert result.ok and "already ended" in result.message
    assert p.poll() is None


def test_hidden_process_cannot_be_stopped():
    snap = snapshot_of({2**22 + 11: (0, 100)})
    plan = plan_for_process(snap, 2**22 + 11)
    result = Stopper().terminate(plan)
    assert not result.ok and "not visible from here" in result.message


def test_demo_and_replayed_nodes_are_never_signalled():
    from dataclasses import replace

    from vramtop.sources.demo import DemoSource

    snap = DemoSource(clock=lambda: 0.0).sample()
    (inst,) = group_instances(snap)
    for plan in (plan_for_instance(snap, inst), plan_for_process(replace(snap, source="replay"), 4101)):
        result = Stopper().terminate(plan)
        assert not result.ok and "nothing to stop" in result.message
    assert plan_for_instance(snap, inst).per_gpu_mib == inst.per_gpu_mib  # the dialog still shows the cost


def test_workers_that_only_ray_joins_each_get_the_sigterm(spawn):
    """Ray Serve LLM's workers are placement-group actors under the raylet: no root stops them all."""
    import dataclasses

    from vramtop.ray.model import OK, Actor, Deployment, PlacementGroup, RayState, Replica

    w0, w1 = spawn(HONOURS_TERM), spawn(HONOURS_TERM)
    actor = "SERVE_REPLICA::llm#LLMServer:m#abcd1234"
    state = RayState(
        "http://127.0.0.1:8265", OK, 0.0,
        deployments=(Deployment("llm", "LLMServer:m", replicas=(Replica("abcd1234", "RUNNING", actor),)),),
        placement_groups=(PlacementGroup("pg1", actor),),
        actors=tuple(Actor(f"a{i}", "RayWorkerWrapper", state="ALIVE", pid=w.pid, placement_group_id="pg1",
                           bundle_index=i) for i, w in enumerate((w0, w1))),
    )
    snap = dataclasses.replace(snapshot_of({w0.pid: (0, 20_000), w1.pid: (1, 20_000)}), ray=state)
    (inst,) = group_instances(snap)
    plan = plan_for_instance(snap, inst)
    assert plan.label.startswith("llm/LLMServer:m#abcd1234 ") and "Ray Serve starts a new replica" in plan.note
    assert {t.pid for t in plan.term} == {t.pid for t in plan.watch} == {w0.pid, w1.pid}
    assert plan.per_gpu_mib == {0: 20_000, 1: 20_000} and plan.refusal is None
    stopper = Stopper()
    assert stopper.terminate(plan).ok
    assert _gone(stopper, plan) == ()
    assert w0.wait(timeout=5) == w1.wait(timeout=5) == -15
