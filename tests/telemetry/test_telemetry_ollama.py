"""Ollama's /api/ps read from a real `ollama serve` stand-in, its address taken from its env."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from telemetry_support import free_port, snapshot_of
from vramtop.analysis.instances import group_instances
from vramtop.telemetry import ollama
from vramtop.telemetry.model import NOT_REACHABLE, OK
from vramtop.telemetry.poller import TelemetryPoller

GB = 10**9


def _ps(expires_at: str) -> str:
    return json.dumps({"models": [
        {"name": "llama3.1:8b", "model": "llama3.1:8b", "size": 6_654_289_920, "size_vram": 6_654_289_920,
         "digest": "46e0c10c039e", "expires_at": expires_at, "context_length": 4096,
         "details": {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"}},
        {"name": "qwen3:30b", "model": "qwen3:30b", "size": 20 * GB, "size_vram": 15 * GB,
         "digest": "ad815644918f", "expires_at": "2318-11-26T06:00:00.123456789Z",
         "details": {"parameter_size": "30.5B", "quantization_level": "Q4_K_M"}},
    ]})


def test_loaded_models_from_a_real_server_found_through_its_environment(start_stand_in):
    expires = (datetime.now(timezone.utc) + timedelta(minutes=4, seconds=20)).isoformat()
    port = free_port()
    server = start_stand_in("/usr/local/bin/ollama serve", body=_ps(expires), port=port,
                            child_title="/usr/local/bin/ollama runner --model /m/blobs/sha256-6a0746a1ec1a --port 40001",
                            env={"OLLAMA_HOST": f"0.0.0.0:{port}"}, content_type="application/json")
    snap = snapshot_of({server.child_pid: (0, 6_500)})
    (inst,) = group_instances(snap)
    assert inst.engine == "ollama"

    tel = TelemetryPoller(environ={}).poll(snap)  # our own env has no OLLAMA_HOST
    st = tel.ollama
    assert st.status == OK and st.address == f"http://127.0.0.1:{server.port}"
    llama, qwen = st.models
    assert (llama.name, llama.size_mib, llama.vram_mib) == ("llama3.1:8b", 6_654_289_920 // 2**20, 6_654_289_920 // 2**20)
    assert llama.context_length == 4096 and llama.quantization == "Q4_K_M" and llama.parameter_size == "8.0B"
    assert qwen.gpu_share == pytest.approx((15 * GB // 2**20) / (20 * GB // 2**20))
    assert qwen.context_length is None
    line = tel.for_instance(inst.key).summary
    assert line.startswith("ollama: llama3.1:8b 6.2 GiB (100 % GPU, ctx 4,096, unloads in 4 min)")
    assert "qwen3:30b 14.0 GiB (75 % GPU, stays loaded)" in line


def test_unreachable_ollama_is_quiet(start_stand_in):
    runner = start_stand_in("/usr/local/bin/ollama runner --model /m/blobs/sha256-1 --port 0")
    snap = snapshot_of({runner.pid: (0, 3_000)})
    tel = TelemetryPoller(environ={"OLLAMA_HOST": "127.0.0.1:9"}).poll(snap)  # port 9: discard, closed
    assert tel.ollama.status == NOT_REACHABLE and tel.ollama.summary.startswith("ollama: not reachable")
    assert tel.for_instance(group_instances(snap)[0].key).status == NOT_REACHABLE


def test_no_ollama_on_the_node_means_no_request():
    snap = snapshot_of({})
    assert TelemetryPoller(environ={}).poll(snap).ollama is None


@pytest.mark.parametrize("value, url", [
    (None, "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    (":11500", "http://127.0.0.1:11500"),
    ("gpu-box:8080", "http://gpu-box:8080"),
    ("https://ollama.internal", "https://ollama.internal:443"),
    ("http://[::1]:11434/", "http://[::1]:11434"),
    ("[::]:11434", "http://127.0.0.1:11434"),
])
def test_ollama_host_rule(value, url):
    assert ollama.address(value) == url


def test_not_json_is_one_line():
    with pytest.raises(ValueError, match="not JSON"):
        ollama.parse_ps("<html>")
    with pytest.raises(ValueError, match="no 'models' list"):
        ollama.parse_ps('{"error": "x"}')
