"""A multimodal model's vision tower: its weights from config.json, and what vLLM's profile run
encodes before the language model's dummy forward (``profile_run`` in
``vllm/v1/worker/gpu_model_runner.py``; the budget from ``compute_mm_encoder_budget`` in
``vllm/v1/core/encoder_cache_manager.py`` and ``MultiModalBudget.get_max_items`` in
``vllm/v1/worker/utils.py``)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from vramtop.fit import remote, vision, vllm
from vramtop.fit.specs import SpecError, from_catalog, spec_from_config
from vramtop.fit.weights import weights_from_tensors

GIB = 1024**3
CONFIGS = Path(__file__).parent.parent / "hub" / "configs"
GEMMA3 = ["google/medgemma-4b-it", "google/medgemma-27b-it", "google/gemma-3-4b-it",
          "google/gemma-3-12b-it", "google/gemma-3-27b-it"]
# Qwen/Qwen2.5-VL-7B-Instruct config.json (its text fields at the top level)
QWEN25_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
    "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 128000,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
                      "temporal_patch_size": 2},
}


def published_config(name):
    return json.loads((CONFIGS / (name.replace("/", "__")) / "config.json").read_text())


def without_vision(cfg):
    return {k: v for k, v in cfg.items() if k != "vision_config"}


@pytest.mark.parametrize("name", GEMMA3)
def test_the_tower_estimated_from_config_json_is_the_published_checkpoints(name):
    """The catalog's ``vision_params`` are the published safetensors' vision_tower and
    multi_modal_projector tensors; config.json alone now gives the same count, where it gave 0."""
    cfg = published_config(name)
    spec = spec_from_config(cfg, name, "config.json")
    text_only = spec_from_config(without_vision(cfg), name, "config.json")
    published = from_catalog(name).vision_params
    assert spec.vision.params == published
    assert from_catalog(name).vision == spec.vision  # the catalog's vision_config is the published one
    assert spec.params - text_only.params == published
    assert spec.weight_bytes - text_only.weight_bytes == 2 * published
    assert spec.weights_from == "estimated from config.json"


def qwen25_vl_visual_headers(v, text_hidden):
    """The ``visual.`` tensors of a Qwen2.5-VL checkpoint as transformers'
    ``Qwen2_5_VisionTransformerPretrainedModel`` names them."""
    h, i, wide = v["hidden_size"], v["intermediate_size"], v["hidden_size"] * v["spatial_merge_size"] ** 2
    p = v["patch_size"]
    yield "visual.patch_embed.proj.weight", "BF16", [h, 3, v["temporal_patch_size"], p, p]
    for n in range(v["depth"]):
        b = f"visual.blocks.{n}."
        yield b + "norm1.weight", "BF16", [h]
        yield b + "norm2.weight", "BF16", [h]
        yield b + "attn.qkv.weight", "BF16", [3 * h, h]
        yield b + "attn.qkv.bias", "BF16", [3 * h]
        yield b + "attn.proj.weight", "BF16", [h, h]
        yield b + "attn.proj.bias", "BF16", [h]
        for proj in ("gate_proj", "up_proj"):
            yield b + f"mlp.{proj}.weight", "BF16", [i, h]
            yield b + f"mlp.{proj}.bias", "BF16", [i]
        yield b + "mlp.down_proj.weight", "BF16", [h, i]
        yield b + "mlp.down_proj.bias", "BF16", [h]
    yield "visual.merger.ln_q.weight", "BF16", [h]
    yield "visual.merger.mlp.0.weight", "BF16", [wide, wide]
    yield "visual.merger.mlp.0.bias", "BF16", [wide]
    yield "visual.merger.mlp.2.weight", "BF16", [text_hidden, wide]
    yield "visual.merger.mlp.2.bias", "BF16", [text_hidden]


def test_a_qwen25_vl_tower_from_config_json_counts_what_its_checkpoint_holds():
    headers = weights_from_tensors(qwen25_vl_visual_headers(QWEN25_VL_7B["vision_config"], 3584))
    tower = vision.from_config(QWEN25_VL_7B, 3584, "config.json")
    assert tower.family == vision.QWEN2_5_VL and tower.gated
    assert tower.params == headers.encoder_params == headers.params
    spec = spec_from_config(QWEN25_VL_7B, "Qwen/Qwen2.5-VL-7B-Instruct", "config.json")
    assert spec.vision_params == tower.params
    # 676.6 M of Qwen2.5-VL-7B's 8.29 B parameters are the tower and merger (model card: 8.3 B)
    assert 8.2e9 < spec.params < 8.4e9


def test_a_tower_of_another_shape_is_named_not_silently_left_out():
    cfg = dict(QWEN25_VL_7B, model_type="qwen2_vl",  # Qwen2-VL's tower: embed_dim, mlp_ratio, LayerNorms
               vision_config={"embed_dim": 1280, "depth": 32, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 3584})
    spec = spec_from_config(cfg, "Qwen/Qwen2-VL-7B-Instruct", "config.json")
    assert spec.vision is None
    assert any("vision encoder" in u for u in spec.unmodelled)


@pytest.mark.parametrize("field, value", [("num_hidden_layers", -3), ("patch_size", "14"),
                                          ("image_size", 10**9), ("hidden_size", True)])
def test_a_bad_vision_field_is_one_line_naming_it(field, value):
    cfg = published_config("google/gemma-3-4b-it")
    cfg["vision_config"] = dict(cfg["vision_config"], **{field: value})
    with pytest.raises(SpecError) as exc:
        spec_from_config(cfg, "x", "config.json")
    assert f"vision_config.{field}" in str(exc.value) and "\n" not in str(exc.value)


def test_the_encoder_budget_and_items_follow_vllm():
    gemma = from_catalog("google/medgemma-4b-it").vision
    # 256 embeddings an image: a budget of max_num_batched_tokens holds 8 (2048) or 32 (8192)
    assert vllm.encoder_items(gemma, 2048, 256, 131072) == 8
    assert vllm.encoder_items(gemma, 8192, 1024, 131072) == 32
    # fewer prompts than the budget holds: max_num_seqs x images a prompt bound it
    assert vllm.encoder_items(gemma, 8192, 2, 131072, limit=3) == 6
    assert vllm.encoder_items(gemma, 2048, 256, 131072, limit=0) == 0
    qwen = vision.from_config(QWEN25_VL_7B, 3584, "config.json")
    # "Encoder cache budget 16384 tokens" (vllm issue 34209): one image is more than the
    # default max_num_batched_tokens, so the budget is the image, and one image is profiled
    assert max(8192, qwen.embeds_per_item) == 16384
    assert vllm.encoder_items(qwen, 8192, 1024, 128000) == 1
    assert qwen.patches_per_item == 4 * 16384


def test_the_encoder_pass_precedes_the_forward_and_its_outputs_stay():
    spec = from_catalog("google/medgemma-4b-it")
    text = replace(spec, vision=None)
    args = (1, 2048, 256, "bfloat16")
    language = vllm.activation_bytes(text, *args, max_model_len=131072)
    skipped = vllm.activation_bytes(spec, *args, max_model_len=131072, mm=vllm.MmProfile(skip_profiling=True))
    no_images = vllm.activation_bytes(spec, *args, max_model_len=131072, mm=vllm.MmProfile(limit_per_prompt=0))
    assert skipped == no_images == language
    encoder_pass, outputs = vllm.encoder_activation_bytes(spec, 2048, 256, 131072, 1, 2, vllm.MmProfile())
    assert outputs == 8 * 256 * spec.hidden * 2  # 8 images of 256 embeddings in the text width
    with_images = vllm.activation_bytes(spec, *args, max_model_len=131072)
    assert with_images == max(encoder_pass, outputs + language)
    # a small sampler (few requests): the 8 images' pass through SigLIP is the peak
    few = vllm.activation_bytes(spec, 1, 2048, 4, "bfloat16", max_model_len=131072)
    assert few == encoder_pass > vllm.activation_bytes(text, 1, 2048, 4, "bfloat16") + outputs


def test_the_encoder_pass_grows_with_the_budget_and_shrinks_with_tp():
    spec = from_catalog("google/medgemma-27b-it")
    passes = [vllm.encoder_activation_bytes(spec, b, 1024, 131072, tp, 2, vllm.MmProfile())[0]
              for b, tp in ((2048, 1), (8192, 1), (8192, 4))]
    assert passes[0] < passes[1] and passes[2] < passes[1]
    assert passes[1] / passes[0] == pytest.approx(4, rel=0.01)  # four times the images


def cfg(tp, mode):
    return vllm.VllmConfig(tp=tp, util=0.9, max_model_len=8192, kv_cache_dtype="auto", max_num_seqs=256,
                           max_num_batched_tokens=2048, enforce_eager=True, weights_format=None,
                           dtype="bfloat16", mm=vllm.MmProfile(encoder_tp_mode=mode))


def test_encoder_data_parallel_keeps_the_whole_tower_on_every_rank():
    spec = from_catalog("google/medgemma-27b-it")
    sharded = vllm.rank_budget(spec, cfg(4, "weights"), 0, 24 * GIB, 24 * GIB)
    whole = vllm.rank_budget(spec, cfg(4, "data"), 0, 24 * GIB, 24 * GIB)
    assert whole.weights_bytes - sharded.weights_bytes == pytest.approx(spec.vision_params * 2 * 3 / 4)
    # each rank encodes 2 of the 8 images with the unsharded tower
    e_data = vllm.encoder_pass_bytes(spec.vision, 8, 4, 2, data_parallel=True)
    assert e_data == pytest.approx(vllm.encoder_pass_bytes(spec.vision, 2, 1, 2))


def test_the_spec_cache_keeps_the_tower(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = spec_from_config(published_config("google/gemma-3-4b-it"), "google/gemma-3-4b-it", "config.json")
    ref = remote.remote_ref("google/gemma-3-4b-it@main")
    remote._store(ref, spec)
    back = remote.cached("google/gemma-3-4b-it@main")
    assert back is not None and back.vision == spec.vision


# Qwen/Qwen3-VL-8B-Instruct config.json, vision_config (a SigLIP-2 tower with deepstack mergers)
QWEN3_VL_VISION = {"model_type": "qwen3_vl", "depth": 27, "hidden_size": 1152, "intermediate_size": 4304,
                   "num_heads": 16, "in_channels": 3, "out_hidden_size": 4096, "patch_size": 16,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 2304,
                   "deepstack_visual_indexes": [8, 16, 24], "hidden_act": "gelu_pytorch_tanh"}


def qwen3_vl_visual_headers(v):
    """The ``visual.`` tensors as transformers' ``Qwen3VLVisionModel`` names them."""
    h, i, wide, out, p = (v["hidden_size"], v["intermediate_size"], v["hidden_size"] * v["spatial_merge_size"] ** 2,
                          v["out_hidden_size"], v["patch_size"])
    yield "visual.patch_embed.proj.weight", "BF16", [h, 3, v["temporal_patch_size"], p, p]
    yield "visual.patch_embed.proj.bias", "BF16", [h]
    yield "visual.pos_embed.weight", "BF16", [v["num_position_embeddings"], h]
    for n in range(v["depth"]):
        b = f"visual.blocks.{n}."
        for norm in ("norm1", "norm2"):
            yield b + f"{norm}.weight", "BF16", [h]
            yield b + f"{norm}.bias", "BF16", [h]
        yield b + "attn.qkv.weight", "BF16", [3 * h, h]
        yield b + "attn.qkv.bias", "BF16", [3 * h]
        yield b + "attn.proj.weight", "BF16", [h, h]
        yield b + "attn.proj.bias", "BF16", [h]
        yield b + "mlp.linear_fc1.weight", "BF16", [i, h]
        yield b + "mlp.linear_fc1.bias", "BF16", [i]
        yield b + "mlp.linear_fc2.weight", "BF16", [h, i]
        yield b + "mlp.linear_fc2.bias", "BF16", [h]
    mergers = [("visual.merger.", h)] + [(f"visual.deepstack_merger_list.{k}.", wide)
                                         for k in range(len(v["deepstack_visual_indexes"]))]
    for stem, norm in mergers:
        yield stem + "norm.weight", "BF16", [norm]
        yield stem + "norm.bias", "BF16", [norm]
        yield stem + "linear_fc1.weight", "BF16", [wide, wide]
        yield stem + "linear_fc1.bias", "BF16", [wide]
        yield stem + "linear_fc2.weight", "BF16", [out, wide]
        yield stem + "linear_fc2.bias", "BF16", [out]


