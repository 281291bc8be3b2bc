"""Would this candidate fit on these GPUs now? The verdict, its numbers per GPU, and the
smallest single changes that would make it fit.

Pure and fast (well under 2 ms on a 4-GPU node, suggestions included), because the what-if
panel calls ``evaluate`` on every keystroke and every tick. Bad values come back as
``FitResult.errors`` (field -> why, in the engine's own words where it would refuse them),
never as exceptions.

green  — starts, leaves a margin on every GPU it uses, serves a few max_model_len requests at once
yellow — starts only thinly, holds fewer than a few such requests, runs partly on the CPU, or
         fits only because an instance is assumed stopped
red    — would not start, cannot hold one request of max_model_len, or gets no GPU at all
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from vramtop.fit import ollama, vision, vllm
from vramtop.fit.engines import OLLAMA, VLLM
from vramtop.fit.placement import (
    NodeView, find_instance, free_after_stops, node_from_snapshot, ollama_devices, pick_replica_sets,
)
from vramtop.fit.specs import BITS_PER_WEIGHT, ModelSpec, normalize_format
from vramtop.units import GIB, MIB, gib_of_bytes

if TYPE_CHECKING:
    from vramtop.analysis.instances import Instance
    from vramtop.snapshot import NodeSnapshot

GREEN, YELLOW, RED, INVALID = "green", "yellow", "red", "invalid"
WORDS = {GREEN: "GREEN", YELLOW: "YELLOW", RED: "RED", INVALID: "INVALID"}
SYMBOLS = {GREEN: "✓", YELLOW: "!", RED: "✗", INVALID: "?"}
_RANK = {GREEN: 0, YELLOW: 1, RED: 2, INVALID: 3}
MIN_CONCURRENCY = 4  # "serves at least a few requests of max_model_len at once"
THIN_MIB = 512  # less than this left free on a GPU after start-up is a thin fit
VLLM_KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
ACT_DTYPES = ("auto", "bfloat16", "float16", "float32")
MM_ENCODER_TP_MODES = ("weights", "data")
# Towers whose vLLM model sets ``supports_encoder_tp_data`` (qwen2_5_vl.py, qwen3_vl.py; not
# gemma3_mm.py): for any other, ModelConfig (vllm/config/model.py) warns and falls back to
# "weights".
ENCODER_TP_DATA_FAMILIES = (vision.QWEN2_5_VL, vision.QWEN3_VL)


@dataclass(frozen=True)
class Candidate:
    """A model and how it would be served. ``None`` takes the engine's (or model's) default.

    Field names are the engines' own (and the what-if form's). ``stopped``: instance keys (or
    names, or root PIDs) whose memory counts as free.
    """

    model: ModelSpec
    engine: str = VLLM
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str | None = None  # vLLM activation dtype: auto / bfloat16 / float16 / float32
    quantization: str | None = None  # weights: bfloat16, fp8, awq, gptq, q8_0, q4_k_m, ...
    kv_cache_dtype: str | None = None  # vLLM auto / fp8; Ollama f16 / q8_0 / q4_0
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    num_ctx: int | None = None
    num_parallel: int | None = None
    replicas: int = 1  # Ray Serve replicas, each on its own tensor_parallel_size GPUs
    pipeline_parallel_size: int = 1  # vLLM: layers split into this many stages of TP ranks each
    data_parallel_size: int = 1  # vLLM: engine copies, each on its own TP × PP GPUs
    enable_expert_parallel: bool = False  # vLLM: whole MoE experts per rank over DP × TP ranks
    gpus: tuple[int, ...] | None = None  # None: the GPUs with most free memory
    stopped: tuple[str, ...] = ()
    vllm_version: str | None = None  # the release to model (None: the newest modelled)
    enable_prefix_caching: bool = False  # vLLM: state layers then keep two blocks per request
    # vLLM's multimodal profile run: items a prompt per modality ((("image", 2),); None: 999 of
    # each), the encoder left out of the profile, the encoder sharded ("weights") or whole per rank
    limit_mm_per_prompt: tuple[tuple[str, int], ...] | None = None
    skip_mm_profiling: bool = False
    mm_encoder_tp_mode: str | None = None  # None: vLLM's "weights"
    speculative_config: vllm.SpeculativeConfig | None = None  # vLLM's --speculative-config (None: off)

    def with_(self, **changes: Any) -> "Candidate":
        return replace(self, **changes)


@dataclass(frozen=True)
class GpuNeed:
    """One GPU the candidate would use: what it needs there against what is free."""

    gpu_index: int
    needed_mib: int
    free_mib: int  # free now, plus what assumed-stopped instances hold here
    total_mib: int
    note: str = ""  # "TP rank 0", "12 layers", ...

    @property
    def fits(self) -> bool:
        return self.needed_mib <= self.free_mib

    @property
    def left_mib(self) -> int:
        return self.free_mib - self.needed_mib


@dataclass(frozen=True)
class BudgetLine:
    """One part of the memory budget of one GPU (the tightest): label, MiB, a note."""

    label: str
    mib: int
    note: str = ""


@dataclass(frozen=True)
class Suggestion:
    """A change that would do better: ``field`` and ``value`` (the main change, as the form
    spells them), ``changes`` (every Candidate field it sets, two for a pair), and the verdict
    it would get."""

    field: str
    value: str
    text: str
    verdict: str
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FitResult:
    """The verdict and every number behind it. ``errors``: field -> why (verdict INVALID)."""

    verdict: str
    headline: str
    reasons: tuple[str, ...] = ()
    per_gpu: tuple[GpuNeed, ...] = ()
    budget: tuple[BudgetLine, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)
    engine: str = VLLM
    model: str = ""
    engine_error: str | None = None  # what vLLM / Ollama would print when it refuses
    ranks: tuple[vllm.RankBudget, ...] = ()  # vLLM: the first replica's ranks
    max_model_len: int | None = None
    ollama_plan: ollama.OllamaPlan | None = None
    replicas_placed: int = 0

    @property
    def word(self) -> str:
        return WORDS[self.verdict]

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.verdict]

    @property
    def line(self) -> str:
        """"✓ GREEN  fits: ..." — never colour alone."""
        return f"{self.symbol} {self.word}  {self.headline}"

    def _tightest(self) -> vllm.RankBudget | None:
        return min(self.ranks, key=lambda r: (r.max_concurrency, r.kv_cache_bytes)) if self.ranks else None

    @property
    def weights_gib(self) -> float | None:
        r = self._tightest()
        return round(r.weights_bytes / GIB, 2) if r else None

    @property
    def kv_cache_gib(self) -> float | None:
        r = self._tightest()
        return round(r.kv_cache_bytes / GIB, 2) if r else None

    @property
    def kv_cache_tokens(self) -> int | None:
        return min(r.kv_cache_tokens for r in self.ranks) if self.ranks else None

    @property
    def max_concurrency(self) -> float | None:
        return round(min(r.max_concurrency for r in self.ranks), 2) if self.ranks else None

    @property
    def max_model_len_that_fits(self) -> int | None:
        return min(r.max_model_len_that_fits for r in self.ranks) if self.ranks else None

    def to_json(self) -> dict[str, Any]:
        """The machine-readable verdict (``vramtop fit --json``)."""
        out: dict[str, Any] = {
            "verdict": self.verdict, "word": self.word, "symbol": self.symbol,
            "headline": self.headline, "engine": self.engine, "model": self.model,
            "reasons": list(self.reasons),
            "suggestions": [{"field": s.field, "value": s.value, "text": s.text, "verdict": s.verdict}
                            for s in self.suggestions],
            "per_gpu": [{"gpu_index": g.gpu_index, "needed_mib": g.needed_mib, "free_mib": g.free_mib,
                         "total_mib": g.total_mib, "fits": g.fits, "note": g.note} for g in self.per_gpu],
            "errors": dict(self.errors),
            "engine_error": self.engine_error,
        }
        if self.engine == VLLM and self.ranks:
            out.update({
                "weights_gib": self.weights_gib, "kv_cache_gib": self.kv_cache_gib,
                "kv_cache_tokens": self.kv_cache_tokens, "max_concurrency": self.max_concurrency,
                "max_model_len": self.max_model_len,
                "max_model_len_that_fits": self.max_model_len_that_fits,
                "ranks": [{
                    "gpu_index": r.gpu_index, "rank": i,
                    "weights_gib": round(r.weights_bytes / GIB, 2),
                    "activation_gib": round(r.activation_bytes / GIB, 2),
                    "non_torch_gib": round(r.non_torch_bytes / GIB, 2),
                    "cudagraph_gib": round(r.cudagraph_bytes / GIB, 2),
                    "requested_gib": round(r.requested_bytes / GIB, 2),
                    "kv_cache_gib": round(r.kv_cache_bytes / GIB, 2),
                    "kv_cache_tokens": r.kv_cache_tokens,
                    "max_concurrency": round(r.max_concurrency, 2),
                    "max_model_len_that_fits": r.max_model_len_that_fits,
                } for i, r in enumerate(self.ranks)],
            })
        if self.ollama_plan is not None:
            p = self.ollama_plan
            out["ollama"] = {
                "layers_on_gpu": p.layers_on_gpu, "total_layers": p.total_layers,
                "gpu_layers": {str(g): n for g, n in p.gpu_layers.items()},
                "size_gb": round(p.total_bytes / 1e9, 1), "weights_gib": round(p.weights_bytes / GIB, 2),
                "kv_cache_gib": round(p.kv_cache_bytes / GIB, 2), "graph_gib": round(p.graph_bytes / GIB, 2),
                "num_ctx": p.num_ctx, "num_parallel": p.num_parallel, "kv_cache_type": p.kv_type,
                "quantization": p.quant,
            }
        out["replicas_placed"] = self.replicas_placed
        return out


# ---- validation -------------------------------------------------------------------------------

def _known_format(text: str) -> bool:
    return normalize_format(text) in BITS_PER_WEIGHT or normalize_format(text) == "auto"


def validate(c: Candidate, node: NodeView) -> dict[str, str]:
    """Field -> why it cannot be used, as vLLM or Ollama would refuse it."""
    errors: dict[str, str] = {}
    spec = c.model
    if c.engine not in (VLLM, OLLAMA):
        errors["engine"] = f"engine must be vllm or ollama, not '{c.engine}'"
        return errors
    util = c.gpu_memory_utilization
    if util is not None and not (isinstance(util, (int, float)) and 0 < util <= 1):
        errors["gpu_memory_utilization"] = f"gpu_memory_utilization must be in (0, 1], got {util}"
    tp = c.tensor_parallel_size
    if not isinstance(tp, int) or tp < 1:
        errors["tensor_parallel_size"] = f"tensor_parallel_size must be a whole number ≥ 1, got {tp}"
    elif c.engine == VLLM and spec.heads % tp:
        errors["tensor_parallel_size"] = (
            f"Total number of attention heads ({spec.heads}) must be divisible by tensor "
            f"parallel size ({tp}).")
    elif c.engine == OLLAMA and tp != 1:
        errors["tensor_parallel_size"] = "Ollama has no tensor parallelism; it spreads layers over GPUs"
    for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "num_ctx", "num_parallel"):
        v = getattr(c, name)
        if v is not None and (not isinstance(v, int) or v < 1):
            errors[name] = f"{name} must be a whole number ≥ 1, got {v}"
    if c.engine == VLLM and isinstance(c.max_model_len, int) and c.max_model_len > spec.max_position:
        errors["max_model_len"] = (
            f"User-specified max_model_len ({c.max_model_len}) is greater than the derived "
            f"max_model_len (max_position_embeddings={spec.max_position} in the model's config.json).")
    if c.engine == VLLM and isinstance(c.max_num_batched_tokens, int) and isinstance(c.max_num_seqs, int) \
            and c.max_num_batched_tokens < c.max_num_seqs:
        errors["max_num_batched_tokens"] = (
            f"max_num_batched_tokens ({c.max_num_batched_tokens}) must be greater than or equal "
            f"to max_num_seqs ({c.max_num_seqs}).")
    for name in ("pipeline_parallel_size", "data_parallel_size"):
        v = getattr(c, name)
        if not isinstance(v, int) or v < 1:
            errors[name] = f"{name} must be a whole number ≥ 1, got {v}"
        elif c.engine == OLLAMA and v != 1:
            errors[name] = f"{name} is vLLM's; Ollama spreads layers over GPUs itself"
    pp = c.pipeline_parallel_size
    if "pipeline_parallel_size" not in errors and pp > spec.layers:
        errors["pipeline_parallel_size"] = (  # get_pp_indices would leave a stage without layers
            f"pipeline_parallel_size ({pp}) is more than the model's {spec.layers} layers: "
            "each stage needs at least one")
    if not isinstance(c.replicas, int) or c.replicas < 1:
        errors["replicas"] = f"replicas must be a whole number ≥ 1, got {c.replicas}"
    elif c.engine == OLLAMA and c.replicas != 1:
        errors["replicas"] = "replicas apply to vLLM under Ray Serve; Ollama runs one copy per server"
    if c.quantization is not None and not _known_format(c.quantization):
        errors["quantization"] = (f"unknown dtype / quantization '{c.quantization}' "
                                  "(bfloat16, float16, fp8, awq, gptq, q8_0, q4_K_M, ...)")
    if c.dtype is not None and normalize_format(c.dtype) not in ACT_DTYPES:
        errors["dtype"] = f"dtype must be auto, bfloat16, float16 or float32, not '{c.dtype}'"
    kv = c.kv_cache_dtype
    if kv is not None:
        if c.engine == VLLM and kv.lower() not in VLLM_KV_DTYPES:
            errors["kv_cache_dtype"] = f"vLLM kv_cache_dtype must be auto or fp8, not '{kv}'"
        if c.engine == OLLAMA and kv.lower() not in ollama.KV_ELEMENT_BYTES:
            errors["kv_cache_dtype"] = f"Ollama's KV cache type is f16, q8_0 or q4_0, not '{kv}'"
    if c.mm_encoder_tp_mode is not None and c.mm_encoder_tp_mode not in MM_ENCODER_TP_MODES:
        errors["mm_encoder_tp_mode"] = (f"mm_encoder_tp_mode must be weights or data, "
                                        f"not '{c.mm_encoder_tp_mode}'")
    for modality, count in c.limit_mm_per_prompt or ():
        if not isinstance(count, int) or count < 0:
            errors["limit_mm_per_prompt"] = f"limit_mm_per_prompt: {modality} must be a whole number ≥ 0, got {count}"
    if c.engine == OLLAMA and mm_flags_given(c):
        name = next(n for n in ("limit_mm_per_prompt", "skip_mm_profiling", "mm_encoder_tp_mode")
                    if getattr(c, n) not in (None, False))
        errors[name] = f"{name} is vLLM's; Ollama has no multimodal profile run"
    if c.vllm_version is not None:
        try:
            vllm.parse_version(c.vllm_version)
        except ValueError as exc:
            errors["vllm_version"] = str(exc)
    if c.gpus is not None:
        known = [g.index for g in node.gpus]
        bad = [g for g in c.gpus if g not in known]
        if bad:
            errors["gpus"] = (f"no GPU {bad[0]} on {node.label} "
                              f"(it has {', '.join(map(str, known)) or 'none'})")
        elif len(set(c.gpus)) != len(c.gpus):
            errors["gpus"] = "a GPU is listed twice"
        elif c.engine == VLLM and isinstance(tp, int) and not errors.keys() & _SIZES \
                and len(c.gpus) < gpus_needed(c):
            errors["gpus"] = f"{len(c.gpus)} GPU(s) listed; {_shape(c)} need {gpus_needed(c)}"
    for ref in c.stopped:
        if find_instance(node, ref) is None:
            errors["stopped"] = f"no running instance '{ref}' on {node.label}"
    return errors


# ---- engines ----------------------------------------------------------------------------------

_SIZES = {"replicas", "pipeline_parallel_size", "data_parallel_size"}


def gpus_needed(c: Candidate) -> int:
    """replicas × data_parallel_size × pipeline_parallel_size × tensor_parallel_size."""
    return c.replicas * c.data_parallel_size * c.pipeline_parallel_size * c.tensor_parallel_size


def _shape(c: Candidate) -> str:
    """"2 replica(s) × tensor_parallel_size 2", with the PP and DP factors where not 1."""
    parts = [f"{c.replicas} replica(s)"] if c.replicas > 1 or c.data_parallel_size == 1 else []
    parts += [f"data_parallel_size {c.data_parallel_size}"] if c.data_parallel_size > 1 else []
    parts += [f"pipeline_parallel_size {c.pipeline_parallel_size}"] if c.pipeline_parallel_size > 1 else []
    return " × ".join([*parts, f"tensor_parallel_size {c.tensor_parallel_size}"])


def _rank_name(c: Candidate, engine_no: int, k: int) -> str:
    """GPU ``k`` of engine ``engine_no``: vLLM numbers ranks with TP innermost, then PP, then
    DP (``vllm/config/parallel.py``), and each rank takes the next visible GPU."""
    tp, pp, dp = c.tensor_parallel_size, c.pipeline_parallel_size, c.data_parallel_size
    words = []
    if c.replicas > 1:
        words.append(f"replica {engine_no // dp + 1}")
    if dp > 1:
        words.append(f"DP rank {engine_no % dp}")
    if pp > 1:
        words.append(f"PP stage {k // tp}")
    words.append(f"TP rank {k % tp}")
    if c.enable_expert_parallel and c.model.experts > 1:
        ep = engine_no % dp * tp + k % tp
        held = vllm.local_experts(c.model.experts, dp * tp, ep)
        words.append(f"EP rank {ep} ({held} expert{'' if held == 1 else 's'})")
    return " ".join(words)


def is_multimodal(spec: ModelSpec) -> bool:
    """Whether the model has an encoder vLLM's multimodal arguments act on."""
    return spec.vision is not None or spec.vision_params > 0


