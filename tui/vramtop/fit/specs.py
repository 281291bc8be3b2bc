"""What a model is, for memory: its architecture and the bytes of its weights.

Specs come from the built-in catalog, a Hugging Face model directory (config.json plus the
safetensors headers, which give exact tensor bytes), a GGUF file, or a quick guess from a
parameter count and a quantization. Every loader fails with ``SpecError``: one line, the cause.
"""

from __future__ import annotations

import difflib
import json
import re
import struct
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml


class SpecError(Exception):
    """A model vramtop cannot size: unknown name, malformed config.json or GGUF."""


# Bits per weight of each weight format, as stored (GGML block overheads included).
BITS_PER_WEIGHT = {
    "bf16": 16.0, "fp16": 16.0, "float16": 16.0, "bfloat16": 16.0, "f16": 16.0, "fp32": 32.0,
    "fp8": 8.0, "int8": 8.0, "w8a8": 8.0,
    "awq": 4.25, "gptq": 4.25, "int4": 4.25, "mxfp4": 4.25,
    "q8_0": 8.5, "q6_k": 6.5625, "q5_k_m": 5.70, "q5_0": 5.5, "q4_k_m": 4.90, "q4_k_s": 4.68,
    "q4_0": 4.5, "q3_k_m": 3.91, "q2_k": 2.625,
}
QUANT_ALIASES = {"q8": "q8_0", "q4": "q4_k_m", "q5": "q5_k_m", "q6": "q6_k", "half": "fp16"}


