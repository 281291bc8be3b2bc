"""Ollama / llama.cpp: how many of a model's layers Ollama's scheduler puts on the GPUs.

Follows Ollama's estimate (``llm/memory.go`` up to v0.12; its engine's measured layouts since
keep the same parts): each repeating layer is its weights plus its KV cache for
``num_ctx × num_parallel`` tokens (sliding-window layers keep ``num_parallel × window + batch``),
the output layer comes last, every GPU that gets layers also holds the compute graph and the
457 MiB Ollama keeps free on a CUDA GPU, and a vision projector sits on the first GPU. The
scheduler first looks for one GPU that holds everything, then spreads over all GPUs; layers
that still do not fit run on the CPU. Defaults are current Ollama's (≥ 0.15.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.fit.specs import BITS_PER_WEIGHT, ModelSpec, normalize_format, weight_bytes_as
from vramtop.units import MIB

MINIMUM_MIB = 457  # per CUDA GPU (ml/device.go)
NUM_BATCH = 512
DEFAULT_QUANT = "q4_k_m"  # what `ollama pull NAME` gets for most library models
KV_ELEMENT_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def default_num_ctx(node_total_mib: float, spec: ModelSpec) -> int:
    """Ollama ≥ 0.15.5 picks the context from the total memory of all GPUs (server/routes.go:
    ≥ 47 GiB 262144, ≥ 23 GiB 32768, else 4096), capped by the model's trained context."""
    gib = node_total_mib / 1024
    ctx = 262_144 if gib >= 47 else 32_768 if gib >= 23 else 4_096
    return min(ctx, spec.max_position)


def kv_type_used(spec: ModelSpec, kv_cache_type: str) -> str:
    """Ollama quantizes the KV cache only with flash attention (on by default per family)."""
    return kv_cache_type if spec.flash_attention else "f16"


@dataclass(frozen=True)
class OllamaPlan:
    """Where the layers go. ``gpu_layers`` and ``gpu_bytes`` map GPU index to its share."""

    gpu_layers: dict[int, int]
    gpu_bytes: dict[int, float]
    total_layers: int  # repeating layers + the output layer
    weights_bytes: float
    kv_cache_bytes: float
    graph_bytes: float
    kv_type: str
    num_ctx: int
    num_parallel: int
    quant: str
    first_layers_bytes: float = 0.0  # what a GPU needs free to get any layer at all


    @property
    def layers_on_gpu(self) -> int:
        return sum(self.gpu_layers.values())

    @property
    def full(self) -> bool:
        return self.layers_on_gpu >= self.total_layers

    @property
    def total_bytes(self) -> float:
        """What ``ollama ps`` shows as SIZE (weights, KV cache and graph on all devices)."""
        return self.weights_bytes + self.kv_cache_bytes + self.graph_bytes

    @property
    def gpu_share(self) -> float:
        return sum(self.gpu_bytes.values()) / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class _Parts:
    layers: tuple[float, ...]  # bytes of each repeating layer incl. its KV cache
    output: float
    projector: float
    graph: float
    weights: float
    kv: float


