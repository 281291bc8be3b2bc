"""GGUF models that are not here: a Hub repository of GGUF files and an Ollama library tag, each
read from its GGUF header by range requests (the header of Qwen2.5-7B is 2.2 MB with its
vocabulary, longer than the first read, so the longer read is exercised too)."""

from __future__ import annotations

import pytest

from checkpoints import config, gguf_blob
from standin import Blob, Repo

QWEN = "Qwen/Qwen2.5-7B-Instruct"
PARAMS = 7_615_616_512  # the safetensors count: the GGUF file holds the same tensors


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gguf")
    return {q: gguf_blob(config(QWEN), q, tmp) for q in ("Q8_0", "Q4_K_M")}


@pytest.fixture
def gguf_repo(hub, ggufs):
    hub.repos["bartowski/Qwen2.5-7B-Instruct-GGUF"] = Repo({
        "README.md": Blob.of(b"# quants"),
        "Qwen2.5-7B-Instruct-Q8_0.gguf": ggufs["Q8_0"],
        "Qwen2.5-7B-Instruct-Q4_K_M.gguf": ggufs["Q4_K_M"],
    })
    return hub


def test_a_hub_gguf_repository_reads_the_named_quant_header_only(gguf_repo, child, ggufs):
    [spec] = child.resolve("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q8_0")
    assert "error" not in spec, spec
    assert (spec["layers"], spec["hidden"], spec["kv_heads"], spec["vocab"]) == (28, 3584, 4, 152064)
    assert spec["params"] == PARAMS and spec["dtype"] == "q8_0"
    data = ggufs["Q8_0"].size - len(ggufs["Q8_0"].prefix)  # the tensor bytes the header lists
    assert 0.999 * data < spec["weight_bytes"] <= data
    served = gguf_repo.bytes_served("Q8_0.gguf")
    assert len(ggufs["Q8_0"].prefix) <= served < 4 * len(ggufs["Q8_0"].prefix)
    assert served < ggufs["Q8_0"].size / 1000
    assert gguf_repo.bytes_served("Q4_K_M.gguf") == 0


def test_without_a_quant_the_q4_k_m_file_is_read_as_ollama_would(gguf_repo, child):
    [spec] = child.resolve("bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert spec["dtype"] == "q4_k_m" and spec["params"] == PARAMS
    assert gguf_repo.bytes_served("Q8_0.gguf") == 0


def test_a_quant_the_repository_lacks(gguf_repo, child):
    [spec] = child.resolve("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q2_K")
    assert spec["error"] == ("bartowski/Qwen2.5-7B-Instruct-GGUF: no Q2_K file in this repository; "
                             "it has Q4_K_M, Q8_0")


def test_an_ollama_library_tag_from_the_registry(registry, child, ggufs):
    registry.add("library/qwen2.5-coder:7b", ggufs["Q4_K_M"],
                 [("application/vnd.ollama.image.template", b"{{ .Prompt }}")])
    [spec] = child.resolve("qwen2.5-coder:7b")
    assert "error" not in spec, spec
    assert spec["origin"] == "ollama" and spec["dtype"] == "q4_k_m" and spec["params"] == PARAMS
    assert spec["source"] == f"{registry.url}/library/qwen2.5-coder:7b (manifest, GGUF header)"
    assert sum(registry.served) < 4 * len(ggufs["Q4_K_M"].prefix)


def test_ollama_library_failures_are_one_line(registry, child, ggufs):
    [missing] = child.resolve("qwen2.5-coder:999b")
    assert missing["error"] == ("qwen2.5-coder:999b: no such tag in the Ollama library; see "
                                "https://ollama.com/library/qwen2.5-coder/tags")
    registry.add("library/qwen2.5-coder:7b", ggufs["Q4_K_M"])
    registry.faults["/cdn/"] = "cut"
    [cut] = child.resolve("qwen2.5-coder:7b")
    assert cut["error"].startswith("qwen2.5-coder:7b: cannot connect from the Ollama registry")
    registry.faults = {"/manifests/": "429"}
    [limited] = child.resolve("qwen2.5-coder:7b")
    assert limited["error"] == ("qwen2.5-coder:7b: the Ollama registry is rate limiting this machine "
                                "(429): wait a minute")
    assert not child.spec_cache.exists()
    registry.add("library/broken:1b", Blob.of(b"not a gguf file at all, only text" * 4))
    registry.faults = {}
    [bad] = child.resolve("broken:1b")
    assert bad["error"].endswith("not a GGUF file (no GGUF magic)")
