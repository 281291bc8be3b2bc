"""Every failure of `vramtop fit ORG/NAME` is one line saying what to do, exit status 3, no
traceback, and nothing written into the spec cache; the stand-in Hub answers as the real one
does (401 for a repository it will not show to an anonymous caller, 404 with a token, 401/403 on
a gated repository's files, 429, a cut connection)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time

import pytest

from checkpoints import repository
from standin import Blob, Repo

TOKEN = {"HF_TOKEN": "hf_standin_token"}


def one_line_failure(out) -> str:
    assert out.returncode == 3, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.fixture
def qwen(hub):
    hub.repos["Qwen/Qwen3-8B"] = repository("Qwen/Qwen3-8B")
    return hub


def test_a_repository_that_is_not_there_anonymously(qwen, child):
    line = one_line_failure(child.fit("Qwen/Qwen3-8B-Instruct@main"))
    assert line == ("vramtop fit: Qwen/Qwen3-8B-Instruct: no such model on the Hub "
                    "(or private: set HF_TOKEN); closest: Qwen/Qwen3-8B")
    assert not child.spec_cache.exists()


def test_with_a_token_a_missing_repository_is_just_missing(qwen, child):
    line = one_line_failure(child.fit("Qwen/Qwen3-8B-Instruct@main", **TOKEN))
    assert line == "vramtop fit: Qwen/Qwen3-8B-Instruct: no such model on the Hub; closest: Qwen/Qwen3-8B"


def test_a_gated_repository_needs_the_licence_and_a_token(hub, child):
    hub.repos["meta-llama/Llama-3.1-8B-Instruct"] = repository("meta-llama/Llama-3.1-8B-Instruct", gated=True)
    line = one_line_failure(child.fit("meta-llama/Llama-3.1-8B-Instruct@main"))
    assert line == ("vramtop fit: meta-llama/Llama-3.1-8B-Instruct: gated: accept the licence on the "
                    "model page and set HF_TOKEN")
    line = one_line_failure(child.fit("meta-llama/Llama-3.1-8B-Instruct@main", HF_TOKEN="hf_someone_else"))
    assert "gated: accept the licence" in line
    assert not child.spec_cache.exists()
    ok = child.fit("meta-llama/Llama-3.1-8B-Instruct@main", "--json", **TOKEN)
    assert ok.returncode in (0, 1, 2), ok.stderr  # a verdict
    assert json.loads(ok.stdout)["model_source"].startswith(f"{hub.url}/meta-llama/Llama-3.1-8B-Instruct@")


def test_a_private_repository_is_read_with_the_stored_login_token(hub, child, tmp_path):
    hub.repos["acme/private-llama"] = repository("meta-llama/Llama-3.2-1B-Instruct", private=True)
    token_file = tmp_path / "hf-home" / "token"  # where `huggingface-cli login` stores it
    token_file.parent.mkdir(parents=True)
    token_file.write_text(hub.token)
    [spec] = child.resolve("acme/private-llama")
    assert spec["params"] == 1_235_814_400


def test_a_rate_limit(qwen, child):
    qwen.faults[r"^/api/models/"] = "429"
    line = one_line_failure(child.fit("Qwen/Qwen3-8B@main"))
    assert line == ("vramtop fit: Qwen/Qwen3-8B: the Hub is rate limiting this machine (429): wait a "
                    "minute, or set HF_TOKEN")


def test_a_cut_connection_while_reading_headers(qwen, child):
    qwen.faults[r"model-00003-of-00005\.safetensors"] = "cut"
    line = one_line_failure(child.fit("Qwen/Qwen3-8B@main"))
    assert line.startswith("vramtop fit: Qwen/Qwen3-8B: cannot reach http://127.0.0.1:")
    assert line.endswith("offline: pass a local directory, or set HF_ENDPOINT")
    assert not child.spec_cache.exists()


def test_a_stalled_download_ends_at_the_deadline(qwen, child):
    # The client retries a stalled config.json download with back-off for minutes; the whole
    # resolution has one 10 s deadline.
    qwen.faults[r"config\.json"] = "stall"
    started = time.monotonic()
    line = one_line_failure(child.fit("Qwen/Qwen3-8B@main"))
    assert line == ("vramtop fit: Qwen/Qwen3-8B: the Hub did not answer within 10 s; offline: pass a "
                    "local directory, or set HF_ENDPOINT")
    assert time.monotonic() - started < 60  # not the client's minutes of retries
    assert not child.spec_cache.exists()


def test_no_hub_at_all(child):
    line = one_line_failure(child.fit("Qwen/Qwen3-8B@main", HF_ENDPOINT="http://127.0.0.1:9"))
    assert line == ("vramtop fit: Qwen/Qwen3-8B: cannot reach http://127.0.0.1:9; offline: pass a local "
                    "directory, or set HF_ENDPOINT")


def test_offline_mode_without_a_cached_answer(qwen, child):
    line = one_line_failure(child.fit("Qwen/Qwen3-8B@main", HF_HUB_OFFLINE="1"))
    assert line.endswith("HF_HUB_OFFLINE is set; offline: pass a local directory, or set HF_ENDPOINT")
    assert qwen.log == []


def test_a_repository_without_safetensors_or_gguf(hub, child):
    hub.repos["old/bin-only"] = Repo({"config.json": repository("Qwen/Qwen3-8B").files["config.json"],
                                      "pytorch_model.bin": Blob(b"PK", 16_000_000_000)})
    line = one_line_failure(child.fit("old/bin-only"))
    assert line == ("vramtop fit: old/bin-only: no safetensors weights at the top of this repository "
                    "(vLLM loads *.safetensors; .bin checkpoints are not read)")
    hub.repos["old/nothing"] = Repo({"README.md": Blob.of(b"# hi")})
    line = one_line_failure(child.fit("old/nothing"))
    assert line == ("vramtop fit: old/nothing: no config.json, safetensors or GGUF files in this "
                    "repository (vLLM needs config.json and safetensors)")


def test_a_malformed_config_on_the_hub(hub, child):
    repo = repository("Qwen/Qwen3-8B")
    repo.files["config.json"] = Blob.of(b"{not json")
    hub.repos["odd/broken"] = repo
    line = one_line_failure(child.fit("odd/broken"))
    assert line.startswith("vramtop fit: odd/broken/config.json: malformed JSON (")


def test_a_fifo_in_the_spec_cache_is_passed_over(qwen, child):
    """A FIFO where a cached spec goes would hold its reader (the what-if panel's UI thread)
    forever: it is no cache entry, so the name resolves again, and the names offered skip it."""
    [first] = child.resolve("Qwen/Qwen3-8B@main")
    [entry] = child.spec_cache.glob("*.json")
    entry.unlink()
    os.mkfifo(entry)
    os.mkfifo(child.spec_cache / "planted.json")
    [again] = child.resolve("Qwen/Qwen3-8B@main")
    assert again == first and "error" not in again
    names = subprocess.run([sys.executable, "-c", "from vramtop.fit import remote; print(remote.local_names())"],
                           env=child.env, capture_output=True, text=True, timeout=60)
    assert names.stdout.strip() == "['Qwen/Qwen3-8B@main', 'Qwen/Qwen3-8B']", names.stderr


# ---- hostile safetensors files: the header read has vramtop's own bounds --------------------------

def _evil(hub, prefix: bytes, size: int = 16_000_000_000) -> None:
    hub.repos["evil/model"] = Repo({"config.json": repository("Qwen/Qwen3-8B").files["config.json"],
                                    "model.safetensors": Blob(prefix, size)})


def _nothing_kept(child, hub) -> None:
    assert not child.spec_cache.exists()
    assert not list(child.hf_cache.rglob("*.incomplete"))
    assert hub.bytes_served(".safetensors") <= 100_000  # the first read, nothing after it


def test_a_header_length_of_two_to_the_forty_is_refused_before_it_is_read(hub, child):
    _evil(hub, struct.pack("<Q", 2**40) + b'{"a":')
    line = one_line_failure(child.fit("evil/model"))
    assert line == ("vramtop fit: evil/model: model.safetensors: a safetensors header of "
                    "1,099,511,627,776 bytes in a file of 16,000,000,000 (safetensors allows "
                    "100,000,000); not read")
    _nothing_kept(child, hub)


def test_a_header_past_safetensors_limit_is_refused_even_in_a_file_that_big(hub, child):
    _evil(hub, struct.pack("<Q", 150_000_000) + b'{"a":')
    line = one_line_failure(child.fit("evil/model"))
    assert "a safetensors header of 150,000,000 bytes" in line and line.endswith("not read")
    _nothing_kept(child, hub)


def test_a_header_of_garbage(hub, child):
    garbage = b"\xff\xfe{not json at all" * 100
    _evil(hub, struct.pack("<Q", len(garbage)) + garbage)
    line = one_line_failure(child.fit("evil/model"))
    assert line == "vramtop fit: evil/model: model.safetensors: malformed safetensors header (not JSON)"
    _nothing_kept(child, hub)


def test_a_header_naming_no_dtype(hub, child):
    header = json.dumps({"w": {"shape": [4096, 4096], "data_offsets": [0, 8]}}).encode()
    _evil(hub, struct.pack("<Q", len(header)) + header)
    line = one_line_failure(child.fit("evil/model"))
    assert line == "vramtop fit: evil/model: model.safetensors: malformed safetensors header (tensor 'w')"


def test_a_file_server_that_ignores_range_is_read_no_further_than_the_header(qwen, child):
    qwen.faults[r"\.safetensors$"] = "norange"  # 200 and the whole 3 GB shard, for each of them
    [spec] = child.resolve("Qwen/Qwen3-8B@main")
    assert spec["params"] == 8_190_735_360
    shards = [b.size for n, b in qwen.repos["Qwen/Qwen3-8B"].files.items() if n.endswith(".safetensors")]
    # What the server pushed before the client hung up: socket buffers, not gigabytes.
    assert qwen.bytes_served(".safetensors") < sum(shards) / 50
