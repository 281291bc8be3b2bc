"""End to end: ``vramtop export`` in a child process on the stand-in NVML driver and a real Ray
Serve replica process tree, scraped over loopback by a real Prometheus server; PromQL answers
the seed node's figures, and the candidate's verdict follows the node when the replica stops."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter_support import (
    INSTANCE_MIB, Prometheus, free_port, needs_prometheus, needs_promtool, replica_tree, scrape, seed_scenario,
    vramtop, wait_for, write_config,
)
from vramtop import config as config_mod
from vramtop.exporter.collector import LatestSnapshot, registry_for
from vramtop.sources.live import LiveSource

MIB = 2**20
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "vramtop.json"


@pytest.fixture
def exporter(tmp_path):
    """Starts ``vramtop export`` on a free loopback port for a scenario; stopped by PID."""
    started = []

    def start(scenario, *extra: str):
        port = free_port()
        proc = vramtop(scenario, "--config", str(write_config(tmp_path)), "export", "--listen", f"127.0.0.1:{port}",
                       "--interval", "0.5", "--no-ray", *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(proc)
        wait_for(lambda: proc.poll() is not None or b"vramtop_gpu_memory_free_bytes{" in scrape(
            f"http://127.0.0.1:{port}/metrics")[1], 60, "the exporter serves the node")
        assert proc.poll() is None, proc.stderr.read().decode()
        return f"127.0.0.1:{port}", proc

    yield start
    for proc in started:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()


@needs_prometheus
def test_prometheus_reads_the_seed_node_and_the_candidate_turns_green_when_the_replica_stops(tmp_path, exporter):
    prom = None
    try:
        with replica_tree() as tree:
            target, _ = exporter(seed_scenario(tmp_path / "scenario.txt", tree))
            prom = Prometheus(tmp_path, target)
            free0 = wait_for(lambda: prom.value('vramtop_gpu_memory_free_bytes{gpu="0"}'), 60,
                             "Prometheus has scraped the exporter")
            assert free0 / MIB == 32
            assert prom.value("sum(vramtop_gpu_memory_free_bytes) / 2^20") == 3_906
            assert prom.value('vramtop_gpu_state{gpu="0", state="critical"}') == 1
            assert prom.value('sum(vramtop_instance_memory_used_bytes{name="medgemma/VLLMDeployment"}) / 2^20') \
                == INSTANCE_MIB == 86_154
            assert prom.value('vramtop_instance_tensor_parallel_size{name="medgemma/VLLMDeployment"}') == 4
            assert prom.value('vramtop_candidate_verdict{candidate="medgemma-4b"}') == 2  # red: 32-1,364 MiB free
            assert prom.value('vramtop_candidate_verdict{candidate="medgemma-27b"}') == 2
            assert prom.value('vramtop_candidate_kv_cache_tokens{candidate="medgemma-4b"}') == 0
            assert prom.query("vramtop_process_memory_used_bytes") == []  # PIDs only when asked
            check_dashboard(prom, scrape(f"http://{target}/metrics")[1].decode())
        # The replica stopped (its process group is gone) and the driver gave its memory back.
        seed_scenario(tmp_path / "scenario.txt", None)
        wait_for(lambda: prom.value('vramtop_candidate_verdict{candidate="medgemma-4b"}') == 0, 30,
                 "the candidate turns green once the replica stopped")
        assert prom.value('vramtop_gpu_memory_free_bytes{gpu="0"}') / MIB == 23_028 - 513
        assert prom.query("vramtop_instance_memory_used_bytes") == []
        assert prom.value('vramtop_candidate_max_model_len_tokens{candidate="medgemma-4b"}') >= 8_192
        assert prom.value('vramtop_candidate_kv_cache_tokens{candidate="medgemma-4b"}') > 8_192
        assert prom.value('vramtop_candidate_gpus{candidate="medgemma-4b"}') == 1
        assert prom.value('up{job="vramtop"}') == 1  # Prometheus's own view of the target
    finally:
        if prom is not None:
            prom.stop()


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def check_dashboard(prom: Prometheus, exposition: str) -> None:
    """Every query of the Grafana dashboard names metrics the exporter serves, runs on a real
    Prometheus, and the panels this node fills (no Ray, no engine metrics here) get data."""
    filled = 0
    for title, expr in dashboard_queries():
        for name in re.findall(r"vramtop_\w+", expr):
            assert f"# HELP {name} " in exposition, f"panel {title!r} reads {name}, which is not exported"
        result = prom.query(expr.replace("$instance", ".*"))
        filled += bool(result)
        if "gpu_" in expr or "candidate_" in expr or "instance_memory" in expr:
            assert result, f"panel {title!r} has no data: {expr}"
    assert filled >= 9


@needs_promtool
def test_promtool_accepts_the_exposition(tmp_path, fake_nvml):
    """Both formats a scrape may ask for, with every family filled: PIDs, candidates."""
    with replica_tree() as tree:
        seed_scenario(fake_nvml.path, tree)
        source = LiveSource()
        try:
            snapshot = source.sample()
        finally:
            source.close()
    cfg = config_mod.load(write_config(tmp_path))
    latest = LatestSnapshot(cfg.thresholds, cfg.candidates, pid_labels=True)
    latest.publish(snapshot)
    registry = registry_for(latest)
    text = generate_latest(registry)
    assert b'vramtop_process_memory_used_bytes{' in text and b'vramtop_candidate_verdict{candidate="medgemma-4b"} 2.0' in text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b""  # no lint warnings either
    # OpenMetrics, as Prometheus asks for it: prometheus_client's strict parser reads it back
    families = {f.name: f for f in text_string_to_metric_families(generate_openmetrics(registry).decode())}
    (sample,) = [s for s in families["vramtop_gpu_memory_free_bytes"].samples if s.labels == {"gpu": "0"}]
    assert sample.value == 32 * MIB


def test_scrape_over_http_negotiates_openmetrics(tmp_path, exporter):
    with replica_tree() as tree:
        target, _ = exporter(seed_scenario(tmp_path / "scenario.txt", tree))
        status, body = scrape(f"http://{target}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and body.rstrip().endswith(b"# EOF")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["vramtop_gpu_memory_used_bytes"].type == "gauge"
    assert families["vramtop_sample_failures"].type == "counter"
