"""vLLM metrics read from real processes over real HTTP: discovery, parsing, rates, summary."""

from __future__ import annotations

import pytest

from telemetry_support import A10_TOTAL_MIB, free_port, snapshot_of, vllm_exposition
from vramtop.analysis.instances import group_instances
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot
from vramtop.telemetry import vllm_metrics
from vramtop.telemetry.model import NO_ENDPOINT, NOT_REACHABLE, OK
from vramtop.telemetry.poller import TelemetryPoller

MODEL = "Qwen/Qwen2.5-7B-Instruct"
CACHE = {"block_size": "16", "cache_dtype": "auto", "gpu_memory_utilization": "0.9",
         "num_gpu_blocks": "27962", "enable_prefix_caching": "True", "num_gpu_blocks_override": "None"}


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _engines(kv0, kv1, gen0, gen1):
    return [
        dict(kv=kv0, running=7, waiting=2, prompt=10_000, generation=gen0, preemptions=1),
        dict(kv=kv1, running=5, waiting=1, prompt=4_000, generation=gen1, preemptions=0),
    ]


def test_new_names_two_engines_read_from_the_port_on_the_command_line(start_stand_in):
    port = free_port()
    server = start_stand_in(f"/usr/bin/python3 /usr/local/bin/vllm serve {MODEL} --port {port} --host 0.0.0.0",
                            port=port, child_title="VLLM::EngineCore")
    server.serve(vllm_exposition(new=True, model=MODEL, engines=_engines(0.37, 0.21, 50_000, 20_000), cache=CACHE))
    snap = snapshot_of({server.child_pid: (0, 20_730)})
    (inst,) = group_instances(snap)
    assert inst.root_pid == server.pid  # the API server is the instance's root

    clock = Clock()
    # the sockets stay unread (as for a user who may not read them): the command line must do
    poller = TelemetryPoller(clock=clock, environ={}, listening=lambda pid: None)
    first = poller.poll(snap).for_instance(inst.key)
    assert first.status == OK and first.endpoint == f"http://127.0.0.1:{port}/metrics"
    m = first.vllm
    assert m.model_names == (MODEL,)
    assert m.kv_metric == "vllm:kv_cache_usage_perc"
    assert m.kv_cache_usage == pytest.approx(0.37)  # the fullest engine
    assert (m.requests_running, m.requests_waiting, m.preemptions_total) == (12, 3, 1)
    assert m.generation_tokens_total == 70_000 and m.prompt_tokens_total == 14_000
    assert m.generation_tokens_per_s is None  # one scrape is no rate
    assert m.cache.gpu_memory_utilization == 0.9 and m.cache.num_gpu_blocks == 27_962
    assert m.cache.block_size == 16 and m.cache.cache_dtype == "auto"
    assert m.cache.kv_tokens == 27_962 * 16

    # 2 s later both engines generated 3,660 tokens more
    server.serve(vllm_exposition(new=True, model=MODEL, engines=_engines(0.37, 0.21, 52_000, 21_660), cache=CACHE))
    clock.t += 2.0
    second = poller.poll(snap).for_instance(inst.key)
    assert second.vllm.generation_tokens_per_s == pytest.approx(3_660 / 2)
    assert second.vllm.prompt_tokens_per_s == 0.0
    # rates start with the second scrape; levels are kept from the first
    assert second.history.generation_tokens_per_s == (pytest.approx(1_830.0),)
    assert len(second.history.kv_cache_usage) == 2 and second.history.kv_cache_usage[-1] == pytest.approx(0.37)
    assert second.history.requests_waiting[-1] == 3
    budget_gib = 0.9 * A10_TOTAL_MIB / 1024
    assert second.summary == (f"VRAM fixed at {budget_gib:.1f} GiB/GPU by gpu_memory_utilization=0.9 · KV 37 % · "
                              "12 running · 3 waiting · 1 preempted · 1,830 tok/s")


def test_old_names_and_a_port_found_only_through_the_listening_socket(start_stand_in):
    # no --port on the command line: the default 8000 would be wrong, the socket tells the truth
    server = start_stand_in(f"/usr/bin/python3 -m vllm.entrypoints.openai.api_server --model {MODEL}",
                            child_title="VLLM::EngineCore")
    engines = [dict(kv=0.5, running=4, waiting=0, prompt=900, generation=1_000, preemptions=0)]
    server.serve(vllm_exposition(new=False, model=MODEL, engines=engines, cache=CACHE))
    snap = snapshot_of({server.child_pid: (0, 20_730)})
    (inst,) = group_instances(snap)
    assert vllm_metrics.listening_addresses(server.pid) == [("127.0.0.1", server.port)]

    tel = TelemetryPoller(clock=Clock(), environ={}).poll(snap).for_instance(inst.key)
    assert tel.status == OK and tel.endpoint == f"http://127.0.0.1:{server.port}/metrics"
    assert tel.vllm.kv_metric == "vllm:gpu_cache_usage_perc"
    assert tel.vllm.kv_cache_usage == pytest.approx(0.5)
    assert (tel.vllm.requests_running, tel.vllm.requests_waiting) == (4, 0)
    assert "KV 50 %" in tel.summary and "4 running" in tel.summary


