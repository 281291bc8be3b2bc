"""Cluster mode end to end: a real two-node Ray cluster whose own reporters (the dashboard
agents) read GPUs from the stand-in NVML driver, and ``vramtop`` with no driver of its own.

Each Ray node's processes get ``LD_LIBRARY_PATH`` and a scenario file of their own, so the head
reports the seed's 4x A10 and the worker 2x H100. vramtop itself runs without the stand-in, as
on a laptop: every figure it shows went through Ray's reporter, the dashboard and back.
Both nodes run on this machine, so their PIDs are looked up here and keep their titles.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

import fakenvml
from engine_tree import engine_tree
from ray_cluster import RAY, free_port, kill_session, ray_env
from vramtop.cli import main as vramtop_main
from vramtop.ray.poller import RayPoller

H100_MIB = 81_559
RUNNER_MIB = 30_000


@dataclass
class StandInCluster:
    dashboard: str
    head: fakenvml.Scenario
    worker: fakenvml.Scenario
    labels: tuple[str, str]  # (head, worker) as vramtop names them
    config: str  # a vramtop config that gives a busy dashboard time to answer
    engine: int
    workers: list[int]  # Worker_TP0, Worker_TP1 on the head's GPUs 0 and 1
    runner: int  # on the worker node's GPU 1


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait(what: str, read, timeout: float = 120.0):
    """``read()`` until it returns something true (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if found := read():
                return found
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last error: {last}")


def _start(args: list[str], scenario: fakenvml.Scenario) -> subprocess.Popen:
    """``ray start --block`` in its own session, its processes on the stand-in NVML."""
    return subprocess.Popen([RAY, "start", *args, "--disable-usage-stats", "--block",
                             f"--dashboard-agent-listen-port={free_port()}"],
                            env=scenario.env(base=ray_env()), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _reported(dashboard: str, pids: set[int]) -> list[dict] | None:
    """The node summaries once two nodes report GPUs and every one of ``pids``."""
    summary = _get(dashboard + "/nodes?view=summary")["data"]["summary"]
    seen = {p["pid"] for s in summary for g in s.get("gpus") or [] for p in g.get("processesPids") or []}
    if len(summary) == 2 and all(s.get("gpus") for s in summary) and pids <= seen:
        return summary
    return None


@pytest.fixture(scope="module")
def stand_in_cluster(tmp_path_factory):
    """Its own cluster, not the session's: the session cluster's nodes strip the stand-in on
    purpose, and a node added to it would stay listed (DEAD) in the other Ray tests' states."""
    folder = tmp_path_factory.mktemp("cluster-mode")
    temp_dir = tempfile.mkdtemp(prefix="vtclm")  # short: Ray's socket paths must stay < 108 chars
    started: list[subprocess.Popen] = []
    with engine_tree(2) as (engine, workers), fakenvml.spawn_processes("llama-server") as (runner,):
        head = fakenvml.seed_a10(folder / "head.txt")
        for gpu, pid in enumerate(workers):
            head.add_process(gpu, pid, 20_730)
        head.write()
        worker = fakenvml.Scenario(folder / "worker.txt")
        for used in (2_048, 60_000):
            worker.add_gpu("NVIDIA H100 80GB HBM3", total_mib=H100_MIB, reserved_mib=547, used_mib=used,
                           utilization=17)
        worker.add_process(1, runner, RUNNER_MIB)
        worker.write()
        try:
            dash_port, gcs_port = free_port(), free_port()
            started.append(_start(["--head", "--num-gpus=4", "--num-cpus=1", "--include-dashboard=true",
                                   "--dashboard-host=127.0.0.1", f"--dashboard-port={dash_port}",
                                   f"--port={gcs_port}", f"--ray-client-server-port={free_port()}",
                                   "--object-store-memory=78643200", f"--temp-dir={temp_dir}"], head))
            dashboard = f"http://127.0.0.1:{dash_port}"
            (node,) = _wait("the head node", lambda: _get(dashboard + "/api/v0/nodes")["data"]["result"]["result"])
            # Serve's API answers slowly the first time; after that, within vramtop's timeout.
            _wait("every read of the dashboard", lambda: RayPoller(dashboard, timeout=30).poll().error is None)
            started.append(_start([f"--address={node['node_ip']}:{gcs_port}", "--num-gpus=2", "--num-cpus=1",
                                   "--object-store-memory=78643200"], worker))
            _wait("both reporters' GPUs and processes", lambda: _reported(dashboard, {*workers, runner}))
            nodes = _get(dashboard + "/api/v0/nodes")["data"]["result"]["result"]
            ids = [n["node_id"] for n in sorted(nodes, key=lambda n: not n["is_head_node"])]
            # Both nodes are this machine: one hostname, told apart by the start of their ids.
            labels = tuple(f"{socket.gethostname()} ({i[:8]})" for i in ids)
            config = folder / "config.yaml"
            config.write_text("ray_timeout: 15\n")
            yield StandInCluster(dashboard, head, worker, labels, str(config), engine, workers, runner)
        finally:
            with ThreadPoolExecutor() as pool:  # each session takes seconds to stop: together
                list(pool.map(kill_session, [p.pid for p in started]))
            shutil.rmtree(temp_dir, ignore_errors=True)


def no_driver_env() -> dict[str, str]:
    """vramtop as on a laptop: no NVML library to load, no Ray address but the one given."""
    drop = ("LD_LIBRARY_PATH", fakenvml.SCENARIO_ENV, "RAY_ADDRESS", "RAY_DASHBOARD_ADDRESS")
    return {k: v for k, v in os.environ.items() if k not in drop}


def vramtop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vramtop", *args], env=no_driver_env(),
                          capture_output=True, text=True, timeout=60)


def expected_gpus(cluster: StandInCluster) -> list[tuple]:
    """(node, name, total, used, free) per GPU as Ray's reporter reads the scenarios: NVML's v1
    memory info, whose "used" holds the reserved memory too."""
    mib = fakenvml.MIB
    return [(label, g.name, g.total // mib, (g.used + g.reserved) // mib, g.total // mib - (g.used + g.reserved) // mib)
            for label, scenario in zip(cluster.labels, (cluster.head, cluster.worker)) for g in scenario.gpus]


def check_cluster_json(doc: dict, cluster: StandInCluster) -> None:
    assert doc["source"] == "cluster" and doc["hostname"] == cluster.dashboard and doc["errors"] == []
    gpus = doc["gpus"]
    assert [g["index"] for g in gpus] == list(range(6))
    assert [(g["node"], g["name"], g["total_mib"], g["used_mib"], g["free_mib"]) for g in gpus] == expected_gpus(cluster)
    assert all(g["reserved_mib"] == 0 and g["memory_api"] == "ray" and not g["lost"] for g in gpus)
    assert [g["utilization_pct"] for g in gpus] == [90, 91, 92, 93, 17, 17]
    assert [g["uuid"] for g in gpus[:4]] == [g.uuid for g in cluster.head.gpus]
    # The seed's free memory, through Ray: 32 / 1,256 / 1,254 / 1,364 MiB.
    assert [g["free_mib"] for g in gpus[:4]] == [32, 1_256, 1_254, 1_364]
    # Ray's reporter rounds NVML's bytes down where nvidia-smi rounds up: 23,027 for an A10 of 23,028.
    assert doc["node"]["total_mib"] == 4 * 23_027 + 2 * (H100_MIB - 1)
    assert doc["node"]["free_mib"] == sum(g["free_mib"] for g in gpus)

    procs = [(p["pid"], p["gpu"], p["used_mib"], p["command"], p["visible"]) for p in doc["processes"]]
    assert procs == [(cluster.workers[0], 0, 20_730, "VLLM::Worker_TP0", True),
                     (cluster.workers[1], 1, 20_730, "VLLM::Worker_TP1", True),
                     (cluster.runner, 5, RUNNER_MIB, "llama-server", True)]
    # Found on this machine by their PIDs: the engine with its two workers, and the runner.
    assert [(i["engine"], i["root_pid"], i["per_gpu_mib"]) for i in doc["instances"]] == [
        ("vllm", cluster.engine, {"0": 20_730, "1": 20_730}), ("llama.cpp", cluster.runner, {"5": RUNNER_MIB})]

    ray = doc["ray"]
    assert ray["status"] == "ok" and len(ray["nodes"]) == 2
    assert sorted(len(n["gpus"]) for n in ray["nodes"]) == [2, 4]


@pytest.mark.ray
def test_cluster_once_json_shows_each_nodes_gpus_as_ray_reports_them(stand_in_cluster):
    result = vramtop("--cluster", "--once", "--json", "--ray-address", stand_in_cluster.dashboard,
                     "--config", stand_in_cluster.config)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    check_cluster_json(json.loads(result.stdout), stand_in_cluster)


@pytest.mark.ray
def test_without_a_driver_a_ray_cluster_that_answers_is_shown_instead(stand_in_cluster):
    address = stand_in_cluster.dashboard
    result = vramtop("--once", "--json", "--ray-address", address, "--config", stand_in_cluster.config)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "vramtop: no NVIDIA driver here (the NVIDIA driver's NVML library (libnvidia-ml.so.1) was not found); "
        f"showing the Ray cluster at {address}"]
    check_cluster_json(json.loads(result.stdout), stand_in_cluster)

    text = vramtop("--once", "--ray-address", address, "--config", stand_in_cluster.config).stdout
    head, worker = stand_in_cluster.labels
    assert f"GPU 0 NVIDIA A10 on {head}: used 22,995 + reserved 0 + free 32 = 23,027 MiB" in text
    assert f"GPU 5 NVIDIA H100 80GB HBM3 on {worker}: used 60,546 + reserved 0 + free 21,012 = 81,558 MiB" in text


# -- without a cluster: quick, no Ray started -------------------------------------------------

def test_without_a_driver_or_ray_it_is_still_one_line_and_status_2():
    result = vramtop("--once", "--ray-address", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "NVML library" in line and "not found" in line and "--demo" in line


def test_cluster_once_with_ray_not_found_is_exit_2_and_one_line():
    address = f"http://127.0.0.1:{free_port()}"
    result = vramtop("--cluster", "--once", "--json", "--ray-address", address)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"vramtop: --cluster needs the Ray dashboard at {address}: connection refused"]


@pytest.mark.parametrize("other", [["--demo"], ["--replay", "any.vtrec"], ["--no-ray"]])
def test_cluster_does_not_go_with_demo_replay_or_no_ray(other, capsys):
    with pytest.raises(SystemExit) as done:
        vramtop_main(["--cluster", "--once", *other])
    assert done.value.code == 3 and "--cluster" in capsys.readouterr().err
