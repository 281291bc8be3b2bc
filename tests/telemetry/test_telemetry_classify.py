"""What a telemetry poll asks of each instance (which engines to scrape, which roots are Ray Serve
replicas, which are Ollama runners, whether Ollama runs at all) is asked once per grouping of
the same processes: on a busy node every process's memory moves between two polls, the grouping
keeps its shapes, and the answers are put on the new instances. Read live from real process
trees on the stand-in driver, against a fresh poller's full classification of each sample."""

from __future__ import annotations

import subprocess

from engine_tree import Proc, proc_tree
from vramtop.analysis import roles
from vramtop.analysis.instances import instances_of, shapes_of
from vramtop.sources.live import LiveSource
from vramtop.telemetry.poller import TelemetryPoller

# Ray starts actors as the raylet's children (src/ray/raylet/worker_pool.cc), a Serve replica
# titled ray::ServeReplica:<app>:<deployment> (python/ray/serve/_private/common.py); vLLM's engine
# core is the replica's child (vllm/v1/engine/utils.py) and starts a worker per TP rank
# (vllm/v1/executor/multiproc_executor.py). `vllm serve` keeps its command line
# (vllm/entrypoints/cli/serve.py). `ollama serve` starts each model's `ollama runner` with its
# blob (llm/server.go, NewLlamaServer).
TREE = (
    Proc("top", argv=("init-like",)),
    Proc("raylet", argv=("raylet", "--node_ip_address=10.0.0.5"), parent="top"),
    Proc("replica", "ray::ServeReplica:medgemma:VLLMDeployment", "raylet", {0: 519, 1: 529}),
    Proc("engine", "VLLM::EngineCore", "replica", {0: 1_234}),
    Proc("w0", "VLLM::Worker_TP0", "engine", {0: 20_000}),
    Proc("w1", "VLLM::Worker_TP1", "engine", {1: 20_000}),
    Proc("api", argv=("vllm", "serve", "Qwen/Qwen3-8B", "--port", "8000"), parent="top"),
    Proc("core", "VLLM::EngineCore", "api", {2: 19_500}),
    Proc("ollama", argv=("ollama", "serve"), parent="top"),
    Proc("runner", argv=("ollama", "runner", "--model", "/m/blobs/sha256-1", "--port", "41000"), parent="ollama",
         gpu_mib={3: 3_000}),
)


def _list(fake_nvml, tree, tick: int, extra: tuple[int, ...] = ()) -> None:
    """List the tree's GPU processes with memory that moves each ``tick``, as allocators move it."""
    fake_nvml.processes.clear()
    for p in tree.procs.values():
        for gpu, mib in p.gpu_mib.items():
            fake_nvml.add_process(gpu, tree.pid[p.name], mib + 7 * tick)
    for pid in extra:
        fake_nvml.add_process(3, pid, 500 + tick)
    fake_nvml.write()


def _asked(poller: TelemetryPoller, snapshot, instances, monkeypatch) -> tuple[tuple, int]:
    """The poller's answers for this grouping, and how many roles it asked for them."""
    asked = []
    classify = roles.classify
    monkeypatch.setattr(roles, "classify", lambda host: asked.append(host) or classify(host))
    try:
        grouping = poller._classify(snapshot, instances)
    finally:
        monkeypatch.setattr(roles, "classify", classify)
    return tuple(grouping[:5]), len(asked)


def test_a_grouping_whose_memory_alone_moved_is_not_classified_again(fake_nvml, monkeypatch):
    with proc_tree(*TREE) as tree:
        source, poller = LiveSource(), TelemetryPoller(environ={})
        job = None
        try:
            asked_each = []
            for tick in range(4):
                _list(fake_nvml, tree, tick)
                snapshot = source.sample()
                instances = instances_of(snapshot)
                answers, asked = _asked(poller, snapshot, instances, monkeypatch)
                assert answers == _asked(TelemetryPoller(environ={}), snapshot, instances, monkeypatch)[0]
                asked_each.append(asked)
            scraped, replicas, runners, ollama_seen = answers[1:]
            assert {i.root_pid for i in scraped} == {tree.pid["replica"], tree.pid["api"]}
            assert [(i.root_pid, r.deployment) for i, r in replicas] == [(tree.pid["replica"], "VLLMDeployment")]
            assert [i.root_pid for i in runners] == [tree.pid["runner"]]
            assert ollama_seen == (True, tree.pid["ollama"])
            assert all(i in instances for i in (*scraped, *runners))  # this tick's own instances
            assert asked_each[0] > 0 and asked_each[1:] == [0, 0, 0]

            # A new process: new shapes, every instance asked about again.
            job = subprocess.Popen(["sleep", "600"])
            _list(fake_nvml, tree, 5, extra=(job.pid,))
            snapshot = source.sample()
            instances = instances_of(snapshot)
            assert shapes_of(instances) is not poller._classified.shapes
            answers, asked = _asked(poller, snapshot, instances, monkeypatch)
            assert asked > 0 and answers == _asked(TelemetryPoller(environ={}), snapshot, instances, monkeypatch)[0]
        finally:
            source.close()
            if job is not None:
                job.kill()
                job.wait()
