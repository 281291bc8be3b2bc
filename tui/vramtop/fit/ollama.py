"""Ollama / llama.cpp: how many layers of a model its scheduler puts on the GPUs.

Follows Ollama's estimate (``llm/memory.go`` up to v0.12, the layout its engine still uses):
weights per layer plus that layer's KV cache for num_ctx × num_parallel tokens, the compute
graph on each GPU that gets layers, and the 457 MiB Ollama keeps free on every CUDA GPU. Layers
that do not fit go to the CPU (partial offload); none at all means no GPU can help.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.fit.specs import ModelSpec

MIB = 1024 * 1024
GIB = 1024 * MIB
MINIMUM_MIB = 457
NUM_BATCH = 512
KV_ELEMENT_BYTES = {"f16": 2.0, "q8_0": 1.0, "q4_0": 0.5}


def default_num_ctx(node_total_mib: int, spec: ModelSpec) -> int:
    """Ollama ≥ 0.15.5: the context grows with the VRAM of the machine, capped by the model."""
    gib = node_total_mib / 1024
    ctx = 262_144 if gib >= 47 else 32_768 if gib >= 23 else 4_096
    return min(ctx, spec.max_position)


@dataclass(frozen=True)
class OllamaPlan:
    """Where the layers go. ``gpu_layers[i]`` and ``gpu_mib[i]`` follow ``gpu_indices``."""

    gpu_indices: tuple[int, ...]
    gpu_layers: tuple[int, ...]
    gpu_mib: tuple[float, ...]
    total_layers: int  # repeating layers + the output layer
    weights_mib: float
    kv_cache_mib: float
    graph_mib: float
    kv_type: str
    num_ctx: int
    num_parallel: int

    @property
    def layers_on_gpu(self) -> int:
        return sum(self.gpu_layers)

    @property
    def full(self) -> bool:
        return self.layers_on_gpu >= self.total_layers

    @property
    def total_mib(self) -> float:
        """What ``ollama ps`` shows as SIZE: weights, KV cache and graph."""
        return self.weights_mib + self.kv_cache_mib + self.graph_mib


def _kv_per_layer(spec: ModelSpec, num_ctx: int, num_parallel: int, kv_type: str) -> tuple[float, float]:
    """KV bytes of one full-attention layer and of one sliding-window layer."""
    context = num_ctx * num_parallel
    per_token = 2 * spec.head_dim * spec.kv_heads * KV_ELEMENT_BYTES[kv_type]
    window_ctx = min(context, num_parallel * (spec.sliding_window or 0) + NUM_BATCH)
    return context * per_token, window_ctx * per_token


def _graph_bytes(spec: ModelSpec, context: int, flash: bool) -> float:
    batch = min(context, NUM_BATCH)
    logits = 4 * batch * (spec.hidden + spec.vocab)
    if flash:
        return logits
    return max(4 * batch * (1 + 4 * spec.hidden + context * (1 + spec.heads)), logits)


def plan(
    spec: ModelSpec, free_mib: dict[int, float], *, num_ctx: int, num_parallel: int, kv_type: str,
    overhead_mib: float = 0.0,
) -> OllamaPlan:
    """Place the layers on the GPUs (most free first), as Ollama's scheduler does."""
    flash = spec.flash_attention
    if not flash:
        kv_type = "f16"  # Ollama quantizes the KV cache only with flash attention
    full_kv, sliding_kv = _kv_per_layer(spec, num_ctx, num_parallel, kv_type)
    output_bytes = spec.vocab * spec.hidden * (spec.weight_bytes / max(spec.params, 1))
    repeating = max(0.0, spec.weight_bytes - output_bytes) / spec.layers
    layers = [repeating + (sliding_kv if i < spec.sliding_layers else full_kv) for i in range(spec.layers)]
    graph = _graph_bytes(spec, num_ctx * num_parallel, flash)
    kv_total = spec.sliding_layers * sliding_kv + (spec.layers - spec.sliding_layers) * full_kv

    order = sorted(free_mib, key=lambda g: (-free_mib[g], g))
    pending = list(reversed(layers)) + [output_bytes]  # Ollama places from the last block down
    placed: dict[int, int] = {g: 0 for g in order}
    used: dict[int, float] = {g: 0.0 for g in order}
    for g in order:
        room = (free_mib[g] - MINIMUM_MIB - overhead_mib) * MIB - graph
        if not pending or room < 2 * pending[0]:
            continue
        while pending and pending[0] <= room:
            room -= pending[0]
            used[g] += pending.pop(0)
            placed[g] += 1
        if placed[g]:
            used[g] += graph
    gpus = tuple(g for g in order if placed[g])
    return OllamaPlan(
        gpu_indices=gpus,
        gpu_layers=tuple(placed[g] for g in gpus),
        gpu_mib=tuple(used[g] / MIB + MINIMUM_MIB for g in gpus),
        total_layers=spec.layers + 1,
        weights_mib=spec.weight_bytes / MIB,
        kv_cache_mib=kv_total / MIB,
        graph_mib=graph / MIB,
        kv_type=kv_type,
        num_ctx=num_ctx,
        num_parallel=num_parallel,
    )
