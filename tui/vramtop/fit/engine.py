"""Would this candidate fit on these GPUs now? The verdict, its numbers and the smallest fixes.

Pure: a candidate and a node view in, a ``FitResult`` out, fast enough to run on every keystroke
of the what-if panel. Bad field values come back as ``FitResult.field_errors`` (which field,
why), never as exceptions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Mapping

from vramtop.analysis.instances import Instance, group_instances
from vramtop.fit import ollama, vllm
from vramtop.fit.specs import ModelSpec, SpecError, normalize_quant, with_quant
from vramtop.snapshot import NodeSnapshot

GREEN, YELLOW, RED = "green", "yellow", "red"
SYMBOLS = {GREEN: "✔", YELLOW: "▲", RED: "✖"}
_RANK = {GREEN: 0, YELLOW: 1, RED: 2}
MIN_CONCURRENCY = 4  # "serves at least a few requests of max_model_len at once"
THIN_MARGIN = 0.02  # less than this share of a GPU left after start-up is a thin fit


@dataclass(frozen=True)
class GpuView:
    index: int
    total_mib: int
    free_mib: float


@dataclass(frozen=True)
class NodeView:
    """The GPUs a candidate can use, and the instances that could be stopped for it."""

    gpus: tuple[GpuView, ...]
    instances: tuple[Instance, ...] = ()
    label: str = "this node"

    @property
    def total_mib(self) -> int:
        return sum(g.total_mib for g in self.gpus)


def node_from_snapshot(snapshot: NodeSnapshot, instances: tuple[Instance, ...] | None = None) -> NodeView:
    gpus = tuple(GpuView(g.index, g.total_mib, float(g.free_mib)) for g in snapshot.gpus if not g.lost)
    return NodeView(gpus, group_instances(snapshot) if instances is None else instances, snapshot.hostname)


_SIZE = re.compile(r"^\s*(\d+)\s*[x×]\s*([\d.]+)\s*(gib|gb|mib|mb)?\s*$", re.I)


def paper_node(text: str) -> NodeView:
    """``--on 4x23028MiB`` / ``--on 1x24GiB``: N empty GPUs of that size (GB read as GiB)."""
    m = _SIZE.match(text)
    if not m or int(m.group(1)) < 1:
        raise SpecError(f"--on must look like 4x23028MiB or 1x24GiB, got '{text}'")
    size = float(m.group(2))
    mib = int(size * 1024) if (m.group(3) or "gib").lower() in ("gib", "gb") else int(size)
    return NodeView(tuple(GpuView(i, mib, float(mib)) for i in range(int(m.group(1)))), (), f"{m.group(1)}x{mib} MiB on paper")


@dataclass(frozen=True)
class Candidate:
    """A model and how it would be served. ``None`` fields take the engine's default."""

    model: ModelSpec
    engine: str = "vllm"  # "vllm" or "ollama"
    tp: int = 1
    util: float = vllm.DEFAULT_UTIL
    max_model_len: int | None = None
    quant: str | None = None  # weights dtype / quantization; None: as released
    kv_cache_dtype: str = "auto"  # vLLM: auto / fp8; Ollama: f16 / q8_0 / q4_0
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    num_ctx: int | None = None
    num_parallel: int = 1
    replicas: int = 1
    gpus: tuple[int, ...] | None = None  # None: the GPUs with most free memory
    assume_stopped: tuple[str, ...] = ()  # instance keys or names


@dataclass(frozen=True)
class GpuNeed:
    index: int
    total_mib: int
    free_mib: float
    needed_mib: float

    @property
    def left_mib(self) -> float:
        return self.free_mib - self.needed_mib


@dataclass(frozen=True)
class Suggestion:
    text: str
    changes: Mapping[str, object]
    verdict: str


