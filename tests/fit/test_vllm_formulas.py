"""vLLM V1 budget formulas against hand-worked numbers."""

from dataclasses import replace
from math import ceil

import pytest

from vramtop.fit import vllm
from vramtop.fit.specs import from_catalog

GIB = 1024**3
MIB = 1024**2


def spec(name):
    s = from_catalog(name)
    assert s is not None, name
    return s


def test_qwen3_14b_tokens_match_the_public_log():
    # LMCache issue 1739: "Available KV cache memory: 6.51 GiB" -> "GPU KV cache size: 42,656 tokens"
    layout = vllm.kv_layout(spec("Qwen/Qwen3-14B"), 1, 2)
    assert layout.page_bytes == 2 * 16 * 8 * 128 * 2  # K and V, 8 KV heads of 128, bf16
    blocks = vllm.num_blocks(layout, 6.51 * GIB)
    assert blocks == int(6.51 * GIB // 65536 // 40) == 2666
    assert vllm.kv_cache_tokens(layout, blocks) == 42_656


def test_kv_heads_are_split_by_tp_and_replicated_below_one_head_per_rank():
    llama70 = spec("meta-llama/Llama-3.1-70B-Instruct")  # 8 KV heads
    assert vllm.kv_layout(llama70, 4, 2).page_bytes == 2 * 16 * 2 * 128 * 2
    assert vllm.kv_layout(llama70, 8, 2).page_bytes == 2 * 16 * 1 * 128 * 2
    # 16 ranks: still one head each, so the per-rank page does not shrink any more
    assert vllm.kv_layout(llama70, 16, 2).page_bytes == vllm.kv_layout(llama70, 8, 2).page_bytes


def test_fp8_kv_cache_halves_the_page():
    s = spec("Qwen/Qwen3-8B")
    assert vllm.kv_layout(s, 1, vllm.kv_element_bytes("fp8", "bfloat16")).page_bytes * 2 == \
        vllm.kv_layout(s, 1, vllm.kv_element_bytes("auto", "bfloat16")).page_bytes


def test_mla_caches_one_latent_not_split_by_tp():
    v3 = spec("deepseek-ai/DeepSeek-V3")
    page = 16 * (512 + 64) * 2  # kv_lora_rank + qk_rope_head_dim, bf16, no factor 2
    assert vllm.kv_layout(v3, 1, 2).page_bytes == page
    assert vllm.kv_layout(v3, 8, 2).page_bytes == page
    assert vllm.kv_layout(v3, 8, 2).bytes_per_token == 61 * 576 * 2


def test_gemma3_27b_hybrid_groups():
    # 52 sliding + 10 full layers: groups of 10 -> 6 sliding groups (8 padding layers) + 1 full
    layout = vllm.kv_layout(spec("google/gemma-3-27b-it"), 1, 2)
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (10, 1, 6)
    avail = 10 * GIB
    blocks = vllm.num_blocks(layout, avail)
    assert blocks == int(avail // layout.page_bytes // 10)
    assert vllm.kv_cache_tokens(layout, blocks) == blocks // 7 * 16


def test_gpt_oss_has_two_equal_groups():
    layout = vllm.kv_layout(spec("openai/gpt-oss-20b"), 1, 2)
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (12, 1, 1)
    assert layout.page_bytes == 2 * 16 * 8 * 64 * 2  # 32 KiB per layer per block


def test_sliding_layers_keep_only_their_window_per_request():
    s = spec("google/medgemma-4b-it")  # 29 sliding (1024) + 5 full layers, 4 KV heads of 256
    layout = vllm.kv_layout(s, 1, 2)
    page = 2 * 16 * 4 * 256 * 2
    sliding_blocks = ceil(min(1024 - 1 + 2048, 8192) / 16) + 1  # 193
    assert vllm.request_bytes(layout, 8192, 2048) == (5 * 512 + 29 * sliding_blocks) * page
    # a short request: the window does not matter
    assert vllm.request_bytes(layout, 160, 2048) == (5 * 10 + 29 * 11) * page


def test_longest_len_is_the_largest_request_that_fits():
    layout = vllm.kv_layout(spec("meta-llama/Llama-3.1-8B-Instruct"), 1, 2)
    avail = 3 * GIB  # 128 KiB per token -> 24,576 tokens
    n = vllm.longest_len(layout, avail, 2048, 131072)
    assert n == 24_576
    assert vllm.request_bytes(layout, n, 2048) <= avail < vllm.request_bytes(layout, n + 1, 2048)
    assert vllm.longest_len(layout, 0, 2048, 131072) == 0


def test_weights_are_sharded_except_replicated_kv_projections():
    s = spec("meta-llama/Llama-3.1-8B-Instruct")
    assert vllm.weights_per_rank(s, None, 1) == s.weight_bytes
    assert vllm.weights_per_rank(s, None, 2) == s.weight_bytes / 2
    s70 = spec("meta-llama/Llama-3.1-70B-Instruct")
    kv_proj = 2 * 80 * 8192 * 128 * 8 * 2  # k and v projections, bf16
    expected = (s70.weight_bytes - kv_proj) / 16 + kv_proj / 8
    assert vllm.weights_per_rank(s70, None, 16) == pytest.approx(expected)


def test_defaults_follow_vllm_serve_by_gpu_size():
    assert vllm.default_max_num_batched_tokens(22_515) == 2048
    assert vllm.default_max_num_seqs(22_515) == 256
    assert vllm.default_max_num_batched_tokens(81_559) == 8192
    assert vllm.default_max_num_seqs(81_559) == 1024
    # vLLM keeps the small defaults on A100s whatever their size
    assert vllm.default_max_num_batched_tokens(81_152, "NVIDIA A100-SXM4-80GB") == 2048
    assert vllm.default_max_num_seqs(81_152, "NVIDIA A100-SXM4-80GB") == 256


def _cfg(**kw):
    base = dict(tp=1, util=0.9, max_model_len=8192, kv_cache_dtype="auto", max_num_seqs=256,
                max_num_batched_tokens=2048, enforce_eager=False, weights_format=None, dtype="bfloat16")
    base.update(kw)
    return vllm.VllmConfig(**base)


def test_budget_is_util_times_total_minus_the_parts():
    s = spec("meta-llama/Llama-3.1-8B-Instruct")
    total = 22_515 * MIB
    r = vllm.rank_budget(s, _cfg(), 0, total, total)
    assert r.requested_bytes == pytest.approx(0.9 * total)
    parts = r.weights_bytes + r.activation_bytes + r.non_torch_bytes + r.cudagraph_bytes
    assert r.kv_cache_bytes == pytest.approx(0.9 * total - parts)
    eager = vllm.rank_budget(s, _cfg(enforce_eager=True), 0, total, total)
    assert eager.cudagraph_bytes == 0 and eager.kv_cache_bytes > r.kv_cache_bytes
    assert r.needed_bytes == pytest.approx(0.9 * total + vllm.CUDA_CONTEXT_MIB * MIB)


def test_startup_check_uses_total_memory_not_the_model_size():
    # the seed's GPU 3: 1,364 MiB free of an A10; the 4B model is small but vLLM asks 0.95 x total
    s = spec("google/medgemma-4b-it")
    total = 22_515 * MIB
    r = vllm.rank_budget(s, _cfg(util=0.95), 3, total, 1_364 * MIB)
    assert not r.starts
    msg = vllm.failure(r, _cfg(util=0.95))
    assert msg.startswith("Free memory on device (0.94/21.99 GiB) on startup is less than desired "
                          "GPU memory utilization (0.95, 20.89 GiB).")


def test_too_long_and_no_cache_errors():
    s = spec("meta-llama/Llama-3.1-8B-Instruct")
    total = 22_515 * MIB
    cfg = _cfg(max_model_len=131072)
    r = vllm.rank_budget(s, cfg, 0, total, total)
    assert r.starts and r.kv_cache_bytes > 0
    msg = vllm.failure(r, cfg)
    assert "To serve at least one request with the model's max seq len (131072)" in msg
    assert f"estimated maximum model length is {r.max_model_len_that_fits}" in msg
    small = _cfg(util=0.5)
    r2 = vllm.rank_budget(s, small, 0, total, total)
    assert r2.kv_cache_bytes < 0
    assert vllm.failure(r2, small).startswith("No available memory for the cache blocks")


def test_cuda_graphs_leave_the_kv_budget_only_from_v0_21():
    # vLLM 0.21.0 logs "CUDA graph memory profiling is enabled (default since v0.21.0)": before,
    # the graphs' pool came on top of gpu_memory_utilization x total instead of out of it
    s = spec("Qwen/Qwen3-14B")
    total = 80 * GIB
    new = vllm.rank_budget(s, _cfg(), 0, total, total)
    old = vllm.rank_budget(s, replace(_cfg(), version=vllm.parse_version("0.20.2")), 0, total, total)
    assert new.cudagraph_bytes == old.cudagraph_bytes > 0
    assert old.kv_cache_bytes - new.kv_cache_bytes == pytest.approx(new.cudagraph_bytes)
    assert old.needed_bytes - new.needed_bytes == pytest.approx(new.cudagraph_bytes)


@pytest.mark.parametrize("text, parsed", [("0.21.0", (0, 21, 0)), ("v0.29.1rc1", (0, 29, 1)),
                                          ("0.10.1.dev3+g1234", (0, 10, 1)), ("1.2", (1, 2, 0))])
def test_vllm_versions_as_releases_and_builds_spell_them(text, parsed):
    assert vllm.parse_version(text) == parsed


def test_an_unreadable_vllm_version_is_an_invalid_field():
    from vramtop.fit.placement import paper_node
    from vramtop.fit.verdict import INVALID, Candidate, evaluate

    r = evaluate(Candidate(spec("Qwen/Qwen3-14B"), vllm_version="latest"), paper_node("1x80GiB"))
    assert r.verdict == INVALID and "vllm_version" in r.errors
