"""The headroom candidates: models the team wants to place, from the config file's
``candidates:`` list, and their live verdicts.

Each entry is the what-if panel's form (``FormState``: the same keys the panel pins, e.g.
``model``, ``engine``, ``tensor_parallel_size``, ``max_model_len``) plus an optional ``name``
that labels it in metrics and watch rules (default: the model as written). Judged by the fit
engine against the node as it is now; the node view is built once per snapshot for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vramtop.fit import GREEN, INVALID, RED, YELLOW, Candidate, FitResult, evaluate, node_from_snapshot
from vramtop.fit.verdict import OLLAMA
from vramtop.snapshot import NodeSnapshot
from vramtop.widgets.whatif.assess import candidate_of, invalid
from vramtop.widgets.whatif.form import FormState, describe
from vramtop.yamlfile import quote

# The verdict as a gauge: ordered from best to worst, so max() over candidates means something.
VERDICT_VALUES = {GREEN: 0, YELLOW: 1, RED: 2, INVALID: 3}


@dataclass(frozen=True)
class NamedCandidate:
    """A candidate from the config file: its label and the form the fit engine reads."""

    name: str
    form: FormState

    def __repr__(self) -> str:  # what --print-config shows: "m4b: medgemma-4b-it · vLLM · len 8192"
        return f"{self.name}: {describe(self.form)}"


@dataclass(frozen=True)
class Headroom:
    """One candidate's verdict on one snapshot, and the figures a dashboard plots."""

    name: str
    result: FitResult
    gpus: int | None  # the GPUs it would take (vLLM: TP x replicas; Ollama: GPUs given layers)

    @property
    def value(self) -> int:
        return VERDICT_VALUES[self.result.verdict]


def parse_candidates(value: Any) -> tuple[NamedCandidate, ...]:
    """The ``candidates:`` config value; raises ``ValueError`` naming the entry and the problem."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"must be a list of candidates (what-if forms), not {type(value).__name__}")
    out: list[NamedCandidate] = []
    for i, entry in enumerate(value):
        where = f"candidate {i + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping like 'model: medgemma-4b-it', not {type(entry).__name__}")
        fields = dict(entry)
        name = fields.pop("name", None)
        try:
            form = FormState.from_dict(fields)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not form.model.strip():
            raise ValueError(f"{where}: 'model' is missing")
        name = form.model.strip() if name is None else name
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            raise ValueError(f"{where}: 'name' must be one word (it labels metrics and watch rules), got {quote(name)}")
        if name in (c.name for c in out):
            raise ValueError(f"{where}: the name {quote(name)} is used twice (give each candidate its own 'name')")
        out.append(NamedCandidate(name, form))
    return tuple(out)


def _gpus(cand: Candidate, result: FitResult) -> int | None:
    if result.verdict == INVALID:
        return None
    if cand.engine == OLLAMA:
        plan = result.ollama_plan
        return sum(1 for n in plan.gpu_layers.values() if n > 0) if plan is not None else 0
    return cand.tensor_parallel_size * cand.replicas


def judge(candidates: tuple[NamedCandidate, ...], snapshot: NodeSnapshot) -> tuple[Headroom, ...]:
    """Every candidate's verdict on ``snapshot``. Never raises: a form the fit engine cannot read
    is INVALID, naming the field."""
    if not candidates:
        return ()
    node = node_from_snapshot(snapshot)
    out = []
    for c in candidates:
        cand, errors = candidate_of(c.form)
        if errors or cand is None:
            out.append(Headroom(c.name, invalid(c.form, errors or {"model": "pick a model"}), None))
        else:
            result = evaluate(cand, node, suggest=False)  # a gauge has no use for the changes that would help
            out.append(Headroom(c.name, result, _gpus(cand, result)))
    return tuple(out)
