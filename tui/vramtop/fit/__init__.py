"""The fit engine: will a model, with a config, fit on these GPUs now? Pure, no Textual.

The public API, for the CLI, the what-if panel, the report and the Ray panel::

    from vramtop.fit import Candidate, evaluate, candidate_from_fields, list_models, paper_node

``evaluate(candidate, snapshot_or_node)`` never raises for bad values; they come back as
``FitResult.errors`` (field -> why).
"""

from vramtop.fit.fields import ModelChoice, candidate_from_fields, list_models
from vramtop.fit.placement import NodeView, node_from_snapshot, paper_node
from vramtop.fit.specs import ModelSpec, SpecError, resolve
from vramtop.fit.verdict import (
    GREEN, INVALID, RED, YELLOW, BudgetLine, Candidate, FitResult, GpuNeed, Suggestion, evaluate,
)

__all__ = [
    "GREEN", "YELLOW", "RED", "INVALID", "BudgetLine", "Candidate", "FitResult", "GpuNeed",
    "ModelChoice", "ModelSpec", "NodeView", "SpecError", "Suggestion", "candidate_from_fields",
    "evaluate", "list_models", "node_from_snapshot", "paper_node", "resolve",
]
