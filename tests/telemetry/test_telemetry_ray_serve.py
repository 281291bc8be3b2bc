"""Ray Serve autoscaling demand read from Ray-format metrics on the port the raylet names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from telemetry_support import free_port, snapshot_of
from vramtop.analysis.instances import group_instances
from vramtop.telemetry import ray_serve
from vramtop.telemetry.model import OK
from vramtop.telemetry.poller import TelemetryPoller

APP, DEP = "llms", "LLMServer:qwen-0_5b"
RAY_LABELS = ["SessionName", "Version", "ip", "application", "deployment"]


def ray_exposition(total: float, target: float, desired: int | None, per_replica: dict[str, float]) -> bytes:
    """Text as Ray's metrics agent exports Serve's gauges (``ray_`` prefix, session labels)."""
    reg = CollectorRegistry()
    common = ["session_2026", "2.60.0", "127.0.0.1", APP, DEP]
    Gauge(ray_serve.TOTAL, "Total number of requests as seen by the autoscaler.", RAY_LABELS, registry=reg).labels(*common).set(total)
    Gauge(ray_serve.TARGET_ONGOING, "target", RAY_LABELS, registry=reg).labels(*common).set(target)
    Gauge(ray_serve.TARGET_REPLICAS, "target replicas", RAY_LABELS, registry=reg).labels(*common).set(1)
    if desired is not None:
        Gauge(ray_serve.DESIRED, "raw decision", RAY_LABELS, registry=reg).labels(*common).set(desired)
    proc = Gauge(ray_serve.PROCESSING, "queries", RAY_LABELS + ["replica"], registry=reg)
    for replica, n in per_replica.items():
        proc.labels(*common, replica).set(n)
    Gauge("ray_node_gpus_utilization", "other", ["GpuIndex"], registry=reg).labels("0").set(97)
    return generate_latest(reg)


def test_replica_instance_gets_the_autoscalers_view_from_the_raylets_metrics_port(start_stand_in):
    port = free_port()
    raylet = start_stand_in(f"/opt/ray/core/src/ray/raylet/raylet --node_ip_address=192.0.2.2 --metrics_export_port={port}",
                            port=port, child_title=f"ray::ServeReplica:{APP}:{DEP}")
    raylet.serve(ray_exposition(7, 5, 2, {"r1": 4, "r2": 3}))
    snap = snapshot_of({raylet.child_pid: (0, 9_000)})
    assert ray_serve.metrics_url(snap) == f"http://127.0.0.1:{port}/metrics"
    (inst,) = group_instances(snap)

    tel = TelemetryPoller(environ={}).poll(snap)
    assert tel.notices == ()
    (a,) = tel.serve
    assert (a.application, a.deployment) == (APP, DEP)
    assert (a.total_requests, a.target_ongoing_requests, a.desired_replicas, a.target_replicas) == (7, 5, 2, 1)
    assert a.ongoing_per_replica == {"r1": 4, "r2": 3}
    line = tel.for_instance(inst.key)
    assert line.status == OK and line.summary == "serve: 7 ongoing / target 5 → wants 2 replicas"
    assert ray_serve.summary(a, fits=1) == "7 ongoing / target 5 → wants 2 replicas; 1 fits → requests queue"
    assert ray_serve.summary(a, fits=4) == "7 ongoing / target 5 → wants 2 replicas"


def test_without_the_raw_decision_the_wanted_count_is_total_over_target():
    text = ray_exposition(11, 5, None, {}).decode()
    (a,) = ray_serve.parse(text, "u")
    assert a.desired_replicas is None and a.wanted_replicas == 3


def test_no_raylet_means_no_request():
    snap = snapshot_of({})
    assert ray_serve.metrics_url(snap) is None and TelemetryPoller(environ={}).poll(snap).serve == ()
