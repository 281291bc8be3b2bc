"""How close the fit engine's vLLM figures come to what vLLM itself printed at start-up.

Reads ``bench/vllm_startup_rows.yaml`` (real logs, each row citing its public source) and prints,
per row, the predicted and reported figures with their error:

  weights      per-rank "Model loading took" from the model's bytes and the TP split (target ±3 %)
  tokens/KV    end to end from the GPU's total memory and the engine arguments where the row
               gives them, else "GPU KV cache size" from the reported "Available KV cache
               memory" (the layout arithmetic alone) (target ±10 % on ≥ 80 % of rows)
  max len      vLLM's estimated maximum model length where the log printed one
  concurrency  "Maximum concurrency" from the reported KV memory (or, where the log gives no KV
               memory, from the block count its token figure implies)
  activation / non-torch   the profile run's torch peak and the memory outside torch, where the
               log prints them (end to end only). Releases before 0.7.0 counted torch's cached but
               unallocated blocks as non-torch memory (``vllm.NON_TORCH_EXCLUDES_TORCH_CACHE_FROM``):
               their rows are printed but kept out of the non-torch score
  outcome      started, or which start-up error vLLM raised ("start check": free memory below the
               request; "no cache"; "too long": one max_model_len request does not fit), against
               the error ``vllm.failure`` predicts for the row (end to end only)

Each row is modelled as the vLLM release it names (its ``vllm`` field), and with prefix caching,
speculative decoding (``speculative_config`` in vLLM's JSON, read as ``vramtop fit
--speculative-config`` reads it) and the multimodal
arguments (``limit_mm_per_prompt``, ``skip_mm_profiling``, ``mm_encoder_tp_mode``) where the row
says so. The summary (last lines) counts, per term, the rows within the issue's
targets: weights ±3 %, KV tokens ±5 %, KV GiB ±5 %, concurrency ±5 %, and the outcome right.

    python bench/accuracy_vllm.py [--rows bench/vllm_startup_rows.yaml]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import yaml

from vramtop.fit import vllm
from vramtop.fit.fields import parse_speculative_config
from vramtop.fit.specs import ModelSpec, from_catalog, spec_from_config

GIB = 1024**3
ROWS = Path(__file__).with_name("vllm_startup_rows.yaml")


def spec_of(row: dict) -> ModelSpec:
    if "config" in row:  # the model's config.json (the fields the layout reads), cited in the row
        return spec_from_config(row["config"], row["id"], row["source"])
    if "model" in row:
        spec = from_catalog(row["model"])
        if spec is None:
            raise SystemExit(f"{row['id']}: '{row['model']}' is not in the catalog")
        return spec
    s = dict(row["spec"])
    params = s.pop("params", 0)
    name = s.pop("name")
    defaults = dict(intermediate=4 * s["hidden"], max_position=131072)
    return ModelSpec(name=name, source=row["source"], params=params, weight_bytes=2 * params,
                     **{**defaults, **s})


def version_of(row: dict) -> tuple[int, int, int]:
    """The release a row names ("0.19.0", "V1 ~0.10.2", "v0.24.0"); V0 rows and rows without
    one are modelled as the oldest release whose log arithmetic they share (0.10)."""
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", str(row.get("vllm", "")))
    return vllm.parse_version(m.group(1)) if m else (0, 10, 0)


def config(row: dict, spec: ModelSpec, total_mib: int) -> vllm.VllmConfig:
    name = row.get("gpu_name", "")
    return vllm.VllmConfig(
        tp=row.get("tp", 1), pp=row.get("pp", 1), util=row.get("util", 0.9),
        max_model_len=row.get("max_model_len", spec.max_position),
        kv_cache_dtype=row.get("kv_cache_dtype", "auto"),
        max_num_seqs=row.get("max_num_seqs", vllm.default_max_num_seqs(total_mib, name)),
        max_num_batched_tokens=row.get("max_num_batched_tokens", vllm.default_max_num_batched_tokens(total_mib, name)),
        enforce_eager=row.get("enforce_eager", False), weights_format=row.get("quantization"), dtype="bfloat16",
        version=version_of(row), prefix_caching=row.get("enable_prefix_caching", False), gpu_name=name,
        **vllm.speculative_terms(spec, parse_speculative_config(json.dumps(row["speculative_config"]))
                                 if "speculative_config" in row else None),
        mm=vllm.MmProfile(limit_per_prompt=row.get("limit_mm_per_prompt", vllm.DEFAULT_MM_LIMIT),
                          skip_profiling=row.get("skip_mm_profiling", False),
                          encoder_tp_mode=row.get("mm_encoder_tp_mode", "weights")),
    )


def err(pred: float, real: float) -> float:
    return (pred - real) / real * 100


OLD_NON_TORCH = "non-torch GiB, before 0.7.0"  # printed, not scored
TARGETS = {"weights GiB": 3.0, "KV tokens": 5.0, "KV GiB": 5.0, "concurrency": 5.0, "max model len": 5.0,
           "activation GiB": 10.0, "non-torch GiB": 10.0}


def outcome(rank: vllm.RankBudget, cfg: vllm.VllmConfig) -> str:
    """The start-up outcome vLLM's checks give this rank, in their order (``vllm.failure``)."""
    if not rank.starts:
        return "start check"
    if rank.kv_cache_bytes <= 0 or rank.num_blocks == 0:
        return "no cache"
    if rank.request_bytes > rank.kv_cache_bytes:
        return "too long"
    return "started"


