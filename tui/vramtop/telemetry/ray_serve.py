"""Ray Serve autoscaling from Ray's own metrics: requests per replica against the target, and
how many replicas the autoscaler wants.

The REST API tells the replica count and its bounds; only the metrics tell the demand behind it:
``serve_autoscaling_total_requests`` (what the policy sees), ``serve_autoscaling_target_ongoing_requests``
(the per-replica target), ``serve_autoscaling_desired_replicas`` (the raw decision before
min/max) and ``serve_replica_processing_queries`` per replica. Ray exports them with a ``ray_``
prefix on each node's metrics port, which the raylet's command line names
(``--metrics_export_port``); the metrics are there only for deployments that autoscale.
Names and labels (``application``, ``deployment``) checked against a live Ray 2.60 Serve app.
"""

from __future__ import annotations

import math

from vramtop.snapshot import HostProcess, NodeSnapshot
from vramtop.telemetry.model import ServeAutoscaling
from vramtop.telemetry.vllm_metrics import MetricsUnavailable, argv_of

TOTAL = "ray_serve_autoscaling_total_requests"
TARGET_ONGOING = "ray_serve_autoscaling_target_ongoing_requests"
DESIRED = "ray_serve_autoscaling_desired_replicas"
TARGET_REPLICAS = "ray_serve_autoscaling_target_replicas"
PROCESSING = "ray_serve_replica_processing_queries"
_WANTED = (TOTAL, TARGET_ONGOING, DESIRED, TARGET_REPLICAS, PROCESSING)


def metrics_url(snapshot: NodeSnapshot) -> str | None:
    """This node's Ray metrics URL, from the raylet's ``--metrics_export_port`` among the known
    processes. The raylet runs here (we see it), and Ray's metrics agent listens on every
    interface (or on loopback for a local-only node), so loopback reaches it."""
    hosts: list[HostProcess] = list(snapshot.ancestors.values())
    hosts += [p.host for p in snapshot.gpu_processes if p.host is not None]
    for host in hosts:
        args = argv_of(host)
        if not (host.name == "raylet" or (args and args[0].endswith("/raylet"))):
            continue
        for arg in args:
            if arg.startswith(("--metrics_export_port=", "--metrics-export-port=")):
                port = arg.split("=", 1)[1]
                if port.isdigit() and int(port) > 0:
                    return f"http://127.0.0.1:{port}/metrics"
    return None


def parse(text: str, url: str) -> tuple[ServeAutoscaling, ...]:
    """Every deployment's autoscaling figures in Ray's metrics text (one line on bad text)."""
    from prometheus_client.parser import text_string_to_metric_families  # imported once an engine is found

    found: dict[tuple[str, str], dict] = {}
    lines = "\n".join(line for line in text.splitlines() if line.startswith(_WANTED)) + "\n"
    try:
        for family in text_string_to_metric_families(lines):
            for s in family.samples:
                if not math.isfinite(s.value):
                    continue
                key = (s.labels.get("application", ""), s.labels.get("deployment", ""))
                if not key[1]:
                    continue
                d = found.setdefault(key, {"ongoing": {}})
                if s.name == PROCESSING:
                    replica = s.labels.get("replica", "?")
                    d["ongoing"][replica] = d["ongoing"].get(replica, 0.0) + float(s.value)
                else:
                    d[s.name] = float(s.value)
    except ValueError:
        raise MetricsUnavailable(f"{url}: not Prometheus text") from None

    def as_int(v: float | None) -> int | None:
        return None if v is None else int(round(v))

    return tuple(
        ServeAutoscaling(
            application=app, deployment=dep,
            total_requests=d.get(TOTAL), target_ongoing_requests=d.get(TARGET_ONGOING),
            desired_replicas=as_int(d.get(DESIRED)), target_replicas=as_int(d.get(TARGET_REPLICAS)),
            ongoing_per_replica=dict(sorted(d["ongoing"].items())),
        )
        for (app, dep), d in sorted(found.items())
    )


def summary(a: ServeAutoscaling, fits: int | None = None) -> str:
    """"7 ongoing / target 5 → wants 2 replicas; 1 fits → requests queue".

    ``fits`` is how many replicas the GPUs can hold (from the fit verdict), when known."""
    ongoing = a.total_requests if a.total_requests is not None else (
        sum(a.ongoing_per_replica.values()) if a.ongoing_per_replica else None)
    parts = []
    if ongoing is not None:
        parts.append(f"{ongoing:g} ongoing")
    if a.target_ongoing_requests is not None:
        parts.append(f"target {a.target_ongoing_requests:g}")
    text = " / ".join(parts) if parts else "no autoscaling figures"
    wanted = a.wanted_replicas
    if wanted is not None:
        text += f" → wants {wanted} replica{'s' if wanted != 1 else ''}"
    if fits is not None and wanted is not None and fits < wanted:
        text += f"; {fits} fit{'s' if fits == 1 else ''} → requests queue"
    return text
