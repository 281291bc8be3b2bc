"""SGLang and TGI instances get their engine's figures (KV/token usage, running and queued
requests, tokens per second) from their real ``/metrics``, as vLLM instances do: real processes
titled and parented as the engines do it, real HTTP servers on loopback serving Prometheus text
written by prometheus_client (SGLang uses it; TGI's exporter writes the same format), and
``vramtop --once --json`` on the stand-in driver.

Metric names: SGLang ``python/sglang/srt/metrics/collector.py`` (SchedulerMetricsCollector's
gauges, with ``model_name`` and rank labels; TokenizerMetricsCollector's token counters); TGI
``backends/v3/src/queue.rs`` (tgi_queue_size), ``backends/v3/src/backend.rs``
(tgi_batch_current_size, tgi_batch_current_max_tokens), ``backends/v3/src/lib.rs``
(tgi_batch_max_total_tokens), ``router/src/server.rs`` (the histograms, and ``/metrics`` on the
router's ``--port``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from telemetry_support import STAND_IN, _wait_title, free_port, snapshot_of
from vramtop.analysis.instances import group_instances
from vramtop.telemetry import sglang_metrics, tgi_metrics, vllm_metrics

MODEL = "Qwen/Qwen2.5-7B-Instruct"


def sglang_exposition(schedulers: list[dict], prompt: float, generation: float) -> bytes:
    """As SGLang writes it: each scheduler's gauges under its ranks, the tokenizer's counters.
    Each scheduler dict: tp, dp, running, queued, usage, throughput."""
    reg = CollectorRegistry()
    labels = ["model_name", "engine_type", "tp_rank", "pp_rank", "dp_rank"]
    running = Gauge("sglang:num_running_reqs", "The number of running requests.", labels, registry=reg)
    queued = Gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.", labels, registry=reg)
    usage = Gauge("sglang:token_usage", "The token usage.", labels, registry=reg)
    throughput = Gauge("sglang:gen_throughput", "The generation throughput (token/s).", labels, registry=reg)
    Gauge("sglang:num_running_reqs_offline_batch", "Low-priority running requests.", labels, registry=reg)
    for s in schedulers:
        lv = [MODEL, "unified", str(s["tp"]), "0", str(s["dp"])]
        running.labels(*lv).set(s["running"])
        queued.labels(*lv).set(s["queued"])
        usage.labels(*lv).set(s["usage"])
        throughput.labels(*lv).set(s["throughput"])
    Counter("sglang:prompt_tokens", "Number of prefill tokens processed.", ["model_name"], registry=reg).labels(MODEL).inc(prompt)
    Counter("sglang:generation_tokens", "Number of generation tokens processed.", ["model_name"],
            registry=reg).labels(MODEL).inc(generation)
    return generate_latest(reg)


def tgi_exposition(batch: int, queue: int, batch_tokens: int, max_tokens: int, generated: list[int]) -> bytes:
    reg = CollectorRegistry()
    Gauge("tgi_batch_current_size", "Current batch size", registry=reg).set(batch)
    Gauge("tgi_queue_size", "Current queue size", registry=reg).set(queue)
    Gauge("tgi_batch_current_max_tokens", "Maximum tokens for the current batch", registry=reg).set(batch_tokens)
    Gauge("tgi_batch_max_total_tokens", "Maximum amount of tokens in total.", registry=reg).set(max_tokens)
    hist = Histogram("tgi_request_generated_tokens", "Generated tokens per request", registry=reg)
    for n in generated:
        hist.observe(n)
    return generate_latest(reg)


def test_sglang_figures_add_up_over_data_parallel_ranks_and_not_over_tensor_parallel_ones():
    text = sglang_exposition([
        dict(tp=0, dp=0, running=5, queued=2, usage=0.40, throughput=300.0),
        dict(tp=1, dp=0, running=5, queued=2, usage=0.40, throughput=300.0),  # the same batch, seen by TP rank 1
        dict(tp=0, dp=1, running=3, queued=1, usage=0.65, throughput=200.0),
    ], prompt=1000, generation=4000).decode()
    m = sglang_metrics.parse(text, "u")
    assert (m.requests_running, m.requests_waiting, m.kv_cache_usage, m.generation_tokens_per_s) == (8, 3, 0.65, 500.0)
    assert (m.prompt_tokens_total, m.generation_tokens_total, m.model_names) == (1000.0, 4000.0, (MODEL,))


def test_tgi_kv_usage_is_the_batch_reservation_against_the_tokens_the_cache_holds():
    m = tgi_metrics.parse(tgi_exposition(4, 9, 12_000, 48_000, [100, 250]).decode(), "u")
    assert (m.requests_running, m.requests_waiting, m.kv_cache_usage, m.generation_tokens_total) == (4, 9, 0.25, 350.0)
    assert m.kv_metric == "tgi_batch_current_max_tokens / tgi_batch_max_total_tokens"


def _once(fake_nvml) -> dict:
    result = subprocess.run([sys.executable, "-m", "vramtop", "--once", "--json", "--no-ray"],
                            env=fake_nvml.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_an_sglang_server_started_with_metrics_shows_its_figures(fake_nvml, start_stand_in):
    # The HTTP server is the launch_server process (it keeps its command line); it starts the
    # schedulers, which title themselves sglang::scheduler_TP<n> (sglang/srt/managers/scheduler.py).
    port = free_port()
    server = start_stand_in(f"python3 -m sglang.launch_server --model-path {MODEL} --port {port} --enable-metrics",
                            port=port, child_title="sglang::scheduler_TP0")
    server.serve(sglang_exposition([dict(tp=0, dp=0, running=6, queued=4, usage=0.37, throughput=812.5)],
                                   prompt=10, generation=20))
    fake_nvml.add_process(0, server.child_pid, 18_000)
    fake_nvml.write()
    doc = _once(fake_nvml)
    (inst,) = [i for i in doc["instances"] if server.child_pid in i["pids"]]
    tel = inst["telemetry"]
    assert inst["engine"] == "sglang" and tel["endpoint"] == f"http://127.0.0.1:{port}/metrics"
    assert (tel["status"], tel["kv_cache_usage"], tel["requests_running"], tel["requests_waiting"]) == ("ok", 0.37, 6, 4)
    assert tel["generation_tokens_per_s"] == 812.5 and tel["model_names"] == [MODEL]
    assert tel["summary"] == "KV 37 % · 6 running · 4 waiting · 812 tok/s"


def test_an_sglang_server_without_enable_metrics_says_how_to_get_them(fake_nvml, start_stand_in):
    port = free_port()
    server = start_stand_in(f"python3 -m sglang.launch_server --model-path {MODEL} --port {port}",
                            port=port, child_title="sglang::scheduler_TP0")
    fake_nvml.add_process(0, server.child_pid, 18_000)
    fake_nvml.write()
    (inst,) = [i for i in _once(fake_nvml)["instances"] if server.child_pid in i["pids"]]
    assert inst["telemetry"]["status"] == "no endpoint"
    assert inst["telemetry"]["summary"] == "metrics: off (SGLang serves them only with --enable-metrics)"


# sglang_router's launcher (sgl-router/py_src/sglang_router/launch_server.py) keeps its command
# line, spawns one server per data-parallel rank (multiprocessing, spawn) that titles itself
# sglang::server and listens on a port from --router-dp-worker-base-port on, then runs the router
# in its own process. The server starts the schedulers, which hold the GPU memory.
SGLANG_ROUTER = r"""
import subprocess, sys, setproctitle, time
stand_in, body, base, title = sys.argv[1:5]
setproctitle.setproctitle(title)
server = subprocess.Popen([sys.executable, stand_in, "--body", body, "--port", base, "--title", "sglang::server",
                           "--child-title", "sglang::scheduler_TP0"], stdout=subprocess.PIPE, text=True)
