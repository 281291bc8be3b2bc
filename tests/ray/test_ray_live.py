"""vramtop's Ray view against a real local Ray cluster (4 logical GPUs), nothing of Ray mocked.

Which process belongs to which replica is read from the OS (the stand-in engine processes carry
their replica id and rank on their command line), never from the API the code under test reads.
"""

from __future__ import annotations

import dataclasses
import socket
import time

import psutil
import pytest

from ray_cluster import GPUS, session_pids
from gpu_user import GPU_USER
from vramtop.analysis.instances import group_instances
from vramtop.ray import export
from vramtop.ray.feasibility import PLACEMENT_GROUP, analyze, place_candidate
from vramtop.ray.model import OK, UNREACHABLE
from vramtop.ray.poller import RayPoller
from vramtop.snapshot import GpuInfo, GpuProcess, NodeSnapshot
from vramtop.sources.processes import ProcessReader

pytestmark = pytest.mark.ray

A10_MIB = 23_028
SEED_APP = {
    "name": "seed", "route_prefix": "/seed", "import_path": "serve_apps:plain_app",
    "deployments": [{"name": "FakeLLM", "ray_actor_options": {"num_cpus": 0, "num_gpus": 4},
                     "autoscaling_config": {"min_replicas": 2, "max_replicas": 16, "target_ongoing_requests": 5}}],
}
FIX_APP = {
    "name": "seed", "route_prefix": "/seed", "import_path": "serve_apps:plain_app",
    "deployments": [{"name": "FakeLLM", "ray_actor_options": {"num_cpus": 0, "num_gpus": 2},
                     "autoscaling_config": {"min_replicas": 1, "initial_replicas": 2, "max_replicas": 2,
                                            "target_ongoing_requests": 3}}],
}
MODEL = "google/medgemma-4b-it"
LLM_DEP = "LLMServer:google--medgemma-4b-it"
LLM_APP = {
    "name": "llm", "route_prefix": "/llm", "import_path": "serve_apps:llm_app",
    "args": {"llm_configs": [{
        "model_loading_config": {"model_id": MODEL},
        "engine_kwargs": {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85, "max_model_len": 8192},
        "deployment_config": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 2}},
    }]},
}


def replicas(doc: dict, app: str, dep: str) -> list[dict]:
    return doc["applications"].get(app, {}).get("deployments", {}).get(dep, {}).get("replicas", [])


def states(doc: dict, app: str, dep: str) -> list[str]:
    return sorted(r["state"] for r in replicas(doc, app, dep))


def gpu_users(sid: int) -> dict[int, tuple[str, int]]:
    """PID -> (replica id, rank) of the stand-in engine processes, from their command lines."""
    found = {}
    for pid in session_pids(sid):
        try:
            argv = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        if GPU_USER in argv:
            i = argv.index(GPU_USER)
            found[pid] = (argv[i + 1], int(argv[i + 2]))
    return found


def titled(sid: int, prefix: str) -> list[int]:
    out = []
    for pid in session_pids(sid):
        try:
            if " ".join(psutil.Process(pid).cmdline()).startswith(prefix):
                out.append(pid)
        except psutil.Error:
            continue
    return out


def snapshot_of(gpu_mib: dict[int, tuple[int, int]]) -> NodeSnapshot:
    """This host as NVML would show it, with real processes on (logical) GPUs: pid -> (gpu, MiB)."""
    hosts, hidden, ancestors, _ = ProcessReader().read(set(gpu_mib))
    assert not hidden, hidden
    gpus = tuple(GpuInfo(i, "NVIDIA A10", f"GPU-{i}", A10_MIB, 0, 0, A10_MIB) for i in range(GPUS))
    procs = tuple(GpuProcess(pid, gpu, mib, host=hosts[pid]) for pid, (gpu, mib) in gpu_mib.items())
    return NodeSnapshot(timestamp=time.time(), hostname=socket.gethostname(), source="test",
                        gpus=gpus, gpu_processes=procs, ancestors=ancestors)


def poll_until(poller: RayPoller, predicate, timeout: float = 30.0):
    deadline = time.time() + timeout
    while not predicate(state := poller.poll()):
        assert time.time() < deadline, state
        time.sleep(0.5)
    return state


