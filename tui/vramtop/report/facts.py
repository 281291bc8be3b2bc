"""The numbers a report states, from one snapshot and the candidates: no words, no I/O.

Everything is derived from the snapshot (GPUs, processes, instances, Ray, telemetry) and the fit
engine's verdicts, so the report's conclusions are the data's, whatever node it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance, instances_of, instance_of
from vramtop.analysis.states import CRITICAL, LOW, Thresholds, gpu_state
from vramtop.fit import Candidate, FitResult, evaluate
from vramtop.snapshot import NodeSnapshot, slice_label


@dataclass(frozen=True)
class Part:
    """A share of an instance's memory: ``count`` processes of one role, ``mib`` in all."""

    role: str  # "worker", "engine", "replica", "api-server", "runner", ... (roles.Role.kind)
    label: str  # "Worker_TP", "EngineCore", "ServeReplica"
    count: int
    mib: int
    per_gpu_mib: dict[int, int]

    @property
    def each_mib(self) -> int | None:
        """The memory of one process of this part when all hold the same, else None."""
        values = set(self.per_gpu_mib.values())
        return values.pop() if self.count == len(self.per_gpu_mib) and len(values) == 1 else None


@dataclass(frozen=True)
class InstanceCost:
    """What one serving instance (one replica) holds, and of what it is made."""

    key: str
    name: str
    engine: str
    tp_size: int | None
    gpus: tuple[int, ...]
    per_gpu_mib: dict[int, int]
    total_mib: int
    parts: tuple[Part, ...]
    gpu_memory_utilization: float | None  # vLLM: as its metrics say it, when they were read
    util_from_memory: float | None  # vLLM: the largest worker's memory / the GPU's CUDA total
    kv_cache_usage: float | None  # vLLM: 0..1 of the reserved KV cache, when read
    kv_check: Any = None  # vLLM: telemetry's KvCheck, the fit engine's KV blocks beside vLLM's
    per_slice_mib: dict[str, int] = field(default_factory=dict)  # "0", or "0:1" for a MIG slice

    def part(self, role: str) -> Part | None:
        return next((p for p in self.parts if p.role == role), None)


@dataclass(frozen=True)
class SliceFact:
    """A MIG slice of a GPU: ``label`` "0:1", ``profile`` "3g.40gb"."""

    label: str
    profile: str
    total_mib: int
    reserved_mib: int
    used_mib: int
    free_mib: int
    state: str


@dataclass(frozen=True)
class GpuFact:
    index: int
    name: str
    total_mib: int
    reserved_mib: int
    used_mib: int
    free_mib: int
    state: str
    lost: bool
    slices: tuple[SliceFact, ...] = ()


@dataclass(frozen=True)
class ProcessFact:
    gpu_index: int
    pid: int
    used_mib: int | None
    role: str
    instance: str | None
    command: str | None
    where: str = ""  # "0", or "0:1" on a MIG slice


@dataclass(frozen=True)
class CandidateFact:
    text: str  # as given on the command line
    candidate: Candidate
    result: FitResult
    best: FitResult | None  # the verdict after its best suggestion, when there is one
    best_text: str | None = None  # that suggestion, as the engine words it
    launch: Any = None  # fit.command.LaunchLine: the command that realises the verdict here now


