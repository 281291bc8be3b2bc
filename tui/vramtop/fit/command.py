"""The launch line: the exact command that realises a fit verdict on this node now.

Pure: a candidate and a node view in, the verdict of the candidate as the line states it and the
line itself out (no I/O, so the what-if panel may call it on every keystroke).

The line pins what the fit engine chose: the GPUs (a tensor-parallel group as close together as
NVML's topology allows without a worse verdict, see ``place``) (``CUDA_VISIBLE_DEVICES``, in nvidia-smi's
order, so ``CUDA_DEVICE_ORDER=PCI_BUS_ID``: CUDA's own default orders by speed), every size the
verdict depends on (tensor parallel size, gpu_memory_utilization, max_model_len), and, where the
user left gpu_memory_utilization to the default, the highest share up to vLLM's 0.9 that passes
vLLM's start-up check ("free memory ... is less than desired GPU memory utilization") with
``MARGIN_MIB`` to spare on every GPU, if the verdict stays as good. vLLM flags are spelled as
``vllm serve`` spells them (its EngineArgs field names with dashes, vllm/engine/arg_utils.py;
``--limit-mm-per-prompt`` as JSON, and left out with the other multimodal flags for a text-only
model, which vLLM ignores them for);
Ollama's as the server's environment (envconfig/config.go); several replicas as a Ray Serve LLM
config (``engine_kwargs``, ``deployment_config.autoscaling_config``, ``placement_group_config``)
whose autoscaling limits are the replicas the node can hold.

In cluster mode (GPUs of several Ray nodes) a single engine is judged on each node's GPUs and goes
to the node with the best verdict, then the fewest stopped instances there, then the most free
memory; its line names the GPUs by UUID (the indices count over the cluster) and a note says on
which node to run it. Replicas are left to Ray; a note says on which node each would fit.
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
from dataclasses import dataclass, replace
from typing import Any

from vramtop.fit import vllm
from vramtop.fit.placement import NodeView, find_instance, is_slice
from vramtop.fit.specs import normalize_format
from vramtop.fit.verdict import (_RANK, INVALID, OLLAMA, RED, Candidate, FitResult, evaluate, is_multimodal,
                                 mm_flags_given)
from vramtop.units import MIB

MARGIN_MIB = 512  # what the chosen gpu_memory_utilization leaves free at vLLM's start-up check
UNKNOWN_LEVEL = 100  # a GPU pair NVML gives no common ancestor for: farther than any level
MAX_SETS = 5000  # GPU sets looked at for a closer tensor-parallel group (8 of 16 GPUs: 12,870)
MAX_JUDGED = 64  # of those, the closest judged (a verdict costs up to 2 ms)
_DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class LaunchLine:
    """``env`` then ``argv``; ``then``: a second command (``ollama run M`` after ``ollama serve``);
    ``serve_config``: the Ray Serve LLM config for several replicas; ``notes``: why each choice."""

    engine: str
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    gpus: tuple[Any, ...]
    then: tuple[str, ...] = ()
    serve_config: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The line to paste into a shell (two lines for Ollama: the server, then the model)."""
        if self.serve_config is not None:
            return json.dumps(self.serve_config, indent=2)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        first = " ".join(p for p in (env, shlex.join(self.argv)) if p)
        return first + (f"\n{shlex.join(self.then)}" if self.then else "")

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "env": dict(self.env), "argv": list(self.argv),
                "then": list(self.then), "gpus": [str(g) for g in self.gpus],
                "serve_config": self.serve_config, "text": self.text, "notes": list(self.notes)}


@dataclass(frozen=True)
class LaunchPlan:
    """The candidate as the line states it, its verdict, and the line."""

    candidate: Candidate
    result: FitResult
    line: LaunchLine
    margin_mib: int | None = None  # vLLM: the least spare at the start-up check over its GPUs


