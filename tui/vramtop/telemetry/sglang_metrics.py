"""SGLang's own view of an instance: the HTTP server's ``/metrics``, read as for vLLM.

The server is the ``python -m sglang.launch_server`` (or ``sglang serve``) process that started
the schedulers; it listens on ``--port`` (default 30000) and exports Prometheus text only when
started with ``--enable-metrics``. Names from ``sglang/srt/metrics/collector.py``: the scheduler
gauges ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``, ``sglang:token_usage`` (the KV
pool's used fraction) and ``sglang:gen_throughput`` (tok/s), and the tokenizer's counters
``sglang:prompt_tokens_total`` and ``sglang:generation_tokens_total``. Every scheduler exports
its gauges with its ranks as labels: tensor-parallel ranks repeat one figure (the highest is
kept), data-parallel ranks add up. The figures fill the same record as vLLM's, with vLLM's names.

Behind the router (``python -m sglang_router.launch_server``, sgl-router's
``py_src/sglang_router/launch_server.py``) each data-parallel server is a spawned child titled
``sglang::server`` whose command line no longer shows the flags: they are the router's (the
server's ServerArgs are the router's, with its own port). Its port is the first free one from
``--router-dp-worker-base-port`` (default 31000) on, the next ones a random 100-1000 further, so
its sockets say where it listens and the base port is only the first guess.
"""

from __future__ import annotations

import math

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import HostProcess, NodeSnapshot
from vramtop.telemetry.model import VllmMetrics
from vramtop.telemetry.vllm_metrics import MetricsUnavailable, argv_of, flag_value, outermost, relevant

DEFAULT_PORT = 30000
ROUTER_WORKER_BASE_PORT = 31000
RUNNING = "sglang:num_running_reqs"
WAITING = "sglang:num_queue_reqs"
TOKEN_USAGE = "sglang:token_usage"
GEN_THROUGHPUT = "sglang:gen_throughput"
PROMPT_TOKENS = "sglang:prompt_tokens_total"
GENERATION_TOKENS = "sglang:generation_tokens_total"
_WANTED = (RUNNING, WAITING, TOKEN_USAGE, GEN_THROUGHPUT, PROMPT_TOKENS, GENERATION_TOKENS)
_RANK_LABELS = ("dp_rank", "tp_rank", "pp_rank", "attn_tp_rank", "moe_ep_rank")


def server(snapshot: NodeSnapshot, instance: Instance) -> HostProcess | None:
    """The SGLang HTTP server that started the instance's schedulers."""
    def is_server(host: HostProcess) -> bool:
        role = roles.classify(host)
        return role.engine == roles.SGLANG and (role.kind == "api-server" or host.title.startswith("sglang::server"))
    return outermost(snapshot, instance, is_server)


def _flags_host(snapshot: NodeSnapshot | None, host: HostProcess) -> HostProcess:
    """Where the server's flags are written: its own command line, or for a server the router
    spawned (titled ``sglang::server``), the router's."""
    if not host.title.startswith("sglang::server") or snapshot is None:
        return host
    parent = snapshot.ancestors.get(host.ppid) if host.ppid else None
    return parent if parent is not None and roles.classify(parent).engine == roles.SGLANG else host


def metrics_enabled(host: HostProcess, snapshot: NodeSnapshot | None = None) -> bool:
    return "--enable-metrics" in argv_of(_flags_host(snapshot, host))


def default_port(host: HostProcess, snapshot: NodeSnapshot | None = None) -> int:
    """The port to try when the server's sockets cannot be read: ``--port``, or for a server the
    router spawned, the router's worker base port (where the first one listens)."""
    flags = _flags_host(snapshot, host)
    if flags is host:
        return DEFAULT_PORT
    base = flag_value(argv_of(flags), "--router-dp-worker-base-port")
    return int(base) if base is not None and base.isdigit() and 0 < int(base) < 65536 else ROUTER_WORKER_BASE_PORT


def parse(text: str, url: str) -> VllmMetrics:
    """The figures of one ``/metrics`` answer; ``MetricsUnavailable`` when there is none."""
    from prometheus_client.parser import text_string_to_metric_families  # imported once an engine is found

    per_dp: dict[str, dict[str, float]] = {}  # data-parallel rank -> figure -> highest over its TP ranks
    totals: dict[str, float] = {}
    models: list[str] = []
    try:
        for family in text_string_to_metric_families(relevant(text, _WANTED)):
            for sample in family.samples:
                if sample.name not in _WANTED:
                    continue
                model = sample.labels.get("model_name")
                if model and model not in models:
                    models.append(model)
                value = float(sample.value)
                if not math.isfinite(value):
                    continue
                if sample.name in (PROMPT_TOKENS, GENERATION_TOKENS):
                    totals[sample.name] = totals.get(sample.name, 0.0) + value
                    continue
                figures = per_dp.setdefault(sample.labels.get("dp_rank", ""), {})
                figures[sample.name] = max(figures.get(sample.name, value), value)
    except (ValueError, TypeError, IndexError):
        raise MetricsUnavailable(f"{url}: not Prometheus text") from None
    if not per_dp and not totals:
        raise MetricsUnavailable(f"{url}: answers, but exports no SGLang metrics")

    def summed(name: str) -> float | None:
        found = [f[name] for f in per_dp.values() if name in f]
        return sum(found) if found else None

    usage = [f[TOKEN_USAGE] for f in per_dp.values() if TOKEN_USAGE in f]
    running, waiting, throughput = summed(RUNNING), summed(WAITING), summed(GEN_THROUGHPUT)
    return VllmMetrics(
        url=url,
        model_names=tuple(models),
        kv_cache_usage=max(usage) if usage else None,
        kv_metric=TOKEN_USAGE if usage else None,
        requests_running=int(running) if running is not None else None,
        requests_waiting=int(waiting) if waiting is not None else None,
        prompt_tokens_total=totals.get(PROMPT_TOKENS),
        generation_tokens_total=totals.get(GENERATION_TOKENS),
        generation_tokens_per_s=throughput,
    )
