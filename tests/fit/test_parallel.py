"""Pipeline and data parallel in the vLLM fit model, from real config.json shapes, against
figures derived by hand from vLLM's rules:

- ``get_pp_indices`` (``vllm/distributed/utils.py``): ``layers // pp`` per stage, the remainder
  one each from the second-to-last stage backwards; the first stage holds the embedding, the
  last the LM head (``PPMissingLayer`` elsewhere, ``vllm/model_executor/models/llama.py``).
- each worker checks its own GPU's free memory (``vllm/v1/worker/gpu_worker.py``) and the
  engine gives every worker the smallest block count (``get_kv_cache_configs``,
  ``vllm/v1/core/kv_cache_utils.py``).
- ranks are numbered TP innermost, then PP, then DP (``vllm/config/parallel.py``); each DP rank
  is an engine core with its own TP × PP workers.
"""

import json

import pytest

from vramtop.cli import main as vramtop_main
from vramtop.fit import specs
from vramtop.fit.placement import GpuSlot, NodeView, paper_node
from vramtop.fit.verdict import GREEN, INVALID, RED, Candidate, evaluate

GIB = 1024**3
MIB = 1024**2

# meta-llama/Llama-3.1-70B config.json (the fields the fit engine reads).
LLAMA_31_70B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8192,
    "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}
# By hand, bf16 bytes: one decoder layer = q, o (8192 x 8192 each) + k, v (8192 x 1024 each)
# + gate, up, down (8192 x 28672 each) + two RMSNorms (8192 each), x 2 bytes.
LAYER = (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672 + 2 * 8192) * 2  # 1,711,308,800
EMBED = 128256 * 8192 * 2  # embed_tokens; lm_head the same size (untied)
KV_PAGE = 16 * 2 * 8 * 128 * 2  # one 16-token block of one layer, all 8 KV heads, bf16: 65,536


@pytest.fixture
def llama70(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_31_70B))
    return specs.resolve(str(tmp_path))


def _node(*sizes_mib, free=None):
    free = free or sizes_mib
    return NodeView("mixed", tuple(GpuSlot(i, f"GPU{i}", s, s, f) for i, (s, f) in
                                   enumerate(zip(sizes_mib, free))))


def test_two_stages_each_hold_half_the_layers_and_one_vocab_matrix(llama70):
    r = evaluate(Candidate(llama70, pipeline_parallel_size=2, max_model_len=8192), paper_node("2x80GiB"))
    assert [g.note for g in r.per_gpu] == ["PP stage 0 TP rank 0", "PP stage 1 TP rank 0"]
    for rank in r.ranks:  # 40 layers + embedding (stage 0) or + LM head (stage 1)
        assert rank.weights_bytes == pytest.approx(40 * LAYER + EMBED, rel=1e-6)
    # one GPU could not hold the model: at PP 1 the weights alone outgrow the request
    assert evaluate(Candidate(llama70, max_model_len=8192), paper_node("1x80GiB")).verdict == RED