@dataclass(frozen=True)
class FitResult:
    verdict: str
    summary: str  # one line: why
    reasons: tuple[str, ...] = ()
    per_gpu: tuple[GpuNeed, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    field_errors: Mapping[str, str] = field(default_factory=dict)
    ranks: tuple[vllm.RankBudget, ...] = ()  # vLLM: the first replica's ranks
    ollama_plan: ollama.OllamaPlan | None = None
    replicas_placed: int = 0
    candidate: Candidate | None = None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.verdict]

    @property
    def word(self) -> str:
        return self.verdict.upper()


def _gib(mib: float) -> str:
    return f"{mib / 1024:.2f} GiB"


def validate(c: Candidate, node: NodeView) -> dict[str, str]:
    """Field -> why it is wrong, the way vLLM or Ollama would refuse it."""
    errors: dict[str, str] = {}
    if c.engine not in ("vllm", "ollama"):
        errors["engine"] = f"engine must be vllm or ollama, not '{c.engine}'"
    if not 0 < c.util <= 1:
        errors["util"] = f"gpu_memory_utilization must be in (0, 1], got {c.util}"
    if c.tp < 1:
        errors["tp"] = "tensor_parallel_size must be at least 1"
    elif c.engine == "vllm" and c.model.heads % c.tp:
        errors["tp"] = (f"Total number of attention heads ({c.model.heads}) must be divisible by "
                        f"tensor parallel size ({c.tp})")
    if c.max_model_len is not None:
        if c.max_model_len < 1:
            errors["max_model_len"] = "max_model_len must be at least 1"
        elif c.engine == "vllm" and c.max_model_len > c.model.max_position:
            errors["max_model_len"] = (f"User-specified max_model_len ({c.max_model_len}) is greater than the "
                                       f"derived max_model_len ({c.model.max_position}) of the model")
    if c.replicas < 1:
        errors["replicas"] = "replicas must be at least 1"
    if c.num_ctx is not None and c.num_ctx < 1:
        errors["num_ctx"] = "num_ctx must be at least 1"
    if c.num_parallel < 1:
        errors["num_parallel"] = "num_parallel must be at least 1"
    for name in ("max_num_seqs", "max_num_batched_tokens"):
        if (v := getattr(c, name)) is not None and v < 1:
            errors[name] = f"{name} must be at least 1"
    if c.quant is not None:
        try:
            normalize_quant(c.quant)
        except SpecError as exc:
            errors["quant"] = str(exc)
    if c.engine == "vllm" and c.kv_cache_dtype not in ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"):
        errors["kv_cache_dtype"] = f"vLLM kv_cache_dtype must be auto or fp8, not '{c.kv_cache_dtype}'"
    if c.engine == "ollama" and c.kv_cache_dtype not in ("auto", *ollama.KV_ELEMENT_BYTES):
        errors["kv_cache_dtype"] = f"Ollama KV cache type must be f16, q8_0 or q4_0, not '{c.kv_cache_dtype}'"
    known = {g.index for g in node.gpus}
    if c.gpus is not None:
        if bad := [g for g in c.gpus if g not in known]:
            errors["gpus"] = f"no GPU {', '.join(map(str, bad))} here (GPUs: {', '.join(map(str, sorted(known))) or 'none'})"
        elif c.engine == "vllm" and len(c.gpus) < c.tp:
            errors["gpus"] = f"{len(c.gpus)} GPU(s) chosen, tensor_parallel_size={c.tp} needs {c.tp}"
    for name in c.assume_stopped:
        if _find_instance(node, name) is None:
            errors["assume_stopped"] = f"no running instance '{name}'"
    return errors


def _find_instance(node: NodeView, name: str) -> Instance | None:
    for inst in node.instances:
        if name in (inst.key, inst.name, str(inst.root_pid)):
            return inst
    return None


def _free_after_stops(node: NodeView, stopped: tuple[str, ...]) -> dict[int, float]:
    free = {g.index: g.free_mib for g in node.gpus}
    for name in stopped:
        inst = _find_instance(node, name)
        for gpu, mib in (inst.per_gpu_mib.items() if inst else ()):
            if gpu in free:
                free[gpu] += mib
    return free


