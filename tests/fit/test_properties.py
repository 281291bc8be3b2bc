"""Properties that must hold for any model and node (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from vramtop.fit import vllm
from vramtop.fit.fields import candidate_from_fields
from vramtop.fit.placement import GpuSlot, NodeView
from vramtop.fit.specs import catalog
from vramtop.fit.verdict import INVALID, Candidate, evaluate

RANK = {"green": 0, "yellow": 1, "red": 2, "invalid": 3}
MIB = 1024**2
MODELS = [s for s in catalog() if s.weight_bytes < 200e9]
models = st.sampled_from(MODELS)
gpu_mib = st.sampled_from([16_384, 22_515, 24_576, 46_068, 81_559])


def node(total: int, free: list[int]) -> NodeView:
    return NodeView("prop", tuple(GpuSlot(i, "g", total, total, min(f, total)) for i, f in enumerate(free)))


@settings(max_examples=150, deadline=None)
@given(models, gpu_mib, st.sampled_from([1, 2, 4]), st.floats(0.3, 0.98),
       st.lists(st.integers(0, 90_000), min_size=4, max_size=4), st.integers(0, 40_000),
       st.sampled_from([None, 4096, 32768]))
def test_more_free_memory_never_worsens_a_vllm_verdict(spec, total, tp, util, free, extra, max_len):
    if spec.heads % tp:
        tp = 1
    if max_len and max_len > spec.max_position:
        max_len = None
    c = Candidate(spec, tensor_parallel_size=tp, gpu_memory_utilization=round(util, 2), max_model_len=max_len)
    before = evaluate(c, node(total, free), suggest=False)
    after = evaluate(c, node(total, [f + extra for f in free]), suggest=False)
    assert RANK[after.verdict] <= RANK[before.verdict]


@settings(max_examples=100, deadline=None)
@given(models, gpu_mib, st.integers(0, 90_000), st.integers(0, 40_000), st.sampled_from([2048, 8192, 32768]))
def test_more_free_memory_never_places_fewer_ollama_layers(spec, total, free, extra, ctx):
    c = Candidate(spec, engine="ollama", num_ctx=min(ctx, spec.max_position))
    before = evaluate(c, node(total, [free]), suggest=False)
    after = evaluate(c, node(total, [free + extra]), suggest=False)
    assert RANK[after.verdict] <= RANK[before.verdict]
    assert after.ollama_plan.layers_on_gpu >= before.ollama_plan.layers_on_gpu


def _cfg(util, max_len=4096, kv="auto", tp=1):
    return vllm.VllmConfig(tp=tp, util=util, max_model_len=max_len, kv_cache_dtype=kv, max_num_seqs=256,
                           max_num_batched_tokens=2048, enforce_eager=False, weights_format=None, dtype="bfloat16")


@settings(max_examples=150, deadline=None)
@given(models, gpu_mib, st.floats(0.05, 0.99), st.floats(0.0, 0.5))
def test_higher_util_never_shrinks_the_kv_cache(spec, total, util, more):
    hi = min(1.0, util + more)
    a = vllm.rank_budget(spec, _cfg(util), 0, total * MIB, total * MIB)
    b = vllm.rank_budget(spec, _cfg(hi), 0, total * MIB, total * MIB)
    assert b.kv_cache_bytes >= a.kv_cache_bytes
    assert b.kv_cache_tokens >= a.kv_cache_tokens
    assert b.max_model_len_that_fits >= a.max_model_len_that_fits


@settings(max_examples=150, deadline=None)
@given(models, st.integers(1, 200_000), st.integers(16, 131_072), st.integers(16, 131_072))
def test_longer_requests_never_raise_concurrency(spec, kv_mib, len_a, len_b):
    short, long_ = sorted((min(len_a, spec.max_position), min(len_b, spec.max_position)))
    layout = vllm.kv_layout(spec, 1, 2)
    blocks = vllm.num_blocks(layout, kv_mib * MIB)
    assert vllm.max_concurrency(layout, blocks, long_, 2048) <= vllm.max_concurrency(layout, blocks, short, 2048)
    assert vllm.request_bytes(layout, long_, 2048) >= vllm.request_bytes(layout, short, 2048)


@settings(max_examples=100, deadline=None)
@given(models, gpu_mib, st.floats(0.5, 0.95))
def test_fp8_kv_cache_never_holds_fewer_tokens(spec, total, util):
    auto = vllm.rank_budget(spec, _cfg(util), 0, total * MIB, total * MIB)
    fp8 = vllm.rank_budget(spec, _cfg(util, kv="fp8"), 0, total * MIB, total * MIB)
    assert fp8.kv_cache_tokens >= auto.kv_cache_tokens


field_text = st.one_of(st.text(max_size=12), st.sampled_from(["", "auto", "0", "-1", "1e9", "0.5", "2", "8k", "q8_0", "fp8", "0,1"]))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["tensor_parallel_size", "gpu_memory_utilization", "max_model_len",
                                        "quantization", "kv_cache_dtype", "max_num_seqs", "num_ctx",
                                        "num_parallel", "replicas", "gpus", "engine", "dtype"]), field_text),
       st.sampled_from(["qwen3-8b", "medgemma-4b", "deepseek-v3", "gpt-oss-20b"]))
def test_any_typed_text_gives_a_verdict_or_field_errors_never_an_exception(fields, model):
    c, errors = candidate_from_fields({**fields, "model": model})
    if c is None:
        assert errors
        return
    r = evaluate(c, node(24_576, [20_000, 24_000]))
    if r.verdict == INVALID:
        assert r.errors and all(isinstance(v, str) and "\n" not in v for v in r.errors.values())
    else:
        assert r.reasons and r.headline


@settings(max_examples=300, deadline=None)
@given(models, st.integers(1, 64), st.sampled_from([1, 2]), st.integers(0, 400_000),
       st.sampled_from([512, 2048, 8192]))
def test_longest_len_is_exactly_the_last_length_that_fits(spec, tp, element, kv_kib, batched):
    layout = vllm.kv_layout(spec, tp, element)
    avail = kv_kib * 1024
    n = vllm.longest_len(layout, avail, batched, spec.max_position)
    if n == 0:
        assert avail <= 0 or vllm.request_bytes(layout, 1, batched) > avail
    else:
        assert vllm.request_bytes(layout, n, batched) <= avail
        assert n == spec.max_position or vllm.request_bytes(layout, n + 1, batched) > avail
