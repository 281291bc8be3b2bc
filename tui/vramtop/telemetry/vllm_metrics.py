"""vLLM's own view of an instance: find its API server, read ``/metrics``, explain its memory.

A vLLM instance holds ``gpu_memory_utilization`` x the GPU's total memory from start to stop, so
its VRAM never says how busy it is; the KV cache usage and the request queue do. The API server
(``vllm serve``) exports them in Prometheus text; we read only the families we show, through
prometheus_client's parser, and turn the token counters into rates between two scrapes.

Metric names changed across vLLM releases: ``vllm:kv_cache_usage_perc`` (V1) replaced
``vllm:gpu_cache_usage_perc``; both are read. Every sample carries ``model_name`` (and, in V1,
``engine`` for each data-parallel engine).
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from vramtop import peer_http
from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import HostProcess, NodeSnapshot
from vramtop.telemetry.model import CacheConfig, VllmMetrics
from vramtop.units import gib

DEFAULT_PORT = 8000
MAX_BODY_BYTES = 8 * 1024 * 1024

KV_USAGE = "vllm:kv_cache_usage_perc"
KV_USAGE_OLD = "vllm:gpu_cache_usage_perc"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
PREEMPTIONS = "vllm:num_preemptions_total"
PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"
CACHE_CONFIG = "vllm:cache_config_info"

_LIVE = (KV_USAGE, KV_USAGE_OLD, RUNNING, WAITING, PREEMPTIONS, PROMPT_TOKENS, GENERATION_TOKENS)
_WANTED = _LIVE + (CACHE_CONFIG,)


class MetricsUnavailable(Exception):
    """The endpoint did not answer with Prometheus text; the message is one line."""


# ---------------------------------------------------------------------------------------------
# Finding the API server


@dataclass(frozen=True)
class Endpoint:
    """Where an instance's metrics are served; ``other_netns`` when the API server sits in
    another network namespace than vramtop (a container without a published port)."""

    url: str
    pid: int
    other_netns: bool = False


def _is_api_server(host: HostProcess) -> bool:
    role = roles.classify(host)
    if role.engine != roles.VLLM:
        return False
    return role.kind == "api-server" or role.label.startswith("APIServer")


def api_server(snapshot: NodeSnapshot, instance: Instance) -> HostProcess | None:
    """The outermost vLLM API server among the instance's processes and their ancestors."""
    return outermost(snapshot, instance, _is_api_server)


def outermost(snapshot: NodeSnapshot, instance: Instance,
              wanted: Callable[[HostProcess], bool]) -> HostProcess | None:
    """The ``wanted`` process farthest out among the instance's processes and their ancestors
    (the server that started the engine, not a helper it started)."""
    starts = [m.host for m in instance.members if m.host is not None]
    if (root := snapshot.host_process(instance.root_pid)) is not None:
        starts.append(root)
    found: HostProcess | None = None
    found_height = -1  # how far out from its starting process the API server sits
    for host in starts:
        seen: set[int] = set()
        cur: HostProcess | None = host
        height = 0
        while cur is not None and cur.pid not in seen:
            if wanted(cur) and height > found_height:
                found, found_height = cur, height
            seen.add(cur.pid)
            cur = snapshot.ancestors.get(cur.ppid) if cur.ppid else None
            height += 1
    return found


def argv_of(host: HostProcess) -> list[str]:
    """The process's arguments. A title rewritten by setproctitle reads back as one string
    padded with empty ones; split it on spaces as ``ps`` would show it."""
    args = list(host.cmdline)
    if len(args) == 1 or "" in args:
        return " ".join(a for a in args if a).split()
    return args


