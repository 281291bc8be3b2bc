"""Feasibility of Ray Serve deployments on hand-built cluster states (no cluster, no I/O)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vramtop.ray.feasibility import (
    ACTOR_OPTIONS,
    LLM_CONFIG,
    MESSAGE,
    PLACEMENT_GROUP,
    ReplicaShape,
    analyze,
    pack,
    place_candidate,
    replica_shape,
)
from vramtop.ray.link import link_gpu_processes
from vramtop.ray.model import (
    Actor,
    Autoscaling,
    Bundle,
    Deployment,
    LLMConfig,
    Node,
    PlacementGroup,
    RayState,
    Replica,
)
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot

NOW = 1_000_000.0


def node(node_id: str, gpus: float, used: float | None = 0.0, cpus: float = 16.0, hostname: str = "gpu-node") -> Node:
    return Node(node_id=node_id, hostname=hostname, state="ALIVE",
                resources_total={"GPU": gpus, "CPU": cpus},
                resources_used=None if used is None else {"GPU": used, "CPU": 0.0})


def state_of(*deployments: Deployment, nodes=(node("n1", 4),), pgs=(), actors=()) -> RayState:
    return RayState(address="http://x", status="ok", checked_at=NOW, last_success=NOW,
                    deployments=deployments, nodes=tuple(nodes), placement_groups=tuple(pgs), actors=tuple(actors))


def seed_deployment(num_gpus: float = 4, lo: int = 2, hi: int = 16, replicas=None) -> Deployment:
    if replicas is None:
        replicas = (Replica("r1", "RUNNING", "SERVE_REPLICA::app#VLLM#r1", pid=100, node_id="n1", start_time_s=NOW - 600),
                    Replica("r2", "STARTING", "SERVE_REPLICA::app#VLLM#r2", start_time_s=NOW - 42))
    return Deployment(app="app", name="VLLM", status="UPDATING", target_num_replicas=lo,
                      autoscaling=Autoscaling(min_replicas=lo, max_replicas=hi, target_ongoing_requests=5),
                      num_gpus=num_gpus, num_cpus=1, required_resources={"CPU": 1, "GPU": num_gpus},
                      replicas=replicas)


def test_seed_config_fits_one_replica_of_four_gpus_and_warns_about_min_and_max():
    (a,) = analyze(state_of(seed_deployment())).deployments
    assert a.gpus_per_replica == 4 and a.cpus_per_replica == 1 and a.shape.source == ACTOR_OPTIONS
    assert a.max_feasible_replicas == 1
    assert (a.running, a.starting, a.pending) == (1, 0, 1)
    assert a.pending_for_s == 42
    assert a.warnings == ("at most 1 replica fits; min_replicas=2 cannot be met",
                          "max_replicas=16 cannot be reached: autoscaling can never add replicas")


def test_seed_fix_two_gpus_min_one_max_two_fits_without_warning():
    (a,) = analyze(state_of(seed_deployment(num_gpus=2, lo=1, hi=2))).deployments
    assert a.max_feasible_replicas == 2 and a.warnings == ()


def test_autoscaling_that_stops_short_of_max_says_where():
    (a,) = analyze(state_of(seed_deployment(num_gpus=1, lo=1, hi=8))).deployments
    assert a.max_feasible_replicas == 4
    assert a.warnings == ("max_replicas=8 cannot be reached: autoscaling stops at 4 replicas",)


def test_a_replica_bigger_than_any_node_fits_nowhere_even_when_the_cluster_has_the_gpus():
    st = state_of(seed_deployment(num_gpus=4, lo=1, hi=1), nodes=(node("n1", 2), node("n2", 2)))
    (a,) = analyze(st).deployments
    assert a.max_feasible_replicas == 0
    assert a.warnings[0] == "no replica fits: one needs 4 GPU, the largest node has 2"
    assert "min_replicas=1 cannot be met" in a.warnings[1]


def test_fixed_replica_count_is_checked_as_num_replicas():
    dep = Deployment(app="a", name="d", num_replicas=3, num_gpus=2, required_resources={"GPU": 2})
    (a,) = analyze(state_of(dep)).deployments
    assert a.max_feasible_replicas == 2
    assert a.warnings == ("at most 2 replicas fit; num_replicas=3 cannot be met",)


def test_max_replicas_per_node_caps_replicas_on_each_node():
    dep = Deployment(app="a", name="d", num_replicas=4, required_resources={"GPU": 1}, max_replicas_per_node=1)
    (a,) = analyze(state_of(dep, nodes=(node("n1", 4), node("n2", 4)))).deployments
    assert a.max_feasible_replicas == 2


def test_cpu_only_deployment_with_no_resources_has_no_limit_and_no_warning():
    dep = Deployment(app="a", name="ingress", num_replicas=1, required_resources={"CPU": 0.0})
    (a,) = analyze(state_of(dep)).deployments
    assert a.max_feasible_replicas is None and a.warnings == ()


def llm_deployment(replicas) -> Deployment:
    return Deployment(app="llm", name="LLMServer:qwen", num_gpus=0, num_cpus=1, required_resources={"CPU": 1},
                      autoscaling=Autoscaling(min_replicas=1, max_replicas=4), replicas=replicas,
                      llm=LLMConfig(model_id="Qwen/qwen", tensor_parallel_size=2))


def test_placement_group_bundles_give_the_gpus_of_a_serve_llm_replica_across_nodes():
    rep = Replica("a1", "RUNNING", "SERVE_REPLICA::llm#LLMServer:qwen#a1", pid=200, node_id="n1")
    pg = PlacementGroup("pg1", rep.actor_name, "CREATED",
                        (Bundle(0, {"CPU": 1, "GPU": 1}, "n1"), Bundle(1, {"GPU": 1}, "n1")))
    st = state_of(llm_deployment((rep,)), nodes=(node("n1", 4), node("n2", 3)), pgs=(pg,))
    (a,) = analyze(st).deployments
    assert a.shape.source == PLACEMENT_GROUP and a.gpus_per_replica == 2 and a.cpus_per_replica == 1
    assert a.max_feasible_replicas == 3  # two on n1, one on n2; the last GPU alone holds no replica
    assert a.warnings == ("max_replicas=4 cannot be reached: autoscaling stops at 3 replicas",)


def test_without_a_placement_group_the_llm_config_gives_tp_times_pp_gpus():
    dep = llm_deployment(())
    shape = replica_shape(dep, state_of(dep))
    assert shape.source == LLM_CONFIG
    assert shape.bundles == ({"CPU": 1, "GPU": 1.0}, {"GPU": 1.0})


def test_the_pending_message_bundle_list_is_read_when_nothing_else_says():
    msg = ("Deployment 'd' in application 'a' has 1 replicas that have taken more than 30s to be scheduled. "
           "Resources required for each replica: [{\"CPU\": 2.0, \"GPU\": 1.0}, {\"GPU\": 1.0}], "
           "total resources available: {}. Use `ray status` for more details.")
    dep = Deployment(app="a", name="d", message=msg)
    shape = replica_shape(dep, state_of(dep))
    assert shape.source == MESSAGE and shape.gpus == 2 and shape.cpus == 2


def test_candidate_on_free_gpus_runs_what_fits_per_node_and_the_rest_stays_pending():
    st = state_of(nodes=(node("n1", 4, used=3), node("n2", 4, used=0)))
    shape = ReplicaShape(({"GPU": 2.0},), ACTOR_OPTIONS)
    p = place_candidate(st, shape, 3)
    assert (p.running, p.pending) == (2, 1) and dict(p.per_node) == {"n2": 2}


def test_pack_places_bundles_of_one_replica_on_its_first_node_first():
    shape = ReplicaShape(({"GPU": 1.0}, {"GPU": 1.0}), PLACEMENT_GROUP)
    p = pack(shape, {"a": {"GPU": 1}, "b": {"GPU": 3}}, 5)
    assert p.running == 2


def test_vram_at_scale_multiplies_the_measured_replica_by_min_and_max():
    """The seed: one replica on 4 GPUs at ~20.7 GB each (82.8 per replica), 2 min, 16 max."""
    rep = Replica("r1", "RUNNING", "SERVE_REPLICA::app#VLLM#r1", pid=100, node_id="n1")
    pending = Replica("r2", "STARTING", "SERVE_REPLICA::app#VLLM#r2")
    dep = seed_deployment(replicas=(rep, pending))
    hosts = {100: HostProcess(100, 1, "python", "ray::ServeReplica:app:VLLM")}
    workers = [HostProcess(300 + i, 200, "python", f"VLLM::Worker_TP{i}") for i in range(4)]
    engine = HostProcess(200, 100, "python", "VLLM::EngineCore")
    snap = NodeSnapshot(
        timestamp=NOW, hostname="gpu-node", source="test",
        gpus=tuple(GpuInfo(i, "NVIDIA A10", f"GPU-{i}", 23_028, 0, 0, 23_028) for i in range(4)),
        gpu_processes=tuple(GpuProcess(w.pid, i, 20_700, host=w) for i, w in enumerate(workers)),
        ancestors={100: hosts[100], 200: engine},
    )
    analysis = analyze(state_of(dep), snap)
    (a,) = analysis.deployments
    assert a.vram_per_replica_mib == 82_800
    assert (a.vram_at_min_mib, a.vram_at_max_mib) == (165_600, 1_324_800)
    assert analysis.cluster_vram_mib == 4 * 23_028
    assert {link.label for link in analysis.links.values()} == {"app/VLLM#r1"}


def test_serve_llm_workers_link_through_the_placement_group_not_the_process_tree():
    rep = Replica("a1", "RUNNING", "SERVE_REPLICA::llm#LLMServer:qwen#a1", pid=200, node_id="n1")
    other = Replica("b2", "RUNNING", "SERVE_REPLICA::llm#LLMServer:qwen#b2", pid=210, node_id="n1")
    pgs = (PlacementGroup("pg1", rep.actor_name, "CREATED", (Bundle(0, {"GPU": 1}, "n1"), Bundle(1, {"GPU": 1}, "n1"))),
           PlacementGroup("pg2", other.actor_name, "CREATED", (Bundle(0, {"GPU": 1}, "n1"), Bundle(1, {"GPU": 1}, "n1"))))
    actors = (Actor("w0", "RayWorkerWrapper", state="ALIVE", pid=301, node_id="n1", placement_group_id="pg1", bundle_index=0),
              Actor("w1", "RayWorkerWrapper", state="ALIVE", pid=302, node_id="n1", placement_group_id="pg1", bundle_index=1),
              Actor("w2", "RayWorkerWrapper", state="ALIVE", pid=303, node_id="n1", placement_group_id="pg2", bundle_index=0),
              Actor("w9", "RayWorkerWrapper", state="ALIVE", pid=304, node_id="elsewhere", placement_group_id="pg2"))
    st = state_of(llm_deployment((rep, other)), pgs=pgs, actors=actors,
                  nodes=(node("n1", 4), node("elsewhere", 4, hostname="other-host")))
    raylet = HostProcess(50, 1, "raylet", "raylet")
    hosts = {pid: HostProcess(pid, 50, "python", "ray::RayWorkerWrapper") for pid in (301, 302, 303, 304)}
    child = HostProcess(401, 302, "python", "VLLM::Worker_TP1")
    procs = (GpuProcess(301, 0, 9000, host=hosts[301]), GpuProcess(401, 1, 9000, host=child),
             GpuProcess(303, 2, 9000, host=hosts[303]), GpuProcess(304, 3, 9000, host=hosts[304]),
             GpuProcess(999, 3, 100, host=HostProcess(999, 1, "python", "python train.py")))
    snap = NodeSnapshot(timestamp=NOW, hostname="gpu-node", source="test", gpu_processes=procs,
                        ancestors={50: raylet, 302: hosts[302]})
    links = link_gpu_processes(st, snap)
    assert {pid: (l.label, l.bundle_index) for (_, pid), l in links.items()} == {
        301: ("llm/LLMServer:qwen#a1", 0),
        401: ("llm/LLMServer:qwen#a1", 1),  # a child of the rank-1 worker
        303: ("llm/LLMServer:qwen#b2", 0),
    }  # 304 is a worker on another host: the same PID here is not it


def test_llm_config_as_fit_candidate_fields():
    llm = LLMConfig(model_id="m", tensor_parallel_size=2, pipeline_parallel_size=2, gpu_memory_utilization=0.9,
                    max_model_len=8192, enforce_eager=True)
    assert llm.gpus_per_replica == 4
    assert llm.candidate_fields() == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9,
                                      "max_model_len": 8192, "enforce_eager": True}


def _pack_one_at_a_time(shape, capacity, wanted, max_per_node=None):
    """First fit replica by replica, as Ray places them: the reference the closed form must match."""
    free = {n: dict(r) for n, r in capacity.items()}
    per_node: dict[str, int] = {}
    running = 0
    while running < wanted:
        trial = {n: dict(r) for n, r in free.items()}
        homes: list[str] = []
        for i, bundle in enumerate(shape.bundles):
            order = homes[:1] + [n for n in trial if n not in homes[:1]]
            node = next((n for n in order if all(trial[n].get(k, 0.0) + 1e-9 >= v for k, v in bundle.items() if v > 0)
                         and (i > 0 or max_per_node is None or per_node.get(n, 0) < max_per_node)), None)
            if node is None:
                return running, per_node
            for k, v in bundle.items():
                trial[node][k] = trial[node].get(k, 0.0) - v
            homes.append(node)
        free = trial
        running += 1
        per_node[homes[0]] = per_node.get(homes[0], 0) + 1
    return running, per_node


_amount = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.0])


@settings(max_examples=300, deadline=None)
@given(
    bundles=st.lists(st.fixed_dictionaries({"GPU": _amount, "CPU": _amount}), min_size=1, max_size=3),
    nodes=st.lists(st.fixed_dictionaries({"GPU": st.integers(0, 9).map(float), "CPU": st.integers(0, 9).map(float)}),
                   min_size=1, max_size=4),
    wanted=st.integers(1, 40),
    max_per_node=st.one_of(st.none(), st.integers(1, 5)),
)
def test_closed_form_packing_places_what_first_fit_places_one_replica_at_a_time(bundles, nodes, wanted, max_per_node):
    shape = ReplicaShape(tuple(bundles), PLACEMENT_GROUP)
    capacity = {f"n{i}": n for i, n in enumerate(nodes)}
    p = pack(shape, capacity, wanted, max_per_node)
    assert (p.running, dict(p.per_node)) == _pack_one_at_a_time(shape, capacity, wanted, max_per_node)


def test_a_billion_replicas_on_a_quadrillion_gpus_are_counted_not_placed_one_by_one():
    shape = ReplicaShape(({"GPU": 3.0, "CPU": 1.0},), ACTOR_OPTIONS)
    p = pack(shape, {"a": {"GPU": 1e15, "CPU": 1e15}, "b": {"GPU": 7.0, "CPU": 7.0}}, 10**15, max_per_node=None)
    assert (p.running, dict(p.per_node)) == (10**15 // 3 + 2, {"a": 10**15 // 3, "b": 2})
