"""The latest snapshot, handed over by whoever samples, and the Collector a scrape reads.

A scrape never samples: the sampler (``vramtop export``'s own thread, or the live view's) calls
``publish`` with each new snapshot, which only stores it, so publishing costs the UI thread
nothing. The first scrape of a snapshot builds its families (instances, Ray analysis, the
candidates' verdicts) in the HTTP server's thread and keeps them; later scrapes of the same
snapshot reuse them.
"""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from vramtop.analysis.states import Thresholds
from vramtop.exporter.candidates import NamedCandidate, judge
from vramtop.exporter.families import families
from vramtop.snapshot import NodeSnapshot


class LatestSnapshot(Collector):
    """Holds the newest snapshot and serves it as metric families."""

    def __init__(self, thresholds: Thresholds = Thresholds(), candidates: tuple[NamedCandidate, ...] = (),
                 pid_labels: bool = False) -> None:
        self.thresholds = thresholds
        self.candidates = candidates
        self.pid_labels = pid_labels
        self._snapshot: NodeSnapshot | None = None
        self._failures = 0
        self._lock = threading.Lock()  # one build per snapshot, even under concurrent scrapes
        self._built: tuple[NodeSnapshot | None, list[Metric]] = (None, [])

    def publish(self, snapshot: NodeSnapshot) -> None:
        self._snapshot = snapshot

    def failed(self) -> None:
        """A sample raised; the last snapshot stays served, and the failure is counted."""
        self._failures += 1

    @property
    def snapshot(self) -> NodeSnapshot | None:
        return self._snapshot

    def collect(self) -> Iterator[Metric]:
        failures = CounterMetricFamily("vramtop_sample_failures", "Samples of the node that failed (the last good one is served)")
        failures.add_metric([], self._failures)
        yield failures
        snapshot = self._snapshot
        if snapshot is None:
            return
        with self._lock:
            if self._built[0] is not snapshot:
                self._built = (snapshot, families(snapshot, self.thresholds, judge(self.candidates, snapshot),
                                                  self.pid_labels))
            built = self._built[1]
        yield from built


def registry_for(latest: LatestSnapshot) -> CollectorRegistry:
    """A registry of vramtop's metrics alone (not the Python process's own, which the default
    registry adds: a dashboard of the node has no use for the exporter's garbage collector)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(latest)
    return registry
