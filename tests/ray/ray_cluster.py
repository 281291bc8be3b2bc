"""One real local Ray cluster for the whole session (the ``ray_cluster`` fixture): 4 logical GPUs, its own ports and temp dir.

Started with ``ray start --block`` in a new session, stopped by killing the processes of that
session (never ``ray stop``, which stops every cluster on the machine). Tests deploy and delete
Serve applications over the dashboard's REST API, as an operator's ``serve deploy`` does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).parent
RAY = str(Path(sys.executable).with_name("ray"))
GPUS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "RAY_ADDRESS", "VRAMTOP_FAKE_NVML_SCENARIO", "LD_LIBRARY_PATH")}
    env.update(
        RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", PYTHONPATH=str(HERE),
        # Ray's "replicas that have taken more than Ns to be scheduled" message after 1 s, not 30.
        RAY_SERVE_SLOW_STARTUP_WARNING_S="1", RAY_SERVE_SLOW_STARTUP_WARNING_PERIOD_S="1",
    )
    return env


def session_pids(sid: int) -> list[int]:
    """The processes of one session (what ``ray start`` started, workers included)."""
    out = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                out.append(pid)
        except OSError:
            continue
    return out


def kill_session(sid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        pids = session_pids(sid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and session_pids(sid):
            time.sleep(0.1)
        if not session_pids(sid):
            return


@dataclass
class RayCluster:
    dashboard: str
    gcs_address: str
    temp_dir: str
    head: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    @property
    def sid(self) -> int:
        return self.head.pid  # start_new_session: the leader's PID is the session id

    def http(self, method: str, path: str, body: dict | None = None, timeout: float = 30.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.dashboard + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read()
        return json.loads(text) if text.strip() else None

    def deploy(self, applications: list[dict]) -> None:
        """Declarative deploy of exactly these applications, from scratch: the previous ones are
        deleted first (an in-place update that needs more GPUs would wait on the old replicas)."""
        self.http("PUT", "/api/serve/applications/", {"proxy_location": "Disabled", "applications": []})
        self.wait_for(lambda d: not d.get("applications"), "the previous applications to be deleted")
        self.http("PUT", "/api/serve/applications/", {"proxy_location": "Disabled", "applications": applications})

    def wait_for(self, predicate, what: str, timeout: float = 90.0, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.http("GET", "/api/serve/applications/")
                if predicate(last):
                    return last
            except OSError as exc:
                last = exc
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last answer: {str(last)[:2000]}")

    def add_worker_node(self, gpus: int) -> subprocess.Popen:
        """A second Ray node on this machine with its own logical GPUs (its own session)."""
        proc = subprocess.Popen(
            [RAY, "start", f"--address={self.gcs_address}", f"--num-gpus={gpus}", "--num-cpus=1",
             "--disable-usage-stats", "--object-store-memory=78643200", "--block",
             f"--dashboard-agent-listen-port={free_port()}"],
            env=ray_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc


def _wait_dashboard(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/api/serve/applications/", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the Ray dashboard did not come up")


@pytest.fixture(scope="session")
def ray_cluster():
    temp_dir = tempfile.mkdtemp(prefix="vtray")  # short: Ray's socket paths must stay < 108 chars
    dash_port, gcs_port = free_port(), free_port()
    err = open(os.path.join(temp_dir, "ray-start.err"), "wb")
    head = subprocess.Popen(
        [RAY, "start", "--head", f"--num-gpus={GPUS}", "--num-cpus=2", "--include-dashboard=true",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}", f"--port={gcs_port}",
         f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
         "--disable-usage-stats", "--object-store-memory=100000000", f"--temp-dir={temp_dir}", "--block"],
        env=ray_env(), start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=err,
    )
    cluster = RayCluster(f"http://127.0.0.1:{dash_port}", "", temp_dir, head)
    try:
        _wait_dashboard(cluster.dashboard, head, 120)
        (node,) = cluster.http("GET", "/api/v0/nodes")["data"]["result"]["result"]
        cluster.gcs_address = f"{node['node_ip']}:{gcs_port}"  # the GCS listens on the node's IP
        yield cluster
    finally:
        for w in cluster.workers:
            kill_session(w.pid)
        kill_session(cluster.sid)
        err.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
