"""Hybrid models (Gated DeltaNet, Mamba, Mamba2, linear attention) and quantized checkpoints,
from config.json shapes the models publish, judged as vLLM lays out their memory."""

import json
from dataclasses import replace

import pytest

from vramtop.fit import specs, vllm
from vramtop.fit.placement import paper_node
from vramtop.fit.specs import SpecError
from vramtop.fit.verdict import GREEN, YELLOW, Candidate, evaluate
from vramtop.fit.weights import weights_from_tensors

GIB = 1024**3

# Qwen/Qwen3.5-27B config.json, text_config (Qwen3_5ForConditionalGeneration): Gated DeltaNet
# layers with one full-attention layer in four, recurrent state kept in float32.
QWEN35_27B_TEXT = {
    "model_type": "qwen3_5_text", "full_attention_interval": 4, "head_dim": 256, "hidden_size": 5120,
    "intermediate_size": 17408, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
    "linear_num_key_heads": 16, "linear_num_value_heads": 48, "linear_value_head_dim": 128,
    "mamba_ssm_dtype": "float32", "max_position_embeddings": 262144, "num_attention_heads": 24,
    "num_hidden_layers": 64, "num_key_value_heads": 4, "vocab_size": 248320,
    "layer_types": ["linear_attention", "linear_attention", "linear_attention", "full_attention"] * 16,
    "torch_dtype": "bfloat16",
}
# nvidia/Nemotron-H-8B-Base-8K config.json (the fields the layout reads): 24 Mamba2 layers (M),
# 4 attention layers (*), 24 MLP-only layers (-).
NEMOTRON_H_8B = {
    "architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
    "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
    "hidden_size": 4096, "num_hidden_layers": 52, "num_attention_heads": 32, "num_key_value_heads": 8,
    "attention_head_dim": 128, "ssm_state_size": 128, "mamba_num_heads": 128, "mamba_head_dim": 64,
    "n_groups": 8, "conv_kernel": 4, "vocab_size": 131072, "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
}
# ai21labs/Jamba-v0.1 config.json: attention every 8th layer from layer 4, Mamba elsewhere.
JAMBA_V01 = {
    "architectures": ["JambaForCausalLM"], "model_type": "jamba", "hidden_size": 4096,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "attn_layer_offset": 4, "attn_layer_period": 8, "mamba_d_state": 16, "mamba_d_conv": 4,
    "mamba_expand": 2, "num_experts": 16, "num_experts_per_tok": 2, "intermediate_size": 14336,
    "vocab_size": 65536, "max_position_embeddings": 262144, "torch_dtype": "bfloat16",
}


def _dir(tmp_path, cfg):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return specs.resolve(str(tmp_path))


def test_qwen35_gated_deltanet_layers_keep_a_state_not_kv_and_blocks_grow_to_784_tokens(tmp_path):
    s = _dir(tmp_path, {"architectures": ["Qwen3_5ForConditionalGeneration"], "text_config": QWEN35_27B_TEXT})
    assert (s.state_layers, s.full_layers, s.state.kind) == (48, 16, "gated_delta_net")
    layout = vllm.kv_layout(s, 1, 2, vllm.state_page_bytes(s, 1, "bfloat16"))
    # vLLM's own log for this architecture (Qwen3.6-27B / Qwen3.8-27B, LMCache PR 5079):
    # "Setting attention block size to 784 tokens to ensure that attention page size is >= mamba page size."
    assert layout.block_size == 784
    # 16 full + 48 state layers: groups of 16, one full-attention group and three state groups
    assert (layout.group_size, layout.full_groups, layout.state_groups) == (16, 1, 3)
    # a request's state is one block per state layer whatever its length; the K/V grows only
    # in the 16 full-attention layers
    short, long = vllm.request_bytes(layout, 784, 2048), vllm.request_bytes(layout, 2 * 784, 2048)
    assert long - short == 16 * layout.page_bytes


