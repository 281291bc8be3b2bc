"""The metric families of one snapshot: what ``vramtop export`` serves and ``--export`` adds to
the live view. Pure: a snapshot and its candidates' verdicts in, prometheus_client families out.

Names follow Prometheus conventions: a ``vramtop_`` prefix, base units in the name (bytes,
celsius, watts, seconds; ratios 0-1), one meaning per name, HELP on each. Labels are bounded by
what the node holds: ``gpu`` (the index, unique over a Ray cluster in cluster mode; "0:1" for
MIG slice 1 of GPU 0 on the slice's and its processes' series), an
instance's ``name`` and ``gpus`` (never its PIDs, which change on every restart: those only with
``pid_labels``), Serve's ``app`` and ``deployment``, a candidate's ``candidate``. A label value
that comes from outside (titles, Ray's names, the driver's strings) is cut to printable UTF-8 of
at most ``MAX_LABEL_CHARS``.
"""

from __future__ import annotations

from typing import Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from vramtop import __version__
from vramtop.analysis import roles
from vramtop.analysis.instances import Instance, instances_of, instance_of
from vramtop.analysis.states import CRITICAL, LOST, LOW, OK, UNKNOWN, Thresholds, gpu_state
from vramtop.exporter.candidates import Headroom
from vramtop.ray.feasibility import analyze
from vramtop.ray.model import RayState
from vramtop.snapshot import NodeSnapshot, slice_label
from vramtop.telemetry.model import Telemetry, process_facts
from vramtop.units import MIB

GPU_STATES = (CRITICAL, LOW, OK, LOST, UNKNOWN)
REPLICA_STATES = ("running", "starting", "pending")
MAX_LABEL_CHARS = 128


def label_text(text: str) -> str:
    """A label value from outside (a process title, a Ray name, a driver string): valid UTF-8
    (a title's undecodable bytes would fail the whole scrape), printable, and short."""
    clean = "".join(c if c.isprintable() else "?" for c in text.encode("utf-8", "replace").decode("utf-8"))
    return clean if len(clean) <= MAX_LABEL_CHARS else clean[:MAX_LABEL_CHARS - 1] + "…"


class _Gauge(GaugeMetricFamily):
    def add_metric(self, labels, value, timestamp=None):
        super().add_metric([label_text(v) for v in labels], value, timestamp)


class _Info(InfoMetricFamily):
    def add_metric(self, labels, value, timestamp=None):
        super().add_metric([label_text(v) for v in labels], value, timestamp)


