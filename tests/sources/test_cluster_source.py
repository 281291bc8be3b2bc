"""Cluster mode's conversion of a Ray state into one snapshot, on hand-built states (no I/O)."""

import os
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from vramtop.analysis.instances import group_instances
from vramtop.analysis.roles import classify
from vramtop.analysis.states import UNKNOWN, gpu_state
from vramtop.ray.link import link_gpu_processes
from vramtop.ray.model import NOT_FOUND, OK, UNREACHABLE, Actor, Deployment, Node, RayGpu, RayState, Replica
from vramtop.snapshot import NodeSnapshot, SourceError
from vramtop.sources.cluster import NO_MEMORY, ClusterSource, cluster_gpus, is_this_machine, node_label
from vramtop.actions import plan_for_instance, plan_for_process

H100 = 81_559


def gpu(index, used=None, total=H100, util=50, procs=None, name="NVIDIA H100 80GB HBM3"):
    return RayGpu(index=index, name=name, uuid=f"GPU-{index}", memory_used_mib=used, memory_total_mib=total,
                  utilization_pct=util, process_mib=procs or {})


def node(node_id, hostname=None, ip=None, head=False, state="ALIVE", gpus=()):
    return Node(node_id=node_id, node_ip=ip, hostname=hostname, is_head=head, state=state, gpus=tuple(gpus))


def ray_state(*nodes, status=OK, error=None):
    return RayState(address="http://ray-head:8265", status=status, checked_at=100.0, error=error,
                    last_success=None if error else 100.0, ray_version="2.60.0", nodes=nodes)


CLUSTER = ray_state(
    node("c" * 32, "gpu-10", "10.0.0.10", gpus=[gpu(1, 10, procs={77: 8}), gpu(0, 20, procs={77: 4, 78: 6})]),
    node("d" * 32, None, "10.0.0.9", gpus=[gpu(0, 30)]),
    node("a" * 32, "gpu-2", "10.0.0.2", gpus=[gpu(0, 40, total=None)]),
    node("e" * 32, "gpu-1", "10.0.0.1", state="DEAD", gpus=[gpu(0, 50)]),
    node("b" * 32, "head", "10.0.0.3", head=True),  # the head has no GPU
    node("f" * 32, "gpu-3", "10.0.0.33", gpus=[gpu(0, None, total=None, util=-1)]),
)


def test_head_first_then_by_label_with_indices_unique_over_the_cluster():
    gpus, _ = cluster_gpus(CLUSTER)
    # the head has no GPUs; 10.0.0.9 < gpu-2 < gpu-3 < gpu-10 (numbers compare as numbers); the dead node is gone
    assert [(g.node, g.uuid) for g in gpus] == [
        ("10.0.0.9", "GPU-0"), ("gpu-2", "GPU-0"), ("gpu-3", "GPU-0"), ("gpu-10", "GPU-0"), ("gpu-10", "GPU-1")]
    assert [g.index for g in gpus] == [0, 1, 2, 3, 4]
    assert all(g.node != "gpu-1" for g in gpus)


def test_memory_is_ray_v1_used_with_nothing_reserved_and_free_the_rest():
    gpus, _ = cluster_gpus(CLUSTER)
    g = gpus[3]
    assert (g.total_mib, g.used_mib, g.reserved_mib, g.free_mib) == (H100, 20, 0, H100 - 20)
    assert g.memory_api == "ray" and g.utilization_pct == 50 and not g.lost and g.error is None
    assert g.name == "NVIDIA H100 80GB HBM3"


def test_a_gpu_without_memory_figures_says_so_and_is_not_lost():
    gpus, _ = cluster_gpus(CLUSTER)
    for g in gpus[1:3]:
        assert not g.lost and g.error == NO_MEMORY
        assert (g.total_mib, g.used_mib, g.free_mib) == (0, 0, 0)
    assert gpus[2].utilization_pct is None  # the reporter's -1: NVML gave none


def test_processes_carry_the_cluster_index_and_the_node_they_run_on():
    _, procs = cluster_gpus(CLUSTER)
    assert [(p.pid, p.gpu_index, p.used_mib, p.hidden_reason) for p in procs] == [
        (77, 3, 4, "on Ray node gpu-10"), (78, 3, 6, "on Ray node gpu-10"), (77, 4, 8, "on Ray node gpu-10")]
    assert all(p.host is None for p in procs)


