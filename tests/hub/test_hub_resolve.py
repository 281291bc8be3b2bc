"""Any Hub repository resolves from its metadata and file headers, with the real huggingface_hub
client talking to the stand-in Hub (see standin.py) in a child process."""

from __future__ import annotations

import json

import pytest

from checkpoints import MODELS, repository
from child import Child
from standin import Blob, Repo, StandInHub, serve_hub
from vramtop.fit import specs

COMPARED = ("params", "weight_bytes", "layers", "hidden", "intermediate", "heads", "kv_heads",
            "head_dim", "vocab", "max_position", "dtype", "tied", "vision_params", "sliding_window",
            "sliding_layers", "kv_lora_rank", "qk_rope_head_dim", "experts", "experts_per_token",
            "moe_intermediate")


@pytest.fixture
def published(hub):
    for repo_id in MODELS:
        hub.repos[repo_id] = repository(repo_id)
    return hub


@pytest.fixture(scope="module")
def catalog_through_the_hub(tmp_path_factory):
    """Every catalog model published on one stand-in Hub and resolved there by one child process
    ("@main" asks the Hub even for a name the catalog knows)."""
    hub = StandInHub()
    for repo_id in MODELS:
        hub.repos[repo_id] = repository(repo_id)
    server = serve_hub(hub)
    try:
        resolved = Child(tmp_path_factory.mktemp("catalog"), hub, None).resolve(
            *(f"{repo_id}@main" for repo_id in MODELS))
    finally:
        server.shutdown()
        server.server_close()
    return hub.url, dict(zip(MODELS, resolved))


def test_every_catalog_model_is_published_on_the_stand_in_hub():
    assert set(MODELS) == set(specs.catalog_names())


@pytest.mark.parametrize("repo_id", MODELS)
def test_every_published_config_resolves_to_its_catalog_entry(catalog_through_the_hub, repo_id):
    url, resolved = catalog_through_the_hub
    spec = resolved[repo_id]
    entry = specs.from_catalog(repo_id)
    assert entry is not None, repo_id
    assert "error" not in spec, spec
    assert {k: spec[k] for k in COMPARED} == {k: getattr(entry, k) for k in COMPARED}
    assert spec["source"].startswith(f"{url}/{repo_id}@")
    assert "safetensors headers" in spec["weights_from"]  # counted, not estimated


def test_only_headers_are_read_and_only_the_shards_vllm_loads(published, child):
    [spec] = child.resolve("mistralai/Mistral-7B-Instruct-v0.3@main")
    assert spec["weight_bytes"] == 14_496_047_104
    repo = published.repos["mistralai/Mistral-7B-Instruct-v0.3"]
    asked = {path.split("/resolve/main/")[-1] for _, path, _ in published.log if "/resolve/" in path}
    # The index's weight_map names the shards; Mistral's consolidated copy is not loaded by vLLM.
    assert asked == {"config.json", "model.safetensors.index.json", *(
        f"model-{k:05d}-of-00003.safetensors" for k in range(1, 4))}
    weights = sum(b.size for n, b in repo.files.items() if n.endswith(".safetensors"))
    served = published.bytes_served(".safetensors")
    assert served <= 3 * 100_000 and served < weights / 10_000  # the first 100 kB of each shard
    assert all(rng and rng.startswith("bytes=0-") for _, path, rng in published.log
               if path.endswith(".safetensors"))


def test_original_subfolder_is_not_read(published, child):
    [spec] = child.resolve("meta-llama/Llama-3.2-1B-Instruct@main")
    assert spec["params"] == 1_235_814_400 and spec["tied"] is True
    assert not any("/original/" in path for _, path, _ in published.log)


def test_second_resolution_is_offline_and_from_the_caches(published, child):
    [first] = child.resolve("Qwen/Qwen3-8B@main")
    snapshots = child.hf_cache / "models--Qwen--Qwen3-8B" / "snapshots"
    assert (next(snapshots.iterdir()) / "config.json").is_file()  # fetched through the HF cache
    published.repos.clear()  # the Hub forgets it, and offline mode forbids asking anyway
    asked = len(published.log)
    [again] = child.resolve("Qwen/Qwen3-8B@main", HF_HUB_OFFLINE="1")
    assert again == first
    assert len(published.log) == asked


def test_a_revision_is_asked_for_as_typed(published, child):
    sha = published.repos["Qwen/Qwen3-8B"].sha
    [spec] = child.resolve(f"Qwen/Qwen3-8B@{sha}")
    assert spec["params"] == 8_190_735_360
    assert any(path.startswith(f"/api/models/Qwen/Qwen3-8B/revision/{sha}") for _, path, _ in published.log)
    [bad] = child.resolve("Qwen/Qwen3-8B@no-such-branch")
    assert bad["error"] == "Qwen/Qwen3-8B: no revision 'no-such-branch' on the Hub (a branch, tag or commit)"


def test_a_new_model_the_catalog_never_heard_of(hub, child):
    # DeepSeek-R1-Distill-Qwen-14B is Qwen2.5-14B's architecture; served from that config's shape.
    from checkpoints import decoder_tensors, sharded

    cfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 5120,
           "intermediate_size": 13824, "num_attention_heads": 40, "num_hidden_layers": 48,
           "num_key_value_heads": 8, "vocab_size": 152064, "max_position_embeddings": 131072,
           "rope_theta": 1000000.0, "sliding_window": 4096, "use_sliding_window": False,
           "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    hub.repos["deepseek-ai/DeepSeek-R1-Distill-Qwen-14B"] = Repo(
        {"config.json": Blob.of(json.dumps(cfg).encode()), **sharded(decoder_tensors(cfg), 4)})
    [spec] = child.resolve("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B")
    assert spec["params"] == 14_770_033_664  # Qwen2.5-14B's count, from the tensor shapes
    assert spec["sliding_layers"] == 0  # use_sliding_window false
    assert spec["max_position"] == 131_072


def test_a_quantized_checkpoint_reads_its_quantization_config(hub, child):
    from checkpoints import config, decoder_tensors, sharded

    cfg = {**config("Qwen/Qwen2.5-7B-Instruct"),
           "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic",
                                   "fmt": "e4m3", "weight_block_size": [128, 128]}}
    tensors = [(n, "F8_E4M3" if n.endswith("proj.weight") else d, s)
               for n, d, s in decoder_tensors(cfg)]
    hub.repos["Qwen/Qwen2.5-7B-Instruct-FP8"] = Repo(
        {"config.json": Blob.of(json.dumps(cfg).encode()), **sharded(tensors, 2)})
    [spec] = child.resolve("Qwen/Qwen2.5-7B-Instruct-FP8")
    assert spec["dtype"] == "fp8"
    assert spec["params"] == 7_615_616_512
    # The projections take one byte a weight, the rest two: between 7.6 and 15.2 GB.
    assert 7_615_616_512 < spec["weight_bytes"] < 15_231_233_024
