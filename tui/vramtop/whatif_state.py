"""The what-if form as plain data: what the user typed, what it means, and what is remembered.

Textual-free, so the panel stays a thin view over it and is tested without a screen. Every
field keeps the text as typed (a half-typed "0." must survive a redraw); a blank field means
"the engine's and the model's default". The fit engine reads the texts
(``fields.candidate_from_fields``), names each bad one, and does all memory arithmetic;
``assess`` is the one call the panel makes per keystroke and per tick.

The last candidates and the pins persist in ``$XDG_STATE_HOME/vramtop/whatif.yaml``
(``~/.local/state`` when unset), read as ``yamlfile`` reads YAML (bounded, no aliases). A file
that cannot be read, or holds anything but a state vramtop wrote, starts fresh with one line
saying why.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from functools import lru_cache
from typing import Any, Iterable, Mapping

import yaml

from vramtop import paths, yamlfile
from vramtop.analysis.instances import Instance
from vramtop.fit import specs, vllm
from vramtop.fit.fields import ModelChoice, candidate_from_fields
from vramtop.fit.placement import NodeView, node_from_snapshot
from vramtop.fit.specs import ModelSpec
from vramtop.fit.verdict import INVALID, OLLAMA, VLLM, BudgetLine, Candidate, FitResult, evaluate
from vramtop.snapshot import NodeSnapshot

ENGINES = (VLLM, OLLAMA)
ENGINE_LABELS = {VLLM: "vLLM", OLLAMA: "Ollama"}

STATE_VERSION = 1
RECENT_LIMIT = 8  # how many last candidates are remembered
_MAX_TEXT = 256  # the longest field text a state file may hold (a model path is well under it)
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
                if not (isinstance(value, list) and len(value) <= _MAX_TEXT
                        and all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in value)):
                    raise ValueError("'stopped' must be a list of instance keys")
                kwargs[key] = tuple(value)
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                kwargs[key] = str(value)
                if len(kwargs[key]) > _MAX_TEXT:
                    raise ValueError(f"'{key}' is longer than {_MAX_TEXT} characters")
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


# ---- the fit engine's view of the form ---------------------------------------------------------


_NO_PICTURE = "no picture of the node yet"
_SPEC_CACHE = 128  # model names resolved per session (each keystroke of a name is one)


@lru_cache(maxsize=_SPEC_CACHE)
def _spec(name: str) -> tuple[ModelSpec | None, str | None]:
    """The fit engine's spec for a model name or path, or why there is none (one line).

    Cached: typing a name resolves every prefix, and a path or an unknown name costs file
    system look-ups and a fuzzy search.
    """
    try:
        return specs.resolve(name), None
    except specs.SpecError as exc:
        return None, str(exc)
    except OSError as exc:  # a path that exists but cannot be read
        return None, f"{name}: {exc.strerror or exc}"


_node_cache: tuple[NodeSnapshot | None, NodeView | None] = (None, None)


def _node(snapshot: NodeSnapshot) -> NodeView:
    """The fit engine's view of ``snapshot``, built once per tick (not once per keystroke)."""
    global _node_cache
    if _node_cache[0] is not snapshot:
        _node_cache = (snapshot, node_from_snapshot(snapshot))
    return _node_cache[1]


def invalid(form: FormState, errors: dict[str, str]) -> FitResult:
    """The result for a form the fit engine cannot judge yet: which field, and why."""
    name, why = next(iter(errors.items()))
    headline = why if name in ("model", "snapshot") else f"{FIELD_LABELS.get(name, name)}: {why}"
    return FitResult(INVALID, headline, tuple(errors.values()), errors=errors, engine=form.engine,
                     model=form.model)


def candidate_of(form: FormState) -> tuple[Candidate | None, dict[str, str]]:
    """The fit engine's candidate for ``form``, or the fields it cannot read and why."""
    name = form.model.strip()
    spec, why = _spec(name) if name else (None, None)
    cand, errors = candidate_from_fields(form_fields(form), model=spec)
    if why:
        errors = {"model": why, **errors}
    return cand, errors


def report_candidates(forms: Iterable[FormState]) -> list[tuple[str, Candidate]]:
    """The forms a report can judge, labelled as the panel labels them; unreadable ones are left
    out (the panel already says what is wrong with them)."""
    out = []
    for form in forms:
        cand, errors = candidate_of(form)
        if cand is not None and not errors and (label := describe(form)) not in (t for t, _ in out):
            out.append((label, cand))
    return out


def assess(form: FormState, snapshot: NodeSnapshot | None) -> FitResult:
    """The fit engine's verdict for ``form`` on ``snapshot`` (INVALID, naming the field, when the
    form cannot be judged). Never raises."""
    cand, errors = candidate_of(form)
    if errors or cand is None:
        return invalid(form, errors or {"model": "pick a model"})
    if snapshot is None:
        return invalid(form, {"snapshot": _NO_PICTURE})
    return evaluate(cand, _node(snapshot))