def tokens_as_logged(layout: vllm.KvLayout, blocks: int, cfg: vllm.VllmConfig) -> int:
    by_concurrency = cfg.version >= vllm.TOKENS_BY_CONCURRENCY_FROM
    return vllm.kv_cache_tokens(layout, blocks, cfg.max_model_len if by_concurrency else 0,
                                cfg.max_num_batched_tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, default=ROWS)
    rows = yaml.safe_load(ap.parse_args().rows.read_text(encoding="utf-8"))
    terms: dict[str, list[float]] = {t: [] for t in (*TARGETS, OLD_NON_TORCH)}
    outcomes: list[bool] = []
    print(f"{'row':<28} {'figure':<38} {'predicted':>12} {'reported':>12} {'error':>8}")
    for row in rows:
        spec = spec_of(row)
        rep = row["reported"]
        tp = row.get("tp", 1)
        total_mib = int(row.get("gpu_total_gib", 80) * 1024)
        cfg = config(row, spec, total_mib)
        layout = vllm.layout_for(spec, cfg)
        batched = cfg.max_num_batched_tokens
        out: list[tuple[str, str | None, float, float]] = []  # label, term, predicted, reported
        if "weights_gib" in rep and spec.params:
            w = vllm.weights_per_rank(spec, row.get("quantization"), tp, mxfp4_backend=cfg.mxfp4_backend) / GIB
            out.append(("weights GiB (Model loading took)", "weights GiB", w, rep["weights_gib"]))
        end_to_end = "gpu_total_gib" in row and "util" in row
        if end_to_end:
            r = vllm.rank_budget(spec, cfg, 0, row["gpu_total_gib"] * GIB, row["gpu_total_gib"] * GIB, layout)
            if "weights_plus_non_torch_gib" in rep:
                out.append(("weights+non-torch GiB", None, (r.weights_bytes + r.non_torch_bytes) / GIB,
                            rep["weights_plus_non_torch_gib"]))
            if "activation_gib" in rep:
                out.append(("activation peak GiB", "activation GiB", r.activation_bytes / GIB, rep["activation_gib"]))
            if "non_torch_gib" in rep:
                old = cfg.version < vllm.NON_TORCH_EXCLUDES_TORCH_CACHE_FROM
                out.append(("non-torch GiB" + (" (before 0.7.0)" if old else ""),
                            OLD_NON_TORCH if old else "non-torch GiB", r.non_torch_bytes / GIB, rep["non_torch_gib"]))
            if "outcome" in rep:
                got = outcome(r, cfg)
                outcomes.append(got == rep["outcome"])
                print(f"{row['id']:<28} {'outcome':<38} {got:>12} {rep['outcome']:>12} "
                      f"{'right' if got == rep['outcome'] else 'WRONG':>8}")
            if "kv_cache_gib" in rep:
                out.append(("KV GiB, end to end", "KV GiB", r.kv_cache_bytes / GIB, rep["kv_cache_gib"]))
            if "kv_cache_tokens" in rep:
                out.append(("KV tokens, end to end", "KV tokens", r.kv_cache_tokens, rep["kv_cache_tokens"]))
        elif "kv_cache_gib" in rep:
            avail = rep["kv_cache_gib"] * GIB
            blocks = vllm.num_blocks(layout, avail)
            if "kv_cache_tokens" in rep:
                out.append(("KV tokens from reported KV GiB", "KV tokens", tokens_as_logged(layout, blocks, cfg),
                            rep["kv_cache_tokens"]))
            if "max_concurrency" in rep:
                out.append(("concurrency from reported KV GiB", "concurrency",
                            vllm.max_concurrency(layout, blocks, cfg.max_model_len, batched), rep["max_concurrency"]))
            if "estimated_max_len" in rep:
                cap = max(spec.max_position, cfg.max_model_len)  # a log may extend the context (rope scaling)
                n = vllm.longest_len(layout, avail, batched, cap)
                out.append(("estimated max model len", "max model len", n, rep["estimated_max_len"]))
            if "request_gib" in rep:
                need = vllm.request_bytes(layout, cfg.max_model_len, batched) / GIB
                out.append(("KV GiB for one max_model_len request", None, need, rep["request_gib"]))
        elif "kv_cache_tokens" in rep and "max_concurrency" in rep:
            # no KV memory in the log: the fewest blocks its token figure allows, then concurrency
            blocks = rep["kv_cache_tokens"] // layout.block_size * layout.num_groups
            out.append(("concurrency from reported tokens", "concurrency",
                        vllm.max_concurrency(layout, blocks, cfg.max_model_len, batched), rep["max_concurrency"]))
        for label, term, pred, real in out:
            e = err(pred, real)
            if term:
                terms[term].append(e)
            print(f"{row['id']:<28} {label:<38} {pred:>12,.2f} {real:>12,.2f} {e:>+7.1f}%")
    print()
    for term, limit in TARGETS.items():
        errs = terms[term]
        ok = sum(1 for e in errs if abs(e) <= limit)
        mean = sum(map(abs, errs)) / max(1, len(errs))
        print(f"{term:<14} within ±{limit:g} %: {ok} of {len(errs)} rows "
              f"({ok / max(1, len(errs)):.0%}), mean |error| {mean:.1f} %")
    old = terms[OLD_NON_TORCH]
    print(f"{'non-torch':<14} not scored: {len(old)} rows of releases before 0.7.0, which counted torch's cached "
          f"blocks as non-torch (mean |error| {sum(map(abs, old)) / max(1, len(old)):.1f} %)")
    print(f"{'outcome':<14} right on {sum(outcomes)} of {len(outcomes)} rows whose start-up outcome is known")


if __name__ == "__main__":
    main()
