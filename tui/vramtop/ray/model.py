"""What the Ray dashboard says about the cluster and Ray Serve, as immutable records.

Every field Ray may leave out is optional: the Serve controller drops unset fields
(``exclude_unset``), a replica not yet placed has no ``pid`` or ``node_id``, and older or newer
Ray releases add and drop fields. Resources are Ray's logical amounts (floats, exact resource
names); GPU memory from Ray's reporter is in MiB, with NVML's v1 "used" (reserved memory included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

# RayState.status
OK = "ok"
NOT_FOUND = "not found"  # nothing answers at the address and nothing ever did: Ray is not running
UNREACHABLE = "unreachable"  # it answered before and does not now
TIMEOUT = "timeout"
HTTP_ERROR = "http error"
UNAUTHORIZED = "unauthorized"
BAD_RESPONSE = "bad response"  # not JSON, or JSON of a shape we cannot read (another Ray release)

SERVE_REPLICA_PREFIX = "SERVE_REPLICA::"


@dataclass(frozen=True)
class Replica:
    """One Serve replica. Serve has no "pending" state: STARTING with no node is waiting for
    resources (its actor is not placed yet)."""

    replica_id: str
    state: str
    actor_name: str | None = None
    actor_id: str | None = None
    pid: int | None = None
    node_id: str | None = None
    node_ip: str | None = None
    start_time_s: float | None = None

    @property
    def pending(self) -> bool:
        return self.state == "STARTING" and not self.node_id


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int | None = None
    max_replicas: int | None = None
    initial_replicas: int | None = None
    target_ongoing_requests: float | None = None


@dataclass(frozen=True)
class LLMConfig:
    """A Ray Serve LLM model as its application's config gives it (declarative deploys only).

    Field names are vLLM's engine arguments, the same as the fit engine's ``Candidate`` fields,
    so "this deployment, one more replica" is ``Candidate(model=spec, **llm.candidate_fields())``.
    """

    model_id: str
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    accelerator_type: str | None = None
    engine_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def candidate_fields(self) -> dict[str, Any]:
        """The fit engine's ``Candidate`` keyword arguments this config sets (model aside)."""
        names = ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "dtype",
                 "quantization", "kv_cache_dtype", "max_num_seqs", "max_num_batched_tokens")
        out: dict[str, Any] = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        if self.enforce_eager:
            out["enforce_eager"] = True
        return out


@dataclass(frozen=True)
class Deployment:
    """One Serve deployment. ``num_gpus``/``num_cpus`` are its replica actor's own options;
    a Ray Serve LLM replica asks for none and gets its GPUs through a placement group."""

    app: str
    name: str
    status: str | None = None
    status_trigger: str | None = None
    message: str = ""
    target_num_replicas: int | None = None
    num_replicas: int | None = None  # fixed count, when not autoscaling
    autoscaling: Autoscaling | None = None
    num_gpus: float | None = None
    num_cpus: float | None = None
    required_resources: Mapping[str, float] | None = None
    max_replicas_per_node: int | None = None
    replicas: tuple[Replica, ...] = ()
    llm: LLMConfig | None = None

    @property
    def key(self) -> str:
        return f"{self.app}/{self.name}"


@dataclass(frozen=True)
class Application:
    name: str
    status: str | None = None
    message: str = ""
    route_prefix: str | None = None
    import_path: str | None = None
    last_deployed_time_s: float | None = None


@dataclass(frozen=True)
class RayGpu:
    """One physical GPU as the node's Ray reporter sees it (empty where Ray finds no NVML)."""

    index: int
    name: str | None = None
    uuid: str | None = None
    memory_used_mib: int | None = None
    memory_total_mib: int | None = None
    utilization_pct: int | None = None
    process_mib: Mapping[int, int] = field(default_factory=dict)  # pid -> memory


@dataclass(frozen=True)
class Node:
    """A Ray node: logical resources in total and in use, and the GPUs its reporter reads."""

    node_id: str
    node_ip: str | None = None
    hostname: str | None = None
    is_head: bool = False
    state: str | None = None
    resources_total: Mapping[str, float] = field(default_factory=dict)
    resources_used: Mapping[str, float] | None = None  # None when the dashboard did not say
    gpus: tuple[RayGpu, ...] = ()

    def total(self, resource: str) -> float:
        return self.resources_total.get(resource, 0.0)

    def available(self, resource: str) -> float | None:
        if self.resources_used is None:
            return None
        return max(0.0, self.total(resource) - self.resources_used.get(resource, 0.0))