def test_uneven_split_follows_get_pp_indices_and_the_kv_cache_follows_the_stage(llama70):
    r = evaluate(Candidate(llama70, pipeline_parallel_size=3, max_model_len=8192), paper_node("3x80GiB"))
    # 80 layers over 3 stages: 26 each, the remainder 2 to stages 1 and 0 -> 27, 27, 26
    expected = [27 * LAYER + EMBED, 27 * LAYER, 26 * LAYER + EMBED]
    assert [k.weights_bytes for k in r.ranks] == pytest.approx(expected, rel=1e-6)
    for k, layers in zip(r.ranks, (27, 27, 26)):  # one block of every layer of the stage at once
        assert k.num_blocks == int(k.kv_cache_bytes // KV_PAGE // layers)
    # only the last stage samples: earlier ones hold no logits in the profile run
    assert r.ranks[0].activation_bytes < r.ranks[2].activation_bytes
    # every worker gets the smallest block count: the verdict's tokens are the tightest stage's
    assert r.kv_cache_tokens == min(k.kv_cache_tokens for k in r.ranks)
    assert r.max_concurrency == pytest.approx(min(k.max_concurrency for k in r.ranks), abs=0.01)


def test_tp_within_each_stage_shards_that_stage(llama70):
    r = evaluate(Candidate(llama70, tensor_parallel_size=2, pipeline_parallel_size=2, max_model_len=8192),
                 paper_node("4x48GiB"))
    assert [g.note for g in r.per_gpu] == ["PP stage 0 TP rank 0", "PP stage 0 TP rank 1",
                                           "PP stage 1 TP rank 0", "PP stage 1 TP rank 1"]
    assert r.ranks[0].weights_bytes == pytest.approx((40 * LAYER + EMBED) / 2, rel=1e-6)


def test_gpus_of_different_sizes_are_each_judged_with_their_own_memory(llama70):
    c = Candidate(llama70, pipeline_parallel_size=2, max_model_len=8192)
    both = evaluate(c, _node(81920, 143360))  # an 80 GiB and a 140 GiB GPU
    assert both.verdict != RED
    small, big = both.ranks
    assert (small.total_bytes, big.total_bytes) == (81920 * MIB, 143360 * MIB)
    same = evaluate(c, paper_node("2x80GiB")).ranks[1]  # stage 1 on an 80 GiB GPU
    # the request is 0.9 x each GPU's own total; nothing else in the stage's budget changes
    assert big.kv_cache_bytes - same.kv_cache_bytes == pytest.approx(0.9 * (143360 - 81920) * MIB, rel=1e-9)
    assert both.kv_cache_tokens == small.kv_cache_tokens  # the smaller GPU bounds both stages
    # a 48 GiB GPU cannot take a stage (40 layers + a vocab matrix are 65.7 GiB): RED, naming it
    short = evaluate(c, _node(81920, 49152))
    assert short.verdict == RED and "weights need" in short.headline
    assert "PP stage 1" in " ".join(short.reasons)


def test_more_stages_than_layers_is_refused(llama70, capsys):
    r = evaluate(Candidate(llama70, pipeline_parallel_size=81), paper_node("64x80GiB"))
    assert r.verdict == INVALID and "80 layers" in r.errors["pipeline_parallel_size"]
    code = vramtop_main(["fit", "llama-3.2-1b", "--pp", "17", "--on", "17x24GiB"])
    err = capsys.readouterr().err
    assert code == 3 and err.count("\n") == 1 and "16 layers" in err


def test_data_parallel_places_an_engine_per_rank_each_checked_on_its_own(llama70):
    c = Candidate(specs.resolve("llama-3.1-8b"), tensor_parallel_size=2, data_parallel_size=2, max_model_len=8192)
    r = evaluate(c, paper_node("4x24GiB"))
    assert r.verdict == GREEN
    assert [g.note for g in r.per_gpu] == ["DP rank 0 TP rank 0", "DP rank 0 TP rank 1",
                                           "DP rank 1 TP rank 0", "DP rank 1 TP rank 1"]
    assert sorted(g.gpu_index for g in r.per_gpu) == [0, 1, 2, 3]
    # each DP rank loads the whole model over its own TP group: the same weights as TP 2 alone
    alone = evaluate(c.with_(data_parallel_size=1), paper_node("2x24GiB"))
    assert r.ranks[0].weights_bytes == alone.ranks[0].weights_bytes
    # three GPUs hold one engine of two, not two
    three = evaluate(c, paper_node("3x24GiB"))
    assert three.verdict == RED and "only 1 of 2 engines" in three.headline
    # a busy GPU fails the second engine's start-up check
    busy = evaluate(c, _node(24576, 24576, 24576, 24576, free=(24576, 24576, 24576, 8192)))
    assert busy.verdict == RED and "GPU 3" in busy.headline
    listed = evaluate(c.with_(gpus=(0, 1, 2)), paper_node("4x24GiB"))
    assert listed.verdict == INVALID and "need 4" in listed.errors["gpus"]


def test_launch_line_passes_pipeline_and_data_parallel_through(capsys):
    code = vramtop_main(["fit", "llama-3.1-70b", "--tp", "2", "--pp", "2", "--dp", "2",
                         "--max-model-len", "8192", "--on", "8x80GiB", "--command"])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 " in out
    assert "--tensor-parallel-size 2" in out and "--pipeline-parallel-size 2" in out
    assert "--data-parallel-size 2" in out
