"""``vramtop fit``: the verdict for one candidate, as text or JSON, with an exit status.

Exit status: 0 green, 1 yellow, 2 red, 3 bad input (one line on stderr saying why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vramtop.fit import specs, vllm
from vramtop.fit.fields import candidate_from_fields, list_models
from vramtop.fit.placement import NodeView, node_from_snapshot, paper_node
from vramtop.fit.specs import SpecError
from vramtop.fit.verdict import GREEN, INVALID, RED, VLLM, YELLOW, FitResult, evaluate, is_multimodal, mm_profile
from vramtop.launch.engine_args import VLLM_SHORT

EXIT = {GREEN: 0, YELLOW: 1, RED: 2, INVALID: 3}
BAD_INPUT = 3

DESCRIPTION = """\
Would MODEL, served with this config, fit on this node's GPUs right now?

The verdict is a word, a symbol and its reasons, never a colour alone:
  ✓ GREEN   fits with margin on every GPU it uses and serves a few max_model_len requests
  ! YELLOW  fits only thinly, holds fewer than 4 max_model_len requests, runs partly on the
            CPU (Ollama), or fits only because --assume-stopped frees an instance
  ✗ RED     would not start, cannot hold one request of max_model_len, or gets no GPU
Every verdict lists, per GPU, what the candidate needs against what is free, and the smallest
changes that would do better (a gpu_memory_utilization, a max_model_len, another tensor
parallel size or GPU set, which instance to stop, a smaller quantization); single changes
first, a pair (e.g. stop an instance and shorten max_model_len) when no single one helps.

vLLM is modelled as vLLM V1 computes it on each GPU rank (--vllm-version picks the release,
default the newest modelled): it requests
gpu_memory_utilization x the GPU's TOTAL memory (not a share of the model, not of the free
memory) and refuses to start when less than that is free ("Free memory on device ... is less
than desired GPU memory utilization"). The KV cache gets the request minus the weights (split
by tensor parallelism), the profile run's activation peak, non-torch memory and the CUDA-graph
estimate (none with --enforce-eager); releases before 0.21 did not take the CUDA graphs out of
the request but held them on top of it. Hybrid models (Qwen3.5 / Qwen3-Next Gated DeltaNet,
Jamba, Nemotron-H, Granite 4, MiniMax) keep one fixed state per request in their non-attention
layers, and vLLM enlarges the attention blocks to hold it.

Ollama is modelled as its scheduler places layers: weights plus KV cache per layer (num_ctx x
num_parallel tokens; f16, or q8_0 / q4_0 with flash attention), a compute graph and 457 MiB
kept free on each GPU it uses; what does not fit runs on the CPU. num_ctx defaults as
Ollama 0.15.5+ does: 262144 on nodes with 47 GiB of VRAM or more, 32768 from 23 GiB, else 4096,
capped at the model's context.

MODEL is a catalog name or alias (medgemma-27b, google/medgemma-27b-it, an Ollama tag such
as gemma3:12b or amsaravi/medgemma-4b-it:q8), a Hugging Face model directory, a repository in
the local Hugging Face cache, a .gguf file, or a tag pulled into the local Ollama store.
Without MODEL, --params guesses a Llama-shaped model of that size. --list shows the catalog.

vLLM's own spellings (--tensor-parallel-size, --gpu-memory-utilization, --quantization,
--pipeline-parallel-size, --data-parallel-size) are taken too, so the flags of a launch line
can be given back as they are.

