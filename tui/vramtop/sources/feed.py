"""One way in for data: a ``Feed`` is a snapshot source and the pollers whose state rides on its
snapshots (Ray Serve on its own slower interval, the serving engines' telemetry), and
``open_feed`` is the one place that chooses them: a recording, the demo node, the Ray cluster,
or this machine.

``Feed.sample()`` returns a whole snapshot; ``Feed.attach(snapshot)`` puts the pollers' state on
a snapshot taken elsewhere. The pollers are imported only where they are used, so a command
that needs one picture pays for no client it does not open.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from vramtop.snapshot import NodeSnapshot

if TYPE_CHECKING:
    from vramtop.config import Config


class Source(Protocol):
    """Anything that returns one picture of the node per call (may block, may raise)."""

    def sample(self) -> NodeSnapshot: ...


class Feed:
    """A source, and optionally a Ray poller (polled first, then every ``ray_interval`` s) and a
    telemetry poller (every sample). A source that ``carries_ray`` (a recording, the cluster)
    already holds its Ray state: no poller is given one."""

    def __init__(self, source: Source, ray_poller: Any = None, telemetry: Any = None,
                 ray_interval: float = 5.0) -> None:
        self.source = source
        self.ray_poller = ray_poller
        self.telemetry = telemetry
        self.ray_interval = ray_interval
        self._ray: Any = None
        self._ray_at: float | None = None

    def sample(self, now: float | None = None) -> NodeSnapshot:
        """One whole snapshot: the source's, with the pollers' state on it."""
        return self.attach(self.source.sample(), now)

    def attach(self, snapshot: NodeSnapshot, now: float | None = None) -> NodeSnapshot:
        """``snapshot`` with the Ray state (polled again when ``ray_interval`` s have passed since
        the last poll, by ``now`` on the monotonic clock) and the telemetry read for it."""
        now = time.monotonic() if now is None else now
        if self.ray_poller is not None:
            if self._ray_at is None or now - self._ray_at >= self.ray_interval:
                self._ray, self._ray_at = self.ray_poller.poll(), now
            snapshot = replace(snapshot, ray=self._ray)
        if self.telemetry is not None:
            snapshot = replace(snapshot, telemetry=self.telemetry.poll(snapshot))
        return snapshot

    def close(self) -> None:
        """Release the source (NVML's handle) where it holds one."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def ray_poller(cfg: Config) -> Any:
    """The Ray dashboard poller of the configuration."""
    from vramtop.ray.poller import RayPoller

    return RayPoller(cfg.ray_address, timeout=cfg.ray_timeout)


def _telemetry_poller() -> Any:
    from vramtop.telemetry.poller import TelemetryPoller

    return TelemetryPoller()


def open_feed(cfg: Config | None = None, *, demo: bool = False, replay: Path | None = None, cluster: bool = False,
              ray: bool = True, telemetry: bool = True) -> Feed:
    """The feed the options name: a recording (its Ray state and telemetry were recorded), the
    demo node (with its simulated Ray and engines), every Ray node's GPUs from the dashboard, or
    this machine. ``ray=False`` polls no dashboard, ``telemetry=False`` reads no engine.
    ``cfg`` (its defaults when None) gives the dashboard's address, timeout and polling interval.
    Raises ``NvmlUnavailable`` (no driver) or ``RecordingError`` (a bad recording), one line each."""
    if cfg is None:
        from vramtop.config import Config

        cfg = Config()
    if replay is not None:
        from vramtop.sources.replay import ReplaySource

        return Feed(ReplaySource(replay))
    if demo:
        from vramtop.ray.demo import DemoRayPoller
        from vramtop.sources.demo import DemoSource
        from vramtop.telemetry.demo import DemoTelemetry

        return Feed(DemoSource(), DemoRayPoller() if ray else None, DemoTelemetry() if telemetry else None,
                    cfg.ray_interval)
    if cluster:
        from vramtop.sources.cluster import ClusterSource

        source: Source = ClusterSource(ray_poller(cfg))
        ray = False  # each snapshot is made of the poll that carries it
    else:
        from vramtop.sources.live import LiveSource

        source = LiveSource()
    return Feed(source, ray_poller(cfg) if ray else None, _telemetry_poller() if telemetry else None,
                cfg.ray_interval)


def answering_cluster(cfg: Config, telemetry: bool = True) -> tuple[Feed, str] | None:
    """The feed of the Ray cluster the configured dashboard reports, and the dashboard's address,
    when it answers and lists nodes (else None): where there is no driver (a laptop, a login
    node), that is what to show. Its first picture is this check's poll, not a second one."""
    from vramtop.sources.cluster import ClusterSource

    poller = ray_poller(cfg)
    state = poller.poll()
    if state.error is not None or not state.nodes:
        return None
    return Feed(ClusterSource(poller, first=state), telemetry=_telemetry_poller() if telemetry else None), poller.address
