"""What the exporter's tests share: the seed node under a real Ray Serve replica process tree,
a config file with candidates, free loopback ports, and a real Prometheus server.

The replica is a process titled ``ray::ServeReplica:medgemma:VLLMDeployment``: Ray titles an
actor's process ``ray::<actor class name>`` and Serve's replica actor class is
``ServeReplica:<app>:<deployment>`` (the ``(ServeReplica:<app>:<deployment> pid=...)`` prefix of
Ray's own logs, python/ray/serve/_private/replica.py). It starts vLLM's ``VLLM::EngineCore``
with ``VLLM::Worker_TP0..3`` children (``engine_tree.ENGINE``, as vllm/v1/engine/core_client.py
and vllm/v1/executor/multiproc_executor.py title them), so the parentage is real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import fakenvml
from engine_tree import ENGINE

MIB = 1024 * 1024

# The seed's memory per process (MiB), from the seed analysis's nvidia-smi: four workers, the
# engine core on GPU 0 and the replica's own CUDA contexts; 86,154 MiB in all.
WORKER_MIB = 20_730
ENGINE_MIB = {0: 1_234}
REPLICA_MIB = {0: 519, 1: 529, 2: 531, 3: 421}
INSTANCE_MIB = 4 * WORKER_MIB + sum(ENGINE_MIB.values()) + sum(REPLICA_MIB.values())

REPLICA = r"""
import setproctitle, subprocess, sys
setproctitle.setproctitle("ray::ServeReplica:medgemma:VLLMDeployment")
engine = subprocess.Popen([sys.executable, "-c", sys.argv[1], "4"], stdout=subprocess.PIPE, text=True)
print(engine.pid, engine.stdout.readline().strip(), flush=True)
engine.wait()
"""


@dataclass(frozen=True)
class ReplicaTree:
    replica: int
    engine: int
    workers: tuple[int, ...]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def replica_tree() -> Iterator[ReplicaTree]:
    """The seed's replica: ServeReplica -> EngineCore -> Worker_TP0..3, killed as one group."""
    proc = subprocess.Popen([sys.executable, "-c", REPLICA, ENGINE], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    engine, *workers = map(int, proc.stdout.readline().split())
    try:
        yield ReplicaTree(proc.pid, engine, tuple(workers))
    finally:
        stop_tree(proc)


def stop_tree(proc: subprocess.Popen) -> None:
    """Kill the tree's process group (its session, started by this test) and reap the root."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if proc.stdout:
        proc.stdout.close()


def sample_with_servers(fake_nvml: fakenvml.Scenario, servers: list[tuple[list, int]]):
    """One live snapshot of the stand-in node with a real process per ``(argv, MiB)`` on GPU 0
    (nothing else): each runs as ``python -c PROGRAM *argv``, so ``argv`` is its command line as
    the engine's CLI would leave it; all are killed once sampled."""
    from vramtop.sources.live import LiveSource

    procs = [subprocess.Popen([sys.executable, "-c", "import time; print(flush=True); time.sleep(600)", *argv],
                              stdout=subprocess.PIPE) for argv, _ in servers]
    try:
        for proc in procs:
            proc.stdout.readline()
        fake_nvml.processes.clear()
        for proc, (_, mib) in zip(procs, servers):
            fake_nvml.add_process(0, proc.pid, mib)
        fake_nvml.write()
        source = LiveSource()
        try:
            return source.sample()
        finally:
            source.close()
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            proc.stdout.close()


def seed_scenario(path: Path, tree: ReplicaTree | None) -> fakenvml.Scenario:
    """The seed node (GPU 0 free 32 MiB) with the tree's processes, or, without a tree, the same
    GPUs with nothing on them (what is left once the replica stopped)."""
    if tree is None:
        scenario = fakenvml.Scenario(path)
        for _ in range(4):
            scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=0)
        scenario.write()
        return scenario
    scenario = fakenvml.seed_a10(path)
    for gpu, pid in enumerate(tree.workers):
        scenario.add_process(gpu, pid, WORKER_MIB)
    for gpu, mib in ENGINE_MIB.items():
        scenario.add_process(gpu, tree.engine, mib)
    for gpu, mib in REPLICA_MIB.items():
        scenario.add_process(gpu, tree.replica, mib)
    scenario.write()
    return scenario


CANDIDATES_YAML = """\
candidates:
  - name: medgemma-4b
    model: medgemma-4b-it
    engine: vllm
    max_model_len: 8192
  - name: medgemma-27b
    model: medgemma-27b
    engine: ollama
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CANDIDATES_YAML)
    return path


def vramtop(scenario: fakenvml.Scenario, *args: str, **popen) -> subprocess.Popen:
    """``python -m vramtop ARGS`` in a child that loads the stand-in driver and ``scenario``."""
    return subprocess.Popen([sys.executable, "-m", "vramtop", *args], env=scenario.env(), **popen)


def scrape(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None, context=None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(check, timeout: float, what: str):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout:g} s (last: {last!r})")


needs_prometheus = pytest.mark.skipif(shutil.which("prometheus") is None,
                                      reason="the prometheus server is not installed (Debian: apt-get install prometheus)")
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed (Debian: apt-get install prometheus)")


class Prometheus:
    """A real Prometheus server scraping one target every second, on a free loopback port with
    its own data folder; stopped by PID."""

    def __init__(self, tmp_path: Path, target: str) -> None:
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: vramtop\n    static_configs:\n      - targets: ['{target}']\n")
        self.log = open(tmp_path / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        # until then it answers queries with a plain "Service Unavailable"
        try:
            wait_for(lambda: scrape(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200, 60, "Prometheus is ready")
        except BaseException:
            self.stop()
            raise

    def query(self, promql: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = scrape(url)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", doc
        return doc["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value ``promql`` gives now, or None while there is none."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