def test_seed_deployment_one_replica_runs_one_waits_and_both_limits_are_warned(ray_cluster):
    deployed_at = time.time()
    ray_cluster.deploy([SEED_APP])
    doc = ray_cluster.wait_for(
        lambda d: states(d, "seed", "FakeLLM") == ["RUNNING", "STARTING"]
        and "to be scheduled" in d["applications"]["seed"]["deployments"]["FakeLLM"]["message"],
        "one seed replica running and one waiting with Ray's message")
    running_id = next(r["replica_id"] for r in replicas(doc, "seed", "FakeLLM") if r["state"] == "RUNNING")

    state = RayPoller(ray_cluster.dashboard, timeout=10).poll()
    assert state.status == OK and state.error is None and state.last_success == state.checked_at
    assert state.ray_version and state.ray_version.startswith("2.")
    (dep,) = state.deployments
    assert dep.key == "seed/FakeLLM" and dep.num_gpus == 4
    assert "Resources required for each replica" in dep.message

    # The replica process holds GPUs itself; a child of it stands for the engine.
    (replica_pid,) = titled(ray_cluster.sid, "ray::ServeReplica:seed:FakeLLM")
    (child_pid, (child_of, _)), = gpu_users(ray_cluster.sid).items()
    assert child_of == running_id
    snap = snapshot_of({replica_pid: (0, 500), child_pid: (1, 20_700)})
    analysis = analyze(state, snap)
    (a,) = analysis.deployments
    assert (a.running, a.starting, a.pending) == (1, 0, 1)
    assert a.target_replicas == 2 and (a.min_replicas, a.max_replicas, a.target_ongoing_requests) == (2, 16, 5)
    assert a.gpus_per_replica == 4 and a.max_feasible_replicas == 1
    assert a.warnings == ("at most 1 replica fits; min_replicas=2 cannot be met",
                          "max_replicas=16 cannot be reached: autoscaling can never add replicas")
    assert 1 <= a.pending_for_s <= time.time() - deployed_at + 1
    assert analysis.cluster_gpus == GPUS and analysis.cluster_vram_mib == GPUS * A10_MIB
    label = f"seed/FakeLLM#{running_id}"
    assert {pid: link.label for (_, pid), link in analysis.links.items()} == {replica_pid: label, child_pid: label}

    # The dashboard's per-node usage lags the placement by the autoscaler monitor's period.
    state = poll_until(RayPoller(ray_cluster.dashboard, timeout=10), lambda s: s.nodes[0].available("GPU") == 0)
    section = export.to_dict(state, analyze(state, snap))
    (d,) = section["deployments"]
    assert d["replicas"] == {"running": 1, "starting": 0, "pending": 1}
    assert d["autoscaling"] == {"min_replicas": 2, "max_replicas": 16, "target_ongoing_requests": 5}
    assert d["max_feasible_replicas"] == 1 and len(d["warnings"]) == 2
    (node,) = section["nodes"]
    assert node["gpus_total"] == GPUS and node["gpus_available"] == 0


def test_seed_fix_two_gpus_per_replica_both_fit_without_warning(ray_cluster):
    ray_cluster.deploy([FIX_APP])
    ray_cluster.wait_for(lambda d: states(d, "seed", "FakeLLM") == ["RUNNING", "RUNNING"]
                         and d["applications"]["seed"]["deployments"]["FakeLLM"]["status"] == "HEALTHY",
                         "both replicas of the fix running")
    state = RayPoller(ray_cluster.dashboard, timeout=10).poll()
    (a,) = analyze(state).deployments
    assert (a.running, a.pending) == (2, 0)
    assert a.gpus_per_replica == 2 and a.max_feasible_replicas == 2 and a.warnings == ()
    assert (a.min_replicas, a.max_replicas) == (1, 2)


