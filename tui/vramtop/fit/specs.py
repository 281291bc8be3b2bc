"""What a model is, for memory arithmetic: ``ModelSpec``, and where it comes from.

A spec is read from the built-in catalog, a Hugging Face model directory or the local HF cache
(config.json for the architecture, safetensors headers for the exact weight bytes), a GGUF file or
the local Ollama store (GGUF metadata and tensor sizes), or guessed from "27B" and a quant name.
These loaders are the fit package's only I/O; everything downstream is pure arithmetic on specs.
Any failure is a ``SpecError`` with one line naming the cause.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from vramtop import paths
from vramtop.fit.layers import LayerPattern, StateShape, layer_pattern
from vramtop.fit.vision import VisionSpec, from_config as vision_from_config, largest_image, sized_by_processor
from vramtop.fit.weights import DTYPE_BITS, WeightFigures, mtp_layers, weights_for_vllm, weights_from_tensors
from vramtop.units import MIB
from vramtop.yamlfile import one_line

CONFIG_LIMIT = 4 * MIB  # a config.json is a few KiB; anything past this is not one
HEADER_LIMIT = 100 * MIB  # safetensors' own cap on a header
MAX_PARAMS = 10**13  # ten trillion: past every model ever released


class SpecError(ValueError):
    """A model that cannot be found or read; the message is one line naming the cause (text
    quoted from the files is flattened to printable characters and cut short)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, 400))


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of one model (as its config.json gives them) and its weight bytes.

    ``weight_bytes`` are the bytes of the weights as stored in ``dtype`` (safetensors total_size,
    GGUF tensor bytes). ``vision_params`` counts a vision tower kept in 16-bit by quantizers.
    ``sliding_layers`` of the ``layers`` keep only ``sliding_window`` tokens; ``state_layers``
    keep one fixed state per request (Mamba, Gated DeltaNet, linear attention: ``state``);
    ``no_kv_layers`` keep nothing (MLP-only, or reading another layer's K/V); the rest are full
    attention, with ``full_head_dim`` and ``full_kv_heads`` where those differ from the sliding
    layers' (Gemma 4). MLA models give
    ``kv_lora_rank`` and ``qk_rope_head_dim`` instead of per-head K/V. ``unmodelled`` names what
    the model has that the arithmetic does not know (a verdict stays YELLOW at best);
    ``weights_from`` says where ``weight_bytes`` came from; ``vision``: a multimodal model's
    vision tower (``fit/vision.py``).
    """

    name: str
    source: str
    params: int
    weight_bytes: int
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_position: int
    dtype: str = "bfloat16"
    tied: bool = False
    vision_params: int = 0
    sliding_window: int | None = None
    sliding_layers: int = 0
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0
    flash_attention: bool = False  # Ollama turns flash attention on by default for this family
    aliases: tuple[str, ...] = ()
    origin: str = "catalog"  # catalog, hf, gguf, ollama, guess
    quant_hint: str | None = None  # quantization named by the model reference (":q8", a GGUF file)
    state_layers: int = 0
    no_kv_layers: int = 0
    state: StateShape | None = None
    unmodelled: tuple[str, ...] = ()
    weights_from: str = ""  # "safetensors headers", "estimated from config.json", ...
    full_head_dim: int | None = None  # full-attention layers' head size, where it differs
    full_kv_heads: int | None = None  # full-attention layers' KV heads, where they differ
    vision: VisionSpec | None = None
    mtp_layers: int = 0  # multi-token-prediction modules the checkpoint ships (a draft's; config.json)
    mtp_bytes: int = 0  # their bytes as stored, where the safetensors headers were read (0: not read)

    @property
    def full_layers(self) -> int:
        """Layers keeping K/V for every token."""
        return self.layers - (self.sliding_layers if self.sliding_window else 0) - self.state_layers \
            - self.no_kv_layers

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied else 2)

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


# Bytes per parameter of the dense layers for each weight format the engines load. GGUF file
# types are mixtures; their figures are effective bits per weight over a whole Llama-3-8B file
# (llama.cpp's quantize table), so they already include the embedding's own quantization.
BITS_PER_WEIGHT = {
    "float32": 32.0, "bfloat16": 16.0, "float16": 16.0,
    "fp8": 8.0, "int8": 8.0, "w8a8": 8.0,
    "awq": 4.25, "gptq": 4.25, "bitsandbytes": 4.13, "mxfp4": 4.25, "nvfp4": 4.5,
    "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.5625, "q5_k_m": 5.70, "q5_k_s": 5.52,
    "q5_0": 5.5, "q5_1": 6.0, "q4_k_m": 4.90, "q4_k_s": 4.68, "q4_0": 4.64, "q4_1": 5.0,
    "q3_k_m": 3.91, "q3_k_s": 3.64, "q2_k": 3.35, "iq4_xs": 4.25, "iq4_nl": 4.5,
}
# Formats whose quantizers leave embeddings and the LM head in 16-bit (vLLM checkpoints).
KEEPS_EMBEDDINGS_16BIT = {"fp8", "int8", "w8a8", "awq", "gptq", "bitsandbytes", "mxfp4", "nvfp4"}
DTYPE_ALIASES = {
    "bf16": "bfloat16", "fp16": "float16", "half": "float16", "f16": "float16", "fp32": "float32",
    "float": "float32", "f32": "float32", "auto": "auto",
    "q8": "q8_0", "q4": "q4_k_m", "q4_k": "q4_k_m", "q5": "q5_k_m", "q6": "q6_k", "q5_k": "q5_k_m",
    "fp8_e4m3": "fp8", "e4m3": "fp8", "awq_marlin": "awq", "gptq_marlin": "gptq", "bnb": "bitsandbytes",
    "compressed-tensors": "w8a8", "int4": "awq",
}
GGUF_FILE_TYPES = {  # general.file_type -> name (llama.cpp LLAMA_FTYPE)
    0: "float32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1", 10: "q2_k",
    11: "q3_k_s", 12: "q3_k_m", 14: "q4_k_s", 15: "q4_k_m", 16: "q5_k_s", 17: "q5_k_m",
    18: "q6_k", 30: "iq4_xs", 25: "iq4_nl", 32: "bf16", 38: "mxfp4",
}


def normalize_format(text: str) -> str:
    """A dtype or quantization name in the one spelling this package uses ("Q8" -> "q8_0")."""
    key = text.strip().lower()
    return DTYPE_ALIASES.get(key, key)


def weight_bytes_as(spec: ModelSpec, fmt: str | None) -> int:
    """The weights' bytes when loaded as ``fmt`` (None: as stored).

    16-bit formats scale the stored bytes; quantized formats keep the vision tower in 16-bit and,
    for vLLM checkpoints, the embeddings too.
    """
    if fmt is None or fmt == "auto":
        return spec.weight_bytes
    fmt = normalize_format(fmt)
    if fmt in ("bfloat16", "float16", "f16", "bf16", "float32") and spec.dtype in (
        "bfloat16", "float16", "f16", "bf16", "float32"
    ):
        return int(spec.weight_bytes * BITS_PER_WEIGHT[fmt] / BITS_PER_WEIGHT[spec.dtype])
    bits = BITS_PER_WEIGHT[fmt]
    text = spec.params - spec.vision_params
    if fmt in KEEPS_EMBEDDINGS_16BIT:
        emb = spec.embedding_params
        return int((text - emb) * bits / 8 + (emb + spec.vision_params) * 2)
    return int(text * bits / 8 + spec.vision_params * 2)


# ---- the catalog ------------------------------------------------------------------------------

_CATALOG_FIELDS = {
    "params", "weight_bytes", "layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim",
    "vocab", "max_position", "dtype", "tied", "vision_params", "sliding_window", "sliding_layers",
    "kv_lora_rank", "qk_rope_head_dim", "experts", "experts_per_token", "moe_intermediate",
    "flash_attention",
}


def _catalog_entry(raw: dict[str, Any]) -> ModelSpec:
    fields = {k: v for k, v in raw.items() if k in _CATALOG_FIELDS}
    return ModelSpec(
        name=raw["id"], source=raw["source"], aliases=tuple(raw.get("aliases", ())), **fields,
        vision=vision_from_config(raw, raw["hidden"], raw["source"]),
    )


@lru_cache(maxsize=1)
def catalog() -> tuple[ModelSpec, ...]:
    """The built-in catalog (``catalog.yaml`` shipped in this package, beside this module: the
    wheel installs it as a file, and importlib.resources would cost more start-up than the
    parse), read once, by libyaml's parser where PyYAML was built with it (a sixth of the
    pure-Python parser's time; the same safe constructor makes the same data)."""
    import yaml

    text = Path(__file__).with_name("catalog.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a PyYAML without libyaml has only the latter
    return tuple(_catalog_entry(e) for e in yaml.load(text, Loader=loader))


def catalog_names() -> tuple[str, ...]:
    """Every catalog id, for a search field."""
    return tuple(s.name for s in catalog())


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@lru_cache(maxsize=1)
def _catalog_index() -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in catalog():
        for name in (spec.name, spec.short_name, *spec.aliases):
            index.setdefault(_key(name), spec)
    return index


_TAG = re.compile(r"^(?P<base>.+?):(?P<tag>[^/:]+)$")


def _split_tag(name: str) -> tuple[str, str | None]:
    """``medgemma-27b-it:q8`` -> (``medgemma-27b-it``, ``q8_0``); a size tag is no quant."""
    m = _TAG.match(name)
    if not m:
        return name, None
    tag = m.group("tag").lower()
    for part in reversed(tag.split("-")):
        fmt = normalize_format(part)
        if fmt in BITS_PER_WEIGHT and fmt not in ("float32",):
            return m.group("base"), fmt
    return name, None


def closest_names(name: str, limit: int = 5) -> list[str]:
    """Catalog names nearest to ``name`` (by id, short name or alias), best first."""
    import difflib  # only for a name that is not known

    index = _catalog_index()
    hits = difflib.get_close_matches(_key(name), list(index), n=limit * 3, cutoff=0.4)
    out: list[str] = []
    for h in hits:
        if index[h].name not in out:
            out.append(index[h].name)
    word = _key(name).rsplit("/", 1)[-1]
    for spec in catalog():
        if word and word in _key(spec.name) and spec.name not in out:
            out.append(spec.name)
    return out[:limit]


def from_catalog(name: str) -> ModelSpec | None:
    """The catalog entry for an id, short name or alias (Ollama tags included), or None."""
    index = _catalog_index()
    spec = index.get(_key(name))
    if spec is not None:
        return spec
    base, quant = _split_tag(name)
    spec = index.get(_key(base))
    if spec is None and "/" in base:
        spec = index.get(_key(base.rsplit("/", 1)[-1]))
    if spec is None:
        return None
    return replace(spec, quant_hint=quant) if quant else spec


# ---- reading files other people made ---------------------------------------------------------

def _open_regular(path: Path) -> int:
    """A descriptor on ``path`` if it is a regular file (never blocks on a FIFO or a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SpecError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpecError(f"{path}: not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of regular file ``path`` if it holds at most ``limit``; else ``SpecError``."""
    fd = _open_regular(path)
    try:
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise SpecError(f"{path}: larger than {limit // MIB} MiB, not a model file")
    return data


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SpecError(f"{where}: malformed JSON ({str(exc)[:80]})") from None


# ---- Hugging Face config.json + safetensors ---------------------------------------------------

def safetensors_tensors(path: Path) -> list[tuple[str, str, list[int]]]:
    """(name, dtype, shape) of every tensor of a safetensors file, its header checked against
    the file: the header fits in the file and every tensor's bytes lie inside the data."""
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(8)
        if len(raw) != 8:
            raise SpecError(f"{path.name}: not a safetensors file (shorter than 8 bytes)")
        (length,) = struct.unpack("<Q", raw)
        if length > min(HEADER_LIMIT, size - 8):
            raise SpecError(f"{path.name}: malformed safetensors header (header of {length:,} bytes "
                            f"in a file of {size:,})")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SpecError(f"{path.name}: malformed safetensors header ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise SpecError(f"{path.name}: malformed safetensors header (not a mapping)")
    data_size = size - 8 - length
    out: list[tuple[str, str, list[int]]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        where = f"{path.name}: malformed safetensors header, tensor '{name[:60]}'"
        if not isinstance(info, dict):
            raise SpecError(f"{where} is not a mapping")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            raise SpecError(f"{where} has dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(
                type(d) is int and 0 <= d < 1 << 40 for d in shape):
            raise SpecError(f"{where} has a bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise SpecError(f"{where} has data offsets outside the file")
        n = math.prod(shape)
        if offsets[1] - offsets[0] != -(-n * DTYPE_BITS[dtype] // 8):
            raise SpecError(f"{where}: its offsets hold {offsets[1] - offsets[0]:,} bytes, its shape "
                            f"{-(-n * DTYPE_BITS[dtype] // 8):,}")
        out.append((name, dtype, shape))
    return out


def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file as its header names them (checked, see above)."""
    return {name: {"dtype": d, "shape": s} for name, d, s in safetensors_tensors(path)}


def safetensors_weights(files: Iterable[Path], quant_bits: float | None = None,
                        cfg: dict[str, Any] | None = None) -> WeightFigures:
    """The weight figures summed over the tensors of ``files`` that vLLM loads for ``cfg``."""
    tensors = [t for path in files for t in safetensors_tensors(path)]
    try:
        return weights_for_vllm(tensors, cfg or {}, quant_bits)
    except ValueError as exc:
        raise SpecError(f"safetensors files: {exc}") from None


# transformers' config-class defaults for the keys published config.json files leave out: Gemma 3's
# multimodal repositories list only what differs from Gemma3TextConfig (no vocab_size, heads or
# context in gemma-3-4b-it's text_config; models/gemma3/configuration_gemma3.py).
_GEMMA3_TEXT = {"vocab_size": 262_208, "num_attention_heads": 8, "num_key_value_heads": 4,
                "head_dim": 256, "max_position_embeddings": 131_072, "sliding_window": 4096,
                "sliding_window_pattern": 6, "tie_word_embeddings": True}
_CLASS_DEFAULTS = {"gemma3": _GEMMA3_TEXT, "gemma3_text": _GEMMA3_TEXT}


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    text = cfg.get("text_config") or cfg.get("llm_config") or {}
    if not isinstance(text, dict):
        text = {}
    kind = text.get("model_type") or cfg.get("model_type")
    defaults = _CLASS_DEFAULTS.get(kind, {}) if isinstance(kind, str) else {}
    merged = {**defaults, **cfg, **text}
    return merged


# The quant_method values vLLM reads from quantization_config, as the formats this package
# knows; anything else is named as not modelled.
_QUANT_METHODS = {"fp8": "fp8", "fbgemm_fp8": "fp8", "awq": "awq", "awq_marlin": "awq", "gptq": "gptq",
                  "gptq_marlin": "gptq", "bitsandbytes": "bitsandbytes", "mxfp4": "mxfp4"}


def quantization_of(cfg: dict[str, Any]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(format, unknown method, modules kept in 16-bit) from ``quantization_config``.

    Format None and unknown None: not quantized. An unknown method (or a known one with an
    algorithm this package lacks) comes back by name and never as 16-bit."""
    q = cfg.get("quantization_config")
    if q is None and isinstance(cfg.get("text_config"), dict):
        q = cfg["text_config"].get("quantization_config")
    if not isinstance(q, dict):
        return None, None, ()
    method = one_line(q.get("quant_method") or "", 40).strip().lower()
    keep: list[str] = []
    for key in ("modules_to_not_convert", "ignore", "ignored_layers", "exclude_modules"):
        v = q.get(key)
        if isinstance(v, list):
            keep += [str(x)[:200] for x in v[:100_000]]
    fmt: str | None = _QUANT_METHODS.get(method)
    if method == "bitsandbytes" and q.get("load_in_8bit") is True:
        fmt = "int8"
    elif method == "modelopt":
        algo = str(q.get("quant_algo") or "").upper()
        fmt = {"FP8": "fp8", "NVFP4": "nvfp4", "W4A8_AWQ": "awq"}.get(algo)
    elif method == "compressed-tensors":
        groups = q.get("config_groups") if isinstance(q.get("config_groups"), dict) else {}
        bits = [g.get("weights", {}).get("num_bits") for g in groups.values()
                if isinstance(g, dict) and isinstance(g.get("weights"), dict)]
        kinds = [g.get("weights", {}).get("type") for g in groups.values()
                 if isinstance(g, dict) and isinstance(g.get("weights"), dict)]
        if "nvfp4" in str(q.get("format", "")).lower():
            fmt = "nvfp4"
        elif bits and all(b == 8 for b in bits):
            fmt = "fp8" if all(k == "float" for k in kinds) else "int8"
        elif bits and all(b == 4 for b in bits):
            fmt = "gptq"
    if fmt is None:
        return None, method or "a quantization_config without quant_method", tuple(keep)
    return fmt, None, tuple(keep)


def _ties_by_default(c: dict[str, Any]) -> bool:
    """Whether an architecture shares its embedding with the LM head when config.json does not
    say: transformers' Gemma and GPT-2 configs default to tied, the Llama, Qwen and Mistral
    families to untied."""
    return str(c.get("model_type") or "").startswith(("gemma", "gpt2", "paligemma"))


def _count(c: dict[str, Any], source: str, keys: tuple[str, ...], hi: int, default: int | None = None,
           lo: int = 1) -> int:
    """The first of ``keys`` present, checked to be a whole number in [lo, hi]."""
    for k in keys:
        if k in c and c[k] is not None:
            v = c[k]
            if isinstance(v, float) and v.is_integer() and math.isfinite(v):
                v = int(v)
            if type(v) is not int:
                raise SpecError(f"{source}: {k} must be a whole number, got {str(v)[:30]!r}")
            if not lo <= v <= hi:
                raise SpecError(f"{source}: {k} = {str(v)[:30]} is outside {lo}..{hi:,}")
            return v
    if default is None:
        raise SpecError(f"{source}: config.json has no usable {keys[0]}")
    return default


def spec_from_config(cfg: dict[str, Any], name: str, source: str,
                     weights: WeightFigures | None = None) -> ModelSpec:
    """A spec from a config.json mapping and, when at hand, its checkpoint's weight figures
    (else the weights are estimated from the config, and the spec says so). Every field is
    checked; a bad one raises ``SpecError`` naming it."""
    if not isinstance(cfg, dict):
        raise SpecError(f"{source}: malformed config.json (not a mapping)")
    c = _text_config(cfg)
    layers = _count(c, source, ("num_hidden_layers", "n_layer", "num_layers"), 10_000)
    hidden = _count(c, source, ("hidden_size", "n_embd", "d_model"), 1 << 20)
    heads = _count(c, source, ("num_attention_heads", "n_head"), 1 << 16)
    kv_heads = _count(c, source, ("num_key_value_heads", "multi_query_group_num"), heads, heads)
    # MLA configs (DeepSeek) give no head_dim; their heads are v_head_dim wide
    head_dim = _count(c, source, ("head_dim", "attention_head_dim", "v_head_dim"), 1 << 16,
                      max(1, hidden // heads))
    vocab = _count(c, source, ("vocab_size",), 1 << 24)
    intermediate = _count(c, source, ("intermediate_size", "ffn_dim", "n_inner"), 1 << 22, 4 * hidden)
    max_pos = _count(c, source, ("max_position_embeddings", "seq_length", "max_sequence_length"),
                     1 << 30, 4096)
    sliding = None
    if c.get("use_sliding_window", True) is not False and c.get("sliding_window") is not None:
        sliding = _count(c, source, ("sliding_window",), 1 << 30)
    layer_types = c.get("layer_types")
    if layer_types is not None and not (isinstance(layer_types, list) and len(layer_types) <= 10_000):
        raise SpecError(f"{source}: layer_types must be a list of at most 10,000 layer names")
    sliding_layers = 0
    if sliding and isinstance(layer_types, list):
        sliding_layers = sum(1 for t in layer_types if "sliding" in str(t)[:40])
    elif sliding and c.get("sliding_window_pattern"):
        p = _count(c, source, ("sliding_window_pattern",), 10_000)
        sliding_layers = sum(1 for i in range(layers) if (i + 1) % p != 0)
    elif sliding and sliding < max_pos:
        sliding_layers = layers  # every layer slides (Mistral v0.1 style)
    if not sliding_layers:
        sliding = None
    for key in ("hybrid_override_pattern", "attn_type_list"):
        if key in c and not (isinstance(c[key], (str, list)) and len(c[key]) <= 10_000):
            raise SpecError(f"{source}: {key} must be a string or list of at most 10,000 entries")
    pattern: LayerPattern = layer_pattern(c, layers, bool(sliding))
    sliding_layers -= pattern.shared_sliding  # shared layers keep no window of their own either
    dtype = normalize_format(str(c.get("torch_dtype") or c.get("dtype") or "bfloat16")[:40])
    fmt, unknown_quant, keep16 = quantization_of(cfg)
    kv_lora = _count(c, source, ("kv_lora_rank",), 1 << 16, 0) or None
    rope = _count(c, source, ("qk_rope_head_dim",), 1 << 16, 0) if kv_lora else None
    experts = _count(c, source, ("num_local_experts", "num_experts", "n_routed_experts"), 1 << 16, 0, lo=0)
    per_token = _count(c, source, ("num_experts_per_tok", "moe_topk", "top_k_experts"), max(1, experts), 0, lo=0)
    moe_inter = _count(c, source, ("moe_intermediate_size",), 1 << 22, 0, lo=0)
    if experts and not moe_inter:  # Mixtral style: each expert is a whole MLP of intermediate_size
        moe_inter = intermediate
    tied = c.get("tie_word_embeddings", cfg.get("tie_word_embeddings", _ties_by_default(c))) is True
    full_head_dim, full_kv_heads, odd = _full_attention_geometry(c, source, head_dim, kv_heads)
    unmodelled = list(pattern.unknown) + odd
    try:
        tower = vision_from_config(cfg, hidden, source)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    if tower is None and isinstance(cfg.get("vision_config"), dict):
        unmodelled.append("a vision encoder of another shape (vision_config)")
    if unknown_quant:
        unmodelled.append(f"quantization '{unknown_quant}'")
    if weights is not None:
        params, weight_bytes, weights_from = weights.params, weights.bytes, "read from the safetensors headers"
        encoder = weights.encoder_params
        if fmt is None and unknown_quant is None and weights.dtype in ("F8_E4M3", "F8_E5M2"):
            fmt = "fp8"
    else:
        params, weight_bytes = _estimate(layers, hidden, intermediate, heads, kv_heads, head_dim, vocab,
                                         tied, experts, moe_inter, fmt, keep16, pattern,
                                         _gemma4_extras(c, source, layers, hidden, heads, intermediate,
                                                        full_head_dim, full_kv_heads, head_dim, kv_heads))
        weights_from, encoder = "estimated from config.json", tower.params if tower else 0
        params += encoder  # the tower and projector in the checkpoint's 16-bit dtype, never quantized
        weight_bytes += encoder * (4 if dtype == "float32" else 2)
    if not 0 < params <= MAX_PARAMS or not 0 < weight_bytes <= 4 * MAX_PARAMS:
        raise SpecError(f"{source}: the weights add up to {weight_bytes:,} bytes, not a model")
    if fmt:
        dtype = fmt
    return ModelSpec(
        name=name, source=source, params=params, weight_bytes=weight_bytes, layers=layers,
        hidden=hidden, intermediate=intermediate, heads=heads, kv_heads=kv_heads,
        head_dim=head_dim, vocab=vocab, max_position=max_pos, dtype=dtype, tied=tied,
        vision_params=encoder, sliding_window=sliding, sliding_layers=sliding_layers,
        kv_lora_rank=kv_lora, qk_rope_head_dim=rope,
        experts=experts, experts_per_token=per_token, moe_intermediate=moe_inter, origin="hf",
        state_layers=pattern.state_layers, no_kv_layers=pattern.no_kv, state=pattern.state,
        unmodelled=tuple(unmodelled), weights_from=weights_from,
        full_head_dim=full_head_dim, full_kv_heads=full_kv_heads, vision=tower,
        mtp_layers=mtp_layers(cfg), mtp_bytes=weights.mtp_bytes if weights is not None else 0,
    )


def _full_attention_geometry(c: dict[str, Any], source: str, head_dim: int,
                             kv_heads: int) -> tuple[int | None, int | None, list[str]]:
    """(head size, KV heads) of the full-attention layers where they differ from the rest, and
    what is not modelled, as ``Gemma4DecoderLayer`` (``vllm/model_executor/models/gemma4.py``)
    builds them: full-attention layers take ``global_head_dim``; their KV heads are
    ``num_global_key_value_heads`` only with ``attention_k_eq_v`` (which loads K into both K and V
    slots, so the cache still keeps both), else ``num_key_value_heads``."""
    wide = _count(c, source, ("global_head_dim",), 1 << 16, head_dim)
    few = kv_heads
    if c.get("attention_k_eq_v") is True:
        few = _count(c, source, ("num_global_key_value_heads",), 1 << 16, kv_heads)
    odd = []
    shared = c.get("num_kv_shared_layers")
    if type(shared) is int and shared > 0 and not isinstance(c.get("layer_types"), list):
        odd.append(f"{min(shared, 1 << 16)} layers reusing another layer's K/V (num_kv_shared_layers) "
                   "without layer_types")
    if "per_layer_config" in c:
        odd.append("per-layer attention geometry (per_layer_config)")
    chunk = c.get("attention_chunk_size")  # Llama 4: ChunkedLocalAttentionSpec layers beside NoPE ones
    if type(chunk) is int and chunk > 0:
        odd.append(f"chunked local attention over {min(chunk, 1 << 30):,} tokens (attention_chunk_size)")
    for key in ("index_topk", "index_head_dim"):  # DeepSeek V3.2's sparse-attention indexer cache
        if key in c:
            odd.append(f"the sparse-attention indexer's cache ({key})")
            break
    return (wide if wide != head_dim else None), (few if few != kv_heads else None), odd


@dataclass(frozen=True)
class _Extras:
    """Weights a Gemma 4 decoder has beyond the common shape: ``full_layers`` attention layers
    of ``full_attention`` parameters each (their own head size and KV heads), per-layer input
    embeddings (``per_layer``, kept 16-bit like embeddings), a dense MLP beside the experts in
    each layer and ``wide_mlp`` more MLP parameters in all (the KV-sharing layers' doubled MLP)."""

    full_layers: int = 0
    full_attention: int = 0
    per_layer: int = 0
    dense_mlp: int = 0
    wide_mlp: int = 0


def _gemma4_extras(c: dict[str, Any], source: str, layers: int, hidden: int, heads: int, inter: int,
                   full_head_dim: int | None, full_kv_heads: int | None, head_dim: int,
                   kv_heads: int) -> _Extras:
    """As ``gemma4.py`` builds them: full-attention layers project to ``global_head_dim`` heads
    and, with ``attention_k_eq_v``, have no v_proj; ``hidden_size_per_layer_input`` adds an
    embedding of ``vocab_size_per_layer_input`` x layers x that width, a projection to it and a
    gate and projection in each layer; ``enable_moe_block`` keeps the dense MLP beside the MoE;
    ``use_double_wide_mlp`` doubles the MLP of the ``num_kv_shared_layers`` last layers."""
    types = c.get("layer_types")
    full = sum(1 for t in types if t == "full_attention") if isinstance(types, list) else 0
    fhd, fkv = full_head_dim or head_dim, full_kv_heads or kv_heads
    full_attention = hidden * heads * fhd * 2 + (1 if c.get("attention_k_eq_v") is True else 2) * hidden * fkv * fhd
    width = _count(c, source, ("hidden_size_per_layer_input",), 1 << 16, 0, lo=0)
    per_layer = 0
    if width:
        vocab = _count(c, source, ("vocab_size_per_layer_input", "vocab_size"), 1 << 24)
        per_layer = vocab * layers * width + hidden * layers * width + layers * 2 * hidden * width
    dense = 3 * hidden * inter if c.get("enable_moe_block") is True else 0
    shared = min(_count(c, source, ("num_kv_shared_layers",), 1 << 16, 0, lo=0), layers)
    wide = shared * 3 * hidden * inter if c.get("use_double_wide_mlp") is True else 0
    return _Extras(full if (full_head_dim or full_kv_heads or c.get("attention_k_eq_v") is True) else 0,
                   full_attention, per_layer, dense, wide)


def _mixer_params(pattern: LayerPattern, hidden: int) -> int:
    """Parameters of one state layer's mixer (its projections, as the model code lays them out)."""
    st = pattern.state
    if st is None:
        return 0
    d = st.dims
    if st.kind == "gated_delta_net":  # in_proj_qkvz, in_proj_ba, out_proj
        k_heads, v_heads, k_dim, v_dim, _ = d
        return hidden * (2 * k_heads * k_dim + 2 * v_heads * v_dim + 2 * v_heads) + v_heads * v_dim * hidden
    if st.kind == "mamba2":  # in_proj (z, x, B, C, dt), out_proj
        inner, groups, m_heads, _, state, _ = d
        return hidden * (2 * inner + 2 * groups * state + m_heads) + inner * hidden
    if st.kind == "mamba":  # in_proj, x_proj, dt_proj, out_proj (dt rank hidden / 16)
        inner, state, _ = d
        rank = -(-hidden // 16)
        return hidden * 2 * inner + inner * (rank + 2 * state) + rank * inner + inner * hidden
    m_heads, head_dim = d  # linear attention: q, k, v, o of every head
    return 4 * hidden * m_heads * head_dim


def _estimate(layers: int, hidden: int, inter: int, heads: int, kv: int, hd: int, vocab: int,
              tied: bool, experts: int, moe_inter: int, fmt: str | None,
              keep16: tuple[str, ...], pattern: LayerPattern, extras: _Extras = _Extras()) -> tuple[int, int]:
    """(parameters, bytes) of a decoder from its config. A quantization's bits apply to the
    linear layers only; embeddings, the LM head, routers and norms stay 16-bit, and so do the
    attention projections when the exclusion list names them. State layers count their own
    mixer, MLP-only layers none (layers reading another's K/V keep their projections)."""
    attention_layers = layers - pattern.state_layers - (pattern.no_kv - pattern.shared) - extras.full_layers
    per_attn = hidden * heads * hd * 2 + 2 * hidden * kv * hd
    attn = (attention_layers * per_attn + extras.full_layers * extras.full_attention
            + pattern.state_layers * _mixer_params(pattern, hidden)) / layers
    mlp = 3 * hidden * (moe_inter or inter) * max(1, experts) + extras.dense_mlp + extras.wide_mlp / layers
    router = hidden * experts
    embed = vocab * hidden * (1 if tied else 2) + extras.per_layer
    params = layers * (attn + mlp + router + 2 * hidden) + embed + hidden
    bits = BITS_PER_WEIGHT.get(fmt, 16.0) if fmt else 16.0
    attn_bits = 16.0 if any("attn" in k or "attention" in k for k in keep16) else bits
    nbytes = (layers * (attn * attn_bits + mlp * bits) / 8
              + 2 * (layers * (router + 2 * hidden) + embed + hidden))
    return int(params), int(nbytes)


def from_hf_dir(path: Path, name: str | None = None) -> ModelSpec:
    """A spec from a model directory holding config.json and (optionally) safetensors files;
    a sharded checkpoint counts only when every shard its index names is here."""
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise SpecError(f"{path}: no config.json in this directory")
    cfg = _json(read_bounded(cfg_path, CONFIG_LIMIT), f"{cfg_path}: malformed config.json")
    if not isinstance(cfg, dict):
        raise SpecError(f"{cfg_path}: malformed config.json (not a mapping)")
    files = sorted(path.glob("*.safetensors"))[:10_000]
    index = path / "model.safetensors.index.json"
    if index.exists():
        data = _json(read_bounded(index, 64 * MIB), f"{index}")
        shards = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(shards, dict):
            raise SpecError(f"{index}: no weight_map")
        wanted = {str(v) for v in shards.values()}
        if not wanted <= {f.name for f in files}:
            files = []  # shards missing here: estimate rather than count half a model
        else:
            files = [f for f in files if f.name in wanted]
    weights = None
    if files:
        fmt, _, _ = quantization_of(cfg)
        weights = safetensors_weights(files, math.floor(BITS_PER_WEIGHT[fmt]) if fmt else None, cfg)
    spec = spec_from_config(cfg, name or path.name, str(cfg_path), weights)
    processor = path / "preprocessor_config.json"
    if sized_by_processor(spec.vision) and processor.is_file():
        data = _json(read_bounded(processor, CONFIG_LIMIT), f"{processor}: malformed preprocessor_config.json")
        if isinstance(data, dict):
            spec = replace(spec, vision=largest_image(spec.vision, data))
    return replace(spec, origin="hf")


def from_hf_cache(name: str) -> ModelSpec | None:
    """The cached snapshot of repo ``name`` in the local HF cache (the one ``refs/main`` names,
    else the newest with a config.json), or None. The cache's layout (``models--ORG--NAME/
    snapshots/REV``) is looked up directly: no ``huggingface_hub`` import and no scan of the
    whole cache, which cost a second on the UI thread for every unknown name typed."""
    repo = name.strip()
    if repo.count("/") != 1 or any(part in ("", ".", "..") for part in repo.split("/")):
        return None
    root = paths.hf_hub_cache()
    folder = root / ("models--" + repo.replace("/", "--"))
    try:
        if not folder.is_dir():  # repo ids are case-insensitive on the Hub; a folder keeps the case typed
            wanted = folder.name.lower()
            folder = next((p for p in root.iterdir() if p.name.lower() == wanted), folder)
        snapshots = folder / "snapshots"
        main = folder / "refs" / "main"
        ref = read_bounded(main, 256).decode("ascii").strip() if main.is_file() else ""
        revs = [snapshots / ref] if re.fullmatch(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,127}", ref) else []
        revs += sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        rev = next((r for r in revs if (r / "config.json").is_file()), None)
    except (OSError, UnicodeDecodeError, ValueError, SpecError):
        return None
    if rev is None:
        return None
    repo_id = folder.name[len("models--"):].replace("--", "/", 1)
    return from_hf_dir(rev, repo_id)


# ---- GGUF and the Ollama store ----------------------------------------------------------------

def from_gguf(path: Path, name: str | None = None) -> ModelSpec:
    """A spec from a local GGUF file, read as a remote one is: its header walked in pieces
    without the tokenizer's tables (``remote_gguf``), which the ``gguf`` package's reader would
    take tens of seconds to parse for a 150,000-token vocabulary."""
    from vramtop.fit.remote_gguf import spec_from_remote_gguf  # imports this module

    fd = _open_regular(path)  # a FIFO or a device is refused before anything is read
    try:
        size = os.fstat(fd).st_size
        return spec_from_remote_gguf(lambda first, last: os.pread(fd, last - first + 1, first), size,
                                     name, str(path))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def from_gguf_reader(path: Path, name: str | None = None) -> ModelSpec:
    """A spec from a GGUF file as the ``gguf`` package reads it: metadata for the architecture,
    tensor sizes for the bytes. ``from_gguf`` hands it the header alone."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise SpecError("reading GGUF files needs the 'gguf' package (pip install gguf)") from None
    os.close(_open_regular(path))  # a FIFO or a device is refused before the reader maps it
    try:
        reader = GGUFReader(str(path), "r")
    except Exception as exc:  # noqa: BLE001 - any fault of a foreign parser on foreign bytes
        raise SpecError(f"{path}: malformed GGUF file ({str(exc)[:80]})") from None
    try:
        return _checked(_spec_from_gguf(reader, path, name))
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise SpecError(f"{path}: malformed GGUF file ({type(exc).__name__}: {str(exc)[:80]})") from None


def _checked(spec: ModelSpec) -> ModelSpec:
    """``spec`` if every figure is a plausible model's; else ``SpecError`` naming the first
    that is not (a GGUF or a server answer may say anything)."""
    bounds = {"layers": 10_000, "hidden": 1 << 20, "heads": 1 << 16, "kv_heads": spec.heads,
              "head_dim": 1 << 16, "vocab": 1 << 24, "max_position": 1 << 30, "intermediate": 1 << 22}
    for key, hi in bounds.items():
        v = getattr(spec, key)
        if type(v) is not int or not 1 <= v <= hi:
            raise SpecError(f"{spec.source}: {key} = {str(v)[:30]} is outside 1..{hi:,}")
    if not 0 < spec.params <= MAX_PARAMS or not 0 < spec.weight_bytes <= 4 * MAX_PARAMS:
        raise SpecError(f"{spec.source}: the weights add up to {spec.weight_bytes:,} bytes, not a model")
    if spec.sliding_window is not None and not 0 < spec.sliding_window <= 1 << 30:
        raise SpecError(f"{spec.source}: sliding window {spec.sliding_window} is outside 1..{1 << 30:,}")
    if spec.kv_lora_rank is not None and not 0 < spec.kv_lora_rank <= 1 << 16:
        raise SpecError(f"{spec.source}: kv_lora_rank {spec.kv_lora_rank} is outside 1..65,536")
    if not 0 <= spec.experts <= 1 << 16 or not 0 <= spec.experts_per_token <= max(1, spec.experts):
        raise SpecError(f"{spec.source}: {spec.experts} experts, {spec.experts_per_token} per token")
    return spec


def _spec_from_gguf(reader: Any, path: Path, name: str | None) -> ModelSpec:

    def value(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        try:
            return f.contents()
        except (ValueError, IndexError, AttributeError):
            return None

    arch = value("general.architecture")
    if not isinstance(arch, str):
        raise SpecError(f"{path}: malformed GGUF file (no general.architecture)")

    def num(key: str, default: int | None = None) -> int | None:
        v = value(f"{arch}.{key}")
        if isinstance(v, list):
            v = max(v) if v else None
        return int(v) if v is not None else default

    layers = num("block_count")
    hidden = num("embedding_length")
    heads = num("attention.head_count")
    if not (layers and hidden and heads):
        raise SpecError(f"{path}: malformed GGUF file (no {arch}.block_count/embedding_length)")
    kv_heads = num("attention.head_count_kv", heads)
    head_dim = num("attention.key_length", hidden // heads)
    total = sum(int(t.n_bytes) for t in reader.tensors)
    params = sum(int(t.n_elements) for t in reader.tensors)
    vocab_tokens = value("tokenizer.ggml.tokens")
    vocab = len(vocab_tokens) if isinstance(vocab_tokens, list) else num("vocab_size", 32000)
    window = num("attention.sliding_window")
    pattern = value(f"{arch}.attention.sliding_window_pattern")
    sliding_layers = 0
    if window:
        if isinstance(pattern, list):
            sliding_layers = sum(1 for p in pattern if p)
        elif arch == "gemma3":
            sliding_layers = sum(1 for i in range(layers) if (i + 1) % 6 != 0)
        elif arch in ("gpt-oss", "gptoss"):
            sliding_layers = layers // 2
    ftype = value("general.file_type")
    dtype = GGUF_FILE_TYPES.get(int(ftype), "q4_k_m") if ftype is not None else "q4_k_m"
    return ModelSpec(
        name=name or str(value("general.name") or path.stem), source=str(path), params=params,
        weight_bytes=total, layers=layers, hidden=hidden,
        intermediate=num("feed_forward_length", 4 * hidden), heads=heads, kv_heads=kv_heads,
        head_dim=head_dim, vocab=vocab, max_position=num("context_length", 4096), dtype=dtype,
        sliding_window=window if sliding_layers else None, sliding_layers=sliding_layers,
        kv_lora_rank=num("attention.kv_lora_rank"),
        qk_rope_head_dim=num("rope.dimension_count") if num("attention.kv_lora_rank") else None,
        experts=num("expert_count", 0), experts_per_token=num("expert_used_count", 0),
        flash_attention=arch in ("gemma3", "gpt-oss", "gptoss", "qwen3", "qwen3moe", "mistral3"),
        origin="gguf", quant_hint=dtype,
    )


def ollama_model_blob(name: str, models_dir: Path | None = None) -> Path | None:
    """The GGUF blob an Ollama tag points at in the local store (what its runner loads), or None
    if not pulled here. Raises SpecError on a malformed manifest."""
    root = models_dir or paths.ollama_models_dir()
    base, _, tag = name.partition(":")
    tag = tag or "latest"
    parts = base.split("/")
    if len(parts) == 1:
        parts = ["library", parts[0]]
    if len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    manifest = root / "manifests" / Path(*parts) / tag
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{manifest}: malformed Ollama manifest ({exc})") from None
    for layer in data.get("layers", []) if isinstance(data, dict) else ():
        if isinstance(layer, dict) and layer.get("mediaType") == "application/vnd.ollama.image.model":
            return root / "blobs" / str(layer.get("digest", "")).replace(":", "-")
    raise SpecError(f"{manifest}: Ollama manifest names no model layer")


def from_ollama_store(name: str, models_dir: Path | None = None) -> ModelSpec | None:
    """The GGUF blob an Ollama tag points at in the local store, or None if not pulled here."""
    blob = ollama_model_blob(name, models_dir)
    if blob is None:
        return None
    return replace(from_gguf(blob, name), origin="ollama", source=f"ollama store {name}")


def ollama_host() -> str:
    """Where the Ollama server listens (``OLLAMA_HOST``, else 127.0.0.1:11434), as a URL."""
    host = os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434"
    if "://" not in host:
        host = "http://" + host
    return host.rstrip("/").replace("://0.0.0.0", "://127.0.0.1")


OLLAMA_MAX_BYTES = 8 * 2**20  # /api/show without verbose is tens of KiB; /api/tags a line a model


def _ollama_call(url: str, payload: dict[str, Any] | None, timeout: float) -> Any:
    """One JSON request to a running Ollama, under one deadline and a size cap (``peer_http``).
    Raises ``ValueError`` with one plain line on any failure."""
    from vramtop import peer_http

    try:
        if payload is None:
            answer = peer_http.get(url, timeout, OLLAMA_MAX_BYTES)
        else:
            answer = peer_http.post(url, json.dumps(payload).encode(), timeout, OLLAMA_MAX_BYTES,
                                    {"Content-Type": "application/json"})
    except peer_http.PeerError as exc:
        raise ValueError(str(exc)) from None
    if answer.status != 200:
        raise ValueError(f"HTTP {answer.status}")
    try:
        return json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("not JSON") from None


def from_ollama_api(name: str, host: str | None = None, timeout: float = 0.5) -> ModelSpec | None:
    """A spec from a running Ollama server: ``/api/tags`` for the file size, ``/api/show`` for
    the GGUF metadata. None when no server answers or it does not have ``name``, and inside
    ``remote.cache_only()`` (the UI thread asks there, on every keystroke)."""
    from vramtop.fit import remote

    if not remote.network_allowed():
        return None
    base = host or ollama_host()
    try:
        tags = _ollama_call(f"{base}/api/tags", None, timeout)
        if not isinstance(tags, dict):
            return None
    except ValueError:
        return None
    wanted = name if ":" in name else f"{name}:latest"
    models = tags.get("models")
    entry = next((m for m in (models if isinstance(models, list) else []) if isinstance(m, dict)
                  and (m.get("name") in (name, wanted) or m.get("model") in (name, wanted))), None)
    if entry is None:
        return None
    try:
        show = _ollama_call(f"{base}/api/show", {"model": entry.get("model") or entry["name"]}, timeout)
    except ValueError as exc:
        raise SpecError(f"Ollama at {base} could not show '{name}' ({exc})") from None
    try:
        return _spec_from_ollama_show(show, entry, name, base)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise SpecError(f"Ollama at {base}: malformed /api/show for '{name}' ({str(exc)[:80]})") from None


def _spec_from_ollama_show(show: Any, entry: dict[str, Any], name: str, base: str) -> ModelSpec:
    info = show.get("model_info") or {}
    arch = info.get("general.architecture")
    if not isinstance(arch, str):
        raise SpecError(f"Ollama at {base}: '{name}' has no general.architecture in /api/show")

    def num(key: str, default: int | None = None) -> int | None:
        v = info.get(f"{arch}.{key}")
        if isinstance(v, list):
            v = max(v) if v else None
        return int(v) if isinstance(v, (int, float)) else default

    layers, hidden, heads = num("block_count"), num("embedding_length"), num("attention.head_count")
    if not (layers and hidden and heads):
        raise SpecError(f"Ollama at {base}: '{name}' lacks {arch}.block_count/embedding_length")
    details = show.get("details") or entry.get("details") or {}
    dtype = normalize_format(str(details.get("quantization_level") or "q4_k_m"))
    window = num("attention.sliding_window")
    sliding = 0
    if window and arch == "gemma3":
        sliding = sum(1 for i in range(layers) if (i + 1) % 6 != 0)
    elif window and arch in ("gpt-oss", "gptoss"):
        sliding = layers // 2
    size = int(entry.get("size") or 0)
    params = int(info.get("general.parameter_count") or size * 2)
    return _checked(ModelSpec(
        name=str(entry.get("name", name))[:200], source=f"{base}/api/show {name}", params=params,
        weight_bytes=size or params * 2, layers=layers, hidden=hidden,
        intermediate=num("feed_forward_length", 4 * hidden), heads=heads,
        kv_heads=num("attention.head_count_kv", heads), head_dim=num("attention.key_length", hidden // heads),
        vocab=num("vocab_size", 128256), max_position=num("context_length", 4096), dtype=dtype,
        sliding_window=window if sliding else None, sliding_layers=sliding,
        kv_lora_rank=num("attention.kv_lora_rank"),
        qk_rope_head_dim=num("rope.dimension_count") if num("attention.kv_lora_rank") else None,
        experts=num("expert_count", 0), experts_per_token=num("expert_used_count", 0),
        flash_attention=arch in ("gemma3", "gpt-oss", "gptoss", "qwen3", "qwen3moe", "mistral3"),
        origin="ollama", quant_hint=dtype,
    ))


# ---- quick guess ------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d{1,20}(?:\.\d{1,20})?)\s*([bBtTmM]?)\s*$")


def parse_params(text: str) -> int:
    """"27B" -> 27e9, "350M" -> 350e6, "8030261248" as is; raises ``SpecError``."""
    m = _SIZE.match(text)
    if not m:
        raise SpecError(f"--params must look like 27B or 350M, got '{text[:40]}'")
    scale = {"t": 1e12, "b": 1e9, "m": 1e6, "": 1.0}[m.group(2).lower()]
    value = float(m.group(1)) * scale
    if value < 1_000_000:
        raise SpecError(f"--params {text} is too small for a language model")
    if value > MAX_PARAMS:
        raise SpecError(f"--params {text} is larger than any model (at most 10T)")
    return int(value)


def guess_spec(params: int, quant: str | None = None) -> ModelSpec:
    """A Llama-shaped model of ``params`` parameters (layers, width and heads from the size).

    Good to ±10 % on weights and KV per token for dense decoder-only models; say so in reports.
    """
    # Llama-family shapes by size: hidden grows ~ params^(1/3) * 16
    table = [(1.5e9, 16, 2048, 8192, 32, 8, 64), (4e9, 28, 3072, 8192, 24, 8, 128),
             (10e9, 32, 4096, 14336, 32, 8, 128), (20e9, 48, 5120, 13824, 40, 8, 128),
             (40e9, 64, 5120, 27648, 40, 8, 128), (1e13, 80, 8192, 28672, 64, 8, 128)]
    layers, hidden, inter, heads, kv, hd = next(row[1:] for row in table if params <= row[0])
    fmt = normalize_format(quant) if quant else "bfloat16"
    if fmt not in BITS_PER_WEIGHT:
        raise SpecError(f"unknown quantization '{quant}' (e.g. bfloat16, fp8, awq, q8_0, q4_K_M)")
    label = f"{params / 1e9:g}B guess"
    return ModelSpec(
        name=label, source="guessed from the parameter count", params=params,
        weight_bytes=int(params * 2), layers=layers, hidden=hidden, intermediate=inter,
        heads=heads, kv_heads=kv, head_dim=hd, vocab=128256, max_position=131072,
        origin="guess", quant_hint=fmt if quant else None,
    )


# ---- one entry point --------------------------------------------------------------------------

def _from_path(path: Path) -> ModelSpec:
    if path.is_dir():
        return from_hf_dir(path)
    if path.name == "config.json":
        return from_hf_dir(path.parent)
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        magic = f.read(4)
    if path.suffix.lower() == ".gguf" or magic == b"GGUF":
        return from_gguf(path)
    raise SpecError(f"{path}: neither a model directory, a config.json nor a GGUF file")


def resolve(name: str) -> ModelSpec:
    """A spec for what the user typed: a path, a catalog name or alias, an Ollama tag in the
    local store, a repo in the local HF cache, a model a running Ollama server has, or a Hub
    repository / Ollama library tag read over the network (``remote``). Unknown names raise
    ``SpecError`` listing the closest catalog names."""
    text = name.strip()
    if not text:
        raise SpecError("no model given")
    if len(text) > 4096 or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise SpecError("a model name or path has no control characters and at most 4,096 characters")
    try:
        path = Path(text).expanduser()
        exists = path.exists()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, no home directory
        exists = False
    if exists:
        try:
            return _from_path(path)
        except OSError as exc:  # a directory that vanishes or cannot be listed while it is read
            raise SpecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if (spec := from_catalog(text)) is not None:
        return spec
    from vramtop.fit import remote  # Hub repositories, Ollama library tags (it imports this module)

    for lookup in (from_ollama_store, remote.cached, from_hf_cache, from_ollama_api,
                   remote.fetch):  # cheapest first; remote.fetch alone goes to the network
        if (spec := lookup(text)) is not None:
            return spec
    near = closest_names(text)
    hint = f"; closest: {', '.join(near)}" if near else "; see `vramtop fit --list`"
    raise SpecError(f"unknown model '{text}'{hint}")
