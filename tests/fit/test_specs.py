"""Model specs from the catalog, HF directories, safetensors headers, GGUF files, the Ollama
store, and a size guess; names resolve forgivingly; bad files give one line."""

import json
import struct
import threading

import pytest

from vramtop.fit import specs
from vramtop.fit.specs import SpecError

ISSUE_MODELS = [
    "medgemma-27b-it", "medgemma-4b-it", "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "gemma-3-27b",
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.2-1b", "llama-3.2-3b", "llama-3.3-70b",
    "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b", "qwen3-8b", "qwen3-14b",
    "qwen3-32b", "qwen3-30b-a3b", "mistral-7b", "mistral-small-24b", "mixtral-8x7b", "phi-4",
    "r1-distill-qwen-7b", "r1-distill-qwen-32b", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b",
]


@pytest.mark.parametrize("name", ISSUE_MODELS)
def test_every_model_the_issue_names_is_in_the_catalog_with_its_config_source(name):
    s = specs.resolve(name)
    assert s.source == f"https://huggingface.co/{s.name}/blob/main/config.json"
    assert s.layers > 0 and s.heads % s.kv_heads == 0 or s.is_mla


def test_catalog_params_reproduce_the_verified_bf16_sizes():
    for name, size in [("meta-llama/Llama-3.1-8B-Instruct", 16_060_522_496),
                       ("Qwen/Qwen2.5-7B-Instruct", 15_231_233_024),
                       ("google/medgemma-27b-it", 54_864_813_280)]:
        s = specs.from_catalog(name)
        assert s.weight_bytes == size == 2 * s.params


@pytest.mark.parametrize("typed, expected", [
    ("medgemma-27b", "google/medgemma-27b-it"), ("google/medgemma-27b-it", "google/medgemma-27b-it"),
    ("GOOGLE/MEDGEMMA-27B-IT", "google/medgemma-27b-it"), ("gemma3:12b", "google/gemma-3-12b-it"),
    ("amsaravi/medgemma-4b-it:q8", "google/medgemma-4b-it"), ("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
])
def test_names_resolve_forgivingly(typed, expected):
    assert specs.resolve(typed).name == expected


def test_an_ollama_tag_carries_its_quantization():
    assert specs.resolve("amsaravi/medgemma-27b-it:q8").quant_hint == "q8_0"
    assert specs.resolve("gemma3:12b").quant_hint is None


def test_unknown_names_get_the_closest_matches():
    with pytest.raises(SpecError) as e:
        specs.resolve("medgema-27b")
    assert str(e.value).startswith("unknown model 'medgema-27b'; closest: google/medgemma-27b-it")


def _write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, (dtype, shape, nbytes) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


CONFIG = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "hidden_size": 64,
          "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
          "intermediate_size": 128, "max_position_embeddings": 4096, "torch_dtype": "bfloat16"}


def test_hf_directory_reads_config_and_exact_safetensors_bytes(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    _write_safetensors(tmp_path / "model-00001-of-00002.safetensors",
                       {"a": ("BF16", [100, 64], 12_800), "b": ("BF16", [64, 64], 8_192)})
    _write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"c": ("F32", [64], 256)})
    s = specs.resolve(str(tmp_path))
    assert (s.layers, s.hidden, s.heads, s.kv_heads, s.head_dim, s.max_position) == (2, 64, 4, 2, 16, 4096)
    assert s.weight_bytes == 12_800 + 8_192 + 256
    assert s.params == 100 * 64 + 64 * 64 + 64
    assert s.origin == "hf"


