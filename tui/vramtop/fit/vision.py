"""A multimodal model's vision encoder, read from the ``vision_config`` of its config.json.

``from_config`` gives the tower's geometry (``VisionSpec``): its weights, for a checkpoint whose
safetensors headers are not at hand, and what vLLM's profile run pushes through it. Pure: a
config mapping in, numbers out; a bad field raises ``ValueError`` with one line.

Families, as vLLM builds their towers:

- ``siglip``: a CLIP-style ViT (``vllm/model_executor/models/siglip.py``: a patch convolution,
  learned positions, pre-norm layers with biased q/k/v/out and fc1/fc2, a post-norm). Gemma 3 /
  MedGemma project it into the text width with one matrix and an RMSNorm
  (``Gemma3MultiModalProjector`` in ``gemma3_mm.py``) and give ``mm_tokens_per_image`` embeddings
  an image (its 4,096 patches average-pooled); other towers of this shape are taken as LLaVA's
  two-layer projector, one embedding a patch.
- ``qwen2_5_vl``: ``Qwen2_5_VisionTransformer`` (``qwen2_5_vl.py``): a patch convolution over
  two frames without bias, RMSNorm layers with a gated MLP, and a patch merger of
  ``spatial_merge_size``² patches into ``out_hidden_size``.
- ``qwen3_vl``: ``Qwen3_VisionTransformer`` (``qwen3_vl.py``): a biased patch convolution,
  learned positions, LayerNorm layers with an fc1/fc2 MLP, a merger and one more merger per
  ``deepstack_visual_indexes`` entry.

A Qwen image is largest at the processor's pixel cap (``max_pixels`` 12,845,056 in Qwen2.5-VL's
``preprocessor_config.json``, ``longest_edge`` 16,777,216 in Qwen3-VL's): 16,384 embeddings of
``spatial_merge_size``² patches each. Videos, pan-and-scan crops and ``--mm-processor-kwargs``
are not modelled (images only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping

SIGLIP, QWEN2_5_VL, QWEN3_VL = "siglip", "qwen2_5_vl", "qwen3_vl"
QWEN_MAX_IMAGE_EMBEDS = 16_384  # the processors' pixel cap over (patch x merge)² pixels an embedding


@dataclass(frozen=True)
class VisionSpec:
    """One vision tower: ``layers`` of ``hidden`` width and ``intermediate`` MLP width (gated:
    gate and up projections), ``patch`` pixels square (``frames`` deep) over ``channels``;
    the largest image runs ``patches_per_item`` patches through the tower and gives the language
    model ``embeds_per_item`` embeddings of ``text_hidden``; ``params`` counts the tower and its
    projector."""

    family: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    patch: int
    patches_per_item: int
    embeds_per_item: int
    text_hidden: int
    params: int
    gated: bool = False
    channels: int = 3
    frames: int = 1


def _int(c: Mapping[str, Any], key: str, where: str, hi: int, default: int | None = None) -> int:
    v = c.get(key, default)
    if isinstance(v, float) and v.is_integer() and math.isfinite(v):
        v = int(v)
    if type(v) is not int or not 1 <= v <= hi:
        raise ValueError(f"{where}: vision_config.{key} must be a whole number in 1..{hi:,}, got {str(v)[:30]!r}")
    return v


def family_of(cfg: Mapping[str, Any]) -> str | None:
    """The tower family of a config.json, or None where it has no ``vision_config`` this
    module reads (a tower of another shape is then not modelled)."""
    v = cfg.get("vision_config")
    if not isinstance(v, dict):
        return None
    kind = str(v.get("model_type") or cfg.get("model_type") or "")[:60]
    qwen = "depth" in v and "hidden_size" in v and "intermediate_size" in v
    if qwen and (kind.startswith("qwen3_vl") or "deepstack_visual_indexes" in v):
        return QWEN3_VL
    if qwen and (kind.startswith("qwen2_5_vl") or "fullatt_block_indexes" in v):
        return QWEN2_5_VL
    if all(k in v for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "patch_size", "image_size")):
        return SIGLIP
    return None


def from_config(cfg: Mapping[str, Any], text_hidden: int, where: str) -> VisionSpec | None:
    """The vision tower of a multimodal config.json, None where it has none this module reads."""
    kind = family_of(cfg)
    if kind is None:
        return None
    v = cfg["vision_config"]
    if kind == SIGLIP:
        h = _int(v, "hidden_size", where, 1 << 16)
        inter = _int(v, "intermediate_size", where, 1 << 18)
        layers = _int(v, "num_hidden_layers", where, 1000)
        heads = _int(v, "num_attention_heads", where, 1 << 12, 16)
        patch = _int(v, "patch_size", where, 1 << 12)
        channels = _int(v, "num_channels", where, 64, 3)
        patches = (_int(v, "image_size", where, 1 << 16) // patch) ** 2
        layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 4 * h  # attention, MLP, two LayerNorms
        tower = layers * layer + channels * patch * patch * h + h + patches * h + 2 * h
        if "mm_tokens_per_image" in cfg:  # Gemma 3: one projection and an RMSNorm, pooled embeddings
            embeds = _int(cfg, "mm_tokens_per_image", where, 1 << 20)
            projector = h * text_hidden + h
        else:  # LLaVA: linear, GELU, linear, one embedding a patch
            embeds = patches
            projector = h * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden
        return VisionSpec(SIGLIP, layers, h, inter, heads, patch, patches, embeds, text_hidden,
                          tower + projector, channels=channels)
    layers = _int(v, "depth", where, 1000)
    h = _int(v, "hidden_size", where, 1 << 16)
    inter = _int(v, "intermediate_size", where, 1 << 18)
    heads = _int(v, "num_heads", where, 1 << 12, 16)
    patch = _int(v, "patch_size", where, 1 << 12)
    merge = _int(v, "spatial_merge_size", where, 64, 2)
    frames = _int(v, "temporal_patch_size", where, 64, 2)
    channels = _int(v, "in_channels", where, 64, _int(v, "in_chans", where, 64, 3))
    out = _int(v, "out_hidden_size", where, 1 << 20, text_hidden)
    wide = h * merge * merge
    conv = channels * frames * patch * patch * h
    if kind == QWEN2_5_VL:
        layer = 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * (h * inter + inter) + (inter * h + h)
        merger = h + wide * wide + wide + wide * out + out
        tower = conv + layers * layer + merger
        gated = True
    else:
        deepstack = v.get("deepstack_visual_indexes") or []
        if not isinstance(deepstack, list) or len(deepstack) > layers:
            raise ValueError(f"{where}: vision_config.deepstack_visual_indexes must be a list of layer indexes")
        positions = _int(v, "num_position_embeddings", where, 1 << 24, 2304)
        layer = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * inter + inter) + (inter * h + h)
        merger = 2 * h + wide * wide + wide + wide * out + out
        tower = conv + h + positions * h + layers * layer + merger + len(deepstack) * (merger - 2 * h + 2 * wide)
        gated = False
    return VisionSpec(kind, layers, h, inter, heads, patch, QWEN_MAX_IMAGE_EMBEDS * merge * merge,
                      QWEN_MAX_IMAGE_EMBEDS, text_hidden, tower, gated, channels, frames)


def sized_by_processor(tower: VisionSpec | None) -> bool:
    """Whether the repository's preprocessor_config.json sets the tower's largest image (the
    Qwen-VL families), so that it is worth reading for ``largest_image``."""
    return tower is not None and tower.family in (QWEN2_5_VL, QWEN3_VL)


def largest_image(tower: VisionSpec, processor: Mapping[str, Any]) -> VisionSpec:
    """``tower`` with the largest image a Qwen-VL image processor (preprocessor_config.json) lets
    through: at most ``max_pixels`` (``size.longest_edge`` in newer processors) pixels, resized
    as vLLM's dummy image of most features is (vllm/model_executor/models/qwen2_vl.py,
    smart_resize: a square whose side is a multiple of patch x merge). Unchanged where the
    processor names no cap."""
    size = processor.get("size") if isinstance(processor.get("size"), dict) else {}
    cap = processor.get("max_pixels") or size.get("longest_edge") or size.get("max_pixels")
    if type(cap) is not int or not 0 < cap <= 1 << 34 or not tower.embeds_per_item:
        return tower
    merged = max(1, tower.patches_per_item // tower.embeds_per_item)  # patches an embedding
    side = math.isqrt(cap) // (tower.patch * math.isqrt(merged))
    embeds = max(1, side * side)
    return replace(tower, patches_per_item=embeds * merged, embeds_per_item=embeds)
