"""Group GPU processes into serving instances: the processes that start, serve and stop together.

A vLLM engine with tensor parallelism is several processes (``VLLM::EngineCore`` and its
``VLLM::Worker_TP0..N``), often under a Ray Serve replica; what an operator frees by stopping it
is the memory of all of them. The outermost serving process in a GPU process's ancestry is the
instance; a process with no serving ancestor is an instance of its own. Where the snapshot carries
Ray state, processes that Ray places in one Serve replica join that replica's instance even when
no ancestry joins them: Ray Serve LLM's vLLM workers are actors of the replica's placement group,
children of the raylet, and stop when the replica does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vramtop.analysis import roles
from vramtop.analysis.roles import Role
from vramtop.ray.link import ReplicaLink, link_gpu_processes
from vramtop.ray.model import RayState
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot

# How strongly a role claims to be the instance root; the outermost of the strongest wins.
_ROOT_RANK = {
    ("ray", "replica"): 4,
    ("vllm", "api-server"): 3,
    ("vllm", "engine"): 2,
}


@dataclass(frozen=True)
class Member:
    """One process of an instance, with its memory on each GPU it uses."""

    pid: int
    role: Role
    per_gpu_mib: Mapping[int, int]
    host: HostProcess | None = None


@dataclass(frozen=True)
class Instance:
    """A serving instance: ``key`` is stable across ticks (engine and root PID, and in cluster
    mode the Ray node, since PIDs repeat across machines); ``replica``, the Ray Serve replica it
    is, where Ray says so."""

    key: str
    engine: str
    name: str
    root_pid: int
    members: tuple[Member, ...]
    per_gpu_mib: Mapping[int, int] = field(default_factory=dict)
    tp_size: int | None = None
    unknown_mib: bool = False  # some member's memory is not reported by the driver
    replica: ReplicaLink | None = None
    node: str | None = None  # cluster mode: the Ray node its processes run on

    @property
    def label(self) -> str:
        """The name, with the replica's id where Ray knows it ("app/deployment#id")."""
        return self.replica.label if self.replica is not None else self.name

    @property
    def total_mib(self) -> int:
        return sum(self.per_gpu_mib.values())

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(m.pid for m in self.members)

    @property
    def gpu_indices(self) -> tuple[int, ...]:
        return tuple(sorted(self.per_gpu_mib))


def _chain(snapshot: NodeSnapshot, host: HostProcess | None) -> list[HostProcess]:
    """``host`` and its known ancestors, innermost first."""
    out: list[HostProcess] = []
    seen: set[int] = set()
    while host is not None and host.pid not in seen:
        out.append(host)
        seen.add(host.pid)
        host = snapshot.ancestors.get(host.ppid) if host.ppid else None
    return out


def served_model(argv: list[str]) -> str | None:
    """The model a vLLM command line serves (``vllm serve M`` or ``--model M``)."""
    for i, a in enumerate(argv):
        if a == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--model="):
            return a.split("=", 1)[1]
        if a == "serve" and i > 0 and argv[i - 1].endswith("vllm") and i + 1 < len(argv):
            if not argv[i + 1].startswith("-"):
                return argv[i + 1]
    return None


def _rank(role: Role) -> int:
    return _ROOT_RANK.get((role.engine, role.kind), 0)


def _root(snapshot: NodeSnapshot, proc: GpuProcess) -> tuple[HostProcess | None, Role]:
    chain = _chain(snapshot, proc.host)
    best: tuple[int, HostProcess | None, Role] = (0, proc.host, roles.classify(proc.host))
    for host in chain:
        role = roles.classify(host)
        rank = _rank(role)
        if rank and rank >= best[0]:
            best = (rank, host, role)
    return best[1], best[2]


