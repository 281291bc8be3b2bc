"""SGLang's own view of an instance: the HTTP server's ``/metrics``, read as for vLLM.

The server is the ``python -m sglang.launch_server`` (or ``sglang serve``) process that started
the schedulers; it listens on ``--port`` (default 30000) and exports Prometheus text only when
started with ``--enable-metrics``. Names from ``sglang/srt/metrics/collector.py``: the scheduler
gauges ``sglang:num_running_reqs``, ``sglang:num_queue_reqs``, ``sglang:token_usage`` (the KV
pool's used fraction) and ``sglang:gen_throughput`` (tok/s), and the tokenizer's counters
``sglang:prompt_tokens_total`` and ``sglang:generation_tokens_total``. Every scheduler exports
its gauges with its ranks as labels: tensor-parallel ranks repeat one figure (the highest is
kept), data-parallel ranks add up. The figures fill the same record as vLLM's, with vLLM's names.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import HostProcess, NodeSnapshot
from vramtop.telemetry.model import VllmMetrics
from vramtop.telemetry.vllm_metrics import MetricsUnavailable, argv_of, outermost, relevant

DEFAULT_PORT = 30000
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
        return role.engine == roles.SGLANG and role.kind == "api-server"
    return outermost(snapshot, instance, is_server)


def metrics_enabled(host: HostProcess) -> bool:
    return "--enable-metrics" in argv_of(host)


def parse(text: str, url: str) -> VllmMetrics:
    """The figures of one ``/metrics`` answer; ``MetricsUnavailable`` when there is none."""
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
