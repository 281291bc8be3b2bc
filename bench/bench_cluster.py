"""Cluster mode at scale: ``vramtop --cluster`` over a dashboard reporting 128 nodes x 8 GPUs and
2,000 Serve replicas, against the floor of fetching and decoding the same answers.

The dashboard is a stand-in on 127.0.0.1, in a child process of its own (its CPU is not ours),
answering the endpoints the poller reads with the shapes Ray's dashboard sends: Serve's
application details (``ServeInstanceDetails``, ray/serve/schema.py), the state API's nodes,
placement groups and actors (ray/util/state/common.py, one ``data.result.result`` envelope) and
the node summary (``DataOrganizer.get_all_node_summary``, ray/dashboard/modules/node/datacenter.py,
camelCase GPU entries from reporter_models.py). The cluster: 190 deployments of 10 replicas at
0.5 GPU each (two replicas a GPU) and 10 Ray Serve LLM deployments of 10 replicas, each a
placement group of one GPU bundle held by a ``RayWorkerWrapper`` actor; the GPUs run out before
the last 26 LLM replicas are placed, which stay pending. Every poll the reporters' figures move
(memory and utilization), as a live cluster's do.

Measured, as CPU time of the thread that does the work (``time.thread_time`` there, or the
thread's CPU clock read from outside):

- the floor: the bare GETs and ``json.loads`` of every endpoint, no vramtop code;
- one poll (``RayPoller.poll``: GETs, parse), one cluster sample (poll and GPUs), the derived
  tick (instances and the Ray analysis), all off the UI thread;
- the live app headless at 200x60, 1 s interval: CPU of the UI thread from one tick to the next
  (everything the UI thread does in between: handlers, layout, render), and of the sampling
  thread per tick; then keys (down in the process table, ``s`` to sort, ``R`` and down in the Ray
  table) timed from the key event posted to the first frame rendered that shows it.

The app's state directory is a fresh one, so no what-if pins are judged; ``--pins`` runs it
again with the demo's two pins (the side column judges them on every new picture).

    python bench/bench_cluster.py [--ticks 20] [--keys 10] [--pins]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NODES = 128
GPUS_PER_NODE = 8
H100_MIB = 81_559
SHARED_APPS, SHARED_DEPLOYMENTS, SHARED_REPLICAS = 19, 10, 10  # 1,900 replicas at 0.5 GPU
LLM_DEPLOYMENTS, LLM_REPLICAS = 10, 10  # 100 replicas, one GPU bundle each
JOB = "01000000"
PINS = """version: 1
pins:
- model: google/medgemma-4b-it
  tensor_parallel_size: '2'
  gpu_memory_utilization: '0.85'
  max_model_len: '8192'
- model: medgemma-27b-it:q8
  engine: ollama