def _evaluate_vllm(c: Candidate, node: NodeView, free: dict[int, float]) -> FitResult:
    spec = with_quant(c.model, c.quant)
    totals = {g.index: g.total_mib for g in node.gpus}
    pool = [g for g in (c.gpus if c.gpus is not None else totals) if g in totals]
    if len(pool) < c.tp:
        return FitResult(RED, f"needs {c.tp} GPUs for tensor_parallel_size={c.tp}; {len(pool)} available",
                         (f"{node.label} has {len(totals)} GPU(s)",))
    max_len = c.max_model_len or spec.max_position
    left = dict(free)
    reasons: list[str] = []
    needs: dict[int, float] = {}
    first: tuple[vllm.RankBudget, ...] = ()
    placed = 0
    failure: str | None = None
    for replica in range(c.replicas):
        chosen = sorted(sorted(pool, key=lambda g: (-left[g], g))[: c.tp])
        ranks = []
        for g in chosen:
            total = totals[g]
            ranks.append(vllm.rank_budget(
                spec, total, left[g], tp=c.tp, util=c.util, max_model_len=max_len,
                kv_cache_dtype=c.kv_cache_dtype,
                max_num_seqs=c.max_num_seqs or vllm.default_max_num_seqs(total),
                max_batched_tokens=c.max_num_batched_tokens or vllm.default_batched_tokens(total),
                enforce_eager=c.enforce_eager,
            ))
        if replica == 0:
            first = tuple(ranks)
        worst = min(ranks, key=lambda r: r.free_at_start_mib - r.requested_mib)
        kv = min(ranks, key=lambda r: r.kv_cache_mib)
        tag = f"replica {replica + 1}: " if c.replicas > 1 else ""
        if not worst.starts:
            g = chosen[ranks.index(worst)]
            failure = (f"{tag}vLLM would not start on GPU {g}: Free memory on device "
                       f"({_gib(max(0.0, worst.free_at_start_mib))}/{_gib(worst.total_mib)}) on startup is less than desired "
                       f"GPU memory utilization ({c.util}, {_gib(worst.requested_mib)})")
        elif kv.kv_cache_mib <= 0:
            failure = (f"{tag}No available memory for the cache blocks: weights {_gib(kv.weights_mib)} + activations "
                       f"{_gib(kv.activation_mib)} + overhead {_gib(kv.non_torch_mib + kv.cudagraph_mib)} exceed the "
                       f"{_gib(kv.requested_mib)} that gpu_memory_utilization={c.util} gives")
        elif kv.max_concurrency < 1:
            failure = (f"{tag}To serve at least one request with the model's max seq len ({max_len}), "
                       f"{_gib(kv.per_request_mib)} KV cache is needed, which is larger than the available KV cache "
                       f"memory ({_gib(kv.kv_cache_mib)}); the largest max_model_len that fits is {kv.max_model_len_that_fits}")
        if failure:
            for g, r in zip(chosen, ranks):
                needs[g] = needs.get(g, 0.0) + r.needed_mib
            break
        placed += 1
        for g, r in zip(chosen, ranks):
            needs[g] = needs.get(g, 0.0) + r.needed_mib
            left[g] -= r.needed_mib
    per_gpu = tuple(GpuNeed(g, totals[g], free[g], needs[g]) for g in sorted(needs))
    if failure:
        reasons.append(failure)
        return FitResult(RED, failure, tuple(reasons), per_gpu, ranks=first, replicas_placed=placed)
    r0 = min(first, key=lambda r: r.max_concurrency)
    reasons.append(f"per GPU: {_gib(r0.requested_mib)} requested ({c.util} × {_gib(r0.total_mib)} total), "
                   f"weights {_gib(r0.weights_mib)}, activations {_gib(r0.activation_mib)}, "
                   f"CUDA graphs {_gib(r0.cudagraph_mib)}, non-torch {_gib(r0.non_torch_mib)}")
    reasons.append(f"KV cache {_gib(r0.kv_cache_mib)} = {r0.kv_cache_tokens:,} tokens; "
                   f"{r0.max_concurrency:.1f} requests of {max_len:,} tokens at once")
    thin = min(n.left_mib / n.total_mib for n in per_gpu)
    if r0.max_concurrency < MIN_CONCURRENCY:
        return FitResult(YELLOW, f"starts, but holds only {r0.max_concurrency:.1f} requests of {max_len:,} tokens at once",
                         tuple(reasons), per_gpu, ranks=first, replicas_placed=placed)
    if thin < THIN_MARGIN:
        return FitResult(YELLOW, f"starts with only {min(n.left_mib for n in per_gpu):,.0f} MiB to spare on a GPU",
                         tuple(reasons), per_gpu, ranks=first, replicas_placed=placed)
    return FitResult(GREEN, f"fits: {r0.kv_cache_tokens:,} KV tokens per replica, {r0.max_concurrency:.1f}× {max_len:,}-token requests",
                     tuple(reasons), per_gpu, ranks=first, replicas_placed=placed)


