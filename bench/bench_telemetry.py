"""What one vLLM metrics scrape costs vramtop per instance per tick, in CPU milliseconds.

A loopback HTTP server (a separate process, so its CPU is not counted) serves a /metrics body
shaped like a busy vLLM V1 server's: the families vramtop reads plus the latency histograms and
process metrics that make up most of the real text, for two data-parallel engines. Measured in
the same run:

  urllib GET    urllib.request's read of the same body (the standard library's floor)
  bare GET      vllm_metrics.fetch: peer_http's read, under one deadline and a size cap
  scrape        VllmScraper.scrape: GET + filter + Prometheus parse + rates
  parse         vllm_metrics.parse on the text alone
  parse (all)   prometheus_client parsing the whole text, as an unfiltered reader would

Target: scrape under 2 ms CPU. Run: python bench/bench_telemetry.py [iterations]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cpu import mean_ms
from vramtop.telemetry import vllm_metrics

SERVER = """
import http.server, sys
body = open(sys.argv[1], 'rb').read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                   10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


def busy_vllm_body(engines: int = 2) -> bytes:
    reg = CollectorRegistry()
    lab = ["model_name", "engine"]
    model = "Qwen/Qwen2.5-7B-Instruct"
    gauges = {n: Gauge(n, n, lab, registry=reg) for n in (
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")}
    counters = {n: Counter(n, n, lab, registry=reg) for n in (
        "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:num_preemptions", "vllm:prefix_cache_queries",
        "vllm:prefix_cache_hits")}
    success = Counter("vllm:request_success", "finished", lab + ["finished_reason"], registry=reg)
    hists = [Histogram(n, n, lab, buckets=LATENCY_BUCKETS, registry=reg) for n in (
        "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds", "vllm:request_inference_time_seconds",
        "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds")]
    hists += [Histogram(n, n, lab, buckets=TOKEN_BUCKETS, registry=reg) for n in (
        "vllm:request_prompt_tokens", "vllm:request_generation_tokens", "vllm:iteration_tokens_total",
        "vllm:request_max_num_generation_tokens", "vllm:request_params_max_tokens")]
    # vLLM writes every CacheConfig field as a label (the label set of a 2025 V1 release)
    cache = {"block_size": "16", "cache_dtype": "auto", "calculate_kv_scales": "False", "cpu_offload_gb": "0",
             "enable_prefix_caching": "True", "gpu_memory_utilization": "0.9", "is_attention_free": "False",
             "kv_cache_memory_bytes": "None", "kv_sharing_fast_prefill": "False", "mamba_cache_dtype": "auto",
             "mamba_page_size_padded": "None", "num_cpu_blocks": "None", "num_gpu_blocks": "27962",
             "num_gpu_blocks_override": "None", "prefix_caching_hash_algo": "sha256", "sliding_window": "None",
             "swap_space": "4", "engine": ""}
    info = Gauge("vllm:cache_config_info", "cache", list(cache), registry=reg)
    for e in range(engines):
        lv = (model, str(e))
        gauges["vllm:num_requests_running"].labels(*lv).set(7)
        gauges["vllm:num_requests_waiting"].labels(*lv).set(2)
        gauges["vllm:kv_cache_usage_perc"].labels(*lv).set(0.37)
        for c in counters.values():
            c.labels(*lv).inc(123_456)
        for reason in ("stop", "length", "abort"):
            success.labels(*lv, reason).inc(1000)
        for h in hists:
            for v in (0.003, 0.07, 0.9, 12.0, 300.0, 4000.0):
                h.labels(*lv).observe(v)
        info.labels(*list(cache.values())[:-1], str(e)).set(1)
    from prometheus_client import PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR

    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        reg.register(collector)
    return generate_latest(reg)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    body = busy_vllm_body()
    text = body.decode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metrics"
        path.write_bytes(body)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{int(server.stdout.readline())}/metrics"
            scraper = vllm_metrics.VllmScraper(timeout_s=2.0)
            clock = iter(range(10**9))
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            stdlib = mean_ms(lambda: opener.open(url, timeout=2.0).read(), n)
            bare = mean_ms(lambda: vllm_metrics.fetch(url, 2.0), n)
            scrape = mean_ms(lambda: scraper.scrape(url, float(next(clock))), n)
            parse = mean_ms(lambda: vllm_metrics.parse(text, url), n)
            parse_all = mean_ms(lambda: sum(len(f.samples) for f in text_string_to_metric_families(text)), max(20, n // 10))
        finally:
            server.kill()
            server.wait()
    lines = text.count("\n")
    print(f"payload: {len(body) / 1024:.1f} KiB, {lines} lines (2 engines, vLLM V1 names), {n} iterations")
    print(f"urllib GET   {stdlib:7.3f} ms CPU per call   {stdlib / bare:5.2f}x bare GET")
    print(f"bare GET     {bare:7.3f} ms CPU per call   (baseline)")
    print(f"scrape       {scrape:7.3f} ms CPU per call   {scrape / bare:5.2f}x bare GET   target < 2 ms: "
          f"{'met' if scrape < 2 else 'NOT met'}")
    print(f"parse        {parse:7.3f} ms CPU per call   {parse / bare:5.2f}x bare GET")
    print(f"parse (all)  {parse_all:7.3f} ms CPU per call   {parse_all / bare:5.2f}x bare GET "
          f"(what filtering before parsing saves: {parse_all / parse:.1f}x)")


if __name__ == "__main__":
    main()
