"""Stopping a whole instance found on a real process tree: the confirmation names every member
and SIGTERM reaches each of them, parents that hold GPU memory included."""

from __future__ import annotations

import psutil

from dialog_host import DialogHost
from engine_tree import Proc, proc_tree
from vramtop.analysis.instances import group_instances
from vramtop.snapshot import GpuProcess, NodeSnapshot
from vramtop.sources.processes import ProcessReader
from vramtop.actions import Stopper, plan_for_instance
from vramtop.widgets.stop_dialog import StopDialog


def live_snapshot(gpu_mib: dict[int, dict[int, int]]) -> NodeSnapshot:
    """What the live source builds: host records and parents from the process reader."""
    hosts, _, ancestors, _ = ProcessReader().read(set(gpu_mib))
    procs = tuple(GpuProcess(pid, gpu, mib, host=hosts[pid]) for pid, per_gpu in gpu_mib.items() for gpu, mib in per_gpu.items())
    return NodeSnapshot(timestamp=0, hostname="h", source="nvml", gpu_processes=procs, ancestors=ancestors)


async def test_the_confirmation_names_every_member_and_sigterm_reaches_them_all():
    # The seed's shape: a Serve replica holding contexts, its engine core and TP workers (sources
    # cited in test_real_trees.py).
    procs = (
        Proc("replica", "ray::ServeReplica:medgemma:VLLMDeployment", None, {0: 519, 1: 529}),
        Proc("engine", "VLLM::EngineCore", "replica", {0: 1_234}),
        Proc("w0", "VLLM::Worker_TP0", "engine", {0: 20_730}),
        Proc("w1", "VLLM::Worker_TP1", "engine", {1: 20_730}),
    )
    with proc_tree(*procs) as tree:
        snap = live_snapshot({tree.pid[p.name]: dict(p.gpu_mib) for p in procs})
        (inst,) = group_instances(snap)
        plan = plan_for_instance(snap, inst)
        assert plan.refusal is None and plan.total_mib == 43_742
        assert [t.pid for t in plan.term][0] == tree.pid["replica"]
        assert {t.pid for t in plan.term} == set(tree.pid.values())
        app = DialogHost(StopDialog(plan, Stopper(), grace_s=5, poll_s=0.05))
        async with app.run_test(size=(100, 30)) as pilot:
            body = str(app.screen.query_one("#stop-body").render())
            for p in procs:
                assert f"pid {tree.pid[p.name]} {p.title}" in body
            await pilot.press("y")
            for _ in range(100):
                if app.outcomes:
                    break
                await pilot.pause(0.05)
        (outcome,) = app.outcomes
        assert outcome.action == "stopped", outcome.message
        for pid in tree.pid.values():
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
