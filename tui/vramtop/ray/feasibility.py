"""What Ray can and cannot schedule: GPUs per replica, replicas that fit, warnings, VRAM at scale.

Pure: a ``RayState`` (and optionally the node's ``NodeSnapshot`` for measured VRAM) in, records
out. A replica is a list of resource bundles: one for a replica that asks through
``ray_actor_options`` (an actor lives on one node), or its placement group's bundles for a
Ray Serve LLM replica (one GPU bundle per tensor x pipeline parallel rank; Serve LLM packs them,
each bundle on one node). Replicas are packed first-fit into each node's logical resources, as
Ray places them: against the totals for "how many could ever run", against what is free now for
"what would happen if one more started".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from vramtop.ray.link import ReplicaLink, link_gpu_processes
from vramtop.ray.model import Deployment, Node, RayState
from vramtop.snapshot import NodeSnapshot

_EPS = 1e-9
_MAX_PLACEMENTS = 10_000  # distinct placements tried: far more than nodes x bundles on any cluster
ACTOR_OPTIONS = "ray_actor_options"
PLACEMENT_GROUP = "placement group"
LLM_CONFIG = "llm config"
MESSAGE = "ray message"


@dataclass(frozen=True)
class ReplicaShape:
    """What one replica asks Ray for, and where that was read."""

    bundles: tuple[Mapping[str, float], ...]
    source: str

    @property
    def gpus(self) -> float:
        return sum(b.get("GPU", 0.0) for b in self.bundles)

    @property
    def cpus(self) -> float:
        return sum(b.get("CPU", 0.0) for b in self.bundles)


@dataclass(frozen=True)
class Placement:
    """``running`` of ``wanted`` replicas placed (``per_node``: node id -> count); the rest
    stay ``pending``."""

    wanted: int
    running: int
    per_node: Mapping[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.wanted - self.running


@dataclass(frozen=True)
class DeploymentAnalysis:
    """One deployment's replica counts, what a replica needs and what the cluster allows."""

    key: str
    app: str
    name: str
    running: int
    starting: int  # placed, not yet ready
    pending: int  # STARTING without a node: waiting for resources
    target_replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    target_ongoing_requests: float | None
    shape: ReplicaShape | None
    max_feasible_replicas: int | None
    warnings: tuple[str, ...] = ()
    pending_for_s: float | None = None  # the longest-waiting pending replica
    vram_per_replica_mib: int | None = None  # measured: the largest replica on this node
    vram_at_min_mib: int | None = None
    vram_at_max_mib: int | None = None

    @property
    def gpus_per_replica(self) -> float | None:
        return self.shape.gpus if self.shape else None

    @property
    def cpus_per_replica(self) -> float | None:
        return self.shape.cpus if self.shape else None


@dataclass(frozen=True)
class RayAnalysis:
    deployments: tuple[DeploymentAnalysis, ...] = ()
    cluster_gpus: float = 0.0
    cluster_vram_mib: int | None = None
    links: Mapping[tuple[int, int], ReplicaLink] = field(default_factory=dict)  # (GPU, PID) -> replica

    def deployment(self, key: str) -> DeploymentAnalysis | None:
        return next((d for d in self.deployments if d.key == key), None)


# -- what one replica needs --------------------------------------------------------------------

_REQUIRED = re.compile(r"Resources required for each replica: (\[.*?\]|\{.*?\}), total resources available")


def replica_shape(dep: Deployment, state: RayState) -> ReplicaShape | None:
    """Bundles of one replica: its placement group's (any replica's, placed or pending), else the
    LLM config's TP x PP GPUs, else the bundle list in Ray's pending message, else its actor
    options (``required_resources``, or ``num_gpus``/``num_cpus``). None when nothing says."""
    for r in dep.replicas:
        pg = state.placement_group_named(r.actor_name)
        if pg is not None and pg.bundles:
            return ReplicaShape(tuple(dict(b.resources) for b in pg.bundles), PLACEMENT_GROUP)
    if dep.llm is not None:
        cpu = {"CPU": dep.num_cpus} if dep.num_cpus else {}
        bundles = [{**cpu, "GPU": 1.0}] + [{"GPU": 1.0}] * (dep.llm.gpus_per_replica - 1)
        return ReplicaShape(tuple(bundles), LLM_CONFIG)
    if m := _REQUIRED.search(dep.message):
        try:
            raw = json.loads(m.group(1))
        except ValueError:
            raw = None
        if isinstance(raw, list) and raw and all(isinstance(b, dict) for b in raw):
            return ReplicaShape(tuple({k: float(v) for k, v in b.items()} for b in raw), MESSAGE)
    if dep.required_resources is not None:
        return ReplicaShape(({k: v for k, v in dep.required_resources.items() if v},), ACTOR_OPTIONS)
    if dep.num_gpus is not None or dep.num_cpus is not None:
        bundle = {"CPU": dep.num_cpus or 0.0, "GPU": dep.num_gpus or 0.0}
        return ReplicaShape(({k: v for k, v in bundle.items() if v},), ACTOR_OPTIONS)
    return None