def field_defaults(form: FormState, result: FitResult | None, snapshot: NodeSnapshot | None) -> dict[str, str]:
    """What each blank field stands for, as placeholders: the engine's defaults and, where the
    fit engine used one, the value it used ("131072 (model)", "q8_0 (from the tag)")."""
    spec = _spec(form.model.strip())[0] if form.model.strip() else None
    out = {"gpus": "auto (most free)", "tensor_parallel_size": "1 (default)", "replicas": "1 (default)"}
    if form.engine == VLLM:
        out["gpu_memory_utilization"] = f"{vllm.DEFAULT_UTIL} (vLLM default)"
        out["kv_cache_dtype"] = "auto (as the model)"
        out["dtype"] = "auto"
        if snapshot is not None and snapshot.gpus:
            out["max_num_seqs"] = f"{vllm.default_max_num_seqs(snapshot.gpus[0].total_mib)} (vLLM default)"
        if result is not None and result.max_model_len:
            out["max_model_len"] = f"{result.max_model_len} (model)"
        elif spec is not None:
            out["max_model_len"] = f"{spec.max_position} (model)"
        if spec is not None:
            hint = spec.quant_hint
            out["quantization"] = f"{hint} (from the tag)" if hint else f"{spec.dtype} (as released)"
    else:
        plan = result.ollama_plan if result is not None else None
        out["num_parallel"] = "1 (Ollama default)"
        out["kv_cache_dtype"] = "f16 (Ollama default)"
        if plan is not None:
            out["num_ctx"] = f"{plan.num_ctx} (Ollama default)"
            out["kv_cache_dtype"] = f"{plan.kv_type} (Ollama default)"
            out["quantization"] = f"{plan.quant} ({'from the tag' if spec and spec.quant_hint else 'Ollama default'})"
    return out


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


def budget_text(budget: tuple[BudgetLine, ...]) -> str:
    """The budget as aligned lines: label, MiB, and a note such as the KV tokens."""
    if not budget:
        return ""
    width = max(len(b.label) for b in budget)
    lines = []
    for b in budget:
        figure = f"{b.mib:>8,} MiB" if b.mib is not None else " " * 12
        lines.append(f"{b.label:<{width}} {figure}{'  ' + b.note if b.note else ''}".rstrip())
    return "\n".join(lines)


def pin_line(form: FormState, result: FitResult) -> str:
    """A pinned candidate with its live verdict: "✗ RED     medgemma-27b-it:q8 · Ollama"."""
    return f"{result.symbol} {result.word:<7} {describe(form)}"


def instance_label(instance: Instance) -> str:
    """An "as if stopped" choice: "vLLM medgemma (GPU 0-3, 85,204 MiB)"; a Serve replica by its
    label, since two replicas of one deployment share a name."""
    return f"{instance.label} ({instance.where}, {instance.total_mib:,} MiB)"


# ---- remembered between runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIfMemory:
    """What the panel remembers: the form as last left, recent candidates (newest first), pins."""

    current: FormState | None = None
    recent: tuple[FormState, ...] = ()
    pins: tuple[FormState, ...] = ()

    def remember(self, form: FormState) -> "WhatIfMemory":
        """``form`` becomes current and the newest recent candidate (a model must be set)."""
        if not form.model.strip():
            return replace(self, current=form)
        recent = (form,) + tuple(f for f in self.recent if f != form)
        return replace(self, current=form, recent=recent[:RECENT_LIMIT])

    def pin(self, form: FormState) -> "WhatIfMemory":
        """Pin ``form`` (pinning it twice keeps one)."""
        if form in self.pins:
            return self
        return replace(self, pins=self.pins + (form,))

    def unpin(self, index: int) -> "WhatIfMemory":
        return replace(self, pins=self.pins[:index] + self.pins[index + 1:])

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "current": self.current.to_dict() if self.current else None,
            "recent": [f.to_dict() for f in self.recent],
            "pins": [f.to_dict() for f in self.pins],
        }

    @classmethod
    def from_dict(cls, data: Any) -> "WhatIfMemory":
        if not isinstance(data, dict):
            raise ValueError(f"the file must hold a mapping, not {type(data).__name__}")
        version = data.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"unknown version {yamlfile.quote(version)} (this vramtop writes {STATE_VERSION})")
        for key in ("recent", "pins"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"'{key}' must be a list")
        current = data.get("current")
        return cls(
            current=FormState.from_dict(current) if current is not None else None,
            recent=tuple(FormState.from_dict(f) for f in data.get("recent", []))[:RECENT_LIMIT],
            pins=tuple(FormState.from_dict(f) for f in data.get("pins", [])),
        )


def load_memory(path: Path | None = None) -> tuple[WhatIfMemory, str | None]:
    """The remembered state, and a one-line warning when the file had to be ignored."""
    path = path or paths.whatif_state_file()
    try:
        return WhatIfMemory.from_dict(yamlfile.load(path)), None
    except FileNotFoundError:
        return WhatIfMemory(), None
    except (yamlfile.YamlError, ValueError) as exc:
        return WhatIfMemory(), f"{path}: {exc}; starting fresh"


def save_memory(memory: WhatIfMemory, path: Path | None = None) -> str | None:
    """Write atomically; a one-line warning if it cannot be written (the panel keeps working)."""
    path = path or paths.whatif_state_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".whatif-", suffix=".yaml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                yaml.safe_dump(memory.to_dict(), f, sort_keys=False, allow_unicode=True)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        return f"{path}: cannot save the what-if state ({exc.strerror or exc})"
    return None

