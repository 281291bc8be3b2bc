"""The what-if form as plain data: what the user typed, what each field is called, and how a
form reads in a line.

Textual-free, beside the panel that shows it. Every field keeps the text as typed (a half-typed
"0." must survive a redraw); a blank field means "the engine's and the model's default". The fit
engine reads the texts (``form_fields``: ``fields.candidate_from_fields`` names each bad one);
``assess`` judges a form, ``persist`` remembers forms between runs. Of the fit engine it imports
only the engines' names, so a live view that remembers forms but judges none does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Mapping

from vramtop import yamlfile
from vramtop.analysis.instances import Instance
from vramtop.fit.engines import OLLAMA, VLLM

if TYPE_CHECKING:
    from vramtop.fit.fields import ModelChoice

ENGINES = (VLLM, OLLAMA)
ENGINE_LABELS = {VLLM: "vLLM", OLLAMA: "Ollama"}

MAX_TEXT = 256  # the longest field text a saved form may hold (a model path is well under it)
AUTO = "auto"


@dataclass(frozen=True)
class FormState:
    """The what-if form as typed. Blank text means "default"; ``stopped`` holds instance keys."""

    model: str = ""
    engine: str = VLLM
    tensor_parallel_size: str = ""
    gpus: str = ""  # blank or "auto": the fit engine picks; else "0,1"
    gpu_memory_utilization: str = ""
    max_model_len: str = ""
    dtype: str = ""  # vLLM activation dtype: auto, bfloat16, float16
    quantization: str = ""  # weights: "bfloat16", "fp8", "awq", "q8_0", "q4_K_M"...
    kv_cache_dtype: str = ""
    max_num_seqs: str = ""  # vLLM
    num_ctx: str = ""  # Ollama
    num_parallel: str = ""  # Ollama
    replicas: str = ""
    stopped: tuple[str, ...] = ()

    def with_(self, **changes: Any) -> "FormState":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults, for a short, stable state file."""
        default = FormState()
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                out[f.name] = list(value) if f.name == "stopped" else value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "FormState":
        """A form from a state file entry; raises ``ValueError`` naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError(f"a candidate must be a mapping, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown candidate field {yamlfile.quote(key)}")
            if key == "stopped":
                if not (isinstance(value, list) and len(value) <= MAX_TEXT
                        and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)):
                    raise ValueError("'stopped' must be a list of instance keys")
                kwargs[key] = tuple(value)
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                kwargs[key] = str(value)
                if len(kwargs[key]) > MAX_TEXT:
                    raise ValueError(f"'{key}' is longer than {MAX_TEXT} characters")
            else:
                raise ValueError(f"'{key}' must be text, got {yamlfile.quote(value)}")
        form = cls(**kwargs)
        if form.engine not in ENGINES:
            raise ValueError(f"unknown engine '{form.engine}' (known: {', '.join(ENGINES)})")
        return form


# Fields each engine shows; the rest of the form keeps its text but is neither shown nor sent.
ENGINE_FIELDS = {
    VLLM: ("tensor_parallel_size", "gpus", "gpu_memory_utilization", "max_model_len", "dtype",
           "quantization", "kv_cache_dtype", "max_num_seqs", "replicas"),
    OLLAMA: ("gpus", "num_ctx", "num_parallel", "quantization", "kv_cache_dtype"),
}

FIELD_LABELS = {
    "model": "model",
    "engine": "engine",
    "tensor_parallel_size": "tensor parallel",
    "gpus": "GPUs",
    "gpu_memory_utilization": "gpu mem util",
    "max_model_len": "max_model_len",
    "dtype": "dtype",
    "quantization": "quantization",
    "kv_cache_dtype": "KV cache dtype",
    "max_num_seqs": "max_num_seqs",
    "num_ctx": "num_ctx",
    "num_parallel": "num_parallel",
    "replicas": "replicas",
    "stopped": "as if stopped",
}


def form_fields(form: FormState) -> dict[str, str]:
    """The texts the fit engine reads (``fields.candidate_from_fields``): the model, the engine,
    the fields that engine uses (the others keep their text but are neither judged nor sent)."""
    out = {"model": form.model, "engine": form.engine}
    for name in ENGINE_FIELDS.get(form.engine, ()):
        out[name] = getattr(form, name)
    if form.stopped:
        out["stopped"] = ",".join(form.stopped)
    return out


def describe(form: FormState) -> str:
    """A short label for a pin or a recent candidate: "medgemma-4b-it:q8 · Ollama · ctx 8192"."""
    parts = [form.model or "(no model)", ENGINE_LABELS.get(form.engine, form.engine)]
    if form.engine == VLLM:
        if form.tensor_parallel_size:
            parts.append(f"TP={form.tensor_parallel_size}")
        if form.gpu_memory_utilization:
            parts.append(f"util {form.gpu_memory_utilization}")
        if form.max_model_len:
            parts.append(f"len {form.max_model_len}")
    else:
        if form.num_ctx:
            parts.append(f"ctx {form.num_ctx}")
        if form.num_parallel:
            parts.append(f"par {form.num_parallel}")
    if form.quantization:
        parts.append(form.quantization)
    if form.gpus and form.gpus.lower() != AUTO:
        parts.append(f"GPUs {form.gpus}")
    if form.replicas and form.replicas != "1":
        parts.append(f"×{form.replicas}")
    if form.stopped:
        parts.append(f"−{len(form.stopped)} stopped")
    return " · ".join(parts)


def with_changes(form: FormState, changes: Mapping[str, Any]) -> FormState:
    """``form`` with a fit-engine suggestion's changes (candidate fields) written as text."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "stopped":
            out[name] = tuple(value)
        elif name == "gpus":
            out[name] = "" if value is None else ",".join(map(str, value))
        elif isinstance(value, float):
            out[name] = f"{value:g}"
        else:
            out[name] = "" if value is None else str(value)
    return form.with_(**out)


def with_model(form: FormState, name: str) -> FormState:
    """``form`` with the model ``name`` taken from the search (the other fields stay)."""
    return form.with_(model=name)


def _subsequence(word: str, name: str) -> bool:
    rest = iter(name)
    return all(ch in rest for ch in word)


def match_models(query: str, choices: tuple[ModelChoice, ...], limit: int = 8) -> tuple[ModelChoice, ...]:
    """The choices whose name (or an alias, such as an Ollama tag) holds every word of
    ``query``, best first.

    Case-insensitive. Names holding each word as typed come first (those starting with the first
    word before the rest); then names holding the letters in order ("gem4b" finds
    "google/medgemma-4b-it"). An empty query lists the first ones.
    """
    words = query.lower().split()
    if not words:
        return choices[:limit]
    scored = []
    for order, choice in enumerate(choices):
        name = " ".join((choice.name, *choice.aliases)).lower()
        tail = choice.name.lower().rsplit("/", 1)[-1]
        if all(w in name for w in words):
            first = words[0]
            rank = 0 if tail.startswith(first) or name.startswith(first) else 1
            scored.append((rank, name.find(first), order, choice))
        elif all(_subsequence(w, name) for w in words):
            scored.append((2, 0, order, choice))
    scored.sort(key=lambda t: t[:3])
    return tuple(t[3] for t in scored[:limit])


def instance_label(instance: Instance) -> str:
    """An "as if stopped" choice: "vLLM medgemma (GPU 0-3, 85,204 MiB)"; a Serve replica by its
    label, since two replicas of one deployment share a name."""
    return f"{instance.label} ({instance.where}, {instance.total_mib:,} MiB)"
