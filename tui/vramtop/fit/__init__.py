"""The fit engine: will a model, with a config, fit on these GPUs now? Pure, no Textual.

The public API, for the CLI, the what-if panel, the report and the Ray panel::

    from vramtop.fit import Candidate, evaluate, candidate_from_fields, list_models, paper_node

``evaluate(candidate, snapshot_or_node)`` never raises for bad values; they come back as
``FitResult.errors`` (field -> why).

Each name is imported from its module when first used (PEP 562), so what needs one part of the
engine (the telemetry needs ``specs``) does not load the rest at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vramtop.fit.fields import ModelChoice, candidate_from_fields, list_models
    from vramtop.fit.placement import NodeView, node_from_snapshot, paper_node
    from vramtop.fit.specs import ModelSpec, SpecError, resolve
    from vramtop.fit.verdict import (
        GREEN, INVALID, RED, YELLOW, BudgetLine, Candidate, FitResult, GpuNeed, Suggestion, evaluate,
    )

_MODULE_OF = {
    **dict.fromkeys(("ModelChoice", "candidate_from_fields", "list_models"), "fields"),
    **dict.fromkeys(("NodeView", "node_from_snapshot", "paper_node"), "placement"),
    **dict.fromkeys(("ModelSpec", "SpecError", "resolve"), "specs"),
    **dict.fromkeys(("GREEN", "YELLOW", "RED", "INVALID", "BudgetLine", "Candidate", "FitResult", "GpuNeed",
                     "Suggestion", "evaluate"), "verdict"),
}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'vramtop.fit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vramtop.fit.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value
