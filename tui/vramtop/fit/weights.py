"""The weight figures of a checkpoint from its tensor headers: bytes, parameters, stored dtype.

``weights_from_tensors`` is the one place that turns (name, dtype, shape) triples, whether
read from local safetensors headers or from the Hub's safetensors metadata, into the figures
a ``ModelSpec`` carries. Pure: validated numbers in, numbers out; a bad header raises
``ValueError`` with one line (the loaders turn it into ``SpecError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

# bits of one stored element, by safetensors dtype
DTYPE_BITS = {"F64": 64, "F32": 32, "BF16": 16, "F16": 16, "F8_E4M3": 8, "F8_E5M2": 8,
              "F8_E8M0": 8, "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U8": 8, "U16": 16,
              "U32": 32, "U64": 64, "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}
_PACKED = {"I32", "U8", "I8", "U32", "I16"}  # integer tensors that hold packed low-bit weights
# Encoder and projector modules by the names checkpoints give them; InternVL's projector is
# ``mlp1`` and Phi-4-multimodal keeps its image and audio encoders under ``embed_tokens_extend``
# (``internvl.py``, ``phi4mm.py`` in vllm/model_executor/models).
_ENCODER_PREFIXES = ("vision_tower", "visual", "vision_model", "vision_encoder", "multi_modal_projector",
                     "mm_projector", "audio_tower", "audio_encoder", "audio_model", "embed_vision",
                     "embed_audio", "image_newline", "vision_embed", "embed_tokens_extend")
_ENCODER_MODULES = ("mlp1",)
# Quantization side tensors: block scales (FP8's weight_scale_inv, MXFP4's *_scales), zero points
# and group indices take bytes but are no parameters of the model.
_QUANT_AUX = (".weight_scale", ".weight_scale_inv", ".weight_scale_2", ".input_scale", "_scales",
              ".scales", ".qzeros", ".g_idx")
_SHARED_WITH_TARGET = ("embed_tokens.weight", "shared_head.head.weight")
_LAYER = re.compile(r"^model\.layers\.(\d{1,6})\.")
MAX_ELEMENTS = 1 << 46  # no checkpoint tensor comes near 70 trillion elements
MAX_TENSORS = 1_000_000


@dataclass(frozen=True)
class WeightFigures:
    """What the tensors of a checkpoint add up to.

    ``bytes``: as stored; ``params``: parameters (packed low-bit integers unpacked at
    ``quant_bits``; quantization scales are bytes, not parameters); ``dtype``: the safetensors
    dtype holding most bytes; ``encoder_params``: vision towers, audio encoders and their
    projectors (multimodal checkpoints); ``mtp_bytes``: the multi-token-prediction module the
    checkpoint ships beside the model (not in ``bytes``; ``weights_for_vllm``).
    """

    bytes: int
    params: int
    dtype: str
    encoder_params: int = 0
    mtp_bytes: int = 0


def _is_encoder(name: str) -> bool:
    parts = name.split(".")[:3]
    return any(p.startswith(_ENCODER_PREFIXES) for p in parts) or parts[0] in _ENCODER_MODULES


def weights_from_tensors(tensors: Iterable[tuple[str, str, Sequence[int]]],
                         quant_bits: float | None = None) -> WeightFigures:
    """Sum ``(name, dtype, shape)`` headers. ``quant_bits``: the bits per weight of the
    checkpoint's quantization (its integer tensors hold packed weights of that width)."""
    total_bits = params = encoder = count = 0
    by_dtype: dict[str, int] = {}
    for name, dtype, shape in tensors:
        count += 1
        if count > MAX_TENSORS:
            raise ValueError(f"more than {MAX_TENSORS:,} tensors")
        bits = DTYPE_BITS.get(dtype)
        if bits is None:
            raise ValueError(f"tensor '{str(name)[:60]}' has unknown dtype '{str(dtype)[:20]}'")
        n = 1
        for d in shape:
            if not isinstance(d, int) or isinstance(d, bool) or d < 0:
                raise ValueError(f"tensor '{str(name)[:60]}' has a bad shape")
            n *= d
            if n > MAX_ELEMENTS:
                raise ValueError(f"tensor '{str(name)[:60]}' is impossibly large")
        total_bits += n * bits
        by_dtype[dtype] = by_dtype.get(dtype, 0) + n * bits
        if str(name).endswith(_QUANT_AUX):
            continue
        unpacked = n * bits // quant_bits if quant_bits and dtype in _PACKED and quant_bits < bits else n
        params += int(unpacked)
        if _is_encoder(str(name)):
            encoder += int(unpacked)
    if not total_bits:
        raise ValueError("no weights (the tensors hold 0 bytes)")
    return WeightFigures(bytes=total_bits // 8, params=params, dtype=max(by_dtype, key=by_dtype.__getitem__),
                         encoder_params=encoder)


def mtp_layers(cfg: Mapping[str, Any]) -> int:
    """The multi-token-prediction modules a checkpoint ships, as config.json counts them
    (``num_nextn_predict_layers``: DeepSeek-V3, GLM-4.5; ``mtp_num_hidden_layers``: Qwen3-Next,
    Qwen3.5); 0 where it names none."""
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    for key in ("num_nextn_predict_layers", "mtp_num_hidden_layers"):
        n = text.get(key)
        if type(n) is int and 0 < n <= 64:
            return n
    return 0


def split_mtp(tensors: Iterable[tuple[str, str, Any]], cfg: Mapping[str, Any]
              ) -> tuple[list[tuple[str, str, Any]], list[tuple[str, str, Any]]]:
    """The tensors vLLM loads into the model, and the MTP module's, which it leaves to a draft
    (loaded only with ``--speculative-config`` method mtp): DeepSeek-style checkpoints number
    them as layers from ``num_hidden_layers`` on (vllm/model_executor/models/deepseek_v2.py,
    get_spec_layer_idx_from_weight_name); Qwen3-Next and Qwen3.5 keep them under ``mtp.``
    (qwen3_next.py: "MTP weights are loaded by the draft model, not this one"). The module's copies
    of the embedding and LM head are left out of both: a draft shares the target's
    (vllm/v1/spec_decode/llm_base_proposer.py: "Sharing target model embedding weights with the
    draft model")."""
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    layers = text.get("num_hidden_layers")
    numbered = type(layers) is int and mtp_layers(cfg) > 0
    loaded: list[tuple[str, str, Any]] = []
    mtp: list[tuple[str, str, Any]] = []
    for t in tensors:
        name = str(t[0])
        m = _LAYER.match(name) if numbered else None
        if name.startswith("mtp.") or (m is not None and int(m.group(1)) >= layers):
            if not name.endswith(_SHARED_WITH_TARGET):
                mtp.append(t)
        else:
            loaded.append(t)
    return loaded, mtp


def weights_for_vllm(tensors: Iterable[tuple[str, str, Any]], cfg: Mapping[str, Any],
                     quant_bits: float | None = None) -> WeightFigures:
    """The figures of what vLLM loads for ``cfg``, with the MTP module's bytes kept apart in
    ``mtp_bytes`` (a draft's weights, if one is asked for)."""
    loaded, mtp = split_mtp(tensors, cfg)
    figures = weights_from_tensors(loaded, quant_bits)
    if mtp:
        figures = replace(figures, mtp_bytes=weights_from_tensors(mtp, quant_bits).bytes)
    return figures