def test_qwen35_27b_layout_reproduces_both_lines_of_vllm_0_19s_log(tmp_path):
    # vllm-project/vllm issue 40691 (vLLM 0.19.0, H20, Qwen3.5-27B, --max-model-len 32768
    # --max-num-batched-tokens 16384): "GPU KV cache size: 290,864 tokens" and "Maximum
    # concurrency for 32,768 tokens per request: 33.04x". 1487 blocks is the one count both
    # lines allow: 1487 // 4 groups x 784 = 290,864 and 1487 / (42 full blocks + 3 state) = 33.04.
    s = _dir(tmp_path, {"text_config": QWEN35_27B_TEXT})
    layout = vllm.kv_layout(s, 1, 2, vllm.state_page_bytes(s, 1, "bfloat16"))
    assert vllm.kv_cache_tokens(layout, 1487) == 290_864
    assert round(vllm.max_concurrency(layout, 1487, 32768, 16384), 2) == 33.04
    # counted as 64 full-attention layers, the same blocks would hold a quarter of the requests
    as_if_full = vllm.kv_layout(replace(s, state_layers=0, state=None), 1, 2)
    per_request_h = vllm.request_bytes(layout, 262144, 2048)
    per_request_f = vllm.request_bytes(as_if_full, 262144, 2048)
    assert 3.5 < per_request_f / per_request_h < 4.1


def test_a_hybrid_that_vllm_serves_is_not_judged_red(tmp_path):
    s = _dir(tmp_path, {"text_config": QWEN35_27B_TEXT})
    r = evaluate(Candidate(s, tensor_parallel_size=2, max_model_len=262144), paper_node("2x80GiB"), suggest=False)
    as_if_full = evaluate(Candidate(replace(s, state_layers=0, state=None), tensor_parallel_size=2,
                                    max_model_len=262144), paper_node("2x80GiB"), suggest=False)
    assert r.max_concurrency > 3 * as_if_full.max_concurrency
    assert any("keep a fixed state per request" in why for why in r.reasons)


def test_nemotron_h_counts_mamba2_attention_and_mlp_only_layers(tmp_path):
    s = _dir(tmp_path, NEMOTRON_H_8B)
    assert (s.state_layers, s.full_layers, s.no_kv_layers, s.head_dim) == (24, 4, 24, 128)
    assert s.state.kind == "mamba2"
    # Mamba2 state (mamba_utils.mamba2_state_shape): conv (4-1) x (8192 + 2*8*128), SSM 128 x 64 x 128
    assert vllm.state_page_bytes(s, 1, "bfloat16") == (3 * 10240 + 128 * 64 * 128) * 2
    # n_groups 8 at TP 16: groups are replicated to 16 so every head keeps its group
    assert s.state.elements(16)[0] == 3 * ((8192 + 2 * 16 * 128) // 16)


def test_jamba_attention_every_eighth_layer_from_four(tmp_path):
    s = _dir(tmp_path, JAMBA_V01)
    assert (s.state_layers, s.full_layers, s.state.kind) == (28, 4, "mamba")
    assert s.state.elements(1) == (3 * 8192, 8192 * 16)


def test_granite4_and_minimax_patterns(tmp_path):
    granite = {"hidden_size": 1536, "num_hidden_layers": 4, "num_attention_heads": 12, "num_key_value_heads": 4,
               "vocab_size": 100352, "layer_types": ["mamba", "mamba", "mamba", "attention"],
               "mamba_n_heads": 48, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_n_groups": 1,
               "mamba_d_conv": 4, "mamba_expand": 2}
    s = _dir(tmp_path, granite)
    assert (s.state_layers, s.full_layers, s.state.kind) == (3, 1, "mamba2")
    minimax = {"hidden_size": 6144, "num_hidden_layers": 4, "num_attention_heads": 64, "num_key_value_heads": 8,
               "head_dim": 128, "vocab_size": 200064, "attn_type_list": [0, 0, 0, 1]}
    s = specs.spec_from_config(minimax, "minimax", "test")
    assert (s.state_layers, s.full_layers, s.state.kind) == (3, 1, "linear_attention")
    assert s.state.elements(8) == (8 * 128 * 128, 0)


def test_an_unknown_layer_type_is_named_and_caps_the_verdict_at_yellow(tmp_path):
    cfg = {**JAMBA_V01, "num_hidden_layers": 2, "attn_layer_period": None,
           "layer_types": ["full_attention", "chunked_attention"]}
    s = _dir(tmp_path, cfg)
    assert s.unmodelled == ("layer type 'chunked_attention'",)
    r = evaluate(Candidate(s, max_model_len=4096), paper_node("8x141GiB"), suggest=False)
    assert r.verdict == YELLOW and "not modelled: layer type 'chunked_attention'" in r.headline
    s_known = _dir(tmp_path, {**cfg, "layer_types": ["full_attention", "full_attention"]})
    assert evaluate(Candidate(s_known, max_model_len=4096), paper_node("8x141GiB"), suggest=False).verdict == GREEN


@pytest.mark.parametrize("qcfg, fmt, unknown", [
    ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "nvfp4", None),
    ({"quant_method": "modelopt", "quant_algo": "W2A2_FUTURE"}, None, "modelopt"),
    ({"quant_method": "hqq"}, None, "hqq"),
    ({"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float"}}}},
     "fp8", None),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8", None),
])
def test_quantization_methods_are_read_or_named(qcfg, fmt, unknown):
    got_fmt, got_unknown, _ = specs.quantization_of({"quantization_config": qcfg})
    assert (got_fmt, got_unknown) == (fmt, unknown)


