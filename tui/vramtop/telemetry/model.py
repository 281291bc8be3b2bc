"""What the serving engines say about themselves, one immutable picture per poll.

NVML tells how much memory a process holds; only the engine tells what it does with it (how full
the KV cache is, how many requests wait). These records carry that, keyed the way the rest of
vramtop keys things: ``Instance.key`` for serving instances, PIDs for processes. A figure the
engine did not report is ``None``; an endpoint that did not answer is a quiet ``status`` on its
instance, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # kv_check reads this module's records
    from vramtop.telemetry.kv_check import KvCheck

# InstanceTelemetry.status values
OK = "ok"
NOT_REACHABLE = "not reachable"
NO_ENDPOINT = "no endpoint"


@dataclass(frozen=True)
class CacheConfig:
    """vLLM's ``vllm:cache_config_info`` labels that explain the instance's fixed memory."""

    gpu_memory_utilization: float | None = None
    num_gpu_blocks: int | None = None
    block_size: int | None = None
    cache_dtype: str | None = None

    @property
    def kv_tokens(self) -> int | None:
        """Tokens the KV cache holds (blocks x block size), when both are known."""
        if self.num_gpu_blocks is None or self.block_size is None:
            return None
        return self.num_gpu_blocks * self.block_size


@dataclass(frozen=True)
class VllmMetrics:
    """One scrape of a vLLM API server's ``/metrics``, with rates against the previous scrape.
    SGLang's and TGI's scrapes fill the same record under these names (``kv_metric`` says which
    of their figures stands for the KV usage); ``cache`` is vLLM's alone.

    ``kv_cache_usage`` is a fraction (0..1) as vLLM reports it, the fullest engine's when there
    are several (data parallel); counts are summed over engines. Rates are ``None`` on the first
    scrape and after a counter reset (the server restarted).
    """

    url: str
    model_names: tuple[str, ...] = ()
    kv_cache_usage: float | None = None
    kv_metric: str | None = None  # which name carried it: newer kv_cache_usage_perc or older gpu_cache_usage_perc
    requests_running: int | None = None
    requests_waiting: int | None = None
    preemptions_total: int | None = None
    prompt_tokens_total: float | None = None
    generation_tokens_total: float | None = None
    prompt_tokens_per_s: float | None = None
    generation_tokens_per_s: float | None = None
    cache: CacheConfig | None = None


@dataclass(frozen=True)
class ServingHistory:
    """An engine's recent figures, oldest first, one per scrape, for sparklines. Names follow
    ``VllmMetrics``; a scrape that lacked a figure is left out of that series."""

    generation_tokens_per_s: tuple[float, ...] = ()
    kv_cache_usage: tuple[float, ...] = ()
    requests_waiting: tuple[float, ...] = ()

    @classmethod
    def of(cls, scrapes: "Iterable[VllmMetrics]") -> "ServingHistory":
        scrapes = tuple(scrapes)

        def series(name: str) -> tuple[float, ...]:
            return tuple(float(v) for m in scrapes if (v := getattr(m, name)) is not None)

        return cls(series("generation_tokens_per_s"), series("kv_cache_usage"), series("requests_waiting"))


@dataclass(frozen=True)
class InstanceTelemetry:
    """What the engine behind one serving instance reported.

    ``summary`` is the one line a view shows ("VRAM fixed at 20.2 GiB/GPU by
    gpu_memory_utilization=0.9 · KV 37 % · 12 running · 3 waiting · 1,830 tok/s", or
    "metrics: not reachable (http://127.0.0.1:8000/metrics)"). ``history`` feeds the sparklines.
    """

    instance: str
    engine: str
    status: str
    summary: str
    endpoint: str | None = None
    vllm: VllmMetrics | None = None
    history: ServingHistory = ServingHistory()
    kv_check: KvCheck | None = None  # the fit engine's KV blocks beside vLLM's own


@dataclass(frozen=True)
class OllamaModel:
    """One model Ollama has loaded (``/api/ps``). Sizes in MiB like the rest of vramtop."""

    name: str
    size_mib: int
    vram_mib: int
    context_length: int | None = None
    expires_at: str | None = None  # as Ollama sent it (RFC 3339); None when it never unloads
    parameter_size: str | None = None
    quantization: str | None = None

    @property
    def gpu_share(self) -> float:
        """The part of the model in VRAM (1.0 = "100% GPU" in ``ollama ps``)."""
        return self.vram_mib / self.size_mib if self.size_mib else 0.0


@dataclass(frozen=True)
class OllamaStatus:
    """The Ollama server's loaded models, or why they could not be read."""

    address: str
    status: str
    models: tuple[OllamaModel, ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class ContainerInfo:
    """The container a process runs in, as its cgroup path shows it.

    ``runtime`` is "docker", "containerd", "cri-o" or "podman"; ``pod_uid`` is set for a
    Kubernetes pod, ``pod`` (its name) only when the process's environment could be read.
    """

    runtime: str
    container_id: str
    pod_uid: str | None = None
    pod: str | None = None

    @property
    def label(self) -> str:
        """Short text for a table cell: ``pod web-0``, ``docker 3f2a9c1b7d4e``."""
        if self.pod:
            return f"pod {self.pod}"
        if self.pod_uid:
            return f"pod {self.pod_uid[:8]}"
        return f"{self.runtime} {self.container_id[:12]}"


@dataclass(frozen=True)
class LoadedFiles:
    """What a process has mapped into memory that says what it runs: its ML framework's CUDA
    libraries (``pytorch``, ``jax``, ...) and the model files it serves (GGUF, safetensors, ...)."""

    frameworks: tuple[str, ...] = ()
    model_files: tuple[str, ...] = ()  # full paths, in the order the process mapped them

    @property
    def label(self) -> str:
        """"pytorch · model-00001-of-00004.safetensors (+3 files)"."""
        parts = list(self.frameworks)
        if self.model_files:
            first = self.model_files[0].rsplit("/", 1)[-1]
            more = len(self.model_files) - 1
            parts.append(first + (f" (+{more} file{'s' if more > 1 else ''})" if more else ""))
        return " · ".join(parts)


@dataclass(frozen=True)
class TrendWarning:
    """A process whose memory keeps growing, and when its GPU fills at that rate."""

    pid: int
    gpu_index: int
    mib_per_s: float
    seconds_to_full: float | None  # None when the GPU's free memory is unknown
    message: str


@dataclass(frozen=True)
class ServeAutoscaling:
    """One deployment's demand as its autoscaler sees it. Figures absent from the metrics are None."""

    application: str
    deployment: str
    total_requests: float | None = None
    target_ongoing_requests: float | None = None
    desired_replicas: int | None = None  # the policy's raw decision, before min/max
    target_replicas: int | None = None  # what the controller is trying to reach (within min/max)
    ongoing_per_replica: Mapping[str, float] = field(default_factory=dict)

    @property
    def wanted_replicas(self) -> int | None:
        """The raw decision, or total / target rounded up when Ray did not export it."""
        if self.desired_replicas is not None:
            return self.desired_replicas
        if self.total_requests is None or not self.target_ongoing_requests:
            return None
        return math.ceil(self.total_requests / self.target_ongoing_requests)


@dataclass(frozen=True)
class Telemetry:
    """Everything the telemetry poller learnt in one poll; ``NodeSnapshot.telemetry`` holds it.

    ``notices`` are node-wide one-line facts worth saying once (e.g. vramtop runs in its own PID
    namespace and cannot see the GPU processes).
    """

    timestamp: float
    instances: Mapping[str, InstanceTelemetry] = field(default_factory=dict)
    ollama: OllamaStatus | None = None
    containers: Mapping[int, ContainerInfo] = field(default_factory=dict)
    loaded: Mapping[int, LoadedFiles] = field(default_factory=dict)  # PID -> framework and model files
    trends: tuple[TrendWarning, ...] = ()
    phases: Mapping[int, str] = field(default_factory=dict)  # PID -> "memory growing 12 MiB/s", ...
    notices: tuple[str, ...] = ()
    serve: tuple[ServeAutoscaling, ...] = ()  # Ray Serve deployments that autoscale (Ray's metrics)

    def for_instance(self, key: str) -> InstanceTelemetry | None:
        return self.instances.get(key)


@dataclass(frozen=True)
class ProcessFacts:
    """What the telemetry poll learnt of one GPU process beyond its title."""

    container: ContainerInfo | None = None
    loaded: LoadedFiles | None = None
    phase: str | None = None  # "memory growing 12 MiB/s", ...


NO_FACTS = ProcessFacts()


def same_process_facts(a: Telemetry | None, b: Telemetry | None) -> bool:
    """Whether two polls (or none) give every process the same facts: a poll comes every few
    seconds and most find what the one before found."""
    if not isinstance(a, Telemetry) or not isinstance(b, Telemetry):
        return not isinstance(a, Telemetry) and not isinstance(b, Telemetry)
    return all(x is y or x == y for x, y in ((a.containers, b.containers), (a.loaded, b.loaded),
                                              (a.phases, b.phases)))


def process_facts(telemetry: Telemetry | None, proc: Any) -> ProcessFacts:
    """The facts of ``proc`` (a ``GpuProcess``). The poll keys them by PID, so they are this
    machine's: none for a process on another node (cluster mode), none when nothing was polled.
    A process with none gets one shared record (most on a busy node: asked of each, every tick)."""
    if not isinstance(telemetry, Telemetry) or proc.hidden_reason:
        return NO_FACTS
    pid = proc.pid
    container, files, phase = telemetry.containers.get(pid), telemetry.loaded.get(pid), telemetry.phases.get(pid)
    if container is None and files is None and phase is None:
        return NO_FACTS
    return ProcessFacts(container, files, phase)
