"""The one way in for data: ``open_feed`` chooses the source and its pollers, ``Feed.sample``
returns the whole snapshot, with Ray polled on its own slower interval; once started (the live
view), each poller runs on a thread of its own and a sample never waits for it."""

import http.server
import threading
import time
from contextlib import contextmanager

from vramtop.config import Config
from vramtop.ray.poller import RayPoller
from vramtop.sources.demo import DemoSource
from vramtop.sources.feed import Feed, open_feed


def test_the_demo_feed_carries_ray_and_telemetry_on_each_snapshot():
    feed = open_feed(demo=True)
    snapshot = feed.sample(now=0.0)
    assert snapshot.source == "demo" and snapshot.gpus
    assert snapshot.ray is not None and snapshot.ray.deployments
    assert snapshot.telemetry is not None


def test_ray_is_polled_again_only_when_its_interval_has_passed():
    feed = open_feed(Config(ray_interval=5.0), demo=True)
    first = feed.sample(now=100.0).ray
    assert feed.sample(now=104.9).ray is first  # the last poll rides on the next snapshots
    assert feed.sample(now=105.0).ray is not first


def test_without_ray_or_telemetry_nothing_is_polled():
    snapshot = open_feed(demo=True, ray=False, telemetry=False).sample()
    assert snapshot.ray is None and snapshot.telemetry is None


def test_attach_puts_the_pollers_state_on_a_snapshot_taken_elsewhere():
    feed = open_feed(demo=True)
    bare = feed.source.sample()
    assert bare.ray is None
    assert feed.attach(bare, now=0.0).ray is not None


# -- started (the live view): the pollers run on threads of their own ----------------------------

@contextmanager
def slow_dashboard(delay: float):
    """A dashboard on 127.0.0.1 that answers every request with a 404 after ``delay`` s."""
    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(delay)
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_started_feed_never_waits_for_a_slow_dashboard_and_says_when_a_poll_runs_late():
    with slow_dashboard(1.5) as address:
        feed = Feed(DemoSource(), RayPoller(address, timeout=5.0, environ={}), ray_interval=3600.0)
        feed.start(deadline=0.3)
        try:
            began = time.monotonic()
            first = feed.sample()
            assert time.monotonic() - began < 0.5 and first.ray is None and not first.errors
            time.sleep(0.5)
            late = feed.sample()
            assert [(e.source, e.message) for e in late.errors] == [("ray", "no answer within 0.3 s")]
            deadline = time.monotonic() + 10
            while (answered := feed.sample()).ray is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert answered.ray is not None and not answered.errors  # the poll came back: its state rides on
            assert feed.sample().ray is answered.ray  # and the same state on the next samples, until the next poll
        finally:
            feed.stop()


def test_a_started_feeds_telemetry_reads_the_newest_snapshot_and_a_raising_poller_is_one_line():
    class Broken:
        polled = []

        def poll(self, snapshot):
            Broken.polled.append(snapshot.timestamp)
            raise RuntimeError("metrics parser broke\nsecond line")

    clock = iter(range(1, 10**6))
    feed = Feed(DemoSource(clock=lambda: float(next(clock))), telemetry=Broken(), telemetry_interval=0.05)
    feed.start()
    try:
        feed.sample()
        deadline = time.monotonic() + 5
        while not (errors := feed.sample().errors) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(e.source, e.message) for e in errors] == [("telemetry", "failed (metrics parser broke)")]
        seen = len(Broken.polled)
        time.sleep(0.3)
        assert len(Broken.polled) > seen and Broken.polled[-1] > 1.0  # it goes on, on newer snapshots
    finally:
        feed.stop()


def test_a_started_feeds_telemetry_reads_snapshots_with_the_ray_state_on_them():
    """The telemetry groups instances as the view does: a Serve LLM replica's placement-group
    workers join it only through the Ray state, so the telemetry must see it too."""
    from vramtop.ray.demo import DemoRayPoller

    seen = []

    class Recording:
        def poll(self, snapshot):
            seen.append(snapshot.ray)
            return None

    feed = Feed(DemoSource(), ray_poller=DemoRayPoller(), telemetry=Recording(), telemetry_interval=0.05)
    feed.start()
    try:
        deadline = time.monotonic() + 5
        while not any(ray is not None for ray in seen) and time.monotonic() < deadline:
            feed.sample()
            time.sleep(0.02)
        assert seen and seen[-1] is not None and seen[-1].deployments
    finally:
        feed.stop()


def test_a_started_feeds_polls_begin_halfway_between_two_samples():
    """A tick (the sample, its grouping and rows, the repaint) and a poll never hold the
    interpreter at once: every poll after the first samples begins near the middle of the gap,
    though the telemetry's own interval (0.5 s) would walk it across the samples (0.6 s apart)."""
    polled: list[float] = []

    class Recording:
        def poll(self, snapshot):
            polled.append(time.monotonic())
            return None

    gap = 0.6
    feed = Feed(DemoSource(), telemetry=Recording(), telemetry_interval=0.5)
    feed.start()
    sampled: list[float] = []
    try:
        for n in range(8):
            time.sleep(max(0.0, sampled[0] + n * gap - time.monotonic()) if sampled else 0.0)
            sampled.append(time.monotonic())
            feed.sample()
    finally:
        feed.stop()
    later = [t for t in polled if sampled[1] + gap / 4 < t < sampled[-1]]
    assert len(later) >= 4
    phases = [(t - max(s for s in sampled if s <= t)) / gap for t in later]
    assert all(0.15 <= p <= 0.85 for p in phases), phases
