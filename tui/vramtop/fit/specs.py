"""What a model is, for memory arithmetic: ``ModelSpec``, and where it comes from.

A spec is read from the built-in catalog, a Hugging Face model directory or the local HF cache
(config.json for the architecture, safetensors headers for the exact weight bytes), a GGUF file or
the local Ollama store (GGUF metadata and tensor sizes), or guessed from "27B" and a quant name.
These loaders are the fit package's only I/O; everything downstream is pure arithmetic on specs.
Any failure is a ``SpecError`` with one line naming the cause.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

MIB = 1024**2


class SpecError(ValueError):
    """A model that cannot be found or read; the message is one line naming the cause."""


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts of one model (as its config.json gives them) and its weight bytes.

    ``weight_bytes`` are the bytes of the weights as stored in ``dtype`` (safetensors total_size,
    GGUF tensor bytes). ``vision_params`` counts a vision tower kept in 16-bit by quantizers.
    ``sliding_layers`` of the ``layers`` keep only ``sliding_window`` tokens; MLA models give
    ``kv_lora_rank`` and ``qk_rope_head_dim`` instead of per-head K/V.
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
        name=raw["id"], source=raw["source"], aliases=tuple(raw.get("aliases", ())), **fields
    )


@lru_cache(maxsize=1)
def catalog() -> tuple[ModelSpec, ...]:
    """The built-in catalog (``catalog.yaml`` shipped in this package), read once."""
    text = resources.files("vramtop.fit").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return tuple(_catalog_entry(e) for e in yaml.safe_load(text))


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


# ---- Hugging Face config.json + safetensors ---------------------------------------------------

_ST_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                   "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "F8_E8M0": 1}


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SpecError(f"{path.name}: not a safetensors file (shorter than 8 bytes)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * MIB:
            raise SpecError(f"{path.name}: not a safetensors file (header length {length})")
        try:
            return json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"{path.name}: malformed safetensors header ({exc})") from None


def safetensors_weights(files: Iterable[Path]) -> tuple[int, int, str]:
    """(bytes, parameters, dominant dtype) summed over the tensors of ``files``."""
    total = params = 0
    by_dtype: dict[str, int] = {}
    for path in files:
        for name, info in safetensors_header(path).items():
            if name == "__metadata__":
                continue
            start, end = info["data_offsets"]
            total += end - start
            n = 1
            for d in info["shape"]:
                n *= d
            params += n
            by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + end - start
    dominant = max(by_dtype, key=by_dtype.get) if by_dtype else "BF16"
    return total, params, dominant


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    text = cfg.get("text_config") or cfg.get("llm_config") or {}
    merged = {**cfg, **text}
    return merged


def spec_from_config(cfg: dict[str, Any], name: str, source: str,
                     weight_bytes: int | None = None, params: int | None = None,
                     stored_dtype: str | None = None) -> ModelSpec:
    """A spec from a config.json mapping; raises ``SpecError`` naming a missing or bad key."""
    c = _text_config(cfg)

    def need(*keys: str) -> int:
        for k in keys:
            v = c.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
        raise SpecError(f"{source}: config.json has no usable {keys[0]}")

    layers = need("num_hidden_layers", "n_layer", "num_layers")
    hidden = need("hidden_size", "n_embd", "d_model")
    heads = need("num_attention_heads", "n_head")
    kv_heads = c.get("num_key_value_heads") or c.get("multi_query_group_num") or heads
    head_dim = c.get("head_dim") or hidden // heads
    vocab = need("vocab_size")
    intermediate = c.get("intermediate_size") or 4 * hidden
    max_pos = c.get("max_position_embeddings") or c.get("seq_length") or 4096
    sliding = c.get("sliding_window") if c.get("use_sliding_window", True) is not False else None
    layer_types = c.get("layer_types")
    sliding_layers = 0
    if sliding and isinstance(layer_types, list):
        sliding_layers = sum(1 for t in layer_types if "sliding" in str(t))
    elif sliding and c.get("sliding_window_pattern"):
        p = int(c["sliding_window_pattern"])
        sliding_layers = sum(1 for i in range(layers) if (i + 1) % p != 0)
    elif sliding and sliding < max_pos:
        sliding_layers = layers  # every layer slides (Mistral v0.1 style)
    if not sliding_layers:
        sliding = None
    dtype = normalize_format(str(c.get("torch_dtype") or c.get("dtype") or "bfloat16"))
    quant = (cfg.get("quantization_config") or {}).get("quant_method")
    kv_lora = c.get("kv_lora_rank")
    experts = c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts") or 0
    tied = bool(c.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False)))
    if params is None:
        params = _estimate_params(layers, hidden, intermediate, heads, kv_heads, head_dim, vocab,
                                  tied, experts, c.get("moe_intermediate_size") or 0)
    if weight_bytes is None:
        fmt = normalize_format(quant) if quant else dtype
        weight_bytes = int(params * BITS_PER_WEIGHT.get(fmt, 16.0) / 8)
    if quant:
        dtype = normalize_format(quant)
    elif stored_dtype in ("F8_E4M3", "F8_E5M2"):
        dtype = "fp8"
    return ModelSpec(
        name=name, source=source, params=params, weight_bytes=weight_bytes, layers=layers,
        hidden=hidden, intermediate=intermediate, heads=heads, kv_heads=int(kv_heads),
        head_dim=int(head_dim), vocab=vocab, max_position=int(max_pos), dtype=dtype, tied=tied,
        sliding_window=sliding, sliding_layers=sliding_layers,
        kv_lora_rank=kv_lora, qk_rope_head_dim=c.get("qk_rope_head_dim") if kv_lora else None,
        experts=int(experts), experts_per_token=int(c.get("num_experts_per_tok") or 0),
        moe_intermediate=int(c.get("moe_intermediate_size") or 0), origin="hf",
    )


def _estimate_params(layers: int, hidden: int, inter: int, heads: int, kv: int, hd: int,
                     vocab: int, tied: bool, experts: int, moe_inter: int) -> int:
    attn = hidden * heads * hd * 2 + 2 * hidden * kv * hd
    mlp = 3 * hidden * (moe_inter or inter) * max(1, experts)
    return layers * (attn + mlp + 2 * hidden) + vocab * hidden * (1 if tied else 2) + hidden


def from_hf_dir(path: Path, name: str | None = None) -> ModelSpec:
    """A spec from a model directory holding config.json and (optionally) safetensors files."""
    cfg_path = path / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: no config.json in this directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{cfg_path}: malformed config.json ({exc})") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"{cfg_path}: malformed config.json (not a mapping)")
    files = sorted(path.glob("*.safetensors"))
    wbytes = params = None
    stored = None
    if files:
        wbytes, params, stored = safetensors_weights(files)
    spec = spec_from_config(cfg, name or path.name, str(cfg_path), wbytes, params, stored)
    return replace(spec, origin="hf")


def from_hf_cache(name: str) -> ModelSpec | None:
    """The newest cached snapshot of repo ``name`` in the local HF cache, or None."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return None
    try:
        info = scan_cache_dir()
    except (CacheNotFound, OSError, ValueError):
        return None
    for repo in info.repos:
        if repo.repo_type == "model" and repo.repo_id.lower() == name.strip().lower():
            snaps = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
            for rev in snaps:
                if (rev.snapshot_path / "config.json").exists():
                    return from_hf_dir(rev.snapshot_path, repo.repo_id)
    return None