def _evaluate_ollama(c: Candidate, node: NodeView, free: dict[int, float]) -> FitResult:
    spec = with_quant(c.model, c.quant)
    pool = {g: free[g] for g in (c.gpus if c.gpus is not None else free) if g in free}
    num_ctx = c.num_ctx or ollama.default_num_ctx(node.total_mib, spec)
    kv_type = "f16" if c.kv_cache_dtype == "auto" else c.kv_cache_dtype
    totals = {g.index: g.total_mib for g in node.gpus}
    left = dict(pool)
    needs: dict[int, float] = {}
    p = None
    placed = 0
    for _ in range(c.replicas):
        p = ollama.plan(spec, left, num_ctx=num_ctx, num_parallel=c.num_parallel, kv_type=kv_type)
        for g, mib in zip(p.gpu_indices, p.gpu_mib):
            needs[g] = needs.get(g, 0.0) + mib
            left[g] -= mib
        if not p.full:
            break
        placed += 1
    assert p is not None
    per_gpu = tuple(GpuNeed(g, totals[g], free[g], needs.get(g, 0.0)) for g in sorted(pool))
    reasons = [f"weights {_gib(p.weights_mib)} + KV cache {_gib(p.kv_cache_mib)} (num_ctx {num_ctx:,} × "
               f"{c.num_parallel} parallel, {p.kv_type}) + compute graph {_gib(p.graph_mib)} = {_gib(p.total_mib)}; "
               f"Ollama keeps {ollama.MINIMUM_MIB} MiB free on each GPU"]
    if p.layers_on_gpu == 0:
        best = max(pool.values(), default=0)
        why = (f"no GPU has room for a single layer (most free: {best:,.0f} MiB; needs {_gib(p.total_mib)} in all): "
               "Ollama would run it on the CPU only")
        return FitResult(RED, why, (*reasons, why), per_gpu, ollama_plan=p, replicas_placed=placed)
    if not p.full:
        why = f"partial CPU offload: {p.layers_on_gpu} of {p.total_layers} layers on the GPU, the rest on the CPU (slow)"
        return FitResult(YELLOW, why, (*reasons, why), per_gpu, ollama_plan=p, replicas_placed=placed)
    thin = min((n.left_mib / n.total_mib for n in per_gpu if n.needed_mib), default=1.0)
    where = ", ".join(f"GPU {g}: {n} layers" for g, n in zip(p.gpu_indices, p.gpu_layers))
    if thin < THIN_MARGIN:
        return FitResult(YELLOW, f"fits on the GPU with little to spare ({where})", tuple(reasons), per_gpu,
                         ollama_plan=p, replicas_placed=placed)
    return FitResult(GREEN, f"fits fully on the GPU ({where})", tuple(reasons), per_gpu, ollama_plan=p, replicas_placed=placed)


