"""A process whose command line is anyone's bytes (undecodable, control characters, quotes,
kilobytes long) names an instance; the scrape stays valid and its labels short."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter_support import sample_with_servers, seed_scenario
from vramtop.analysis.states import Thresholds
from vramtop.exporter.collector import LatestSnapshot, registry_for
from vramtop.exporter.families import MAX_LABEL_CHARS

# `vllm serve MODEL`, as vLLM's CLI runs it (vllm/entrypoints/cli/serve.py); MODEL is hostile.
MODEL = b'\xff\xfe"}\n# HELP evil\x1b[31m' + b"m" * 4000


def test_a_hostile_command_line_gives_a_valid_scrape_with_short_labels(fake_nvml):
    snapshot = sample_with_servers(fake_nvml, [(["vllm", "serve", MODEL], 20_000)])
    latest = LatestSnapshot(Thresholds(), pid_labels=True)
    latest.publish(snapshot)
    text = generate_latest(registry_for(latest))  # raised UnicodeEncodeError before labels were cleaned
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    (info,) = families["vramtop_instance_info"].samples
    name = info.labels["name"]
    assert name.startswith("vLLM ") and len(name) <= MAX_LABEL_CHARS and name.isprintable()
    assert '"}' in name  # kept as text: the exposition escapes it, nothing reads it as markup or syntax
    assert b"\n# HELP evil" not in text
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_two_servers_of_one_model_on_one_gpu_are_two_series(fake_nvml):
    """Same name, same GPU: the second is '#2', so Prometheus gets two series, not a duplicate."""
    serve = ["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct"]
    snapshot = sample_with_servers(fake_nvml, [(serve, 5_000), (serve, 6_000)])
    latest = LatestSnapshot(Thresholds())
    latest.publish(snapshot)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry_for(latest)).decode())}
    memory = {(s.labels["name"], s.labels["gpus"]): s.value / 2**20
              for s in families["vramtop_instance_memory_used_bytes"].samples}
    assert sorted(memory) == [("vLLM Qwen/Qwen2.5-0.5B-Instruct", "0"), ("vLLM Qwen/Qwen2.5-0.5B-Instruct #2", "0")]
    assert sorted(memory.values()) == [5_000, 6_000]
