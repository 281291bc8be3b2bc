"""Hugging Face TGI's own view of an instance: the router's ``/metrics``, read as for vLLM.

``text-generation-launcher`` starts the shards (the processes that hold GPU memory) and the
router, ``text-generation-router``, which serves HTTP on the launcher's ``--port`` (default 3000;
``launcher/src/main.rs``) and Prometheus text on ``/metrics`` there (``router/src/server.rs``).
The router is the shards' sibling, so it is found among the launcher's children. Names from the
router and ``backends/v3/src``: ``tgi_batch_current_size`` (requests in the running batch),
``tgi_queue_size`` (waiting), ``tgi_batch_current_max_tokens`` against
``tgi_batch_max_total_tokens`` (the tokens the batch reserves of what the KV cache holds: TGI's
KV usage), and the sums of the ``tgi_request_input_length`` and ``tgi_request_generated_tokens``
histograms as prompt and generated token counters. The figures fill the same record as vLLM's.
The launcher takes its port from ``PORT`` where ``--port`` is not given (clap's ``env`` on the
flag), so a launcher's environment is read too: a bounded read, and nothing where the OS refuses.
"""

from __future__ import annotations

import math

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import HostProcess, NodeSnapshot
from vramtop.telemetry.model import VllmMetrics
from vramtop.telemetry.vllm_metrics import MetricsUnavailable, argv_of, flag_value, outermost, relevant

DEFAULT_PORT = 3000
RUNNING = "tgi_batch_current_size"
WAITING = "tgi_queue_size"
BATCH_TOKENS = "tgi_batch_current_max_tokens"
MAX_TOKENS = "tgi_batch_max_total_tokens"
PROMPT_TOKENS = "tgi_request_input_length_sum"
GENERATION_TOKENS = "tgi_request_generated_tokens_sum"
KV_METRIC = f"{BATCH_TOKENS} / {MAX_TOKENS}"
_WANTED = (RUNNING, WAITING, BATCH_TOKENS, MAX_TOKENS, PROMPT_TOKENS, GENERATION_TOKENS)
_MAX_CHILDREN = 256
_ENVIRON_CAP = 1 << 20  # bytes of /proc/PID/environ read at most


def launcher(snapshot: NodeSnapshot, instance: Instance) -> HostProcess | None:
    """The ``text-generation-launcher`` that started the instance's shards."""
    def is_launcher(host: HostProcess) -> bool:
        role = roles.classify(host)
        return role.engine == roles.TGI and role.kind == "launcher"
    return outermost(snapshot, instance, is_launcher)


def router_pid(launcher_pid: int) -> int | None:
    """The launcher's ``text-generation-router`` child, whose sockets say where it listens."""
    import psutil

    try:
        children = psutil.Process(launcher_pid).children()[:_MAX_CHILDREN]
    except psutil.Error:
        return None
    for child in children:
        try:
            if any(a.endswith("text-generation-router") for a in child.cmdline()[:1]):
                return child.pid
        except psutil.Error:
            continue
    return None


def env_port(pid: int, proc: str = "/proc") -> int | None:
    """The ``PORT`` in the launcher's environment; None where it cannot be read (another user's
    process when vramtop is not root, a process gone) or gives no valid port."""
    try:
        with open(f"{proc}/{pid}/environ", "rb") as fh:
            data = fh.read(_ENVIRON_CAP)
    except OSError:
        return None
    for item in data.split(b"\0"):
        if item.startswith(b"PORT="):
            value = item[5:]
            return int(value) if value.isdigit() and 0 < int(value) < 65536 else None
    return None


def default_port(launcher: HostProcess) -> int:
    """Where the router listens when ``--port`` is not on the launcher's command line."""
    return env_port(launcher.pid) or DEFAULT_PORT


def hostname(host: HostProcess) -> str | None:
    """The launcher's ``--hostname`` (TGI's flag for the address it binds)."""
    return flag_value(argv_of(host), "--hostname")


def parse(text: str, url: str) -> VllmMetrics:
    """The figures of one ``/metrics`` answer; ``MetricsUnavailable`` when there is none."""
    from prometheus_client.parser import text_string_to_metric_families  # imported once an engine is found

    found: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(relevant(text, _WANTED)):
            for sample in family.samples:
                if sample.name in _WANTED and math.isfinite(value := float(sample.value)):
                    found[sample.name] = found.get(sample.name, 0.0) + value
    except (ValueError, TypeError, IndexError):
        raise MetricsUnavailable(f"{url}: not Prometheus text") from None
    if not found:
        raise MetricsUnavailable(f"{url}: answers, but exports no TGI metrics")
    usage = None
    if found.get(MAX_TOKENS) and BATCH_TOKENS in found:
        usage = min(max(found[BATCH_TOKENS] / found[MAX_TOKENS], 0.0), 1.0)

    def count(name: str) -> int | None:
        return int(found[name]) if name in found else None

    return VllmMetrics(
        url=url,
        kv_cache_usage=usage,
        kv_metric=KV_METRIC if usage is not None else None,
        requests_running=count(RUNNING),
        requests_waiting=count(WAITING),
        prompt_tokens_total=found.get(PROMPT_TOKENS),
        generation_tokens_total=found.get(GENERATION_TOKENS),
    )
