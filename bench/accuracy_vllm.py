"""How close the fit engine's vLLM figures come to what vLLM itself printed at start-up.

Reads ``bench/vllm_startup_rows.yaml`` (real logs, each row citing its public source) and prints,
per row, the predicted and reported figures with their error:

  weights      per-rank "Model loading took" from the model's bytes and the TP split (target ±3 %)
  tokens/KV    end to end from the GPU's total memory and the engine arguments where the row
               gives them, else "GPU KV cache size" from the reported "Available KV cache
               memory" (the layout arithmetic alone) (target ±10 % on ≥ 80 % of rows)
  max len      vLLM's estimated maximum model length where the log printed one

    python bench/accuracy_vllm.py [--rows bench/vllm_startup_rows.yaml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from vramtop.fit import vllm
from vramtop.fit.specs import ModelSpec, from_catalog

GIB = 1024**3
ROWS = Path(__file__).with_name("vllm_startup_rows.yaml")


def spec_of(row: dict) -> ModelSpec:
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


def config(row: dict, spec: ModelSpec, total_mib: int) -> vllm.VllmConfig:
    name = row.get("gpu_name", "")
    return vllm.VllmConfig(
        tp=row.get("tp", 1), util=row.get("util", 0.9),
        max_model_len=row.get("max_model_len", spec.max_position),
        kv_cache_dtype=row.get("kv_cache_dtype", "auto"),
        max_num_seqs=row.get("max_num_seqs", vllm.default_max_num_seqs(total_mib, name)),
        max_num_batched_tokens=row.get("max_num_batched_tokens", vllm.default_max_num_batched_tokens(total_mib, name)),
        enforce_eager=row.get("enforce_eager", False), weights_format=row.get("quantization"), dtype="bfloat16",
    )


def err(pred: float, real: float) -> float:
    return (pred - real) / real * 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, default=ROWS)
    rows = yaml.safe_load(ap.parse_args().rows.read_text(encoding="utf-8"))
    weight_errs: list[float] = []
    kv_errs: list[tuple[str, float]] = []
    print(f"{'row':<28} {'figure':<34} {'predicted':>12} {'reported':>12} {'error':>8}")
    for row in rows:
        spec = spec_of(row)
        rep = row["reported"]
        tp = row.get("tp", 1)
        total_mib = int(row.get("gpu_total_gib", 80) * 1024)
        cfg = config(row, spec, total_mib)
        layout = vllm.kv_layout(spec, tp, vllm.kv_element_bytes(cfg.kv_cache_dtype, cfg.dtype))
        out: list[tuple[str, float, float]] = []
        if "weights_gib" in rep and spec.params:
            w = vllm.weights_per_rank(spec, row.get("quantization"), tp) / GIB
            out.append(("weights GiB (Model loading took)", w, rep["weights_gib"]))
            weight_errs.append(err(w, rep["weights_gib"]))
        end_to_end = "gpu_total_gib" in row and "util" in row
        if end_to_end:
            r = vllm.rank_budget(spec, cfg, 0, row["gpu_total_gib"] * GIB, row["gpu_total_gib"] * GIB, layout)
            if "weights_plus_non_torch_gib" in rep:
                out.append(("weights+non-torch GiB", (r.weights_bytes + r.non_torch_bytes) / GIB,
                            rep["weights_plus_non_torch_gib"]))
            if "activation_gib" in rep:
                out.append(("activation peak GiB", r.activation_bytes / GIB, rep["activation_gib"]))
            if "kv_cache_tokens" in rep:
                out.append(("KV tokens, end to end", r.kv_cache_tokens, rep["kv_cache_tokens"]))
                kv_errs.append(("end to end", err(r.kv_cache_tokens, rep["kv_cache_tokens"])))
            elif "kv_cache_gib" in rep:
                out.append(("KV GiB, end to end", r.kv_cache_bytes / GIB, rep["kv_cache_gib"]))
                kv_errs.append(("end to end", err(r.kv_cache_bytes / GIB, rep["kv_cache_gib"])))
        elif "kv_cache_gib" in rep:
            avail = rep["kv_cache_gib"] * GIB
            if "kv_cache_tokens" in rep:
                tokens = vllm.kv_cache_tokens(layout, vllm.num_blocks(layout, avail))
                out.append(("KV tokens from reported KV GiB", tokens, rep["kv_cache_tokens"]))
                kv_errs.append(("layout", err(tokens, rep["kv_cache_tokens"])))
            if "estimated_max_len" in rep:
                cap = max(spec.max_position, cfg.max_model_len)  # a log may extend the context (rope scaling)
                n = vllm.longest_len(layout, avail, cfg.max_num_batched_tokens, cap)
                out.append(("estimated max model len", n, rep["estimated_max_len"]))
                kv_errs.append(("layout", err(n, rep["estimated_max_len"])))
            if "request_gib" in rep:
                need = vllm.request_bytes(layout, cfg.max_model_len, cfg.max_num_batched_tokens) / GIB
                out.append(("KV GiB for one max_model_len request", need, rep["request_gib"]))
        for label, pred, real in out:
            print(f"{row['id']:<28} {label:<34} {pred:>12,.2f} {real:>12,.2f} {err(pred, real):>+7.1f}%")
    print()
    ok_kv = sum(1 for _, e in kv_errs if abs(e) <= 10)
    ok_w = sum(1 for e in weight_errs if abs(e) <= 3)
    e2e = [e for kind, e in kv_errs if kind == "end to end"]
    print(f"KV tokens / memory within ±10 %: {ok_kv} of {len(kv_errs)} checks "
          f"({ok_kv / len(kv_errs):.0%}); end to end: {sum(1 for e in e2e if abs(e) <= 10)} of {len(e2e)}, "
          f"mean |error| {sum(map(abs, e2e)) / max(1, len(e2e)):.1f} %")
    print(f"weights within ±3 %: {ok_w} of {len(weight_errs)} rows ({ok_w / max(1, len(weight_errs)):.0%}), "
          f"mean |error| {sum(map(abs, weight_errs)) / max(1, len(weight_errs)):.1f} %")


if __name__ == "__main__":
    main()