def test_labels_hostname_then_ip_then_id_and_shared_hostnames_made_distinct():
    assert node_label(node("0123456789abcdef", "gpu-a", "10.0.0.1")) == "gpu-a"
    assert node_label(node("0123456789abcdef", None, "10.0.0.1")) == "10.0.0.1"
    assert node_label(node("0123456789abcdef")) == "01234567"
    two_on_one_machine = ray_state(node("11111111aaaa", "box", "10.0.0.5", head=True, gpus=[gpu(0, 1)]),
                                   node("22222222bbbb", "box", "10.0.0.5", gpus=[gpu(0, 2)]))
    gpus, _ = cluster_gpus(two_on_one_machine)
    assert [g.node for g in gpus] == ["box (11111111)", "box (22222222)"]


def test_this_machine_by_ip_or_hostname():
    n = node("x", "GPU-Node-1", "10.0.0.7")
    assert is_this_machine(n, "other", {"10.0.0.7", "127.0.0.1"})
    assert is_this_machine(n, "gpu-node-1", {"192.168.1.4"})
    assert not is_this_machine(n, "laptop", {"192.168.1.4", "127.0.0.1"})
    assert not is_this_machine(node("y"), None, set())


def test_processes_of_this_machine_are_left_to_look_up():
    _, procs = cluster_gpus(CLUSTER, hostname="gpu-10", addresses={"127.0.0.1"})
    assert {p.hidden_reason for p in procs} == {None}


class FakePoller:
    def __init__(self, state):
        self.state = state
        self.polls = 0

    def poll(self):
        self.polls += 1
        return self.state


def test_ray_down_is_no_gpus_and_one_ray_error():
    for state in (ray_state(status=NOT_FOUND, error="connection refused"),
                  # an outage keeps the last good nodes in the state; their figures are not shown as live
                  ray_state(*CLUSTER.nodes, status=UNREACHABLE, error="connection refused")):
        snap = ClusterSource(FakePoller(state)).sample()
        assert snap.gpus == () and snap.gpu_processes == ()
        assert snap.errors == (SourceError("ray", state.summary()),)
        assert snap.ray is state and snap.source == "cluster" and snap.hostname == "http://ray-head:8265"


def test_one_poll_per_sample_and_a_local_pid_is_looked_up():
    here = ray_state(node("h" * 32, socket.gethostname(), "203.0.113.250", head=True,
                          gpus=[gpu(0, 1_000, procs={os.getpid(): 900})]),
                     node("r" * 32, "remote-gpu", "203.0.113.251", gpus=[gpu(0, 2_000, procs={os.getpid(): 1_900})]))
    poller = FakePoller(here)
    source = ClusterSource(poller)
    snap = source.sample()
    assert poller.polls == 1 and snap.ray is here and snap.errors == ()
    mine, theirs = snap.gpu_processes
    assert mine.host is not None and mine.host.pid == os.getpid() and mine.hidden_reason is None
    assert theirs.host is None and theirs.hidden_reason == "on Ray node remote-gpu"  # same PID, another machine
    assert snap.total_mib == 2 * H100 and snap.used_mib == 3_000 and snap.free_mib == 2 * H100 - 3_000
    assert ClusterSource.carries_ray is True
    source.close()


@pytest.mark.parametrize("nodes", [(), (node("h" * 32, "head", "10.0.0.1", head=True),)])
def test_a_cluster_without_gpus_is_an_empty_picture_without_error(nodes):
    snap = ClusterSource(FakePoller(ray_state(*nodes))).sample()
    assert snap.gpus == () and snap.errors == ()


def test_the_dashboard_is_polled_at_most_every_min_poll_s():
    poller, now = FakePoller(CLUSTER), [0.0]
    source = ClusterSource(poller, min_poll_s=2.0, clock=lambda: now[0])
    for t in (0.0, 0.5, 1.9, 2.0, 3.0, 4.1):
        now[0] = t
        snap = source.sample()
        assert snap.gpus  # every sample is a full picture, polled or not
    assert poller.polls == 3  # at 0.0, 2.0 and 4.1


