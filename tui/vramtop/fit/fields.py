"""A Candidate from text as typed (the what-if form, the CLI), with one message per bad field.

Blank or "auto" means the engine's default. Field names are the Candidate's (and the form's);
``candidate_from_fields`` never raises: the caller shows each message beside its field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Mapping

from vramtop.fit import specs
from vramtop.fit.specs import ModelSpec, SpecError
from vramtop.fit.verdict import OLLAMA, VLLM, Candidate
from vramtop.fit import vllm
from vramtop.fit.vllm import DEFAULT_MM_LIMIT, SpeculativeConfig
from vramtop.yamlfile import one_line

_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)\s*([kK]?)$")
INT_FIELDS = ("tensor_parallel_size", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
              "num_ctx", "num_parallel", "replicas", "pipeline_parallel_size", "data_parallel_size")
WORD_FIELDS = ("dtype", "quantization", "kv_cache_dtype", "vllm_version", "mm_encoder_tp_mode")
SWITCH_FIELDS = ("enforce_eager", "enable_prefix_caching", "enable_expert_parallel", "skip_mm_profiling")
_MODALITY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class ModelChoice:
    """A model a search field can offer: ``name`` resolves with ``specs.resolve``."""

    name: str
    source: str  # "catalog"
    detail: str  # "27.4B, bfloat16, 131,072 ctx"
    aliases: tuple[str, ...] = ()


def list_models() -> tuple[ModelChoice, ...]:
    """Every catalog model, for a search field (ids and the aliases that also resolve)."""
    return tuple(
        ModelChoice(s.name, "catalog", f"{s.params / 1e9:.1f}B, {s.dtype}, {s.max_position:,} ctx",
                    s.aliases)
        for s in specs.catalog()
    )


def _whole(text: str) -> int:
    m = _TOKENS.match(text.replace(",", "").replace("_", ""))
    if not m:
        raise ValueError(f"must be a whole number, got '{text}'")
    value = float(m.group(1)) * (1024 if m.group(2) else 1)
    if not value.is_integer() or value < 1:
        raise ValueError(f"must be a whole number ≥ 1, got '{text}'")
    return int(value)


def _util(text: str) -> float:
    raw = text.strip()
    try:
        value = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"must be a number in (0, 1] like 0.9, got '{text}'") from None
    if not 0 < value <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {raw}")
    return value


def parse_mm_limits(text: str) -> tuple[tuple[str, int], ...]:
    """vLLM's ``--limit-mm-per-prompt``: JSON (``{"image": 2, "video": 0}``, a modality's
    ``{"count": 2}`` too) or the older ``image=2,video=0``, as (modality, count) pairs
    (none for ``{}``).
    Dummy item sizes (``width``, ``num_frames``, ...) are refused: they are not modelled."""
    raw = text.strip()
    if raw.startswith("{"):
        try:
            data = json.loads(raw[:2000])
        except (ValueError, RecursionError):  # nesting past the parser's depth is no limit map either
            data = None
        if not isinstance(data, dict):
            raise ValueError(f"must be JSON like '{{\"image\": 2}}', got '{one_line(raw[:40])}'")
        pairs = list(data.items())
    else:
        pairs = [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in re.split(r"[,\s]+", raw) if p]
    out: list[tuple[str, int]] = []
    for modality, count in pairs:
        if isinstance(count, dict):
            if set(count) - {"count"}:
                raise ValueError(f"{modality}: only the count is modelled, not dummy sizes "
                                 f"({', '.join(sorted(set(count) - {'count'}))[:60]})")
            count = count.get("count", DEFAULT_MM_LIMIT)
        if isinstance(count, str) and count.strip().isdigit():
            count = int(count)
        if not isinstance(modality, str) or not _MODALITY.match(modality):
            raise ValueError(f"a modality is a word like image, video or audio, got '{one_line(str(modality)[:32])}'")
        if type(count) is not int or count < 0:
            raise ValueError(f"{modality} must be a whole number ≥ 0, got '{one_line(str(count)[:32])}'")
        out.append((modality, count))
    return tuple(dict(out).items())


# Keys of vLLM's SpeculativeConfig that change no memory here: prompt lookup's window.
_SPECULATIVE_KEYS = ("method", "model", "num_speculative_tokens", "prompt_lookup_min", "prompt_lookup_max")
_SPECULATIVE_METHODS = (vllm.MTP_METHOD, *vllm.DRAFT_MODEL_METHODS, *vllm.WEIGHTLESS_METHODS)


def parse_speculative_config(text: str, resolve=specs.resolve) -> SpeculativeConfig:
    """vLLM's ``--speculative-config`` JSON (``{"method": "mtp", "num_speculative_tokens": 3}``)
    read as ``SpeculativeConfig.__post_init__`` (vllm/config/speculative.py) reads it: without a
    method, a model named "ngram" is prompt lookup, one whose name holds "eagle-" or "eagle3" an
    EAGLE head, any other a draft model; the model-specific MTP names are "mtp"; an MTP draft
    drafts its layers' count (1) by default, every other method needs num_speculative_tokens.
    A draft repository is resolved with ``resolve`` (``specs.resolve``); where it cannot be,
    the config says so (``SpeculativeConfig.unresolved``) rather than failing. ValueError (one
    line) for bad JSON, an unknown key or method, or a bad count."""
    raw = text.strip()
    try:
        data = json.loads(raw[:4000]) if len(raw) <= 4000 else None
    except (ValueError, RecursionError):  # nesting past the parser's depth is no config either
        data = None
    if not isinstance(data, dict):
        raise ValueError("must be JSON like '{\"method\": \"mtp\", \"num_speculative_tokens\": 3}', "
                         f"got '{one_line(raw[:40])}'")
    unknown = [one_line(str(k)[:32]) for k in data if k not in _SPECULATIVE_KEYS]
    if unknown:
        raise ValueError(f"'{unknown[0]}' is not modelled (it takes {', '.join(_SPECULATIVE_KEYS)})")
    method, model, count = data.get("method"), data.get("model"), data.get("num_speculative_tokens")
    if method is not None and not isinstance(method, str) or model is not None and not isinstance(model, str):
        raise ValueError("method and model are text")
    model = (model or "").strip()[:4096] or None
    if method is None:
        if model in ("ngram", "[ngram]"):
            method = "ngram"
        elif model is None:
            raise ValueError("num_speculative_tokens was provided but without speculative model "
                             "(give a method such as mtp or ngram, or a draft model)")
        else:
            low = model.lower()
            method = "eagle" if "eagle-" in low else "eagle3" if "eagle3" in low else "draft_model"
    method = method.strip().lower()
    method = "ngram" if method == "[ngram]" else vllm.MTP_METHOD if method.endswith("_mtp") else method
    if method not in _SPECULATIVE_METHODS:
        raise ValueError(f"unknown speculative method '{one_line(method[:32])}' ({', '.join(_SPECULATIVE_METHODS)})")
    if count is None and method == vllm.MTP_METHOD:
        count = vllm.MTP_LAYERS
    if type(count) is not int or not 1 <= count <= 64:
        raise ValueError(f"num_speculative_tokens must be a whole number from 1 to 64, got '{one_line(str(count)[:32])}'")
    draft = None
    if method in vllm.DRAFT_MODEL_METHODS:
        if model is None:
            raise ValueError(f"method {method} needs the draft's model")
        try:
            draft = resolve(model)
        except (SpecError, OSError):
            draft = None  # the verdict names the draft as not resolved and stays YELLOW at best
    if method in (vllm.MTP_METHOD, *vllm.WEIGHTLESS_METHODS):
        model = None  # MTP drafts with the target's own checkpoint; prompt lookup has no model
    return SpeculativeConfig(method, count, model, draft)


def parse_gpus(text: str) -> tuple[int, ...]:
    """"0,2" or "0 2" -> (0, 2)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"must list GPU indices like 0,1, got '{text}'")
    return tuple(int(p) for p in parts)


