"""Speculative decoding in a hybrid model's KV pool, against a public start-up log.

vLLM gives each state (Mamba / Gated DeltaNet) layer ``num_speculative_tokens`` more blocks a
request (``MambaSpec.max_memory_usage_bytes`` in ``vllm/v1/kv_cache_interface.py``: 2 + n with
prefix caching's "align" mode, 1 + n otherwise), and an MTP draft's attention layer keeps its KV
in the pool beside the target's full-attention layers.
"""

import pytest

from vramtop.fit import vllm
from vramtop.fit.specs import spec_from_config

GIB = 1024**3

# Qwen/Qwen3.5-27B config.json, text_config: 64 layers, every fourth full attention.
QWEN35_27B = {"text_config": {
    "num_hidden_layers": 64, "hidden_size": 5120, "intermediate_size": 17408, "num_attention_heads": 24,
    "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 248320, "max_position_embeddings": 262144,
    "full_attention_interval": 4, "linear_num_key_heads": 16, "linear_num_value_heads": 48,
    "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
    "mamba_ssm_dtype": "float32"}}


def _cfg(**kw):
    base = dict(tp=2, util=0.9, max_model_len=262144, kv_cache_dtype="fp8", max_num_seqs=2,
                max_num_batched_tokens=8192, enforce_eager=False, weights_format="fp8", dtype="bfloat16",
                version=(0, 24, 0), prefix_caching=True)
    base.update(kw)
    return vllm.VllmConfig(**base)


def test_mtp_draft_layer_and_speculative_state_blocks_match_club_3090_pull_594():
    # https://github.com/noonghunna/club-3090/pull/594: Qwen3.6-27B FP8, TP 2, fp8 KV, prefix
    # caching, max_model_len 262144, MTP (3 tokens in the repository's composes): "Available KV
    # cache memory: 5.33 GiB", "GPU KV cache size: 300,220 tokens", "Maximum concurrency for
    # 262,144 tokens per request: 1.15x".
    spec = spec_from_config(QWEN35_27B, "Qwen/Qwen3.6-27B", "config.json")
    plain = vllm.layout_for(spec, _cfg())
    mtp = vllm.layout_for(spec, _cfg(num_speculative_tokens=3, draft_attention_layers=1))
    assert (mtp.full_layers, mtp.state_layers, mtp.state_blocks) == (plain.full_layers + 1, 48, 2 + 3)
    # 48 state layers in groups of the 17 full ones: 3 groups, 3 padding layers ("Add 3 padding
    # layers" in https://github.com/vllm-project/vllm/issues/49011's Qwen3.5 log)
    assert (mtp.group_size, mtp.state_groups * mtp.group_size - mtp.state_layers) == (17, 3)
    got = {}
    for name, layout in (("plain", plain), ("mtp", mtp)):
        blocks = vllm.num_blocks(layout, 5.33 * GIB)
        got[name] = vllm.kv_cache_tokens(layout, blocks, 262144, 8192)
    assert got["mtp"] == pytest.approx(300_220, rel=0.005)
    assert got["plain"] > 300_220 * 1.1  # without them the pool looks 11 % larger than vLLM's


def test_speculative_tokens_add_state_blocks_without_prefix_caching_too():
    spec = spec_from_config(QWEN35_27B, "Qwen/Qwen3.5-27B", "config.json")
    assert vllm.layout_for(spec, _cfg(prefix_caching=False, num_speculative_tokens=2)).state_blocks == 1 + 2
    # a model without state layers only gains the draft's attention layer
    dense = spec_from_config({"num_hidden_layers": 36, "hidden_size": 4096, "intermediate_size": 12288,
                              "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
                              "vocab_size": 151936, "max_position_embeddings": 40960}, "dense", "config.json")
    with_draft = vllm.layout_for(dense, _cfg(num_speculative_tokens=3, draft_attention_layers=1))
    assert (with_draft.full_layers, with_draft.state_layers) == (37, 0)
