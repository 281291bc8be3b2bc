"""``vramtop fit --speculative-config``, run as a user runs it (a child process) on paper.

What should move follows vLLM's source. ``SpeculativeConfig`` (vllm/config/speculative.py) maps
the model-specific MTP names to "mtp" and drafts with the target's own MTP layer, infers
"eagle3" from a draft named like an EAGLE-3 head, and needs no model for "ngram". The drafter
shares the target's embedding and LM head ("Detected MTP model. Sharing target model embedding
weights with the draft model", vllm/v1/spec_decode/llm_base_proposer.py), so an MTP draft adds
one decoder layer and its ``eh_proj``. ``KVCacheManager.allocate_slots``
(vllm/v1/core/kv_cache_manager.py) reserves ``num_lookahead_tokens`` more slots a step but never
past ``max_model_len``, and ``FullAttentionSpec.max_memory_usage_bytes``
(vllm/v1/kv_cache_interface.py) counts none: an ordinary attention model's start-up figures do
not move with prompt lookup, while each state layer keeps ``num_speculative_blocks`` more
(``MambaSpec.max_memory_usage_bytes``). The launch line carries the config, and given back it is
judged the same.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest

from vramtop.fit.fields import candidate_from_fields, parse_speculative_config
from vramtop.launch.engine_args import parse

GIB = 1024**3
MTP = '{"method": "mtp", "num_speculative_tokens": 3}'
NGRAM = '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}'
# Qwen/Qwen3.5-27B config.json: 64 layers, every fourth full attention, one MTP layer.
QWEN35_27B = {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5", "text_config": {
    "model_type": "qwen3_5_text", "num_hidden_layers": 64, "hidden_size": 5120, "intermediate_size": 17408,
    "num_attention_heads": 24, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 248320,
    "max_position_embeddings": 262144, "full_attention_interval": 4, "linear_num_key_heads": 16,
    "linear_num_value_heads": 48, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
    "linear_conv_kernel_dim": 4, "mamba_ssm_dtype": "float32", "mtp_num_hidden_layers": 1}}
# yuhuili/EAGLE3-LLaMA3.1-Instruct-8B config.json: one Llama decoder layer over Llama-3.1-8B's
# hidden states, with its own 32,000-token head.
EAGLE3_LLAMA31_8B = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "num_hidden_layers": 1,
                     "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "draft_vocab_size": 32000,
                     "max_position_embeddings": 2048, "torch_dtype": "float16", "tie_word_embeddings": False}


def fit(*args, home):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(home))  # a draft not at hand is never fetched
    return subprocess.run([sys.executable, "-m", "vramtop", "fit", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def fit_json(*args, home):
    done = fit(*args, "--json", home=home)
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def model_dir(tmp_path, name, config):
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    return str(path)


QWEN_RUN = ["--tp", "2", "--quant", "fp8", "--kv-cache-dtype", "fp8", "--enable-prefix-caching",
            "--max-model-len", "262144", "--max-num-seqs", "2", "--max-num-batched-tokens", "8192",
            "--on", "2x32GiB"]


def test_mtp_adds_deepseek_v3s_mtp_layer_per_rank(tmp_path):
    # DeepSeek-V3's MTP layer 61 from its config.json: MLA attention (q_a 7168x1536, q_b
    # 1536x24576, kv_a 7168x576, kv_b 512x32768, o 16384x7168) and 256 routed + 1 shared experts
    # of 3 x 7168 x 2048 in fp8, the router in bf16, eh_proj 14336 -> 7168 in bf16: 11.71 GB,
    # which the repository's 688.6 GB less the 673.2 GB vLLM loads without it, less the layer's
    # copies of the embedding and head (2 x 129280 x 7168 x 2 bytes), also gives (11.73 GB).
    attention = 7168 * 1536 + 1536 * 24576 + 7168 * 576 + 512 * 32768 + 16384 * 7168
    layer = 257 * 3 * 7168 * 2048 + attention + 256 * 7168 * 2 + 14336 * 7168 * 2
    run = ["deepseek-v3", "--tp", "8", "--max-model-len", "32768", "--on", "8x141GiB"]
    plain = fit_json(*run, home=tmp_path)
    mtp = fit_json(*run, "--speculative-config", '{"method": "deepseek_mtp"}', home=tmp_path)
    grown = (mtp["ranks"][0]["weights_gib"] - plain["ranks"][0]["weights_gib"]) * GIB
    assert grown == pytest.approx(layer / 8, rel=0.05)
    assert mtp["speculative_config"] == {"method": "mtp", "num_speculative_tokens": 1, "draft_resolved": True,
                                         "draft_model": None, "draft_attention_layers": 1}
    assert mtp["kv_cache_tokens"] < plain["kv_cache_tokens"] * 61 / 62  # its latent cache beside the 61 layers'
    assert any("MTP layer" in r for r in mtp["reasons"])


def test_prompt_lookup_moves_only_the_state_blocks_of_a_hybrid_model(tmp_path):
    qwen = model_dir(tmp_path, "Qwen3.5-27B", QWEN35_27B)
    plain = fit_json(qwen, *QWEN_RUN, home=tmp_path)
    ngram = fit_json(qwen, *QWEN_RUN, "--speculative-config", NGRAM, home=tmp_path)
    mtp = fit_json(qwen, *QWEN_RUN, "--speculative-config", MTP, home=tmp_path)
    for key in ("weights_gib", "activation_gib", "kv_cache_gib"):
        assert ngram["ranks"][0][key] == plain["ranks"][0][key], key
    # vLLM's groups of 16 layers: the 16 full-attention layers take 168 blocks of 1,568 tokens a
    # 262,144-token request, the 48 state layers (3 groups) 2 blocks each in align mode, 2 + 3
    # with 3 speculative tokens
    per_request = {"plain": 168 + 3 * 2, "ngram": 168 + 3 * 5}
    assert ngram["max_concurrency"] / plain["max_concurrency"] == pytest.approx(
        per_request["plain"] / per_request["ngram"], abs=0.005)
    assert mtp["ranks"][0]["weights_gib"] > plain["ranks"][0]["weights_gib"]  # the MTP layer
    assert mtp["kv_cache_tokens"] < ngram["kv_cache_tokens"]  # and its attention layer in the pool


def test_prompt_lookup_leaves_an_ordinary_attention_model_as_it_was(tmp_path):
    run = ["qwen3-8b", "--on", "1x24GiB", "--max-model-len", "32768"]
    plain = fit_json(*run, home=tmp_path)
    ngram = fit_json(*run, "--speculative-config", NGRAM, home=tmp_path)
    assert {k: ngram[k] for k in ("verdict", "weights_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency")} \
        == {k: plain[k] for k in ("verdict", "weights_gib", "kv_cache_gib", "kv_cache_tokens", "max_concurrency")}
    assert any("lookahead" in r and "no draft weights" in r for r in ngram["reasons"])


def test_an_eagle3_head_counts_its_weights_and_its_attention_layer(tmp_path):
    head = model_dir(tmp_path, "EAGLE3-LLaMA3.1-Instruct-8B", EAGLE3_LLAMA31_8B)
    run = ["llama-3.1-8b", "--on", "1x48GiB", "--max-model-len", "32768"]
    plain = fit_json(*run, home=tmp_path)
    eagle = fit_json(*run, "--speculative-config",
                     json.dumps({"model": head, "num_speculative_tokens": 3}), home=tmp_path)
    assert eagle["speculative_config"]["method"] == "eagle3"  # inferred from the name, as vLLM does
    assert eagle["speculative_config"]["draft_resolved"] and eagle["speculative_config"]["draft_attention_layers"] == 1
    # the head's own weights, estimated from its config: one decoder layer, fc and its embedding
    # and head in 16-bit, at least the layer (4096 x 14336 x 3 + attention 4096 x 6144) in bf16
    grown = (eagle["weights_gib"] - plain["weights_gib"]) * GIB
    assert grown >= (3 * 4096 * 14336 + 4096 * 6144) * 2
    assert eagle["kv_cache_tokens"] < plain["kv_cache_tokens"]
    assert eagle["verdict"] == plain["verdict"] == "green"


def test_a_draft_not_resolved_is_named_and_keeps_the_verdict_yellow_at_best(tmp_path):
    run = ["qwen3-8b", "--on", "1x80GiB", "--max-model-len", "8192"]
    assert fit_json(*run, home=tmp_path)["verdict"] == "green"
    out = fit_json(*run, "--speculative-config",
                   '{"method": "eagle3", "model": "nobody/EAGLE3-not-here", "num_speculative_tokens": 2}',
                   home=tmp_path)
    assert out["verdict"] == "yellow"
    assert out["speculative_config"]["draft_resolved"] is False
    assert "draft not resolved" in out["headline"]


@pytest.mark.parametrize("text, why", [
    ("{bad", "must be JSON"),
    ('{"method": "lookahead", "num_speculative_tokens": 2}', "unknown speculative method 'lookahead'"),
    ('{"method": "ngram"}', "num_speculative_tokens must be a whole number"),
    ('{"method": "mtp", "num_speculative_tokens": 2, "tensor_parallel_size": 2}', "'tensor_parallel_size' is not modelled"),
    ('{"num_speculative_tokens": 3}', "without speculative model"),
])
def test_a_bad_speculative_config_is_one_line_and_exit_3(tmp_path, text, why):
    done = fit("qwen3-8b", "--on", "1x24GiB", "--speculative-config", text, home=tmp_path)
    assert done.returncode == 3
    assert done.stdout == "" and done.stderr.count("\n") == 1 and why in done.stderr
    assert "Traceback" not in done.stderr


def test_the_launch_line_carries_the_config_and_reads_back_the_same(tmp_path):
    qwen = model_dir(tmp_path, "Qwen3.5-27B", QWEN35_27B)
    first = fit_json(qwen, *QWEN_RUN, "--speculative-config", MTP, home=tmp_path)
    argv = first["launch"]["argv"]
    at = argv.index("--speculative-config")
    assert json.loads(argv[at + 1]) == {"method": "mtp", "num_speculative_tokens": 3}
    again = fit_json(*argv[2:], "--on", "2x32GiB", home=tmp_path)  # vllm serve's own flags, given back
    for key in ("verdict", "weights_gib", "kv_cache_tokens", "max_concurrency", "speculative_config"):
        assert again[key] == first[key], key
    assert again["launch"]["text"] == first["launch"]["text"]
    # vramtop launch reads the same line into the same candidate
    words = shlex.split(first["launch"]["text"])
    env = dict(w.split("=", 1) for w in words[:2])
    command = parse(words[2:], env)
    back, errors = candidate_from_fields(dict(command.fields))
    assert back is not None, errors
    assert back.speculative_config == parse_speculative_config(MTP)


def test_the_parser_reads_vllms_spellings():
    assert parse_speculative_config('{"method": "qwen3_next_mtp", "num_speculative_tokens": 2}').method == "mtp"
    assert parse_speculative_config('{"model": "[ngram]", "num_speculative_tokens": 4}').to_engine() == {
        "method": "ngram", "num_speculative_tokens": 4}
    missing = parse_speculative_config('{"model": "org/small-draft", "num_speculative_tokens": 5}',
                                       resolve=lambda name: (_ for _ in ()).throw(OSError(2, "gone")))
    assert (missing.method, missing.unresolved, missing.model) == ("draft_model", True, "org/small-draft")
