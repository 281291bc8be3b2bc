"""Group GPU processes into serving instances: the processes that start, serve and stop together.

A vLLM engine with tensor parallelism is several processes (``VLLM::EngineCore`` and its
``VLLM::Worker_TP0..N``), often under a Ray Serve replica; what an operator frees by stopping it
is the memory of all of them. Each GPU process's chain of parents (the process itself first) is
walked through every process the snapshot knows, GPU processes included, since a parent often
holds GPU memory itself (a Serve replica's CUDA contexts, vLLM V0's main process as TP rank 0, an
engine core with TP=1). The strongest serving root in the chain (replica over launcher over API
server over engine core), the outermost of equals, is the instance. A process with no such root
is an instance of its own and says why: nothing is guessed into a group it may not belong to.
Where the snapshot carries Ray state, processes that Ray places in one Serve replica join that
replica's instance even when no ancestry joins them: Ray Serve LLM's vLLM workers are actors of
the replica's placement group, children of the raylet, and stop when the replica does. vLLM on
Ray without Serve is joined the same way through the Ray job: its workers are the job's actors,
and join the instance of the job's driver (its API server or engine core), which Ray names.

Grouping is incremental: how processes group (an instance's shape: roots, roles, names, sizes)
changes only with the processes listed, their parents and titles, the GPUs and Ray's state, so a
tick where those are as before only adds memory up again, and the second ask about a tick (the
telemetry's own snapshot of it) rebuilds nothing.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field, replace
from operator import is_, itemgetter
from typing import TYPE_CHECKING, Mapping

from vramtop.analysis import roles
from vramtop.analysis.roles import Role
from vramtop.frozen import fresh
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot, slice_label

if TYPE_CHECKING:  # Ray's linking is imported only where a snapshot carries Ray state
    from vramtop.ray.link import JobLink, ReplicaLink
    from vramtop.ray.model import RayState

# How strongly a role claims to be the instance root; the outermost of the strongest wins.
_ROOT_RANK = {
    ("ray", "replica"): 5,
    (roles.SGLANG, "launcher"): 4,  # the SGLang router that starts one server per DP rank
    (roles.TGI, "launcher"): 4,
    (roles.TORCHRUN, "launcher"): 4,
    (roles.MPI, "launcher"): 4,
    (roles.VLLM, "api-server"): 3,
    (roles.SGLANG, "api-server"): 3,
    (roles.TRTLLM, "api-server"): 3,
    (roles.VLLM, "engine"): 2,
    (roles.SGLANG, "engine"): 2,
}

# Parallel sizes as each engine's command line spells them.
_SIZE_FLAGS = {
    "tp": ("--tensor-parallel-size", "-tp", "--tp-size", "--tp", "--tp_size", "--num-shard"),
    "pp": ("--pipeline-parallel-size", "-pp", "--pp-size", "--pp", "--pp_size"),
    "dp": ("--data-parallel-size", "-dp", "--dp-size", "--dp", "--dp_size"),
}


@dataclass(frozen=True)
class Member:
    """One process of an instance, with its memory on each GPU it uses (and, keyed "0" or
    "0:1", on each whole GPU or MIG slice)."""

    pid: int
    role: Role
    per_gpu_mib: Mapping[int, int]
    host: HostProcess | None = None
    per_slice_mib: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    """A serving instance: ``key`` is stable across ticks (engine and root PID, and in cluster
    mode the Ray node, since PIDs repeat across machines); ``replica``, the Ray Serve replica it
    is, where Ray says so; ``api_pid``, the process that serves its HTTP API where one is among
    its processes and their parents; ``note``, why it stands alone where no serving root joins it."""

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
    pp_size: int | None = None
    dp_size: int | None = None
    api_pid: int | None = None
    note: str | None = None
    job: JobLink | None = None  # the Ray job whose driver its Ray workers were joined to
    # Memory per whole GPU ("0") or MIG slice ("0:1"), GPU then slice order: ``per_gpu_mib``
    # keeps the parent GPU as key (the fit engine and the bars add slices up per GPU).
    per_slice_mib: Mapping[str, int] = field(default_factory=dict)

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

    @property
    def on_slices(self) -> bool:
        """Some of its memory is on MIG slices."""
        return any(":" in label for label in self.per_slice_mib)

    @property
    def where(self) -> str:
        """Where it runs, for labels: "GPU 0", "GPUs 0,1", "GPU 0:1" (a MIG slice)."""
        places = list(self.per_slice_mib) if self.on_slices else [str(g) for g in self.gpu_indices]
        return f"GPU {places[0]}" if len(places) == 1 else f"GPUs {','.join(places)}"


def known_hosts(snapshot: NodeSnapshot) -> dict[int, HostProcess]:
    """Every process the snapshot has a host record of: ancestors and GPU processes alike."""
    hosts = dict(snapshot.ancestors)
    hosts.update((p.pid, p.host) for p in snapshot.gpu_processes if p.host is not None)
    return hosts


def _chain(hosts: Mapping[int, HostProcess], host: HostProcess | None) -> list[HostProcess]:
    """``host`` and its known ancestors, innermost first."""
    out: list[HostProcess] = []
    seen: set[int] = set()
    while host is not None and host.pid not in seen:
        out.append(host)
        seen.add(host.pid)
        host = hosts.get(host.ppid) if host.ppid else None
    return out


def served_model(argv: list[str]) -> str | None:
    """The model a serving command line names (``vllm serve M``, ``--model M``, SGLang's
    ``--model-path M``, TGI's ``--model-id M``)."""
    for i, a in enumerate(argv):
        for flag in ("--model", "--model-path", "--model-id"):
            if a == flag and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        if a == "serve" and i > 0 and argv[i - 1].endswith(("vllm", "trtllm-serve", "sglang")) and i + 1 < len(argv):
            if not argv[i + 1].startswith("-"):
                return argv[i + 1]
        if a.endswith("trtllm-serve") and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            return argv[i + 1] if argv[i + 1] != "serve" else None
    return None


def _argv(host: HostProcess) -> list[str]:
    """A title rewritten by setproctitle reads back as one string: split it as ps shows it."""
    args = list(host.cmdline)
    if len(args) == 1 or "" in args:
        return " ".join(a for a in args if a).split()
    return args


def _flag_int(argv: list[str], names: tuple[str, ...]) -> int | None:
    for i, a in enumerate(argv):
        for name in names:
            value = argv[i + 1] if a == name and i + 1 < len(argv) else (
                a.split("=", 1)[1] if a.startswith(name + "=") else None)
            if value is not None and re.fullmatch(r"\d{1,4}", value) and int(value) > 0:
                return int(value)
    return None


def _rank(role: Role) -> int:
    return _ROOT_RANK.get((role.engine, role.kind), 0)


def _root(hosts: Mapping[int, HostProcess], proc: GpuProcess) -> tuple[HostProcess | None, Role, list[HostProcess]]:
    return _root_of(hosts, proc.host)


def _root_of(hosts: Mapping[int, HostProcess], start: HostProcess | None) -> tuple[HostProcess | None, Role, list[HostProcess]]:
    chain = _chain(hosts, start)
    best: tuple[int, HostProcess | None, Role] = (0, start, roles.classify(start))
    for host in chain:
        role = roles.classify(host)
        rank = _rank(role)
        if rank and rank >= best[0]:
            best = (rank, host, role)
    return best[1], best[2], chain


def _alone_note(role: Role) -> str | None:
    """Why a process with no serving root above it is an instance of its own."""
    if role.engine == roles.UNKNOWN:
        return "not visible from here: its engine cannot be told"
    if role.engine == roles.OTHER:
        return "engine not recognised: an instance of its own"
    if role.engine == roles.RAY:
        return ("a Ray process that no Serve replica claims (through its parents or placement group) and no job"
                " driver on this host owns: an instance of its own")
    if role.kind in ("worker", "engine", "process"):
        return f"no {role.engine} server or launcher found above it: an instance of its own"
    return None


def _name(root: HostProcess | None, role: Role, engine: str, members: list[Member], pid: int,
          replica: ReplicaLink | None, job: JobLink | None = None) -> str:
    if replica is not None:
        return f"{replica.app}/{replica.deployment}"
    if root is None and job is not None:
        model = served_model(job.job.entrypoint.split())
        return f"Ray job {job.job.job_id} (driver pid {pid}" + (f", {model})" if model else ")")
    if role.engine == roles.RAY and role.kind == "replica":
        return f"{role.app}/{role.deployment}"
    if root is None:
        return f"pid {pid} (not visible)"
    pretty = {roles.VLLM: "vLLM", roles.SGLANG: "SGLang", roles.TGI: "TGI", roles.TRTLLM: "TensorRT-LLM"}
    if engine in pretty:
        for host in [root] + [m.host for m in members if m.host is not None]:
            if model := served_model(_argv(host)):
                return f"{pretty[engine]} {model}"
        return f"{pretty[engine]} pid {pid}"
    return f"{role.label or root.name} pid {pid}"


def _ray_state(snapshot: NodeSnapshot) -> RayState | None:
    """The snapshot's Ray state; Ray's model is imported only where there is one (``--once`` on
    a node without Ray pays for none of it)."""
    if snapshot.ray is None:
        return None
    from vramtop.ray.model import RayState

    return snapshot.ray if isinstance(snapshot.ray, RayState) else None


def _replica_links(snapshot: NodeSnapshot) -> dict[tuple[int, int], ReplicaLink]:
    state = _ray_state(snapshot)
    if state is None or not state.deployments:
        return {}
    from vramtop.ray.link import link_gpu_processes

    return link_gpu_processes(state, snapshot)


def _job_links(snapshot: NodeSnapshot) -> dict[tuple[int, int], JobLink]:
    state = _ray_state(snapshot)
    if state is None or not state.jobs:
        return {}
    from vramtop.ray.link import link_job_workers

    return link_job_workers(state, snapshot)


def _driver_root(hosts: Mapping[int, HostProcess], job: JobLink) -> tuple[HostProcess | None, Role]:
    """The serving root above a job's driver where the snapshot knows the driver's process (it
    holds GPU memory, or is a GPU process's parent); else no root, and the role the driver's
    command line as Ray recorded it gives (only to name the engine: Ray's text, not the OS's)."""
    driver = hosts.get(job.driver_pid)
    if driver is not None:
        root, role, _ = _root_of(hosts, driver)
        return root, role
    line = job.job.entrypoint
    argv = tuple(line.split())
    return None, roles.classify(HostProcess(job.driver_pid, None, argv[0] if argv else "", line, argv))


@dataclass
class _Group:
    root: HostProcess | None
    role: Role
    replica: ReplicaLink | None
    node: str | None
    hosts: dict[int, HostProcess | None] = field(default_factory=dict)  # per group: PIDs repeat across nodes
    chains: list[list[HostProcess]] = field(default_factory=list)
    job: JobLink | None = None


@dataclass(frozen=True)
class _Shape:
    """What an instance's processes, their parents and Ray's state decide: everything but memory."""

    key: str
    engine: str
    name: str
    root_pid: int
    roles: Mapping[int, Role]
    sizes: Mapping[str, int | None]
    replica: ReplicaLink | None
    node: str | None
    api_pid: int | None
    note: str | None
    job: JobLink | None


def _member_roles(g: _Group, root_pid: int) -> dict[int, Role]:
    """Each member's role; vLLM V0's ranks, which no title names, from its process tree: the main
    process is TP rank 0 and holds memory, and its children (started in rank order by
    ``vllm/executor/multiproc_gpu_executor.py``) are ranks 1..N."""
    out = {pid: roles.classify(host) for pid, host in g.hosts.items()}
    root_role = roles.classify(g.root)
    if _rank(root_role):
        for pid, role in out.items():
            # Below a server or launcher, a GPU process with no title of its own (a forked or
            # spawned child keeps its parent's command line, or multiprocessing's) is one of its
            # GPU workers; which rank, nothing says.
            untitled = role.engine == roles.OTHER or (
                pid != root_pid and role.kind in ("api-server", "launcher") and g.hosts[pid] is not None
                and g.root is not None and g.hosts[pid].cmdline == g.root.cmdline)
            if untitled:
                out[pid] = Role(root_role.engine if root_role.engine != roles.RAY else role.engine, "worker", "worker")
    v0 = (root_role.engine == roles.VLLM and root_role.kind == "api-server" and root_pid in g.hosts
          and not any(r.kind == "engine" or r.tp_rank is not None for r in out.values())
          and any(r.label == "worker" for pid, r in out.items() if pid != root_pid))
    if not v0:
        return out
    out[root_pid] = replace(root_role, label="APIServer+Worker_TP0", tp_rank=0)
    children = sorted((p for p in g.hosts if p != root_pid),
                      key=lambda p: ((g.hosts[p].create_time or 0) if g.hosts[p] else 0, p))
    for rank, pid in enumerate(children, start=1):
        out[pid] = Role(roles.VLLM, "worker", f"VllmWorkerProcess_TP{rank}", tp_rank=rank)
    return out


def _sizes(members: list[Member], argvs: list[list[str]]) -> dict[str, int | None]:
    """TP/PP/DP sizes from the ranks the members' titles give, else from the command lines."""
    out: dict[str, int | None] = {}
    for axis, attr in (("tp", "tp_rank"), ("pp", "pp_rank"), ("dp", "dp_rank")):
        ranks = {getattr(m.role, attr) for m in members if getattr(m.role, attr) is not None}
        out[axis] = max(len(ranks), max(ranks) + 1) if ranks else next(
            (n for argv in argvs if (n := _flag_int(argv, _SIZE_FLAGS[axis])) is not None), None)
    # TP=1 in vLLM: no worker process, each engine core owns its GPU.
    if out["tp"] is None and members and all(m.role.engine == roles.VLLM and m.role.kind == "engine" for m in members):
        out["tp"] = 1
    if out["dp"] is None:
        engines = {m.role.dp_rank for m in members if m.role.kind == "engine" and m.role.dp_rank is not None}
        out["dp"] = len(engines) or None
    return out


def _api_pid(chains: list[list[HostProcess]], root: HostProcess | None) -> int | None:
    """The outermost process among the chains (up to the root) that serves the HTTP API."""
    best: tuple[int, int] | None = None
    for chain in chains:
        for height, host in enumerate(chain):
            role = roles.classify(host)
            serves = role.kind == "api-server" or (role.engine == roles.TGI and role.kind == "launcher") \
                or (role.engine == roles.LLAMA_CPP and role.kind == "server") \
                or (role.engine == roles.SGLANG and role.kind == "launcher")
            if serves and (best is None or height > best[0]):
                best = (height, host.pid)
            if root is not None and host.pid == root.pid:
                break
    return best[1] if best else None


def _by_label(per_place: Mapping[tuple[int, int], int]) -> dict[str, int]:
    """(GPU, MIG slice or -1) -> MiB as "0" / "0:1" -> MiB, in GPU then slice order."""
    return {slice_label(gpu, None if mig < 0 else mig): mib for (gpu, mig), mib in sorted(per_place.items())}


def _shapes(snapshot: NodeSnapshot) -> tuple[tuple[int, ...], tuple[_Shape, ...]]:
    """Which instance each GPU process (by its place in ``gpu_processes``) belongs to, and each
    instance's shape."""
    links = _replica_links(snapshot)
    job_links = _job_links(snapshot)
    hosts = known_hosts(snapshot)
    node_of_gpu = {g.index: g.node for g in snapshot.gpus}
    groups: dict[tuple[str | None, int] | str, _Group] = {}
    order: dict[tuple[str | None, int] | str, int] = {}
    group_of: list[int] = []
    for proc in snapshot.gpu_processes:
        root, root_role, chain = _root(hosts, proc)
        replica = links.get((proc.gpu_index, proc.pid))
        job = job_links.get((proc.gpu_index, proc.pid)) if replica is None else None
        node = node_of_gpu.get(proc.gpu_index)
        if job is not None:
            root, root_role = _driver_root(hosts, job)
        group_id = replica.label if replica is not None else (
            node, root.pid if root is not None else job.driver_pid if job is not None else proc.pid)
        group = groups.get(group_id)
        if group is None:
            group = groups[group_id] = _Group(root, root_role, replica, node)
            order[group_id] = len(order)
        group_of.append(order[group_id])
        if job is not None:
            group.job = job
        elif _rank(root_role) > _rank(group.role):
            group.root, group.role = root, root_role  # the replica process itself, over its workers
        group.hosts[proc.pid] = proc.host
        group.chains.append(chain)

    shapes = []
    for group_id, g in groups.items():
        root_pid = g.root.pid if g.root is not None else (group_id[1] if isinstance(group_id, tuple) else min(g.hosts))
        member_roles = _member_roles(g, root_pid)
        members = [Member(pid, member_roles[pid], {}, g.hosts[pid]) for pid in sorted(g.hosts)]
        engines = [m.role.engine for m in members if m.role.engine not in (roles.RAY, roles.OTHER, roles.UNKNOWN)]
        engine = engines[0] if engines else g.role.engine
        argvs = [_argv(h) for h in ([g.root] if g.root else []) + [m.host for m in members if m.host]]
        sizes = _sizes(members, argvs) if engine not in (roles.OTHER, roles.UNKNOWN) else {"tp": None, "pp": None, "dp": None}
        alone = g.replica is None and g.job is None and _rank(g.role) == 0 and len(members) == 1
        shapes.append(_Shape(
            key=f"{roles.RAY if g.replica is not None else g.role.engine}:{root_pid}"
                + (f"@{g.node}" if g.node is not None else ""),
            engine=engine,
            name=_name(g.root, g.role, engine, members, root_pid, g.replica, g.job),
            root_pid=root_pid,
            roles=member_roles,
            sizes=sizes,
            replica=g.replica,
            node=g.node,
            api_pid=_api_pid(g.chains, g.root),
            note=_alone_note(g.role) if alone else None,
            job=g.job,
        ))
    return tuple(group_of), tuple(shapes)


def _instance(shape: _Shape, procs: tuple[GpuProcess, ...]) -> Instance:
    """One instance of ``shape`` with its processes' memory on this tick."""
    if len(procs) == 1:  # most of a busy node's instances: no sums to make
        (proc,) = procs
        mib = proc.used_mib or 0
        per_gpu, per_slice = {proc.gpu_index: mib}, {slice_label(proc.gpu_index, proc.mig_slice): mib}
        return Instance(shape.key, shape.engine, shape.name, shape.root_pid,
                        (Member(proc.pid, shape.roles[proc.pid], per_gpu, proc.host, per_slice),), per_gpu,
                        shape.sizes["tp"], proc.used_mib is None, shape.replica, shape.node, shape.sizes["pp"],
                        shape.sizes["dp"], shape.api_pid, shape.note, shape.job, per_slice)
    per_member: dict[int, dict[int, int]] = {}
    per_member_slice: dict[int, dict[tuple[int, int], int]] = {}  # (GPU, slice or -1)
    hosts: dict[int, HostProcess | None] = {}
    for proc in procs:
        per_gpu = per_member.setdefault(proc.pid, {})
        per_gpu[proc.gpu_index] = per_gpu.get(proc.gpu_index, 0) + (proc.used_mib or 0)
        per_slice = per_member_slice.setdefault(proc.pid, {})
        place = (proc.gpu_index, -1 if proc.mig_slice is None else proc.mig_slice)
        per_slice[place] = per_slice.get(place, 0) + (proc.used_mib or 0)
        hosts[proc.pid] = proc.host
    members = tuple(
        Member(pid, shape.roles[pid], per_gpu, hosts[pid], _by_label(per_member_slice[pid]))
        for pid, per_gpu in sorted(per_member.items())
    )
    per_place: dict[tuple[int, int], int] = {}
    for places in per_member_slice.values():
        for place, mib in places.items():
            per_place[place] = per_place.get(place, 0) + mib
    per_gpu_total: dict[int, int] = {}
    for m in members:
        for gpu, mib in m.per_gpu_mib.items():
            per_gpu_total[gpu] = per_gpu_total.get(gpu, 0) + mib
    return Instance(
        key=shape.key,
        engine=shape.engine,
        name=shape.name,
        root_pid=shape.root_pid,
        members=members,
        per_gpu_mib=dict(sorted(per_gpu_total.items())),
        tp_size=shape.sizes["tp"],
        unknown_mib=any(p.used_mib is None for p in procs),
        replica=shape.replica,
        node=shape.node,
        pp_size=shape.sizes["pp"],
        dp_size=shape.sizes["dp"],
        api_pid=shape.api_pid,
        note=shape.note,
        job=shape.job,
        per_slice_mib=_by_label(per_place),
    )


def _moved(before: Instance, proc: GpuProcess) -> Instance:
    """``before``, an instance of this one process (the same PID on the same GPU or slice, in the
    same shape), with its memory and host record of this tick."""
    mib = proc.used_mib or 0
    per_gpu = {proc.gpu_index: mib}
    per_slice = dict.fromkeys(before.per_slice_mib, mib)  # the same GPU or slice: its one label
    member = fresh(before.members[0], per_gpu_mib=per_gpu, host=proc.host, per_slice_mib=per_slice)
    return fresh(before, members=(member,), per_gpu_mib=per_gpu, unknown_mib=proc.used_mib is None,
                 per_slice_mib=per_slice)


def _host_facts(host: HostProcess | None) -> tuple | None:
    """What grouping reads of a process: not its CPU or RSS, which move every tick."""
    return None if host is None else (host.pid, host.ppid, host.create_time, host.name, host.title, host.cmdline)


def _same_facts(a: HostProcess | None, b: HostProcess | None) -> bool:
    """The very record, or one grouping reads as the same."""
    return a is b or _host_facts(a) == _host_facts(b)


def _ray_link(snapshot: NodeSnapshot) -> object:
    """Ray's state where it links anything to processes (its deployments or jobs), else None;
    compared by identity: it is replaced, not changed."""
    ray = snapshot.ray
    return ray if getattr(ray, "deployments", None) or getattr(ray, "jobs", None) else None


@dataclass(frozen=True)
class _Grouped:
    """A grouping and what it was made from: the snapshot's processes, their parents, its GPUs and
    Ray's links (everything grouping reads but memory)."""

    procs: tuple[GpuProcess, ...]
    ancestors: Mapping[int, HostProcess]
    gpus: tuple[tuple[int, str | None], ...]  # (index, Ray node) each
    ray: object
    shapes: tuple[_Shape, ...]
    built: tuple[tuple[tuple[GpuProcess, ...], Instance], ...]  # per shape: its processes and the instance made of them
    places: tuple[tuple[int, ...], ...]  # per shape: where its processes are in ``gpu_processes``
    single: tuple[tuple[int, int], ...]  # (shape, where its process is) for the shapes of one process
    shared: tuple[int, ...]  # the other shapes
    out: tuple[Instance, ...]  # what ``group_instances`` returned: largest first

    def fits(self, snapshot: NodeSnapshot, gpus: tuple) -> bool:
        """Whether ``snapshot`` (with these ``gpus``) reads as this grouping's, memory aside: the
        same processes in the same places, each with its record, or one of the same facts (a
        record moves with each CPU and RSS read), the same parents, GPUs and Ray links."""
        if self.gpus != gpus or self.ray is not _ray_link(snapshot):
            return False
        new, old = snapshot.gpu_processes, self.procs
        if new is not old:
            if len(new) != len(old):
                return False
            for a, b in zip(new, old):
                if a is not b and (a.pid != b.pid or a.gpu_index != b.gpu_index or a.mig_slice != b.mig_slice
                                   or not _same_facts(a.host, b.host)):
                    return False
        new_up, old_up = snapshot.ancestors, self.ancestors
        return new_up is old_up or (tuple(new_up) == tuple(old_up)
                                    and all(_same_facts(h, old_up[pid]) for pid, h in new_up.items()))


# The last two groupings (the view's newest and, on a thread a tick behind, the telemetry's),
# newest first; replaced whole, so threads that group at once each read a consistent one.
_RECENT: tuple[_Grouped, ...] = ()


def group_instances(snapshot: NodeSnapshot) -> tuple[Instance, ...]:
    """Every GPU process in exactly one instance, largest instance first.

    Incremental: where the processes, their parents, titles, GPUs and Ray's state are as in a
    recent call, the shapes are reused and only memory is added up again; an instance whose
    processes are the very same records keeps its object, and one of a single process whose
    memory or record moved is the earlier instance with this tick's figure. Where every process
    is the very record it was, the result is the very tuple returned then (a snapshot that moved
    only its telemetry or its GPUs' figures: the rows built from it can be kept too)."""
    global _RECENT
    gpus = tuple((g.index, g.node) for g in snapshot.gpus)
    previous = next((g for g in _RECENT if g.fits(snapshot, gpus)), None)
    procs = snapshot.gpu_processes
    if previous is not None:
        shapes = previous.shapes
        built = list(previous.built)
        moved = False
        for index, at in previous.single:  # most of a busy node's instances: one process each
            before = built[index]
            if before[0][0] is not (proc := procs[at]):
                built[index] = ((proc,), _moved(before[1], proc))
                moved = True
        for index in previous.shared:
            mine = tuple(procs[at] for at in previous.places[index])
            if not all(map(is_, built[index][0], mine)):
                built[index] = (mine, _instance(shapes[index], mine))
                moved = True
        if not moved:
            _RECENT = (previous, *(g for g in _RECENT if g is not previous))
            return previous.out
        places, single, shared = previous.places, previous.single, previous.shared
    else:
        group_of, shapes = _shapes(snapshot)
        where: list[list[int]] = [[] for _ in shapes]
        for at, index in enumerate(group_of):
            where[index].append(at)
        places = tuple(map(tuple, where))
        single = tuple((index, at[0]) for index, at in enumerate(places) if len(at) == 1)
        shared = tuple(index for index, at in enumerate(places) if len(at) != 1)
        built = []
        for shape, at in zip(shapes, places):
            mine = tuple(procs[i] for i in at)
            built.append((mine, _instance(shape, mine)))
    order = [(-inst.total_mib, inst.key, inst) for _, inst in built]
    order.sort(key=_FIRST_TWO)
    out = tuple(entry[2] for entry in order)
    grouped = _Grouped(procs, snapshot.ancestors, gpus, _ray_link(snapshot), shapes, tuple(built), places, single,
                       shared, out)
    _RECENT = (grouped, *(g for g in _RECENT if g is not previous))[:2]
    return out


_FIRST_TWO = itemgetter(0, 1)  # (minus the total, key): largest first, then by key


def shapes_of(instances: tuple[Instance, ...]) -> object | None:
    """What a recent ``group_instances`` answer was grouped by, memory aside, or None where it is
    no longer recent. Two answers with the very same one differ in memory alone: every process
    and parent reads as it did (name, title, command line), in the same places, with the same
    GPUs and Ray links, and each instance has the key, engine and members it had (a grouping
    reuses its shapes only then). Compared by identity."""
    for grouped in _RECENT:
        if grouped.out is instances:
            return grouped.shapes
    return None


_CACHE: dict[int, tuple[weakref.ref, tuple[Instance, ...]]] = {}


def instances_of(snapshot: NodeSnapshot) -> tuple[Instance, ...]:
    """``group_instances``, computed once per snapshot object: the table, the JSON, the what-if
    panel and the telemetry all ask about the same tick's snapshot."""
    hit = _CACHE.get(id(snapshot))
    if hit is not None and hit[0]() is snapshot:
        return hit[1]
    found = group_instances(snapshot)
    key = id(snapshot)
    _CACHE[key] = (weakref.ref(snapshot, lambda _ref: _CACHE.pop(key, None)), found)
    return found


def instance_of(instances: tuple[Instance, ...]) -> dict[tuple[int, int], Instance]:
    """(GPU index, PID) -> its instance, for the process table's instance column (keyed by GPU
    too: in cluster mode two machines may run the same PID)."""
    return {(gpu, m.pid): inst for inst in instances for m in inst.members for gpu in m.per_gpu_mib}
