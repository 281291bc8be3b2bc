"""Which Serve replica a GPU process belongs to: pure, from a ``RayState`` and a ``NodeSnapshot``.

A replica that asks for GPUs itself holds them in its own process or its children (a vLLM
engine started inside the replica). A Ray Serve LLM replica asks for none: vLLM's Ray executor
starts one worker actor per GPU bundle of the replica's placement group, and those workers are
children of the raylet, not of the replica. They are found through the placement group, which
Serve names after the replica actor, and the actors the state API lists in it.

vLLM on Ray without Serve (``--distributed-executor-backend ray``) has no replica: its
``RayWorkerWrapper`` actors are children of the raylet too, and belong to the Ray job whose driver
(the process that called ``ray.init``: vLLM's API server or engine core) the jobs API names. An
actor that is not detached dies with its driver, so it joins the driver's instance; a detached one
(Serve's) outlives it and does not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable, Mapping, TypeVar

from vramtop.ray.model import Job, RayState
from vramtop.snapshot import NodeSnapshot


@dataclass(frozen=True)
class ReplicaLink:
    """``via``: "replica" (the replica process or a descendant) or "placement group" (a worker
    actor of the replica's placement group, or its descendant); ``bundle_index`` for workers."""

    app: str
    deployment: str
    replica_id: str
    via: str
    bundle_index: int | None = None

    @cached_property  # the process table asks for it on every row it draws
    def label(self) -> str:
        return f"{self.app}/{self.deployment}#{self.replica_id}"


_Link = TypeVar("_Link")


@dataclass(frozen=True)
class JobLink:
    """The Ray job a GPU process's actor was created by, and that job's driver."""

    job: Job

    @property
    def driver_pid(self) -> int:
        return self.job.driver_pid


def _local_node_ids(state: RayState, snapshot: NodeSnapshot) -> set[str] | None:
    """The Ray nodes that are this host (PIDs only mean something on their own node); None
    when no node's hostname matches, and then every node's PIDs are taken."""
    ids = {n.node_id for n in state.nodes if n.hostname and n.hostname == snapshot.hostname}
    return ids or None


_Owner = tuple[str | None, int, ReplicaLink, bool]  # (node id, PID, its replica, the replica's own process)


def _replica_processes(state: RayState) -> list[_Owner]:
    """Every replica process and live worker actor of a replica's placement group, in the order
    ``owners`` takes them."""
    found: list[_Owner] = []
    for dep in state.deployments:
        for r in dep.replicas:
            if r.pid:
                found.append((r.node_id, r.pid, ReplicaLink(dep.app, dep.name, r.replica_id, "replica"), True))
            pg = state.placement_group_named(r.actor_name)
            if pg is None:
                continue
            for a in state.actors_in(pg.placement_group_id):
                if a.pid and a.pid != r.pid and a.state == "ALIVE":
                    found.append((a.node_id, a.pid, ReplicaLink(dep.app, dep.name, r.replica_id, "placement group",
                                                                a.bundle_index), False))
    return found


def _by_pid(processes: Iterable[_Owner]) -> dict[int, ReplicaLink]:
    """PID -> replica: a replica's own process wins over a worker actor listed with its PID."""
    found: dict[int, ReplicaLink] = {}
    for _node, pid, link, own in processes:
        if own:
            found[pid] = link
        else:
            found.setdefault(pid, link)
    return found


def owners(state: RayState, snapshot: NodeSnapshot | None = None, node_ids: set[str] | None = None,
           processes: list[_Owner] | None = None) -> dict[int, ReplicaLink]:
    """PID -> replica for the replica processes and their placement groups' worker actors
    (``processes``: ``_replica_processes(state)``, when the caller has it already)."""
    local = node_ids if node_ids is not None else (_local_node_ids(state, snapshot) if snapshot else None)
    every = _replica_processes(state) if processes is None else processes
    return _by_pid(p for p in every if local is None or p[0] in local)


def _node_of_gpu(state: RayState, snapshot: NodeSnapshot) -> dict[int, str | None] | None:
    """Cluster mode (GPUs of several nodes in one snapshot): each GPU's Ray node id, found by its
    UUID in the reporters' lists, since a PID only names a process on its own node. None for a
    snapshot of one machine."""
    if not any(g.node is not None for g in snapshot.gpus):
        return None
    pairs = [(g.uuid, n.node_id) for n in state.nodes for g in n.gpus if g.uuid]
    seen = Counter(uuid for uuid, _ in pairs)
    by_uuid = {uuid: node for uuid, node in pairs if seen[uuid] == 1}  # a UUID twice names no node
    return {g.index: by_uuid.get(g.uuid) for g in snapshot.gpus}


def link_gpu_processes(state: RayState, snapshot: NodeSnapshot,
                       node_ids: set[str] | None = None) -> dict[tuple[int, int], ReplicaLink]:
    """(GPU index, PID) -> the replica it serves, walking each GPU process's parent chain (the
    process itself first) to the nearest replica process or placement-group worker. In cluster
    mode a process is matched only with replicas of its own node (one with no known node, with
    none), and keyed by its GPU too, since two nodes may run the same PID."""
    node_of_gpu = _node_of_gpu(state, snapshot)
    processes = _replica_processes(state)
    if node_of_gpu is None:
        known = owners(state, snapshot, node_ids, processes)
        return _walk(snapshot, lambda _gpu: known)
    on_node: dict[str | None, list[_Owner]] = {}
    for p in processes:  # each node's in the order owners takes them
        on_node.setdefault(p[0], []).append(p)
    per_node: dict[str, dict[int, ReplicaLink]] = {}

    def known_for(gpu_index: int) -> dict[int, ReplicaLink]:
        node = node_of_gpu.get(gpu_index)
        if node is None:
            return {}
        if node not in per_node:
            per_node[node] = _by_pid(on_node.get(node, ()))
        return per_node[node]

    return _walk(snapshot, known_for)


def _walk(snapshot: NodeSnapshot, known_for: Callable[[int], Mapping[int, _Link]]) -> dict[tuple[int, int], _Link]:
    """(GPU index, PID) -> the link of the nearest process in its parent chain (itself first)
    that ``known_for(gpu_index)`` maps."""
    links: dict[tuple[int, int], _Link] = {}
    for proc in snapshot.gpu_processes:
        known = known_for(proc.gpu_index)
        pid: int | None = proc.pid
        seen: set[int] = set()
        while pid is not None and pid not in seen:
            if pid in known:
                links[proc.gpu_index, proc.pid] = known[pid]
                break
            seen.add(pid)
            host = snapshot.host_process(pid)
            pid = host.ppid if host is not None else None
    return links


def job_actors(state: RayState, snapshot: NodeSnapshot | None = None) -> dict[int, JobLink]:
    """PID -> its job for the live actors on this host that are not detached and whose job's
    driver runs on this host too (a PID names a process only on its own node)."""
    local = _local_node_ids(state, snapshot) if snapshot else None
    local_ips = {n.node_ip for n in state.nodes if local is not None and n.node_id in local and n.node_ip}
    running = {}
    for job in state.jobs:
        if local is None or job.driver_node_id in local or (job.driver_node_id is None and job.driver_ip in local_ips):
            running[job.job_id] = job
    found: dict[int, JobLink] = {}
    for a in state.actors:
        job = running.get(a.job_id or "")
        if (job is None or not a.pid or a.pid == job.driver_pid or a.state != "ALIVE" or a.detached is not False
                or (local is not None and a.node_id not in local)):
            continue
        node = state.node(a.node_id)
        if local is None and (node is None or node.node_ip is None or node.node_ip != job.driver_ip):
            continue  # no node is known to be this host: only an actor beside its driver is joined
        found[a.pid] = JobLink(job)
    return found


def link_job_workers(state: RayState, snapshot: NodeSnapshot) -> dict[tuple[int, int], JobLink]:
    """(GPU index, PID) -> the job whose actor it is (or descends from). One machine only: in
    cluster mode the jobs API's driver records name no GPU, so nothing is joined."""
    if _node_of_gpu(state, snapshot) is not None or not state.jobs:
        return {}
    known = job_actors(state, snapshot)
    return _walk(snapshot, lambda _gpu: known)
