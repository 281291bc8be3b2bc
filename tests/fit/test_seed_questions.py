"""The seed analysis's questions on the demo node (4x A10, one TP=4 vLLM replica), answered with
reasons — including where the seed was wrong: gpu_memory_utilization is a share of each GPU's
total memory, and vLLM refuses to start when less than that is free."""

import pytest

from vramtop.fit.specs import resolve
from vramtop.fit.verdict import GREEN, RED, YELLOW, Candidate, evaluate
from vramtop.sources.demo import DemoSource

REPLICA = "ray:4000"  # the demo's Ray Serve replica (medgemma/VLLMDeployment)


@pytest.fixture(scope="module")
def node():
    return DemoSource(clock=lambda: 0.0).sample()


def test_medgemma_27b_q8_on_ollama_does_not_fit_but_would_once_the_replica_stops(node):
    r = evaluate(Candidate(resolve("amsaravi/medgemma-27b-it:q8"), engine="ollama"), node)
    assert r.verdict == RED
    assert "no GPU has room for even one layer" in r.headline
    assert "most free: 1,364 MiB" in r.headline
    # the reasons are numbers per GPU: what it would take to get the first layers, against what is free
    assert [g.gpu_index for g in r.per_gpu] == [3, 1, 2, 0]
    assert [g.free_mib for g in r.per_gpu] == [1_364, 1_256, 1_254, 32]
    assert all(not g.fits for g in r.per_gpu)
    p = r.ollama_plan
    assert 29.0e9 < p.weights_bytes < 30.0e9  # the seed's "29 GB", now counted
    stop = [s for s in r.suggestions if s.field == "stopped"]
    assert stop and stop[0].value == REPLICA and stop[0].verdict in (GREEN, YELLOW)


def test_medgemma_4b_q8_on_ollama_needs_a_shorter_context_or_the_gpus(node):
    r = evaluate(Candidate(resolve("amsaravi/medgemma-4b-it:q8"), engine="ollama"), node)
    assert 4.8e9 < r.ollama_plan.weights_bytes < 5.1e9  # the seed's "5.0 GB"
    # Ollama's default context on a 88 GiB node is 128K for this model: its KV does not fit in 1.3 GiB
    assert r.ollama_plan.num_ctx == 131_072
    assert r.verdict == RED
    fields = {s.field for s in r.suggestions}
    assert "num_ctx" in fields and "stopped" in fields
    short = evaluate(Candidate(resolve("amsaravi/medgemma-4b-it:q8"), engine="ollama", num_ctx=4096), node)
    assert short.verdict == YELLOW  # a few layers on the freest GPU, the rest on the CPU
    assert 0 < short.ollama_plan.layers_on_gpu < short.ollama_plan.total_layers
    assert "partial CPU offload" in short.headline


@pytest.mark.parametrize("tp", [2, 4])
@pytest.mark.parametrize("util", [0.95, 0.85])
def test_medgemma_4b_on_vllm_cannot_start_beside_the_replica(node, tp, util):
    c = Candidate(resolve("medgemma-4b-it"), tensor_parallel_size=tp, gpu_memory_utilization=util,
                  max_model_len=8192)
    r = evaluate(c, node)
    assert r.verdict == RED
    assert r.engine_error.startswith("Free memory on device (")
    assert f"less than desired GPU memory utilization ({util}, " in r.engine_error
    # vLLM asks util x 21.99 GiB on every GPU it uses — about 19-21 GiB, not "5.2 GB in total"
    assert all(g.needed_mib > 18_000 and not g.fits for g in r.per_gpu)
    assert len(r.per_gpu) == tp
    assert any("no gpu_memory_utilization helps here" in line for line in r.reasons)
    assert not any(s.field == "gpu_memory_utilization" for s in r.suggestions)
    assert [s.value for s in r.suggestions if s.field == "stopped"] == [REPLICA]


def test_with_the_replica_stopped_085_fits_and_095_is_thin(node):
    base = Candidate(resolve("medgemma-4b-it"), tensor_parallel_size=2, max_model_len=8192, stopped=(REPLICA,))
    ok = evaluate(base.with_(gpu_memory_utilization=0.85), node)
    assert ok.verdict == YELLOW  # fits, but only because the running replica is assumed stopped
    assert ok.headline.startswith("only if medgemma/VLLMDeployment is stopped: fits")
    assert ok.max_concurrency > 4
    thin = evaluate(base.with_(gpu_memory_utilization=0.95), node)
    assert thin.verdict == YELLOW
    assert thin.kv_cache_gib > ok.kv_cache_gib  # more util, more KV cache
    assert min(g.left_mib for g in thin.per_gpu) < min(g.left_mib for g in ok.per_gpu)


def test_on_an_empty_a10_the_4b_fits_green_at_085():
    from vramtop.fit.placement import paper_node

    r = evaluate(Candidate(resolve("medgemma-4b-it"), tensor_parallel_size=2, gpu_memory_utilization=0.85,
                           max_model_len=8192), paper_node("4x22515MiB"))
    assert r.verdict == GREEN
    assert r.symbol == "✓" and r.word == "GREEN"


def test_two_replicas_on_their_own_gpus_red_then_one_replica_fits(node):
    c = Candidate(resolve("medgemma-27b-it"), tensor_parallel_size=4, replicas=2, stopped=(REPLICA,),
                  max_model_len=8192)
    r = evaluate(c, node)
    assert r.verdict == RED
    # the seed's autoscaling (min_replicas=2, num_gpus=4) cannot work on a 4-GPU node
    assert r.headline == "only 1 of 2 replicas get 4 free GPU(s) each (4 GPU(s) on demo-a10-node)"
    assert any(s.field == "replicas" and s.value == "1" for s in r.suggestions)


def test_the_running_27b_replica_is_what_vllm_at_util_09_would_hold():
    # the demo's workers hold 20,730 MiB each: 0.9 x 21.99 GiB + context, not 0.95
    from vramtop.fit.placement import paper_node

    r = evaluate(Candidate(resolve("medgemma-27b-it"), tensor_parallel_size=4, max_model_len=8192),
                 paper_node("4x22515MiB"))
    assert r.verdict in (GREEN, YELLOW)
    assert abs(r.per_gpu[0].needed_mib - 20_730) < 1_000
