"""Real processes and real HTTP servers on loopback standing in for vLLM and Ollama (helpers
and the ``start_stand_in`` fixture, imported by this folder's conftest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from vramtop.snapshot import GpuInfo, GpuProcess, NodeSnapshot
from vramtop.sources.processes import ProcessReader

STAND_IN = Path(__file__).with_name("serving_stand_in.py")
A10_TOTAL_MIB = 23_028


@dataclass
class StandIn:
    proc: subprocess.Popen
    port: int
    child_pid: int
    body: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def serve(self, text: str | bytes) -> None:
        self.body.write_bytes(text.encode() if isinstance(text, str) else text)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_title(pid: int, title: str) -> None:
    """Until ``pid`` shows ``title`` (the stand-in's own argv holds the text before it is set)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if " ".join(a for a in psutil.Process(pid).cmdline() if a).startswith(title):
                return
        except psutil.Error:
            pass
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never showed title {title!r}")


@pytest.fixture
def start_stand_in(tmp_path):
    """Factory: a serving stand-in process (and its engine child), killed with its group after."""
    started: list[subprocess.Popen] = []

    def start(title: str, body: str = "", port: int = 0, child_title: str | None = None,
              env: dict[str, str] | None = None, content_type: str | None = None) -> StandIn:
        path = tmp_path / f"body{len(started)}"
        path.write_text(body)
        argv = [sys.executable, str(STAND_IN), "--title", title, "--body", str(path), "--port", str(port)]
        if child_title:
            argv += ["--child-title", child_title]
        if content_type:
            argv += ["--content-type", content_type]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "SPT_NOENV": "1", **(env or {})})  # keep /proc/PID/environ readable
        started.append(proc)
        line = proc.stdout.readline().split()
        assert line, "stand-in did not start"
        stand_in = StandIn(proc, int(line[0]), int(line[1]), path)
        _wait_title(proc.pid, title)
        if child_title:
            _wait_title(stand_in.child_pid, child_title)
        return stand_in

    yield start
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def snapshot_of(gpu_mib: dict[int, tuple[int, int]], total_mib: int = A10_TOTAL_MIB,
                timestamp: float = 1000.0) -> NodeSnapshot:
    """A node whose GPU processes are real PIDs read through psutil: {pid: (gpu, used MiB)}."""
    hosts, hidden, ancestors, errors = ProcessReader().read(set(gpu_mib))
    gpus = sorted({g for g, _ in gpu_mib.values()})
    used = {g: sum(m for gg, m in gpu_mib.values() if gg == g) for g in gpus}
    return NodeSnapshot(
        timestamp=timestamp, hostname="test", source="test",
        gpus=tuple(GpuInfo(g, "NVIDIA A10", f"GPU-{g}", total_mib, 513, used[g], total_mib - 513 - used[g]) for g in gpus),
        gpu_processes=tuple(GpuProcess(pid, g, mib, host=hosts.get(pid), hidden_reason=hidden.get(pid))
                            for pid, (g, mib) in gpu_mib.items()),
        ancestors=ancestors, errors=tuple(errors),
    )


def vllm_exposition(*, new: bool, model: str, engines: list[dict], cache: dict[str, str]) -> bytes:
    """Prometheus text as vLLM writes it (vLLM uses prometheus_client too): ``new`` is the V1
    naming (kv_cache_usage_perc, an ``engine`` label), else the older gpu_cache_usage_perc.
    Each engine dict: kv, running, waiting, prompt, generation, preemptions."""
    reg = CollectorRegistry()
    labels = ["model_name", "engine"] if new else ["model_name"]
    kv_name = "vllm:kv_cache_usage_perc" if new else "vllm:gpu_cache_usage_perc"
    running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", labels, registry=reg)
    waiting = Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", labels, registry=reg)
    kv = Gauge(kv_name, "KV-cache usage. 1 means 100 percent usage.", labels, registry=reg)
    prompt = Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=reg)
    gen = Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=reg)
    pre = Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", labels, registry=reg)
    Gauge("vllm:time_to_first_token_seconds_bucket_like", "unrelated family", registry=reg).set(3)
    info = Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                 sorted(cache) + (["engine"] if new else []), registry=reg)
    for i, e in enumerate(engines):
        lv = [model, str(i)] if new else [model]
        running.labels(*lv).set(e["running"])
        waiting.labels(*lv).set(e["waiting"])
        kv.labels(*lv).set(e["kv"])
        prompt.labels(*lv).inc(e["prompt"])
        gen.labels(*lv).inc(e["generation"])
        pre.labels(*lv).inc(e["preemptions"])
        info.labels(*([cache[k] for k in sorted(cache)] + ([str(i)] if new else []))).set(1)
    return generate_latest(reg)
