"""Suggestions that change pipeline, data or expert parallel, each judged again to hold the
verdict it claims. Models come from the built-in catalog (their published config.json)."""

from dataclasses import replace

from vramtop.fit import specs
from vramtop.fit.placement import GpuSlot, NodeView, paper_node
from vramtop.fit.verdict import GREEN, RED, Candidate, evaluate

MIB = 1024**2


def _check_claims(candidate, node, result):
    """Every suggestion, applied, gets the verdict it names."""
    for s in result.suggestions:
        again = evaluate(replace(candidate, **s.changes), node, suggest=False)
        assert again.verdict == s.verdict, (s.text, again.line)


def test_three_gpus_and_64_heads_leave_pipeline_stages_as_the_parallel_way_to_fit():
    llama70 = specs.resolve("meta-llama/Llama-3.1-70B-Instruct")  # 64 heads, 80 layers: no TP 3
    node = paper_node("3x64GiB")
    c = Candidate(llama70, max_model_len=8192)
    r = evaluate(c, node, parallel_changes=True)
    assert r.verdict == RED
    pp = [s for s in r.suggestions if s.field == "pipeline_parallel_size"]
    assert [s.value for s in pp] == ["3"] and pp[0].verdict == GREEN
    _check_claims(c, node, r)
    staged = evaluate(replace(c, **pp[0].changes), node, suggest=False)
    assert [g.note for g in staged.per_gpu] == ["PP stage 0 TP rank 0", "PP stage 1 TP rank 0", "PP stage 2 TP rank 0"]
    # callers whose form has no pipeline field (the what-if panel) are not offered it
    assert not any(s.field == "pipeline_parallel_size" for s in evaluate(c, node).suggestions)


def test_pipeline_stages_on_gpus_of_different_sizes_are_each_judged_on_their_own_gpu():
    node = NodeView("H100 + L40S", (GpuSlot(0, "NVIDIA H100 80GB HBM3", 81559, 81559, 81559),
                                    GpuSlot(1, "NVIDIA L40S", 46068, 46068, 46068)), paper=True)
    c = Candidate(specs.resolve("meta-llama/Llama-3.1-70B-Instruct"), quantization="fp8", max_model_len=8192)
    r = evaluate(c, node, parallel_changes=True)
    assert r.verdict == RED  # 65.7 GiB of fp8 weights leave the H100 too little KV cache at TP 1
    pp = next(s for s in r.suggestions if s.field == "pipeline_parallel_size")
    assert pp.value == "2" and pp.verdict == GREEN
    _check_claims(c, node, r)
    staged = evaluate(replace(c, **pp.changes), node, suggest=False)
    requested = {rank.gpu_index: rank.requested_bytes for rank in staged.ranks}
    assert requested == {0: 0.9 * 81559 * MIB, 1: 0.9 * 46068 * MIB}  # each its own GPU's share
    assert {rank.stage for rank in staged.ranks} == {0, 1}


def test_a_moe_too_large_for_one_gpu_fits_as_one_expert_parallel_engine_instead_of_two_replicas():
    moe = specs.resolve("Qwen/Qwen3-30B-A3B")  # 128 routed experts, 57 GiB in bfloat16
    node = paper_node("2x48GiB")
    c = Candidate(moe, replicas=2, max_model_len=8192)
    r = evaluate(c, node, parallel_changes=True)
    assert r.verdict == RED
    dp = next(s for s in r.suggestions if s.field == "data_parallel_size")
    assert dp.changes == {"replicas": 1, "data_parallel_size": 2, "enable_expert_parallel": True}
    assert dp.verdict == GREEN
    _check_claims(c, node, r)
    engine = evaluate(replace(c, **dp.changes), node, suggest=False)
    assert [g.note for g in engine.per_gpu] == ["DP rank 0 TP rank 0 EP rank 0 (64 experts)",
                                                "DP rank 1 TP rank 0 EP rank 1 (64 experts)"]
    # each rank holds half the experts and all of the attention: less than the whole model,
    # more than half of it
    per_rank = engine.ranks[0].weights_bytes
    assert moe.weight_bytes / 2 < per_rank < 0.6 * moe.weight_bytes


def test_pairs_with_parallel_changes_are_judged_before_they_are_offered():
    # at its full 131,072-token context no single change serves a bfloat16 70B on 3 x 64 GiB:
    # pipeline stages hold the weights, and a shorter context their KV cache
    node = paper_node("3x64GiB")
    c = Candidate(specs.resolve("meta-llama/Llama-3.1-70B-Instruct"))
    r = evaluate(c, node, parallel_changes=True)
    assert r.verdict == RED
    staged = [s for s in r.suggestions if s.changes.get("pipeline_parallel_size") == 3]
    assert staged and "max_model_len" in staged[0].changes and staged[0].verdict != RED
    _check_claims(c, node, r)