def _full_layers(layers: int, full: int) -> set[int]:
    """Which layers keep the whole context when sliding-window and full-attention layers mix:
    interleaved, the last of every ``layers // full`` (Gemma 3: 5 sliding, then 1 full; gpt-oss:
    alternating), as the models lay them out, so a partial offload puts the right sizes on GPUs."""
    if full <= 0:
        return set()
    period = max(1, layers // full)
    chosen = [i for i in range(layers) if i % period == period - 1][:full]
    return set(chosen) | set(range(layers - (full - len(chosen)), layers))


def _parts(spec: ModelSpec, quant: str, num_ctx: int, num_parallel: int, kv_type: str) -> _Parts:
    weights = float(weight_bytes_as(spec, quant) if quant != spec.dtype else spec.weight_bytes)
    bits = BITS_PER_WEIGHT.get(normalize_format(quant), 16.0)
    embedding = spec.vocab * spec.hidden * bits / 8
    projector = spec.vision_params * 2.0
    # token_embd stays on the CPU; the output layer (token_embd again when tied) goes last
    repeating = max(0.0, weights - projector - embedding * (1 if spec.tied else 2)) / spec.layers
    element = KV_ELEMENT_BYTES[kv_type]
    if spec.is_mla:
        per_token = (spec.kv_lora_rank + (spec.qk_rope_head_dim or 0)) * element
    else:
        per_token = 2 * spec.head_dim * spec.kv_heads * element
    context = num_ctx * num_parallel
    window_tokens = min(context, num_parallel * (spec.sliding_window or 0) + NUM_BATCH)
    sliding = spec.sliding_layers if spec.sliding_window else 0
    full = _full_layers(spec.layers, spec.layers - sliding) if sliding else set(range(spec.layers))
    kv_layers = [per_token * (context if i in full else window_tokens) for i in range(spec.layers)]
    batch = min(context, NUM_BATCH)
    logits = 4.0 * batch * (spec.hidden + spec.vocab)
    if spec.flash_attention:
        graph = logits
    else:  # attention scores of one batch against the whole context, in f32
        graph = max(4.0 * batch * (1 + 4 * spec.hidden + context * (1 + spec.heads)), logits)
    return _Parts(tuple(repeating + kv for kv in kv_layers), embedding, projector, graph,
                  weights, sum(kv_layers))


def _place(parts: _Parts, free: dict[int, float], overhead: float) -> tuple[dict[int, int], dict[int, float]]:
    """Ollama's round-robin placement over ``free`` (bytes), the last block first."""
    order = list(free)
    minimum = MINIMUM_MIB * MIB + overhead
    first = order[0] if order else None
    biggest = max(parts.layers, default=0.0)
    room = [g for g in order if free[g] > minimum + parts.graph + 2 * biggest
            + (parts.projector if g == first else 0.0)]
    used = {g: (parts.projector if g == first else 0.0) for g in order}
    count = {g: 0 for g in order}
    placed = 0
    for size in (*reversed(parts.layers), parts.output):
        j = len(room)
        while j > 0:
            g = room[placed % j]
            if free[g] > minimum + parts.graph + used[g] + size:
                used[g] += size
                count[g] += 1
                placed += 1
                break
            room.remove(g)
            j -= 1
        if not room:
            break
    layers = {g: n for g, n in count.items() if n}
    return layers, {g: used[g] + parts.graph + MINIMUM_MIB * MIB for g in layers}


def plan(spec: ModelSpec, free_bytes: dict[int, float], *, quant: str, num_ctx: int,
         num_parallel: int, kv_cache_type: str, overhead_bytes: float = 0.0) -> OllamaPlan:
    """Place ``spec`` on the GPUs of ``free_bytes``: one GPU if one holds it all (most free
    first), else spread over all, else as many layers as fit with the rest on the CPU."""
    kv_type = kv_type_used(spec, kv_cache_type)
    parts = _parts(spec, quant, num_ctx, num_parallel, kv_type)
    total_layers = spec.layers + 1
    by_free = sorted(free_bytes, key=lambda g: (-free_bytes[g], g))
    layers: dict[int, int] = {}
    used: dict[int, float] = {}
    for g in by_free:
        layers, used = _place(parts, {g: free_bytes[g]}, overhead_bytes)
        if sum(layers.values()) >= total_layers:
            break
    else:
        layers, used = _place(parts, {g: free_bytes[g] for g in by_free}, overhead_bytes)
    return OllamaPlan(
        gpu_layers=layers, gpu_bytes=used, total_layers=total_layers,
        weights_bytes=parts.weights, kv_cache_bytes=parts.kv, graph_bytes=parts.graph,
        kv_type=kv_type, num_ctx=num_ctx, num_parallel=num_parallel, quant=quant,
        first_layers_bytes=MINIMUM_MIB * MIB + overhead_bytes + parts.graph + 2 * max(parts.layers, default=0.0)
        + parts.projector,
    )
