"""Attention geometry beyond one head size: Gemma 4's full-attention layers, KV-sharing layers,
gpt-oss's sinks and alternating windows, MLA latents. Field values are copied from the models'
published config.json files (repository named at each); the expected figures are derived here
from vLLM's formulas (``vllm/v1/kv_cache_interface.py``, ``vllm/v1/core/kv_cache_utils.py``),
not read back from the code under test."""

import json

from vramtop.fit import specs, vllm
from vramtop.fit.placement import paper_node
from vramtop.fit.verdict import GREEN, RED, YELLOW, Candidate, evaluate

GIB = 1024**3

# google/gemma-4-31B-it config.json, text_config (Gemma4ForConditionalGeneration).
GEMMA4_31B_TEXT = {
    "model_type": "gemma4_text", "hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 60,
    "num_attention_heads": 32, "num_key_value_heads": 16, "num_global_key_value_heads": 4,
    "head_dim": 256, "global_head_dim": 512, "attention_k_eq_v": True, "sliding_window": 1024,
    "num_kv_shared_layers": 0, "hidden_size_per_layer_input": 0, "vocab_size": 262144,
    "max_position_embeddings": 262144, "tie_word_embeddings": True, "hidden_activation": "gelu_pytorch_tanh",
    "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 10,
}
# google/gemma-4-E2B-it config.json, text_config: the last 20 layers read the K/V of earlier ones.
GEMMA4_E2B_TEXT = {
    "model_type": "gemma4_text", "hidden_size": 1536, "intermediate_size": 6144, "num_hidden_layers": 35,
    "num_attention_heads": 8, "num_key_value_heads": 1, "num_global_key_value_heads": None,
    "head_dim": 256, "global_head_dim": 512, "attention_k_eq_v": False, "sliding_window": 512,
    "num_kv_shared_layers": 20, "use_double_wide_mlp": True, "hidden_size_per_layer_input": 256,
    "vocab_size": 262144, "vocab_size_per_layer_input": 262144, "max_position_embeddings": 131072,
    "layer_types": (["sliding_attention"] * 4 + ["full_attention"]) * 7,
}
# openai/gpt-oss-20b config.json: alternating sliding (128) / full layers from layer 0, MXFP4 experts.
GPT_OSS_20B = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "num_hidden_layers": 24,
    "hidden_size": 2880, "intermediate_size": 2880, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 64, "vocab_size": 201088, "max_position_embeddings": 131072, "sliding_window": 128,
    "num_local_experts": 32, "num_experts_per_tok": 4, "tie_word_embeddings": False,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "quantization_config": {"quant_method": "mxfp4",
                            "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"]},
}
# deepseek-ai/DeepSeek-V3 config.json (DeepseekV3ForCausalLM): MLA with a 512-wide latent and a
# 64-wide rotary key, FP8 block-quantized weights.
DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "num_hidden_layers": 61,
    "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_attention_heads": 128,
    "num_key_value_heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 256, "n_shared_experts": 1,
    "num_experts_per_tok": 8, "vocab_size": 129280, "max_position_embeddings": 163840,
    "torch_dtype": "bfloat16", "tie_word_embeddings": False,
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": [128, 128]},
}
# moonshotai/Kimi-K2-Instruct config.json: DeepSeek-V3's architecture with 64 heads, 384 experts.
KIMI_K2 = {**DEEPSEEK_V3, "num_attention_heads": 64, "num_key_value_heads": 64, "n_routed_experts": 384,
           "vocab_size": 163840, "max_position_embeddings": 131072}
# zai-org/GLM-4.5 config.json (Glm4MoeForCausalLM): grouped-query attention, not MLA.
GLM45 = {
    "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "num_hidden_layers": 92,
    "hidden_size": 5120, "intermediate_size": 12288, "moe_intermediate_size": 1536, "num_attention_heads": 96,
    "num_key_value_heads": 8, "head_dim": 128, "n_routed_experts": 160, "num_experts_per_tok": 8,
    "vocab_size": 151552, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
}


def _resolved(tmp_path, cfg):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return specs.resolve(str(tmp_path))


def _gemma4(tmp_path, text):
    return _resolved(tmp_path, {"architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
                                "text_config": text})


