"""One way in for data: a ``Feed`` is a snapshot source and the pollers whose state rides on its
snapshots (Ray Serve on its own slower interval, the serving engines' telemetry), and
``open_feed`` is the one place that chooses them: a recording, the demo node, the Ray cluster,
or this machine.

``Feed.sample()`` returns a whole snapshot; ``Feed.attach(snapshot)`` puts the pollers' state on
a snapshot taken elsewhere. A command polls them in line with its samples; a view that must
never wait for them (the live view) calls ``Feed.start()`` once, and from then on each poller
runs on a thread of its own, on its own interval, and ``sample()`` attaches what each last
returned. Each of those polls begins halfway between two samples: a tick (a sample, its grouping
and rows, the screen's repaint) and a poll then never hold the interpreter at once, so neither
waits on the other, and the monitor's CPU comes in two small bursts, not one large. The pollers
are imported only where they are used, so a command that needs one picture pays for no client it
does not open.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from vramtop.snapshot import NodeSnapshot, SourceError

if TYPE_CHECKING:
    from vramtop.config import Config


class Source(Protocol):
    """Anything that returns one picture of the node per call (may block, may raise)."""

    def sample(self) -> NodeSnapshot: ...


def first_line(exc: BaseException) -> str:
    """A failure as the one line a snapshot's errors and the status line show."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Poller:
    """One slower source on a daemon thread of its own: ``poll()`` at once, then again
    ``interval`` s after each poll ends, until ``stop()``; ``delay()``, where given, says how
    much longer to wait before each poll. ``state()`` is the last result and the failure to show
    beside it: a poll that raised (one line), or one that has run past ``deadline`` s (it is left
    to finish; its poller's own request deadlines end it)."""

    def __init__(self, name: str, poll: Callable[[], Any], interval: float, deadline: float,
                 delay: Callable[[], float] | None = None) -> None:
        self.name, self._poll, self._interval, self._deadline = name, poll, interval, deadline
        self._delay = delay or (lambda: 0.0)
        self._latest: Any = None
        self._error: SourceError | None = None
        self._began: float | None = None  # monotonic start of the poll under way
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name=f"vramtop {name} poller", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self._delay()):  # wait(0): whether it was stopped, at once
            self._began = time.monotonic()
            try:
                self._latest, self._error = self._poll(), None
            except Exception as exc:  # a poller's failure is one line in place, never a crash
                self._error = SourceError(self.name, f"failed ({first_line(exc)})")
            self._began = None
            self._stopped.wait(self._interval)

    def state(self) -> tuple[Any, SourceError | None]:
        began = self._began
        if began is not None and time.monotonic() - began > self._deadline:
            return self._latest, SourceError(self.name, f"no answer within {self._deadline:g} s")
        return self._latest, self._error

    def stop(self) -> None:
        self._stopped.set()


class Feed:
    """A source, and optionally a Ray poller (polled first, then every ``ray_interval`` s) and a
    telemetry poller (every ``telemetry_interval`` s once started, else every sample). A source
    that ``carries_ray`` (a recording, the cluster) already holds its Ray state: no poller is
    given one."""

    def __init__(self, source: Source, ray_poller: Any = None, telemetry: Any = None,
                 ray_interval: float = 5.0, telemetry_interval: float = 2.0) -> None:
        self.source = source
        self.ray_poller = ray_poller
        self.telemetry = telemetry
        self.ray_interval = ray_interval
        self.telemetry_interval = telemetry_interval
        self._ray: Any = None
        self._ray_at: float | None = None
        self._background: dict[str, Poller] | None = None  # set by start()
        self._deadline = 0.0  # a background poll running longer is said to be late (start())
        self._newest: NodeSnapshot | None = None  # the source's last snapshot, for the telemetry thread
        self._sampled = (0.0, 0.0)  # when the last sample began (monotonic), and the gap since the one before

    @property
    def carries_ray(self) -> bool:
        """Its snapshots hold a Ray state: the source's own or the poller's."""
        return self.ray_poller is not None or bool(getattr(self.source, "carries_ray", False))

    def start(self, deadline: float = 30.0) -> None:
        """Poll on threads from now on: Ray at once, the telemetry from the first sample on
        (it reads the newest snapshot's instances). A poll still running after ``deadline`` s
        (each poller bounds its own requests, so it only backs them up) is said on the
        snapshots as that poller's failure."""
        self._background, self._deadline = {}, deadline
        if self.ray_poller is not None:
            self._background["ray"] = Poller("ray", self.ray_poller.poll, self.ray_interval, deadline,
                                             self._until_between_samples)

    def _until_between_samples(self) -> float:
        """Seconds until halfway between the last sample and the next (the gap between the last
        two is taken as the next's): none where it is a quarter of the gap or less from there,
        or where no gap is known yet or samples have stopped (a paused view)."""
        last, gap = self._sampled
        since = time.monotonic() - last
        if not gap or since > 1.5 * gap or abs(since - gap / 2) <= gap / 4:
            return 0.0
        return (gap / 2 - since) % gap

    def sample(self, now: float | None = None) -> NodeSnapshot:
        """One whole snapshot: the source's, with the pollers' state on it."""
        began = time.monotonic()
        snapshot = self.source.sample()
        if self._background is None:
            return self.attach(snapshot, now)
        last = self._sampled[0]
        self._sampled = (began, began - last if last else 0.0)
        states = {name: poller.state() for name, poller in self._background.items()}
        for name, (latest, _) in states.items():
            snapshot = replace(snapshot, **{name: latest})
        failures = tuple(error for _, error in states.values() if error is not None)
        if failures:
            snapshot = replace(snapshot, errors=snapshot.errors + failures)
        # The telemetry reads the very snapshot the view shows: its instances are grouped with the
        # Ray state (which joins a Serve replica's placement-group workers to it), and grouped once
        # (``instances_of`` keeps them by snapshot).
        self._newest = snapshot
        if self.telemetry is not None and "telemetry" not in self._background:
            self._background["telemetry"] = Poller("telemetry", lambda: self.telemetry.poll(self._newest),
                                                   self.telemetry_interval, self._deadline,
                                                   self._until_between_samples)
        return snapshot

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

    def stop(self) -> None:
        """Stop the pollers' threads (a poll under way ends on its own deadline)."""
        for poller in (self._background or {}).values():
            poller.stop()

    def close(self) -> None:
        """Stop the pollers' threads and release the source (NVML's handle) where it holds one."""
        self.stop()
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
                    cfg.ray_interval, cfg.telemetry_interval)
    if cluster:
        from vramtop.sources.cluster import ClusterSource

        source: Source = ClusterSource(ray_poller(cfg))
        ray = False  # each snapshot is made of the poll that carries it
    else:
        from vramtop.sources.live import LiveSource

        source = LiveSource()
    return Feed(source, ray_poller(cfg) if ray else None, _telemetry_poller() if telemetry else None,
                cfg.ray_interval, cfg.telemetry_interval)


def answering_cluster(cfg: Config, telemetry: bool = True) -> tuple[Feed, str] | None:
    """The feed of the Ray cluster the configured dashboard reports, and the dashboard's address,
    when it answers and lists nodes (else None): where there is no driver (a laptop, a login
    node), that is what to show. Its first picture is this check's poll, not a second one."""
    from vramtop.sources.cluster import ClusterSource

    poller = ray_poller(cfg)
    state = poller.poll()
    if state.error is not None or not state.nodes:
        return None
    return Feed(ClusterSource(poller, first=state), telemetry=_telemetry_poller() if telemetry else None,
                telemetry_interval=cfg.telemetry_interval), poller.address
