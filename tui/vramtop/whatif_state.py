"""The what-if form as plain data: what the user typed, what it means, and what is remembered.

Textual-free, so the panel stays a thin view over it and the form's rules are tested without a
screen. Every field keeps the text as typed (a half-typed "0." must survive a redraw); a blank
field means "the engine's and the model's default". ``parse_form`` turns the text into values
and one message per bad field; the fit engine does all memory arithmetic.

The last candidates and the pins persist in ``$XDG_STATE_HOME/vramtop/whatif.yaml``
(``~/.local/state`` when unset). A file that cannot be read starts fresh with one line saying why.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

VLLM = "vllm"
OLLAMA = "ollama"
ENGINES = (VLLM, OLLAMA)
ENGINE_LABELS = {VLLM: "vLLM", OLLAMA: "Ollama"}

STATE_VERSION = 1
RECENT_LIMIT = 8  # how many last candidates are remembered
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
    quantization: str = ""  # dtype / quantization: "bfloat16", "fp8", "awq", "q4_K_M"...
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
                raise ValueError(f"unknown candidate field '{key}'")
            if key == "stopped":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("'stopped' must be a list of instance keys")
                kwargs[key] = tuple(value)
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
                kwargs[key] = str(value)
            else:
                raise ValueError(f"'{key}' must be text, got {value!r}")
        form = cls(**kwargs)
        if form.engine not in ENGINES:
            raise ValueError(f"unknown engine '{form.engine}' (known: {', '.join(ENGINES)})")
        return form


# Fields each engine shows; the rest of the form keeps its text but is neither shown nor sent.
ENGINE_FIELDS = {
    VLLM: ("tensor_parallel_size", "gpus", "gpu_memory_utilization", "max_model_len",
           "quantization", "kv_cache_dtype", "max_num_seqs", "replicas"),
    OLLAMA: ("gpus", "num_ctx", "num_parallel", "quantization", "kv_cache_dtype", "replicas"),
}

FIELD_LABELS = {
    "model": "model",
    "engine": "engine",
    "tensor_parallel_size": "tensor parallel",
    "gpus": "GPUs",
    "gpu_memory_utilization": "gpu mem util",
    "max_model_len": "max_model_len",
    "quantization": "dtype / quant",
    "kv_cache_dtype": "KV cache dtype",
    "max_num_seqs": "max_num_seqs",
    "num_ctx": "num_ctx",
    "num_parallel": "num_parallel",
    "replicas": "replicas",
    "stopped": "as if stopped",
}


@dataclass(frozen=True)
class ParsedForm:
    """The form's values (None: default) and one message per field that cannot be used."""

    values: dict[str, Any]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors


_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmM]?)$")


def _whole(text: str, *, minimum: int, allow_k: bool = False) -> int:
    """A whole number; "8k" and "32K" mean 8192 and 32768 where ``allow_k``."""
    m = _TOKENS.match(text.replace(",", "").replace("_", ""))
    if not m or (m.group(2) and not allow_k):
        raise ValueError(f"must be a whole number{' (8192 or 8k)' if allow_k else ''}, got '{text}'")
    number, unit = m.groups()
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]
    value = float(number) * scale
    if not value.is_integer():
        raise ValueError(f"must be a whole number, got '{text}'")
    if value < minimum:
        raise ValueError(f"must be at least {minimum}, got '{text}'")
    return int(value)


def _utilization(text: str) -> float:
    """A share of each GPU in (0, 1]; "90%" means 0.9."""
    raw = text.strip()
    pct = raw.endswith("%")
    try:
        value = float(raw.rstrip("%")) / (100 if pct else 1)
    except ValueError:
        raise ValueError(f"must be a number between 0 and 1 (like 0.9), got '{text}'") from None
    if not 0 < value <= 1:
        raise ValueError(f"must be above 0 and at most 1 (like 0.9), got '{text}'")
    return round(value, 4)


