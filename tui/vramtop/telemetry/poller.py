"""One telemetry poll: engines' metrics (vLLM, SGLang, TGI), Ollama's models, containers, loaded frameworks and model
files, trends and notices.

Meant for a background thread on its own interval (HTTP reads can take up to the timeout); the
result is attached to the next snapshots as ``NodeSnapshot.telemetry``. ``poll`` never raises:
an endpoint that does not answer becomes a quiet status on its instance and is retried after
``retry_s``. Each peer is read on its own: one that fails, answers garbage or runs out its
deadline marks only its own instance's row (an unexpected failure there is one plain line on
that row), and the others keep their telemetry. An engine's reader (SGLang's, TGI's, Ray's,
Ollama's, the KV check and its fit model) is imported when an instance of it is first found, so a
one-shot read of a node without it pays nothing for it. The roles of a grouping's processes are
asked once: a poll of the same grouping (a node at rest hands back the very tuple) reuses them.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Mapping, NamedTuple

from vramtop import peer_http
from vramtop.analysis import roles
from vramtop.analysis.instances import Instance, instances_of, shapes_of
from vramtop.snapshot import NodeSnapshot
from vramtop.sources.processes import mapped_size
from vramtop.telemetry import containers, loaded, vllm_metrics
from vramtop.telemetry.per_process import PerProcess
from vramtop.telemetry.model import (
    NO_ENDPOINT, NOT_REACHABLE, OK, InstanceTelemetry, OllamaModel, OllamaStatus, ServeAutoscaling, ServingHistory,
    Telemetry,
)
from vramtop.telemetry.trend import MemoryTrend


def _one_line(exc: Exception) -> str:
    """An unexpected failure as a few safe words: its type and the start of its message, which
    may quote what a peer sent."""
    return f"{type(exc).__name__}: {peer_http.sample(str(exc), 40)}" if str(exc) else type(exc).__name__


@dataclass
class _Watched:
    """What we know about one instance's endpoint between polls."""

    server_pid: int | None
    endpoint: vllm_metrics.Endpoint | None
    last: InstanceTelemetry | None = None
    retry_at: float = 0.0
    history: deque | None = None
    scraped_at: float | None = None  # when ``history[-1]`` was read (SGLang, TGI: for rates)


class _Grouping(NamedTuple):
    """What a poll asks of one grouping's instances: those whose engine's metrics it reads, the
    Ray Serve replicas (with their roots' roles), the Ollama runners, and whether Ollama runs among
    the processes (with its server's PID)."""

    instances: tuple[Instance, ...] | None
    scraped: tuple[Instance, ...]
    replicas: tuple[tuple[Instance, roles.Role], ...]
    runners: tuple[Instance, ...]
    ollama_seen: tuple[bool, int | None]
    shapes: object | None = None  # what the grouping was grouped by, memory aside (``shapes_of``)


