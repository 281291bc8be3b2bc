"""The fit engine's KV blocks beside the ones a running vLLM reports: which config is read from
the instance, and how each part of it moves the prediction."""

from __future__ import annotations

import dataclasses

import pytest

from vramtop.analysis.instances import served_model
from vramtop.fit import specs
from vramtop.fit.verdict import Candidate, predicted_kv_blocks
from vramtop.snapshot import GpuInfo
from vramtop.telemetry.kv_check import KvCheck, kv_check
from vramtop.telemetry.model import CacheConfig, VllmMetrics

A10 = GpuInfo(0, "NVIDIA A10", "GPU-0", 23_028, 513, 0, 22_515)
MODEL = "Qwen/Qwen3-8B"


def metrics(blocks: int | None = 2_000, dtype: str = "auto", block_size: int = 16, util: float = 0.9,
            names: tuple[str, ...] = (MODEL,)) -> VllmMetrics:
    return VllmMetrics("u", model_names=names, cache=CacheConfig(util, blocks, block_size, dtype))


def test_the_served_model_comes_from_the_command_line_before_the_served_name():
    assert served_model(["vllm", "serve", "Qwen/Qwen3-8B", "--port", "8000"]) == "Qwen/Qwen3-8B"
    assert served_model(["python", "-m", "vllm.entrypoints.openai.api_server", "--model=/m/qwen"]) == "/m/qwen"
    assert served_model(["vllm", "serve", "--port", "8000"]) is None
    # --served-model-name hides the model from /metrics; the command line still has it
    check = kv_check(metrics(names=("my-alias",)), 1, A10, ["vllm", "serve", MODEL, "--served-model-name", "my-alias"])
    assert check is not None and check.model == MODEL


def test_the_prediction_is_the_fit_engines_for_the_config_the_instance_reports():
    argv = ["vllm", "serve", MODEL, "--max-num-seqs", "32", "--max-num-batched-tokens", "1024", "--enforce-eager"]
    check = kv_check(metrics(blocks=2_500, util=0.85, dtype="fp8"), 2, A10, argv)
    cand = Candidate(specs.resolve(MODEL), tensor_parallel_size=2, gpu_memory_utilization=0.85, kv_cache_dtype="fp8",
                     max_num_seqs=32, max_num_batched_tokens=1024, enforce_eager=True)
    assert check == KvCheck(MODEL, predicted_kv_blocks(cand, 22_515, "NVIDIA A10"), 2_500)


def test_each_part_of_the_config_moves_the_prediction_the_way_vllm_would():
    base = kv_check(metrics(), 1, A10).predicted_blocks
    assert base > 0
    # fp8 KV halves the bytes per block: twice the blocks (to a block)
    assert kv_check(metrics(dtype="fp8"), 1, A10).predicted_blocks == pytest.approx(2 * base, abs=2)
    # blocks of 32 tokens: half as many
    assert kv_check(metrics(block_size=32), 1, A10).predicted_blocks == pytest.approx(base / 2, abs=1)
    # a larger share of the GPU leaves more for the cache; a smaller activation peak too
    assert kv_check(metrics(util=0.95), 1, A10).predicted_blocks > base
    assert kv_check(metrics(), 1, A10, ["vllm", "serve", MODEL, "--max-num-batched-tokens", "512"]).predicted_blocks > base
    # TP=2 shards the weights and the KV heads: more than twice the blocks per rank
    assert kv_check(metrics(), 2, A10).predicted_blocks > 2 * base


def test_no_check_without_the_figures_it_needs():
    assert kv_check(metrics(blocks=None), 1, A10) is None
    assert kv_check(dataclasses.replace(metrics(), cache=None), 1, A10) is None
    assert kv_check(metrics(names=("no-such/model-anywhere",)), 1, A10) is None
    assert kv_check(metrics(), 1, None) is None
    assert kv_check(metrics(), 1, dataclasses.replace(A10, lost=True)) is None
    assert kv_check(metrics(), 1, A10, ["vllm", "serve", MODEL, "--max-num-seqs", "many"]) is not None  # bad flag: default


def test_the_error_is_signed_against_what_vllm_reports():
    check = KvCheck(MODEL, 1_950, 2_000)
    assert check.error_pct == pytest.approx(-2.5)
    assert check.text == "KV blocks: fit engine 1,950 · vLLM 2,000 (-2.5 %)"


def test_a_config_the_fit_engine_cannot_evaluate_gives_no_prediction_and_why_not_minus_100_percent():
    # A 70B model read as TP=1 on an A10: no room for any KV block in the fit engine, yet vLLM runs
    # (with its real TP, which no process showed), so there is nothing to compare.
    check = kv_check(metrics(blocks=3_000, names=("meta-llama/Llama-3.1-70B-Instruct",)), 1, A10)
    assert check is not None and check.predicted_blocks is None and check.error_pct is None
    assert check.text.startswith("KV blocks: no prediction: with TP=1 on a NVIDIA A10") and "vLLM 3,000" in check.text
    assert "-100" not in check.text