def candidate_from_fields(fields: Mapping[str, str], model: ModelSpec | None = None,
                          ) -> tuple[Candidate | None, dict[str, str]]:
    """A Candidate from field texts, and field -> message for each text that cannot be used.

    ``fields`` may hold: model, engine, tensor_parallel_size, gpu_memory_utilization,
    max_model_len, dtype, quantization, kv_cache_dtype, max_num_seqs, max_num_batched_tokens,
    enforce_eager ("yes"/"no"), num_ctx, num_parallel, replicas, pipeline_parallel_size,
    data_parallel_size, enable_expert_parallel, gpus ("0,1"), stopped
    (instance keys, comma-separated), vllm_version ("0.21.0"), enable_prefix_caching,
    limit_mm_per_prompt (vLLM's syntax, ``parse_mm_limits``), skip_mm_profiling,
    mm_encoder_tp_mode (weights / data), speculative_config (vLLM's JSON,
    ``parse_speculative_config``). ``model``: an already resolved spec (skips the lookup,
    which may read files). Values the engine itself refuses (TP that does not divide the
    heads, a GPU the node lacks) come back from ``evaluate`` as ``FitResult.errors``.
    """
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    engine = (fields.get("engine") or VLLM).strip().lower()
    if engine not in (VLLM, OLLAMA):
        errors["engine"] = f"unknown engine '{engine}' (vllm or ollama)"
    values["engine"] = engine
    if model is None:
        name = (fields.get("model") or "").strip()
        if not name:
            errors["model"] = "pick a model"
        else:
            try:
                model = specs.resolve(name)
            except SpecError as exc:
                errors["model"] = str(exc)
            except OSError as exc:
                errors["model"] = f"{name}: {exc.strerror or exc}"
    for key, text in fields.items():
        text = (text or "").strip()
        if key in ("model", "engine") or not text or (text.lower() == "auto" and key != "gpus"):
            continue
        try:
            if key in INT_FIELDS:
                values[key] = _whole(text)
            elif key == "gpu_memory_utilization":
                values[key] = _util(text)
            elif key in WORD_FIELDS:
                if not re.fullmatch(r"[A-Za-z0-9_.\-]+", text):
                    raise ValueError(f"must be one word like bfloat16, fp8 or q4_K_M, got '{text}'")
                values[key] = text
            elif key == "gpus":
                values[key] = None if text.lower() == "auto" else parse_gpus(text)
            elif key == "stopped":
                values[key] = tuple(p for p in re.split(r"[,\s]+", text) if p)
            elif key in SWITCH_FIELDS:
                values[key] = text.lower() in ("1", "yes", "true", "on")
            elif key == "limit_mm_per_prompt":
                values[key] = parse_mm_limits(text) or None  # "{}": vLLM's defaults
            elif key == "speculative_config":
                values[key] = parse_speculative_config(text)
            else:
                errors[key] = f"unknown field '{key}'"
        except ValueError as exc:
            errors[key] = str(exc)
    if values.get("speculative_config") is not None and engine == OLLAMA:
        errors["speculative_config"] = "speculative_config is vLLM's; Ollama does not draft tokens"
    if errors or model is None:
        return None, errors
    return Candidate(model=model, **values), errors