class TelemetryPoller:
    """Reuse one poller across polls: it keeps endpoints, previous counters and history."""

    def __init__(
        self,
        timeout_s: float = 0.5,
        retry_s: float = 10.0,
        history: int = 300,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        fetch: Callable[[str, float], str] = vllm_metrics.fetch,
        listening: Callable[[int], list[tuple[str, int]] | None] = vllm_metrics.listening_addresses,
    ) -> None:
        self._timeout_s = timeout_s
        self._retry_s = retry_s
        self._history = history
        self._clock = clock
        self._environ = environ
        self._fetch = fetch
        self._listening = listening
        self._scraper = vllm_metrics.VllmScraper(timeout_s, fetch)
        self._watched: dict[str, _Watched] = {}
        self._containers = PerProcess(containers.read_container)  # a process never changes container
        self._loaded = PerProcess(loaded.read_loaded, loaded.FIRST_REFRESH_S, loaded.MAX_REFRESH_S,
                                  version=mapped_size)  # a process whose size held maps what it mapped
        self._trend = MemoryTrend()
        self._own_pid_ns = containers.in_own_pid_namespace()
        self._ollama_retry_at = 0.0
        self._ollama_last: OllamaStatus | None = None
        self._ollama_store = None  # the server's model store, where runners' blobs are named
        self._ray_retry_at = 0.0
        self._ray_url: str | None = None
        self._ray_last: tuple[ServeAutoscaling, ...] = ()
        # The grouping last polled, with what the poll asks of it: a grouping handed back again is
        # of the same processes and parents (``_classify``).
        self._classified = _Grouping(None, (), (), (), (False, None))

    @property
    def trend(self) -> MemoryTrend:
        """The memory history (per GPU and process) for sparklines."""
        return self._trend

    def poll(self, snapshot: NodeSnapshot) -> Telemetry:
        """Telemetry for ``snapshot``; never raises."""
        try:
            return self._poll(snapshot, instances_of(snapshot))
        except Exception as exc:  # the view must keep running whatever a source does
            return Telemetry(snapshot.timestamp, notices=(f"telemetry: {_one_line(exc)}",))

    def _poll(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...]) -> Telemetry:
        now = self._clock()
        # What each instance is, asked about once a grouping (a busy node has a thousand instances).
        grouping = self._classify(snapshot, instances)
        per_instance: dict[str, InstanceTelemetry] = {}
        for inst in grouping.scraped:
            read = self._vllm if inst.engine == roles.VLLM else self._sglang_tgi
            per_instance[inst.key] = self._isolated(inst, lambda: read(snapshot, inst, now))
        for key in [k for k in self._watched if k not in per_instance]:
            del self._watched[key]
        self._scraper.forget({w.endpoint.url for w in self._watched.values() if w.endpoint})

        try:
            serve = self._serve(snapshot, bool(grouping.replicas), now)
        except Exception:  # Ray's metrics are an extra on the replica rows, never a reason to lose them
            serve = self._ray_last = ()
        by_deployment = {(a.application, a.deployment): a for a in serve}
        for inst, role in grouping.replicas:
            if (a := by_deployment.get((role.app, role.deployment))) is None:
                continue
            from vramtop.telemetry import ray_serve

            line = "serve: " + ray_serve.summary(a)
            engine_tel = per_instance.get(inst.key)
            if engine_tel is not None and engine_tel.status == OK:
                line = f"{engine_tel.summary} · {line}"
            per_instance[inst.key] = InstanceTelemetry(inst.key, inst.engine, OK, line, self._ray_url,
                                                       engine_tel.vllm if engine_tel else None,
                                                       engine_tel.history if engine_tel else ServingHistory(),
                                                       engine_tel.kv_check if engine_tel else None)

        try:
            ollama_status = self._ollama(snapshot, now, grouping.ollama_seen)
        except Exception as exc:
            ollama_status = OllamaStatus("", NOT_REACHABLE, summary=f"ollama: failed ({_one_line(exc)})")
        if ollama_status is not None:
            from vramtop.telemetry import ollama

            served = self._ollama_models(snapshot, grouping.runners, ollama_status)
            for inst in grouping.runners:
                model = served.get(inst.key)
                line = (f"ollama: {ollama.model_text(model, datetime.now(timezone.utc))}" if model is not None
                        else ollama_status.summary)
                per_instance[inst.key] = InstanceTelemetry(inst.key, inst.engine, ollama_status.status, line,
                                                           ollama_status.address)

        notices = []
        if notice := containers.hidden_pid_notice(snapshot, self._own_pid_ns):
            notices.append(notice)
        return Telemetry(
            timestamp=snapshot.timestamp,
            instances=per_instance,
            ollama=ollama_status,
            containers=self._containers.lookup(snapshot),
            loaded=self._loaded.lookup(snapshot),
            trends=self._trend.update(snapshot, instances),
            phases=self._trend.phases(),
            notices=tuple(notices),
            serve=serve,
        )

    def _classify(self, snapshot: NodeSnapshot, instances: tuple[Instance, ...]) -> _Grouping:
        """What the poll asks of each instance (``_Grouping``), asked once for each grouping:
        grouping hands back the same tuple only where every GPU process is the very record it was
        and every parent one of the same name, title and command line, which is all a role reads.
        A grouping of the same shapes (``shapes_of``: the memory moved, as on every poll of a busy
        node) has the same answers for the same keys: its own instances are put in their place."""
        last = self._classified
        if last.instances is instances:
            return last
        shapes = shapes_of(instances)
        if shapes is not None and shapes is last.shapes:
            roots = {inst.key: role for inst, role in last.replicas}
            scraped = {inst.key for inst in last.scraped}
            runners = {inst.key for inst in last.runners}
            self._classified = _Grouping(
                instances,
                tuple(i for i in instances if i.key in scraped) if scraped else (),
                tuple((i, roots[i.key]) for i in instances if i.key in roots) if roots else (),
                tuple(i for i in instances if i.key in runners) if runners else (),
                last.ollama_seen, shapes)
            return self._classified
        root_roles = [roles.classify(snapshot.host_process(inst.root_pid)) for inst in instances]
        self._classified = _Grouping(
            instances,
            tuple(i for i in instances if i.engine in (roles.VLLM, roles.SGLANG, roles.TGI)),
            tuple((i, role) for i, role in zip(instances, root_roles) if role.kind == "replica"),
            tuple(i for i in instances if i.engine == roles.OLLAMA),
            self._ollama_processes(snapshot), shapes)
        return self._classified

    def _isolated(self, inst: Instance, read: Callable[[], InstanceTelemetry]) -> InstanceTelemetry:
        """One instance's read; whatever it raises stays on that instance's row."""
        try:
            return read()
        except Exception as exc:
            return InstanceTelemetry(inst.key, inst.engine, NOT_REACHABLE, f"metrics: failed ({_one_line(exc)})")

    # -- vLLM ---------------------------------------------------------------------------------

    def _probe(self, url: str) -> bool:
        try:
            vllm_metrics.parse(self._fetch(url, self._timeout_s), url)
            return True
        except vllm_metrics.MetricsUnavailable:
            return False

    def _vllm(self, snapshot: NodeSnapshot, inst: Instance, now: float) -> InstanceTelemetry:
        server = vllm_metrics.api_server(snapshot, inst)
        watched = self._watched.get(inst.key)
        if watched is None or watched.server_pid != (server.pid if server else None):
            watched = _Watched(server.pid if server else None, None, history=deque(maxlen=self._history))
            self._watched[inst.key] = watched
        if server is None:
            root_role = roles.classify(snapshot.host_process(inst.root_pid))
            why = ("the engine runs inside a Ray Serve replica; its figures go to Ray's metrics"
                   if root_role.engine == roles.RAY else "no vLLM API server among its processes")
            watched.last = InstanceTelemetry(inst.key, inst.engine, NO_ENDPOINT, f"metrics: none ({why})")
            return watched.last
        if watched.last is not None and watched.last.status == NOT_REACHABLE and now < watched.retry_at:
            return watched.last
        if watched.endpoint is None or (watched.last is not None and watched.last.status == NOT_REACHABLE):
            watched.endpoint = vllm_metrics.find_endpoint(snapshot, inst, self._probe, self._listening)
        endpoint = watched.endpoint
        assert endpoint is not None  # find_endpoint returns one whenever there is an API server
        try:
            metrics = self._scraper.scrape(endpoint.url, now)
        except vllm_metrics.MetricsUnavailable as exc:
            hint = " (the API server is in another network namespace; publish its port)" if endpoint.other_netns else ""
            watched.last = InstanceTelemetry(inst.key, inst.engine, NOT_REACHABLE,
                                             f"metrics: not reachable{hint} ({exc})", endpoint.url)
            watched.retry_at = now + self._retry_s
            return watched.last
        watched.history.append(metrics)
        from vramtop.telemetry import kv_check

        totals = {g: gpu.total_mib for g in inst.gpu_indices if (gpu := snapshot.gpu(g)) is not None}
        first_gpu = snapshot.gpu(inst.gpu_indices[0]) if inst.gpu_indices else None
        watched.last = InstanceTelemetry(
            inst.key, inst.engine, OK, vllm_metrics.summary(metrics, totals), endpoint.url, metrics,
            ServingHistory.of(watched.history),
            kv_check.kv_check(metrics, inst.tp_size or 1, first_gpu, vllm_metrics.argv_of(server),
                              kv_check.vllm_version_of([server, *(m.host for m in inst.members if m.host)])),
        )
        return watched.last

    # -- SGLang and TGI -----------------------------------------------------------------------

    def _sglang_tgi(self, snapshot: NodeSnapshot, inst: Instance, now: float) -> InstanceTelemetry:
        """SGLang's and TGI's ``/metrics``: found from the server's command line and sockets,
        probed, read and retried as vLLM's are."""
        from vramtop.telemetry import sglang_metrics, tgi_metrics

        sglang = inst.engine == roles.SGLANG
        server = sglang_metrics.server(snapshot, inst) if sglang else tgi_metrics.launcher(snapshot, inst)
        watched = self._watched.get(inst.key)
        if watched is None or watched.server_pid != (server.pid if server else None):
            watched = _Watched(server.pid if server else None, None, history=deque(maxlen=self._history))
            self._watched[inst.key] = watched
        if server is None:
            what = "SGLang HTTP server" if sglang else "text-generation-launcher"
            watched.last = InstanceTelemetry(inst.key, inst.engine, NO_ENDPOINT, f"metrics: none (no {what} among its processes)")
            return watched.last
        if sglang and not sglang_metrics.metrics_enabled(server, snapshot):
            watched.last = InstanceTelemetry(inst.key, inst.engine, NO_ENDPOINT,
                                             "metrics: off (SGLang serves them only with --enable-metrics)")
            return watched.last
        if watched.last is not None and watched.last.status == NOT_REACHABLE and now < watched.retry_at:
            return watched.last
        parse = sglang_metrics.parse if sglang else tgi_metrics.parse
        if watched.endpoint is None or (watched.last is not None and watched.last.status == NOT_REACHABLE):
            if sglang:
                urls = vllm_metrics.candidate_urls(server, self._listening(server.pid),
                                                   sglang_metrics.default_port(server, snapshot))
            else:
                router = tgi_metrics.router_pid(server.pid)
                urls = vllm_metrics.candidate_urls(server, self._listening(router) if router else None,
                                                   tgi_metrics.default_port(server), "--hostname")
            url = next((u for u in urls if self._answers(u, parse)), urls[0])
            watched.endpoint = vllm_metrics.Endpoint(url, server.pid)
        url = watched.endpoint.url
        try:
            metrics = parse(self._fetch(url, self._timeout_s), url)
        except vllm_metrics.MetricsUnavailable as exc:
            watched.last = InstanceTelemetry(inst.key, inst.engine, NOT_REACHABLE, f"metrics: not reachable ({exc})", url)
            watched.retry_at = now + self._retry_s
            return watched.last
        previous = watched.history[-1] if watched.history else None
        rated = vllm_metrics.with_rates(metrics, previous, now - watched.scraped_at if watched.scraped_at else 0.0)
        if metrics.generation_tokens_per_s is not None:  # the engine's own figure (SGLang's gen_throughput)
            rated = replace(rated, generation_tokens_per_s=metrics.generation_tokens_per_s)
        watched.history.append(rated)
        watched.scraped_at = now
        totals = {g: gpu.total_mib for g in inst.gpu_indices if (gpu := snapshot.gpu(g)) is not None}
        watched.last = InstanceTelemetry(inst.key, inst.engine, OK, vllm_metrics.summary(rated, totals), url, rated,
                                         ServingHistory.of(watched.history))
        return watched.last

    def _answers(self, url: str, parse: Callable[[str, str], object]) -> bool:
        try:
            parse(self._fetch(url, self._timeout_s), url)
            return True
        except vllm_metrics.MetricsUnavailable:
            return False

    # -- Ray Serve ----------------------------------------------------------------------------

    def _serve(self, snapshot: NodeSnapshot, has_replica: bool, now: float) -> tuple[ServeAutoscaling, ...]:
        """Ray's autoscaling figures, read when a Serve replica (an instance's root) is on the node."""
        if not has_replica:
            self._ray_url, self._ray_last = None, ()
            return ()
        from vramtop.telemetry import ray_serve

        self._ray_url = ray_serve.metrics_url(snapshot)
        if self._ray_url is None:
            self._ray_last = ()
            return ()
        if now < self._ray_retry_at:
            return self._ray_last
        try:
            self._ray_last = ray_serve.parse(self._fetch(self._ray_url, self._timeout_s), self._ray_url)
        except vllm_metrics.MetricsUnavailable:
            self._ray_last = ()
            self._ray_retry_at = now + self._retry_s
        return self._ray_last

    # -- Ollama -------------------------------------------------------------------------------

    @staticmethod
    def _ollama_processes(snapshot: NodeSnapshot) -> tuple[bool, int | None]:
        """Whether a GPU process is Ollama's, and the PID of Ollama's server (``ollama serve``: a GPU
        process or a parent of one, the first found), each process asked about once."""
        seen, server_pid = False, None
        for host, on_gpu in [*((p.host, True) for p in snapshot.gpu_processes),
                             *((h, False) for h in snapshot.ancestors.values())]:
            role = roles.classify(host)
            if role.engine == roles.OLLAMA:
                seen = seen or on_gpu
                if role.kind == "server" and server_pid is None:
                    server_pid = host.pid
        return seen, server_pid

    def _ollama_models(self, snapshot: NodeSnapshot, runners: tuple[Instance, ...],
                       status: OllamaStatus) -> dict[str, OllamaModel]:
        """Which loaded model each runner instance serves, through the server's model store."""
        if status.status != OK or not runners:
            return {}
        from vramtop.fit import specs
        from vramtop.telemetry import ollama

        blobs = {}
        for inst in runners:
            host = snapshot.host_process(inst.root_pid)
            blobs[inst.key] = ollama.runner_blob(vllm_metrics.argv_of(host)) if host is not None else None
        store = self._ollama_store
        return ollama.match_runners(status.models, blobs, lambda name: specs.ollama_model_blob(name, store))

    def _ollama(self, snapshot: NodeSnapshot, now: float, processes: tuple[bool, int | None]) -> OllamaStatus | None:
        """Read Ollama when one of its processes is on the node (or OLLAMA_HOST names one);
        ``processes``: what ``_ollama_processes`` says of the snapshot."""
        own_env = self._environ if self._environ is not None else os.environ
        seen, server_pid = processes
        if not seen and server_pid is None and not own_env.get("OLLAMA_HOST"):
            self._ollama_last = None
            return None
        if self._ollama_last is not None and self._ollama_last.status == NOT_REACHABLE and now < self._ollama_retry_at:
            return self._ollama_last
        from vramtop.telemetry import ollama

        server_env = ollama.process_environ(server_pid) if server_pid is not None else None
        base = ollama.server_address(server_env, own_env)
        self._ollama_store = ollama.models_dir(server_env, own_env)
        status = ollama.read(base, self._timeout_s, self._fetch, lambda: datetime.now(timezone.utc))
        if status.status != OK:
            self._ollama_retry_at = now + self._retry_s
        self._ollama_last = status
        return status