def test_hf_config_with_sliding_layer_types_and_text_config(tmp_path):
    cfg = {"architectures": ["Gemma3ForConditionalGeneration"], "text_config": {
        **CONFIG, "num_hidden_layers": 6, "sliding_window": 512,
        "layer_types": ["sliding_attention"] * 5 + ["full_attention"]}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    s = specs.from_hf_dir(tmp_path)
    assert (s.sliding_window, s.sliding_layers, s.layers) == (512, 5, 6)


@pytest.mark.parametrize("content, why", [
    ("{not json", "malformed config.json"), ("[1, 2]", "not a mapping"),
    (json.dumps({"hidden_size": 64}), "config.json has no usable num_hidden_layers"),
])
def test_malformed_config_is_one_line(tmp_path, content, why):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(SpecError) as e:
        specs.resolve(str(tmp_path))
    assert why in str(e.value) and "\n" not in str(e.value)


def test_malformed_safetensors_header(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", 10) + b"not json!!")
    with pytest.raises(SpecError, match="malformed safetensors header"):
        specs.resolve(str(tmp_path))


def _write_gguf(path):
    gguf = pytest.importorskip("gguf")  # GGUF support is optional (pip install gguf)

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(8192)
    w.add_feed_forward_length(128)
    w.add_file_type(1)
    w.add_token_list([f"t{i}" for i in range(100)])
    np = pytest.importorskip("numpy")
    w.add_tensor("token_embd.weight", np.zeros((100, 64), dtype=np.float16))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gguf_metadata_and_tensor_bytes(tmp_path):
    path = tmp_path / "tiny.gguf"
    _write_gguf(path)
    s = specs.resolve(str(path))
    assert (s.layers, s.hidden, s.heads, s.kv_heads, s.vocab, s.max_position) == (2, 64, 4, 2, 100, 8192)
    assert s.weight_bytes == (100 * 64 + 64 * 64) * 2
    assert s.dtype == "f16" and s.origin == "gguf"


def test_malformed_gguf_is_one_line(tmp_path):
    pytest.importorskip("gguf")
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(SpecError) as e:
        specs.resolve(str(path))
    assert "malformed GGUF" in str(e.value) and "\n" not in str(e.value)


def test_ollama_store_tag_points_at_its_gguf_blob(tmp_path):
    blob = tmp_path / "blobs" / "sha256-abc"
    blob.parent.mkdir(parents=True)
    _write_gguf(blob)
    manifest = tmp_path / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "q8"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:abc"}]}))
    s = specs.from_ollama_store("tiny:q8", tmp_path)
    assert s.origin == "ollama" and s.layers == 2
    assert specs.from_ollama_store("absent:latest", tmp_path) is None


def test_size_guess():
    assert specs.parse_params("27B") == 27_000_000_000
    assert specs.parse_params("350M") == 350_000_000
    g = specs.guess_spec(27_000_000_000, "q8_0")
    assert g.origin == "guess" and g.quant_hint == "q8_0" and g.weight_bytes == 54_000_000_000
    with pytest.raises(SpecError):
        specs.parse_params("big")
    with pytest.raises(SpecError):
        specs.guess_spec(27_000_000_000, "q9_weird")


def _serve(routes):
    """A local HTTP server answering ``routes`` (path -> JSON), in a thread."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = routes.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            if body is not None:
                self.wfile.write(json.dumps(body).encode())

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_running_ollama_server_describes_its_models():
    server = _serve({
        "/api/tags": {"models": [{"name": "medgemma-4b-it:q8", "model": "medgemma-4b-it:q8", "size": 4_968_000_000,
                                  "details": {"quantization_level": "Q8_0"}}]},
        "/api/show": {"details": {"quantization_level": "Q8_0", "family": "gemma3"}, "model_info": {
            "general.architecture": "gemma3", "general.parameter_count": 4_300_079_472,
            "gemma3.block_count": 34, "gemma3.embedding_length": 2560, "gemma3.attention.head_count": 8,
            "gemma3.attention.head_count_kv": 4, "gemma3.attention.key_length": 256,
            "gemma3.context_length": 131072, "gemma3.attention.sliding_window": 1024}},
    })
    try:
        host = f"http://127.0.0.1:{server.server_port}"
        s = specs.from_ollama_api("medgemma-4b-it:q8", host)
        assert (s.layers, s.kv_heads, s.head_dim, s.sliding_layers, s.dtype) == (34, 4, 256, 29, "q8_0")
        assert s.weight_bytes == 4_968_000_000 and s.origin == "ollama"
        assert specs.from_ollama_api("absent:7b", host) is None
    finally:
        server.shutdown()


def test_no_ollama_server_is_no_spec():
    assert specs.from_ollama_api("gemma3:4b", "http://127.0.0.1:9", timeout=0.2) is None


def test_the_ui_threads_cache_only_lookups_never_ask_a_running_ollama():
    from vramtop.fit import remote

    asked = []
    server = _serve({"/api/tags": {"models": []}})
    server.RequestHandlerClass.log_message = lambda self, *a: asked.append(self.path)
    try:
        with remote.cache_only():
            assert specs.from_ollama_api("gemma3:4b", f"http://127.0.0.1:{server.server_port}") is None
        assert asked == []
    finally:
        server.shutdown()


def test_an_ollama_that_drips_or_floods_is_one_line_within_the_deadline():
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    tags = json.dumps({"models": [{"name": "m:7b", "model": "m:7b", "size": 1}]}).encode()

    def serve():
        for answer in ("tags", "drip"):
            conn, _ = listener.accept()
            conn.recv(65536)
            if answer == "tags":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(tags) + tags)
            else:  # /api/show: one byte every 0.2 s, forever as far as the client can tell
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                try:
                    while True:
                        conn.sendall(b" ")
                        time.sleep(0.2)
                except OSError:
                    pass
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(specs.SpecError) as err:
        specs.from_ollama_api("m:7b", f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1.0)
    assert time.monotonic() - started < 3
    assert "could not show" in str(err.value) and "\n" not in str(err.value)
    listener.close()


def test_mixtral_style_experts_are_intermediate_size_wide(tmp_path):
    # mistralai/Mixtral-8x7B-Instruct-v0.1 config.json has no moe_intermediate_size; vLLM's
    # vllm/model_executor/models/mixtral.py builds each expert with config.intermediate_size.
    cfg = {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "num_hidden_layers": 32,
           "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
           "num_key_value_heads": 8, "num_local_experts": 8, "num_experts_per_tok": 2,
           "vocab_size": 32000, "max_position_embeddings": 32768, "tie_word_embeddings": False,
           "torch_dtype": "bfloat16"}
    s = specs.spec_from_config(cfg, "Mixtral-8x7B", "config.json")
    catalog = specs.from_catalog("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert (s.experts, s.experts_per_token, s.moe_intermediate) == (8, 2, 14336)
    assert s.moe_intermediate == catalog.moe_intermediate
    # A config that names its expert width keeps it (Qwen3-30B-A3B: 768 beside intermediate 6144).
    qwen = specs.spec_from_config({**cfg, "num_experts": 128, "num_local_experts": 128,
                                   "moe_intermediate_size": 768, "intermediate_size": 6144}, "q", "c")
    assert qwen.moe_intermediate == 768


def test_a_local_gguf_is_read_from_its_header_without_the_tokenizer_tables(tmp_path):
    # A Qwen-sized vocabulary (151,936 tokens, as in Qwen2.5's GGUF files): the header walk drops
    # the table and keeps its length; the spec is the one the gguf package gives for the whole file.
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "qwen-like.gguf"
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("Qwen-like 0.1B")
    for add, v in ((w.add_block_count, 2), (w.add_embedding_length, 64), (w.add_head_count, 4),
                   (w.add_head_count_kv, 2), (w.add_context_length, 32768),
                   (w.add_feed_forward_length, 128), (w.add_file_type, 1)):
        add(v)
    w.add_token_list([f"tok{i}" for i in range(151_936)])
    w.add_tensor("token_embd.weight", np.zeros((151_936 // 64, 64), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    fast, whole = specs.from_gguf(path), specs.from_gguf_reader(path)
    assert fast == whole
    assert (fast.vocab, fast.name, fast.source) == (151_936, "Qwen-like 0.1B", str(path))


def test_the_hf_cache_is_looked_up_by_its_folder_layout(tmp_path, monkeypatch):
    # huggingface_hub's cache layout: models--ORG--NAME/{refs/main, snapshots/REV/config.json}.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--Acme--Tiny-LM"
    for rev, layers in (("aaaa", 2), ("bbbb", 3)):
        snap = repo / "snapshots" / rev
        snap.mkdir(parents=True)
        (snap / "config.json").write_text(json.dumps({**CONFIG, "num_hidden_layers": layers}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("aaaa")
    s = specs.from_hf_cache("acme/tiny-lm")  # the Hub's names are case-insensitive
    assert (s.name, s.layers, s.origin) == ("Acme/Tiny-LM", 2, "hf")  # the revision main names
    (repo / "refs" / "main").write_text("../../elsewhere")  # not a revision: the newest snapshot
    assert specs.from_hf_cache("Acme/Tiny-LM") is not None
    assert specs.resolve("Acme/Tiny-LM").source.startswith(str(repo / "snapshots"))
    assert specs.from_hf_cache("Acme/absent") is None and specs.from_hf_cache("../x") is None
