"""The Ray state exported: the ``ray`` section of ``vramtop --once --json`` and of the report, and
its text lines, from one state and its analysis. Field names follow Serve's own (``target_ongoing_requests``, ``min_replicas``...)."""

from __future__ import annotations

from typing import Any

from vramtop.ray.feasibility import DeploymentAnalysis, RayAnalysis
from vramtop.ray.model import Deployment, LLMConfig, RayState
from vramtop.units import duration


def _llm(llm: LLMConfig | None) -> dict[str, Any] | None:
    if llm is None:
        return None
    return {
        "model_id": llm.model_id,
        "tensor_parallel_size": llm.tensor_parallel_size,
        "pipeline_parallel_size": llm.pipeline_parallel_size,
        "gpu_memory_utilization": llm.gpu_memory_utilization,
        "max_model_len": llm.max_model_len,
    }


def _deployment(dep: Deployment, a: DeploymentAnalysis) -> dict[str, Any]:
    return {
        "app": dep.app,
        "name": dep.name,
        "status": dep.status,
        "status_trigger": dep.status_trigger,
        "message": dep.message or None,
        "replicas": {"running": a.running, "starting": a.starting, "pending": a.pending},
        "pending_for_s": None if a.pending_for_s is None else round(a.pending_for_s, 1),
        "target_replicas": a.target_replicas,
        "num_replicas": dep.num_replicas,
        "autoscaling": None if dep.autoscaling is None else {
            "min_replicas": a.min_replicas,
            "max_replicas": a.max_replicas,
            "target_ongoing_requests": a.target_ongoing_requests,
        },
        "gpus_per_replica": a.gpus_per_replica,
        "cpus_per_replica": a.cpus_per_replica,
        "resources_from": a.shape.source if a.shape else None,
        "bundles": [dict(b) for b in a.shape.bundles] if a.shape else None,
        "max_feasible_replicas": a.max_feasible_replicas,
        "warnings": list(a.warnings),
        "vram_per_replica_mib": a.vram_per_replica_mib,
        "vram_at_min_mib": a.vram_at_min_mib,
        "vram_at_max_mib": a.vram_at_max_mib,
        "llm": _llm(dep.llm),
        "replica_list": [
            {"replica_id": r.replica_id, "state": r.state, "pending": r.pending, "pid": r.pid,
             "node_id": r.node_id, "start_time_s": r.start_time_s}
            for r in dep.replicas
        ],
    }


def to_dict(state: RayState, analysis: RayAnalysis) -> dict[str, Any]:
    """The ``ray`` section. ``status`` is "ok", "not found" (no Ray there) or what failed;
    with an ``error`` the rest is the last good poll's (``last_success``) or empty."""
    by_key = {a.key: a for a in analysis.deployments}
    return {
        "address": state.address,
        "status": state.status,
        "error": state.error,
        "last_success": state.last_success,
        "ray_version": state.ray_version,
        "notes": list(state.notes),
        "cluster_gpus": analysis.cluster_gpus,
        "cluster_vram_mib": analysis.cluster_vram_mib,
        "applications": [
            {"name": a.name, "status": a.status, "message": a.message or None, "import_path": a.import_path}
            for a in state.applications
        ],
        "deployments": [_deployment(d, by_key[d.key]) for d in state.deployments if d.key in by_key],
        "nodes": [
            {
                "node_id": n.node_id,
                "node_ip": n.node_ip,
                "hostname": n.hostname,
                "is_head": n.is_head,
                "state": n.state,
                "gpus_total": n.total("GPU"),
                "gpus_available": n.available("GPU"),
                "cpus_total": n.total("CPU"),
                "cpus_available": n.available("CPU"),
                "gpus": [
                    {"index": g.index, "name": g.name, "uuid": g.uuid, "memory_used_mib": g.memory_used_mib,
                     "memory_total_mib": g.memory_total_mib, "utilization_pct": g.utilization_pct}
                    for g in n.gpus
                ],
            }
            for n in state.nodes
        ],
        "replica_of_pid": {str(pid): link.label for (_, pid), link in sorted(analysis.links.items(), key=lambda kv: kv[0][::-1])},
    }


def _count(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


def deployment_line(a: DeploymentAnalysis) -> str:
    """"seed/FakeLLM: 1 running, 1 pending (42 s) / target 2 (min 2, max 16); 4 GPU per replica,
    at most 1 fits"."""
    counts = f"{a.running} running"
    if a.starting:
        counts += f", {a.starting} starting"
    if a.pending:
        waited = f" ({duration(a.pending_for_s)})" if a.pending_for_s is not None else ""
        counts += f", {a.pending} pending{waited}"
    target = f" / target {a.target_replicas}" if a.target_replicas is not None else ""
    bounds = f" (min {_count(a.min_replicas)}, max {_count(a.max_replicas)})" if a.max_replicas is not None else ""
    gpus = f"; {_count(a.gpus_per_replica)} GPU per replica" if a.shape else ""
    fits = f", at most {a.max_feasible_replicas} fit" if a.max_feasible_replicas is not None else ""
    return f"{a.key}: {counts}{target}{bounds}{gpus}{fits}"


def text_lines(state: RayState, analysis: RayAnalysis) -> list[str]:
    """The ``--once`` text form: the state's one line, then a line per deployment and warning."""
    lines = [state.summary()]
    for a in analysis.deployments:
        lines.append("  " + deployment_line(a))
        lines += [f"    ! {w}" for w in a.warnings]
    lines += [f"  note: {n}" for n in state.notes]
    return lines