@dataclass(frozen=True)
class Facts:
    snapshot: NodeSnapshot
    gpus: tuple[GpuFact, ...]
    processes: tuple[ProcessFact, ...]
    instances: tuple[InstanceCost, ...]
    ray: Any = None  # vramtop.ray.feasibility.RayAnalysis
    candidates: tuple[CandidateFact, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def cuda_total_mib(self) -> int | None:
        """The memory CUDA reports per GPU (total less the driver's reserve), when all GPUs agree."""
        values = {g.total_mib - g.reserved_mib for g in self.gpus if not g.lost}
        return values.pop() if len(values) == 1 else None

    @property
    def most_free(self) -> GpuFact | None:
        live = [g for g in self.gpus if not g.lost]
        return max(live, key=lambda g: g.free_mib) if live else None

    @property
    def tight_gpus(self) -> tuple[GpuFact, ...]:
        return tuple(g for g in self.gpus if g.state in (CRITICAL, LOW))


def _parts(inst: Instance) -> tuple[Part, ...]:
    groups: dict[str, list] = {}
    for m in inst.members:
        groups.setdefault(m.role.kind, []).append(m)
    parts = []
    for kind, members in groups.items():
        per_gpu: dict[int, int] = {}
        for m in members:
            for gpu, mib in m.per_gpu_mib.items():
                per_gpu[gpu] = per_gpu.get(gpu, 0) + mib
        label = members[0].role.label.rstrip("0123456789") if kind == "worker" else members[0].role.label
        parts.append(Part(kind, label, len(members), sum(per_gpu.values()), dict(sorted(per_gpu.items()))))
    parts.sort(key=lambda p: -p.mib)
    return tuple(parts)


def _cost(inst: Instance, snapshot: NodeSnapshot, cuda_total: int | None) -> InstanceCost:
    parts = _parts(inst)
    util = kv = None
    tel = snapshot.telemetry.for_instance(inst.key) if snapshot.telemetry is not None else None
    check = tel.kv_check if tel is not None else None
    if tel is not None and tel.vllm is not None:
        kv = tel.vllm.kv_cache_usage
        if tel.vllm.cache is not None:
            util = tel.vllm.cache.gpu_memory_utilization
    workers = next((p for p in parts if p.role == "worker"), None)
    if workers is None and inst.engine == roles.VLLM:
        workers = next((p for p in parts if p.role == "engine"), None)  # TP=1: the engine is the worker
    from_memory = None
    if inst.engine == roles.VLLM and workers is not None and cuda_total:
        from_memory = round(max(workers.per_gpu_mib.values()) / cuda_total, 3)
    return InstanceCost(inst.key, inst.name, inst.engine, inst.tp_size, inst.gpu_indices,
                        dict(inst.per_gpu_mib), inst.total_mib, parts, util, from_memory, kv, check,
                        dict(inst.per_slice_mib))


def best_suggestion(candidate: Candidate, result: FitResult, snapshot: NodeSnapshot) -> tuple[str, FitResult] | None:
    """The suggestion that does best and the verdict after it, each re-checked: the best verdict first,
    then all on the GPU (no CPU offload), then the first one the engine gave."""
    order = {"green": 0, "yellow": 1, "red": 2, "invalid": 3}
    best: tuple[tuple[int, int, int], FitResult, str] | None = None
    for n, s in enumerate(result.suggestions):
        changes = dict(s.changes) or {s.field: s.value}
        if isinstance(changes.get("stopped"), str):
            changes["stopped"] = (changes["stopped"],)
        after = evaluate(candidate.with_(**changes), snapshot)
        offload = 0 if after.ollama_plan is None or after.ollama_plan.full else 1
        key = (order.get(after.verdict, 9), offload, n)
        if best is None or key < best[0]:
            best = (key, after, s.text)
    return (best[2], best[1]) if best is not None else None


def gather(snapshot: NodeSnapshot, candidates: list[tuple[str, Candidate]] = (),
           thresholds: Thresholds = Thresholds()) -> Facts:
    instances = instances_of(snapshot)
    owner = instance_of(instances)
    gpus = tuple(GpuFact(g.index, g.name, g.total_mib, g.reserved_mib, g.used_mib, g.free_mib,
                         gpu_state(g, thresholds), g.lost,
                         tuple(SliceFact(slice_label(g.index, m.index), m.profile, m.total_mib, m.reserved_mib,
                                         m.used_mib, m.free_mib, gpu_state(m, thresholds)) for m in g.mig))
                 for g in snapshot.gpus)
    procs = tuple(
        ProcessFact(p.gpu_index, p.pid, p.used_mib, roles.classify(p.host).text,
                    inst.name if (inst := owner.get((p.gpu_index, p.pid))) else None, p.host.title if p.host else p.hidden_reason,
                    slice_label(p.gpu_index, p.mig_slice))
        for p in snapshot.gpu_processes)
    cuda = {g.total_mib - g.reserved_mib for g in snapshot.gpus if not g.lost}
    cuda_total = cuda.pop() if len(cuda) == 1 else None
    costs = tuple(_cost(i, snapshot, cuda_total) for i in instances)
    ray = None
    if snapshot.ray is not None and getattr(snapshot.ray, "deployments", ()):
        from vramtop.ray.feasibility import analyze

        ray = analyze(snapshot.ray, snapshot)
    cands = []
    from vramtop.fit.command import plan
    from vramtop.fit.placement import node_from_snapshot

    for text, cand in candidates:
        result = evaluate(cand, snapshot)
        best = best_suggestion(cand, result, snapshot)
        line = plan(cand, node_from_snapshot(snapshot), text.split(",")[0].strip()).line
        cands.append(CandidateFact(text, cand, result, best[1] if best else None, best[0] if best else None, line))
    return Facts(snapshot, gpus, procs, costs, ray, tuple(cands), thresholds)
