"""Placement in cluster mode: the snapshot comes from the cluster source polling a stand-in Ray
dashboard on 127.0.0.1 (``/nodes?view=summary`` carries each node's GPUs, as the dashboard's
``DataOrganizer.get_all_node_summary`` sends them: ray/dashboard/modules/node/datacenter.py).

Two nodes of two H100s each, partly used. Cluster indices: gpu-1's GPUs are 0 and 1, gpu-2's 2
and 3. GPUs 1 and 2 are the emptiest, so a choice that ignored nodes would put a tensor-parallel
group on one GPU of each machine, which vLLM's ranks (one process tree on one host) cannot use.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vramtop.fit.command import plan
from vramtop.fit.fields import candidate_from_fields
from vramtop.fit.placement import node_from_snapshot
from vramtop.fit.verdict import GREEN, RED, evaluate
from vramtop.ray.poller import RayPoller
from vramtop.sources.cluster import ClusterSource

H100 = 81_559
USED = {"gpu-1": (60_000, 500), "gpu-2": (500, 4_000)}  # MiB used per GPU


def _summary() -> dict:
    nodes = []
    for n, (host, used) in enumerate(USED.items()):
        gpus = [{"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{host}-{i}", "utilizationGpu": 10,
                 "memoryUsed": mib, "memoryTotal": H100, "processesPids": []} for i, mib in enumerate(used)]
        nodes.append({"raylet": {"nodeId": f"{n + 1:056x}"}, "hostname": host, "gpus": gpus})
    logical = {f"{n + 1:056x}": "0.0/16.0 CPU\n0.0/2.0 GPU" for n in range(len(USED))}
    return {"data": {"summary": nodes, "nodeLogicalResources": logical}}


ROUTES = {
    "/api/serve/applications/": {"applications": {}},
    "/api/ray/version": {"ray_version": "2.60.0"},
    "/api/v0/nodes": {"data": {"result": {"result": [
        {"node_id": f"{n + 1:056x}", "node_ip": f"10.0.0.{n + 1}", "is_head_node": False, "state": "ALIVE",
         "resources_total": {"GPU": 2.0, "CPU": 16.0}} for n in range(len(USED))]}}},
    "/nodes": _summary(),
    "/api/v0/placement_groups": {"data": {"result": {"result": []}}},
    "/api/v0/actors": {"data": {"result": {"result": []}}},
    "/api/jobs/": [],
}


@pytest.fixture(scope="module")
def cluster():
    """The fit engine's view of one cluster-mode snapshot, read over HTTP from the stand-in."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            for prefix, body in sorted(ROUTES.items(), key=lambda kv: -len(kv[0])):
                if self.path.startswith(prefix):
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(json.dumps(body).encode())
                    return
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        poller = RayPoller(f"http://127.0.0.1:{server.server_address[1]}", timeout=2.0, environ={})
        snapshot = ClusterSource(poller).sample()
    finally:
        server.shutdown()
        server.server_close()
    assert not snapshot.errors, snapshot.errors
    assert [(g.index, g.node) for g in snapshot.gpus] == [(0, "gpu-1"), (1, "gpu-1"), (2, "gpu-2"), (3, "gpu-2")]
    return node_from_snapshot(snapshot)


def _candidate(**fields):
    candidate, errors = candidate_from_fields({"model": "medgemma-4b-it", "max_model_len": "8192",
                                               **{k: str(v) for k, v in fields.items()}})
    assert candidate is not None, errors
    return candidate


def test_a_tp2_group_lands_on_the_node_with_two_free_gpus_never_one_of_each(cluster):
    c = _candidate(tensor_parallel_size=2)
    # the fit engine itself: GPUs 1 and 2 have most free memory, but lie on two machines
    result = evaluate(c, cluster, suggest=False)
    assert result.verdict == GREEN
    assert [g.gpu_index for g in result.per_gpu] == [2, 3]
    assert [g.note for g in result.per_gpu] == ["TP rank 0 on node gpu-2", "TP rank 1 on node gpu-2"]

    launch = plan(c, cluster, "medgemma-4b-it")
    assert launch.result.verdict == GREEN and launch.line.gpus == (2, 3)
    env = dict(launch.line.env)
    # the cluster's indices mean nothing on gpu-2 itself: its GPUs go by UUID
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-gpu-2-0,GPU-gpu-2-1"
    assert launch.line.notes[0] == "run this on Ray node gpu-2"
    assert "--tensor-parallel-size 2" in launch.line.text


def test_one_gpu_goes_to_the_node_with_more_free_memory_when_its_best_gpus_are_alike(cluster):
    # gpu-1's GPU 1 and gpu-2's GPU 2 both have 81,059 MiB free; gpu-2 has more free over its GPUs
    launch = plan(_candidate(tensor_parallel_size=1), cluster, "medgemma-4b-it")
    assert launch.result.verdict == GREEN and launch.line.gpus == (2,)
    assert launch.line.notes[0] == "run this on Ray node gpu-2"
    assert dict(launch.line.env)["CUDA_VISIBLE_DEVICES"] == "GPU-gpu-2-0"


def test_tp4_is_red_because_no_node_has_four_gpus(cluster):
    c = _candidate(tensor_parallel_size=4)
    result = evaluate(c, cluster, suggest=False)
    assert result.verdict == RED and not result.per_gpu
    assert result.headline.startswith("no Ray node has 4 GPUs")
    assert "the most on one node is 2" in result.headline
    launch = plan(c, cluster, "medgemma-4b-it")
    assert launch.result.verdict == RED and launch.result.headline == result.headline


def test_two_replicas_land_one_per_node_each_on_one_node(cluster):
    c = _candidate(tensor_parallel_size=2, replicas=2, gpu_memory_utilization=0.2)
    result = evaluate(c, cluster, suggest=False)
    assert result.verdict == GREEN and result.replicas_placed == 2
    by_replica = {}
    for g in result.per_gpu:
        by_replica.setdefault(g.note.split(" TP")[0], set()).add(cluster.nodes[g.gpu_index])
    # the emptiest node's pair first; each replica's group on one node, the two on different nodes
    assert by_replica == {"replica 1": {"gpu-2"}, "replica 2": {"gpu-1"}}

    launch = plan(c, cluster, "medgemma-4b-it")
    assert launch.line.serve_config["placement_group_config"]["strategy"] == "STRICT_PACK"
    assert "the replicas fit on Ray node(s) gpu-1, gpu-2; Ray chooses where they run" in launch.line.notes


def test_an_ollama_server_spreads_over_one_node_only(cluster):
    c = _candidate(engine="ollama", model="amsaravi/medgemma-4b-it:q8")
    result = evaluate(c, cluster, suggest=False)
    # gpu-2 has most free memory (158,118 MiB against 102,118): Ollama's layers go to its GPUs only
    assert result.verdict == GREEN and {cluster.nodes[g.gpu_index] for g in result.per_gpu} == {"gpu-2"}
    launch = plan(c, cluster, "amsaravi/medgemma-4b-it:q8")
    assert launch.line.notes[0] == "run this on Ray node gpu-2"
    assert set(dict(launch.line.env)["CUDA_VISIBLE_DEVICES"].split(",")) <= {"GPU-gpu-2-0", "GPU-gpu-2-1"}
