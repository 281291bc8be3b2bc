"""Candidates as typed on the command line: ``MODEL[,key=value...]``.

Model names may hold colons (Ollama tags such as ``amsaravi/medgemma-4b-it:q8``), so options
follow a comma: ``amsaravi/medgemma-27b-it:q8,engine=ollama`` or
``medgemma-4b-it,tp=2,util=0.85,max_model_len=8192``. Keys are the fit engine's field names or
the short forms of ``vramtop fit``'s flags; GPU lists and stopped instances use ``+``
(``gpus=0+1``, ``stopped=ray:4000``).
"""

from __future__ import annotations

from vramtop.fit import Candidate, candidate_from_fields

ALIASES = {
    "tp": "tensor_parallel_size", "pp": "pipeline_parallel_size", "dp": "data_parallel_size",
    "ep": "enable_expert_parallel", "util": "gpu_memory_utilization", "quant": "quantization",
    "ctx": "max_model_len", "max-model-len": "max_model_len", "num-ctx": "num_ctx", "parallel": "num_parallel",
    "assume-stopped": "stopped", "assume_stopped": "stopped", "kv": "kv_cache_dtype", "eager": "enforce_eager",
}

# The seed analysis's questions on its node: two Ollama models beside the running replica.
SEED_CANDIDATES = ("amsaravi/medgemma-27b-it:q8,engine=ollama", "amsaravi/medgemma-4b-it:q8,engine=ollama")


class CandidateError(ValueError):
    """A candidate that cannot be evaluated; the message is one line naming the field and why."""


def parse_candidate(text: str) -> Candidate:
    model, _, rest = text.strip().partition(",")
    fields = {"model": model.strip()}
    for option in filter(None, (o.strip() for o in rest.split(","))):
        key, eq, value = option.partition("=")
        if not eq:
            raise CandidateError(f"{text}: '{option}' is not key=value")
        key = ALIASES.get(key.strip().lower(), key.strip().lower().replace("-", "_"))
        fields[key] = value.strip().replace("+", ",")
    candidate, errors = candidate_from_fields(fields)
    if candidate is None:
        name, why = next(iter(errors.items()))
        raise CandidateError(f"{text}: {why}" if name == "model" else f"{text}: {name}: {why}")
    return candidate
