"""vLLM V1's memory budget on one GPU rank, as vLLM computes it at start-up.

vLLM asks each rank for ``gpu_memory_utilization × the GPU's total memory`` (not a share of the
model, not of free memory) and refuses to start when less than that is free after its CUDA
context (and, from 0.11.0, its NCCL communicators) exist. The KV cache gets what is
left of the request after the weights (sharded by TP), the activation peak of the profile run,
non-torch memory (which held the communicators before 0.11.0) and, from v0.21.0 on, the
CUDA-graph estimate. Block counts, token counts, concurrency and the "cannot
hold one request" check follow ``vllm/v1/core/kv_cache_utils.py`` (hybrid KV cache manager:
sliding-window layers only keep their window). A multimodal model's profile run also pushes
dummy images through its vision encoder (``encoder_activation_bytes``). Speculative decoding
(``SpeculativeConfig``) adds the draft's weights and layer peak on the last stage, its attention
layers to the KV pool and per-request blocks to state layers. The overhead constants
are typical figures from public start-up logs; ``bench/accuracy_vllm.py`` measures how close
this gets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from math import ceil

from vramtop.fit import mxfp4
from vramtop.fit.specs import (
    BITS_PER_WEIGHT, KEEPS_EMBEDDINGS_16BIT, ModelSpec, normalize_format, weight_bytes_as,
)
from vramtop.fit.vision import VisionSpec
from vramtop.units import GIB, MIB, gib_of_bytes

BLOCK_SIZE = 16
DEFAULT_UTIL = 0.9
CUDA_CONTEXT_MIB = 400  # the worker's CUDA context, used before the start-up check
NCCL_MIB = 600  # the communicators vLLM creates at start-up with TP x PP > 1
NON_TORCH_MIB = 250  # cuBLAS handles, kernels loaded on first use, attention-backend buffers
NON_TORCH_TP_MIB = 250  # more non-torch memory with TP > 1 during the profile run (a typical figure)
# "non-torch memory" is the increase of (CUDA used - torch reserved) from the worker's memory
# snapshot to the end of the profile run (``memory_profiling`` in ``vllm/utils/mem_utils.py``).
# What it holds depends on the release:
# - before 0.7.0 (pull 11809, merged 2025-01-07) it was CUDA used - torch *allocated*, so the
#   caching allocator's reserved but unallocated blocks counted too (1.79 GiB on an H100 at TP 1
#   in pull 10511's log, 0.16 GiB with the same accounting fixed in pull 12126's): not modelled,
#   and bench/accuracy_vllm.py keeps those rows out of its score;
# - from 0.7.0 the snapshot came before the TP / PP communicators (NCCL_MIB) were created, so
#   they were inside non-torch memory (and inside the request);
# - from COMMUNICATORS_BEFORE_SNAPSHOT_FROM (pull 25359, merged 2025-09-22, assumed first in
#   0.11.0: ``init_device`` in ``vllm/v1/worker/gpu_worker.py`` runs
#   ``init_worker_distributed_environment`` before the snapshot) they are made before the
#   snapshot and the start-up check: outside the request. Their size depends on the
#   interconnect (pull 25359 saw about 4.5 GiB; 0.20 GiB of non-torch in all on 3090s in pull
#   14447's log), which is not modelled.
# V1 from 0.8.0 to pull 19312 (June 2025) charged everything on the GPU that torch had not
# allocated, CUDA context and other processes included; that era is not modelled either.
NON_TORCH_EXCLUDES_TORCH_CACHE_FROM = (0, 7, 0)
COMMUNICATORS_BEFORE_SNAPSHOT_FROM = (0, 11, 0)
# The profile run's dummy sampling (top-k and top-p on every request), bytes per request x vocab:
# with the sort (``apply_top_k_top_p`` in ``vllm/v1/sample/ops/topk_topp_sampler.py``) the bf16
# logits (2), their fp32 copy (4), the sorted values (4) and int64 indices (8), and, while
# torch's CUDA sort runs, its int64 index input (8) and the radix sort's alternate key and value
# buffers (4 + 8). vLLM pull 32558 measured 1.25 GB for 256 x 131072 logits, 37 bytes each.
# With the Triton top-k/top-p kernel (vllm pull 33538, masking in place): the bf16 and fp32
# logits, the probabilities and the exponential noise of ``random_sample`` (4 + 4).
SORT_SAMPLER_BYTES_PER_LOGIT = 38
TRITON_SAMPLER_BYTES_PER_LOGIT = 14
LARGE_GPU_MIB = 70 * 1024  # `vllm serve` raises its batch defaults on GPUs this large
# Releases. NEWEST_MODELLED: the newest release whose start-up logs the terms here were checked
# against (bench/vllm_startup_rows.yaml). CUDA-graph memory is estimated and taken out of the
# KV budget from v0.21.0 on ("CUDA graph memory profiling is enabled (default since v0.21.0)"
# in its log); before, the graphs' pool came on top of the request.
# "GPU KV cache size" is blocks // groups x block size up to 0.20.0 (issues 40691 and 43308's
# logs) and max concurrency x max_model_len from 0.21.0 (issue 43308 shows both on one model:
# about 55k tokens on 0.20.0, about 525k on 0.21.0; club-3090 issue 612's log on 0.24.0).
NEWEST_MODELLED = "0.29.1"
CUDAGRAPH_ESTIMATE_FROM = (0, 21, 0)
TOKENS_BY_CONCURRENCY_FROM = (0, 21, 0)
# Pull 33538 (Triton top-k/top-p) was merged in February 2026; 0.16.0 is assumed to be the first
# release with it (as yet unverified). Logs of 0.10.1 and 0.11.0 (issues 23278, 27508) match the
# sort. 0.10.2 and 0.11.0 used FlashInfer's sampler where FlashInfer was installed (pull 26859
# turned it off by default again), which is not modelled.
TRITON_TOP_K_TOP_P_FROM = (0, 16, 0)
# ``limit_mm_per_prompt`` left unset: 999 items of each modality a prompt
# (``MultiModalConfig.get_limit_per_prompt`` in ``vllm/config/multimodal.py``).
DEFAULT_MM_LIMIT = 999
_VERSION = re.compile(r"^\s*v?(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4}))?(?:[.+\-]?[A-Za-z0-9.+\-]{0,40})?\s*$")


def parse_version(text: str) -> tuple[int, int, int]:
    """"0.21.0", "v0.29.1rc1", "0.10.1.dev3+g1234" -> (major, minor, patch); ValueError (one
    line) for anything else."""
    m = _VERSION.match(text)
    if not m:
        raise ValueError(f"a vLLM version looks like 0.21.0, got '{text[:24]}'")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def _large(total_mib: int, gpu_name: str) -> bool:
    return total_mib >= LARGE_GPU_MIB and "a100" not in gpu_name.lower()


def default_max_num_batched_tokens(total_mib: int, gpu_name: str = "") -> int:
    """`vllm serve` (OpenAI server) defaults: 8192 on GPUs of 70 GiB and more (A100 excepted),
    else 2048."""
    return 8192 if _large(total_mib, gpu_name) else 2048


def default_max_num_seqs(total_mib: int, gpu_name: str = "") -> int:
    return 1024 if _large(total_mib, gpu_name) else 256


def kv_element_bytes(kv_cache_dtype: str, dtype: str) -> int:
    """``auto`` is the activation dtype (16-bit even for fp8 or 4-bit weights)."""
    if kv_cache_dtype.startswith("fp8"):
        return 1
    return 4 if dtype == "float32" else 2


@dataclass(frozen=True)
class KvLayout:
    """How vLLM lays out the KV cache of one rank (``kv_cache_utils.py``, hybrid KV cache manager).

    ``page_bytes``: one block of one layer, ``block_size`` tokens. Layers of each kind are cut
    into groups of ``group_size`` (padded) that share one block pool. Full layers take a block
    per ``block_size`` tokens of a request, sliding ones only their window, state layers (Mamba,
    Gated DeltaNet, linear attention) one block per request whatever its length. Sliding layers
    whose page per token differs from the full layers' hold ``window_block_size`` tokens a block.
    """

    page_bytes: int
    full_layers: int
    sliding_layers: int
    window: int
    group_size: int
    full_groups: int
    sliding_groups: int
    block_size: int = BLOCK_SIZE
    state_layers: int = 0
    state_groups: int = 0
    state_blocks: int = 1  # per request and state layer: 1, 2 with prefix caching ("align"), + speculative tokens
    window_block_size: int = 0  # 0: block_size

    @property
    def num_groups(self) -> int:
        return self.full_groups + self.sliding_groups + self.state_groups

    @property
    def sliding_block_size(self) -> int:
        return self.window_block_size or self.block_size

    @property
    def min_block_size(self) -> int:
        """The smallest block of any group (vLLM's report counts tokens in it)."""
        return min(self.block_size, self.sliding_block_size) if self.sliding_layers else self.block_size

    @property
    def bytes_per_token(self) -> int:
        """Per token over the attention layers, as if every one kept every token."""
        return (self.full_layers * self.page_bytes // self.block_size
                + self.sliding_layers * self.page_bytes // self.sliding_block_size)


def state_page_bytes(spec: ModelSpec, tp: int, dtype: str) -> int:
    """One state layer's per-request state on one rank, in the activation dtype (vLLM's
    ``mamba_cache_dtype`` auto); 0 for a model without state layers."""
    if not spec.state_layers or spec.state is None:
        return 0
    return spec.state.page_bytes(tp, 4 if dtype == "float32" else 2)


def kv_layout(spec: ModelSpec, tp: int, element_bytes: int, state_bytes: int = 0,
              prefix_caching: bool = False, speculative_tokens: int = 0) -> KvLayout:
    """Standard attention: K and V of this rank's KV heads (replicated when there are fewer KV
    heads than ranks). MLA: one latent of kv_lora_rank + qk_rope_head_dim, not split by TP.

    Full-attention layers with their own head size or KV heads (Gemma 4) have pages of another
    size than the sliding layers'; ``unify_kv_cache_spec_page_size`` (``kv_cache_utils.py``)
    gives the smaller page a block of as many more tokens as makes it the larger one's size.

    With state layers, vLLM (``HybridAttentionMambaModelConfig.verify_and_update_config`` in
    ``vllm/model_executor/models/config.py``) raises the attention block size in steps of 16
    tokens until an attention page holds the state page, and pads the state page to it.
    ``state_bytes``: one state layer's page (``state_page_bytes``). With prefix caching vLLM
    keeps state layers in its "align" mode, two blocks per request (``MambaSpec``), else one;
    speculative decoding (MTP, EAGLE) adds ``speculative_tokens`` blocks a request to each
    (``MambaSpec.max_memory_usage_bytes`` in ``vllm/v1/kv_cache_interface.py``: 2 + n in align
    mode, 1 + n otherwise).
    """
    if spec.is_mla:
        per_token = window_per_token = (spec.kv_lora_rank + (spec.qk_rope_head_dim or 0)) * element_bytes
    else:
        window_per_token = 2 * max(1, spec.kv_heads // tp) * spec.head_dim * element_bytes
        per_token = 2 * max(1, (spec.full_kv_heads or spec.kv_heads) // tp) \
            * (spec.full_head_dim or spec.head_dim) * element_bytes
    state_layers = spec.state_layers if state_bytes else 0
    block = BLOCK_SIZE
    if state_layers:
        block = BLOCK_SIZE * max(1, ceil(state_bytes / (BLOCK_SIZE * per_token)))
    page = block * per_token
    sliding = spec.sliding_layers if spec.sliding_window else 0
    full = spec.full_layers if state_layers else spec.layers - sliding - spec.no_kv_layers
    window_block = 0
    if sliding and full and window_per_token != per_token:
        small, large = sorted((per_token, window_per_token))
        ratio = large // small if large % small == 0 else 1  # else vLLM pads the smaller page
        block, window_block = (BLOCK_SIZE * ratio, BLOCK_SIZE) if per_token == small else (BLOCK_SIZE, BLOCK_SIZE * ratio)
        page = BLOCK_SIZE * large
    counts = [n for n in (full, sliding, state_layers) if n]
    if not counts:
        return KvLayout(page, 0, 0, 0, 1, 0, 0, block)
    small, big = min(counts), max(counts)
    group = big if big < 1.5 * small else small
    return KvLayout(page, full, sliding, spec.sliding_window or 0, group,
                    ceil(full / group), ceil(sliding / group), block,
                    state_layers, ceil(state_layers / group), (2 if prefix_caching else 1) + speculative_tokens,
                    window_block)


def _sliding_blocks(layout: KvLayout, tokens: int, batched: int) -> int:
    return ceil(min(layout.window - 1 + batched, tokens) / layout.sliding_block_size) + 1


def request_bytes(layout: KvLayout, tokens: int, batched: int) -> int:
    """KV bytes one request of ``tokens`` needs (vLLM's ``max_memory_usage_bytes``, all layers)."""
    full = layout.full_layers * ceil(tokens / layout.block_size)
    sliding = layout.sliding_layers * _sliding_blocks(layout, tokens, batched) if layout.sliding_layers else 0
    return (full + sliding + layout.state_layers * layout.state_blocks) * layout.page_bytes


def num_blocks(layout: KvLayout, available_bytes: float) -> int:
    if available_bytes <= 0:
        return 0
    return int(available_bytes // layout.page_bytes // layout.group_size)


def kv_cache_tokens(layout: KvLayout, blocks: int, max_model_len: int = 0, batched: int = 0) -> int:
    """"GPU KV cache size: N tokens": with ``max_model_len``, as releases from
    ``TOKENS_BY_CONCURRENCY_FROM`` print it (max concurrency x max_model_len); without, as
    earlier ones did (blocks per group x block size, an undercount for hybrid models)."""
    if max_model_len:
        return int(max_concurrency(layout, blocks, max_model_len, batched) * max_model_len)
    return blocks // max(1, layout.num_groups) * layout.min_block_size


def max_concurrency(layout: KvLayout, blocks: int, tokens: int, batched: int) -> float:
    """"Maximum concurrency for N tokens per request": blocks over blocks one request takes."""
    per_request = layout.full_groups * ceil(tokens / layout.block_size) + layout.state_groups * layout.state_blocks
    if layout.sliding_groups:
        per_request += layout.sliding_groups * _sliding_blocks(layout, tokens, batched)
    return blocks / per_request if per_request else 0.0


def longest_len(layout: KvLayout, available_bytes: float, batched: int, cap: int) -> int:
    """The largest max_model_len whose one request fits (vLLM's estimate), 0 if none.

    Past the sliding window's knee only the full-attention layers grow, so the answer is a
    division there; below it (or with no full layers) a bisection over the short range.
    """
    if available_bytes <= 0 or request_bytes(layout, 1, batched) > available_bytes:
        return 0
    if request_bytes(layout, cap, batched) <= available_bytes:
        return cap
    knee = layout.window - 1 + batched if layout.sliding_layers else 1
    if layout.full_layers:
        fixed = layout.sliding_layers * _sliding_blocks(layout, knee, batched) if layout.sliding_layers else 0
        fixed += layout.state_layers * layout.state_blocks
        blocks = (int(available_bytes // layout.page_bytes) - fixed) // layout.full_layers
        tokens = min(cap, blocks * layout.block_size)
        if tokens >= knee:
            return tokens
    lo, hi = 1, min(cap, knee)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if request_bytes(layout, mid, batched) <= available_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def pp_stages(layers: int, pp: int) -> list[tuple[int, int]]:
    """Each pipeline stage's [start, end) of the decoder layers, as ``get_pp_indices`` in
    ``vllm/distributed/utils.py`` splits them: ``layers // pp`` each, the remainder one more
    each from the second-to-last stage backwards (the first and last also hold the embedding
    and the LM head). ``VLLM_PP_LAYER_PARTITION`` is not modelled."""
    parts = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        parts[-i] += 1
    starts = [sum(parts[:k]) for k in range(pp)]
    return [(s, s + n) for s, n in zip(starts, parts)]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its decoder layers, and whether it is the first (embedding) or the
    last (LM head, sampler)."""

    layers: int
    first: bool = True
    last: bool = True


def stages_of(spec: ModelSpec, pp: int) -> list[Stage]:
    return [Stage(end - start, k == 0, k == pp - 1) for k, (start, end) in enumerate(pp_stages(spec.layers, pp))]


def stage_spec(spec: ModelSpec, stage: Stage) -> ModelSpec:
    """``spec`` cut to the stage's layers, for its KV layout and CUDA graphs. A hybrid model's
    sliding / state / KV-less layers are taken in proportion (their order is not known here)."""
    if stage.layers == spec.layers:
        return spec
    share = stage.layers / spec.layers
    return replace(spec, layers=stage.layers, sliding_layers=round(spec.sliding_layers * share),
                   state_layers=round(spec.state_layers * share), no_kv_layers=round(spec.no_kv_layers * share))


def _embedding_bytes(spec: ModelSpec, fmt: str | None) -> float:
    """One vocab × hidden matrix as loaded (16-bit where the quantizer keeps it so)."""
    if fmt is None:
        bits = BITS_PER_WEIGHT.get(normalize_format(spec.dtype), 16.0)
    elif normalize_format(fmt) in KEEPS_EMBEDDINGS_16BIT:
        bits = 16.0
    else:
        bits = BITS_PER_WEIGHT.get(normalize_format(fmt), 16.0)
    return spec.vocab * spec.hidden * bits / 8


def local_experts(experts: int, ep: int, ep_rank: int) -> int:
    """Routed experts one expert-parallel rank holds: ``determine_expert_map``
    (``vllm/model_executor/layers/fused_moe/layer.py``) gives each ``experts // ep`` and the
    remainder one each to the first ranks."""
    return experts // ep + (1 if ep_rank < experts % ep else 0)


def _expert_bytes(spec: ModelSpec, fmt: str | None) -> float:
    """The routed experts' weights as loaded (every layer taken as a MoE layer)."""
    params = spec.layers * spec.experts * 3 * spec.hidden * spec.moe_intermediate
    bits = BITS_PER_WEIGHT.get(normalize_format(fmt or spec.dtype), 16.0)
    return min(params * bits / 8, 0.99 * weight_bytes_as(spec, fmt))


def weights_per_rank(spec: ModelSpec, fmt: str | None, tp: int, stage: Stage | None = None,
                     dp: int = 1, ep: bool = False, ep_rank: int = 0,
                     mxfp4_backend: str | None = None) -> float:
    """Bytes one rank loads: everything sharded by TP, except K/V projections replicated
    when there are fewer KV heads than ranks.

    With pipeline parallel (``stage`` of fewer layers than the model) a rank holds its stage's
    share of the decoder layers; the first stage the embedding and the last the LM head, one
    vocab × hidden matrix each even when tied (vLLM's Llama builds ``embed_tokens`` on the last
    rank too for tied weights, ``vllm/model_executor/models/llama.py``). Layers are taken as
    alike in size; a vision tower counts with the first stage.

    A MoE model's routed experts are split over all ``dp × tp`` ranks whether or not expert
    parallel is on (``flatten_tp_across_dp``, ``vllm/model_executor/layers/fused_moe/config.py``):
    sharded like TP without it, whole experts per rank (``local_experts`` of ``ep_rank``) with
    it. The rest (attention, embeddings, shared experts) is sharded by TP and held by every DP
    rank. MXFP4 experts (gpt-oss) take what ``mxfp4_backend`` allocates for this rank's share
    (``fit/mxfp4.py``); without a backend, their stored bytes.
    """
    total = weight_bytes_as(spec, fmt)
    layers = spec.layers
    experts = _expert_bytes(spec, fmt) if spec.experts > 1 and spec.moe_intermediate else 0.0
    share = 1.0
    if stage is not None and stage.layers != spec.layers:
        emb = _embedding_bytes(spec, fmt)
        body = total - emb * (1 if spec.tied else 2)
        share = stage.layers / spec.layers
        total = body * share + emb * (stage.first + stage.last)
        layers = stage.layers
    if experts and mxfp4_backend and normalize_format(fmt or spec.dtype) == "mxfp4":
        ranks = dp * tp
        held = local_experts(spec.experts, ranks, ep_rank) if ep else spec.experts
        mine = mxfp4.Experts(held, layers, spec.moe_intermediate // (1 if ep else ranks), spec.hidden)
        stored = mxfp4.stored_bytes(mxfp4.Experts(spec.experts, layers, spec.moe_intermediate, spec.hidden))
        return _rest_per_rank(spec, fmt, tp, max(0.0, total - stored), layers) \
            + mxfp4.loaded_bytes(mine, mxfp4_backend)
    if experts and (dp > 1 or ep):
        experts *= share
        here = experts * local_experts(spec.experts, dp * tp, ep_rank) / spec.experts if ep \
            else experts / (dp * tp)
        return _rest_per_rank(spec, fmt, tp, total - experts, layers) + here
    return _rest_per_rank(spec, fmt, tp, total, layers)


def _rest_per_rank(spec: ModelSpec, fmt: str | None, tp: int, total: float, layers: int) -> float:
    """``total`` bytes sharded by TP, K/V projections of ``layers`` replicated where there are
    fewer KV heads than ranks."""
    if tp == 1:
        return float(total)
    bits = BITS_PER_WEIGHT.get(normalize_format(fmt), 16.0) if fmt else 16.0
    if spec.is_mla or spec.kv_heads >= tp:
        return total / tp
    kv_proj = 2 * layers * spec.hidden * spec.head_dim * spec.kv_heads * bits / 8
    return (total - kv_proj) / tp + kv_proj / spec.kv_heads


def sampler_bytes(vocab: int, requests: int, version: tuple[int, int, int]) -> float:
    """The dummy sampling's peak over ``requests`` x ``vocab`` logits in ``version``."""
    per_logit = TRITON_SAMPLER_BYTES_PER_LOGIT if version >= TRITON_TOP_K_TOP_P_FROM \
        else SORT_SAMPLER_BYTES_PER_LOGIT
    return requests * vocab * per_logit


@dataclass(frozen=True)
class MmProfile:
    """The engine arguments that shape a multimodal model's profile run: ``limit_mm_per_prompt``
    (images a prompt; 0 turns the encoder off), ``--skip-mm-profiling``, and
    ``--mm-encoder-tp-mode`` ("weights": the encoder sharded by TP like the rest; "data": every
    rank holds the whole encoder and runs its share of the batch)."""

    limit_per_prompt: int = DEFAULT_MM_LIMIT
    skip_profiling: bool = False
    encoder_tp_mode: str = "weights"


def encoder_items(v: VisionSpec, batched: int, max_num_seqs: int, max_model_len: int,
                  limit: int = DEFAULT_MM_LIMIT) -> int:
    """Items of the largest size the profile run encodes at once. The encoder budget is
    ``max(max_num_batched_tokens, embeddings of one item)`` (``compute_mm_encoder_budget`` in
    ``vllm/v1/core/encoder_cache_manager.py``, compute and cache budget alike when neither is
    set); ``MultiModalBudget.get_max_items`` (``vllm/v1/worker/utils.py``) fits as many items
    into it as the decoder could schedule: ``max_num_seqs`` prompts of
    ``min(limit, max_model_len // embeddings)`` items each (chunked prefill on, as in V1)."""
    if limit <= 0:
        return 0
    per_item = v.embeds_per_item
    budget = max(batched, per_item)
    per_prompt = max(1, min(limit, (max_model_len or per_item) // per_item))
    return max(1, min(budget // per_item, max_num_seqs * per_prompt))


def encoder_pass_bytes(v: VisionSpec, items: int, tp: int, element: int, data_parallel: bool = False) -> float:
    """Torch peak of ``embed_multimodal`` on ``items`` dummy images: their pixels, and in one
    tower layer the residual stream and its normed copy beside the larger of the attention's
    q/k/v and output, or the MLP's hidden (fc1 and its activation; gate/up and their product
    where gated), sharded by TP. Attention scores are not held (the tower's attention runs
    FlashAttention or SDPA's fused kernels). With ``--mm-encoder-tp-mode data`` each rank
    encodes its ``ceil(items / tp)`` share with the whole tower."""
    shard = 1 if data_parallel else tp
    n = (ceil(items / tp) if data_parallel else items) * v.patches_per_item
    mlp = (3 if v.gated else 2) * v.intermediate / shard
    attention = 4 * v.hidden / shard
    pixels = v.channels * v.frames * v.patch * v.patch
    return n * (pixels + 2 * v.hidden + max(mlp, attention)) * element


def encoder_activation_bytes(spec: ModelSpec, batched: int, max_num_seqs: int, max_model_len: int, tp: int,
                             element: int, mm: MmProfile) -> tuple[float, float]:
    """(encoder pass peak, encoder outputs held) of the profile run, (0, 0) without a vision
    tower or with the encoder's profiling skipped or turned off. The outputs are the items'
    embeddings in the text width, which ``profile_run`` keeps in its encoder cache while the
    dummy forward and sampling run (``self.encoder_cache[f"tmp_{i}"]``, cleared after)."""
    v = spec.vision
    if v is None or mm.skip_profiling:
        return 0.0, 0.0
    items = encoder_items(v, batched, max_num_seqs, max_model_len, mm.limit_per_prompt)
    if not items:
        return 0.0, 0.0
    data = mm.encoder_tp_mode == "data" and tp > 1
    return (encoder_pass_bytes(v, items, tp, element, data),
            float(items * v.embeds_per_item * v.text_hidden * element))


def _mlp_per_token(spec: ModelSpec, tp: int) -> float:
    """Elements a token's MLP holds at its peak on one rank: the gated MLP's three projections
    (the routed experts' for a MoE, each with its input)."""
    if spec.experts and spec.experts_per_token:
        return spec.experts_per_token * (3 * spec.moe_intermediate / tp + spec.hidden)
    return 3 * spec.intermediate / tp


def activation_bytes(spec: ModelSpec, tp: int, batched: int, max_num_seqs: int, dtype: str,
                     last_stage: bool = True,
                     version: tuple[int, int, int] = parse_version(NEWEST_MODELLED),
                     max_model_len: int = 0, mm: MmProfile = MmProfile()) -> float:
    """Torch peak of the profile run (``profile_run`` in ``vllm/v1/worker/gpu_model_runner.py``):
    the larger of the forward pass, one layer's live tensors for ``batched`` tokens (hidden and
    residual, the MLP's gate/up and activation, or the fused-MoE buffers), and the dummy
    sampling of ``min(max_num_seqs, batched)`` requests that follows it while the forward's
    hidden states are still held (full vocabulary on every rank of the last pipeline stage;
    earlier stages run no sampler).

    A multimodal model's run first encodes dummy images (``encoder_activation_bytes``), on
    every rank (``profile_run`` does not ask the pipeline stage); the pass's own tensors are
    gone before the forward starts, its outputs are not: the peak is the larger of the encoder
    pass and the outputs plus the language model's peak."""
    element = 4 if dtype == "float32" else 2
    forward = batched * (3 * spec.hidden + _mlp_per_token(spec, tp)) * element
    language = forward
    if last_stage:
        sampling = batched * spec.hidden * element + sampler_bytes(spec.vocab, min(max_num_seqs, batched), version)
        language = max(forward, sampling)
    encoder_pass, encoder_outputs = encoder_activation_bytes(spec, batched, max_num_seqs, max_model_len, tp,
                                                             element, mm)
    return max(encoder_pass, encoder_outputs + language)


def cudagraph_bytes(spec: ModelSpec, enforce_eager: bool) -> float:
    """The CUDA graphs' memory (0.1–0.6 GiB in public logs); where it counts depends on the
    release (``CUDAGRAPH_ESTIMATE_FROM``)."""
    return 0.0 if enforce_eager else (0.1 + 0.008 * spec.layers) * GIB


# Speculative decoding, as ``SpeculativeConfig`` (vllm/config/speculative.py) takes it. "mtp"
# drafts with the target checkpoint's own multi-token-prediction layer(s) (the model-specific
# names, deepseek_mtp, qwen3_next_mtp, ..., all ending in "_mtp", are deprecated aliases of it);
# "eagle", "eagle3",
# "draft_model" (the default when a model is named without a method), "dflash", "medusa" and
# "mlp_speculator" load a separate draft repository; "ngram", "ngram_gpu" and "suffix" look
# tokens up in the prompt and load nothing.
MTP_METHOD = "mtp"
DRAFT_MODEL_METHODS = ("eagle", "eagle3", "draft_model", "dflash", "medusa", "mlp_speculator")
WEIGHTLESS_METHODS = ("ngram", "ngram_gpu", "suffix")
# Draft methods without attention layers of their own (Medusa heads, MLP speculator).
NO_KV_DRAFTS = ("medusa", "mlp_speculator")
# MTP layers a checkpoint ships where its config.json is not at hand (a catalog entry):
# num_nextn_predict_layers / mtp_num_hidden_layers is 1 in every MTP checkpoint vLLM serves today
# (DeepSeek-V3/R1, Qwen3-Next, Qwen3.5/3.6, GLM-4.5, MiMo). A spec read from config.json has its own.
MTP_LAYERS = 1


@dataclass(frozen=True)
class SpeculativeConfig:
    """``--speculative-config`` as the budget needs it: the method (aliases already mapped), the
    tokens drafted a step, the draft repository as named, and that draft resolved to a spec
    (None where it was not, or where the method needs none)."""

    method: str
    num_speculative_tokens: int
    model: str | None = None
    draft: ModelSpec | None = None

    @property
    def needs_draft(self) -> bool:
        return self.method in DRAFT_MODEL_METHODS

    @property
    def unresolved(self) -> bool:
        """A draft repository is needed and could not be read: its weights are not counted."""
        return self.needs_draft and self.draft is None

    def to_engine(self) -> dict[str, object]:
        """The JSON ``vllm serve --speculative-config`` takes."""
        out: dict[str, object] = {"method": self.method}
        if self.model:
            out["model"] = self.model
        out["num_speculative_tokens"] = self.num_speculative_tokens
        return out


def _kv_bytes_per_token(spec: ModelSpec) -> int:
    if spec.is_mla:
        return spec.kv_lora_rank + (spec.qk_rope_head_dim or 0)
    return 2 * (spec.full_kv_heads or spec.kv_heads) * (spec.full_head_dim or spec.head_dim)


def draft_kv_layers(spec: ModelSpec, sc: SpeculativeConfig) -> int:
    """Attention layers the draft adds to the KV pool, counted in the target's layers: an MTP
    module's own (``MTP_LAYERS``); every decoder layer of an EAGLE head or draft model, which vLLM
    registers beside the target's in one KV cache config with the target's block size
    (``get_kv_cache_spec`` in ``vllm/v1/worker/gpu_model_runner.py`` walks the drafter's
    attention layers too), scaled by their K/V width against the target's where it differs;
    none for Medusa, MLP speculators and prompt lookup."""
    if sc.method == MTP_METHOD:
        return spec.mtp_layers or MTP_LAYERS
    if sc.draft is None or sc.method in NO_KV_DRAFTS:
        return 0
    draft = sc.draft
    layers = draft.layers - (draft.state_layers or 0) - (draft.no_kv_layers or 0)
    return ceil(layers * _kv_bytes_per_token(draft) / _kv_bytes_per_token(spec))


def speculative_terms(spec: ModelSpec, sc: SpeculativeConfig | None) -> dict[str, object]:
    """The ``VllmConfig`` fields ``sc`` sets: ``num_speculative_tokens`` (each state layer's
    extra blocks a request), the draft's attention layers and the config itself (its weights)."""
    if sc is None:
        return {}
    return {"speculative": sc, "num_speculative_tokens": sc.num_speculative_tokens,
            "draft_attention_layers": draft_kv_layers(spec, sc)}


def mtp_layer_bytes(spec: ModelSpec, fmt: str | None) -> float:
    """One MTP module as loaded: a decoder layer of the target's shape (taken as the mean of its
    layers, in the target's quantization, which the draft follows: ``SpeculativeConfig``
    gives an MTP draft the target's ``quantization``) and the ``eh_proj`` that joins the
    embedding and the hidden state (2 x hidden -> hidden, 16-bit). Its embedding and LM head are
    the target's (``llm_base_proposer.py``: "Detected MTP model. Sharing target model embedding
    weights with the draft model", the same for lm_head)."""
    body = weight_bytes_as(spec, fmt) - _embedding_bytes(spec, fmt) * (1 if spec.tied else 2) \
        - spec.vision_params * 2
    return max(0.0, body) / spec.layers + 2 * spec.hidden * spec.hidden * 2


def draft_weights_per_rank(spec: ModelSpec, cfg: "VllmConfig") -> float:
    """The draft's weights on one rank of the last pipeline stage, sharded by TP (a draft's
    ``draft_tensor_parallel_size`` defaults to the target's): MTP layers from the target's
    shape, an EAGLE head or draft model from its own repository as stored, prompt lookup
    nothing. An EAGLE head without an embedding of its own shares the target's; one that ships
    its own keeps it unless it equals the target's, which only the weights tell: counted."""
    sc = cfg.speculative
    if sc is None:
        return 0.0
    if sc.method == MTP_METHOD:
        if spec.mtp_bytes:  # the checkpoint's own MTP tensors, as its headers give them
            return spec.mtp_bytes / cfg.tp
        return (spec.mtp_layers or MTP_LAYERS) * mtp_layer_bytes(spec, cfg.weights_format) / cfg.tp
    if sc.draft is not None and sc.needs_draft:
        return weights_per_rank(sc.draft, None, cfg.tp)
    return 0.0


def draft_activation_bytes(spec: ModelSpec, cfg: "VllmConfig") -> float:
    """The drafter's part of the profile run: its dummy run (``drafter.dummy_run`` from
    ``_dummy_run`` in ``vllm/v1/worker/gpu_model_runner.py``) pushes the same tokens through one
    draft layer while the target's hidden states, its input, are held. Taken as one decoder
    layer of the draft's shape (an MTP layer: the target's) plus those hidden states; prompt
    lookup runs no model."""
    sc = cfg.speculative
    if sc is None or sc.method in WEIGHTLESS_METHODS or (sc.method != MTP_METHOD and sc.draft is None):
        return 0.0
    d = spec if sc.method == MTP_METHOD else sc.draft
    element = 4 if cfg.dtype == "float32" else 2
    return cfg.max_num_batched_tokens * (spec.hidden + 3 * d.hidden + _mlp_per_token(d, cfg.tp)) * element


def speculative_reasons(spec: ModelSpec, cfg: "VllmConfig") -> list[str]:
    """What ``--speculative-config`` does to the budget, in vLLM's terms (the "why" lines)."""
    sc = cfg.speculative
    if sc is None:
        return []
    n = sc.num_speculative_tokens
    state = (f"; each of the {spec.state_layers} state layers keeps {n} more block(s) a request"
             if spec.state_layers else "")
    lookahead = (f"{n} lookahead slot(s) a step, within max_model_len (vLLM's allocate_slots caps a "
                 f"request there, so the KV cache figures of one request do not grow){state}")
    if sc.method in WEIGHTLESS_METHODS:
        return [f"speculative decoding by {sc.method}: no draft weights; {lookahead}"]
    weights = gib_of_bytes(draft_weights_per_rank(spec, cfg))
    if sc.method == MTP_METHOD:
        where = ("read from its safetensors headers" if spec.mtp_bytes else
                 "estimated from the model's shape" if spec.mtp_layers else
                 "assumed: the checkpoint ships them")
        return [f"speculative decoding by MTP: the checkpoint's {spec.mtp_layers or MTP_LAYERS} MTP layer(s), "
                f"which vLLM otherwise skips, add {weights} of weights per GPU and {cfg.draft_attention_layers} "
                f"attention layer(s) to the KV pool ({where}); {lookahead}"]
    if sc.draft is None:
        return [f"speculative decoding by {sc.method}: draft not resolved ({sc.model or 'no model named'}): "
                f"its weights and KV layers are not counted; {lookahead}"]
    return [f"speculative decoding by {sc.method} with {sc.draft.name}: {weights} of draft weights per GPU "
            f"({sc.draft.weights_from or sc.draft.source}) and {cfg.draft_attention_layers} attention "
            f"layer(s) in the KV pool; {lookahead}"]


def speculative_gaps(sc: SpeculativeConfig | None) -> tuple[str, ...]:
    """What the verdict cannot count (it then stays YELLOW at best)."""
    if sc is not None and sc.unresolved:
        return (f"the speculative draft '{sc.model or '?'}' (draft not resolved)",)
    return ()


@dataclass(frozen=True)
class VllmConfig:
    """Every engine argument the budget depends on, defaults already applied."""

    tp: int
    util: float
    max_model_len: int
    kv_cache_dtype: str
    max_num_seqs: int
    max_num_batched_tokens: int
    enforce_eager: bool
    weights_format: str | None  # None: as released
    dtype: str  # activation dtype
    version: tuple[int, int, int] = parse_version(NEWEST_MODELLED)
    prefix_caching: bool = False
    pp: int = 1  # pipeline_parallel_size
    dp: int = 1  # data_parallel_size (a MoE model's experts are split over dp × tp ranks)
    ep: bool = False  # enable_expert_parallel
    gpu_name: str = ""  # as NVML names it: picks the MXFP4 MoE backend
    # Speculative decoding (``--speculative-config``): tokens drafted a step, the draft's
    # attention layers holding KV (an MTP module's layers, e.g. 1 for Qwen3.5 / Qwen3.6), and the
    # draft itself (its weights; ``speculative_terms`` sets all three from one config).
    num_speculative_tokens: int = 0
    draft_attention_layers: int = 0
    speculative: SpeculativeConfig | None = None
    mm: MmProfile = MmProfile()  # a multimodal model's profile run

    @property
    def mxfp4_backend(self) -> str:
        return mxfp4.backend_for(self.gpu_name, self.version)

    @property
    def communicators_before_check(self) -> bool:
        """Whether this release creates its TP / PP communicators before its memory snapshot
        (outside the request) rather than inside non-torch memory."""
        return self.version >= COMMUNICATORS_BEFORE_SNAPSHOT_FROM

    @property
    def graphs_in_request(self) -> bool:
        """Whether this release takes the CUDA graphs out of the KV budget (v0.21.0 on)."""
        return self.version >= CUDAGRAPH_ESTIMATE_FROM


@dataclass(frozen=True)
class RankBudget:
    """One GPU rank, in bytes, named as vLLM's start-up log names the figures."""

    gpu_index: int
    total_bytes: float  # what CUDA reports as total
    free_bytes: float  # free before the engine starts
    requested_bytes: float  # gpu_memory_utilization × total
    overhead_bytes: float  # CUDA context (+ communicators from 0.11.0) taken before the start-up check
    weights_bytes: float  # "Model loading took"
    activation_bytes: float
    non_torch_bytes: float
    cudagraph_bytes: float
    kv_cache_bytes: float  # "Available KV cache memory" (negative: no room)
    request_bytes: int  # KV one request of max_model_len needs
    num_blocks: int
    kv_cache_tokens: int  # "GPU KV cache size: N tokens"
    max_concurrency: float  # "Maximum concurrency for N tokens per request"
    max_model_len_that_fits: int
    graphs_outside_bytes: float = 0.0  # CUDA graphs held on top of the request (before v0.21)
    stage: int = 0  # pipeline stage

    @property
    def free_at_check_bytes(self) -> float:
        return self.free_bytes - self.overhead_bytes

    @property
    def starts(self) -> bool:
        return self.free_at_check_bytes >= self.requested_bytes

    @property
    def needed_bytes(self) -> float:
        """What the running engine holds on this GPU: its request plus context (and communicators),
        plus the CUDA graphs' pool where the release does not count it in the request."""
        return self.requested_bytes + self.overhead_bytes + self.graphs_outside_bytes

    @property
    def max_util(self) -> float:
        """The highest gpu_memory_utilization that passes the start-up check here."""
        return max(0.0, self.free_at_check_bytes / self.total_bytes)

    @property
    def min_util(self) -> float:
        """The lowest gpu_memory_utilization whose KV cache holds one max_model_len request."""
        fixed = self.weights_bytes + self.activation_bytes + self.non_torch_bytes + self.cudagraph_bytes \
            - self.graphs_outside_bytes
        return (fixed + self.request_bytes) / self.total_bytes


def layout_for(spec: ModelSpec, cfg: VllmConfig, stage: int = 0) -> KvLayout:
    """The KV layout ``cfg`` gives ``spec`` on one rank of pipeline stage ``stage``; a draft
    model's attention layers (``cfg.draft_attention_layers``) keep their KV on the last stage
    beside the target's full-attention layers, in the same block pool."""
    if cfg.pp > 1:
        spec = stage_spec(spec, stages_of(spec, cfg.pp)[stage])
    if cfg.draft_attention_layers and stage == cfg.pp - 1:
        spec = replace(spec, layers=spec.layers + cfg.draft_attention_layers)
    return kv_layout(spec, cfg.tp, kv_element_bytes(cfg.kv_cache_dtype, cfg.dtype),
                     state_page_bytes(spec, cfg.tp, cfg.dtype), cfg.prefix_caching, cfg.num_speculative_tokens)


def rank_budget(spec: ModelSpec, cfg: VllmConfig, gpu_index: int, total_bytes: float,
                free_bytes: float, layout: KvLayout | None = None, stage: int = 0,
                ep_rank: int = 0) -> RankBudget:
    """The budget of one rank of pipeline stage ``stage`` on a GPU of ``total_bytes`` (as CUDA
    counts it) with ``free_bytes`` free before the engine starts. Each rank checks its own
    GPU (``gpu_worker.py``); the engine then gives every rank the smallest block count.
    ``ep_rank``: ``dp_rank × tp + tp_rank``, which experts the rank holds with expert parallel."""
    layout = layout or layout_for(spec, cfg, stage)
    part = stages_of(spec, cfg.pp)[stage] if cfg.pp > 1 else Stage(spec.layers)
    requested = cfg.util * total_bytes
    weights = weights_per_rank(spec, cfg.weights_format, cfg.tp, part, cfg.dp, cfg.ep, ep_rank, cfg.mxfp4_backend)
    if cfg.dtype == "float32" and cfg.weights_format is None:
        weights *= 2
    if spec.vision is not None and cfg.mm.encoder_tp_mode == "data" and cfg.tp > 1:
        weights += spec.vision_params * (4 if cfg.dtype == "float32" else 2) * (1 - 1 / cfg.tp)  # replicated
    act = activation_bytes(spec, cfg.tp, cfg.max_num_batched_tokens, cfg.max_num_seqs, cfg.dtype, part.last,
                           cfg.version, cfg.max_model_len, cfg.mm)
    if part.last and cfg.speculative is not None:
        weights += draft_weights_per_rank(spec, cfg)
        act = max(act, draft_activation_bytes(spec, cfg))
    communicators = (NCCL_MIB if cfg.tp * cfg.pp > 1 else 0) * MIB
    non_torch = (NON_TORCH_MIB + (NON_TORCH_TP_MIB if cfg.tp > 1 else 0)) * MIB \
        + (0.0 if cfg.communicators_before_check else communicators)
    graphs = cudagraph_bytes(stage_spec(spec, part), cfg.enforce_eager)
    outside = 0.0 if cfg.graphs_in_request else graphs
    kv = requested - weights - act - non_torch - graphs + outside
    blocks = num_blocks(layout, kv)
    batched = cfg.max_num_batched_tokens
    return RankBudget(
        gpu_index=gpu_index, total_bytes=total_bytes, free_bytes=free_bytes,
        requested_bytes=requested,
        overhead_bytes=CUDA_CONTEXT_MIB * MIB + (communicators if cfg.communicators_before_check else 0.0),
        stage=stage,
        weights_bytes=weights, activation_bytes=act, non_torch_bytes=non_torch,
        cudagraph_bytes=graphs, kv_cache_bytes=kv, graphs_outside_bytes=outside,
        request_bytes=request_bytes(layout, cfg.max_model_len, batched), num_blocks=blocks,
        kv_cache_tokens=kv_cache_tokens(layout, blocks, cfg.max_model_len if cfg.version >=
                                        TOKENS_BY_CONCURRENCY_FROM else 0, batched),
        max_concurrency=max_concurrency(layout, blocks, cfg.max_model_len, batched),
        max_model_len_that_fits=longest_len(layout, kv, batched, spec.max_position),
    )


def _gib(nbytes: float) -> str:
    return f"{round(nbytes / GIB, 2)}"


def startup_error(rank: RankBudget, util: float) -> str:
    """vLLM's own words when the start-up check fails."""
    return (f"Free memory on device ({_gib(max(0.0, rank.free_at_check_bytes))}/"
            f"{_gib(rank.total_bytes)} GiB) on startup is less than desired GPU memory "
            f"utilization ({util}, {_gib(rank.requested_bytes)} GiB). Decrease GPU memory "
            "utilization or reduce GPU memory used by other processes.")


def no_cache_error() -> str:
    return ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
            "when initializing the engine.")


def too_long_error(rank: RankBudget, max_model_len: int) -> str:
    estimated = (f"Based on the available memory, the estimated maximum model length is "
                 f"{rank.max_model_len_that_fits}. " if rank.max_model_len_that_fits else "")
    return (f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({_gib(rank.request_bytes)} GiB KV cache is needed, which is larger than the "
            f"available KV cache memory ({_gib(rank.kv_cache_bytes)} GiB). {estimated}Try "
            "increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing "
            "the engine.")


def failure(rank: RankBudget, cfg: VllmConfig) -> str | None:
    """The error vLLM would raise on this rank, in start-up order, or None."""
    if not rank.starts:
        return startup_error(rank, cfg.util)
    if rank.kv_cache_bytes <= 0 or rank.num_blocks == 0:
        return no_cache_error()
    if rank.request_bytes > rank.kv_cache_bytes:
        return too_long_error(rank, cfg.max_model_len)
    return None
