"""End to end: the stand-in NVML lists a real vLLM-titled process, the live source reads it,
and the poller reads that instance's metrics from its real API server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from telemetry_support import free_port, vllm_exposition
from vramtop.analysis.instances import group_instances
from vramtop.telemetry import csv_export
from vramtop.telemetry.model import OK
from vramtop.telemetry.poller import TelemetryPoller

CACHE = {"block_size": "16", "cache_dtype": "fp8", "gpu_memory_utilization": "0.85", "num_gpu_blocks": "9000"}


def _serving_qwen(start_stand_in, fake_nvml, *, gpu: int, new: bool, engine: dict):
    """A real `vllm serve Qwen/Qwen3-8B` stand-in whose engine core the stand-in driver lists on
    ``gpu`` with 19,500 MiB, serving one engine's figures in the ``new`` or older metric names."""
    port = free_port()
    server = start_stand_in(f"/usr/local/bin/vllm serve Qwen/Qwen3-8B --port {port}", port=port,
                            child_title="VLLM::EngineCore")
    server.serve(vllm_exposition(new=new, model="Qwen/Qwen3-8B", engines=[engine], cache=CACHE))
    fake_nvml.add_process(gpu, server.child_pid, 19_500)
    fake_nvml.write()
    return server


def test_live_snapshot_to_serving_line_and_csv(fake_nvml, start_stand_in):
    pytest.importorskip("vramtop.sources.nvml", reason="the NVML source is not in this tree yet")
    from vramtop.sources.live import LiveSource

    server = _serving_qwen(start_stand_in, fake_nvml, gpu=2, new=True,
                           engine=dict(kv=0.62, running=9, waiting=4, prompt=100, generation=200, preemptions=2))

    source = LiveSource()
    try:
        snap = source.sample()
    finally:
        source.close()
    (inst,) = [i for i in group_instances(snap) if server.child_pid in i.pids]
    assert inst.root_pid == server.pid and inst.per_gpu_mib == {2: 19_500}

    tel = TelemetryPoller(environ={}).poll(snap).for_instance(inst.key)
    assert tel.status == OK
    total = snap.gpu(2).total_mib
    assert tel.summary == (f"VRAM fixed at {0.85 * total / 1024:.1f} GiB/GPU by gpu_memory_utilization=0.85 · "
                           "KV 62 % · 9 running · 4 waiting · 2 preempted")

    (row,) = [r for r in csv.DictReader(io.StringIO(csv_export.to_csv(snap))) if r["pid"] == str(server.child_pid)]
    assert (row["gpu"], row["engine"], row["role"], row["label"], row["instance"], row["used_mib"], row["command"]) == (
        "2", "vllm", "engine", "EngineCore", inst.key, "19500", "VLLM::EngineCore")


def test_once_json_carries_what_the_engine_reported(fake_nvml, start_stand_in):
    """``vramtop --once --json`` in a child process on the stand-in driver reads the engine's real
    /metrics: the same figures the live view shows (levels; rates need a second read)."""
    server = _serving_qwen(start_stand_in, fake_nvml, gpu=1, new=False,
                           engine=dict(kv=0.41, running=7, waiting=2, prompt=100, generation=200, preemptions=1))
    port = server.port
    result = subprocess.run([sys.executable, "-m", "vramtop", "--once", "--json", "--no-ray"],
                            env=fake_nvml.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    (inst,) = [i for i in doc["instances"] if server.child_pid in i["pids"]]
    tel = inst["telemetry"]
    assert tel["status"] == OK and tel["endpoint"] == f"http://127.0.0.1:{port}/metrics"
    assert (tel["kv_cache_usage"], tel["requests_running"], tel["requests_waiting"], tel["preemptions_total"]) == (
        0.41, 7, 2, 1)
    assert tel["generation_tokens_per_s"] is None  # one read: no rate yet
    assert tel["model_names"] == ["Qwen/Qwen3-8B"]
    assert tel["cache"] == {"gpu_memory_utilization": 0.85, "num_gpu_blocks": 9000, "block_size": 16, "cache_dtype": "fp8"}
    assert doc["telemetry"]["serve"] == [] and doc["telemetry"]["trends"] == []
    # the fit engine's KV blocks for the model on its command line and the config vLLM reports
    from vramtop.fit import specs
    from vramtop.fit.verdict import Candidate, predicted_kv_blocks

    cand = Candidate(specs.resolve("Qwen/Qwen3-8B"), gpu_memory_utilization=0.85, kv_cache_dtype="fp8")
    predicted = predicted_kv_blocks(cand, 23_028 - 513, "NVIDIA A10")
    assert tel["kv_check"] == {"model": "Qwen/Qwen3-8B", "predicted_blocks": predicted, "actual_blocks": 9000,
                               "reason": None, "error_pct": round((predicted - 9000) / 9000 * 100, 2),
                               "vllm_version": None}  # the stand-in server loads no vLLM package