_, scheduler = server.stdout.readline().split()
print(server.pid, scheduler, flush=True)
time.sleep(600)
"""


def test_an_sglang_server_behind_sglang_router_is_found_with_the_routers_flags(fake_nvml, tmp_path):
    base = free_port()
    body = tmp_path / "sglang-metrics"
    body.write_bytes(sglang_exposition([dict(tp=0, dp=0, running=2, queued=1, usage=0.5, throughput=100.0)],
                                       prompt=10, generation=20))
    title = (f"python3 -m sglang_router.launch_server --model-path {MODEL} --dp-size 1 --port 30000 "
             f"--router-dp-worker-base-port {base} --enable-metrics")
    router = subprocess.Popen([sys.executable, "-c", SGLANG_ROUTER, str(STAND_IN), str(body), str(base), title],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        server, scheduler = map(int, router.stdout.readline().split())
        _wait_title(router.pid, "python3 -m sglang_router.launch_server")
        _wait_title(server, "sglang::server")
        _wait_title(scheduler, "sglang::scheduler_TP0")
        fake_nvml.add_process(0, scheduler, 18_000)
        fake_nvml.write()
        doc = _once(fake_nvml)
        # Where its sockets cannot be read (not root), the router's worker base port is the guess.
        snap = snapshot_of({scheduler: (0, 18_000)})
        (found,) = [i for i in group_instances(snap) if scheduler in i.pids]
        host = sglang_metrics.server(snap, found)
        assert host.pid == server and sglang_metrics.metrics_enabled(host, snap)
        assert sglang_metrics.default_port(host, snap) == base and sglang_metrics.default_port(host) == 30000
    finally:
        os.killpg(router.pid, signal.SIGKILL)
        router.wait()
    (inst,) = [i for i in doc["instances"] if scheduler in i["pids"]]
    tel = inst["telemetry"]
    assert inst["engine"] == "sglang" and inst["root_pid"] == router.pid
    assert tel["endpoint"] == f"http://127.0.0.1:{base}/metrics" and tel["status"] == "ok"
    assert tel["summary"] == "KV 50 % · 2 running · 1 waiting · 100 tok/s"


# text-generation-launcher (launcher/src/main.rs) starts the shards and then the router with
# `--port <port> --prometheus-port <port>`; all are its children. The router is a real HTTP
# server here (the stand-in script); the shard holds the GPU memory.
TGI_LAUNCHER = r"""
import subprocess, sys, setproctitle, time
stand_in, body, port, prom = sys.argv[1:5]
setproctitle.setproctitle(f"text-generation-launcher --model-id bigscience/bloom-560m --port {port}")
shard = subprocess.Popen([sys.executable, "-c", "import setproctitle, time; setproctitle.setproctitle("
    "'text-generation-server serve bigscience/bloom-560m --uds-path /tmp/text-generation-server-0'); time.sleep(600)"])