def _floor2(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100


def chosen_gpus(c: Candidate, result: FitResult) -> tuple[Any, ...]:
    """The GPUs the verdict placed the candidate on (vLLM: every replica's; Ollama: those that
    take layers, or all it looked at when none does)."""
    if c.engine == OLLAMA and result.ollama_plan is not None:
        used = tuple(g for g, n in result.ollama_plan.gpu_layers.items() if n > 0)
        return tuple(sorted(used or (g.gpu_index for g in result.per_gpu), key=str))
    return tuple(g.gpu_index for g in result.per_gpu)


def _margin(result: FitResult) -> int | None:
    if not result.ranks:
        return None
    return min(int((r.free_at_check_bytes - r.requested_bytes) / MIB) for r in result.ranks)


def place(candidate: Candidate, node: NodeView) -> tuple[Candidate, FitResult]:
    """``candidate`` with its GPUs pinned, and its verdict there: the fit engine's choice (most
    free memory), unless a tensor-parallel group of GPUs closer together (``node.topology``: one
    PCIe switch before one host bridge before one NUMA node before across NUMA nodes) gets as
    good a verdict; among sets as close, the one that leaves most free memory. Ollama and
    several replicas keep the fit engine's choice."""
    result = evaluate(candidate, node, suggest=False)
    if candidate.gpus is not None or not result.per_gpu or candidate.replicas > 1:
        return candidate, result  # Ray places replicas itself: their GPUs are not pinned
    if node.nodes:
        return _on_best_node(candidate, node, result)
    chosen = chosen_gpus(candidate, result)
    tp = candidate.tensor_parallel_size
    if candidate.engine != OLLAMA and candidate.replicas == 1 and tp > 1 and node.topology:
        levels = {}
        for a, b, level in node.topology:
            levels[a, b] = levels[b, a] = level
        free = {g.index: g.free_mib for g in node.gpus if not is_slice(g.index)}

        def spread(gpus: tuple[Any, ...]) -> int:  # the farthest pair; unreported counts as farthest
            return max(levels.get(pair, UNKNOWN_LEVEL) for pair in itertools.combinations(gpus, 2))

        now = spread(chosen)
        by_free = sorted(free, key=lambda g: (-free[g], g))
        sets = itertools.islice(itertools.combinations(by_free, tp), MAX_SETS)
        ordered = sorted(sets, key=lambda s: (spread(s), -min(free[g] for g in s)))
        for gpus in ordered[:MAX_JUDGED]:
            if spread(gpus) >= now:
                break
            pinned = candidate.with_(gpus=tuple(sorted(gpus)))
            other = evaluate(pinned, node, suggest=False)
            if _RANK[other.verdict] <= _RANK[result.verdict]:
                return pinned, other
    pinned = candidate.with_(gpus=chosen)
    return pinned, evaluate(pinned, node, suggest=False)


def _on_best_node(candidate: Candidate, node: NodeView, result: FitResult) -> tuple[Candidate, FitResult]:
    """Cluster mode: ``candidate`` judged on each Ray node's GPUs (vLLM's ranks share one machine),
    pinned on the node with the best verdict, then the fewest stopped instances there (least
    disruption), then most free memory on the GPUs it takes, then on the node."""
    stopped = [i for i in (find_instance(node, ref) for ref in candidate.stopped) if i is not None]
    best: tuple[tuple[int, int, int, int], Candidate, FitResult] | None = None
    for name in sorted(set(node.nodes.values())):
        pool = tuple(g for g, n in node.nodes.items() if n == name)
        judged = evaluate(candidate.with_(gpus=pool), node, suggest=False)
        if judged.verdict == INVALID or not judged.per_gpu:  # too few GPUs there
            continue
        gpus = chosen_gpus(candidate, judged)
        disrupted = sum(1 for i in stopped if any(g in pool for g in i.per_gpu_mib))
        key = (_RANK[judged.verdict], disrupted, -sum(node.gpu(g).free_mib for g in gpus),
               -sum(node.gpu(g).free_mib for g in pool))
        if best is None or key < best[0]:
            best = (key, candidate.with_(gpus=gpus), judged)
    return (best[1], best[2]) if best is not None else (candidate, result)


def _where(line: LaunchLine, node: NodeView) -> LaunchLine:
    """Cluster mode: the line's GPUs by UUID, and a note naming the Ray node to run it on."""
    on = sorted({node.nodes[g] for g in line.gpus if g in node.nodes})
    if not on:
        return line
    if line.serve_config is not None:
        note = f"the replicas fit on Ray node(s) {', '.join(on)}; Ray chooses where they run"
        return replace(line, notes=(*line.notes, note))
    uuids = [node.gpu(g).uuid for g in line.gpus]
    env = line.env
    if len(on) == 1 and all(uuids):
        env = tuple((k, ",".join(uuids) if k == "CUDA_VISIBLE_DEVICES" else v) for k, v in env)
    note = (f"run this on Ray node {on[0]}" if len(on) == 1
            else f"its GPUs lie on Ray nodes {', '.join(on)}: run it on one machine only")
    return replace(line, env=env, notes=(note, *line.notes))


def plan(candidate: Candidate, node: NodeView, model_ref: str | None = None) -> LaunchPlan:
    """Judge ``candidate`` on ``node`` and pin the choices into a launch line; ``model_ref``: the
    model as the user named it (an Ollama tag, a directory); vLLM gets the Hugging Face id of a
    catalog name."""
    c, result = place(candidate, node)
    if c.engine != OLLAMA and c.gpu_memory_utilization is None and result.ranks:
        best = min(_floor2((r.free_at_check_bytes - MARGIN_MIB * MIB) / r.total_bytes) for r in result.ranks)
        c = c.with_(gpu_memory_utilization=vllm.DEFAULT_UTIL)  # what None means: same verdict
        if 0 < best < vllm.DEFAULT_UTIL:
            tried = c.with_(gpu_memory_utilization=best)
            other = evaluate(tried, node, suggest=False)
            if other.verdict != RED and _RANK[other.verdict] <= _RANK[result.verdict]:
                c, result = tried, other
    margin = _margin(result)
    line = line_for(c, result, margin, model_ref)
    return LaunchPlan(c, result, _where(line, node) if node.nodes else line, margin)


def line_for(c: Candidate, result: FitResult, margin_mib: int | None = None,
             model_ref: str | None = None) -> LaunchLine:
    """The launch line of ``c`` as judged in ``result``."""
    gpus = c.gpus if c.gpus is not None else chosen_gpus(c, result)
    env: list[tuple[str, str]] = []
    whole = [g for g in gpus if not is_slice(g)]
    if gpus and len(whole) == len(gpus):
        env += [("CUDA_DEVICE_ORDER", "PCI_BUS_ID"), ("CUDA_VISIBLE_DEVICES", ",".join(map(str, gpus)))]
    notes = [f"stop {ref} first: the verdict counts its memory as free" for ref in c.stopped]
    if len(whole) != len(gpus):
        notes.append("a MIG slice is chosen: set CUDA_VISIBLE_DEVICES to its MIG-… UUID (nvidia-smi -L)")
    if c.engine == OLLAMA:
        return _ollama_line(c, result, env, tuple(gpus), notes, model_ref or c.model.name)
    local = model_ref is not None and model_ref.startswith(("/", "./", "../", "~"))
    return _vllm_line(c, result, env, tuple(gpus), notes, margin_mib, model_ref if local else c.model.name)


def _vllm_flags(c: Candidate, result: FitResult) -> list[tuple[str, Any]]:
    """(EngineArgs field, value) pairs: every size the verdict depends on, the rest when set."""
    pairs: list[tuple[str, Any]] = [
        ("tensor_parallel_size", c.tensor_parallel_size),
        ("gpu_memory_utilization", c.gpu_memory_utilization if c.gpu_memory_utilization is not None
         else vllm.DEFAULT_UTIL),
        ("max_model_len", result.max_model_len or c.max_model_len or c.model.max_position),
    ]
    quant = c.quantization and normalize_format(c.quantization)
    dtype = c.dtype
    if quant in _DTYPES and dtype is None:
        dtype, quant = quant, None
    if dtype and normalize_format(dtype) != "auto":
        pairs.append(("dtype", normalize_format(dtype)))
    if quant and quant not in ("auto", *_DTYPES):
        pairs.append(("quantization", c.quantization))
    for name in ("kv_cache_dtype", "max_num_seqs", "max_num_batched_tokens"):
        value = getattr(c, name)
        if value is not None and value != "auto":
            pairs.append((name, value))
    for name in ("pipeline_parallel_size", "data_parallel_size"):
        if getattr(c, name) > 1:
            pairs.append((name, getattr(c, name)))
    for name in ("enforce_eager", "enable_prefix_caching", "enable_expert_parallel"):
        if getattr(c, name):
            pairs.append((name, True))
    if c.speculative_config is not None:
        pairs.append(("speculative_config", c.speculative_config.to_engine()))
    if is_multimodal(c.model):  # a text-only model: vLLM ignores them (0.9.2 refused limit_mm_per_prompt)
        if c.limit_mm_per_prompt is not None:
            pairs.append(("limit_mm_per_prompt", dict(c.limit_mm_per_prompt)))
        if c.skip_mm_profiling:
            pairs.append(("skip_mm_profiling", True))
        if c.mm_encoder_tp_mode is not None and c.mm_encoder_tp_mode != "weights":
            pairs.append(("mm_encoder_tp_mode", c.mm_encoder_tp_mode))
    return pairs


def _vllm_line(c: Candidate, result: FitResult, env: list[tuple[str, str]], gpus: tuple[Any, ...],
               notes: list[str], margin_mib: int | None, model: str) -> LaunchLine:
    pairs = _vllm_flags(c, result)
    quant = c.quantization and normalize_format(c.quantization)
    if quant in ("awq", "gptq") and normalize_format(c.model.quant_hint or c.model.dtype) != quant:
        notes.append(f"--quantization {c.quantization} needs the model quantized with {quant.upper()}: "
                     f"put such a checkpoint of {model} in its place")
    if not is_multimodal(c.model) and mm_flags_given(c):
        notes.append("the multimodal flags are left out: the model has no vision or audio encoder")
    if margin_mib is not None and result.verdict != RED:
        notes.append(f"gpu_memory_utilization {pairs[1][1]} passes vLLM's start-up check with "
                     f"{margin_mib:,} MiB to spare on the tightest GPU")
    if c.replicas > 1:
        placed = max(1, result.replicas_placed)
        kwargs = {k: v for k, v in pairs}
        config = {
            "model_loading_config": {"model_id": model, "model_source": model},
            "engine_kwargs": kwargs,
            "deployment_config": {"autoscaling_config": {"min_replicas": min(placed, c.replicas),
                                                         "max_replicas": min(placed, c.replicas)}},
            "placement_group_config": {"bundles": [{"GPU": 1}] * c.tensor_parallel_size * c.pipeline_parallel_size,
                                       "strategy": "STRICT_PACK"},
        }
        notes.append(f"{placed} of {c.replicas} replicas fit on this node's GPUs: autoscaling is "
                     f"capped there")
        return LaunchLine(c.engine, (), (), gpus, serve_config=config, notes=tuple(notes))
    argv = ["vllm", "serve", model]
    for name, value in pairs:
        flag = "--" + name.replace("_", "-")
        text = json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
        argv += [flag] if value is True else [flag, text]  # a dict as JSON: '{"image":2}'
    return LaunchLine(c.engine, tuple(env), tuple(argv), gpus, notes=tuple(notes))


def _ollama_line(c: Candidate, result: FitResult, env: list[tuple[str, str]], gpus: tuple[Any, ...],
                 notes: list[str], model: str) -> LaunchLine:
    p = result.ollama_plan
    num_ctx = p.num_ctx if p else c.num_ctx
    num_parallel = p.num_parallel if p else (c.num_parallel or 1)
    if num_ctx:
        env.append(("OLLAMA_CONTEXT_LENGTH", str(num_ctx)))
    env.append(("OLLAMA_NUM_PARALLEL", str(num_parallel)))
    kv = (c.kv_cache_dtype or "f16").lower()
    if kv != "f16":  # Ollama quantizes the KV cache only with flash attention on
        env += [("OLLAMA_FLASH_ATTENTION", "1"), ("OLLAMA_KV_CACHE_TYPE", kv)]
    return LaunchLine(c.engine, tuple(env), ("ollama", "serve"), gpus, then=("ollama", "run", model),
                      notes=tuple(notes))
