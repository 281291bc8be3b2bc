"""vLLM terms that depend on the release, and the MLA / pipeline-parallel KV layout, checked
against public start-up logs (each test names its log):

- non-torch memory (``memory_profiling`` in ``vllm/utils/mem_utils.py``) is what grew outside
  torch since the worker's memory snapshot. Pull 25359 (merged 2025-09-22) moved
  ``init_worker_distributed_environment`` before that snapshot in ``Worker.init_device``
  (``vllm/v1/worker/gpu_worker.py``): from then the TP / PP communicators are taken before the
  start-up check and outside the request, where before they grew inside non-torch memory.
- an MLA layer keeps one latent of ``kv_lora_rank + qk_rope_head_dim`` a token whatever the TP;
  with pipeline parallel each stage lays out only its own layers (``get_pp_indices`` in
  ``vllm/distributed/utils.py``) and the engine keeps the fewest blocks of any worker.
"""

import pytest

from vramtop.fit import vllm
from vramtop.fit.specs import from_catalog, spec_from_config

GIB = 1024**3

# deepseek-ai/DeepSeek-V2-Lite(-Chat) config.json, the fields the fit engine reads.
DEEPSEEK_V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 2048,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
    "num_attention_heads": 16, "num_key_value_heads": 16, "kv_lora_rank": 512, "q_lora_rank": None,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 102400,
    "max_position_embeddings": 163840, "n_routed_experts": 64, "n_shared_experts": 2,
    "num_experts_per_tok": 6, "first_k_dense_replace": 1, "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}


def _cfg(**kw):
    base = dict(tp=1, util=0.9, max_model_len=8192, kv_cache_dtype="auto", max_num_seqs=256,
                max_num_batched_tokens=8192, enforce_eager=False, weights_format=None, dtype="bfloat16")
    base.update(kw)
    return vllm.VllmConfig(**base)


def _deepseek_v2_lite():
    return spec_from_config(DEEPSEEK_V2_LITE, "deepseek-ai/DeepSeek-V2-Lite", "config.json")


def test_pp_stage_blocks_of_an_mla_model_match_pull_20665():
    # https://github.com/vllm-project/vllm/pull/20665: DeepSeek-V2-Lite, --tensor-parallel-size=2
    # --pipeline-parallel-size=2 --max-model-len=1024 --enforce-eager on L4s (main of 2025-07-09).
    # Ranks 0-1 (stage 0) print "Available KV cache memory: 12.13 GiB", ranks 2-3 (stage 1)
    # 11.33 GiB; the engine prints "GPU KV cache size: 807,792 tokens" and "Maximum concurrency
    # for 1,024 tokens per request: 788.86x".
    spec = _deepseek_v2_lite()
    cfg = _cfg(tp=2, pp=2, max_model_len=1024, enforce_eager=True, version=(0, 9, 2))
    first, last = vllm.layout_for(spec, cfg, 0), vllm.layout_for(spec, cfg, 1)
    blocks_first = vllm.num_blocks(first, 12.13 * GIB)
    blocks_last = vllm.num_blocks(last, 11.33 * GIB)
    assert blocks_last > blocks_first  # stage 0 has the fewest blocks: its figure is the engine's
    tokens = vllm.kv_cache_tokens(first, blocks_first)
    assert tokens == pytest.approx(807_792, rel=5e-4)  # the log's GiB are rounded to 0.01
    assert vllm.max_concurrency(first, blocks_first, 1024, 8192) == pytest.approx(788.86, rel=5e-4)
    # laid out as one stage, the same memory holds 27 layers a block instead of 14: about half
    whole = vllm.layout_for(spec, _cfg(tp=2, max_model_len=1024))
    assert vllm.kv_cache_tokens(whole, vllm.num_blocks(whole, 12.13 * GIB)) == pytest.approx(tokens * 14 / 27, rel=1e-3)


def test_mla_request_does_not_shrink_with_tp_and_matches_issue_15871():
    # https://github.com/vllm-project/vllm/issues/15871: DeepSeek-V2-Lite-Chat, V1 0.8.3.dev,
    # max_model_len 32768: "(0.95 GiB KV cache is needed, which is larger than the available KV
    # cache memory (0.93 GiB)".
    spec = _deepseek_v2_lite()
    need = {tp: vllm.request_bytes(vllm.layout_for(spec, _cfg(tp=tp)), 32768, 8192) for tp in (1, 2, 4)}
    assert len(set(need.values())) == 1
    assert round(need[1] / GIB, 2) == 0.95
    assert vllm.longest_len(vllm.layout_for(spec, _cfg()), 0.93 * GIB, 8192, 163840) < 32768


@pytest.mark.parametrize("tp", [1, 2])
def test_communicators_leave_the_request_from_0_11(tp):
    # https://github.com/vllm-project/vllm/pull/25359: NCCL buffers allocated after the snapshot
    # "show up as non-torch memory increase"; the fix creates them before it (free memory at the
    # snapshot 74.07 GiB instead of 78.59 GiB in its log), so they leave the request and count
    # against the start-up check instead.
    spec = from_catalog("meta-llama/Llama-3.1-8B-Instruct")
    total = 79.22 * GIB
    before = vllm.rank_budget(spec, _cfg(tp=tp, version=(0, 10, 2)), 0, total, total)
    after = vllm.rank_budget(spec, _cfg(tp=tp, version=(0, 11, 0)), 0, total, total)
    moved = after.overhead_bytes - before.overhead_bytes
    assert before.non_torch_bytes - after.non_torch_bytes == pytest.approx(moved)
    assert after.kv_cache_bytes - before.kv_cache_bytes == pytest.approx(moved)
    if tp == 1:  # nothing to move without communicators
        assert moved == 0 and after == before
        return
    assert moved > 0
    # free memory that passes 0.10's check (context only) fails 0.11's once the communicators
    # are made before it
    free = before.requested_bytes + before.overhead_bytes + moved / 2
    assert vllm.rank_budget(spec, _cfg(tp=tp, version=(0, 10, 2)), 0, total, free).starts
    assert not vllm.rank_budget(spec, _cfg(tp=tp, version=(0, 11, 0)), 0, total, free).starts