def test_restarted_server_gives_no_rate_and_its_new_cache_config(start_stand_in):
    server = start_stand_in("/usr/local/bin/vllm serve m --port 0", child_title="VLLM::EngineCore")
    one = [dict(kv=0.1, running=1, waiting=0, prompt=500, generation=9_000, preemptions=0)]
    server.serve(vllm_exposition(new=True, model="m", engines=one, cache=CACHE))
    snap = snapshot_of({server.child_pid: (0, 1_000)})
    clock = Clock()
    poller = TelemetryPoller(clock=clock, environ={})
    key = group_instances(snap)[0].key
    poller.poll(snap)
    restarted = [dict(kv=0.0, running=0, waiting=0, prompt=10, generation=20, preemptions=0)]
    server.serve(vllm_exposition(new=True, model="m", engines=restarted,
                                 cache={**CACHE, "gpu_memory_utilization": "0.8", "num_gpu_blocks": "20000"}))
    clock.t += 1
    tel = poller.poll(snap).for_instance(key)
    assert tel.status == OK and tel.vllm.generation_tokens_per_s is None
    # a restarted server may run another configuration: it is read again
    assert (tel.vllm.cache.gpu_memory_utilization, tel.vllm.cache.num_gpu_blocks) == (0.8, 20_000)


def _fake_api_snapshot(argv: str) -> NodeSnapshot:
    api = HostProcess(900_001, 1, "vllm", argv, tuple(argv.split()))
    core = HostProcess(900_002, 900_001, "VLLM::EngineCor", "VLLM::EngineCore", ("VLLM::EngineCore",))
    return NodeSnapshot(timestamp=1.0, hostname="h", source="test",
                        gpu_processes=(GpuProcess(900_002, 0, 5_000, host=core),), ancestors={900_001: api})


def test_unreachable_endpoint_is_a_quiet_status_and_is_not_hammered():
    port = free_port()  # nothing listens there
    snap = _fake_api_snapshot(f"/usr/local/bin/vllm serve m --port {port}")
    calls = []

    def counting_fetch(url, timeout):
        calls.append(url)
        return vllm_metrics.fetch(url, timeout)

    clock = Clock()
    poller = TelemetryPoller(clock=clock, retry_s=10, environ={}, fetch=counting_fetch)
    tel = poller.poll(snap).for_instance("vllm:900001")
    assert tel.status == NOT_REACHABLE
    assert tel.summary.startswith("metrics: not reachable") and f":{port}/metrics" in tel.summary
    n = len(calls)
    clock.t += 5
    assert poller.poll(snap).for_instance("vllm:900001").status == NOT_REACHABLE
    assert len(calls) == n  # within retry_s: no new connection attempt
    clock.t += 6
    poller.poll(snap)
    assert len(calls) > n


def test_a_server_that_is_not_vllm_is_not_taken_for_metrics(start_stand_in):
    other = start_stand_in("/usr/local/bin/vllm serve m --port 0", body="<html>hello</html>",
                           child_title="VLLM::EngineCore", content_type="text/html")
    snap = snapshot_of({other.child_pid: (0, 1_000)})
    tel = TelemetryPoller(clock=Clock(), environ={}).poll(snap).for_instance(group_instances(snap)[0].key)
    assert tel.status == NOT_REACHABLE and "exports no vLLM metrics" in tel.summary


def test_engine_inside_a_ray_replica_has_no_endpoint_and_says_why():
    replica = HostProcess(800_000, 1, "ray::ServeRepli", "ray::ServeReplica:app:LLMServer:qwen",
                          ("ray::ServeReplica:app:LLMServer:qwen",))
    core = HostProcess(800_001, 800_000, "VLLM::EngineCor", "VLLM::EngineCore", ("VLLM::EngineCore",))
    snap = NodeSnapshot(timestamp=1.0, hostname="h", source="test",
                        gpu_processes=(GpuProcess(800_001, 0, 5_000, host=core),), ancestors={800_000: replica})
    (inst,) = group_instances(snap)
    tel = TelemetryPoller(clock=Clock(), environ={}).poll(snap).for_instance(inst.key)
    assert tel.status == NO_ENDPOINT and "Ray Serve replica" in tel.summary


def test_candidate_urls_follow_command_line_and_sockets():
    api = HostProcess(1, 0, "vllm", "vllm serve m", ("vllm", "serve", "m", "--port=9001", "--host", "::"))
    assert vllm_metrics.candidate_urls(api, None) == ["http://[::1]:9001/metrics"]
    assert vllm_metrics.candidate_urls(api, [("0.0.0.0", 7000), ("0.0.0.0", 9001)]) == [
        "http://127.0.0.1:9001/metrics", "http://127.0.0.1:7000/metrics"]
    tls = HostProcess(1, 0, "vllm", "vllm serve m", ("vllm", "serve", "m", "--ssl-keyfile", "k.pem"))
    assert vllm_metrics.candidate_urls(tls, None) == ["https://127.0.0.1:8000/metrics"]


def test_garbage_text_is_one_line_not_a_traceback():
    with pytest.raises(vllm_metrics.MetricsUnavailable) as err:
        vllm_metrics.parse('vllm:num_requests_running{model_name="m" 3\n', "http://x/metrics")
    assert "\n" not in str(err.value) and "not Prometheus text" in str(err.value)