def test_llm_shaped_deployment_gpus_come_from_its_placement_group_and_workers_link_back(ray_cluster):
    ray_cluster.deploy([LLM_APP])
    doc = ray_cluster.wait_for(lambda d: states(d, "llm", LLM_DEP) == ["RUNNING"]
                               and len(gpu_users(ray_cluster.sid)) == 2, "the LLM replica and its two workers")
    (replica,) = replicas(doc, "llm", LLM_DEP)
    state = RayPoller(ray_cluster.dashboard, timeout=10).poll()
    (dep,) = state.deployments
    assert dep.num_gpus == 0  # the replica actor itself asks for no GPU, as with Ray Serve LLM
    assert dep.llm is not None and dep.llm.model_id == MODEL
    assert (dep.llm.tensor_parallel_size, dep.llm.gpu_memory_utilization, dep.llm.max_model_len) == (2, 0.85, 8192)
    assert dep.llm.candidate_fields() == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85,
                                          "max_model_len": 8192}

    users = gpu_users(ray_cluster.sid)
    assert {rid for rid, _ in users.values()} == {replica["replica_id"]}
    workers = titled(ray_cluster.sid, "ray::RayWorkerWrapper")
    assert len(workers) == 2
    snap = snapshot_of({pid: (rank, 20_730) for pid, (_, rank) in users.items()})
    analysis = analyze(state, snap)
    (a,) = analysis.deployments
    assert a.shape.source == PLACEMENT_GROUP and a.gpus_per_replica == 2
    assert a.max_feasible_replicas == 2 and a.warnings == () and (a.running, a.pending) == (1, 0)
    assert a.vram_per_replica_mib == 2 * 20_730
    assert a.vram_at_min_mib == 2 * 20_730 and a.vram_at_max_mib == 2 * 2 * 20_730
    label = f"llm/{LLM_DEP}#{replica['replica_id']}"
    assert {pid: (link.label, link.via) for (_, pid), link in analysis.links.items()} == {
        pid: (label, "placement group") for pid in users}
    # Each stand-in engine process hangs under the worker actor holding its rank's bundle.
    for pid, (_, rank) in users.items():
        parent = psutil.Process(pid).ppid()
        assert parent in workers
    assert sorted(link.bundle_index for link in analysis.links.values()) == [0, 1]
    # No ancestry joins the two workers (each hangs under the raylet); Ray's placement group does:
    # the process table shows one instance, the replica, that stops as one.
    assert len(group_instances(snap)) == 2
    (inst,) = group_instances(dataclasses.replace(snap, ray=state))
    assert sorted(inst.pids) == sorted(users) and inst.label == label and inst.name == f"llm/{LLM_DEP}"
    assert inst.total_mib == 2 * 20_730 and inst.key == f"ray:{min(users)}"

    # One more replica of this deployment on what is free now: 2 GPUs left, it fits; a third does not.
    state = poll_until(RayPoller(ray_cluster.dashboard, timeout=10), lambda s: s.nodes[0].available("GPU") == 2)
    more = place_candidate(state, a.shape, 2)
    assert (more.running, more.pending) == (1, 1)


def test_second_node_adds_its_gpus_and_replicas_never_split_an_actor_across_nodes(ray_cluster):
    ray_cluster.deploy([SEED_APP, LLM_APP])
    ray_cluster.add_worker_node(gpus=2)
    deadline = time.time() + 90
    poller = RayPoller(ray_cluster.dashboard, timeout=10)
    while True:
        state = poller.poll()
        if len([n for n in state.nodes if n.state == "ALIVE"]) == 2 and len(state.deployments) == 2:
            break
        assert time.time() < deadline, state.summary()
        time.sleep(1)
    analysis = analyze(state)
    assert analysis.cluster_gpus == GPUS + 2
    seed = analysis.deployment("seed/FakeLLM")
    llm = analysis.deployment(f"llm/{LLM_DEP}")
    assert seed.max_feasible_replicas == 1  # a 4-GPU actor fits the 4-GPU node only
    assert llm.max_feasible_replicas == 3  # 2-GPU replicas: two on the head, one on the new node
    nodes = export.to_dict(state, analysis)["nodes"]
    assert sorted(n["gpus_total"] for n in nodes) == [2, GPUS]
    assert [n["is_head"] for n in nodes].count(True) == 1


def test_dashboard_killed_state_says_unreachable_and_keeps_the_last_success(ray_cluster):
    ray_cluster.deploy([FIX_APP])
    poller = RayPoller(ray_cluster.dashboard, timeout=3)
    good = poller.poll()
    assert good.status == OK
    (dashboard,) = [p for p in session_pids(ray_cluster.sid)
                    if any(a.endswith("dashboard/dashboard.py") for a in _cmdline(p))]
    victim = psutil.Process(dashboard)
    victim.kill()
    victim.wait(10)
    deadline = time.time() + 30
    while (bad := poller.poll()).status == OK:
        assert time.time() < deadline, "the dashboard still answers"
        time.sleep(0.5)
    assert bad.status == UNREACHABLE and bad.error
    assert bad.last_success == good.last_success and bad.checked_at > good.checked_at
    assert bad.deployments == good.deployments  # the last good picture stays, marked stale
    assert "last success" in bad.summary()


def _cmdline(pid: int) -> list[str]:
    """A session process's command line; none for one that has ended or is a zombie (Ray
    reaps its workers on its own schedule)."""
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
