"""The multi-token-prediction module a checkpoint ships is not part of the model vLLM loads,
but it is the draft's weights when ``--speculative-config`` asks for MTP: counted apart, from the
checkpoint's own tensor headers where they were read."""

from dataclasses import replace

from vramtop.fit import vllm
from vramtop.fit.specs import from_catalog
from vramtop.fit.weights import mtp_layers, split_mtp, weights_for_vllm

# Tensor names as Qwen/Qwen3-Next-80B-A3B-Instruct's model.safetensors.index.json lists them.
QWEN3_NEXT = [
    ("model.embed_tokens.weight", "BF16", [151936, 2048]),
    ("model.layers.0.linear_attn.in_proj_qkvz.weight", "BF16", [12288, 2048]),
    ("model.layers.47.self_attn.q_proj.weight", "BF16", [8192, 2048]),
    ("lm_head.weight", "BF16", [151936, 2048]),
    ("mtp.fc.weight", "BF16", [2048, 4096]),
    ("mtp.layers.0.self_attn.q_proj.weight", "BF16", [8192, 2048]),
    ("mtp.norm.weight", "BF16", [2048]),
]
QWEN3_NEXT_CONFIG = {"num_hidden_layers": 48, "mtp_num_hidden_layers": 1}


def test_qwen3_next_mtp_tensors_are_the_drafts_not_the_models():
    loaded, mtp = split_mtp(QWEN3_NEXT, QWEN3_NEXT_CONFIG)
    assert [t[0] for t in mtp] == ["mtp.fc.weight", "mtp.layers.0.self_attn.q_proj.weight", "mtp.norm.weight"]
    figures = weights_for_vllm(QWEN3_NEXT, QWEN3_NEXT_CONFIG)
    assert figures.mtp_bytes == (2048 * 4096 + 8192 * 2048 + 2048) * 2
    assert figures.bytes == sum(2 * a * b for _, _, (a, b) in loaded)
    assert mtp_layers(QWEN3_NEXT_CONFIG) == 1 and mtp_layers({"num_hidden_layers": 48}) == 0


def test_numbered_layers_count_as_mtp_only_where_the_config_names_them():
    tensors = [("model.layers.1.mlp.weight", "BF16", [4, 4]), ("model.layers.2.mlp.weight", "BF16", [4, 4])]
    assert split_mtp(tensors, {"num_hidden_layers": 2})[1] == []  # no MTP: layer 2 would be a real one
    assert split_mtp(tensors, {"num_hidden_layers": 2, "num_nextn_predict_layers": 1})[1] == tensors[1:]


def test_the_drafts_weights_come_from_the_checkpoint_where_its_headers_were_read():
    spec = from_catalog("deepseek-ai/DeepSeek-V3")
    mtp = vllm.SpeculativeConfig(method=vllm.MTP_METHOD, num_speculative_tokens=1)
    cfg = vllm.VllmConfig(tp=8, util=0.9, max_model_len=8192, kv_cache_dtype="auto", max_num_seqs=256,
                          max_num_batched_tokens=8192, enforce_eager=False, weights_format="fp8",
                          dtype="bfloat16", speculative=mtp)
    shaped = vllm.draft_weights_per_rank(spec, cfg)
    read = vllm.draft_weights_per_rank(replace(spec, mtp_layers=1, mtp_bytes=11_800_000_000), cfg)
    assert read == 11_800_000_000 / 8
    assert abs(shaped - read) / read < 0.1  # the shape's estimate is near what the headers say