def mm_flags_given(c: Candidate) -> bool:
    """Any of vLLM's multimodal flags was given (a text-only model's engine ignores them)."""
    return c.limit_mm_per_prompt is not None or c.skip_mm_profiling or c.mm_encoder_tp_mode is not None


def mm_profile(c: Candidate) -> vllm.MmProfile:
    """``c``'s multimodal arguments as vLLM applies them: the image limit (999 where unset,
    ``MultiModalConfig.get_limit_per_prompt``), and ``--mm-encoder-tp-mode data`` only for a
    tower whose model supports it (else vLLM falls back to "weights")."""
    mode = c.mm_encoder_tp_mode or "weights"
    if mode == "data" and (c.model.vision is None or c.model.vision.family not in ENCODER_TP_DATA_FAMILIES):
        mode = "weights"
    image = dict(c.limit_mm_per_prompt or ()).get("image", vllm.DEFAULT_MM_LIMIT)
    return vllm.MmProfile(image, c.skip_mm_profiling, mode)


def _vllm_config(c: Candidate, total_mib: int, gpu_name: str = "") -> vllm.VllmConfig:
    dtype = normalize_format(c.dtype) if c.dtype else "auto"
    if dtype == "auto":
        dtype = c.model.dtype if c.model.dtype in ("float16", "float32") else "bfloat16"
    fmt = c.quantization or c.model.quant_hint
    fmt = None if fmt is None or normalize_format(fmt) in ("auto", normalize_format(c.model.dtype)) else fmt
    return vllm.VllmConfig(
        tp=c.tensor_parallel_size, pp=c.pipeline_parallel_size, dp=c.data_parallel_size,
        ep=c.enable_expert_parallel,
        util=vllm.DEFAULT_UTIL if c.gpu_memory_utilization is None else float(c.gpu_memory_utilization),
        max_model_len=c.max_model_len or c.model.max_position,
        kv_cache_dtype=(c.kv_cache_dtype or "auto").lower(),
        max_num_seqs=c.max_num_seqs or vllm.default_max_num_seqs(total_mib, gpu_name),
        max_num_batched_tokens=c.max_num_batched_tokens or vllm.default_max_num_batched_tokens(total_mib, gpu_name),
        enforce_eager=c.enforce_eager, weights_format=fmt, dtype=dtype,
        version=vllm.parse_version(c.vllm_version or vllm.NEWEST_MODELLED),
        prefix_caching=c.enable_prefix_caching, gpu_name=gpu_name, mm=mm_profile(c),
        **vllm.speculative_terms(c.model, c.speculative_config),
    )