def test_between_polls_remote_rows_are_kept_and_this_machines_processes_are_read_again():
    """Samples between polls reuse the poll's GPUs and remote rows, so a tick finds them
    unchanged at once; a process here is still looked up every sample (one that ended shows so)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = ray_state(node("h" * 32, socket.gethostname(), "203.0.113.250", head=True,
                               gpus=[gpu(0, 1_000, procs={child.pid: 900})]),
                          node("r" * 32, "remote-gpu", "203.0.113.251", gpus=[gpu(0, 2_000, procs={child.pid: 1_900})]))
        poller, now = FakePoller(state), [0.0]
        source = ClusterSource(poller, min_poll_s=2.0, clock=lambda: now[0])
        first = source.sample()
        assert first.gpu_processes[0].host is not None and first.gpu_processes[0].host.pid == child.pid
        child.kill()
        child.wait()
        now[0] = 1.0
        second = source.sample()
        assert poller.polls == 1 and second.gpus is first.gpus and second.gpu_processes[1] is first.gpu_processes[1]
        assert second.gpu_processes[0].host is None and second.gpu_processes[0].hidden_reason is not None
        poller.state = replace(state, nodes=(state.nodes[0], node("r" * 32, "remote-gpu", "203.0.113.251",
                                                                   gpus=[gpu(0, 3_000, procs={child.pid: 2_900})])))
        now[0] = 2.0
        third = source.sample()
        assert poller.polls == 2 and third.gpus[1].used_mib == 3_000 and third.gpu_processes[1].used_mib == 2_900
    finally:
        child.kill()
        child.wait()


def test_between_polls_an_unchanged_local_process_keeps_its_row_and_the_rows_their_tuple():
    """A sleeping local process reads the same from one sample to the next: its row, and so the
    whole tuple, are the last sample's objects (the history and the tick compare by identity
    first); once it has ended, its row changes and says why."""
    child = subprocess.Popen(["sleep", "60"])  # its CPU and RSS stay put
    try:
        state = ray_state(node("h" * 32, socket.gethostname(), "203.0.113.250", head=True,
                               gpus=[gpu(0, 1_000, procs={child.pid: 900})]),
                          node("r" * 32, "remote-gpu", "203.0.113.251", gpus=[gpu(0, 2_000, procs={4242: 1_900})]))
        poller, now = FakePoller(state), [0.0]
        source = ClusterSource(poller, min_poll_s=60.0, clock=lambda: now[0])
        source.sample()  # the first read of a process knows no CPU % yet
        time.sleep(0.3)
        first = source.sample()
        time.sleep(0.3)
        second = source.sample()
        local = next(p for p in second.gpu_processes if p.pid == child.pid)
        assert local.host is not None and local.host.cpu_pct == 0.0  # asleep: nothing moved
        assert second.gpu_processes is first.gpu_processes
        child.kill()
        child.wait()
        third = source.sample()
        assert third.gpu_processes is not first.gpu_processes
        gone = next(p for p in third.gpu_processes if p.pid == child.pid)
        assert gone.host is None and gone.hidden_reason is not None
        assert third.gpu_processes[1] is first.gpu_processes[1]  # the remote row, as polled
    finally:
        child.kill()
        child.wait()


def test_in_cluster_mode_a_pid_links_only_to_a_replica_of_its_own_node():
    def on(node_id, host, pid):
        return node(node_id, host, None, gpus=[RayGpu(0, "NVIDIA H100", f"GPU-{node_id[:4]}", 1_000, H100, 0, {pid: 900})])

    replica = Replica("r1", "RUNNING", "SERVE_REPLICA::app#D#r1", "a1", 4242, "a" * 32)
    state = RayState(address="http://ray-head:8265", status=OK, checked_at=1.0, last_success=1.0,
                     nodes=(on("a" * 32, "gpu-a", 4242), on("b" * 32, "gpu-b", 5151)),
                     deployments=(Deployment("app", "D", replicas=(replica,)),))
    gpus, procs = cluster_gpus(state)
    snap = NodeSnapshot(timestamp=1.0, hostname="http://ray-head:8265", source="cluster", gpus=gpus, gpu_processes=procs)
    assert set(link_gpu_processes(state, snap)) == {(0, 4242)}
    # the same PID on the other node is another process: no link
    other = replace(state, nodes=(on("a" * 32, "gpu-a", 7), on("b" * 32, "gpu-b", 4242)))
    gpus, procs = cluster_gpus(other)
    snap = replace(snap, gpus=gpus, gpu_processes=procs)
    assert link_gpu_processes(other, snap) == {}


def test_a_gpu_without_memory_figures_reads_unknown_not_critical():
    gpus, _ = cluster_gpus(CLUSTER)
    assert [gpu_state(g) for g in gpus if g.error == NO_MEMORY] == [UNKNOWN, UNKNOWN]


def _replica_on_remote_node():
    remote = node("r" * 32, "gpu-r", "203.0.113.251",
                  gpus=[RayGpu(0, "NVIDIA H100", "GPU-r0", 30_000, H100, 50, {os.getpid(): 29_000})])
    actor = Actor("act1", "ServeReplica:medgemma:VLLMDeployment", state="ALIVE", pid=os.getpid(), node_id="r" * 32)
    return replace(ray_state(remote), actors=(actor,))


def test_a_remote_ray_actor_is_titled_as_ray_titles_it_and_stays_remote():
    state = _replica_on_remote_node()
    (proc,) = cluster_gpus(state)[1]
    assert proc.host.title == "ray::ServeReplica:medgemma:VLLMDeployment" and proc.host.user is None
    assert proc.hidden_reason == "on Ray node gpu-r"
    assert classify(proc.host).kind == "replica"


def test_a_process_on_another_node_is_never_signalled_from_here():
    """Its PID is this test's own: signalling it here would hit the wrong process."""
    snap = ClusterSource(FakePoller(_replica_on_remote_node())).sample()
    plan = plan_for_process(snap, os.getpid())
    assert plan.term == () and plan.refusal == f"pid {os.getpid()} runs on Ray node gpu-r, not on this machine: stop it there"
    (inst,) = group_instances(snap)
    assert plan_for_instance(snap, inst).refusal == plan.refusal