--on NxSIZE plans for N empty GPUs of SIZE each, taken as the total that CUDA reports (a live
GPU's nvidia-smi total less the driver's reserve, e.g. 22515MiB for an A10's 23028MiB).
"""

EPILOG = """\
exit status:
  0 green, 1 yellow, 2 red, 3 bad input (unknown model, util outside (0, 1], a tensor parallel
  size that does not divide the attention heads, more pipeline stages than layers, a malformed
  config.json or GGUF)

examples:
  vramtop fit medgemma-4b-it --tp 2 --util 0.85 --max-model-len 8192 --demo
      the seed's question on the demo node: vLLM would not start (GPUs hold ~1.3 GiB free)
  vramtop fit medgemma-4b-it --tp 2 --util 0.85 --assume-stopped ray:4000 --demo
      the same, as if the running replica were stopped
  vramtop fit amsaravi/medgemma-27b-it:q8 --engine ollama --demo
  vramtop fit Qwen/Qwen2.5-7B-Instruct --on 1x24GiB --max-model-len 16384
  vramtop fit llama3.1:70b --tp 4 --quant awq --on 4x23028MiB --json
  vramtop fit --params 27B --quant q8_0 --engine ollama --on 1x48GiB
  vramtop fit ./my-model-dir --tp 2 --gpus 2,3
  vramtop fit Qwen/Qwen3-8B --replicas 2 --tp 2 --demo      (Ray Serve: 2 replicas x 2 GPUs)
  vramtop fit llama3.1:70b --pp 2 --on 2x80GiB --max-model-len 8192   (one PP stage per GPU)
  vramtop fit mixtral --tp 2 --dp 3 --enable-expert-parallel --on 6x48GiB
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``fit`` to the ``vramtop`` command line."""
    from vramtop.cli import options

    p = subparsers.add_parser(
        "fit", help="would a model fit on this node now? (see: vramtop fit --help)",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.demo()],
    )
    _options(p)

    def bad_usage(message: str) -> None:  # exit 2 means RED here: a misuse is bad input, 3
        p.print_usage(sys.stderr)
        p.exit(3, f"{p.prog}: error: {message}\n")

    p.error = bad_usage  # type: ignore[method-assign]
    p.set_defaults(run=run, parser=p)
    return p


# vLLM's spellings of the options named shorter here (vllm/engine/arg_utils.py), with the short
# aliases its launch lines use, as the launcher reads them
VLLM_SPELLINGS = tuple((("--" + name.replace("_", "-"), *filter(None, [VLLM_SHORT.get(name)])), dest) for name, dest in (
    ("tensor_parallel_size", "tp"), ("gpu_memory_utilization", "util"), ("quantization", "quant"),
    ("pipeline_parallel_size", "pp"), ("data_parallel_size", "dp")))


def _options(p: argparse.ArgumentParser) -> None:
    # Values stay text here so that a bad one gets one clear line and exit status 3.
    p.add_argument("model", nargs="?", metavar="MODEL", help="catalog name, HF directory or repo, .gguf, Ollama tag")
    p.add_argument("--engine", default="vllm", metavar="E", help="vllm (default) or ollama")
    p.add_argument("--tp", metavar="N", help="tensor_parallel_size (vLLM, default 1)")
    p.add_argument("--util", metavar="F", help="gpu_memory_utilization in (0, 1] (vLLM, default 0.9)")
    p.add_argument("--max-model-len", metavar="N", help="vLLM, default: the model's context length")
    p.add_argument("--dtype", metavar="D", help="vLLM activation dtype: auto, bfloat16, float16, float32")
    p.add_argument("--quant", metavar="Q", help="weights: bfloat16, fp8, awq, gptq, q8_0, q4_K_M, ... (default: as released; Ollama q4_K_M)")
    p.add_argument("--kv-cache-dtype", metavar="D", help="vLLM: auto or fp8; Ollama: f16, q8_0 or q4_0")
    p.add_argument("--max-num-seqs", metavar="N", help="vLLM (default 256; 1024 on GPUs of 70 GiB+)")
    p.add_argument("--max-num-batched-tokens", metavar="N", help="vLLM (default 2048; 8192 on GPUs of 70 GiB+)")
    p.add_argument("--enforce-eager", action="store_true", help="vLLM without CUDA graphs")
    p.add_argument("--enable-prefix-caching", action="store_true",
                   help="vLLM: hybrid models then keep two state blocks per request")
    p.add_argument("--vllm-version", metavar="V",
                   help=f"the vLLM release to model, e.g. 0.20.2 (default: {vllm.NEWEST_MODELLED}, the newest modelled)")
    p.add_argument("--num-ctx", metavar="N", help="Ollama context length per request")
    p.add_argument("--num-parallel", metavar="N", help="Ollama parallel requests (default 1)")
    p.add_argument("--pp", metavar="N", help="pipeline_parallel_size: layers split into N stages of --tp GPUs (vLLM, default 1)")
    p.add_argument("--dp", metavar="N", help="data_parallel_size: N engine copies of --tp × --pp GPUs (vLLM, default 1)")
    p.add_argument("--enable-expert-parallel", VLLM_SHORT["enable_expert_parallel"], action="store_true",
                   help="vLLM: a MoE model's experts whole, split over the --tp × --dp ranks")
    p.add_argument("--limit-mm-per-prompt", metavar="JSON",
                   help="vLLM: items a prompt per modality, '{\"image\": 2}' (default 999 each; "
                        "image 0: no encoder in the profile run)")
    p.add_argument("--skip-mm-profiling", action="store_true",
                   help="vLLM: leave the multimodal encoder out of the profile run (its memory is then not reserved)")
    p.add_argument("--mm-encoder-tp-mode", choices=("weights", "data"),
                   help="vLLM: the encoder sharded over the TP ranks (weights, default) or whole on each (data)")
    p.add_argument("--speculative-config", metavar="JSON",
                   help="vLLM: speculative decoding as vLLM takes it, '{\"method\": \"mtp\", \"num_speculative_tokens\": 3}', "
                        "an EAGLE head or draft model by \"model\", or \"ngram\"; the draft's weights and KV layers count")
    p.add_argument("--replicas", metavar="N", help="Ray Serve replicas, each on its own --tp GPUs (default 1)")
    p.add_argument("--gpus", metavar="LIST", help="GPU indices to use, e.g. 0,1 (default: most free)")
    p.add_argument("--assume-stopped", action="append", default=[], metavar="INSTANCE",
                   help="count an instance's memory as free (key like ray:4000, name or PID); repeatable")
    p.add_argument("--on", metavar="NxSIZE", help="plan on N empty GPUs instead of this node: 1x24GiB, 4x23028MiB")
    p.add_argument("--params", metavar="SIZE", help="no MODEL: guess a model of this many parameters (27B)")
    for flags, dest in VLLM_SPELLINGS:  # a launch line's flags, given back as they are
        p.add_argument(*flags, dest=dest, help=argparse.SUPPRESS)
    p.add_argument("--json", dest="fit_json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--list", dest="fit_list", action="store_true", help="list the built-in catalog and exit")
    p.add_argument("--command", dest="fit_command", action="store_true",
                   help="print only the command that realises the verdict here (vllm serve, ollama serve, Ray Serve LLM config)")


def _fields(args: argparse.Namespace) -> dict[str, str]:
    pairs = {
        "engine": args.engine, "tensor_parallel_size": args.tp, "gpu_memory_utilization": args.util,
        "max_model_len": args.max_model_len, "dtype": args.dtype, "quantization": args.quant,
        "kv_cache_dtype": args.kv_cache_dtype, "max_num_seqs": args.max_num_seqs,
        "max_num_batched_tokens": args.max_num_batched_tokens, "num_ctx": args.num_ctx,
        "num_parallel": args.num_parallel, "replicas": args.replicas, "gpus": args.gpus,
        "pipeline_parallel_size": args.pp, "data_parallel_size": args.dp,
        "enable_expert_parallel": "yes" if args.enable_expert_parallel else "",
        "stopped": ",".join(args.assume_stopped), "enforce_eager": "yes" if args.enforce_eager else "",
        "vllm_version": args.vllm_version, "enable_prefix_caching": "yes" if args.enable_prefix_caching else "",
        "limit_mm_per_prompt": args.limit_mm_per_prompt, "mm_encoder_tp_mode": args.mm_encoder_tp_mode,
        "skip_mm_profiling": "yes" if args.skip_mm_profiling else "",
        "speculative_config": args.speculative_config,
    }
    return {k: v for k, v in pairs.items() if v}


_FLAGS = {"tensor_parallel_size": "--tp", "pipeline_parallel_size": "--pp", "data_parallel_size": "--dp", "gpu_memory_utilization": "--util", "quantization": "--quant",
          "stopped": "--assume-stopped", "model": "MODEL"}


def _flag(field: str) -> str:
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def _bad(message: str) -> int:
    print(f"vramtop fit: {message}", file=sys.stderr)
    return BAD_INPUT


def _node(args: argparse.Namespace) -> NodeView:
    """The node to plan on: ``--on``'s paper GPUs, else this node's (its sources are imported
    only then); ValueError in one line where there is none."""
    if args.on:
        return paper_node(args.on)
    from vramtop.sources.feed import open_feed
    from vramtop.sources.nvml import NvmlUnavailable

    try:
        feed = open_feed(demo=getattr(args, "demo", False), ray=False, telemetry=False)  # the verdict reads GPU memory
        try:
            return node_from_snapshot(feed.sample())
        finally:
            feed.close()
    except NvmlUnavailable as exc:
        raise ValueError(f"{exc} (use --demo or --on NxSIZE to plan without a GPU)") from None


def _print_list() -> None:
    for m in list_models():
        aliases = f"  (also: {', '.join(m.aliases)})" if m.aliases else ""
        print(f"{m.name:<44} {m.detail}{aliases}")


def _text(result: FitResult, node: NodeView, source: str) -> str:
    lines = [result.line, f"model  {result.model}  ({source})", f"node   {node.label}, {len(node.gpus)} GPU(s)"]
    if result.per_gpu:
        lines.append("per GPU (needed vs free):")
        for g in result.per_gpu:
            state = "ok" if g.fits else f"SHORT by {g.needed_mib - g.free_mib:,} MiB"
            lines.append(f"  GPU {g.gpu_index}  {g.note:<18} needs {g.needed_mib:>7,} MiB   "
                         f"free {g.free_mib:>7,} MiB   {state}")
    if result.ranks:
        lines.append(f"as vLLM would log it (tightest rank): Model loading took {result.weights_gib:.2f} GiB; "
                     f"Available KV cache memory: {result.kv_cache_gib:.2f} GiB; "
                     f"GPU KV cache size: {result.kv_cache_tokens:,} tokens; Maximum concurrency for "
                     f"{result.max_model_len:,} tokens per request: {result.max_concurrency:.2f}x; "
                     f"largest max_model_len that fits: {result.max_model_len_that_fits:,}")
    if result.engine_error:
        lines.append(f"vLLM would say: {result.engine_error}")
    lines.append("why:")
    lines += [f"  - {r}" for r in result.reasons]
    if result.suggestions:
        lines.append("smallest changes that would do better:")
        for s in result.suggestions:
            lines.append(f"  {s.verdict.upper():<6} {s.text}")
    elif result.verdict in (YELLOW, RED):
        lines.append("no single change found that would do better")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``vramtop fit`` with parsed ``args``; returns the exit status."""
    try:
        return _run(args)
    except BrokenPipeError:  # `vramtop fit ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    if args.fit_list:
        _print_list()
        return 0
    model = None
    if not args.model:
        if not args.params:
            return _bad("give a MODEL (see --list) or --params SIZE")
        try:
            model = specs.guess_spec(specs.parse_params(args.params), args.quant)
        except SpecError as exc:
            return _bad(str(exc))
    try:
        node = _node(args)
    except ValueError as exc:
        return _bad(str(exc))
    fields = _fields(args)
    if args.model:
        fields["model"] = args.model
    candidate, errors = candidate_from_fields(fields, model)
    if candidate is None:
        name, why = next(iter(errors.items()))
        return _bad(why if name == "model" else f"{_flag(name)}: {why}")
    result = evaluate(candidate, node, parallel_changes=True)  # --pp, --dp and --enable-expert-parallel exist here
    if result.verdict == INVALID:
        name, why = next(iter(result.errors.items()))
        return _bad(f"{_flag(name)}: {why}")
    source = candidate.model.source
    from vramtop.fit.command import plan

    launch = plan(candidate, node, args.model)  # the command that realises the verdict
    if args.fit_command:
        print(launch.line.text)
        for note in launch.line.notes:  # what the line alone cannot say (stop an instance first)
            print(f"# {note}", file=sys.stderr)
        return EXIT[launch.result.verdict]
    if args.fit_json:
        out = result.to_json()
        out["model_source"] = source
        out["launch"] = {"verdict": launch.result.verdict, **launch.line.to_json()}
        for suggestion, entry in zip(result.suggestions, out["suggestions"]):  # the line each one is judged as
            other = plan(candidate.with_(**suggestion.changes), node, args.model)
            entry["launch"] = {"verdict": other.result.verdict, **other.line.to_json()}
        if candidate.engine == VLLM:
            mm = mm_profile(candidate)
            out["multimodal"] = {
                "encoder": is_multimodal(candidate.model),
                "limit_mm_per_prompt": dict(candidate.limit_mm_per_prompt or ()),
                "image_limit": mm.limit_per_prompt, "skip_mm_profiling": mm.skip_profiling,
                "mm_encoder_tp_mode": mm.encoder_tp_mode,  # as vLLM applies it (data falls back where unsupported)
            }
            sc = candidate.speculative_config
            out["speculative_config"] = None if sc is None else {
                **sc.to_engine(), "draft_resolved": not sc.unresolved,
                "draft_model": sc.draft.name if sc.draft is not None else None,
                "draft_attention_layers": vllm.draft_kv_layers(candidate.model, sc),
            }
        out["node"] = {"label": node.label, "paper": node.paper,
                       "gpus": [{"gpu_index": g.index, "name": g.name, "total_mib": g.total_mib,
                                 "free_mib": g.free_mib} for g in node.gpus]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(_text(result, node, source))
        print(f"launch ({launch.result.word}):", *(f"  {x}" for x in launch.line.text.splitlines()),
              *(f"  # {n}" for n in launch.line.notes), sep="\n")
    sys.stdout.flush()
    return EXIT[result.verdict]


def main(argv: list[str] | None = None) -> int:
    from vramtop.cli import options

    parser = argparse.ArgumentParser(prog="vramtop fit", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[options.demo(defaults=True)])
    _options(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
