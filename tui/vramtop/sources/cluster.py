"""Cluster mode: every Ray node's GPUs, as each node's Ray reporter reads them.

For a machine away from the GPU nodes (no NVIDIA driver here) or ``vramtop --cluster``. The
dashboard's node summary carries, per node, what that node's reporter agent read from NVML, so
one dashboard poll is one picture of the whole cluster, with no vramtop on the GPU nodes.

The reporter reads NVML's v1 memory info, which folds the memory the driver reserves into
"used": a GPU here has ``reserved_mib`` 0, ``memory_api`` "ray" and free = total - used, its
"used" being nvidia-smi's used plus the reserved part (a few hundred MiB per GPU).
A PID the reporter lists belongs to its node's machine: only on this machine can the OS say what
it is; elsewhere it stays a PID with its memory and the node it runs on.
"""

from __future__ import annotations

import re
import socket
import time
from collections import Counter
from dataclasses import replace
from typing import Collection

import psutil

from vramtop.ray.model import Actor, Node, RayGpu, RayState
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot, SourceError
from vramtop.sources.processes import ProcessReader

NO_MEMORY = "Ray reported no memory for this GPU"


def node_label(node: Node) -> str:
    """A short name for a node: its hostname, else its IP, else the start of its id."""
    return node.hostname or node.node_ip or node.node_id[:8]


def is_this_machine(node: Node, hostname: str | None, addresses: Collection[str]) -> bool:
    """Whether ``node`` runs here (its IP is one of ``addresses`` or its hostname is ours), so
    that its PIDs are ours too."""
    if node.node_ip and node.node_ip in addresses:
        return True
    return bool(hostname and node.hostname and node.hostname.lower() == hostname.lower())


def local_addresses() -> frozenset[str]:
    """This machine's IP addresses, on every interface."""
    found = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                found.add(a.address.split("%")[0])  # an IPv6 link-local address carries its zone
    return frozenset(found)


