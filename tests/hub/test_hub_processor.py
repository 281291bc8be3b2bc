"""A Qwen-VL repository's preprocessor_config.json caps the largest image, which sizes vLLM's
encoder budget: the resolution reads it from the Hub and puts it on the spec's vision tower."""

from __future__ import annotations

import json
import math

import pytest

from checkpoints import sharded, tensors_of
from standin import Blob, Repo
from vramtop.fit import vision

# https://huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct/blob/main/config.json
QWEN25_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
    "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
    "video_token_id": 151656, "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02,
    "intermediate_size": 18944, "max_position_embeddings": 128000, "max_window_layers": 28,
    "model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.41.2",
    "use_cache": True, "use_sliding_window": False,
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
                      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
                      "temporal_patch_size": 2},
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 152064,
}
# https://huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct/blob/main/preprocessor_config.json
PROCESSOR = {"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
             "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
             "image_std": [0.26862954, 0.26130258, 0.27577711],
             "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}


def publish(hub, repo_id: str, processor: dict | None) -> None:
    files = {"config.json": Blob.of(json.dumps(QWEN25_VL_7B).encode()),
             "generation_config.json": Blob.of(b'{"temperature": 0.1, "top_p": 0.001}'),
             **sharded(tensors_of(QWEN25_VL_7B), 5)}
    if processor is not None:
        files["preprocessor_config.json"] = Blob.of(json.dumps(processor).encode())
    hub.repos[repo_id] = Repo(files)


@pytest.mark.parametrize("processor, embeds", [
    (PROCESSOR, 16_384),  # 3,584 px square: (3584 / 28)²
    ({**PROCESSOR, "max_pixels": 1_003_520}, 1_225),  # a fine-tune's cap: 980 px square, (980 / 28)²
    ({**{k: v for k, v in PROCESSOR.items() if k != "max_pixels"},  # transformers' newer spelling
      "size": {"shortest_edge": 3136, "longest_edge": 802_816}}, 1_024),  # 896 px: (896 / 28)²
    (None, 16_384),  # no processor config: the published default
])
def test_the_processor_caps_the_largest_image(hub, child, processor, embeds):
    publish(hub, "acme/vl", processor)
    [spec] = child.resolve("acme/vl")
    assert "error" not in spec, spec
    assert spec["vision"]["embeds_per_item"] == embeds
    assert spec["vision"]["patches_per_item"] == 4 * embeds  # spatial_merge_size² patches an embedding
    asked = {path.split("/resolve/main/")[-1] for _, path, _ in hub.log if "/resolve/" in path}
    assert "generation_config.json" not in asked  # sampling defaults: no memory in them
    assert ("preprocessor_config.json" in asked) == (processor is not None)


def test_the_tower_counted_from_the_headers_is_the_one_the_config_describes(hub, child):
    publish(hub, "acme/vl", PROCESSOR)
    [spec] = child.resolve("acme/vl")
    tower = vision.from_config(QWEN25_VL_7B, 3584, "config.json")
    assert spec["vision_params"] == tower.params == sum(
        math.prod(shape) for name, _, shape in tensors_of(QWEN25_VL_7B) if name.startswith("visual."))
