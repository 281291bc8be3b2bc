"""``vramtop fit``: the verdict for one candidate, as text or JSON, with an exit status."""

from __future__ import annotations

import argparse
import json
import sys

from vramtop.fit import specs
from vramtop.fit.engine import Candidate, FitResult, NodeView, evaluate, node_from_snapshot, paper_node
from vramtop.fit.specs import SpecError
from vramtop.sources.nvml import NvmlUnavailable

EXIT = {"green": 0, "yellow": 1, "red": 2}
BAD_INPUT = 3

DESCRIPTION = """\
Would MODEL, served with this config, fit on this node's GPUs right now?

vLLM is modelled as vLLM V1 computes its budget per GPU rank: it asks for
gpu_memory_utilization x the GPU's TOTAL memory and refuses to start when less than that is
free; the KV cache gets what is left after weights, activations, CUDA graphs and overhead.
Ollama is modelled as its scheduler places layers: weights and KV cache per layer, a compute
graph per GPU, 457 MiB kept free per GPU, the rest offloaded to the CPU.

MODEL is a catalog name (medgemma-27b, google/medgemma-27b-it, an Ollama tag such as
gemma3:12b), a Hugging Face model directory, or a .gguf file; --params guesses from a size.
"""

EPILOG = """\
verdicts:
  GREEN  (exit 0)  fits with margin and serves a few max_model_len requests at once
  YELLOW (exit 1)  fits thinly, or only with a named change (stopping an instance, CPU offload)
  RED    (exit 2)  would not start, or cannot hold one request of max_model_len
  exit 3           bad input (unknown model, impossible value), with one line saying why

examples:
  vramtop fit medgemma-4b-it --engine vllm --tp 2 --util 0.85 --demo
  vramtop fit medgemma-27b --engine ollama --quant q8_0 --demo
  vramtop fit Qwen/Qwen2.5-7B-Instruct --on 1x24GiB --max-model-len 16384
  vramtop fit gemma3:12b --engine ollama --assume-stopped 'medgemma/VLLMDeployment' --demo
  vramtop fit ./my-model-dir --tp 2 --json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help="would a model fit on this node now?", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="catalog name, HF directory or .gguf file")
    p.add_argument("--engine", choices=("vllm", "ollama"), default="vllm")
    p.add_argument("--tp", type=int, default=1, metavar="N", help="tensor_parallel_size (vLLM)")
    p.add_argument("--util", type=float, default=0.9, metavar="F", help="gpu_memory_utilization (vLLM, default 0.9)")
    p.add_argument("--max-model-len", type=int, metavar="N", help="default: the model's own context length")
    p.add_argument("--dtype", "--quant", dest="quant", metavar="Q", help="weights: bf16, fp8, awq, q8_0, q4_k_m, ...")
    p.add_argument("--kv-cache-dtype", default="auto", metavar="D", help="vLLM: auto | fp8; Ollama: f16 | q8_0 | q4_0")
    p.add_argument("--max-num-seqs", type=int, metavar="N")
    p.add_argument("--max-num-batched-tokens", type=int, metavar="N")
    p.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (vLLM)")
    p.add_argument("--num-ctx", type=int, metavar="N", help="Ollama context (default: Ollama's, by node VRAM)")
    p.add_argument("--num-parallel", type=int, default=1, metavar="N", help="Ollama parallel requests")
    p.add_argument("--replicas", type=int, default=1, metavar="N")
    p.add_argument("--gpus", metavar="LIST", help="GPU indices to use, e.g. 2,3 (default: most free)")
    p.add_argument("--assume-stopped", action="append", default=[], metavar="INSTANCE",
                   help="count an instance's memory as free (its name, key or PID); repeatable")
    p.add_argument("--on", metavar="NxSIZE", help="plan on paper for N empty GPUs, e.g. 4x23028MiB or 1x24GiB")
    p.add_argument("--params", metavar="SIZE", help="no spec at hand: guess from a size such as 27B")
    p.add_argument("--demo", action="store_true", help="the built-in demo node")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)


def _node(args) -> NodeView:
    if args.on:
        return paper_node(args.on)
    from vramtop.sampler import one_snapshot

    return node_from_snapshot(one_snapshot(demo=args.demo))


def _gpus(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise SpecError(f"--gpus must be GPU indices like 0,1 — got '{text}'") from None


def to_dict(r: FitResult) -> dict:
    doc = {
        "verdict": r.verdict,
        "summary": r.summary,
        "reasons": list(r.reasons),
        "suggestions": [{"text": s.text, "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in s.changes.items()},
                         "verdict": s.verdict} for s in r.suggestions],
        "per_gpu": [{"gpu": n.index, "total_mib": n.total_mib, "free_mib": round(n.free_mib),
                     "needed_mib": round(n.needed_mib)} for n in r.per_gpu],
        "field_errors": dict(r.field_errors),
        "replicas_placed": r.replicas_placed,
    }
    if r.ranks:
        doc["ranks"] = [{
            "weights_gib": round(k.weights_mib / 1024, 2),
            "requested_gib": round(k.requested_mib / 1024, 2),
            "activation_gib": round(k.activation_mib / 1024, 2),
            "cudagraph_gib": round(k.cudagraph_mib / 1024, 2),
            "non_torch_gib": round(k.non_torch_mib / 1024, 2),
            "kv_cache_gib": round(k.kv_cache_mib / 1024, 2),
            "kv_cache_tokens": k.kv_cache_tokens,
            "max_concurrency": round(k.max_concurrency, 2),
            "max_model_len_that_fits": k.max_model_len_that_fits,
        } for k in r.ranks]
        first = doc["ranks"][0]
        doc.update({k: first[k] for k in ("weights_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency",
                                          "max_model_len_that_fits")})
    if r.ollama_plan:
        p = r.ollama_plan
        doc["ollama"] = {"layers_on_gpu": p.layers_on_gpu, "total_layers": p.total_layers,
                         "size_gib": round(p.total_mib / 1024, 2), "kv_cache_gib": round(p.kv_cache_mib / 1024, 2),
                         "num_ctx": p.num_ctx, "num_parallel": p.num_parallel, "kv_type": p.kv_type}
    return doc


def to_text(r: FitResult, model: str) -> str:
    lines = [f"{r.symbol} {r.word}  {model}: {r.summary}"]
    lines += [f"  · {reason}" for reason in r.reasons if reason != r.summary]
    for n in r.per_gpu:
        lines.append(f"  GPU {n.index}: needs {n.needed_mib:,.0f} MiB, free {n.free_mib:,.0f} MiB of {n.total_mib:,}")
    if r.suggestions:
        lines.append("  would help:")
        lines += [f"    {s.verdict.upper():6} {s.text}" for s in r.suggestions]
    return "\n".join(lines)


def run(args) -> int:
    try:
        if args.model is None and args.params is None:
            raise SpecError("name a MODEL (or give --params SIZE)")
        spec = specs.guess(args.params, args.quant or "bf16") if args.params else specs.load(args.model)
        node = _node(args)
        cand = Candidate(
            spec, args.engine, tp=args.tp, util=args.util, max_model_len=args.max_model_len, quant=args.quant,
            kv_cache_dtype=args.kv_cache_dtype, max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens, enforce_eager=args.enforce_eager,
            num_ctx=args.num_ctx, num_parallel=args.num_parallel, replicas=args.replicas,
            gpus=_gpus(args.gpus), assume_stopped=tuple(args.assume_stopped),
        )
    except SpecError as exc:
        print(f"vramtop fit: {exc}", file=sys.stderr)
        return BAD_INPUT
    except NvmlUnavailable as exc:
        print(f"vramtop fit: {exc}; use --demo or --on NxSIZE", file=sys.stderr)
        return BAD_INPUT
    result = evaluate(cand, node)
    if result.field_errors:
        print(f"vramtop fit: {'; '.join(result.field_errors.values())}", file=sys.stderr)
        return BAD_INPUT
    print(json.dumps(to_dict(result), indent=2) if args.json else to_text(result, spec.id))
    return EXIT[result.verdict]