"""


def _hex(n: int, width: int) -> str:
    return f"{n:0{width}x}"


def _node_id(n: int) -> str:
    return _hex(n + 1, 56)


def _ip(n: int) -> str:
    return f"10.0.{n // 250}.{n % 250 + 1}"


def cluster() -> dict:
    """Every endpoint's document but the node summary's (built per poll: its figures move), and
    the GPU processes that summary lists: (node, gpu) -> [(pid, MiB)]."""
    gpu_slots = [(n, g) for n in range(NODES) for g in range(GPUS_PER_NODE)]
    next_pid = {n: 20_000 for n in range(NODES)}
    on_gpu: dict[tuple[int, int], list[tuple[int, int]]] = {slot: [] for slot in gpu_slots}
    used = {n: {"CPU": 0.0, "GPU": 0.0} for n in range(NODES)}
    actors: list[dict] = []
    pgs: list[dict] = []
    apps: dict[str, dict] = {}
    actor_n = 0

    def actor(cls: str, name: str, node: int | None, pid: int | None, required: dict, pg: str | None = None,
              state: str = "ALIVE") -> str:
        nonlocal actor_n
        actor_n += 1
        actor_id = _hex(actor_n, 32)
        actors.append({"actor_id": actor_id, "class_name": cls, "state": state, "job_id": JOB, "name": name,
                       "node_id": _node_id(node) if node is not None else None, "pid": pid or 0,
                       "ray_namespace": "serve", "serialized_runtime_env": "{}", "required_resources": required,
                       "death_cause": None, "is_detached": True, "placement_group_id": pg,
                       "repr_name": "", "num_restarts": "0", "call_site": None})
        return actor_id

    def pid_on(node: int) -> int:
        next_pid[node] += 7
        return next_pid[node]

    actor("ServeController", "SERVE_CONTROLLER_ACTOR", 0, 4_000, {"CPU": 0.0})
    for n in range(NODES):
        actor("ProxyActor", f"SERVE_PROXY_ACTOR-{_node_id(n)}", n, 4_100, {"CPU": 0.0})

    slot = 0
    for a in range(SHARED_APPS):
        app = f"chat-{a:02d}"
        deployments = {}
        for d in range(SHARED_DEPLOYMENTS):
            dep = f"Model{d}"
            replicas = []
            for r in range(SHARED_REPLICAS):
                node, gpu = gpu_slots[slot // 2]
                slot += 1
                pid = pid_on(node)
                rid = _hex(a * 1_000 + d * 100 + r + 1, 8)
                name = f"SERVE_REPLICA::{app}#{dep}#{rid}"
                actor_id = actor(f"ServeReplica:{app}:{dep}", name, node, pid, {"CPU": 1.0, "GPU": 0.5})
                used[node]["CPU"] += 1.0
                used[node]["GPU"] += 0.5
                on_gpu[node, gpu].append((pid, 38_000))
                replicas.append({"node_id": _node_id(node), "node_ip": _ip(node), "node_instance_id": "",
                                 "actor_id": actor_id, "actor_name": name, "worker_id": _hex(pid, 56),
                                 "log_file_path": f"/serve/replica_{app}_{dep}_{rid}.log", "replica_id": rid,
                                 "state": "RUNNING", "pid": pid, "start_time_s": 1_700_000_000.0 + r})
            deployments[dep] = {
                "name": dep, "status": "HEALTHY", "status_trigger": "CONFIG_UPDATE_COMPLETED", "message": "",
                "deployment_config": {"name": dep, "max_ongoing_requests": 5, "user_config": None,
                                      "autoscaling_config": {"min_replicas": 5, "initial_replicas": None,
                                                             "max_replicas": 12, "target_ongoing_requests": 2.0},
                                      "graceful_shutdown_wait_loop_s": 2.0, "health_check_period_s": 10.0,
                                      "ray_actor_options": {"num_cpus": 1.0, "num_gpus": 0.5}},
                "target_num_replicas": SHARED_REPLICAS, "required_resources": {"CPU": 1, "GPU": 0.5},
                "replicas": replicas}
        apps[app] = {"name": app, "route_prefix": f"/{app}", "docs_path": None, "status": "RUNNING", "message": "",
                     "last_deployed_time_s": 1_700_000_000.0, "source": "declarative",
                     "deployed_app_config": {"name": app, "import_path": f"{app}.serve:app"},
                     "deployments": deployments}

    gpu = slot // 2  # the first GPU the shared replicas left free
    llm_configs, deployments = [], {}
    for d in range(LLM_DEPLOYMENTS):
        model = f"org/model-{d}-8b"
        dep = "LLMServer:" + model.replace("/", "--").replace(".", "_")
        llm_configs.append({"model_loading_config": {"model_id": model},
                            "engine_kwargs": {"tensor_parallel_size": 1, "max_model_len": 8192}})
        replicas = []
        for r in range(LLM_REPLICAS):
            rid = _hex(900_000 + d * 100 + r, 8)
            name = f"SERVE_REPLICA::llm#{dep}#{rid}"
            pg = _hex(len(pgs) + 1, 36)
            if gpu < len(gpu_slots):
                node, g = gpu_slots[gpu]
                gpu += 1
                pid, worker = pid_on(node), pid_on(node)
                actor_id = actor(f"ServeReplica:llm:{dep}", name, node, pid, {f"CPU_group_0_{pg}": 1.0}, pg)
                actor("RayWorkerWrapper", "", node, worker, {f"GPU_group_0_{pg}": 1.0}, pg)
                used[node]["CPU"] += 1.0
                used[node]["GPU"] += 1.0
                on_gpu[node, g].append((worker, 70_000))
                placed = {"node_id": _node_id(node), "node_ip": _ip(node), "pid": pid, "state": "RUNNING",
                          "worker_id": _hex(pid, 56)}
                pg_state, bundle_node = "CREATED", _node_id(node)
            else:
                actor_id = actor(f"ServeReplica:llm:{dep}", name, None, None, {f"CPU_group_0_{pg}": 1.0}, pg,
                                 state="PENDING_CREATION")
                placed = {"state": "STARTING"}
                pg_state, bundle_node = "PENDING", None
            replicas.append({**placed, "actor_id": actor_id, "actor_name": name, "replica_id": rid,
                             "log_file_path": f"/serve/replica_llm_{rid}.log", "start_time_s": 1_700_000_100.0})
            pgs.append({"placement_group_id": pg, "name": name, "creator_job_id": JOB, "state": pg_state,
                        "is_detached": True, "bundles": [{"bundle_id": {"placement_group_id": pg, "bundle_index": 0},
                                                          "node_id": bundle_node,
                                                          "unit_resources": {"CPU": 1.0, "GPU": 1.0}}],
                        "stats": {"scheduling_state": "FINISHED" if bundle_node else "NO_RESOURCES"}})
        pending = sum(1 for r in replicas if r["state"] == "STARTING")
        deployments[dep] = {
            "name": dep, "status": "UPSCALING" if pending else "HEALTHY",
            "status_trigger": "AUTOSCALING" if pending else "CONFIG_UPDATE_COMPLETED",
            "message": (f"Deployment '{dep}' in application 'llm' has {pending} replicas that have taken more than "
                        "30s to be scheduled. This may be due to waiting for the cluster to auto-scale or for a "
                        "runtime environment to be installed. Resources required for each replica: "
                        '[{"CPU": 1.0, "GPU": 1.0}], total resources available: {}.') if pending else "",
            "deployment_config": {"name": dep, "max_ongoing_requests": 64,
                                  "autoscaling_config": {"min_replicas": LLM_REPLICAS, "max_replicas": 16,
                                                         "target_ongoing_requests": 16.0},
                                  "ray_actor_options": {}},
            "target_num_replicas": LLM_REPLICAS, "required_resources": {}, "replicas": replicas}
    apps["llm"] = {"name": "llm", "route_prefix": "/llm", "status": "RUNNING", "message": "",
                   "last_deployed_time_s": 1_700_000_000.0, "source": "declarative",
                   "deployed_app_config": {"name": "llm", "import_path": "ray.serve.llm:build_openai_app",
                                           "args": {"llm_configs": llm_configs}},
                   "deployments": deployments}

    def rows(result: list) -> dict:
        return {"result": True, "msg": "", "data": {"result": {
            "total": len(result), "num_after_truncation": len(result), "num_filtered": 0, "result": result,
            "partial_failure_warning": "", "warnings": None}}}

    nodes = [{"node_id": _node_id(n), "node_ip": _ip(n), "is_head_node": n == 0, "state": "ALIVE",
              "state_message": None, "node_name": f"gpu-{n + 1:03d}", "labels": {},
              "resources_total": {"CPU": 192.0, "GPU": float(GPUS_PER_NODE), "memory": 1.5e12,
                                  "object_store_memory": 2e11, "accelerator_type:H100": 1.0, f"node:{_ip(n)}": 1.0}}
             for n in range(NODES)]
    logical = {_node_id(n): f"{used[n]['CPU']:.1f}/192.0 CPU\n{used[n]['GPU']:.1f}/{GPUS_PER_NODE:.1f} GPU\n"
                            f"0B/1.36TiB memory\n0.0/1.0 accelerator_type:H100\n0B/186.26GiB object_store_memory"
               for n in range(NODES)}
    serve = {"controller_info": {"node_id": _node_id(0), "node_ip": _ip(0), "actor_id": _hex(1, 32),
                                 "actor_name": "SERVE_CONTROLLER_ACTOR", "worker_id": _hex(1, 56),
                                 "log_file_path": "/serve/controller.log"},
             "proxy_location": "EveryNode", "http_options": {"host": "0.0.0.0", "port": 8000},
             "proxies": {_node_id(n): {"node_id": _node_id(n), "node_ip": _ip(n), "actor_id": _hex(2 + n, 32),
                                       "actor_name": f"SERVE_PROXY_ACTOR-{_node_id(n)}", "status": "HEALTHY"}
                         for n in range(NODES)},
             "deploy_mode": "MULTI_APP", "applications": apps, "target_capacity": None}
    return {"serve": serve, "nodes": rows(nodes), "pgs": rows(pgs), "actors": rows(actors), "logical": logical,
            "on_gpu": on_gpu}


def node_summary(c: dict, turn: int) -> dict:
    """The reporters' picture at poll ``turn``: memory and utilization move a little each time."""
    summary = []
    for n in range(NODES):
        gpus = []
        for g in range(GPUS_PER_NODE):
            procs = [{"pid": pid, "gpuMemoryUsage": mib + (turn * 7 + pid) % 64, "gpuUtilization": None}
                     for pid, mib in c["on_gpu"][n, g]]
            gpus.append({"index": g, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{n:04x}{g:04x}-0000-0000-0000",
                         "utilizationGpu": (turn * 13 + n + g) % 100, "memoryTotal": H100_MIB,
                         "memoryUsed": sum(p["gpuMemoryUsage"] for p in procs) + 527,
                         "processesPids": procs, "powerMw": 400_000, "temperatureC": 60})
        summary.append({"now": 1_700_000_000.0 + turn, "hostname": f"gpu-{n + 1:03d}", "ip": _ip(n),
                        "cpus": [192, 96], "mem": [1.6e12, 1.2e12, 25.0, 4e11], "gpus": gpus, "tpus": [],
                        "raylet": {"nodeId": _node_id(n), "nodeManagerAddress": _ip(n), "state": "ALIVE",
                                   "nodeManagerHostname": f"gpu-{n + 1:03d}", "isHeadNode": n == 0,
                                   "numWorkers": 20, "startTimeMs": "1700000000000"}})
    return {"result": True, "msg": "Node summary fetched.",
            "data": {"summary": summary, "nodeLogicalResources": c["logical"]}}


