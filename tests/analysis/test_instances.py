"""Grouping GPU processes into the instances an operator starts and stops together."""

from vramtop.analysis.instances import group_instances, instance_of
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot
from vramtop.sources.demo import DemoSource


def hp(pid: int, ppid: int, title: str) -> HostProcess:
    return HostProcess(pid=pid, ppid=ppid, name=title[:15], title=title, cmdline=tuple(title.split()))


def test_seed_replica_is_one_instance_with_its_cost_per_gpu():
    snap = DemoSource(clock=lambda: 0.0).sample()
    (inst,) = group_instances(snap)
    assert inst.name == "medgemma/VLLMDeployment"
    assert inst.tp_size == 4
    assert inst.per_gpu_mib == {g.index: g.used_mib for g in snap.gpus}
    assert inst.total_mib == snap.used_mib == 86_154
    workers = [m for m in inst.members if m.role.kind == "worker"]
    assert [m.role.label for m in workers] == [f"Worker_TP{i}" for i in range(4)]
    assert sum(sum(m.per_gpu_mib.values()) for m in workers) == 82_920


def test_two_engines_and_a_stranger_are_three_instances():
    api = hp(100, 1, "/usr/bin/python3 /usr/local/bin/vllm serve Qwen/Qwen2.5-7B-Instruct --tensor-parallel-size 2")
    core = hp(101, 100, "VLLM::EngineCore")
    w0, w1 = hp(102, 101, "VLLM::Worker_TP0"), hp(103, 101, "VLLM::Worker_TP1")
    solo = hp(200, 1, "VLLM::EngineCore")  # TP=1: the engine core owns the GPU
    other = hp(300, 1, "python3 train.py")
    snap = NodeSnapshot(
        timestamp=0, hostname="h", source="test",
        gpu_processes=(
            GpuProcess(102, 0, 7000, host=w0), GpuProcess(103, 1, 7000, host=w1),
            GpuProcess(200, 2, 9000, host=solo), GpuProcess(300, 3, 500, host=other),
            GpuProcess(400, 3, 300, host=None, hidden_reason="not visible"),
        ),
        ancestors={100: api, 101: core},
    )
    insts = group_instances(snap)
    by_root = {i.root_pid: i for i in insts}
    assert set(by_root) == {100, 200, 300, 400}
    assert by_root[100].name == "vLLM Qwen/Qwen2.5-7B-Instruct"
    assert by_root[100].per_gpu_mib == {0: 7000, 1: 7000} and by_root[100].tp_size == 2
    assert by_root[200].engine == "vllm" and by_root[200].total_mib == 9000
    assert by_root[400].name.endswith("(not visible)") and by_root[400].total_mib == 300
    assert sum(i.total_mib for i in insts) == 23_800  # nothing dropped, nothing counted twice
    assert instance_of(insts)[1, 103] is by_root[100]


def test_unknown_memory_is_flagged_not_counted():
    w = hp(5, 1, "VLLM::Worker_TP0")
    snap = NodeSnapshot(timestamp=0, hostname="h", source="test", gpu_processes=(GpuProcess(5, 0, None, host=w),))
    (inst,) = group_instances(snap)
    assert inst.unknown_mib and inst.total_mib == 0



def test_a_ray_serve_llm_replica_is_one_instance_with_the_workers_of_its_placement_group():
    import dataclasses

    from vramtop.ray.model import OK, Actor, Deployment, PlacementGroup, RayState, Replica

    replica = hp(500, 10, "ray::ServeReplica:llm:LLMServer:qwen")
    core = hp(501, 500, "VLLM::EngineCore")
    w0, w1 = hp(600, 10, "ray::RayWorkerWrapper"), hp(601, 10, "ray::RayWorkerWrapper")  # children of the raylet
    stranger = hp(700, 10, "ray::RayWorkerWrapper")  # a worker of no replica's placement group
    actor = "SERVE_REPLICA::llm#LLMServer:qwen#abcd1234"
    state = RayState(
        "http://127.0.0.1:8265", OK, 0.0,
        deployments=(Deployment("llm", "LLMServer:qwen", replicas=(Replica("abcd1234", "RUNNING", actor, pid=500),)),),
        placement_groups=(PlacementGroup("pg1", actor),),
        actors=(Actor("a0", "RayWorkerWrapper", state="ALIVE", pid=600, placement_group_id="pg1", bundle_index=0),
                Actor("a1", "RayWorkerWrapper", state="ALIVE", pid=601, placement_group_id="pg1", bundle_index=1),
                Actor("a2", "RayWorkerWrapper", state="ALIVE", pid=700)),
    )
    snap = NodeSnapshot(
        timestamp=0, hostname="h", source="test",
        gpu_processes=(GpuProcess(600, 0, 20_000, host=w0), GpuProcess(601, 1, 20_000, host=w1),
                       GpuProcess(501, 0, 500, host=core), GpuProcess(700, 2, 1_000, host=stranger)),
        ancestors={500: replica},
    )
    assert len(group_instances(snap)) == 4  # without Ray, nothing joins the workers

    insts = group_instances(dataclasses.replace(snap, ray=state))
    by_root = {i.root_pid: i for i in insts}
    assert set(by_root) == {500, 700}
    llm = by_root[500]  # the replica process roots it, though it holds no GPU memory itself
    assert sorted(llm.pids) == [501, 600, 601] and llm.per_gpu_mib == {0: 20_500, 1: 20_000}
    assert (llm.key, llm.name, llm.label) == ("ray:500", "llm/LLMServer:qwen", "llm/LLMServer:qwen#abcd1234")
    assert by_root[700].replica is None and by_root[700].label == by_root[700].name
    assert sum(i.total_mib for i in insts) == 41_500  # nothing dropped, nothing counted twice


def test_instances_of_groups_once_per_snapshot_object():
    from vramtop.analysis.instances import instances_of

    source = DemoSource(clock=lambda: 0.0)
    snap = source.sample()
    first = instances_of(snap)
    assert instances_of(snap) is first  # the same tick asked again: no second grouping
    other = source.sample()  # an equal node, another tick
    assert instances_of(other) is not first and instances_of(other) == first