def _gauge(name: str, help_text: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return _Gauge(name, help_text, labels=list(labels))


def node_families(snapshot: NodeSnapshot) -> Iterator[Metric]:
    """What vramtop is and when its picture was taken."""
    info = _Info("vramtop", "The vramtop that exports, and the node it reads",
                 labels=["version", "hostname", "source", "driver_version", "cuda_version"])
    info.add_metric([__version__, snapshot.hostname, snapshot.source, snapshot.driver_version or "",
                     snapshot.cuda_version or ""], {})
    yield info
    taken = _gauge("vramtop_snapshot_timestamp_seconds",
                   "When the latest sample was taken (Unix time): a stale value means sampling stalls")
    taken.add_metric([], snapshot.timestamp)
    yield taken
    errors = _gauge("vramtop_source_errors", "One-line failures of a source in the latest sample", ("source",))
    counts: dict[str, int] = {}
    for e in snapshot.errors:
        counts[e.source] = counts.get(e.source, 0) + 1
    for source, n in sorted(counts.items()):
        errors.add_metric([source], n)
    yield errors


def gpu_families(snapshot: NodeSnapshot, thresholds: Thresholds) -> Iterator[Metric]:
    """Per GPU, counted as nvidia-smi counts (total = reserved + used + free); a figure the driver
    does not give is left out, and a lost GPU keeps only its info and state."""
    info = _Info("vramtop_gpu", "A GPU's model, UUID and (cluster mode) Ray node",
                 labels=["gpu", "name", "uuid", "node"])
    memory = {part: _gauge(f"vramtop_gpu_memory_{part}_bytes", text, ("gpu",)) for part, text in (
        ("total", "GPU memory in all"),
        ("reserved", "GPU memory the driver keeps for itself (0 where the driver has only memory info v1)"),
        ("used", "GPU memory in use by processes and contexts, as nvidia-smi counts it"),
        ("free", "GPU memory free for a new allocation"),
    )}
    util = _gauge("vramtop_gpu_utilization_ratio", "Share of time a kernel ran on the GPU (0-1)", ("gpu",))
    temp = _gauge("vramtop_gpu_temperature_celsius", "GPU temperature", ("gpu",))
    power = _gauge("vramtop_gpu_power_watts", "GPU power draw", ("gpu",))
    limit = _gauge("vramtop_gpu_power_limit_watts", "GPU power limit", ("gpu",))
    state = _gauge("vramtop_gpu_state",
                   "The GPU's state word: 1 for the state it is in (critical under the critical free "
                   "memory, low under the low share free, ok, lost, unknown without memory figures)",
                   ("gpu", "state"))
    mig_info = _Info("vramtop_mig_slice", "A MIG slice of a GPU: its profile and UUID (gpu is \"GPU:slice\")",
                     labels=["gpu", "profile", "uuid"])
    mig_memory = {part: _gauge(f"vramtop_mig_memory_{part}_bytes", f"A MIG slice's memory: {part}", ("gpu",))
                  for part in ("total", "used", "free")}
    for g in snapshot.gpus:
        gpu = str(g.index)
        info.add_metric([gpu, g.name, g.uuid, g.node or ""], {})
        for m in () if g.lost else g.mig:
            where = slice_label(g.index, m.index)
            mig_info.add_metric([where, m.profile, m.uuid], {})
            if m.error is None:
                for part, family in mig_memory.items():
                    family.add_metric([where], getattr(m, f"{part}_mib") * MIB)
        now = gpu_state(g, thresholds)
        for s in GPU_STATES:
            state.add_metric([gpu, s], 1 if s == now else 0)
        if g.lost:
            continue
        if now != UNKNOWN:
            for part, family in memory.items():
                family.add_metric([gpu], getattr(g, f"{part}_mib") * MIB)
        for family, value in ((util, None if g.utilization_pct is None else g.utilization_pct / 100),
                              (temp, g.temperature_c), (power, g.power_w), (limit, g.power_limit_w)):
            if value is not None:
                family.add_metric([gpu], value)
    yield from (info, *memory.values(), util, temp, power, limit, state, mig_info, *mig_memory.values())


def instance_labels(instances: tuple[Instance, ...]) -> dict[str, tuple[str, str]]:
    """Instance key -> (name, GPUs): what identifies it across restarts. Two instances with the
    same name on the same GPUs (rare) get ``#2``, ``#3`` so that no two series collide."""
    out: dict[str, tuple[str, str]] = {}
    seen: set[tuple[str, str]] = set()
    for inst in sorted(instances, key=lambda i: i.key):
        gpus = ",".join(map(str, inst.gpu_indices))
        name, n = label_text(inst.name), 1
        while (name, gpus) in seen:
            n += 1
            name = f"{label_text(inst.name)[:MAX_LABEL_CHARS - 8]} #{n}"  # kept whole by the label cut
        seen.add((name, gpus))
        out[inst.key] = (name, gpus)
    return out


def instance_families(snapshot: NodeSnapshot, instances: tuple[Instance, ...],
                      pid_labels: bool = False) -> Iterator[Metric]:
    """Per serving instance: its cost per GPU, its engine, and what its engine reports."""
    ids = instance_labels(instances)
    base = ("name", "gpus")
    info = _Info("vramtop_instance", "A serving instance: engine, Ray Serve replica, container",
                 labels=[*base, "engine", "replica", "container", *(("key",) if pid_labels else ())])
    memory = _gauge("vramtop_instance_memory_used_bytes",
                    "GPU memory a serving instance holds on each GPU (all its processes)", (*base, "gpu"))
    tp = _gauge("vramtop_instance_tensor_parallel_size", "Tensor-parallel ranks of a serving instance", base)
    kv = _gauge("vramtop_instance_kv_cache_usage_ratio", "Share of the engine's KV cache in use (0-1)", base)
    running = _gauge("vramtop_instance_requests_running", "Requests the engine is running", base)
    waiting = _gauge("vramtop_instance_requests_waiting", "Requests waiting in the engine's queue", base)
    prompt = _gauge("vramtop_instance_prompt_tokens_per_second",
                    "Prompt tokens the engine processed per second between vramtop's last two reads", base)
    generation = _gauge("vramtop_instance_generation_tokens_per_second",
                        "Tokens the engine generated per second between vramtop's last two reads", base)
    telemetry = snapshot.telemetry if isinstance(snapshot.telemetry, Telemetry) else None
    containers: dict[str, str] = {}
    owner = instance_of(instances)
    for p in snapshot.gpu_processes:
        inst = owner.get((p.gpu_index, p.pid))
        facts = process_facts(telemetry, p)
        if inst is not None and facts.container is not None:
            containers.setdefault(inst.key, facts.container.label)
    for inst in instances:
        labels = list(ids[inst.key])
        info.add_metric([*labels, inst.engine, inst.replica.label if inst.replica else "",
                         containers.get(inst.key, ""), *((inst.key,) if pid_labels else ())], {})
        for gpu, mib in inst.per_slice_mib.items():  # "0", or "0:1" for a MIG slice
            memory.add_metric([*labels, str(gpu)], mib * MIB)
        if inst.tp_size is not None:
            tp.add_metric(labels, inst.tp_size)
        t = telemetry.for_instance(inst.key) if telemetry is not None else None
        m = t.vllm if t is not None else None
        if m is None:
            continue
        for family, value in ((kv, m.kv_cache_usage), (running, m.requests_running),
                              (waiting, m.requests_waiting), (prompt, m.prompt_tokens_per_s),
                              (generation, m.generation_tokens_per_s)):
            if value is not None:
                family.add_metric(labels, value)
    yield from (info, memory, tp, kv, running, waiting, prompt, generation)
    if pid_labels:
        yield process_family(snapshot, ids, owner)


def process_family(snapshot: NodeSnapshot, ids: dict[str, tuple[str, str]],
                   owner: dict[tuple[int, int], Instance]) -> Metric:
    """Per GPU process (opt-in: a PID label is a new series on every restart)."""
    family = _gauge("vramtop_process_memory_used_bytes", "GPU memory a process holds on one GPU",
                    ("pid", "gpu", "role", "name", "gpus"))
    for p in snapshot.gpu_processes:
        if p.used_mib is None:
            continue
        inst = owner.get((p.gpu_index, p.pid))
        name, gpus = ids[inst.key] if inst is not None else ("", "")
        role = roles.classify(p.host)
        family.add_metric([str(p.pid), slice_label(p.gpu_index, p.mig_slice), role.label or role.kind, name, gpus],
                          p.used_mib * MIB)
    return family


def serve_families(snapshot: NodeSnapshot) -> Iterator[Metric]:
    """Per Ray Serve deployment: replicas by state, autoscaling bounds, and what the cluster's
    GPUs can ever hold (the analysis the Ray panel shows)."""
    state = snapshot.ray if isinstance(snapshot.ray, RayState) else None
    up = _gauge("vramtop_ray_dashboard_up", "1 when the Ray dashboard answered the last poll (none: not polled)")
    if state is not None:
        up.add_metric([], 1 if state.error is None else 0)
    yield up
    base = ("app", "deployment")
    replicas = _gauge("vramtop_serve_deployment_replicas", "A deployment's replicas by state", (*base, "state"))
    bounds = {name: _gauge(f"vramtop_serve_deployment_{name}", text, base) for name, text in (
        ("min_replicas", "Autoscaling's min_replicas"),
        ("max_replicas", "Autoscaling's max_replicas"),
        ("target_replicas", "The replicas Serve is trying to reach now"),
        ("max_feasible_replicas", "The most replicas the cluster's GPUs can ever hold"),
        ("gpus_per_replica", "GPUs one replica asks Ray for"),
    )}
    warning = _gauge("vramtop_serve_deployment_warning",
                     "1 for each warning on a deployment (e.g. min_replicas cannot be met)", (*base, "warning"))
    for a in analyze(state, snapshot).deployments if state is not None else ():
        labels = [a.app, a.name]
        for s, n in zip(REPLICA_STATES, (a.running, a.starting, a.pending)):
            replicas.add_metric([*labels, s], n)
        for name, family in bounds.items():
            value = a.gpus_per_replica if name == "gpus_per_replica" else getattr(a, name)
            if value is not None:
                family.add_metric(labels, value)
        for w in a.warnings:
            warning.add_metric([*labels, w], 1)
    yield from (replicas, *bounds.values(), warning)


def headroom_families(headroom: tuple[Headroom, ...]) -> Iterator[Metric]:
    """Per candidate of the config file: would it fit now, and with how much room."""
    label = ("candidate",)
    verdict = _gauge("vramtop_candidate_verdict",
                     "Would the candidate fit now: 0 green, 1 yellow, 2 red, 3 cannot be judged (see vramtop fit)",
                     label)
    info = _Info("vramtop_candidate", "A candidate's model and engine",
                 labels=["candidate", "model", "engine"])
    length = _gauge("vramtop_candidate_max_model_len_tokens",
                    "The largest max_model_len the KV cache would hold one request of, were it started now (vLLM; 0: it would not start)", label)
    tokens = _gauge("vramtop_candidate_kv_cache_tokens", "Tokens the KV cache would hold, were it started now (vLLM; 0: it would not start)", label)
    gpus = _gauge("vramtop_candidate_gpus",
                  "GPUs the candidate would take (vLLM: tensor_parallel_size x replicas; Ollama: GPUs given layers)",
                  label)
    for h in headroom:
        r = h.result
        verdict.add_metric([h.name], h.value)
        info.add_metric([h.name, r.model, r.engine], {})
        if r.ranks:  # vLLM's KV cache; where it would not start, nothing fits now
            starts = all(rank.starts for rank in r.ranks)
            length.add_metric([h.name], r.max_model_len_that_fits if starts else 0)
            tokens.add_metric([h.name], r.kv_cache_tokens if starts else 0)
        if h.gpus is not None:
            gpus.add_metric([h.name], h.gpus)
    yield from (verdict, info, length, tokens, gpus)


def families(snapshot: NodeSnapshot, thresholds: Thresholds, headroom: tuple[Headroom, ...] = (),
             pid_labels: bool = False, instances: tuple[Instance, ...] | None = None) -> list[Metric]:
    """Every family of ``snapshot``, empty families included (HELP and TYPE still say what a
    dashboard may plot)."""
    instances = instances_of(snapshot) if instances is None else instances
    return [*node_families(snapshot), *gpu_families(snapshot, thresholds),
            *instance_families(snapshot, instances, pid_labels), *serve_families(snapshot),
            *headroom_families(headroom)]
