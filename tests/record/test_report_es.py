"""The Spanish report writes the fit engine's sentences in Spanish, each with the same figures."""

from __future__ import annotations

import dataclasses
import re

import pytest

from vramtop.fit.verdict import evaluate
from vramtop.ray.demo import DemoRayPoller
from vramtop.report import build_report, parse_candidate
from vramtop.report.es_fit import note, translate
from vramtop.sources.demo import DemoSource

T = 1_700_000_200.0

# Candidates that between them reach every kind of verdict the fit engine gives on the demo node.
CANDIDATES = [
    "amsaravi/medgemma-27b-it:q8,engine=ollama",
    "amsaravi/medgemma-4b-it:q8,engine=ollama",
    "amsaravi/medgemma-27b-it:q8,engine=ollama,stopped=ray:4000",
    "amsaravi/medgemma-4b-it:q8,engine=ollama,stopped=ray:4000,num_ctx=4096",
    "google/medgemma-27b-it,engine=ollama,stopped=ray:4000,num_ctx=131072,num_parallel=4",
    "medgemma-4b-it,tp=2,util=0.85,max_model_len=8192",
    "medgemma-4b-it,tp=2,util=0.85,max_model_len=8192,stopped=ray:4000",
    "medgemma-4b-it,tp=2,util=0.95,max_model_len=8192,stopped=ray:4000",
    "google/medgemma-27b-it,tp=4,util=0.9,max_model_len=131072,stopped=ray:4000",
    "google/medgemma-27b-it,tp=4,util=0.45,stopped=ray:4000",
    "Qwen/Qwen3-8B,tp=4,util=0.05",
    "Qwen/Qwen3-8B,tp=2,replicas=2,stopped=ray:4000",
    # Configurations vLLM or Ollama would refuse (verdict INVALID), one per reason.
    "medgemma-4b-it,gpus=7",
    "medgemma-4b-it,gpus=0+0",
    "medgemma-4b-it,tp=2,gpus=0",
    "medgemma-4b-it,max_model_len=200000",
    "Qwen/Qwen3-8B,tp=3",
    "medgemma-4b-it,stopped=ray:9",
    "medgemma-4b-it,kv_cache_dtype=int4",
    "medgemma-4b-it,quant=zz9",
    "medgemma-4b-it,engine=ollama,tp=2",
    "medgemma-4b-it,engine=ollama,kv_cache_dtype=fp8",
    "medgemma-4b-it,engine=ollama,replicas=2",
]
# ... and on the same node with nothing running: what fits, barely, partly or not at all.
ON_EMPTY = [
    "Qwen/Qwen3-8B,util=0.9,max_model_len=2048",
    "Qwen/Qwen3-8B,util=0.9,max_model_len=8192",
    "Qwen/Qwen3-8B,util=0.9",
    "Qwen/Qwen3-8B,tp=2,replicas=3",
    "google/medgemma-27b-it,tp=4,util=0.99",
    "google/medgemma-27b-it,engine=ollama,num_ctx=131072,num_parallel=5",
    "google/medgemma-27b-it,engine=ollama,num_ctx=131072,num_parallel=6",
    "google/medgemma-27b-it,engine=ollama,num_ctx=131072,num_parallel=8",
]


@pytest.fixture(scope="module")
def node():
    s = DemoSource(clock=lambda: T).sample()
    return dataclasses.replace(s, ray=DemoRayPoller(clock=lambda: T).poll())


def _empty(node):
    gpus = tuple(dataclasses.replace(g, used_mib=0, free_mib=g.total_mib - g.reserved_mib) for g in node.gpus)
    return dataclasses.replace(node, gpus=gpus, gpu_processes=())


def _sentences(node):
    for where, text in [(node, t) for t in CANDIDATES] + [(_empty(node), t) for t in ON_EMPTY]:
        r = evaluate(parse_candidate(text), where)
        yield r.headline
        yield from r.reasons
        yield from (s.text for s in r.suggestions)


def test_every_sentence_the_fit_engine_says_here_has_its_spanish(node):
    missing = sorted({s for s in _sentences(node) if translate(s) is None})
    assert not missing
    for where, texts in ((node, CANDIDATES), (_empty(node), ON_EMPTY)):
        report = build_report(where, [(t, parse_candidate(t)) for t in texts], "es")
        assert "(en inglés)" not in report.to_markdown()


def _figures(text: str) -> list[str]:
    return sorted(re.findall(r"\d[\d,.]*\d|\d", text))


def test_each_spanish_sentence_keeps_the_english_figures(node):
    for sentence in set(_sentences(node)):
        assert _figures(translate(sentence)) == _figures(sentence), sentence


def test_a_sentence_no_template_knows_is_left_to_the_report_to_mark():
    assert translate("the moon is made of VRAM") is None
    assert note("TP rank 3") == "rank TP 3" and note("replica 2 TP rank 0") == "réplica 2, rank TP 0"
    assert note("12 layers") == "12 capas" and note("something new") == "something new"


@pytest.mark.parametrize("text", [
    "medgemma-4b-it,tp=2,stopped=ray:4000,limit_mm_per_prompt=image=2",
    "medgemma-4b-it,tp=2,stopped=ray:4000,limit_mm_per_prompt=image=0",
    "medgemma-4b-it,tp=2,stopped=ray:4000,skip_mm_profiling=yes",
    "qwen3-8b,skip_mm_profiling=yes",
])
def test_the_multimodal_sentences_have_their_spanish_with_the_same_figures(node, text):
    r = evaluate(parse_candidate(text), node)
    said = [s for s in r.reasons if "profile" in s or "encoder" in s]
    assert said, r.reasons
    for sentence in said:
        spanish = translate(sentence)
        assert spanish is not None, sentence
        assert _figures(spanish) == _figures(sentence)