def normalize_quant(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = QUANT_ALIASES.get(key, key)
    if key not in BITS_PER_WEIGHT:
        raise SpecError(f"unknown dtype / quantization '{name}' (known: {', '.join(sorted(BITS_PER_WEIGHT))})")
    return key


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts as the model's config.json states them.

    ``weight_bytes`` are the weights as released in ``dtype``; ``bytes_for`` rescales them for
    another quantization. ``sliding_layers`` of ``layers`` keep only ``sliding_window`` tokens.
    """

    id: str
    params: int
    weight_bytes: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_position: int
    intermediate: int = 0
    dtype: str = "bf16"
    sliding_window: int | None = None
    sliding_layers: int = 0
    kv_lora_rank: int | None = None  # MLA: the cache holds the latent, not per-head K and V
    qk_rope_head_dim: int | None = None
    flash_attention: bool = False  # Ollama turns flash attention on by default for this family
    source: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank is not None

    def bytes_for(self, quant: str | None) -> int:
        """Weight bytes in ``quant`` (None: as released)."""
        if quant is None or normalize_quant(quant) == normalize_quant(self.dtype):
            return self.weight_bytes
        return int(self.params * BITS_PER_WEIGHT[normalize_quant(quant)] / 8)


def _from_mapping(entry: dict) -> ModelSpec:
    data = dict(entry)
    data["aliases"] = tuple(data.get("aliases", ()))
    return ModelSpec(**data)


@lru_cache(maxsize=1)
def catalog() -> tuple[ModelSpec, ...]:
    """The models shipped with vramtop (``catalog.yaml``)."""
    text = resources.files("vramtop.fit").joinpath("catalog.yaml").read_text(encoding="utf-8")
    return tuple(_from_mapping(e) for e in yaml.safe_load(text))


def _key(name: str) -> str:
    name = name.lower().strip()
    name = re.sub(r"^(hf\.co/|huggingface\.co/)", "", name)
    name = re.sub(r":(latest|q\d.*|fp16|bf16|f16)$", "", name)
    return re.sub(r"[^a-z0-9.:/]+", "-", name)


@lru_cache(maxsize=1)
def _index() -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in catalog():
        for name in (spec.id, spec.id.split("/")[-1], *spec.aliases):
            index.setdefault(_key(name), spec)
            index.setdefault(_key(name).removesuffix("-instruct").removesuffix("-it"), spec)
    return index


def resolve(name: str) -> ModelSpec:
    """A catalog model by any of its names (``medgemma-27b``, ``google/medgemma-27b-it``, an
    Ollama tag); an unknown name lists the closest ones."""
    key = _key(name)
    index = _index()
    for candidate in (key, key.split("/")[-1], key.removesuffix("-instruct").removesuffix("-it")):
        if candidate in index:
            return index[candidate]
    close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.5)
    names = sorted({index[c].id for c in close})
    hint = f"; closest: {', '.join(names)}" if names else ""
    raise SpecError(f"unknown model '{name}'{hint} (a Hugging Face directory, a .gguf file or --params also work)")


def search(text: str, limit: int = 20) -> list[ModelSpec]:
    """Catalog models whose names contain every word of ``text`` (for a search field)."""
    words = text.lower().split()
    found = [s for s in catalog() if all(w in " ".join((s.id, *s.aliases)).lower() for w in words)]
    return found[:limit]


def _safetensors_bytes(folder: Path) -> tuple[int, int] | None:
    """Exact weight bytes and parameter count from the safetensors headers (8-byte length, JSON)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    nbytes = params = 0
    for f in files:
        with f.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                raise SpecError(f"{f}: not a safetensors file (too short)")
            (size,) = struct.unpack("<Q", raw)
            try:
                header = json.loads(fh.read(size))
            except (ValueError, UnicodeDecodeError):
                raise SpecError(f"{f}: malformed safetensors header") from None
        for name, t in header.items():
            if name == "__metadata__":
                continue
            start, end = t["data_offsets"]
            nbytes += end - start
            count = 1
            for d in t["shape"]:
                count *= d
            params += count
    return nbytes, params


def from_hf_dir(folder: Path) -> ModelSpec:
    """A Hugging Face model directory (or HF cache snapshot): config.json + safetensors headers."""
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{cfg_path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SpecError(f"{cfg_path}: malformed JSON ({exc})") from None
    text = cfg.get("text_config", cfg)
    try:
        hidden = int(text["hidden_size"])
        heads = int(text["num_attention_heads"])
        layers = int(text["num_hidden_layers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{cfg_path}: missing or bad architecture field {exc}") from None
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or hidden // heads)
    vocab = int(text.get("vocab_size") or cfg.get("vocab_size") or 32000)
    layer_types = text.get("layer_types") or []
    sliding_layers = sum(1 for t in layer_types if "sliding" in str(t))
    window = text.get("sliding_window") if (sliding_layers or text.get("use_sliding_window")) else None
    if window and not layer_types and text.get("use_sliding_window"):
        sliding_layers = layers
    dtype = str(cfg.get("torch_dtype") or text.get("torch_dtype") or "bf16")
    quant = (cfg.get("quantization_config") or {}).get("quant_method")
    sizes = _safetensors_bytes(folder)
    if sizes:
        nbytes, params = sizes
    else:
        params = 12 * layers * hidden * hidden + 2 * vocab * hidden
        nbytes = params * 2
    return ModelSpec(
        id=str(cfg.get("_name_or_path") or folder.name),
        params=params, weight_bytes=nbytes, layers=layers, hidden=hidden, heads=heads,
        kv_heads=kv_heads, head_dim=head_dim, vocab=vocab,
        max_position=int(text.get("max_position_embeddings") or 4096),
        intermediate=int(text.get("intermediate_size") or 0),
        dtype=normalize_quant(quant) if quant in BITS_PER_WEIGHT else normalize_quant(dtype.replace("bfloat16", "bf16")),
        sliding_window=int(window) if window else None, sliding_layers=sliding_layers,
        kv_lora_rank=text.get("kv_lora_rank"), qk_rope_head_dim=text.get("qk_rope_head_dim"),
        source=str(cfg_path),
    )


def from_gguf(path: Path) -> ModelSpec:
    """A GGUF file (llama.cpp / Ollama blob): metadata and the exact tensor bytes."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
    except Exception as exc:  # the reader raises many kinds on a corrupt file
        raise SpecError(f"{path}: not a readable GGUF file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    def field(key: str, default=None):
        f = reader.fields.get(key)
        if f is None or not f.data:
            return default
        value = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(value).decode("utf-8", "replace")
        return value.tolist()[0] if hasattr(value, "tolist") else value

    arch = field("general.architecture")
    if not arch:
        raise SpecError(f"{path}: GGUF without general.architecture")
    try:
        layers = int(field(f"{arch}.block_count"))
        hidden = int(field(f"{arch}.embedding_length"))
        heads = int(field(f"{arch}.attention.head_count"))
    except (TypeError, ValueError):
        raise SpecError(f"{path}: GGUF lacks the {arch} block count, embedding length or head count") from None
    kv_heads = int(field(f"{arch}.attention.head_count_kv", heads))
    head_dim = int(field(f"{arch}.attention.key_length", hidden // heads))
    nbytes = sum(int(t.n_bytes) for t in reader.tensors)
    params = sum(int(t.n_elements) for t in reader.tensors)
    window = field(f"{arch}.attention.sliding_window")
    return ModelSpec(
        id=str(field("general.name", path.stem)), params=params, weight_bytes=nbytes, layers=layers,
        hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        vocab=len(reader.fields["tokenizer.ggml.tokens"].data) if "tokenizer.ggml.tokens" in reader.fields else 32000,
        max_position=int(field(f"{arch}.context_length", 4096)),
        intermediate=int(field(f"{arch}.feed_forward_length", 0) or 0),
        dtype="gguf", sliding_window=int(window) if window else None,
        sliding_layers=(layers - layers // 6) if window and arch.startswith("gemma3") else 0,
        flash_attention=arch in ("gemma3", "qwen3", "qwen3moe", "gpt-oss", "gptoss", "mistral3"),
        source=str(path),
    )


_PARAMS = re.compile(r"^\s*([\d.]+)\s*([kmbt]?)\s*$", re.I)


def guess(params: str, quant: str = "bf16") -> ModelSpec:
    """A rough spec from ``--params 27B --quant q8_0``: a dense Llama-like shape of that size."""
    m = _PARAMS.match(params)
    if not m:
        raise SpecError(f"--params must look like 27B or 7.6B, got '{params}'")
    count = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
    if count <= 0:
        raise SpecError(f"--params must be above 0, got '{params}'")
    hidden = int(max(1024, round((count / 12 / 40) ** 0.5 / 128) * 128))
    layers = max(8, round(count / (12 * hidden * hidden)))
    heads = hidden // 128
    q = normalize_quant(quant)
    return ModelSpec(
        id=f"~{params.strip().upper()} {q}", params=int(count), weight_bytes=int(count * BITS_PER_WEIGHT[q] / 8),
        layers=layers, hidden=hidden, heads=heads, kv_heads=max(1, heads // 4), head_dim=128,
        vocab=128000, max_position=32768, intermediate=hidden * 4, dtype=q, source="guess from --params",
    )


def load(name: str) -> ModelSpec:
    """Any model reference: a path to a HF directory or GGUF file, else a catalog name."""
    path = Path(name).expanduser()
    if path.suffix == ".gguf" or (path.is_file() and path.read_bytes()[:4] == b"GGUF"):
        if not path.exists():
            raise SpecError(f"{path}: no such GGUF file")
        return from_gguf(path)
    if path.is_dir():
        return from_hf_dir(path)
    return resolve(name)


def with_quant(spec: ModelSpec, quant: str | None) -> ModelSpec:
    """The spec as served in ``quant`` (weights rescaled; architecture unchanged)."""
    if quant is None:
        return spec
    q = normalize_quant(quant)
    return replace(spec, weight_bytes=spec.bytes_for(q), dtype=q)