router = subprocess.Popen([sys.executable, stand_in, "--body", body, "--port", port, "--title",
    f"text-generation-router --max-concurrent-requests 128 --port {port} --prometheus-port {prom}"],
    stdout=subprocess.PIPE, text=True)
router.stdout.readline()
print(shard.pid, router.pid, flush=True)
time.sleep(600)
"""


def test_a_tgi_instance_reads_its_routers_metrics_on_the_launchers_port(fake_nvml, tmp_path):
    port = free_port()
    body = tmp_path / "tgi-metrics"
    body.write_bytes(tgi_exposition(3, 2, 6_000, 24_000, [40, 60]))
    launcher = subprocess.Popen([sys.executable, "-c", TGI_LAUNCHER, str(STAND_IN), str(body), str(port), "9000"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        shard, router = map(int, launcher.stdout.readline().split())
        _wait_title(shard, "text-generation-server serve")
        _wait_title(router, "text-generation-router")
        _wait_title(launcher.pid, "text-generation-launcher")
        fake_nvml.add_process(1, shard, 5_000)
        fake_nvml.write()
        doc = _once(fake_nvml)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    (inst,) = [i for i in doc["instances"] if shard in i["pids"]]
    tel = inst["telemetry"]
    assert inst["engine"] == "tgi" and tel["endpoint"] == f"http://127.0.0.1:{port}/metrics"
    assert (tel["status"], tel["kv_cache_usage"], tel["requests_running"], tel["requests_waiting"]) == ("ok", 0.25, 3, 2)
    assert tel["summary"] == "KV 25 % · 3 running · 2 waiting"


def test_a_tgi_launcher_that_takes_its_port_from_the_environment(fake_nvml, tmp_path):
    # launcher/src/main.rs: `#[clap(default_value = "3000", long, short, env)] port: u16`, so PORT
    # gives the port where --port is absent; the launcher passes it to the router's --port.
    port = free_port()
    body = tmp_path / "tgi-metrics"
    body.write_bytes(tgi_exposition(1, 0, 2_000, 8_000, [10]))
    script = TGI_LAUNCHER.replace("--port {port}\")", "\")")  # its own command line names no port
    assert script != TGI_LAUNCHER
    launcher = subprocess.Popen([sys.executable, "-c", script, str(STAND_IN), str(body), str(port), "9000"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True,
                                env={**os.environ, "PORT": str(port), "SPT_NOENV": "1"})  # keep /proc/PID/environ
    try:
        shard, router = map(int, launcher.stdout.readline().split())
        _wait_title(launcher.pid, "text-generation-launcher --model-id bigscience/bloom-560m")
        fake_nvml.add_process(1, shard, 5_000)
        fake_nvml.write()
        doc = _once(fake_nvml)
        snap = snapshot_of({shard: (1, 5_000)})
        host = snap.ancestors[launcher.pid]
        assert "--port" not in host.title and tgi_metrics.env_port(launcher.pid) == port
        # Where the router's sockets cannot be read, the environment's port is the one tried.
        assert vllm_metrics.candidate_urls(host, None, tgi_metrics.default_port(host), "--hostname") == [
            f"http://127.0.0.1:{port}/metrics"]
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
    assert tgi_metrics.env_port(launcher.pid) is None  # gone: nothing to read, and no error
    (inst,) = [i for i in doc["instances"] if shard in i["pids"]]
    assert inst["telemetry"]["endpoint"] == f"http://127.0.0.1:{port}/metrics"
    assert inst["telemetry"]["summary"] == "KV 25 % · 1 running · 0 waiting"


def test_nan_and_infinite_samples_are_no_figure_rather_than_a_failed_read():
    from vramtop.telemetry import ray_serve, vllm_metrics

    for value in ("NaN", "+Inf", "1e400"):
        m = vllm_metrics.parse(f'vllm:num_requests_running{{model_name="m"}} {value}\nvllm:num_requests_waiting 2\n', "u")
        assert (m.requests_running, m.requests_waiting) == (None, 2)
        assert sglang_metrics.parse(f"sglang:num_running_reqs {value}\nsglang:num_queue_reqs 1\n", "u").requests_running is None
        assert tgi_metrics.parse(f"tgi_queue_size {value}\ntgi_batch_current_size 1\n", "u").requests_waiting is None
        (a,) = ray_serve.parse(f'ray_serve_autoscaling_desired_replicas{{deployment="d"}} {value}\n'
                               f'ray_serve_autoscaling_total_requests{{deployment="d"}} 3\n', "u")
        assert (a.desired_replicas, a.total_requests) == (None, 3.0)
