"""The smallest changes a verdict suggests: each one, applied, gives the verdict it promises."""

from dataclasses import replace

import pytest

from vramtop.fit.placement import GpuSlot, NodeView, paper_node
from vramtop.fit.specs import resolve
from vramtop.fit.verdict import RED, Candidate, evaluate
from vramtop.sources.demo import DemoSource

RANK = {"green": 0, "yellow": 1, "red": 2}


@pytest.fixture(scope="module")
def demo():
    return DemoSource(clock=lambda: 0.0).sample()


def partly_used(free_mib: int) -> NodeView:
    return NodeView("test", (GpuSlot(0, "NVIDIA L4", 24_576, 24_576, free_mib),))


CASES = [
    ("demo", Candidate(resolve("qwen3-8b"), gpus=(0,))),
    ("demo", Candidate(resolve("medgemma-4b-it"), tensor_parallel_size=2, gpu_memory_utilization=0.95)),
    ("demo", Candidate(resolve("amsaravi/medgemma-4b-it:q8"), engine="ollama")),
    ("paper", Candidate(resolve("llama3.1:70b"), tensor_parallel_size=2, max_model_len=8192)),
    ("partly", Candidate(resolve("llama-3.1-8b"), max_model_len=8192)),
]


@pytest.mark.parametrize("where, cand", CASES)
def test_every_suggestion_keeps_its_promise(demo, where, cand):
    node = {"demo": demo, "paper": paper_node("4x22515MiB"), "partly": partly_used(20_000)}[where]
    r = evaluate(cand, node)
    assert r.verdict == RED and r.suggestions
    for s in r.suggestions:
        assert RANK[s.verdict] < RANK[r.verdict]
        assert evaluate(replace(cand, **s.changes), node, suggest=False).verdict == s.verdict


def test_a_lower_util_is_offered_when_the_start_up_check_fails():
    r = evaluate(Candidate(resolve("llama-3.1-8b"), max_model_len=8192), partly_used(20_000))
    assert r.engine_error.startswith("Free memory on device")
    utils = [float(s.value) for s in r.suggestions if s.field == "gpu_memory_utilization"]
    # (20,000 MiB free - 400 MiB CUDA context) / 24,576 MiB total = 0.797...
    assert utils and max(utils) == 0.79


def test_a_pair_when_no_single_change_helps(demo):
    r = evaluate(Candidate(resolve("qwen3-8b"), gpus=(0,)), demo)
    (s,) = [s for s in r.suggestions if s.field == "stopped"]
    assert s.text.startswith("stop medgemma/VLLMDeployment") and " and --max-model-len " in s.text
    assert set(s.changes) == {"stopped", "max_model_len"}


def test_tp_and_quantization_together_for_a_70b_on_a10s():
    r = evaluate(Candidate(resolve("llama3.1:70b"), tensor_parallel_size=2, max_model_len=8192),
                 paper_node("4x22515MiB"))
    assert any(s.changes.get("tensor_parallel_size") == 4 and "quantization" in s.changes for s in r.suggestions)


def test_green_needs_no_suggestions():
    r = evaluate(Candidate(resolve("qwen3-8b"), max_model_len=8192), paper_node("1x80GiB"))
    assert r.verdict == "green" and r.suggestions == ()


def test_medgemma_27b_on_the_demo_node_finds_stopping_the_replica_with_tp_4(demo):
    # the demo node: four A10s, a Serve replica of medgemma-4b holding most of their memory
    r = evaluate(Candidate(resolve("medgemma-27b")), demo)
    assert r.verdict == RED
    # the plain reason: the weights alone outgrow what vLLM asks of each GPU at TP 1
    assert r.headline.startswith("weights need 12.77 GiB per GPU at TP 4, 51.10 GiB at TP 1; "
                                 "each GPU's request is 19.79 GiB")
    first = r.suggestions[0]
    assert first.changes["tensor_parallel_size"] == 4 and len(first.changes["stopped"]) == 1
    assert "stop" in first.text and "--tensor-parallel-size 4" in first.text
    for s in r.suggestions:  # each combination, applied, gets the verdict it promises
        assert evaluate(replace(Candidate(resolve("medgemma-27b")), **s.changes), demo, suggest=False).verdict == s.verdict
    # no suggestion is another one plus more changes
    sets = [set(s.changes.items()) for s in r.suggestions]
    assert not any(a < b for a in sets for b in sets)
