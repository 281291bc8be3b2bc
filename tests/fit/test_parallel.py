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
    # on 48 GiB GPUs a stage's weights outgrow the request; TP 2 within each stage halves them
    small = evaluate(Candidate(llama70, pipeline_parallel_size=2, max_model_len=8192), paper_node("4x48GiB"))
    assert f"{(40 * LAYER + EMBED) / 2 / GIB:.2f} GiB per GPU at TP 2 PP 2" in small.headline
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


# Qwen/Qwen3-30B-A3B and mistralai/Mixtral-8x7B-Instruct-v0.1 config.json (the fields read).
QWEN3_30B_A3B = {
    "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 2048,
    "intermediate_size": 6144, "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
    "vocab_size": 151936, "max_position_embeddings": 40960, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
MIXTRAL_8X7B = {
    "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 4096,
    "intermediate_size": 14336, "num_local_experts": 8, "num_experts_per_tok": 2, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "max_position_embeddings": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}
# By hand, bf16 bytes. Routed experts: layers x experts x (gate, up, down: hidden x moe_intermediate).
QWEN_EXPERTS = 48 * 128 * 3 * 2048 * 768 * 2  # 57,982,058,496
# The rest: per layer q, o (2048 x 4096), k, v (2048 x 512), q/k norms (128 each), two RMSNorms,
# the router (2048 x 128); embed_tokens and lm_head (151936 x 2048 each); the final norm.
QWEN_REST = (48 * (2 * 2048 * 4096 + 2 * 2048 * 512 + 2 * 128 + 2 * 2048 + 2048 * 128)
             + 2 * 151936 * 2048 + 2048) * 2  # 3,082,186,752
MIXTRAL_EXPERTS = 32 * 8 * 3 * 4096 * 14336 * 2  # 90,194,313,216
MIXTRAL_REST = (32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 8 + 2 * 4096) + 2 * 32000 * 4096 + 4096) * 2


def _model(tmp_path, cfg):
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return specs.resolve(str(tmp_path))


def test_moe_experts_split_over_dp_x_tp_ranks_attention_held_by_each_dp_rank(tmp_path):
    qwen = _model(tmp_path, QWEN3_30B_A3B)
    base = Candidate(qwen, tensor_parallel_size=2, max_model_len=8192)
    tp_only = evaluate(base, paper_node("4x48GiB"))
    assert tp_only.ranks[0].weights_bytes == pytest.approx((QWEN_REST + QWEN_EXPERTS) / 2, rel=1e-6)
    # TP 2 x DP 2: attention sharded by TP on each DP rank, experts over all 4 ranks; with
    # expert parallel each rank holds 128 / 4 = 32 whole experts, the same bytes
    for ep in (False, True):
        r = evaluate(base.with_(data_parallel_size=2, enable_expert_parallel=ep), paper_node("4x48GiB"))
        assert len(r.per_gpu) == 4
        assert [k.weights_bytes for k in r.ranks] == pytest.approx([QWEN_REST / 2 + QWEN_EXPERTS / 4] * 2, rel=1e-6)
    assert "EP rank 3 (32 experts)" in r.per_gpu[3].note


def test_expert_parallel_gives_whole_experts_the_first_ranks_taking_the_remainder(tmp_path):
    mixtral = _model(tmp_path, MIXTRAL_8X7B)
    c = Candidate(mixtral, tensor_parallel_size=2, data_parallel_size=3, enable_expert_parallel=True,
                  max_model_len=8192)
    r = evaluate(c, paper_node("6x48GiB"))
    # 8 experts over 6 EP ranks: 8 // 6 = 1 each, the remainder 2 to EP ranks 0 and 1
    assert [g.note for g in r.per_gpu][:3] == ["DP rank 0 TP rank 0 EP rank 0 (2 experts)",
                                               "DP rank 0 TP rank 1 EP rank 1 (2 experts)",
                                               "DP rank 1 TP rank 0 EP rank 2 (1 expert)"]
    assert r.ranks[0].weights_bytes == pytest.approx(MIXTRAL_REST / 2 + MIXTRAL_EXPERTS * 2 / 8, rel=1e-6)
    # the verdict is the heaviest rank's: 48 GiB GPUs hold it, 24 GiB ones do not
    assert r.weights_gib == pytest.approx((MIXTRAL_REST / 2 + MIXTRAL_EXPERTS * 2 / 8) / GIB, abs=0.01)
    assert evaluate(c, paper_node("6x24GiB")).verdict == RED
    # without expert parallel the experts are sharded evenly over the 6 ranks instead
    even = evaluate(c.with_(enable_expert_parallel=False), paper_node("6x48GiB"))
    assert even.ranks[0].weights_bytes == pytest.approx(MIXTRAL_REST / 2 + MIXTRAL_EXPERTS / 6, rel=1e-6)


@pytest.mark.parametrize("flags", [["--tp", "2", "--dp", "2", "--enable-expert-parallel"],
                                   ["-tp", "2", "-dp", "2", "-ep"]], ids=["long", "vllm-short"])
def test_launch_line_passes_expert_parallel_through(capsys, flags):
    # vLLM's own short aliases (-tp, -dp, -ep) as a pasted launch line has them
    code = vramtop_main(["fit", "qwen3-30b-a3b", *flags, "--on", "4x48GiB", "--max-model-len", "8192", "--command"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "--tensor-parallel-size 2" in out and "--data-parallel-size 2 --enable-expert-parallel" in out