def _evaluate_plain(c: Candidate, node: NodeView) -> FitResult:
    errors = validate(c, node)
    if errors:
        return FitResult(RED, "; ".join(errors.values()), tuple(errors.values()), field_errors=errors, candidate=c)
    free = _free_after_stops(node, c.assume_stopped)
    result = (_evaluate_vllm if c.engine == "vllm" else _evaluate_ollama)(c, node, free)
    if c.assume_stopped and result.verdict == GREEN:
        names = ", ".join(i.name for n in c.assume_stopped if (i := _find_instance(node, n)))
        result = replace(result, verdict=YELLOW, summary=f"fits only if {names} is stopped: {result.summary}")
    return replace(result, candidate=c)


def _variants(c: Candidate, r: FitResult, node: NodeView) -> list[tuple[str, dict]]:
    """Single changes worth trying, smallest first."""
    out: list[tuple[str, dict]] = []
    if c.engine == "vllm":
        if r.ranks:
            worst = min(r.ranks, key=lambda k: k.free_at_start_mib / k.total_mib)
            top = math.floor(worst.free_at_start_mib / worst.total_mib * 100) / 100
            for util in sorted({round(top - d, 2) for d in (0.0, 0.02, 0.05)} | {round(c.util + d, 2) for d in (0.05, 0.1)}):
                if 0 < util <= 0.98 and util != c.util:
                    out.append((f"--gpu-memory-utilization {util}", {"util": util}))
            fits = min(k.max_model_len_that_fits for k in r.ranks)
            if fits >= 256 and fits < (c.max_model_len or c.model.max_position):
                out.append((f"--max-model-len {fits}", {"max_model_len": fits}))
        if c.kv_cache_dtype == "auto":
            out.append(("--kv-cache-dtype fp8", {"kv_cache_dtype": "fp8"}))
        for tp in (1, 2, 4, 8):
            if tp != c.tp and c.model.heads % tp == 0 and tp <= len(node.gpus):
                out.append((f"--tensor-parallel-size {tp}", {"tp": tp}))
        if (c.quant or c.model.dtype) in ("bf16", "fp16"):
            out += [("fp8 weights (--quantization fp8)", {"quant": "fp8"}), ("a 4-bit AWQ build of the model", {"quant": "awq"})]
    else:
        ctx = c.num_ctx or ollama.default_num_ctx(node.total_mib, c.model)
        for n in (32_768, 16_384, 8_192, 4_096, 2_048):
            if n < ctx:
                out.append((f"num_ctx {n}", {"num_ctx": n}))
        if c.model.flash_attention and c.kv_cache_dtype in ("auto", "f16"):
            out.append(("OLLAMA_KV_CACHE_TYPE=q8_0", {"kv_cache_dtype": "q8_0"}))
        if (c.quant or "q8_0") not in ("q4_k_m", "q4_0"):
            out.append(("a q4_K_M build", {"quant": "q4_k_m"}))
    for inst in sorted(node.instances, key=lambda i: i.total_mib):
        if inst.key not in c.assume_stopped and inst.name not in c.assume_stopped:
            out.append((f"stop {inst.name} (frees {inst.total_mib:,} MiB)", {"assume_stopped": (*c.assume_stopped, inst.key)}))
    return out


def evaluate(c: Candidate, node: NodeView, suggest: bool = True) -> FitResult:
    """The verdict for ``c`` on ``node``, with up to five single changes that would do better."""
    result = _evaluate_plain(c, node)
    if not suggest or result.field_errors or result.verdict == GREEN:
        return result
    found: list[Suggestion] = []
    for text, changes in _variants(c, result, node):
        try:
            other = _evaluate_plain(replace(c, **changes), node)
        except SpecError:
            continue
        if _RANK[other.verdict] < _RANK[result.verdict] and not other.field_errors:
            found.append(Suggestion(text, changes, other.verdict))
    found.sort(key=lambda s: _RANK[s.verdict])  # stable: smaller changes stay first within a verdict
    return replace(result, suggestions=tuple(found[:5]))
