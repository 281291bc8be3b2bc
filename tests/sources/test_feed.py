"""The one way in for data: ``open_feed`` chooses the source and its pollers, ``Feed.sample``
returns the whole snapshot, with Ray polled on its own slower interval."""

from vramtop.config import Config
from vramtop.sources.feed import open_feed


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
