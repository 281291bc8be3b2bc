"""Ollama's placement and sizes against hand-worked numbers."""

import pytest

from vramtop.fit import ollama
from vramtop.fit.specs import from_catalog, weight_bytes_as

MIB = 1024**2
GIB = 1024**3


def spec(name):
    return from_catalog(name)


def test_q8_sizes_match_what_the_ollama_library_shows():
    # the seed's figures: medgemma-27b-it:q8 29 GB, medgemma-4b-it:q8 5.0 GB (vision tower stays f16)
    s27, s4 = spec("medgemma-27b"), spec("medgemma-4b")
    assert weight_bytes_as(s27, "q8_0") == int((27_432_406_640 - 423_060_336) * 8.5 / 8 + 423_060_336 * 2)
    assert 29.0e9 < weight_bytes_as(s27, "q8_0") < 30.0e9
    assert 4.9e9 < weight_bytes_as(s4, "q8_0") < 5.05e9


def test_kv_per_layer_and_sliding_window():
    s = spec("google/gemma-3-27b-it")  # 52 sliding (1024) + 10 full, 16 KV heads of 128
    p = ollama.plan(s, {0: 200 * GIB}, quant="q4_k_m", num_ctx=8192, num_parallel=2, kv_cache_type="f16")
    per_token = 2 * 128 * 16 * 2
    expected = 10 * 16384 * per_token + 52 * (2 * 1024 + 512) * per_token
    assert p.kv_cache_bytes == expected


def test_full_attention_layers_are_interleaved_as_gemma_3_lays_them_out():
    """Every sixth layer keeps the whole context: a partial offload (the last layers first) then
    takes a mix of small sliding layers and big full ones, not the full ones alone."""
    s = spec("google/gemma-3-27b-it")
    kv_of_layer = [size - min(sizes) for sizes in [ollama._parts(s, "q4_k_m", 131_072, 8, "f16").layers]
                   for size in sizes]
    big = [i for i, kv in enumerate(kv_of_layer) if kv > 0]
    assert big == [5, 11, 17, 23, 29, 35, 41, 47, 53, 59]
    one_gpu = ollama.plan(s, {0: 40 * GIB}, quant="q4_k_m", num_ctx=131_072, num_parallel=8, kv_cache_type="f16")
    assert not one_gpu.full and one_gpu.layers_on_gpu > 10  # mostly small layers fit beside a few big ones


def test_kv_quantization_only_with_flash_attention():
    gemma = spec("google/gemma-3-4b-it")  # flash attention on by default
    llama = spec("meta-llama/Llama-3.1-8B-Instruct")  # not in Ollama's default list
    assert ollama.kv_type_used(gemma, "q8_0") == "q8_0"
    assert ollama.kv_type_used(llama, "q8_0") == "f16"
    f16 = ollama.plan(gemma, {0: 80 * GIB}, quant="q4_k_m", num_ctx=8192, num_parallel=1, kv_cache_type="f16")
    q8 = ollama.plan(gemma, {0: 80 * GIB}, quant="q4_k_m", num_ctx=8192, num_parallel=1, kv_cache_type="q8_0")
    assert q8.kv_cache_bytes == pytest.approx(f16.kv_cache_bytes * (34 / 32) / 2)


def test_default_num_ctx_by_vram():
    s = spec("google/gemma-3-27b-it")
    assert ollama.default_num_ctx(4 * 22_515, s) == 131_072  # 262144 capped by the model
    assert ollama.default_num_ctx(24_576, s) == 32_768
    assert ollama.default_num_ctx(16_384, s) == 4_096


def test_one_gpu_is_preferred_when_it_holds_everything():
    s = spec("meta-llama/Llama-3.2-3B-Instruct")
    p = ollama.plan(s, {0: 10 * GIB, 1: 20 * GIB}, quant="q4_k_m", num_ctx=4096, num_parallel=1, kv_cache_type="f16")
    assert p.full and p.gpu_layers == {1: 29}


def test_spread_over_gpus_then_partial_then_none():
    s = spec("meta-llama/Llama-3.1-8B-Instruct")
    kw = dict(quant="q8_0", num_ctx=4096, num_parallel=1, kv_cache_type="f16")
    spread = ollama.plan(s, {0: 5 * GIB, 1: 5 * GIB}, **kw)
    assert spread.full and set(spread.gpu_layers) == {0, 1}
    partial = ollama.plan(s, {0: 4 * GIB}, **kw)
    assert 0 < partial.layers_on_gpu < partial.total_layers
    # every GPU gets the graph and the 457 MiB Ollama keeps free, and stays within its free memory
    for g, used in partial.gpu_bytes.items():
        assert used <= 4 * GIB
        assert used >= ollama.MINIMUM_MIB * MIB + partial.graph_bytes
    none = ollama.plan(s, {0: 1 * GIB}, **kw)
    assert none.layers_on_gpu == 0 and not none.gpu_bytes


def test_more_free_memory_never_places_fewer_layers():
    s = spec("Qwen/Qwen2.5-14B-Instruct")
    kw = dict(quant="q4_k_m", num_ctx=8192, num_parallel=1, kv_cache_type="f16")
    counts = [ollama.plan(s, {0: gib * GIB}, **kw).layers_on_gpu for gib in range(1, 16)]
    assert counts == sorted(counts) and counts[-1] == 49
