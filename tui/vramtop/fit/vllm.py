"""vLLM's memory budget per GPU rank, as vLLM V1 computes it at start-up.

requested = gpu_memory_utilization × the GPU's *total* memory (not the model's size); vLLM
refuses to start when the free memory it sees is below that. The KV cache gets what is left of
``requested`` after the weights (sharded by TP), the activation peak of the profile run, non-torch
memory (CUDA context buffers, NCCL with TP > 1) and, since v0.21, the CUDA-graph estimate.
Formulas follow vLLM V1 (v0.21+); the overhead constants are typical figures from public logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.fit.specs import ModelSpec

MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK_SIZE = 16
CUDA_CONTEXT_MIB = 450  # taken from free memory before vLLM's start-up check
NON_TORCH_MIB = 250
NCCL_MIB = 400  # extra non-torch memory with tensor parallelism
DEFAULT_UTIL = 0.9
DEFAULT_MAX_NUM_SEQS = 256
DEFAULT_MAX_BATCHED_TOKENS = 2048  # `vllm serve` on GPUs under 70 GiB
LARGE_GPU_MAX_BATCHED_TOKENS = 8192  # 70 GiB and up (not A100)
DEFAULT_MAX_NUM_SEQS_LARGE = 1024


def default_batched_tokens(total_mib: int) -> int:
    return LARGE_GPU_MAX_BATCHED_TOKENS if total_mib >= 70 * 1024 else DEFAULT_MAX_BATCHED_TOKENS


def default_max_num_seqs(total_mib: int) -> int:
    return DEFAULT_MAX_NUM_SEQS_LARGE if total_mib >= 70 * 1024 else DEFAULT_MAX_NUM_SEQS


def kv_element_bytes(spec: ModelSpec, kv_cache_dtype: str) -> int:
    """``auto`` keeps the model's activation dtype (16-bit even for fp8 / 4-bit weights)."""
    return 1 if kv_cache_dtype.startswith("fp8") else 2


def kv_bytes_per_token_layer(spec: ModelSpec, tp: int, kv_cache_dtype: str) -> int:
    """One token of one layer on one rank. MLA caches the latent (not split by TP); otherwise
    K and V of this rank's KV heads, replicated when there are fewer KV heads than ranks."""
    element = kv_element_bytes(spec, kv_cache_dtype)
    if spec.mla:
        return (spec.kv_lora_rank + (spec.qk_rope_head_dim or 0)) * element
    return 2 * max(1, spec.kv_heads // tp) * spec.head_dim * element


def activation_mib(spec: ModelSpec, tp: int, max_batched_tokens: int, max_num_seqs: int) -> float:
    """The torch peak of the profile run: hidden states and the MLP of ``max_batched_tokens``
    tokens, plus the sampler's fp32 logits of ``max_num_seqs`` requests."""
    intermediate = spec.intermediate or 4 * spec.hidden
    per_token = (4 * spec.hidden + 2 * intermediate // tp) * 2
    logits = min(max_num_seqs, max_batched_tokens) * spec.vocab * 4
    return (max_batched_tokens * per_token + logits) / MIB


def cudagraph_mib(spec: ModelSpec, enforce_eager: bool) -> float:
    return 0.0 if enforce_eager else 150.0 + 4.0 * spec.layers


@dataclass(frozen=True)
class RankBudget:
    """One GPU rank, in MiB, named as vLLM's start-up log names them."""

    total_mib: int
    free_mib: float  # free before the engine starts (what nvidia-smi shows)
    requested_mib: float  # gpu_memory_utilization × total
    weights_mib: float  # "Model loading took"
    activation_mib: float
    non_torch_mib: float
    cudagraph_mib: float
    kv_cache_mib: float  # "Available KV cache memory"
    bytes_per_token: int  # all layers of this rank
    per_request_mib: float  # KV one request of max_model_len needs
    kv_cache_tokens: int  # "GPU KV cache size: N tokens"
    max_concurrency: float  # "Maximum concurrency for N tokens per request"
    max_model_len_that_fits: int

    @property
    def free_at_start_mib(self) -> float:
        return self.free_mib - CUDA_CONTEXT_MIB

    @property
    def starts(self) -> bool:
        return self.free_at_start_mib >= self.requested_mib

    @property
    def needed_mib(self) -> float:
        """What the engine takes on this GPU once running: the requested share and its context."""
        return self.requested_mib + CUDA_CONTEXT_MIB


def _per_request_bytes(spec: ModelSpec, plb: int, tokens: int, max_batched_tokens: int) -> int:
    full = spec.layers - spec.sliding_layers
    sliding_tokens = min(tokens, (spec.sliding_window or 0) + max_batched_tokens)
    return full * plb * tokens + spec.sliding_layers * plb * sliding_tokens


def rank_budget(
    spec: ModelSpec, total_mib: int, free_mib: float, *, tp: int, util: float, max_model_len: int,
    kv_cache_dtype: str, max_num_seqs: int, max_batched_tokens: int, enforce_eager: bool,
) -> RankBudget:
    requested = util * total_mib
    weights = spec.weight_bytes / tp / MIB
    activation = activation_mib(spec, tp, max_batched_tokens, max_num_seqs)
    non_torch = NON_TORCH_MIB + (NCCL_MIB if tp > 1 else 0)
    graphs = cudagraph_mib(spec, enforce_eager)
    kv = requested - weights - activation - non_torch - graphs
    plb = kv_bytes_per_token_layer(spec, tp, kv_cache_dtype)
    per_token = plb * spec.layers
    kv_bytes = max(0.0, kv) * MIB
    tokens = int(kv_bytes // per_token) // BLOCK_SIZE * BLOCK_SIZE
    per_request = _per_request_bytes(spec, plb, max_model_len, max_batched_tokens)
    full = spec.layers - spec.sliding_layers
    if full:
        fixed = spec.sliding_layers * plb * ((spec.sliding_window or 0) + max_batched_tokens)
        longest = int((kv_bytes - fixed) // (full * plb))
        if longest < (spec.sliding_window or 0) + max_batched_tokens:
            longest = int(kv_bytes // per_token)
    else:
        longest = spec.max_position
    longest = max(0, min(spec.max_position, longest // BLOCK_SIZE * BLOCK_SIZE))
    return RankBudget(
        total_mib=total_mib, free_mib=free_mib, requested_mib=requested, weights_mib=weights,
        activation_mib=activation, non_torch_mib=non_torch, cudagraph_mib=graphs, kv_cache_mib=kv,
        bytes_per_token=per_token, per_request_mib=per_request / MIB, kv_cache_tokens=tokens,
        max_concurrency=kv_bytes / per_request if per_request else 0.0, max_model_len_that_fits=longest,
    )
