"""The fit engine checked against a running vLLM instance: the KV cache blocks it predicts for
that model and config beside the ``num_gpu_blocks`` vLLM itself reports, with the error.

The config comes from what the instance says about itself: ``vllm:cache_config_info``
(gpu_memory_utilization, block size, cache dtype), the tensor parallel size its workers show, and
the engine flags on its API server's command line. Model names resolve as ``vramtop fit`` resolves
them (catalog, local model files, a local Ollama server), once per name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from vramtop.analysis.instances import served_model
from vramtop.fit import specs
from vramtop.fit.specs import ModelSpec
from vramtop.fit.verdict import Candidate, predicted_kv_blocks
from vramtop.snapshot import GpuInfo
from vramtop.telemetry.model import VllmMetrics
from vramtop.telemetry.vllm_metrics import flag_value

# `vllm serve` flags that change the budget's activation and weight figures, as Candidate fields.
_FLAGS = {"--max-num-seqs": ("max_num_seqs", int), "--max-num-batched-tokens": ("max_num_batched_tokens", int),
          "--dtype": ("dtype", str), "--quantization": ("quantization", str)}


@dataclass(frozen=True)
class KvCheck:
    """``predicted_blocks`` is None where the fit engine cannot evaluate the instance's config;
    ``reason`` then says why, instead of an error of -100 % against a prediction of nothing."""

    model: str
    predicted_blocks: int | None
    actual_blocks: int
    reason: str | None = None

    @property
    def error_pct(self) -> float | None:
        if self.predicted_blocks is None:
            return None
        return (self.predicted_blocks - self.actual_blocks) / self.actual_blocks * 100

    @property
    def text(self) -> str:
        if self.predicted_blocks is None:
            return f"KV blocks: no prediction: {self.reason} · vLLM {self.actual_blocks:,}"
        return (f"KV blocks: fit engine {self.predicted_blocks:,} · vLLM {self.actual_blocks:,} "
                f"({self.error_pct:+.1f} %)")


@lru_cache(maxsize=64)
def _spec(name: str) -> ModelSpec | None:
    try:
        return specs.resolve(name)
    except (specs.SpecError, OSError):
        return None


def kv_check(metrics: VllmMetrics, tp: int, gpu: GpuInfo | None, argv: list[str] = ()) -> KvCheck | None:
    """The check, or None where vLLM did not report its blocks or the model is not known here;
    a check without a prediction (and the reason) where the fit engine cannot evaluate the config."""
    cache = metrics.cache
    if cache is None or not cache.num_gpu_blocks or gpu is None or gpu.lost or gpu.total_mib <= 0:
        return None
    argv = list(argv)
    for name in (served_model(argv), *metrics.model_names):
        spec = _spec(name) if name else None
        if spec is not None:
            break
    else:
        return None
    options = {}
    for option, (field, kind) in _FLAGS.items():
        if (value := flag_value(argv, option)) is not None:
            try:
                options[field] = kind(value)
            except ValueError:
                continue
    candidate = Candidate(spec, tensor_parallel_size=max(1, tp), gpu_memory_utilization=cache.gpu_memory_utilization,
                          kv_cache_dtype=cache.cache_dtype, enforce_eager="--enforce-eager" in argv, **options)
    try:
        predicted = predicted_kv_blocks(candidate, gpu.total_mib - gpu.reserved_mib, gpu.name, cache.block_size or 16)
    except (ValueError, ArithmeticError) as exc:
        return KvCheck(spec.name, None, cache.num_gpu_blocks, f"the fit engine cannot evaluate this config ({exc})")
    if predicted <= 0:
        # vLLM runs, so it found room: the config read from the instance is not the one it runs
        # with (a TP size no process shows, flags set elsewhere), and a -100 % error would blame the engine.
        return KvCheck(spec.name, None, cache.num_gpu_blocks,
                       f"with TP={candidate.tensor_parallel_size} on a {gpu.name} the fit engine finds no room for "
                       f"{spec.name}'s KV cache, yet vLLM runs: the config read from its processes is incomplete")
    return KvCheck(spec.name, predicted, cache.num_gpu_blocks)
