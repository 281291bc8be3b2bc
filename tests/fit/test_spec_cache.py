"""A remote model's spec read back from the on-disk spec cache is the spec that was resolved:
the second `vramtop fit ORG/NAME` (offline, from the cache) judges exactly as the first."""

import json
from pathlib import Path

import pytest

from vramtop.fit import remote, specs, vllm
from vramtop.fit.hub import parse_ref
from vramtop.fit.placement import paper_node
from vramtop.fit.verdict import Candidate, evaluate

from test_hybrid_and_quant import QWEN35_27B_TEXT

CONFIGS = Path(__file__).parent.parent / "hub" / "configs"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", ["hybrid", "multimodal"])
def test_a_cached_spec_equals_the_resolved_one_and_judges_the_same(tmp_path, name):
    if name == "hybrid":  # Gated DeltaNet layers: the spec holds a StateShape
        cfg = {"architectures": ["Qwen3_5ForConditionalGeneration"], "text_config": QWEN35_27B_TEXT}
    else:  # a vision tower: the spec holds a VisionSpec (google/gemma-3-27b-it's config.json)
        cfg = json.loads((CONFIGS / "google__gemma-3-27b-it" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    resolved = specs.resolve(str(tmp_path))
    ref = parse_ref("org/model")
    remote._store(ref, resolved)
    again = remote.cached("org/model")
    assert (resolved.state is not None) if name == "hybrid" else (resolved.vision is not None)
    assert again == resolved and hash(again) == hash(resolved)
    node = paper_node("1x80GB")
    first = evaluate(Candidate(model=resolved), node)
    second = evaluate(Candidate(model=again), node)
    assert (second.verdict, second.reasons) == (first.verdict, first.reasons)
    if name == "hybrid":
        assert vllm.state_page_bytes(again, 1, "bfloat16") == vllm.state_page_bytes(resolved, 1, "bfloat16") > 0