def serve() -> None:
    """The stand-in dashboard (run as a child): prints its port, answers until killed."""
    c = cluster()
    fixed = {"/api/serve/applications/": json.dumps(c["serve"]).encode(),
             "/api/ray/version": json.dumps({"version": "5", "ray_version": "2.60.0", "ray_commit": "x"}).encode(),
             "/api/v0/nodes": json.dumps(c["nodes"]).encode(),
             "/api/v0/placement_groups": json.dumps(c["pgs"]).encode(),
             "/api/v0/actors": json.dumps(c["actors"]).encode(),
             "/api/jobs/": b"[]"}
    summaries = [json.dumps(node_summary(c, t)).encode() for t in range(4)]
    turn = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/nodes":
                turn[0] += 1
                body = summaries[turn[0] % len(summaries)]
            else:
                body = fixed.get(path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- measuring --------------------------------------------------------------------------------

PATHS = None  # filled from the poller's own constants in main()


def floor_ms(address: str, repeat: int) -> tuple[float, int]:
    """Median CPU ms of the bare GETs and json.loads of every endpoint; the bytes fetched."""
    times, size = [], 0
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(repeat + 1):
        t0, size = time.thread_time(), 0
        for path in PATHS:
            with opener.open(address + path, timeout=30) as r:
                body = r.read()
            size += len(body)
            json.loads(body)
        times.append((time.thread_time() - t0) * 1000)
    return statistics.median(times[1:]), size


def median_cpu_ms(fn, repeat: int) -> tuple[float, float]:
    """(median, worst) thread CPU ms of ``fn`` over ``repeat`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        times.append((time.thread_time() - t0) * 1000)
    return statistics.median(times), max(times)


def thread_cpu_s(ident: int) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(ident))


async def run_app(address: str, ticks: int, keys: int, pins: bool = False) -> dict:
    """The live app in cluster mode, headless: per-tick CPU of the UI and sampling threads, and
    key latencies to the first frame that shows the key (none with ``keys`` 0). Its state
    directory is a new one: with ``pins``, holding the demo's two pins."""
    os.environ["XDG_STATE_HOME"] = state = tempfile.mkdtemp(prefix="vramtop-bench-")
    if pins:
        os.makedirs(os.path.join(state, "vramtop"))
        with open(os.path.join(state, "vramtop", "whatif.yaml"), "w") as f:
            f.write(PINS)
    from vramtop.app import VramtopApp
    from vramtop.config import Config
    from vramtop.sources.feed import open_feed

    class Timed:
        """The cluster source, noting which thread samples and its CPU clock when it starts."""

        def __init__(self, inner) -> None:
            self.inner, self.name, self.carries_ray = inner, inner.name, True
            self.began: tuple[int, float] | None = None

        def sample(self):
            self.began = (threading.get_ident(), time.thread_time())
            return self.inner.sample()

        def close(self) -> None:
            self.inner.close()

    class Measured(VramtopApp):
        """The app, with each rendered frame timestamped (the one addition: ``_display``)."""

        waiting = None  # (posted at, condition) of the key in flight
        latencies: list[float] = []

        def _display(self, screen, renderable) -> None:
            super()._display(screen, renderable)
            if renderable is not None and self.waiting is not None and self.waiting[1]():
                self.latencies.append((time.perf_counter() - self.waiting[0]) * 1000)
                self.waiting = None

    cfg = Config(interval=1.0, ray_address=address, ray_timeout=30.0)
    feed = open_feed(cfg, cluster=True, telemetry=False)
    timed = Timed(feed.source)
    feed.source = timed
    app = Measured(feed, cfg)
    # Per tick (from the second on): UI thread CPU from its publication to the next one's (all the
    # UI thread did for it: handlers, layout, render), sampling thread CPU that made it, and
    # whether it brought a new poll.
    ui, sampler, polled = [], [], []
    last: list = []  # the tick before: (UI thread CPU at its publication, its Ray state, new poll)

    def on_tick(tick) -> None:  # on the UI thread, as each tick is published
        now = time.thread_time()
        if last:
            if len(last) == 3:
                ui.append((now - last[0]) * 1000)
                polled.append(last[2])
            ident, start = timed.began
            sampler.append((thread_cpu_s(ident) - start) * 1000)
            last[:] = [now, tick.snapshot.ray, tick.snapshot.ray is not last[1]]
        else:
            last[:] = [now, tick.snapshot.ray]

    async def press(key: str, condition) -> None:
        before = len(app.latencies)
        app.waiting = (time.perf_counter(), condition)
        app.simulate_key(key)
        deadline = time.monotonic() + 5
        while len(app.latencies) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        if len(app.latencies) == before:
            app.latencies.append(float("inf"))
            app.waiting = None

    out: dict = {}
    async with app.run_test(size=(200, 60)):
        while app.tick is None or not app.tick.snapshot.gpus:
            await asyncio.sleep(0.05)
        app.watch(app, "tick", on_tick, init=False)
        while len(ui) < ticks:
            await asyncio.sleep(0.05)
        n = len(ui)
        out["ui"], out["sampler"], out["polled"] = ui[:n], sampler[:n], polled[:n]
        out["gpus"], out["procs"] = len(app.tick.snapshot.gpus), len(app.tick.snapshot.gpu_processes)
        out["deployments"] = len(app.tick.ray.deployments) if app.tick.ray else 0
        # Which Ray code runs on the UI thread: a profile of the UI thread alone over three ticks
        # (cProfile sees only the thread that enables it), after the timed ticks.
        profile = cProfile.Profile()
        seen = len(ui)
        profile.enable()
        while len(ui) < seen + 3:
            await asyncio.sleep(0.05)
        profile.disable()
        ray_code = {f"{Path(f).stem}.{name}": row[3] * 1000 for (f, _, name), row in pstats.Stats(profile).stats.items()
                    if f"vramtop{os.sep}ray{os.sep}" in f or f.endswith(f"sources{os.sep}cluster.py")}
        out["ray_on_ui"] = sorted(ray_code.items(), key=lambda kv: -kv[1])
        keyed_from = len(ui)
        out["keys"] = {}
        out["ui_with_keys"] = []
        if keys:
            await press_keys(app, keys, out, press)
            out["ui_with_keys"] = ui[keyed_from:]
        app.action_pause()  # no tick lands while the app shuts down
    feed.close()
    return out


async def press_keys(app, keys: int, out: dict, press) -> None:
    """Each key ``keys`` times, spread over the tick (the Ray table's after ``R`` focuses it)."""
    from vramtop.widgets.process_table import ProcessTable

    table = app.query_one(ProcessTable)
    app.latencies = []
    for i in range(keys):
        row = table.cursor_row
        await press("down", lambda row=row: table.cursor_row != row)
        await asyncio.sleep(0.13 + 0.05 * (i % 5))  # keys land at all points of the tick
    out["keys"]["down (process table)"] = app.latencies
    app.latencies = []
    for i in range(keys):
        sort = table.view.sort_column
        await press("s", lambda sort=sort: table.view.sort_column != sort)
        await asyncio.sleep(0.13 + 0.05 * (i % 5))
    out["keys"]["s (sort the process table)"] = app.latencies
    app.latencies = []
    ray_table = app.query_one("#ray-table")
    await press("R", lambda: app.focused is ray_table)
    for i in range(keys - 1):
        row = ray_table.cursor_row
        await press("down", lambda row=row: ray_table.cursor_row != row)
        await asyncio.sleep(0.13 + 0.05 * (i % 5))
    out["keys"]["R, then down (Ray table)"] = app.latencies


def main(ticks: int, keys: int, repeat: int, pins: bool) -> None:
    global PATHS
    from vramtop.ray import poller as ray_poller
    from vramtop.sources.cluster import ClusterSource
    from vramtop.widgets.tick import derive

    PATHS = [ray_poller.SERVE, ray_poller.VERSION, ray_poller.NODES, ray_poller.SUMMARY,
             ray_poller.PLACEMENT_GROUPS, ray_poller.ACTORS, ray_poller.JOBS]
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        address = f"http://127.0.0.1:{child.stdout.readline().strip()}"
        floor, size = floor_ms(address, repeat)
        print(f"stand-in dashboard: {NODES} nodes x {GPUS_PER_NODE} GPUs, "
              f"{SHARED_APPS * SHARED_DEPLOYMENTS * SHARED_REPLICAS + LLM_DEPLOYMENTS * LLM_REPLICAS:,} Serve "
              f"replicas in {SHARED_APPS * SHARED_DEPLOYMENTS + LLM_DEPLOYMENTS} deployments; "
              f"one poll fetches {size / 2**20:.1f} MiB")
        print(f"floor: bare GETs + json.loads of every endpoint, median of {repeat}: {floor:.0f} ms CPU")

        poller = ray_poller.RayPoller(address, timeout=30.0)
        poll, poll_worst = median_cpu_ms(poller.poll, repeat)
        source = ClusterSource(ray_poller.RayPoller(address, timeout=30.0), min_poll_s=0.0)
        sample, sample_worst = median_cpu_ms(source.sample, repeat)
        between = ClusterSource(ray_poller.RayPoller(address, timeout=30.0), min_poll_s=3600.0)
        rebuild, rebuild_worst = median_cpu_ms(between.sample, repeat)
        snaps = [source.sample() for _ in range(2)]
        # a copy each call: the instances are memoised per snapshot object
        fresh, fresh_worst = median_cpu_ms(lambda: derive(dataclasses.replace(snaps[0])), repeat)
        tick_before = derive(snaps[0])
        moved, _ = median_cpu_ms(lambda: derive(dataclasses.replace(snaps[1]), tick_before), repeat)
        print(f"off the UI thread (thread CPU, median / worst of {repeat}):")
        print(f"  one poll (GETs and parse)           {poll:7.0f} / {poll_worst:5.0f} ms  {poll / floor:5.1f}x the floor")
        print(f"  cluster sample with a new poll      {sample:7.0f} / {sample_worst:5.0f} ms  {sample / floor:5.1f}x")
        print(f"  cluster sample between polls        {rebuild:7.1f} / {rebuild_worst:5.1f} ms  "
              f"{rebuild / floor:5.2f}x")
        print(f"  tick derived (instances, Ray analysis) {fresh:5.0f} / {fresh_worst:5.0f} ms  {fresh / floor:5.1f}x")
        print(f"  tick derived after a new poll         {moved:5.0f} ms  {moved / floor:5.1f}x")

        out = asyncio.run(run_app(address, ticks, keys))
        print(f"live app, headless 200x60, 1 s interval, cluster mode: {out['gpus']} GPUs, {out['procs']:,} GPU "
              f"processes, {out['deployments']} deployments")
        ui, sampler = out["ui"], out["sampler"]
        print(f"  UI thread CPU per tick, {len(ui)} ticks: median {statistics.median(ui):.1f} ms, worst "
              f"{max(ui):.1f} ms ({max(ui) / floor:.2f}x the floor; target: none over 50 ms)")
        for what, new_poll in (("a new poll", True), ("no new poll", False)):
            these = [(u, s) for u, s, p in zip(ui, sampler, out["polled"]) if p == new_poll]
            if these:
                print(f"    ticks with {what} ({len(these)}): UI thread median {statistics.median(u for u, _ in these):.1f}"
                      f" ms, worst {max(u for u, _ in these):.1f} ms; sampling thread median "
                      f"{statistics.median(s for _, s in these):.1f} ms, worst {max(s for _, s in these):.1f} ms")
        heavy = [name for name, _ in out["ray_on_ui"]
                 if name.split(".")[0] in ("client", "poller", "parse", "cluster")
                 or name in ("feasibility.analyze", "feasibility.pack", "link.link_gpu_processes", "link.owners")]
        print("  Ray code the UI thread ran over 3 ticks (profiled, cumulative): "
              + (", ".join(f"{name} {ms:.1f} ms" for name, ms in out["ray_on_ui"][:4]) or "none")
              + f"; polling, parsing and analysis: {', '.join(heavy) or 'none'}")
        if out["ui_with_keys"]:
            print(f"  UI thread CPU from tick to tick while keys are pressed (the keys' work included): median "
                  f"{statistics.median(out['ui_with_keys']):.1f} ms, worst {max(out['ui_with_keys']):.1f} ms")
        for key, lat in out["keys"].items():
            print(f"  key {key:<28} to its frame: median {statistics.median(lat):6.1f} ms, worst {max(lat):6.1f} ms "
                  f"(target: 100 ms)")
        if pins:
            out = asyncio.run(run_app(address, 3, 0, pins=True))
            print(f"  with the demo's two what-if pins: UI thread CPU per tick median "
                  f"{statistics.median(out['ui']):.0f} ms, worst {max(out['ui']):.0f} ms")
    finally:
        child.kill()
        child.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
        sys.exit(0)
    parser = argparse.ArgumentParser(description="vramtop --cluster over a 128-node stand-in dashboard.")
    parser.add_argument("--ticks", type=int, default=20, help="ticks of the live app to measure")
    parser.add_argument("--keys", type=int, default=10, help="presses of each key")
    parser.add_argument("--repeat", type=int, default=5, help="calls of each off-thread step")
    parser.add_argument("--pins", action="store_true", help="also measure ticks with two what-if pins")
    args = parser.parse_args()
    main(args.ticks, args.keys, args.repeat, args.pins)