def test_gemma4_31b_full_layers_keep_4_kv_heads_of_512_and_take_32_token_blocks(tmp_path):
    s = _gemma4(tmp_path, GEMMA4_31B_TEXT)
    assert s.unmodelled == ()
    assert (s.sliding_layers, s.full_layers, s.full_head_dim, s.full_kv_heads) == (50, 10, 512, 4)
    for tp in (1, 2, 4):
        layout = vllm.kv_layout(s, tp, 2)
        # Gemma4DecoderLayer: sliding layers K+V of 16 heads x 256, full ones of 4 heads x 512
        # (attention_k_eq_v loads K into both slots, so both are cached)
        sliding_token = 2 * (16 // tp) * 256 * 2
        full_token = 2 * max(1, 4 // tp) * 512 * 2
        assert layout.page_bytes == 16 * sliding_token
        # unify_kv_cache_spec_page_size: the smaller page takes ratio x 16 tokens a block
        assert (layout.block_size, layout.sliding_block_size) == (16 * sliding_token // full_token, 16)
        assert (layout.full_groups, layout.sliding_groups, layout.group_size) == (1, 5, 10)
    # one request of 262,144 tokens: full layers cdiv(len, 32) blocks, sliding ones their window
    layout = vllm.kv_layout(s, 1, 2)
    sliding_blocks = -(-(1024 - 1 + 2048) // 16) + 1
    assert vllm.request_bytes(layout, 262144, 2048) == (10 * 262144 // 32 + 50 * sliding_blocks) * 16 * 16384
    # 'GPU KV cache size' before 0.20 counts blocks per group in the smallest block (16 tokens)
    assert vllm.kv_cache_tokens(layout, 6000) == 6000 // 6 * 16


def test_gemma4_full_layers_geometry_nearly_doubles_concurrency_at_262k_tokens(tmp_path):
    s = _gemma4(tmp_path, GEMMA4_31B_TEXT)
    # as the geometry was read before: every full layer 16 heads x 256, like the sliding ones
    flat = type(s)(**{**s.__dict__, "full_head_dim": None, "full_kv_heads": None})
    node = paper_node("1x80GiB")
    r = evaluate(Candidate(s, max_model_len=262144, quantization="awq"), node, suggest=False)
    r_flat = evaluate(Candidate(flat, max_model_len=262144, quantization="awq"), node, suggest=False)
    assert r.kv_cache_gib == r_flat.kv_cache_gib  # same memory, half the bytes a full-layer token
    # blocks of 256 KiB one request takes, batched 8192 on an 80 GiB GPU: the 10 full layers in
    # blocks of 32 tokens (16 when counted as sliding ones), 50 sliding layers their window
    window = 50 * (-(-(1024 - 1 + 8192) // 16) + 1)
    expected = (10 * 262144 // 16 + window) / (10 * 262144 // 32 + window)
    assert abs(r.max_concurrency / r_flat.max_concurrency - expected) < 0.02 * expected
    assert r.verdict in (GREEN, YELLOW) and "not modelled" not in r.headline


def test_gemma4_e2b_shared_layers_keep_no_cache_and_full_pages_set_the_page_size(tmp_path):
    s = _gemma4(tmp_path, GEMMA4_E2B_TEXT)
    assert s.unmodelled == ()
    # layers 15..34 read the cache of earlier layers of their type: 12 sliding + 3 full keep one
    assert (s.sliding_layers, s.full_layers, s.no_kv_layers) == (12, 3, 20)
    assert (s.full_head_dim, s.full_kv_heads) == (512, None)  # no k_eq_v: num_key_value_heads (1)
    layout = vllm.kv_layout(s, 1, 2)
    full_token, sliding_token = 2 * 1 * 512 * 2, 2 * 1 * 256 * 2
    assert layout.page_bytes == 16 * full_token
    assert (layout.block_size, layout.sliding_block_size) == (16, 16 * full_token // sliding_token)
    assert layout.min_block_size == 16


def test_gemma4_shared_layers_without_layer_types_are_named_not_guessed():
    text = {k: v for k, v in GEMMA4_E2B_TEXT.items() if k != "layer_types"}
    s = specs.spec_from_config(text, "g", "c")
    assert any("num_kv_shared_layers" in u for u in s.unmodelled)
    r = evaluate(Candidate(s, max_model_len=4096), paper_node("1x80GiB"), suggest=False)
    assert r.verdict == YELLOW and "not modelled" in r.headline


def test_gpt_oss_sinks_are_weights_and_alternate_layers_slide_over_128_tokens(tmp_path):
    # gpt_oss.py: per_layer_sliding_window = sliding_window on even layers, sinks a per-head
    # parameter handed to Attention, nothing per token
    s = _resolved(tmp_path, GPT_OSS_20B)
    assert s.unmodelled == ()
    assert (s.sliding_layers, s.full_layers, s.sliding_window) == (12, 12, 128)
    layout = vllm.kv_layout(s, 1, 2)
    assert layout.page_bytes == 16 * 2 * 8 * 64 * 2 and layout.block_size == layout.sliding_block_size == 16
    assert (layout.full_groups, layout.sliding_groups) == (1, 1)
    # a request of 131,072 tokens: every full layer all of it, every sliding one 128 - 1 + batched
    assert vllm.request_bytes(layout, 131072, 8192) == \
        (12 * 131072 // 16 + 12 * (-(-(127 + 8192) // 16) + 1)) * layout.page_bytes


def test_mla_models_cache_one_latent_per_token_not_split_by_tp_and_glm45_is_not_mla(tmp_path):
    for cfg in (DEEPSEEK_V3, KIMI_K2):
        s = specs.spec_from_config(cfg, cfg["architectures"][0], "config.json")
        assert s.is_mla and s.unmodelled == ()
        for tp in (1, 8):  # MLAAttentionSpec: head_size kv_lora_rank + qk_rope_head_dim, one "head"
            assert vllm.kv_layout(s, tp, 2).page_bytes == 16 * (512 + 64) * 2
        assert vllm.kv_layout(s, 8, 1).page_bytes == 16 * (512 + 64)  # fp8 KV cache
    glm = specs.spec_from_config(GLM45, "glm", "config.json")
    assert not glm.is_mla and vllm.kv_layout(glm, 8, 2).page_bytes == 16 * 2 * 1 * 128 * 2


def test_deepseek_v32_indexer_cache_is_named_and_caps_the_verdict(tmp_path):
    # deepseek-ai/DeepSeek-V3.2-Exp config.json adds the lightning indexer (index_head_dim 128,
    # index_n_heads 64, index_topk 2048), whose per-token keys vLLM caches beside the latent
    v32 = {**DEEPSEEK_V3, "architectures": ["DeepseekV32ForCausalLM"], "index_head_dim": 128,
           "index_n_heads": 64, "index_topk": 2048}
    s = specs.spec_from_config(v32, "v32", "config.json")
    assert any("indexer" in u for u in s.unmodelled)
    r = evaluate(Candidate(s, tensor_parallel_size=8, max_model_len=32768), paper_node("8x141GiB"), suggest=False)
    assert r.verdict in (YELLOW, RED) and r.verdict != GREEN


def test_gemma4_weights_estimated_from_config_count_its_own_layers():
    # without safetensors at hand the estimate follows gemma4.py's modules: full layers of
    # 512-wide heads (no v_proj under attention_k_eq_v), per-layer embeddings, the KV-sharing
    # layers' doubled MLP. Google gives 30.7B for the 31B and 5.1B for E2B with its per-layer
    # embeddings (that figure also holds its vision and audio encoders, some 0.4B here unread)
    big = specs.spec_from_config({"architectures": ["Gemma4ForConditionalGeneration"],
                                  "text_config": GEMMA4_31B_TEXT}, "31b", "config.json")
    assert abs(big.params - 30.7e9) < 0.005 * 30.7e9 and big.weights_from == "estimated from config.json"
    small = specs.spec_from_config({"architectures": ["Gemma4ForConditionalGeneration"],
                                    "text_config": GEMMA4_E2B_TEXT}, "e2b", "config.json")
    assert 4.5e9 < small.params < 5.1e9


def test_llama4_chunked_local_attention_is_named_not_counted_as_full_attention():
    # meta-llama/Llama-4-Scout-17B-16E-Instruct config.json, text_config: three layers in four
    # attend within chunks of 8,192 tokens (vLLM's ChunkedLocalAttentionSpec), the fourth is NoPE
    scout = {"model_type": "llama4_text", "num_hidden_layers": 48, "hidden_size": 5120, "num_attention_heads": 40,
             "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 8192, "intermediate_size_mlp": 16384,
             "num_local_experts": 16, "num_experts_per_tok": 1, "vocab_size": 202048,
             "max_position_embeddings": 10485760, "attention_chunk_size": 8192, "torch_dtype": "bfloat16"}
    s = specs.spec_from_config({"architectures": ["Llama4ForConditionalGeneration"], "text_config": scout},
                               "scout", "config.json")
    assert s.unmodelled == ("chunked local attention over 8,192 tokens (attention_chunk_size)",)
    r = evaluate(Candidate(s, tensor_parallel_size=8, max_model_len=65536), paper_node("8x141GiB"), suggest=False)
    assert r.verdict == YELLOW and "attention_chunk_size" in r.headline