def test_an_unknown_quant_method_is_never_silently_16_bit(tmp_path):
    base = {**NEMOTRON_H_8B, "quantization_config": {"quant_method": "hqq"}}
    s = _dir(tmp_path, base)
    assert "quantization 'hqq'" in s.unmodelled
    r = evaluate(Candidate(s, max_model_len=8192), paper_node("8x141GiB"), suggest=False)
    assert r.verdict == YELLOW and "quantization 'hqq'" in r.headline


def test_quantized_estimate_keeps_embeddings_and_lm_head_16_bit_and_honours_exclusions(tmp_path):
    cfg = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "intermediate_size": 14336, "vocab_size": 128256}
    bf16 = specs.spec_from_config(cfg, "m", "t")
    fp8 = specs.spec_from_config({**cfg, "quantization_config": {"quant_method": "fp8"}}, "m", "t")
    embed = 2 * 128256 * 4096  # embeddings and LM head, untied
    assert bf16.weights_from == "estimated from config.json"
    # 8-bit linear layers, 16-bit embeddings and norms: half the linear bytes plus the embeddings
    assert fp8.weight_bytes == pytest.approx((bf16.weight_bytes - 2 * embed) / 2 + 2 * embed, rel=1e-3)
    keep_attn = specs.spec_from_config({**cfg, "quantization_config": {
        "quant_method": "fp8", "modules_to_not_convert": ["lm_head", "model.layers.*.self_attn"]}}, "m", "t")
    assert keep_attn.weight_bytes > fp8.weight_bytes


def test_weight_figures_from_tensor_headers_count_encoders_and_unpack_low_bit_weights():
    w = weights_from_tensors([
        ("model.language_model.layers.0.mlp.qweight", "I32", [512, 128]),
        ("model.language_model.embed_tokens.weight", "BF16", [1000, 64]),
        ("model.vision_tower.encoder.layers.0.weight", "BF16", [64, 64]),
        ("model.multi_modal_projector.linear.weight", "BF16", [64, 64]),
    ], quant_bits=4)
    assert w.bytes == 512 * 128 * 4 + (1000 * 64 + 2 * 64 * 64) * 2
    assert w.params == 512 * 128 * 8 + 1000 * 64 + 2 * 64 * 64  # eight 4-bit weights per int32
    assert w.encoder_params == 2 * 64 * 64 and w.dtype == "I32"  # most bytes are the packed weights
    with pytest.raises(ValueError, match="0 bytes"):
        weights_from_tensors([("a", "BF16", [0, 64])])
    with pytest.raises(ValueError, match="bad shape"):
        weights_from_tensors([("a", "BF16", [-1, 64])])