def _name(root: HostProcess | None, role: Role, members: list[Member], pid: int,
          replica: ReplicaLink | None) -> str:
    if replica is not None:
        return f"{replica.app}/{replica.deployment}"
    if role.engine == roles.RAY and role.kind == "replica":
        return f"{role.app}/{role.deployment}"
    if role.engine == roles.VLLM:
        for m in members:
            if m.host and (model := served_model(list(m.host.cmdline))):
                return f"vLLM {model}"
        if root and (model := served_model(list(root.cmdline))):
            return f"vLLM {model}"
        return f"vLLM pid {pid}"
    if root is None:
        return f"pid {pid} (not visible)"
    return f"{role.label or root.name} pid {pid}"


def _replica_links(snapshot: NodeSnapshot) -> dict[tuple[int, int], ReplicaLink]:
    state = snapshot.ray
    if not isinstance(state, RayState) or not state.deployments:
        return {}
    return link_gpu_processes(state, snapshot)


@dataclass
class _Group:
    root: HostProcess | None
    role: Role
    replica: ReplicaLink | None
    node: str | None
    per_member: dict[int, dict[int, int]] = field(default_factory=dict)
    hosts: dict[int, HostProcess | None] = field(default_factory=dict)  # per group: PIDs repeat across nodes
    unknown: bool = False



def group_instances(snapshot: NodeSnapshot) -> tuple[Instance, ...]:
    """Every GPU process in exactly one instance, largest instance first."""
    links = _replica_links(snapshot)
    node_of_gpu = {g.index: g.node for g in snapshot.gpus}
    groups: dict[tuple[str | None, int] | str, _Group] = {}
    for proc in snapshot.gpu_processes:
        root, root_role = _root(snapshot, proc)
        replica = links.get((proc.gpu_index, proc.pid))
        node = node_of_gpu.get(proc.gpu_index)
        group_id = replica.label if replica is not None else (node, root.pid if root is not None else proc.pid)
        group = groups.get(group_id)
        if group is None:
            group = groups[group_id] = _Group(root, root_role, replica, node)
        elif _rank(root_role) > _rank(group.role):
            group.root, group.role = root, root_role  # the replica process itself, over its workers
        per_gpu = group.per_member.setdefault(proc.pid, {})
        per_gpu[proc.gpu_index] = per_gpu.get(proc.gpu_index, 0) + (proc.used_mib or 0)
        group.hosts[proc.pid] = proc.host
        group.unknown = group.unknown or proc.used_mib is None

    out: list[Instance] = []
    for group_id, g in groups.items():
        root_pid = g.root.pid if g.root is not None else (group_id[1] if isinstance(group_id, tuple) else min(g.per_member))
        members = [
            Member(pid, roles.classify(g.hosts[pid]), per_gpu, g.hosts[pid])
            for pid, per_gpu in sorted(g.per_member.items())
        ]
        per_gpu_total: dict[int, int] = {}
        for m in members:
            for gpu, mib in m.per_gpu_mib.items():
                per_gpu_total[gpu] = per_gpu_total.get(gpu, 0) + mib
        tp_ranks = {m.role.tp_rank for m in members if m.role.tp_rank is not None}
        engine = roles.VLLM if any(m.role.engine == roles.VLLM for m in members) else g.role.engine
        out.append(
            Instance(
                key=f"{roles.RAY if g.replica is not None else g.role.engine}:{root_pid}"
                    + (f"@{g.node}" if g.node is not None else ""),
                engine=engine,
                name=_name(g.root, g.role, members, root_pid, g.replica),
                root_pid=root_pid,
                members=tuple(members),
                per_gpu_mib=dict(sorted(per_gpu_total.items())),
                tp_size=len(tp_ranks) if tp_ranks else None,
                unknown_mib=g.unknown,
                replica=g.replica,
                node=g.node,
            )
        )
    out.sort(key=lambda i: (-i.total_mib, i.key))
    return tuple(out)


def instance_of(instances: tuple[Instance, ...]) -> dict[tuple[int, int], Instance]:
    """(GPU index, PID) -> its instance, for the process table's instance column (keyed by GPU
    too: in cluster mode two machines may run the same PID)."""
    return {(gpu, m.pid): inst for inst in instances for m in inst.members for gpu in m.per_gpu_mib}
