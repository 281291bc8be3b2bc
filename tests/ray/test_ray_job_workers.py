"""vLLM on Ray without Serve (``vllm serve M --distributed-executor-backend ray``) on a real local
Ray cluster: the ``RayWorkerWrapper`` actors are children of the raylet, and join the instance
of the job's driver only through Ray's records (vramtop/ray/link.py).

The shapes, from vLLM's source: V1's engine core (``vllm/v1/engine/core.py``, titled
``VLLM::EngineCore``) builds the Ray executor (``vllm/v1/executor/ray_distributed_executor.py``),
which calls ``ray.init`` there (``vllm/executor/ray_utils.py``, ``initialize_ray_cluster``) and
creates one ``RayWorkerWrapper`` actor per rank: the engine core is the job's driver and holds no
GPU memory itself. V0's executor (``vllm/executor/ray_distributed_executor.py``) runs in the API
server, whose in-process driver worker is rank 0 and holds memory; ranks 1..N are actors.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from ray_cluster import ray_env
from test_ray_live import poll_until, snapshot_of
from vramtop.analysis.instances import group_instances
from vramtop.ray.poller import RayPoller

pytestmark = pytest.mark.ray

MODEL = "Qwen/Qwen2.5-7B-Instruct"

# The driver: takes its title where vLLM V1 does, joins the cluster, starts one worker actor per
# rank (Ray titles each ``ray::RayWorkerWrapper``), prints their PIDs, and waits to be killed.
_DRIVER = r"""
import json, os, time
if os.environ["TEST_DRIVER_TITLE"]:
    import setproctitle
    setproctitle.setproctitle(os.environ["TEST_DRIVER_TITLE"])
import ray
ray.init(address=os.environ["TEST_GCS"], log_to_driver=False)
from serve_apps import RayWorkerWrapper
workers = [RayWorkerWrapper.options(num_gpus=0).remote("job", r) for r in range(int(os.environ["TEST_RANKS"]))]
print(json.dumps(ray.get([w.pid.remote() for w in workers])), flush=True)
while True:
    time.sleep(3600)
"""

# vLLM's API server: V1 starts the engine core as its child (the driver); V0 is the driver itself.
_API_SERVER = r"""
import json, os, subprocess, sys
driver = os.environ["TEST_DRIVER"]
if not os.environ["TEST_DRIVER_TITLE"]:
    exec(driver)
core = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
print(json.dumps({"core": core.pid, "workers": json.loads(core.stdout.readline())}), flush=True)
core.wait()
"""


def _start(tmp: Path, gcs: str, title: str, ranks: int, tp: int) -> subprocess.Popen:
    """``vllm serve MODEL --tensor-parallel-size tp --distributed-executor-backend ray`` as ps
    shows it (a console script named ``vllm``); ``title``: the engine core's, or "" for V0."""
    script = tmp / "vllm"
    script.write_text(_API_SERVER)
    env = dict(ray_env(), TEST_DRIVER=_DRIVER, TEST_DRIVER_TITLE=title, TEST_GCS=gcs, TEST_RANKS=str(ranks))
    argv = [sys.executable, str(script), "serve", MODEL, "--tensor-parallel-size", str(tp),
            "--distributed-executor-backend", "ray"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)


def test_vllm_ray_executor_workers_join_their_jobs_driver(ray_cluster):
    with tempfile.TemporaryDirectory(prefix="vllm-ray-") as tmp:
        v1 = _start(Path(tmp), ray_cluster.gcs_address, "VLLM::EngineCore", 2, 2)
        try:
            started = json.loads(v1.stdout.readline())
            core, v1_workers = started["core"], started["workers"]
            (Path(tmp) / "v0").mkdir()
            v0 = _start(Path(tmp) / "v0", ray_cluster.gcs_address, "", 1, 2)
            try:
                v0_workers = json.loads(v0.stdout.readline())
                for pid in v1_workers + v0_workers:
                    assert psutil.Process(pid).cmdline()[0].startswith("ray::RayWorkerWrapper")
                    assert psutil.Process(pid).ppid() not in (core, v0.pid)  # the raylet's children
                state = poll_until(RayPoller(ray_cluster.dashboard, timeout=10),
                                   lambda s: {a.pid for a in s.actors} >= set(v1_workers + v0_workers)
                                   and {j.driver_pid for j in s.jobs} >= {core, v0.pid})
                snap = snapshot_of({v1_workers[0]: (0, 15_000), v1_workers[1]: (1, 15_000),
                                    v0.pid: (2, 14_000), v0_workers[0]: (3, 14_000)})
                alone = {i.root_pid: i for i in group_instances(snap)}
                insts = {i.root_pid: i for i in group_instances(dataclasses.replace(snap, ray=state))}
            finally:
                os.killpg(v0.pid, 9)
                v0.wait()
        finally:
            os.killpg(v1.pid, 9)
            v1.wait()
    # Without Ray's records each worker stands alone and says why; nothing is guessed.
    assert "no Serve replica claims" in alone[v1_workers[0]].note
    assert sorted(alone[v0.pid].pids) == [v0.pid]
    # V1: the engine core is the driver and holds nothing, so the instance is rooted at it.
    tp2 = insts[core]
    assert sorted(tp2.pids) == sorted(v1_workers) and tp2.per_gpu_mib == {0: 15_000, 1: 15_000}
    assert tp2.engine == "vllm" and tp2.job is not None and tp2.job.driver_pid == core
    assert tp2.name.startswith(f"Ray job {tp2.job.job.job_id} (driver pid {core}")
    # V0: the API server is the driver and rank 0; its Ray worker joins it.
    api = insts[v0.pid]
    assert sorted(api.pids) == sorted([v0.pid, *v0_workers]) and api.per_gpu_mib == {2: 14_000, 3: 14_000}
    assert api.name == f"vLLM {MODEL}" and api.tp_size == 2 and api.key == f"vllm:{v0.pid}"