def _gpus(text: str) -> tuple[int, ...] | None:
    if text.strip().lower() in ("", AUTO):
        return None
    out: list[int] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part.isdigit():
            raise ValueError(f"must be 'auto' or GPU indices like 0,1, got '{text}'")
        index = int(part)
        if index in out:
            raise ValueError(f"lists GPU {index} twice in '{text}'")
        out.append(index)
    return tuple(out)


def _word(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", text):
        raise ValueError(f"must be one word like bfloat16, fp8 or q4_K_M, got '{text}'")
    return text


_PARSERS = {
    "tensor_parallel_size": lambda t: _whole(t, minimum=1),
    "gpus": _gpus,
    "gpu_memory_utilization": _utilization,
    "max_model_len": lambda t: _whole(t, minimum=1, allow_k=True),
    "quantization": _word,
    "kv_cache_dtype": _word,
    "max_num_seqs": lambda t: _whole(t, minimum=1),
    "num_ctx": lambda t: _whole(t, minimum=1, allow_k=True),
    "num_parallel": lambda t: _whole(t, minimum=1),
    "replicas": lambda t: _whole(t, minimum=1),
}


def parse_form(form: FormState, gpu_indices: tuple[int, ...] | None = None) -> ParsedForm:
    """Values for the fields ``form.engine`` uses; other fields are left out, never judged.

    ``gpu_indices``: the node's GPUs, so "GPUs 0,7" on a 4-GPU node is marked where it is typed.
    """
    values: dict[str, Any] = {"model": form.model.strip() or None, "engine": form.engine,
                              "stopped": form.stopped}
    errors: dict[str, str] = {}
    if form.engine not in ENGINES:
        errors["engine"] = f"unknown engine '{form.engine}' (vllm or ollama)"
    if not form.model.strip():
        errors["model"] = "pick a model"
    for name in ENGINE_FIELDS.get(form.engine, ()):
        text = getattr(form, name).strip()
        if not text or (name != "gpus" and text.lower() == AUTO):
            values[name] = None
            continue
        try:
            values[name] = _PARSERS[name](text)
        except ValueError as exc:
            errors[name] = str(exc)
    gpus = values.get("gpus")
    if gpus and gpu_indices is not None:
        missing = [g for g in gpus if g not in gpu_indices]
        if missing:
            have = ",".join(map(str, gpu_indices)) or "none"
            errors["gpus"] = f"no GPU {missing[0]} on this node (it has {have})"
    tp = values.get("tensor_parallel_size")
    if gpus and tp and len(gpus) < tp:
        errors.setdefault("gpus", f"lists {len(gpus)} GPU(s) but tensor parallel is {tp}")
    return ParsedForm(values, errors)


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


# ---- what the panel shows -------------------------------------------------------------------------

GREEN, YELLOW, RED, INVALID = "green", "yellow", "red", "invalid"
VERDICT_WORDS = {GREEN: "GREEN", YELLOW: "YELLOW", RED: "RED", INVALID: "INVALID"}
# A symbol as well as a colour, so the verdict reads the same without colour (NO_COLOR, mono tmux).
VERDICT_SYMBOLS = {GREEN: "✓", YELLOW: "!", RED: "✗", INVALID: "?"}


@dataclass(frozen=True)
class GpuNeed:
    """One GPU the candidate would use: what it needs there against what is free (as if stopped)."""

    gpu_index: int
    needed_mib: int
    free_mib: int
    total_mib: int

    @property
    def fits(self) -> bool:
        return self.needed_mib <= self.free_mib


@dataclass(frozen=True)
class BudgetLine:
    """One line of the budget: "KV cache  5,120 MiB  (21,504 tokens)"."""

    label: str
    mib: int | None
    note: str = ""


@dataclass(frozen=True)
class SuggestionChoice:
    """A fit-engine suggestion and the form it leads to (applied with one key)."""

    text: str
    form: FormState


@dataclass(frozen=True)
class Outcome:
    """The fit engine's answer for one form, as the panel shows it.

    ``errors`` maps a form field to why its value cannot be used (the form's own checks and the
    engine's); with any, ``verdict`` is INVALID and ``why`` names the first.
    """

    verdict: str
    why: str
    reasons: tuple[str, ...] = ()
    gpus: tuple[GpuNeed, ...] = ()
    budget: tuple[BudgetLine, ...] = ()
    suggestions: tuple[SuggestionChoice, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelChoice:
    """A model the fit engine can size: ``name`` goes into the form, ``source`` says from where."""

    name: str
    source: str = "catalog"
    detail: str = ""


def _subsequence(word: str, name: str) -> bool:
    rest = iter(name)
    return all(ch in rest for ch in word)


def match_models(query: str, choices: tuple[ModelChoice, ...], limit: int = 8) -> tuple[ModelChoice, ...]:
    """The choices whose name holds every word of ``query``, best first.

    Case-insensitive. Names holding each word as typed come first (those starting with the first
    word before the rest); then names holding the letters in order ("gem4b" finds
    "google/medgemma-4b-it"). An empty query lists the first ones.
    """
    words = query.lower().split()
    if not words:
        return choices[:limit]
    scored = []
    for order, choice in enumerate(choices):
        name = choice.name.lower()
        tail = name.rsplit("/", 1)[-1]
        if all(w in name for w in words):
            first = words[0]
            rank = 0 if tail.startswith(first) or name.startswith(first) else 1
            scored.append((rank, name.find(first), order, choice))
        elif all(_subsequence(w, name) for w in words):
            scored.append((2, 0, order, choice))
    scored.sort(key=lambda t: t[:3])
    return tuple(t[3] for t in scored[:limit])


def headline(outcome: Outcome) -> str:
    """"✓ GREEN  fits with 1.2 GiB to spare on the tightest GPU": word, symbol and one line of why."""
    return f"{VERDICT_SYMBOLS[outcome.verdict]} {VERDICT_WORDS[outcome.verdict]}  {outcome.why}"


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


def pin_line(form: FormState, outcome: Outcome) -> str:
    """A pinned candidate with its live verdict: "✗ RED     medgemma-27b-it:q8 · Ollama"."""
    return f"{VERDICT_SYMBOLS[outcome.verdict]} {VERDICT_WORDS[outcome.verdict]:<7} {describe(form)}"


def instance_label(instance: Any) -> str:
    """An "as if stopped" choice: "vLLM medgemma (GPU 0-3, 85,204 MiB)"."""
    gpus = instance.gpu_indices
    where = f"GPU {gpus[0]}" if len(gpus) == 1 else f"GPUs {','.join(map(str, gpus))}"
    return f"{instance.name} ({where}, {instance.total_mib:,} MiB)"


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
            raise ValueError(f"unknown version {version!r} (this vramtop writes {STATE_VERSION})")
        for key in ("recent", "pins"):
            if not isinstance(data.get(key, []), list):
                raise ValueError(f"'{key}' must be a list")
        current = data.get("current")
        return cls(
            current=FormState.from_dict(current) if current is not None else None,
            recent=tuple(FormState.from_dict(f) for f in data.get("recent", []))[:RECENT_LIMIT],
            pins=tuple(FormState.from_dict(f) for f in data.get("pins", [])),
        )


def default_state_path() -> Path:
    """``$XDG_STATE_HOME/vramtop/whatif.yaml`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vramtop" / "whatif.yaml"


def load_memory(path: Path | None = None) -> tuple[WhatIfMemory, str | None]:
    """The remembered state, and a one-line warning when the file had to be ignored."""
    path = path or default_state_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WhatIfMemory(), None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return WhatIfMemory(), f"{path}: cannot read the what-if state ({reason}); starting fresh"
    try:
        return WhatIfMemory.from_dict(yaml.safe_load(text)), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return WhatIfMemory(), f"{path}: {where}{problem}; starting fresh"
    except ValueError as exc:
        return WhatIfMemory(), f"{path}: {exc}; starting fresh"


def save_memory(memory: WhatIfMemory, path: Path | None = None) -> str | None:
    """Write atomically; a one-line warning if it cannot be written (the panel keeps working)."""
    path = path or default_state_path()
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