def flag_value(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` on a command line."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def connect_host(bound: str | None) -> str:
    """The address to connect to for a server bound to ``bound`` (wildcards mean loopback)."""
    if not bound or bound in ("0.0.0.0", "*"):
        return "127.0.0.1"
    if bound == "::":
        return "[::1]"
    try:
        if ipaddress.ip_address(bound).version == 6:
            return f"[{bound}]"
    except ValueError:
        pass
    return bound


def listening_addresses(pid: int) -> list[tuple[str, int]] | None:
    """The TCP (address, port) pairs ``pid`` listens on; None when the OS will not say."""
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return None
    return sorted({(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN and c.laddr})


def _other_netns(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False


def candidate_urls(server: HostProcess, listening: list[tuple[str, int]] | None,
                   default_port: int = DEFAULT_PORT, host_flag: str = "--host") -> list[str]:
    """Metrics URLs to try, best first: the ``--port`` of the command line when the process
    listens on it (or when its sockets cannot be read), then the other ports it listens on.
    ``default_port`` and ``host_flag`` are the engine's (vLLM: 8000, ``--host``)."""
    args = argv_of(server)
    scheme = "https" if flag_value(args, "--ssl-keyfile") else "http"
    port_text = flag_value(args, "--port")
    try:
        cmd_port = int(port_text) if port_text is not None else None
    except ValueError:
        cmd_port = None
    cmd_host = flag_value(args, host_flag)
    urls: list[str] = []
    if listening is None or not listening:
        urls.append(f"{scheme}://{connect_host(cmd_host)}:{cmd_port or default_port}/metrics")
        return urls
    ordered = sorted(listening, key=lambda a: (a[1] != (cmd_port or default_port), a[1]))
    for addr, port in ordered:
        url = f"{scheme}://{connect_host(addr)}:{port}/metrics"
        if url not in urls:
            urls.append(url)
    return urls


# ---------------------------------------------------------------------------------------------
# Reading and parsing


def fetch(url: str, timeout_s: float) -> str:
    """The body of ``url``, read within ``timeout_s`` in all; raises ``MetricsUnavailable`` with
    one line on any failure. A local server's own TLS certificate is not checked: we only read
    counters."""
    try:
        answer = peer_http.get(url, timeout_s, MAX_BODY_BYTES, verify_tls=False)
    except peer_http.PeerError as exc:
        raise MetricsUnavailable(f"{url}: {exc}") from None
    if answer.status != 200:
        raise MetricsUnavailable(f"HTTP {answer.status} from {url}")
    return answer.body.decode("utf-8", errors="replace")


def relevant(text: str, names: tuple[str, ...]) -> str:
    """Only the sample lines of the metrics we read: the parser's cost follows what we keep.
    HELP and TYPE lines go too; samples are matched by their own names, typed or not."""
    return "\n".join(line for line in text.splitlines() if line.startswith(names)) + "\n"


def _to_int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "", "None") else None
    except (TypeError, ValueError):
        return None


def _to_float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "None") else None
    except (TypeError, ValueError):
        return None


def parse(text: str, url: str, known_cache: CacheConfig | None = None) -> VllmMetrics:
    """The figures of one ``/metrics`` answer (no rates: those need the previous scrape).

    ``known_cache``: the cache config read earlier from the same server, which a server never
    changes while it runs; its long label line is then not parsed again.
    Raises ``MetricsUnavailable`` when the text is not Prometheus exposition or holds no vLLM
    figure at all (another server answered on that port)."""
    from prometheus_client.parser import text_string_to_metric_families  # imported once an engine is found

    sums: dict[str, float] = {}
    kv: dict[str, float] = {}
    models: list[str] = []
    cache: CacheConfig | None = known_cache
    try:
        for family in text_string_to_metric_families(relevant(text, _LIVE if known_cache else _WANTED)):
            for sample in family.samples:
                if not math.isfinite(sample.value):
                    continue  # NaN or infinite: no figure (a count of them would not convert)
                model = sample.labels.get("model_name")
                if model and model not in models:
                    models.append(model)
                if sample.name in (KV_USAGE, KV_USAGE_OLD):
                    kv.setdefault(sample.name, 0.0)
                    kv[sample.name] = max(kv[sample.name], float(sample.value))
                elif sample.name == CACHE_CONFIG:
                    if cache is None:
                        labels = sample.labels
                        cache = CacheConfig(
                            gpu_memory_utilization=_to_float(labels.get("gpu_memory_utilization")),
                            num_gpu_blocks=_to_int(labels.get("num_gpu_blocks")),
                            block_size=_to_int(labels.get("block_size")),
                            cache_dtype=labels.get("cache_dtype") or None,
                        )
                elif sample.name in _WANTED:
                    sums[sample.name] = sums.get(sample.name, 0.0) + float(sample.value)
    except ValueError:
        raise MetricsUnavailable(f"{url}: not Prometheus text") from None
    if not sums and not kv and cache is None:
        raise MetricsUnavailable(f"{url}: answers, but exports no vLLM metrics")
    kv_name = KV_USAGE if KV_USAGE in kv else (KV_USAGE_OLD if KV_USAGE_OLD in kv else None)

    def count(name: str) -> int | None:
        return int(sums[name]) if name in sums else None

    return VllmMetrics(
        url=url,
        model_names=tuple(models),
        kv_cache_usage=kv[kv_name] if kv_name else None,
        kv_metric=kv_name,
        requests_running=count(RUNNING),
        requests_waiting=count(WAITING),
        preemptions_total=count(PREEMPTIONS),
        prompt_tokens_total=sums.get(PROMPT_TOKENS),
        generation_tokens_total=sums.get(GENERATION_TOKENS),
        cache=cache,
    )


def _rate(now: float | None, before: float | None, seconds: float) -> float | None:
    if now is None or before is None or seconds <= 0 or now < before:
        return None  # first scrape, or the counter went back: the server restarted
    return (now - before) / seconds


def with_rates(current: VllmMetrics, previous: VllmMetrics | None, seconds: float) -> VllmMetrics:
    """``current`` with token rates against ``previous``, read ``seconds`` earlier."""
    if previous is None:
        return current
    return replace(
        current,
        prompt_tokens_per_s=_rate(current.prompt_tokens_total, previous.prompt_tokens_total, seconds),
        generation_tokens_per_s=_rate(current.generation_tokens_total, previous.generation_tokens_total, seconds),
    )


# ---------------------------------------------------------------------------------------------
# The line a view shows


def fixed_memory_text(metrics: VllmMetrics, gpu_totals_mib: Mapping[int, int]) -> str | None:
    """"VRAM fixed at 20.2 GiB/GPU by gpu_memory_utilization=0.9" from the cache config and
    the totals of the instance's GPUs (vLLM reserves util x total on each of them)."""
    util = metrics.cache.gpu_memory_utilization if metrics.cache else None
    if util is None or not gpu_totals_mib:
        return None
    budgets = sorted({round(util * t) for t in gpu_totals_mib.values()})
    per_gpu = gib(budgets[0]) if len(budgets) == 1 else f"{gib(budgets[0])}–{gib(budgets[-1])}"
    return f"VRAM fixed at {per_gpu}/GPU by gpu_memory_utilization={util:g}"


def summary(metrics: VllmMetrics, gpu_totals_mib: Mapping[int, int]) -> str:
    """One line: fixed memory · KV usage · running · waiting · preemptions · generated tok/s."""
    parts: list[str] = []
    if fixed := fixed_memory_text(metrics, gpu_totals_mib):
        parts.append(fixed)
    if metrics.kv_cache_usage is not None:
        parts.append(f"KV {metrics.kv_cache_usage * 100:.0f} %")
    if metrics.requests_running is not None:
        parts.append(f"{metrics.requests_running:,} running")
    if metrics.requests_waiting is not None:
        parts.append(f"{metrics.requests_waiting:,} waiting")
    if metrics.preemptions_total:
        parts.append(f"{metrics.preemptions_total:,} preempted")
    if metrics.generation_tokens_per_s is not None:
        parts.append(f"{metrics.generation_tokens_per_s:,.0f} tok/s")
    return " · ".join(parts) if parts else f"metrics: no figures yet ({metrics.url})"


def _restarted(now: VllmMetrics, before: VllmMetrics) -> bool:
    """Counters that went back, or a different model: the server behind the URL changed."""
    for a, b in ((now.generation_tokens_total, before.generation_tokens_total),
                 (now.prompt_tokens_total, before.prompt_tokens_total)):
        if a is not None and b is not None and a < b:
            return True
    return now.model_names != before.model_names


@dataclass
class _Scraped:
    metrics: VllmMetrics
    at: float


class VllmScraper:
    """Scrapes vLLM endpoints and remembers the previous reading of each URL for rates.

    ``fetch`` is injectable only so the benchmark can compare against a bare GET; it defaults
    to the real HTTP read.
    """

    def __init__(self, timeout_s: float = 0.5, fetcher: Callable[[str, float], str] = fetch) -> None:
        self._timeout_s = timeout_s
        self._fetch = fetcher
        self._previous: dict[str, _Scraped] = {}

    def scrape(self, url: str, now: float) -> VllmMetrics:
        """One reading of ``url`` with rates; raises ``MetricsUnavailable`` (one line).

        The cache config is taken from the previous reading while the server's counters show
        it is the same server (they never go back unless it restarted)."""
        text = self._fetch(url, self._timeout_s)
        prev = self._previous.get(url)
        metrics = parse(text, url, prev.metrics.cache if prev else None)
        if prev and prev.metrics.cache and _restarted(metrics, prev.metrics):
            metrics = parse(text, url)
        out = with_rates(metrics, prev.metrics if prev else None, now - prev.at if prev else 0.0)
        self._previous[url] = _Scraped(metrics, now)
        return out

    def forget(self, keep: set[str]) -> None:
        """Drop the readings of URLs no longer scraped."""
        for url in [u for u in self._previous if u not in keep]:
            del self._previous[url]


def find_endpoint(
    snapshot: NodeSnapshot,
    instance: Instance,
    probe: Callable[[str], bool],
    listening: Callable[[int], list[tuple[str, int]] | None] = listening_addresses,
) -> Endpoint | None:
    """The instance's metrics endpoint: the first candidate URL ``probe`` accepts; when none
    does, the best guess (so the view can name what it tried). None without an API server."""
    server = api_server(snapshot, instance)
    if server is None:
        return None
    urls = candidate_urls(server, listening(server.pid))
    other = _other_netns(server.pid)
    for url in urls:
        if probe(url):
            return Endpoint(url, server.pid, other)
    return Endpoint(urls[0], server.pid, other)
