"""The what-if form judged: one call per keystroke and per tick.

``assess(form, snapshot)`` returns everything the panel shows of a form (an ``Assessment``: the
fit engine's verdict, the line under each field, what each blank field stands for, the budget
lines, the suggestions); ``verdict`` is the verdict alone (pins, a report, the exporter's
candidates). All memory arithmetic is the fit engine's; the node's view is ``node_from_snapshot``,
built once per snapshot. Never raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from vramtop.fit import remote, specs, vllm
from vramtop.fit.fields import candidate_from_fields
from vramtop.fit.placement import node_from_snapshot
from vramtop.fit.specs import ModelSpec
from vramtop.fit.verdict import INVALID, VLLM, BudgetLine, Candidate, FitResult, evaluate
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.whatif.form import ENGINE_FIELDS, FIELD_LABELS, FormState, describe, form_fields

_NO_PICTURE = "no picture of the node yet"
_SPEC_CACHE = 128  # model names resolved per session (each keystroke of a name is one)
SUGGESTIONS = 9  # the suggestions shown, one key each (1-9)


@dataclass(frozen=True)
class Assessment:
    """What the panel shows of one form on one snapshot.

    ``field_errors``: the line under each field the form's engine shows (and "stopped"), only
    where the field is wrong; a blank model is said once, in the verdict. ``placeholders``: what
    each blank field stands for. ``budget``: the budget as aligned lines. ``suggestions``: "1  …".
    """

    result: FitResult
    field_errors: dict[str, str]
    placeholders: dict[str, str]
    budget: str
    suggestions: tuple[str, ...]


def assess(form: FormState, snapshot: NodeSnapshot | None) -> Assessment:
    """The form on ``snapshot``, as the panel shows it."""
    result = verdict(form, snapshot)
    shown = ENGINE_FIELDS.get(form.engine, ())
    errors = {name: why for name, why in result.errors.items()
              if name == "stopped" or name in shown or (name == "model" and form.model.strip())}
    return Assessment(
        result, errors, field_defaults(form, result, snapshot), budget_text(result.budget),
        tuple(f"{i + 1}  {s.text}" for i, s in enumerate(result.suggestions[:SUGGESTIONS])),
    )


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


def verdict(form: FormState, snapshot: NodeSnapshot | None) -> FitResult:
    """The fit engine's verdict for ``form`` on ``snapshot`` (INVALID, naming the field, when the
    form cannot be judged). Never raises."""
    cand, errors = candidate_of(form)
    if errors or cand is None:
        return invalid(form, errors or {"model": "pick a model"})
    if snapshot is None:
        return invalid(form, {"snapshot": _NO_PICTURE})
    return evaluate(cand, node_from_snapshot(snapshot))


def pin_verdicts(pins: Iterable[FormState], snapshot: NodeSnapshot | None) -> tuple[FitResult, ...]:
    """Each pinned form's verdict on ``snapshot``, from cached model facts only: this runs on every
    tick (in the side column's worker, and on the UI thread while the what-if panel is open)."""
    with remote.cache_only():
        return tuple(verdict(pin, snapshot) for pin in pins)


def models_changed() -> None:
    """A model was resolved (fetched from a registry): forget the names known as unknown."""
    _spec.cache_clear()


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