def test_a_qwen3_vl_tower_with_its_deepstack_mergers_counts_what_its_checkpoint_holds():
    headers = weights_from_tensors(qwen3_vl_visual_headers(QWEN3_VL_VISION))
    tower = vision.from_config({"model_type": "qwen3_vl", "vision_config": QWEN3_VL_VISION}, 4096, "config.json")
    assert tower.family == vision.QWEN3_VL and not tower.gated
    assert tower.params == headers.encoder_params
    assert tower.embeds_per_item == 16384 and tower.patches_per_item == 65536


def test_internvl_and_phi4_multimodal_encoders_are_counted_as_encoders():
    """InternVL's projector is ``mlp1`` beside ``vision_model`` (its checkpoints' names);
    Phi-4-multimodal's SigLIP and audio encoders live under ``model.embed_tokens_extend``."""
    internvl = weights_from_tensors([("vision_model.encoder.layers.0.mlp.fc1.weight", "BF16", [4096, 1024]),
                                     ("mlp1.1.weight", "BF16", [2048, 4096]),
                                     ("language_model.model.layers.0.mlp.gate_proj.weight", "BF16", [6144, 2048])])
    assert internvl.encoder_params == 4096 * 1024 + 2048 * 4096
    phi4 = weights_from_tensors([("model.embed_tokens_extend.image_embed.img_processor.encoder.layers.0."
                                  "mlp.fc1.weight", "BF16", [4304, 1152]),
                                 ("model.embed_tokens_extend.audio_embed.encoder.encoders.0.feed_forward_in."
                                  "net.0.linear.weight", "BF16", [3072, 1024]),
                                 ("model.layers.0.mlp.gate_up_proj.weight", "BF16", [16384, 3072])])
    assert phi4.encoder_params == 4304 * 1152 + 3072 * 1024