@dataclass(frozen=True)
class Bundle:
    index: int
    resources: Mapping[str, float]
    node_id: str | None = None


@dataclass(frozen=True)
class PlacementGroup:
    """Serve names a replica's placement group after the replica actor (``SERVE_REPLICA::...``)."""

    placement_group_id: str
    name: str = ""
    state: str | None = None
    bundles: tuple[Bundle, ...] = ()
    scheduling_state: str | None = None  # e.g. NO_RESOURCES while PENDING


@dataclass(frozen=True)
class Actor:
    actor_id: str
    class_name: str = ""
    name: str = ""
    state: str | None = None
    pid: int | None = None
    node_id: str | None = None
    placement_group_id: str | None = None
    bundle_index: int | None = None  # from the ``GPU_group_<i>_<pg>`` resources it holds
    job_id: str | None = None
    detached: bool | None = None  # outlives the job that created it (Serve's actors do)


@dataclass(frozen=True)
class Job:
    """A running Ray job and its driver: the process that called ``ray.init`` (for vLLM with
    ``--distributed-executor-backend ray``, its API server or engine core). Actors the job
    creates that are not detached die with the driver. ``entrypoint`` is the driver's command
    line as Ray recorded it, plain text."""

    job_id: str
    driver_pid: int
    driver_ip: str | None = None
    driver_node_id: str | None = None
    entrypoint: str = ""


@dataclass(frozen=True)
class RayState:
    """One poll of the dashboard. When ``error`` is set the data is the last good poll's
    (``last_success``), or empty if none; ``notes`` are partial failures and schema gaps."""

    address: str
    status: str
    checked_at: float
    error: str | None = None
    last_success: float | None = None
    ray_version: str | None = None
    applications: tuple[Application, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    nodes: tuple[Node, ...] = ()
    placement_groups: tuple[PlacementGroup, ...] = ()
    actors: tuple[Actor, ...] = ()
    notes: tuple[str, ...] = ()
    jobs: tuple[Job, ...] = ()  # running jobs whose driver Ray knows

    @property
    def found(self) -> bool:
        """Ray answered at least once (a quiet "Ray: not found" otherwise)."""
        return self.status != NOT_FOUND

    def summary(self) -> str:
        """One line: "Ray 2.60.0 at http://...: 2 apps, 1 node", or what went wrong and when
        the last good poll was."""
        import time

        if self.status == NOT_FOUND:
            return "Ray: not found"
        if self.error is None:
            apps = len(self.applications)
            nodes = len(self.nodes)
            version = f" {self.ray_version}" if self.ray_version else ""
            return (f"Ray{version} at {self.address}: {apps} app{'s' if apps != 1 else ''}, "
                    f"{nodes} node{'s' if nodes != 1 else ''}")
        when = (time.strftime("%H:%M:%S", time.localtime(self.last_success))
                if self.last_success is not None else "never")
        return f"Ray at {self.address}: {self.error} (last success {when})"

    # Lookups by key, indexed once per poll (a state is immutable): on a cluster of thousands of
    # replicas, a scan per replica is millions of comparisons. The first of equal keys wins.

    @cached_property
    def _groups_by_name(self) -> dict[str, PlacementGroup]:
        found: dict[str, PlacementGroup] = {}
        for p in self.placement_groups:
            found.setdefault(p.name, p)
        return found

    @cached_property
    def _actors_by_group(self) -> dict[str, tuple[Actor, ...]]:
        found: dict[str, list[Actor]] = {}
        for a in self.actors:
            if a.placement_group_id:
                found.setdefault(a.placement_group_id, []).append(a)
        return {k: tuple(v) for k, v in found.items()}

    @cached_property
    def _nodes_by_id(self) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for n in self.nodes:
            found.setdefault(n.node_id, n)
        return found

    def placement_group_named(self, name: str | None) -> PlacementGroup | None:
        return self._groups_by_name.get(name) if name else None

    def actors_in(self, placement_group_id: str) -> tuple[Actor, ...]:
        """The actors of one placement group, in the order the dashboard listed them."""
        return self._actors_by_group.get(placement_group_id, ())

    def node(self, node_id: str | None) -> Node | None:
        return self._nodes_by_id.get(node_id) if node_id is not None else None
