"""Ray's shapes on real process trees: a Serve replica's own tree joins by parentage; the vLLM
workers Ray Serve LLM starts as actors of the replica's placement group are children of the
raylet and join only through Ray's records (vramtop/ray/link.py)."""

from __future__ import annotations

import dataclasses

from engine_tree import Proc, proc_tree
from vramtop.analysis.instances import group_instances
from vramtop.ray.model import OK, Actor, Deployment, Job, Node, PlacementGroup, RayState, Replica
from vramtop.snapshot import GpuProcess, NodeSnapshot
from vramtop.sources.processes import ProcessReader


def live_snapshot(tree, procs) -> NodeSnapshot:
    """What the live source builds: host records and parents from the process reader."""
    gpu_pids = {tree.pid[p.name] for p in procs if p.gpu_mib}
    hosts, _, ancestors, _ = ProcessReader().read(gpu_pids)
    gpu_processes = tuple(GpuProcess(tree.pid[p.name], gpu, mib, host=hosts[tree.pid[p.name]])
                          for p in procs for gpu, mib in p.gpu_mib.items())
    return NodeSnapshot(timestamp=0, hostname="h", source="nvml", gpu_processes=gpu_processes, ancestors=ancestors)


def test_ray_serve_llm_workers_of_the_placement_group_join_the_replica_that_holds_contexts_itself():
    # Ray Serve LLM: the LLMServer replica (python/ray/llm/_internal/serve/deployments/llm/llm_server.py)
    # starts vLLM's engine core as its child; vLLM's Ray executor (vllm/v1/executor/ray_distributed_executor.py)
    # creates one RayWorkerWrapper actor per bundle of the replica's placement group: processes the
    # raylet starts (src/ray/raylet/worker_pool.cc), titled ray::RayWorkerWrapper.
    procs = (
        Proc("raylet", argv=("raylet", "--node_ip_address=10.0.0.5")),
        Proc("replica", "ray::ServeReplica:llm:LLMServer:qwen", "raylet", {0: 300, 1: 300}),
        Proc("engine", "VLLM::EngineCore", "replica", {0: 500}),
        Proc("w0", "ray::RayWorkerWrapper", "raylet", {0: 20_000}),
        Proc("w1", "ray::RayWorkerWrapper", "raylet", {1: 20_000}),
        Proc("stranger", "ray::RayWorkerWrapper", "raylet", {2: 1_000}),  # no replica's placement group
    )
    with proc_tree(*procs) as tree:
        snap = live_snapshot(tree, procs)
        actor = "SERVE_REPLICA::llm#LLMServer:qwen#abcd1234"
        state = RayState(
            "http://127.0.0.1:8265", OK, 0.0,
            deployments=(Deployment("llm", "LLMServer:qwen",
                                    replicas=(Replica("abcd1234", "RUNNING", actor, pid=tree.pid["replica"]),)),),
            placement_groups=(PlacementGroup("pg1", actor),),
            actors=(Actor("a0", "RayWorkerWrapper", state="ALIVE", pid=tree.pid["w0"], placement_group_id="pg1", bundle_index=0),
                    Actor("a1", "RayWorkerWrapper", state="ALIVE", pid=tree.pid["w1"], placement_group_id="pg1", bundle_index=1),
                    Actor("a2", "RayWorkerWrapper", state="ALIVE", pid=tree.pid["stranger"])),
        )
        alone = {i.root_pid: i for i in group_instances(snap)}
        insts = {i.root_pid: i for i in group_instances(dataclasses.replace(snap, ray=state))}
    # Without Ray's records the replica's own tree is still one instance; its workers are not guessed in.
    assert sorted(alone[tree.pid["replica"]].pids) == sorted([tree.pid["replica"], tree.pid["engine"]])
    assert "no Serve replica claims" in alone[tree.pid["w0"]].note
    llm = insts[tree.pid["replica"]]
    assert sorted(llm.pids) == sorted(tree.pid[n] for n in ("replica", "engine", "w0", "w1"))
    assert llm.per_gpu_mib == {0: 20_800, 1: 20_300} and llm.label == "llm/LLMServer:qwen#abcd1234"
    assert insts[tree.pid["stranger"]].replica is None and insts[tree.pid["stranger"]].total_mib == 1_000


def test_vllm_ray_executor_workers_join_their_jobs_driver_and_nothing_else_does():
    # vLLM V0 with --distributed-executor-backend ray (vllm/executor/ray_distributed_executor.py):
    # the API server is the job's driver and TP rank 0; ranks 1.. are RayWorkerWrapper actors the
    # raylet starts. The jobs API (dashboard/modules/job/job_head.py, list_jobs) names the driver.
    procs = (
        Proc("raylet", argv=("raylet", "--node_ip_address=10.0.0.5")),
        Proc("api", parent="raylet", argv=("vllm", "serve", "Qwen/Qwen3-8B", "--tensor-parallel-size", "3",
                                          "--distributed-executor-backend", "ray"), gpu_mib={0: 9_000}),
        Proc("w1", "ray::RayWorkerWrapper", "raylet", {1: 9_000}),
        Proc("w2", "ray::RayWorkerWrapper", "raylet", {2: 9_000}),
        Proc("detached", "ray::RayWorkerWrapper", "raylet", {3: 1_000}),  # outlives the driver
        Proc("elsewhere", "ray::RayWorkerWrapper", "raylet", {3: 2_000}),  # its driver runs on another node
    )
    with proc_tree(*procs) as tree:
        snap = live_snapshot(tree, procs)
        pid = tree.pid
        state = RayState(
            "http://127.0.0.1:8265", OK, 0.0,
            nodes=(Node("n1", "10.0.0.5", hostname="h"),),
            jobs=(Job("01000000", pid["api"], "10.0.0.5", entrypoint="vllm serve Qwen/Qwen3-8B"),
                  Job("02000000", 4_000_000, "10.0.0.9")),
            actors=(Actor("a1", "RayWorkerWrapper", state="ALIVE", pid=pid["w1"], node_id="n1", job_id="01000000", detached=False),
                    Actor("a2", "RayWorkerWrapper", state="ALIVE", pid=pid["w2"], node_id="n1", job_id="01000000", detached=False),
                    Actor("a3", "RayWorkerWrapper", state="ALIVE", pid=pid["detached"], node_id="n1", job_id="01000000", detached=True),
                    Actor("a4", "RayWorkerWrapper", state="ALIVE", pid=pid["elsewhere"], node_id="n1", job_id="02000000", detached=False)),
        )
        insts = {i.root_pid: i for i in group_instances(dataclasses.replace(snap, ray=state))}
        # No Ray node known to be this host (hostnames differ): only actors beside their driver join.
        unnamed = dataclasses.replace(state, nodes=(Node("n1", "10.0.0.5", hostname="elsewhere"),))
        blind = {i.root_pid: i for i in group_instances(dataclasses.replace(snap, ray=unnamed))}
    assert blind[pid["api"]].pids == insts[pid["api"]].pids and blind[pid["elsewhere"]].pids == (pid["elsewhere"],)
    vllm = insts[pid["api"]]
    assert sorted(vllm.pids) == sorted(pid[n] for n in ("api", "w1", "w2"))
    assert vllm.per_gpu_mib == {0: 9_000, 1: 9_000, 2: 9_000} and vllm.name == "vLLM Qwen/Qwen3-8B"
    assert vllm.job is not None and vllm.job.job.job_id == "01000000" and vllm.tp_size == 3
    for stray in ("detached", "elsewhere"):
        assert insts[pid[stray]].pids == (pid[stray],) and "no job driver on this host" in insts[pid[stray]].note
