"""An engine's own command line read back as a fit candidate's fields.

``vllm serve MODEL [flags]`` (and ``python -m vllm.entrypoints.openai.api_server --model M``):
the flags the fit engine models, spelled as vLLM's EngineArgs spells them
(vllm/engine/arg_utils.py: field names with dashes, ``--flag value`` or ``--flag=value``,
``-tp`` / ``-pp`` / ``-dp`` / ``-ep`` / ``-q`` as EngineArgs abbreviates them); every other flag is
left alone. ``ollama serve``: the
server's environment (``OLLAMA_CONTEXT_LENGTH``, ``OLLAMA_NUM_PARALLEL``,
``OLLAMA_KV_CACHE_TYPE``); its model is named apart (``--model``, or ``ollama run M`` after
it in a launch line). Pure: nothing here runs or reads anything.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

VLLM_FLAGS = (  # EngineArgs fields the fit engine models; the fit fields have the same names
    "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "gpu_memory_utilization",
    "max_model_len", "dtype", "quantization", "kv_cache_dtype", "max_num_seqs", "max_num_batched_tokens",
    "limit_mm_per_prompt", "mm_encoder_tp_mode", "speculative_config",
)
VLLM_SWITCHES = ("enforce_eager", "enable_prefix_caching", "enable_expert_parallel", "skip_mm_profiling")
VLLM_SHORT = {"tensor_parallel_size": "-tp", "pipeline_parallel_size": "-pp", "data_parallel_size": "-dp",
              "quantization": "-q", "enable_expert_parallel": "-ep"}  # EngineArgs' own aliases
OLLAMA_ENV = {"OLLAMA_CONTEXT_LENGTH": "num_ctx", "OLLAMA_NUM_PARALLEL": "num_parallel",
              "OLLAMA_KV_CACHE_TYPE": "kv_cache_dtype"}


class CommandError(ValueError):
    """The command cannot be judged (one line: why)."""


@dataclass(frozen=True)
class EngineCommand:
    """What the command asks of the fit engine: its fields as text (``candidate_from_fields``)
    and the ``CUDA_VISIBLE_DEVICES`` it was given (None: not set)."""

    engine: str
    fields: Mapping[str, str] = field(default_factory=dict)
    visible_devices: str | None = None


def _vllm_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    p.add_argument("--model")
    for name in VLLM_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), *filter(None, [VLLM_SHORT.get(name)]), dest=name)
    for name in VLLM_SWITCHES:
        p.add_argument("--" + name.replace("_", "-"), *filter(None, [VLLM_SHORT.get(name)]), dest=name,
                       action="store_true")
        p.add_argument("--no-" + name.replace("_", "-"), dest=name, action="store_false")
    return p


def _vllm_start(argv: Sequence[str]) -> int | None:
    """Where vLLM's own arguments begin in ``argv``, or None if it is not a vLLM server."""
    for i, word in enumerate(argv):
        base = os.path.basename(word)
        if base == "vllm" and i + 1 < len(argv) and argv[i + 1] == "serve":
            return i + 2
        if word == "-m" and i + 1 < len(argv) and argv[i + 1].startswith("vllm.entrypoints."):
            return i + 2
    return None


def _ollama_serve(argv: Sequence[str]) -> bool:
    return any(os.path.basename(w) == "ollama" and argv[i + 1:i + 2] == ["serve"]
               for i, w in enumerate(argv))


def parse(argv: Sequence[str], env: Mapping[str, str], model: str | None = None,
          engine: str | None = None) -> EngineCommand:
    """The fit fields of ``argv`` run with ``env``. ``model`` / ``engine`` name what the command
    itself does not (an Ollama server's model, a wrapper script's engine); a model named in a
    vLLM command wins over ``model``."""
    argv = list(argv)
    devices = env.get("CUDA_VISIBLE_DEVICES")
    start = _vllm_start(argv)
    if start is not None or engine == "vllm":
        args = argv[start:] if start is not None else argv
        try:
            known, _ = _vllm_parser().parse_known_args(args)
        except argparse.ArgumentError as exc:
            raise CommandError(f"vLLM flag: {exc}") from None
        fields: dict[str, str] = {"engine": "vllm"}
        positional = args[0] if start is not None and args and not args[0].startswith("-") else None
        name = positional or known.model or model
        if name:
            fields["model"] = name
        for attr in VLLM_FLAGS:
            value = getattr(known, attr)
            if value is not None:
                fields[attr] = value
        for attr in VLLM_SWITCHES:
            if getattr(known, attr):
                fields[attr] = "yes"
        return EngineCommand("vllm", fields, devices)
    if _ollama_serve(argv) or engine == "ollama":
        fields = {"engine": "ollama"}
        if model:
            fields["model"] = model
        for var, target in OLLAMA_ENV.items():
            if env.get(var):
                fields[target] = env[var]
        return EngineCommand("ollama", fields, devices)
    if engine:
        raise CommandError(f"engine must be vllm or ollama, not '{engine}'")
    raise CommandError("cannot tell which engine this command starts: give --engine vllm|ollama "
                       "and --model M")