# ---- GGUF and the Ollama store ----------------------------------------------------------------

def from_gguf(path: Path, name: str | None = None) -> ModelSpec:
    """A spec from a GGUF file: metadata for the architecture, tensor sizes for the bytes."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise SpecError("reading GGUF files needs the 'gguf' package (pip install gguf)") from None
    try:
        reader = GGUFReader(str(path), "r")
    except (OSError, ValueError, struct.error, IndexError, KeyError) as exc:
        raise SpecError(f"{path}: malformed GGUF file ({exc})") from None

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


def ollama_models_dir() -> Path:
    """Where Ollama keeps its models (``OLLAMA_MODELS``, else ``~/.ollama/models``)."""
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def ollama_model_blob(name: str, models_dir: Path | None = None) -> Path | None:
    """The GGUF blob an Ollama tag points at in the local store (what its runner loads), or None
    if not pulled here. Raises SpecError on a malformed manifest."""
    root = models_dir or ollama_models_dir()
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


def _ollama_call(url: str, payload: dict[str, Any] | None, timeout: float) -> Any:
    import urllib.request

    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (a local server)
        return json.loads(resp.read().decode("utf-8"))


def from_ollama_api(name: str, host: str | None = None, timeout: float = 0.5) -> ModelSpec | None:
    """A spec from a running Ollama server: ``/api/tags`` for the file size, ``/api/show`` for
    the GGUF metadata. None when no server answers or it does not have ``name``."""
    base = host or ollama_host()
    try:
        tags = _ollama_call(f"{base}/api/tags", None, timeout)
    except (OSError, ValueError):
        return None
    wanted = name if ":" in name else f"{name}:latest"
    entry = next((m for m in tags.get("models", []) if m.get("name") in (name, wanted)
                  or m.get("model") in (name, wanted)), None)
    if entry is None:
        return None
    try:
        show = _ollama_call(f"{base}/api/show", {"model": entry.get("model") or entry["name"]}, timeout)
    except (OSError, ValueError) as exc:
        raise SpecError(f"Ollama at {base} could not show '{name}' ({exc})") from None
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
    return ModelSpec(
        name=entry.get("name", name), source=f"{base}/api/show {name}", params=params,
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
    )


# ---- quick guess ------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bBmM]?)\s*$")


def parse_params(text: str) -> int:
    """"27B" -> 27e9, "350M" -> 350e6, "8030261248" as is; raises ``SpecError``."""
    m = _SIZE.match(text)
    if not m:
        raise SpecError(f"--params must look like 27B or 350M, got '{text}'")
    scale = {"b": 1e9, "m": 1e6, "": 1.0}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value < 1_000_000:
        raise SpecError(f"--params {text} is too small for a language model")
    return value


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

def resolve(name: str) -> ModelSpec:
    """A spec for what the user typed: a path, a catalog name or alias, an Ollama tag in the
    local store, a repo in the local HF cache, or a model a running Ollama server has. Unknown
    names raise ``SpecError`` listing the closest catalog names."""
    text = name.strip()
    if not text:
        raise SpecError("no model given")
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            return from_hf_dir(path)
        if path.suffix.lower() == ".gguf" or path.read_bytes()[:4] == b"GGUF":
            return from_gguf(path)
        if path.name == "config.json":
            return from_hf_dir(path.parent)
        raise SpecError(f"{path}: neither a model directory, a config.json nor a GGUF file")
    for lookup in (from_catalog, from_ollama_store, from_hf_cache, from_ollama_api):  # cheapest first
        if (spec := lookup(text)) is not None:
            return spec
    near = closest_names(text)
    hint = f"; closest: {', '.join(near)}" if near else "; see `vramtop fit --list`"
    raise SpecError(f"unknown model '{text}'{hint}")