def test_a_poll_just_taken_is_the_first_picture_not_polled_again():
    poller, now = FakePoller(CLUSTER), [0.0]
    source = ClusterSource(poller, clock=lambda: now[0], first=CLUSTER)
    assert source.sample().ray is CLUSTER and poller.polls == 0
    now[0] = 2.0
    source.sample()
    assert poller.polls == 1


def test_the_same_pid_on_two_nodes_is_two_instances_each_keyed_by_its_node():
    """PIDs repeat across machines: grouping, the table's instance column and the keys the
    what-if panel and the stop action use must not merge two nodes' processes."""
    from vramtop.analysis.instances import group_instances, instance_of
    from vramtop.widgets.process_rows import build_rows

    def on(node_id, host, pid, mib):
        return node(node_id, host, None, gpus=[RayGpu(0, "NVIDIA H100", f"GPU-{node_id[:4]}", mib + 500, H100, 0, {pid: mib})])

    state = RayState(address="http://ray-head:8265", status=OK, checked_at=1.0, last_success=1.0,
                     nodes=(on("a" * 32, "gpu-a", 4242, 30_000), on("b" * 32, "gpu-b", 4242, 50_000)))
    gpus, procs = cluster_gpus(state)
    snap = NodeSnapshot(timestamp=1.0, hostname="http://ray-head:8265", source="cluster", gpus=gpus, gpu_processes=procs)
    insts = group_instances(snap)
    assert sorted((i.node, i.total_mib) for i in insts) == [("gpu-a", 30_000), ("gpu-b", 50_000)]
    assert len({i.key for i in insts}) == 2 and all(i.key.endswith(f"@{i.node}") for i in insts)
    owner = instance_of(insts)
    assert owner[0, 4242].node == "gpu-a" and owner[1, 4242].node == "gpu-b"
    rows = [r for r in build_rows(snap, insts) if r.kind == "process"]
    assert sorted((r.cells["gpu"], r.instance_key) for r in rows) == sorted((str(g), owner[g, 4242].key) for g in (0, 1))