def test_hybrid_state_with_unknown_size_is_counted_as_full_attention_and_named(tmp_path):
    cfg = {k: v for k, v in QWEN35_27B_TEXT.items() if not k.startswith("linear_")}
    s = _dir(tmp_path, cfg)
    assert s.state_layers == 0 and s.full_layers == 64
    assert any("state size" in u for u in s.unmodelled)
    with pytest.raises(SpecError):
        specs.spec_from_config({**cfg, "layer_types": "x" * 20_000}, "m", "t")


# Qwen3.6-35B-A3B (qwen3_5_moe_text, the Qwen3.5-35B-A3B architecture) text_config
QWEN36_35B_A3B_TEXT = {
    "model_type": "qwen3_5_moe_text", "full_attention_interval": 4, "head_dim": 256, "hidden_size": 2048,
    "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
    "linear_num_value_heads": 32, "linear_value_head_dim": 128, "mamba_ssm_dtype": "float32",
    "max_position_embeddings": 262144, "moe_intermediate_size": 512, "num_attention_heads": 16,
    "num_experts": 256, "num_experts_per_tok": 8, "num_hidden_layers": 40, "num_key_value_heads": 2,
    "vocab_size": 248320,
}


def test_qwen36_35b_with_prefix_caching_reproduces_vllm_0_24s_log(tmp_path):
    # noonghunna/club-3090 issue 612, vLLM v0.24.0, --kv-cache-dtype fp8 --enable-prefix-caching
    # --max-model-len 131072: "Available KV cache memory: 5.98 GiB", "GPU KV cache size: 567,978
    # tokens", "Maximum concurrency for 131,072 tokens per request: 4.33x". With prefix caching
    # the state layers keep two blocks per request ("align"); 0.24 prints concurrency x length.
    s = _dir(tmp_path, {"architectures": ["Qwen3_5MoeForConditionalGeneration"], "text_config": QWEN36_35B_A3B_TEXT})
    cfg = vllm.VllmConfig(tp=1, util=0.9, max_model_len=131072, kv_cache_dtype="fp8", max_num_seqs=1,
                          max_num_batched_tokens=8192, enforce_eager=False, weights_format=None,
                          dtype="bfloat16", version=vllm.parse_version("0.24.0"), prefix_caching=True)
    layout = vllm.layout_for(s, cfg)
    assert layout.block_size == 2096  # 16 x ceil((3 x 8192 x 2 + 32 x 128 x 128 x 4) / (16 x 1024))
    blocks = vllm.num_blocks(layout, 5.98 * GIB)
    assert round(vllm.max_concurrency(layout, blocks, 131072, 8192), 2) == 4.33
    assert vllm.kv_cache_tokens(layout, blocks, 131072, 8192) == 567_978
    # without prefix caching one state block per request: more requests fit
    plain = vllm.layout_for(s, replace(cfg, prefix_caching=False))
    assert vllm.max_concurrency(plain, blocks, 131072, 8192) > 4.5


def test_tied_embeddings_default_follows_the_architecture_when_config_json_is_silent():
    base = {"hidden_size": 2560, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
            "head_dim": 256, "vocab_size": 262208}
    gemma = specs.spec_from_config({**base, "model_type": "gemma3_text"}, "g", "t")
    llama = specs.spec_from_config({**base, "model_type": "llama"}, "l", "t")
    assert gemma.tied and not llama.tied
    assert llama.params - gemma.params == 262208 * 2560  # one embedding matrix fewer
    assert not specs.spec_from_config({**base, "model_type": "gemma3_text", "tie_word_embeddings": False}, "g", "t").tied