# -- packing -----------------------------------------------------------------------------------

def _fits(bundle: Mapping[str, float], free: Mapping[str, float]) -> bool:
    return all(free.get(k, 0.0) + _EPS >= v for k, v in bundle.items() if v > 0)


def _place_one(shape: ReplicaShape, free: Mapping[str, Mapping[str, float]], per_node: Mapping[str, int],
               max_per_node: int | None) -> list[str] | None:
    """Where the next replica's bundles go (first fit, the first bundle's node first), or None."""
    trial = {n: dict(res) for n, res in free.items()}
    homes: list[str] = []
    for i, bundle in enumerate(shape.bundles):
        order = homes[:1] + [n for n in trial if n not in homes[:1]]
        node = next((n for n in order if _fits(bundle, trial[n])
                     and (i > 0 or max_per_node is None or per_node.get(n, 0) < max_per_node)), None)
        if node is None:
            return None
        for k, v in bundle.items():
            trial[node][k] = trial[node].get(k, 0.0) - v
        homes.append(node)
    return homes


def pack(shape: ReplicaShape, capacity: Mapping[str, Mapping[str, float]], wanted: int,
         max_per_node: int | None = None) -> Placement:
    """Place up to ``wanted`` replicas into ``capacity`` (node id -> resources), first fit, each
    replica's bundles on as few nodes as possible (the first bundle's node first).

    In closed form: first fit picks the same nodes for the next replica for as long as they still
    hold it (resources only shrink, so no node passed over becomes a fit), so each placement is
    repeated as many times as its nodes allow at once. The loop turns once per distinct placement,
    not per replica: ``max_replicas: 1e9`` on nodes reporting 1e15 GPUs costs what 1 does."""
    free = {n: dict(res) for n, res in capacity.items()}
    per_node: dict[str, int] = {}
    running = 0
    for _ in range(_MAX_PLACEMENTS):
        if running >= wanted:
            break
        homes = _place_one(shape, free, per_node, max_per_node)
        if homes is None:
            break
        use: dict[tuple[str, str], float] = {}
        for node, bundle in zip(homes, shape.bundles):
            for k, v in bundle.items():
                if v > 0:
                    use[(node, k)] = use.get((node, k), 0.0) + v
        times = wanted - running
        for (node, k), v in use.items():
            times = min(times, int((free[node].get(k, 0.0) + _EPS) // v))
        if max_per_node is not None:
            times = min(times, max_per_node - per_node.get(homes[0], 0))
        times = max(times, 1)  # _place_one found room for one
        for (node, k), v in use.items():
            free[node][k] = free[node].get(k, 0.0) - v * times
        running += times
        per_node[homes[0]] = per_node.get(homes[0], 0) + times
    return Placement(wanted, running, per_node)


def _alive(nodes: Sequence[Node]) -> list[Node]:
    return [n for n in nodes if n.state in (None, "ALIVE")]


def total_capacity(state: RayState) -> dict[str, dict[str, float]]:
    return {n.node_id: dict(n.resources_total) for n in _alive(state.nodes)}


def free_capacity(state: RayState) -> dict[str, dict[str, float]]:
    """What each node has free now (nodes whose usage the dashboard did not give are left out)."""
    return {n.node_id: {k: n.available(k) or 0.0 for k in n.resources_total}
            for n in _alive(state.nodes) if n.resources_used is not None}


def place_candidate(state: RayState, shape: ReplicaShape, replicas: int = 1) -> Placement:
    """A candidate deployment started now on the free resources: how many replicas run, how many
    wait (e.g. "this deployment, one more replica": ``place_candidate(state, shape, 1)``)."""
    return pack(shape, free_capacity(state), replicas)


# -- warnings ----------------------------------------------------------------------------------

def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _fmt(x: float) -> str:
    return f"{x:g}"


def warnings_for(fits: int, min_replicas: int | None, max_replicas: int | None,
                 fixed_replicas: int | None, shape: ReplicaShape, largest_node_gpus: float) -> tuple[str, ...]:
    """The replica counts the configuration asks for that the cluster can never hold."""
    out: list[str] = []
    if fits == 0:
        out.append(f"no replica fits: one needs {_fmt(shape.gpus)} GPU"
                   f"{'' if len(shape.bundles) == 1 else f' in {len(shape.bundles)} bundles'}"
                   f", the largest node has {_fmt(largest_node_gpus)}")
    floor_word, floor = ("min_replicas", min_replicas) if fixed_replicas is None else ("num_replicas", fixed_replicas)
    if floor is not None and floor > fits:
        out.append(f"at most {_n(fits, 'replica')} fit{'s' if fits == 1 else ''}; "
                   f"{floor_word}={floor} cannot be met")
    if max_replicas is not None and max_replicas > fits and fixed_replicas is None:
        if fits <= (min_replicas or 0):
            out.append(f"max_replicas={max_replicas} cannot be reached: autoscaling can never add replicas")
        else:
            out.append(f"max_replicas={max_replicas} cannot be reached: autoscaling stops at {_n(fits, 'replica')}")
    return tuple(out)


# -- the whole analysis ------------------------------------------------------------------------

def _vram_per_replica(links: Mapping[tuple[int, int], ReplicaLink],
                      snapshot: NodeSnapshot | None) -> dict[tuple[str, str], int]:
    """(app, deployment) -> the measured VRAM of its largest replica, in one pass over the
    snapshot's processes."""
    if snapshot is None:
        return {}
    per_replica: dict[tuple[str, str], dict[str, int]] = {}
    for p in snapshot.gpu_processes:
        link = links.get((p.gpu_index, p.pid))
        if link is None or p.used_mib is None:
            continue
        replicas = per_replica.setdefault((link.app, link.deployment), {})
        replicas[link.replica_id] = replicas.get(link.replica_id, 0) + p.used_mib
    return {key: max(replicas.values()) for key, replicas in per_replica.items()}


def cluster_vram_mib(state: RayState, snapshot: NodeSnapshot | None) -> int | None:
    """Every node's GPU memory as Ray's reporters give it; this node's (from the snapshot) when
    Ray runs on this node alone and its reporter reads no GPUs."""
    reported = [g.memory_total_mib for n in _alive(state.nodes) for g in n.gpus]
    if reported and all(m is not None for m in reported):
        return sum(reported)  # type: ignore[arg-type]
    if snapshot is not None and snapshot.gpus and len(_alive(state.nodes)) <= 1:
        return snapshot.total_mib
    return None


def analyze(state: RayState, snapshot: NodeSnapshot | None = None, now: float | None = None) -> RayAnalysis:
    """Per deployment: counts, shape, feasibility and warnings, pending time, VRAM at scale."""
    now = state.checked_at if now is None else now
    links = link_gpu_processes(state, snapshot) if snapshot is not None else {}
    capacity = total_capacity(state)
    largest_gpus = max((res.get("GPU", 0.0) for res in capacity.values()), default=0.0)
    measured = _vram_per_replica(links, snapshot)
    out = []
    for dep in state.deployments:
        running = sum(1 for r in dep.replicas if r.state == "RUNNING")
        pending = [r for r in dep.replicas if r.pending]
        starting = sum(1 for r in dep.replicas if r.state == "STARTING" and not r.pending)
        waited = [now - r.start_time_s for r in pending if r.start_time_s]
        auto = dep.autoscaling
        min_r = auto.min_replicas if auto else None
        max_r = auto.max_replicas if auto else None
        shape = replica_shape(dep, state)
        fits = None
        warnings: tuple[str, ...] = ()
        if shape is not None and capacity and any(v > 0 for b in shape.bundles for v in b.values()):
            limit = max(x for x in (max_r, min_r, dep.num_replicas, dep.target_num_replicas, 1) if x is not None) + 1
            fits = pack(shape, capacity, limit, dep.max_replicas_per_node).running
            warnings = warnings_for(fits, min_r, max_r, dep.num_replicas, shape, largest_gpus)
        vram = measured.get((dep.app, dep.name))
        low = min_r if auto else dep.num_replicas
        out.append(DeploymentAnalysis(
            key=dep.key, app=dep.app, name=dep.name, running=running, starting=starting, pending=len(pending),
            target_replicas=dep.target_num_replicas, min_replicas=min_r, max_replicas=max_r,
            target_ongoing_requests=auto.target_ongoing_requests if auto else None,
            shape=shape, max_feasible_replicas=fits, warnings=warnings,
            pending_for_s=max(waited) if waited else None,
            vram_per_replica_mib=vram,
            vram_at_min_mib=vram * low if vram is not None and low is not None else None,
            vram_at_max_mib=vram * max_r if vram is not None and max_r is not None else None,
        ))
    return RayAnalysis(
        deployments=tuple(out),
        cluster_gpus=sum(res.get("GPU", 0.0) for res in capacity.values()),
        cluster_vram_mib=cluster_vram_mib(state, snapshot),
        links=links,
    )