def _natural(text: str) -> list:
    """Sort key that puts gpu-2 before gpu-10 and 10.0.0.9 before 10.0.0.10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _labels(nodes: list[Node]) -> dict[str, str]:
    """Node id -> label; nodes sharing a hostname (several Ray nodes on one machine) get the
    start of their id added, so that no two nodes read as one."""
    base = {n.node_id: node_label(n) for n in nodes}
    count = Counter(base.values())
    return {i: f"{b} ({i[:8]})" if count[b] > 1 else b for i, b in base.items()}


def _gpu(index: int, g: RayGpu, label: str) -> GpuInfo:
    # The reporter sends -1 when NVML would not give the utilization.
    util = g.utilization_pct if g.utilization_pct is not None and g.utilization_pct >= 0 else None
    name, uuid = g.name or "GPU", g.uuid or ""
    if g.memory_total_mib is None or g.memory_used_mib is None:
        return GpuInfo(index, name, uuid, 0, 0, 0, 0, util, memory_api="ray", error=NO_MEMORY, node=label)
    total, used = g.memory_total_mib, g.memory_used_mib
    return GpuInfo(index, name, uuid, total, 0, used, max(0, total - used), util, memory_api="ray", node=label)


def cluster_gpus(state: RayState, hostname: str | None = None,
                 addresses: Collection[str] = ()) -> tuple[tuple[GpuInfo, ...], tuple[GpuProcess, ...]]:
    """The GPUs of every node that is not DEAD (head first, then by label) with indices unique
    over the cluster, and their processes. A process on another machine carries the node it runs
    on as its ``hidden_reason`` (and, when it is a live Ray actor, the title Ray gives it); one on
    this machine has none, for the caller to look it up."""
    nodes = sorted((n for n in state.nodes if n.state != "DEAD"),
                   key=lambda n: (not n.is_head, _natural(node_label(n)), n.node_id))
    labels = _labels(nodes)
    actors = {(a.node_id, a.pid): a for a in state.actors if a.pid and a.state == "ALIVE"}
    gpus: list[GpuInfo] = []
    procs: list[GpuProcess] = []
    for node in nodes:
        label = labels[node.node_id]
        here = is_this_machine(node, hostname, addresses)
        for g in sorted(node.gpus, key=lambda g: g.index):
            index = len(gpus)
            gpus.append(_gpu(index, g, label))
            for pid, mib in sorted(g.process_mib.items()):
                actor = None if here else actors.get((node.node_id, pid))
                procs.append(GpuProcess(pid, index, mib, host=_as_ray_names_it(pid, actor) if actor else None,
                                        hidden_reason=None if here else f"on Ray node {label}"))
    return tuple(gpus), tuple(procs)


def _as_ray_names_it(pid: int, actor: Actor) -> HostProcess:
    """A remote process that is a Ray actor, as the OS would title it (``ray::<class>``): a Serve
    replica or a vLLM worker is then recognised for what it is. Owner, CPU and RSS stay unknown."""
    title = f"ray::{actor.class_name}"
    return HostProcess(pid=pid, ppid=None, name=title, title=title, cmdline=(title,))


class ClusterSource:
    """The Ray cluster as one node: a source like ``LiveSource`` whose GPUs come from ``poller``
    (a ``RayPoller``). The dashboard is polled at most every ``min_poll_s`` (Ray's reporters
    refresh their figures every few seconds; a large cluster's dashboard should not answer five
    requests a second for nothing); samples in between reuse the last poll's GPUs and remote
    processes (the same objects, so a tick that compares them finds them unchanged at once) and
    read only this machine's processes again; a local row whose process record did not change is
    last tick's object too, and the whole tuple when none changed."""

    name = "cluster"
    carries_ray = True  # each snapshot holds the Ray state it was built from: no second poll

    def __init__(self, poller, min_poll_s: float = 2.0, clock=time.monotonic, first: RayState | None = None) -> None:
        """``first``: a poll just taken (the caller's check that Ray answers), used as the first one."""
        self._poller = poller
        self._min_poll_s = min_poll_s
        self._clock = clock
        self._last: tuple[float, RayState] | None = (clock(), first) if first is not None else None
        self._processes = ProcessReader()
        self._hostname = socket.gethostname()
        self._addresses = local_addresses()
        self._built: tuple[RayState, tuple[GpuInfo, ...], tuple[GpuProcess, ...]] | None = None
        self._shown: tuple[tuple[GpuProcess, ...], tuple[GpuProcess, ...]] | None = None  # (built, with local hosts)

    def _state(self) -> RayState:
        now = self._clock()
        if self._last is None or now - self._last[0] >= self._min_poll_s:
            self._last = (now, self._poller.poll())
        return self._last[1]

    def sample(self) -> NodeSnapshot:
        state = self._state()
        snapshot = NodeSnapshot(timestamp=time.time(), hostname=state.address, source="cluster", ray=state)
        if state.error is not None:  # old GPU figures would pass for live ones: show none
            return replace(snapshot, errors=(SourceError("ray", state.summary()),))
        if self._built is None or self._built[0] is not state:
            self._built = (state, *cluster_gpus(state, self._hostname, self._addresses))
        _, gpus, procs = self._built
        local = {p.pid for p in procs if p.hidden_reason is None}
        hosts, hidden, ancestors, errors = self._processes.read(local)
        if local:  # the same PID may run on another machine too: only the local rows (no reason yet) are ours
            procs = self._with_hosts(procs, hosts, hidden)
        return replace(snapshot, gpus=gpus, gpu_processes=procs, ancestors=ancestors, errors=tuple(errors))

    def _with_hosts(self, built: tuple[GpuProcess, ...], hosts: dict[int, HostProcess],
                    hidden: dict[int, str]) -> tuple[GpuProcess, ...]:
        """The poll's rows with this machine's process records on its local ones."""
        before = self._shown[1] if self._shown is not None and self._shown[0] is built else None
        rows = []
        for n, p in enumerate(built):
            if p.hidden_reason:
                rows.append(p)
                continue
            host, reason = hosts.get(p.pid), hidden.get(p.pid)
            old = before[n] if before is not None else None
            kept = old is not None and old.host is host and old.hidden_reason == reason
            rows.append(old if kept else replace(p, host=host, hidden_reason=reason))
        shown = before if before is not None and all(a is b for a, b in zip(rows, before)) else tuple(rows)
        self._shown = (built, shown)
        return shown

    def close(self) -> None:
        """Nothing to release: each poll is its own HTTP requests."""
