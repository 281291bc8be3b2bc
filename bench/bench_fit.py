"""Cost of one fit verdict, alone and with its suggestions, against grouping the same
snapshot's instances as the baseline — the analysis every tick already pays.

The what-if panel calls ``evaluate`` on every keystroke and every tick, so one verdict must stay
under 2 ms. The search for suggestions (single changes, then up to three together, at most
``MAX_COMBINATIONS`` judged) may take longer; it is measured here, not bounded by that budget.
Each timed call gets a fresh snapshot object (as a new tick does), so the per-snapshot view is
rebuilt every time. Times are process CPU time, the median of ``--repeat`` rounds.

    python bench/bench_fit.py [--repeat 200]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from cpu import median_ms
from vramtop.analysis.instances import group_instances
from vramtop.fit.placement import paper_node
from vramtop.fit.specs import resolve
from vramtop.fit.verdict import Candidate, evaluate
from vramtop.sources.demo import DemoSource

BUDGET_MS = 2.0


def cases():
    m4, m27 = resolve("medgemma-4b-it"), resolve("amsaravi/medgemma-27b-it:q8")
    return [
        ("vLLM 4B TP2 util 0.85, demo (red, suggestions)", Candidate(m4, tensor_parallel_size=2, gpu_memory_utilization=0.85, max_model_len=8192)),
        ("vLLM 4B TP4 util 0.95, demo (red, suggestions)", Candidate(m4, tensor_parallel_size=4, gpu_memory_utilization=0.95, max_model_len=8192)),
        ("vLLM 4B TP2, replica stopped (yellow)", Candidate(m4, tensor_parallel_size=2, max_model_len=8192, stopped=("ray:4000",))),
        ("Ollama 27B q8, demo (red, suggestions)", Candidate(m27, engine="ollama")),
        ("vLLM Qwen3-8B on GPU 0, demo (red, pair suggestions)", Candidate(resolve("qwen3-8b"), gpus=(0,))),
        ("vLLM Llama-70B TP4 awq, paper 4xA10", Candidate(resolve("llama3.1:70b"), tensor_parallel_size=4, quantization="awq")),
        ("vLLM 27B TP1, demo (red, multi-change search)", Candidate(resolve("medgemma-27b"))),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    source = DemoSource(clock=lambda: 0.0)
    base = source.sample()
    paper = paper_node("4x22515MiB")
    fresh = lambda: replace(base)  # a new snapshot object with the same content, as each tick brings
    baseline, _ = median_ms(lambda: group_instances(fresh()), args.repeat)
    print(f"baseline: group_instances(demo snapshot)  {baseline:.3f} ms (median)")
    print(f"{'case':<56} {'verdict ms':>10} {'x base':>7}  under {BUDGET_MS} ms  {'+suggestions ms':>15} {'x base':>7}")
    worst = worst_all = 0.0
    for label, cand in cases():
        node_for = (lambda: paper) if "paper" in label else fresh
        alone, _ = median_ms(lambda: evaluate(cand, node_for(), suggest=False), args.repeat)
        full, _ = median_ms(lambda: evaluate(cand, node_for()), args.repeat)
        worst, worst_all = max(worst, alone), max(worst_all, full)
        print(f"{label:<56} {alone:10.3f} {alone / baseline:7.1f}  {'yes' if alone < BUDGET_MS else 'NO':<11} "
              f"{full:15.3f} {full / baseline:7.1f}")
    print(f"slowest verdict {worst:.3f} ms ({'within' if worst < BUDGET_MS else 'OVER'} the {BUDGET_MS} ms budget); "
          f"slowest with suggestions {worst_all:.3f} ms")


if __name__ == "__main__":
    main()