def predicted_kv_blocks(c: Candidate, cuda_total_mib: int, gpu_name: str = "", block_size: int = vllm.BLOCK_SIZE) -> int:
    """The ``num_gpu_blocks`` vLLM would report for ``c`` on a GPU of ``cuda_total_mib`` (what
    CUDA calls total), in blocks of ``block_size`` tokens: the check of the engine against a
    running instance's ``vllm:cache_config_info``. Pass the release the instance runs as
    ``c.vllm_version`` where it can be seen (its /metrics or its package)."""
    cfg = _vllm_config(c, cuda_total_mib, gpu_name)
    layout = vllm.layout_for(c.model, cfg)
    rank = vllm.rank_budget(c.model, cfg, 0, cuda_total_mib * MIB, cuda_total_mib * MIB, layout)
    return rank.num_blocks * layout.min_block_size // block_size


@dataclass
class _Outcome:
    verdict: str
    headline: str
    reasons: list[str]
    per_gpu: list[GpuNeed]
    budget: list[BudgetLine]
    engine_error: str | None = None
    ranks: tuple[vllm.RankBudget, ...] = ()
    max_model_len: int | None = None
    plan: ollama.OllamaPlan | None = None
    placed: int = 0


def _vllm(c: Candidate, node: NodeView, free: dict[int, int], brief: bool = False) -> _Outcome:
    tp, replicas = c.tensor_parallel_size, c.replicas
    engines = replicas * c.data_parallel_size  # each DP rank is an engine with its own memory check
    per_engine = tp * c.pipeline_parallel_size
    sets = pick_replica_sets(free, engines, per_engine, c.gpus, node.nodes)
    if not sets and node.nodes:  # cluster mode: a TP×PP group is one node's GPUs
        counts = Counter(node.nodes[g] for g in (c.gpus or free) if g in node.nodes)
        why = (f"no Ray node has {per_engine} GPUs for one engine's TP×PP group (a group cannot span "
               f"nodes; the most on one node is {max(counts.values(), default=0)})")
        return _Outcome(RED, why, [why], [], [])
    if not sets:
        why = f"needs {gpus_needed(c)} GPU(s) ({_shape(c)}); {node.label} has {len(c.gpus) if c.gpus else len(free)}"
        return _Outcome(RED, why, [why], [], [])
    per_gpu: list[GpuNeed] = []
    first: tuple[vllm.RankBudget, ...] = ()
    cfg0: vllm.VllmConfig | None = None
    failure: tuple[vllm.RankBudget, str] | None = None
    layouts: dict[int, vllm.KvLayout] = {}  # per pipeline stage
    slots = {s.index: s for s in node.gpus}
    configs: dict[int, vllm.VllmConfig] = {}
    seen: dict[tuple[int, int, int, int], vllm.RankBudget] = {}  # GPUs alike in size and free memory
    for n, gpus in enumerate(sets):
        ranks = []
        for k, g in enumerate(gpus):
            slot = slots[g]
            stage = k // tp
            cfg = configs.get(slot.cuda_total_mib) or configs.setdefault(
                slot.cuda_total_mib, _vllm_config(c, slot.cuda_total_mib, slot.name))
            layout = layouts.get(stage) or layouts.setdefault(stage, vllm.layout_for(c.model, cfg, stage))
            ep_rank = n % c.data_parallel_size * tp + k % tp
            experts = vllm.local_experts(c.model.experts, c.data_parallel_size * tp, ep_rank) if cfg.ep else 0
            key = (slot.cuda_total_mib, free[g], stage, experts)
            r = seen.get(key)
            if r is None:
                r = seen[key] = vllm.rank_budget(c.model, cfg, g, slot.cuda_total_mib * MIB, free[g] * MIB,
                                                 layout, stage, ep_rank)
            elif r.gpu_index != g:
                r = replace(r, gpu_index=g)
            ranks.append(r)
            per_gpu.append(GpuNeed(g, math.ceil(r.needed_bytes / MIB), free[g], slot.total_mib,
                                   _rank_name(c, n, k) + (f" on node {slot.node}" if slot.node else "")))
            if failure is None and not (r.starts and 0 < r.kv_cache_bytes and r.request_bytes <= r.kv_cache_bytes
                                        and r.num_blocks):
                failure = (r, "" if brief else vllm.failure(r, cfg))
        if n == 0:
            first, cfg0 = tuple(ranks), cfg
    assert cfg0 is not None
    # the engine gives all ranks the smallest block count (pipeline stages differ in layers)
    tight = min(first, key=lambda r: (r.max_concurrency, r.kv_cache_bytes))
    reasons: list[str] = []
    budget: list[BudgetLine] = []
    if not brief:
        reasons, budget = _vllm_details(c, cfg0, tight, per_gpu)
    common = dict(ranks=first, max_model_len=cfg0.max_model_len, placed=len(sets) // c.data_parallel_size)
    if len(sets) < engines:
        what = "replicas" if c.data_parallel_size == 1 else "engines (replicas × data_parallel_size)"
        why = (f"only {len(sets)} of {engines} {what} get {per_engine} free GPU(s) each "
               f"({len(free)} GPU(s) on {node.label})")
        return _Outcome(RED, why, [why, *reasons], per_gpu, budget, **common)
    if failure is not None:
        r, msg = failure
        if r.weights_bytes >= r.requested_bytes:
            why = _weights_exceed(c, cfg0, r, len(node.gpus))
        elif not r.starts:
            why = (f"vLLM would not start on GPU {r.gpu_index}: it needs "
                   f"{math.ceil(r.needed_bytes / MIB):,} MiB free, {int(r.free_bytes / MIB):,} MiB is free")
        elif r.kv_cache_bytes <= 0:
            why = (f"no room for a KV cache: weights, activations and overhead take more than "
                   f"the {gib_of_bytes(r.requested_bytes)} gpu_memory_utilization={cfg0.util} gives")
        else:
            why = (f"KV cache {gib_of_bytes(r.kv_cache_bytes)} cannot hold one request of "
                   f"{cfg0.max_model_len:,} tokens ({gib_of_bytes(r.request_bytes)})")
        hi = min(k.max_util for k in first)
        lo = max(k.min_util for k in first)
        if lo > hi and not brief:
            reasons.append(
                f"no gpu_memory_utilization helps here: starting needs ≤ {hi:.2f}, a KV cache for one "
                f"request of {cfg0.max_model_len:,} tokens needs ≥ {lo:.2f} (it is a share of each GPU's "
                "total memory, not of the model)")
        return _Outcome(RED, why, [why, *reasons], per_gpu, budget, engine_error=msg or None, **common)
    left = min(per_gpu, key=lambda g: g.left_mib)
    if tight.max_concurrency < MIN_CONCURRENCY:
        why = (f"starts, but holds only {tight.max_concurrency:.2f} requests of "
               f"{cfg0.max_model_len:,} tokens at once")
        return _Outcome(YELLOW, why, [why, *reasons], per_gpu, budget, **common)
    if left.left_mib < THIN_MIB:
        why = f"starts with only {left.left_mib:,} MiB left free on GPU {left.gpu_index}"
        return _Outcome(YELLOW, why, [why, *reasons], per_gpu, budget, **common)
    why = (f"fits: {tight.kv_cache_tokens:,} KV tokens, {tight.max_concurrency:.1f}× requests of "
           f"{cfg0.max_model_len:,}; {left.left_mib:,} MiB left on the tightest GPU")
    return _Outcome(GREEN, why, reasons, per_gpu, budget, **common)


def _weights_exceed(c: Candidate, cfg: vllm.VllmConfig, r: vllm.RankBudget, gpus: int) -> str:
    """The plain reason when the weights alone outgrow each GPU's request, with the weights per
    GPU at the smallest tensor parallel size that would leave them room."""
    pp = f" PP {cfg.pp}" if cfg.pp > 1 else ""
    here = f"{gib_of_bytes(r.weights_bytes)} at TP {cfg.tp}{pp}"
    better = ""
    for tp in (2, 4, 8):
        if tp > cfg.tp and gpus_needed(c) // cfg.tp * tp <= gpus and c.model.heads % tp == 0:
            stage = vllm.stages_of(c.model, cfg.pp)[r.stage] if cfg.pp > 1 else None
            w = vllm.weights_per_rank(c.model, cfg.weights_format, tp, stage, cfg.dp, cfg.ep,
                                      mxfp4_backend=cfg.mxfp4_backend)
            if w < r.requested_bytes:
                better = f"{gib_of_bytes(w)} per GPU at TP {tp}{pp}, "
                break
    return (f"weights need {better}{here if better else here.replace(' at', ' per GPU at', 1)}; "
            f"each GPU's request is {gib_of_bytes(r.requested_bytes)} "
            f"(gpu_memory_utilization {cfg.util} × {gib_of_bytes(r.total_bytes)})")


def _block_size(c: Candidate, cfg: vllm.VllmConfig) -> int:
    """The attention block size vLLM picks for ``c`` (16, or more for state layers)."""
    return vllm.layout_for(c.model, cfg).block_size


def _vllm_details(c: Candidate, cfg0: vllm.VllmConfig, tight: vllm.RankBudget,
                  per_gpu: list[GpuNeed]) -> tuple[list[str], list[BudgetLine]]:
    """The budget lines and the reasons, for the tightest rank."""
    tp = cfg0.tp
    budget = [
        BudgetLine("requested", int(tight.requested_bytes / MIB),
                   f"{cfg0.util} × {tight.total_bytes / GIB:.2f} GiB total"),
        BudgetLine("weights", int(tight.weights_bytes / MIB), "Model loading took"),
        BudgetLine("activations", int(tight.activation_bytes / MIB),
                   f"profile run, {cfg0.max_num_batched_tokens} tokens"),
        BudgetLine("non-torch", int(tight.non_torch_bytes / MIB)),
        BudgetLine("CUDA graphs", int(tight.cudagraph_bytes / MIB),
                   "enforce_eager" if c.enforce_eager else "vLLM ≥ 0.21 estimate"
                   if cfg0.graphs_in_request else "on top of the request (vLLM < 0.21)"),
        BudgetLine("KV cache", max(0, int(tight.kv_cache_bytes / MIB)),
                   f"{tight.kv_cache_tokens:,} tokens" if tight.kv_cache_bytes > 0
                   else "none: the rest of the request does not cover the parts above"),
        BudgetLine("context+NCCL", int(tight.overhead_bytes / MIB), "outside the request"),
    ]
    reasons = [
        f"per GPU, vLLM asks for {cfg0.util} × {tight.total_bytes / GIB:.2f} GiB total = "
        f"{gib_of_bytes(tight.requested_bytes)} and needs {gib_of_bytes(tight.overhead_bytes)} more for its CUDA "
        f"context{' and NCCL' if tp * cfg0.pp > 1 else ''}",
    ]
    for g in per_gpu:
        mark = "ok" if g.fits else "SHORT"
        reasons.append(f"GPU {g.gpu_index} ({g.note}): needs {g.needed_mib:,} MiB, "
                       f"free {g.free_mib:,} MiB — {mark}")
    reasons.append(
        f"weights {gib_of_bytes(tight.weights_bytes)} + activations {gib_of_bytes(tight.activation_bytes)} + "
        f"non-torch {gib_of_bytes(tight.non_torch_bytes)}"
        f"{' + CUDA graphs ' + gib_of_bytes(tight.cudagraph_bytes) if cfg0.graphs_in_request else ''} → "
        f"KV cache {gib_of_bytes(tight.kv_cache_bytes)} = {tight.kv_cache_tokens:,} tokens, "
        f"{tight.max_concurrency:.2f}× requests of {cfg0.max_model_len:,}")
    if c.model.weights_from:
        reasons.append(f"weights {c.model.weights_from}")
    reasons += _mm_reasons(c, cfg0)
    reasons += vllm.speculative_reasons(c.model, cfg0)
    if c.model.state_layers:
        reasons.append(f"{c.model.state_layers} of {c.model.layers} layers keep a fixed state per request "
                       f"({c.model.state.kind if c.model.state else 'state'}), not K/V per token; "
                       f"vLLM's attention blocks grow to {_block_size(c, cfg0)} tokens to hold it")
    return reasons, budget


def _mm_reasons(c: Candidate, cfg: vllm.VllmConfig) -> list[str]:
    """What the multimodal arguments do to the profile run, in vLLM's terms."""
    if not is_multimodal(c.model):
        return ["the model has no vision or audio encoder: vLLM ignores --limit-mm-per-prompt, "
                "--skip-mm-profiling and --mm-encoder-tp-mode for it"] if mm_flags_given(c) else []
    out: list[str] = []
    v, mm = c.model.vision, cfg.mm
    if c.mm_encoder_tp_mode == "data" and mm.encoder_tp_mode != "data":
        out.append("vLLM would say: This model does not support `--mm-encoder-tp-mode data`. "
                   "Falling back to `--mm-encoder-tp-mode weights`.")
    elif mm.encoder_tp_mode == "data" and cfg.tp > 1:
        out.append(f"--mm-encoder-tp-mode data: every TP rank holds the whole encoder "
                   f"({c.model.vision_params / 1e6:,.0f}M parameters) and encodes its share of the images")
    if v is None:
        return out
    items = vllm.encoder_items(v, cfg.max_num_batched_tokens, cfg.max_num_seqs, cfg.max_model_len,
                               mm.limit_per_prompt)
    limit = f"limit_mm_per_prompt image={mm.limit_per_prompt}" + (
        "" if "image" in dict(c.limit_mm_per_prompt or ()) else ", vLLM's default")
    if mm.skip_profiling:
        out.append("--skip-mm-profiling: the profile run leaves the vision encoder out, so its peak is "
                   "not reserved (vLLM leaves that to you)")
    elif not items:
        out.append(f"{limit}: no images, so the profile run does not run the vision encoder")
    else:
        out.append(f"profile run: {items} dummy image(s) of {v.embeds_per_item:,} embeddings through the "
                   f"vision encoder, held while the language model runs ({limit})")
    return out


def _ollama_quant(c: Candidate) -> str:
    q = c.quantization or c.model.quant_hint
    if q:
        return normalize_format(q)
    if c.model.origin in ("gguf", "ollama") or c.model.dtype in ("mxfp4",):
        return c.model.dtype
    return ollama.DEFAULT_QUANT


def _ollama(c: Candidate, node: NodeView, free: dict[int, int], brief: bool = False) -> _Outcome:
    pool = {g: free[g] * MIB for g in ollama_devices(free, c.gpus, node.nodes)}
    spec = c.model
    num_ctx = c.num_ctx or ollama.default_num_ctx(sum(g.total_mib for g in node.gpus), spec)
    p = ollama.plan(spec, pool, quant=_ollama_quant(c), num_ctx=num_ctx,
                    num_parallel=c.num_parallel or 1, kv_cache_type=(c.kv_cache_dtype or "f16").lower())
    order = sorted(pool, key=lambda g: (-pool[g], g))
    if p.layers_on_gpu:
        per_gpu = [GpuNeed(g, math.ceil(p.gpu_bytes[g] / MIB), free[g], node.gpu(g).total_mib,
                           f"{p.gpu_layers[g]} layers") for g in order if g in p.gpu_layers]
    else:  # what each GPU would need free to take its first layers
        per_gpu = [GpuNeed(g, math.ceil(p.first_layers_bytes / MIB), free[g], node.gpu(g).total_mib,
                           "first layers") for g in order]
    budget: list[BudgetLine] = []
    reasons: list[str] = []
    if not brief:
        budget, reasons = _ollama_details(p, per_gpu)
    common = dict(plan=p, placed=1 if p.full else 0)
    if p.layers_on_gpu == 0:
        most = max(free[g] for g in pool) if pool else 0
        why = (f"no GPU has room for even one layer (most free: {most:,} MiB); "
               f"Ollama would run all {gib_of_bytes(p.total_bytes)} on the CPU")
        return _Outcome(RED, why, [why, *reasons], per_gpu, budget, **common)
    if not p.full:
        why = (f"partial CPU offload: {p.layers_on_gpu} of {p.total_layers} layers on the GPU "
               f"({p.gpu_share:.0%} of {gib_of_bytes(p.total_bytes)}), the rest on the CPU (slow)")
        return _Outcome(YELLOW, why, [why, *reasons], per_gpu, budget, **common)
    left = min(per_gpu, key=lambda g: g.left_mib)
    where = ", ".join(f"GPU {g.gpu_index}" for g in per_gpu)
    if left.left_mib < THIN_MIB:
        why = f"fits on {where} with only {left.left_mib:,} MiB left on GPU {left.gpu_index}"
        return _Outcome(YELLOW, why, [why, *reasons], per_gpu, budget, **common)
    why = f"fits fully on {where} ({gib_of_bytes(p.total_bytes)}), {left.left_mib:,} MiB left on the tightest GPU"
    return _Outcome(GREEN, why, reasons, per_gpu, budget, **common)


def _ollama_details(p: ollama.OllamaPlan, per_gpu: list[GpuNeed]) -> tuple[list[BudgetLine], list[str]]:
    budget = [BudgetLine("weights", int(p.weights_bytes / MIB), p.quant),
              BudgetLine("KV cache", int(p.kv_cache_bytes / MIB),
                         f"num_ctx {p.num_ctx:,} × {p.num_parallel}, {p.kv_type}"),
              BudgetLine("compute graph", int(p.graph_bytes / MIB), "per GPU used"),
              BudgetLine("kept free", ollama.MINIMUM_MIB, "per GPU used")]
    reasons = [f"weights {gib_of_bytes(p.weights_bytes)} ({p.quant}) + KV cache {gib_of_bytes(p.kv_cache_bytes)} "
               f"(num_ctx {p.num_ctx:,} × {p.num_parallel} parallel, {p.kv_type}) + compute graph "
               f"{gib_of_bytes(p.graph_bytes)}; Ollama keeps {ollama.MINIMUM_MIB} MiB free on each GPU it uses"]
    for g in per_gpu:
        reasons.append(f"GPU {g.gpu_index}: {g.note}, needs {g.needed_mib:,} MiB of {g.free_mib:,} MiB free")
    return budget, reasons


def _judge(c: Candidate, node: NodeView, brief: bool = False) -> FitResult:
    errors = validate(c, node)
    name = c.model.name
    if errors:
        fieldname, why = next(iter(errors.items()))
        return FitResult(INVALID, f"{fieldname}: {why}", tuple(errors.values()), errors=errors,
                         engine=c.engine, model=name,
                         engine_error=why if fieldname in ("tensor_parallel_size", "max_model_len") else None)
    stopped = tuple(find_instance(node, ref) for ref in c.stopped)
    free = free_after_stops(node, stopped)
    engine = _vllm if c.engine == VLLM else _ollama
    out = engine(c, node, free, brief)
    for inst in stopped:
        if inst.unknown_mib and not brief:
            out.reasons.append(f"the driver does not report all of {inst.name}'s memory: stopping it may "
                               "free more than counted here")
    unmodelled = (*c.model.unmodelled, *vllm.speculative_gaps(c.speculative_config))
    if unmodelled:  # what the arithmetic does not know can only lower confidence
        gap = "not modelled: " + "; ".join(unmodelled)
        out.reasons.insert(0, gap)
        if out.verdict == GREEN:
            out.verdict, out.headline = YELLOW, f"{out.headline}; but {gap}"
    if stopped and out.verdict in (GREEN, YELLOW):
        without = engine(c, node, free_after_stops(node, ()), True)
        if _RANK[without.verdict] > _RANK[out.verdict]:
            names = " and ".join(i.name for i in stopped)
            out.reasons.insert(0, f"as things run now: {without.headline}")
            out.verdict, out.headline = YELLOW, f"only if {names} is stopped: {out.headline}"
    return FitResult(
        verdict=out.verdict, headline=out.headline, reasons=tuple(out.reasons),
        per_gpu=tuple(out.per_gpu), budget=tuple(out.budget), engine=c.engine, model=name,
        engine_error=out.engine_error, ranks=out.ranks, max_model_len=out.max_model_len,
        ollama_plan=out.plan, replicas_placed=out.placed,
    )


# ---- suggestions ------------------------------------------------------------------------------

def _floor2(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100


def _ceil2(x: float) -> float:
    return math.ceil(x * 100 - 1e-9) / 100


def _parallel_variants(c: Candidate, node: NodeView) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Pipeline, data and expert parallel changes: PP stages on as many GPUs as the node has
    (a stage per GPU where no TP size divides the heads, GPUs of different sizes each judged
    with their own stage); for a MoE served as several copies, one engine of that many DP
    ranks with expert parallel, whose ranks split the routed experts instead of each holding
    them all; expert parallel where DP or TP ranks already exist."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    per_pp = gpus_needed(c) // c.pipeline_parallel_size
    for pp in (2, 3, 4):
        if pp != c.pipeline_parallel_size and pp <= c.model.layers and per_pp * pp <= len(node.gpus):
            out.append(("pipeline_parallel_size", str(pp), f"--pipeline-parallel-size {pp}",
                        {"pipeline_parallel_size": pp, "gpus": None}))
    if c.model.experts > 1:
        copies = c.replicas * c.data_parallel_size
        if c.replicas > 1:
            out.append(("data_parallel_size", str(copies),
                        f"one engine of --data-parallel-size {copies} --enable-expert-parallel instead of "
                        f"{c.replicas} replicas (the experts split over its ranks)",
                        {"replicas": 1, "data_parallel_size": copies, "enable_expert_parallel": True}))
        if not c.enable_expert_parallel and copies * c.tensor_parallel_size > 1:
            out.append(("enable_expert_parallel", "on", "--enable-expert-parallel",
                        {"enable_expert_parallel": True}))
    return out


def _variants(c: Candidate, r: FitResult, node: NodeView,
              parallel: bool = False) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(field, value, text, changes) for single changes worth trying, smallest first;
    ``parallel``: pipeline, data and expert parallel changes too."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    if c.engine == VLLM:
        util = c.gpu_memory_utilization or vllm.DEFAULT_UTIL
        if r.ranks:
            hi = _floor2(min(k.max_util for k in r.ranks))
            lo = _ceil2(max(k.min_util for k in r.ranks))
            if lo <= hi:
                for u in sorted({min(max(util, lo), hi), hi, _floor2(hi - 0.03)},
                                key=lambda u: abs(u - util)):
                    if 0 < u <= 1 and u != util and u >= lo:
                        out.append(("gpu_memory_utilization", f"{u:.2f}",
                                    f"--gpu-memory-utilization {u:.2f}", {"gpu_memory_utilization": u}))
            fits = min(k.max_model_len_that_fits for k in r.ranks)
            want = r.max_model_len or c.model.max_position
            if fits and min(k.max_concurrency for k in r.ranks) < MIN_CONCURRENCY:
                for n in (fits // MIN_CONCURRENCY, fits):
                    n = n // 1024 * 1024 if n >= 2048 else n // 16 * 16
                    if 16 <= n < want:
                        out.append(("max_model_len", str(n), f"--max-model-len {n}", {"max_model_len": n}))
        if (c.kv_cache_dtype or "auto") == "auto":
            out.append(("kv_cache_dtype", "fp8", "--kv-cache-dtype fp8", {"kv_cache_dtype": "fp8"}))
        for tp in (1, 2, 4, 8):
            if tp != c.tensor_parallel_size and c.model.heads % tp == 0 \
                    and gpus_needed(c) // c.tensor_parallel_size * tp <= len(node.gpus):
                out.append(("tensor_parallel_size", str(tp), f"--tensor-parallel-size {tp}",
                            {"tensor_parallel_size": tp, "gpus": None}))
        if c.replicas > 1:
            out.append(("replicas", str(c.replicas - 1), f"{c.replicas - 1} replica(s)",
                        {"replicas": c.replicas - 1}))
        if parallel:
            out += _parallel_variants(c, node)
        fmt = normalize_format(c.quantization or c.model.quant_hint or c.model.dtype)
        if BITS_PER_WEIGHT.get(fmt, 16) > 8:
            out.append(("quantization", "fp8", "fp8 weights (--quantization fp8)", {"quantization": "fp8"}))
        if BITS_PER_WEIGHT.get(fmt, 16) > 4.5:
            out.append(("quantization", "awq", "a 4-bit AWQ build of the model", {"quantization": "awq"}))
    else:
        p = r.ollama_plan
        ctx = p.num_ctx if p else (c.num_ctx or 4096)
        for n in (65_536, 32_768, 16_384, 8_192, 4_096, 2_048):
            if n < ctx:
                out.append(("num_ctx", str(n), f"num_ctx {n} (OLLAMA_CONTEXT_LENGTH={n})", {"num_ctx": n}))
        if c.model.flash_attention and (c.kv_cache_dtype or "f16") == "f16":
            out.append(("kv_cache_dtype", "q8_0", "OLLAMA_KV_CACHE_TYPE=q8_0", {"kv_cache_dtype": "q8_0"}))
        q = _ollama_quant(c)
        if BITS_PER_WEIGHT.get(q, 16) > 5:
            out.append(("quantization", "q4_k_m", "a q4_K_M build", {"quantization": "q4_k_m"}))
    if c.gpus is not None:
        out.append(("gpus", "auto", "let it pick the GPUs with most free memory", {"gpus": None}))
    taken = {i.key for s in c.stopped if (i := find_instance(node, s)) is not None}
    for inst in _stops_worth_judging(c, node, [i for i in node.instances if i.key not in taken and i.total_mib > 0]):
        out.append(("stopped", inst.key, f"stop {inst.name} (frees {inst.total_mib:,} MiB)",
                    {"stopped": (*c.stopped, inst.key)}))
    return out


MAX_STOPS = 8  # "stop this instance" variants judged: a cluster has thousands of instances


def _stops_worth_judging(c: Candidate, node: NodeView, stoppable: list[Instance]) -> list[Instance]:
    """The instances whose stop is judged, smallest first. Past ``MAX_STOPS``, those that free
    most on the GPUs one engine of the candidate would span (its TP x PP x DP largest releases
    on the GPUs it may use; Ollama's: all of them), ties to the smaller instance: a stop helps
    only through the memory it frees where the candidate runs, the suggestions show two stops,
    and the search for two or three changes together takes its moves from these."""
    if len(stoppable) > MAX_STOPS:
        pool = set(c.gpus) if c.gpus is not None else {g.index for g in node.gpus}
        span = c.pipeline_parallel_size * c.tensor_parallel_size * c.data_parallel_size if c.engine == VLLM \
            else len(pool)

        def frees(inst: Instance) -> int:
            held = (*inst.per_gpu_mib.items(), *node.on_slices.get(inst.key, {}).items())
            return sum(sorted((mib for gpu, mib in held if gpu in pool), reverse=True)[:span])

        stoppable = sorted(stoppable, key=lambda i: (-frees(i), i.total_mib, i.key))[:MAX_STOPS]
    return sorted(stoppable, key=lambda i: (i.total_mib, i.key))


MAX_SUGGESTIONS = 6
MAX_COMBINATIONS = 120  # candidates judged in the search for two or three changes together
# How much each kind of change disturbs: a setting of the new engine costs least, another
# build of the model more, stopping something that serves others most.
_DISRUPTION = {"gpu_memory_utilization": 1, "max_model_len": 2, "num_ctx": 2, "kv_cache_dtype": 3,
               "enable_expert_parallel": 3, "tensor_parallel_size": 4, "pipeline_parallel_size": 4,
               "gpus": 4, "replicas": 5, "data_parallel_size": 5, "quantization": 6, "stopped": 8}
_TUNED = ("gpu_memory_utilization", "max_model_len")  # derived from each combination's own budget


def _merge(moves: tuple[tuple[str, str, str, dict[str, Any]], ...]) -> dict[str, Any] | None:
    """The Candidate changes of several moves together; None when two set one field apart
    from stops, which add up."""
    out: dict[str, Any] = {}
    for fieldname, _, _, changes in moves:
        for k, v in changes.items():
            if k == "stopped" and k in out:
                out[k] = tuple(dict.fromkeys((*out[k], *v)))
            elif k in out and out[k] != v:
                return None
            else:
                out[k] = v
    return out


def _tuning(candidate: Candidate, result: FitResult) -> list[tuple[str, dict[str, Any]]]:
    """The util and max_model_len that ``result``'s own budget allows, when it starts."""
    out: list[tuple[str, dict[str, Any]]] = []
    if candidate.engine == VLLM and result.ranks and all(k.starts for k in result.ranks):
        fits = min(k.max_model_len_that_fits for k in result.ranks)
        n = fits // 1024 * 1024 if fits >= 2048 else fits // 16 * 16
        if 16 <= n < (result.max_model_len or candidate.model.max_position):
            out.append((f"--max-model-len {n}", {"max_model_len": n}))
        hi = _floor2(min(k.max_util for k in result.ranks))
        lo = _ceil2(max(k.min_util for k in result.ranks))
        if lo <= hi and hi != (candidate.gpu_memory_utilization or vllm.DEFAULT_UTIL):
            out.append((f"--gpu-memory-utilization {hi:.2f}", {"gpu_memory_utilization": hi}))
    if candidate.engine == OLLAMA and result.ollama_plan is not None and not result.ollama_plan.full:
        out.append(("num_ctx 8192", {"num_ctx": 8192}))
    return out


def _combinations(candidate: Candidate, variants: list[tuple[str, str, str, dict[str, Any]]],
                  view: NodeView, verdict: str) -> list[Suggestion]:
    """Two or three changes together, when no single one does better: every set of one to three
    structural changes (stop instances, another TP or GPU set, quantization, KV dtype), least
    disruptive first, each then with the util or max_model_len its own budget allows; each
    judged before it is offered. At most ``MAX_COMBINATIONS`` candidates are judged."""
    moves = [v for v in variants if v[0] not in _TUNED]
    sets: list[tuple[int, tuple[tuple[str, str, str, dict[str, Any]], ...]]] = []
    for size in (1, 2, 3):
        for combo in itertools.combinations(moves, size):
            sets.append((sum(_DISRUPTION.get(m[0], 5) for m in combo), combo))
    sets.sort(key=lambda t: t[0])  # stable: within a cost, the order of the single changes
    found: list[Suggestion] = []
    helped: list[set[int]] = []  # the moves of each combination offered: no superset of one is
    judged = 0
    for _, combo in sets:
        ids = {id(m) for m in combo}
        changes = _merge(combo)
        if changes is None or any(h <= ids for h in helped):
            continue
        if judged >= MAX_COMBINATIONS or len(found) >= 3:
            break
        text = " and ".join(m[2] for m in combo)
        base = _judge(replace(candidate, **changes), view, brief=True)
        judged += 1
        if len(combo) > 1 and _RANK[base.verdict] < _RANK[verdict]:
            found.append(Suggestion(combo[0][0], combo[0][1], text, base.verdict, changes))
            helped.append(ids)
            continue
        for more_text, more in _tuning(candidate, base):
            both = {**changes, **more}
            other = _judge(replace(candidate, **both), view, brief=True)
            judged += 1
            if _RANK[other.verdict] < _RANK[verdict]:
                found.append(Suggestion(combo[0][0], combo[0][1], f"{text} and {more_text}",
                                        other.verdict, both))
                helped.append(ids)
                break
    return found


def evaluate(candidate: Candidate, node: NodeSnapshot | NodeView, *, suggest: bool = True,
             parallel_changes: bool = False) -> FitResult:
    """The verdict for ``candidate`` on ``node`` (a snapshot, or a NodeView such as
    ``paper_node("1x24GiB")``), with the smallest changes that would do better: single ones
    first, pairs only when no single change helps. ``parallel_changes``: suggestions may also
    change pipeline, data and expert parallel (for callers that can carry those fields)."""
    view = node if isinstance(node, NodeView) else node_from_snapshot(node)
    result = _judge(candidate, view)
    if not suggest or result.verdict in (GREEN, INVALID):
        return result
    found: list[Suggestion] = []
    seen_fields: dict[str, int] = {}
    variants = _variants(candidate, result, view, parallel_changes)
    for fieldname, value, text, changes in variants:
        if seen_fields.get(fieldname, 0) >= 2:
            continue
        other = _judge(replace(candidate, **changes), view, brief=True)
        if _RANK[other.verdict] < _RANK[result.verdict]:
            found.append(Suggestion(fieldname, value, text, other.verdict, changes))
            seen_fields[fieldname] = seen_fields.get(fieldname, 0) + 1
    if not found and result.verdict == RED:
        found = _combinations(candidate, variants, view, result.verdict)
    found.sort(key=lambda s: _RANK[s.verdict])  # stable: smaller changes first within a verdict
    return replace(result, suggestions=tuple(found[:MAX_SUGGESTIONS]))
