"""Ollama's /api/ps read from a real `ollama serve` stand-in, its address taken from its env."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

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


def _store(root, models: dict[str, str]):
    """An Ollama model store: a manifest per tag naming its model blob (only what vramtop reads)."""
    for tag, digest in models.items():
        name, _, version = tag.partition(":")
        manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / version
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"layers": [
            {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:0000"},
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"}]}))
    return root


def test_each_runner_shows_the_model_it_serves_found_through_the_servers_store(start_stand_in, tmp_path):
    store = _store(tmp_path / "models", {"llama3.1:8b": "6a0746a1ec1a", "qwen3:30b": "58574f2e94b9"})
    port = free_port()
    server = start_stand_in("/usr/local/bin/ollama serve", body=_ps("2318-11-26T06:00:00Z"), port=port,
                            child_title=f"/usr/local/bin/ollama runner --model {store}/blobs/sha256-58574f2e94b9 --port 40001",
                            env={"OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(store)},
                            content_type="application/json")
    other = start_stand_in(f"/usr/local/bin/ollama runner --model {store}/blobs/sha256-6a0746a1ec1a --port 40002")
    snap = snapshot_of({server.child_pid: (0, 15_000), other.pid: (1, 6_400)})
    lines = {i.root_pid: TelemetryPoller(environ={}).poll(snap).for_instance(i.key).summary
             for i in group_instances(snap)}
    assert lines[server.child_pid] == "ollama: qwen3:30b 14.0 GiB (75 % GPU, stays loaded)"
    assert lines[other.pid].startswith("ollama: llama3.1:8b 6.2 GiB (100 % GPU, ctx 4,096")


def test_match_runners_by_blob_and_the_lone_runner_fallback():
    llama, qwen = ollama.parse_ps(_ps("2318-11-26T06:00:00Z"))
    blobs = {"llama3.1:8b": "sha256-aaa", "qwen3:30b": "sha256-bbb"}

    def blob_of(name):
        return Path("/m/blobs") / blobs[name]

    assert ollama.match_runners((llama, qwen), {"r1": "sha256-bbb", "r2": "sha256-ccc"}, blob_of) == {"r1": qwen}
    assert ollama.runner_blob(["ollama", "runner", "--model", "/m/blobs/sha256-bbb", "--port", "1"]) == "sha256-bbb"
    # no store to read: one runner and one model are each other's; two models stay unmatched
    assert ollama.match_runners((llama,), {"r1": "sha256-x"}, lambda name: None) == {"r1": llama}
    assert ollama.match_runners((llama, qwen), {"r1": "sha256-x"}, lambda name: None) == {}

    def broken(name):
        raise ValueError("malformed manifest")

    assert ollama.match_runners((llama, qwen), {"r1": "sha256-bbb"}, broken) == {}


def test_the_model_store_is_the_servers_own():
    """Ollama's envconfig.Models: ``OLLAMA_MODELS``, else ``$HOME/.ollama/models`` of the server's
    user; with neither known, None (our own default, which paths.ollama_models_dir gives)."""
    assert ollama.models_dir({"OLLAMA_MODELS": "/srv/m", "HOME": "/home/o"}, {}) == Path("/srv/m")
    assert ollama.models_dir({"HOME": "/home/o"}, {"OLLAMA_MODELS": "/ours"}) == Path("/home/o/.ollama/models")
    assert ollama.models_dir(None, {"OLLAMA_MODELS": "/ours"}) == Path("/ours")
    assert ollama.models_dir({}, {}) is None


def test_ollama_is_looked_for_again_as_soon_as_its_runner_comes_or_goes(start_stand_in, fake_nvml):
    """Read live: the poller classifies a grouping's processes once, and a sample at rest hands
    back the same grouping, so the answer must follow a grouping that moved."""
    import subprocess

    from vramtop.sources.live import LiveSource

    runner = start_stand_in("/usr/local/bin/ollama runner --model /m/blobs/sha256-1 --port 0")
    job = subprocess.Popen(["sleep", "600"])
    try:
        fake_nvml.add_process(0, job.pid, 2_000)
        fake_nvml.write()
        source, poller = LiveSource(), TelemetryPoller(environ={}, timeout_s=0.2)
        try:
            assert [poller.poll(source.sample()).ollama for _ in range(3)] == [None] * 3
            fake_nvml.add_process(1, runner.pid, 3_000)
            fake_nvml.write()
            # The node's own Ollama, wherever it listens; the later samples are at rest.
            assert all(poller.poll(source.sample()).ollama is not None for _ in range(3))
            fake_nvml.processes = [p for p in fake_nvml.processes if p.pid != runner.pid]
            fake_nvml.write()
            assert poller.poll(source.sample()).ollama is None
        finally:
            source.close()
    finally:
        job.kill()
        job.wait()
