"""``vramtop --once``: the current picture as text or as the documented JSON snapshot.

The JSON is a stable interface (``schema`` is bumped on any incompatible change); the README
documents every field. Both forms are built from the same snapshot and analysis as the TUI.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from vramtop import __version__
from vramtop.analysis import roles
from vramtop.analysis.instances import instance_of, instances_of
from vramtop.analysis.states import SYMBOLS, Thresholds, gpu_state
from vramtop.snapshot import MigSlice, NodeSnapshot, slice_label
from vramtop.telemetry.model import InstanceTelemetry, Telemetry, process_facts
from vramtop.units import gib, memory_sum

SCHEMA = 1


def to_dict(snapshot: NodeSnapshot, thresholds: Thresholds) -> dict[str, Any]:
    """The JSON document of one snapshot."""
    instances = instances_of(snapshot)
    owner = instance_of(instances)
    processes = []
    for p in snapshot.gpu_processes:
        inst = owner.get((p.gpu_index, p.pid))
        # the role its instance gives it (vLLM V0's ranks, untitled workers), else its own
        role = next((m.role for m in inst.members if m.pid == p.pid), None) if inst else None
        role = role or roles.classify(p.host)
        facts = process_facts(snapshot.telemetry, p)
        processes.append({
            "pid": p.pid,
            "gpu": p.gpu_index,
            "mig_slice": p.mig_slice,  # the MIG slice of that GPU it runs on
            "used_mib": p.used_mib,
            "kind": p.kind,
            "engine": role.engine,
            "role": role.kind,
            "label": role.label or None,
            "instance": inst.key if inst else None,
            "user": p.host.user if p.host else None,
            "cpu_pct": p.host.cpu_pct if p.host else None,
            "rss_mib": p.host.rss_mib if p.host else None,
            "command": p.host.title if p.host else None,
            "visible": p.host is not None,
            "hidden_reason": p.hidden_reason,
            "container": dataclasses.asdict(facts.container) if facts.container is not None else None,
            "frameworks": list(facts.loaded.frameworks) if facts.loaded is not None else [],
            "model_files": list(facts.loaded.model_files) if facts.loaded is not None else [],
        })
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "vramtop_version": __version__,
        "timestamp": snapshot.timestamp,
        "hostname": snapshot.hostname,
        "source": snapshot.source,
        "driver_version": snapshot.driver_version,
        "cuda_version": snapshot.cuda_version,
        "node": {
            "total_mib": snapshot.total_mib,
            "reserved_mib": snapshot.reserved_mib,
            "used_mib": snapshot.used_mib,
            "free_mib": snapshot.free_mib,
        },
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "total_mib": g.total_mib,
                "reserved_mib": g.reserved_mib,
                "used_mib": g.used_mib,
                "free_mib": g.free_mib,
                "state": gpu_state(g, thresholds),
                "utilization_pct": g.utilization_pct,
                "temperature_c": g.temperature_c,
                "power_w": g.power_w,
                "power_limit_w": g.power_limit_w,
                "memory_api": g.memory_api,
                "lost": g.lost,
                "error": g.error,
                **({"node": g.node} if g.node is not None else {}),  # cluster mode: the Ray node
                "mig": [_mig_slice(m, thresholds) for m in g.mig],
            }
            for g in snapshot.gpus
        ],
        "processes": processes,
        "instances": [
            {
                "key": i.key,
                "name": i.name,
                "replica": i.replica.label if i.replica is not None else None,  # Ray Serve's app/deployment#id
                "ray_job": i.job.job.job_id if i.job is not None else None,  # the Ray job its workers were joined by
                "engine": i.engine,
                "tp_size": i.tp_size,
                "pp_size": i.pp_size,
                "dp_size": i.dp_size,
                "root_pid": i.root_pid,
                "api_pid": i.api_pid,
                "note": i.note,
                "pids": list(i.pids),
                "members": [
                    {"pid": m.pid, "engine": m.role.engine, "role": m.role.kind, "label": m.role.label or None,
                     "per_gpu_mib": dict(m.per_slice_mib)}  # "0", or "0:1" for a MIG slice
                    for m in i.members
                ],
                "per_gpu_mib": dict(i.per_slice_mib),  # "0", or "0:1" for a MIG slice
                "total_mib": i.total_mib,
                "memory_incomplete": i.unknown_mib,
                **({"telemetry": _instance_telemetry(t)}
                   if snapshot.telemetry is not None and (t := snapshot.telemetry.for_instance(i.key)) else {}),
            }
            for i in instances
        ],
        "errors": [{"source": e.source, "message": e.message} for e in snapshot.errors],
    }
    if snapshot.ray is not None:
        from vramtop.ray import export as ray_export
        from vramtop.ray.feasibility import analyze

        doc["ray"] = ray_export.to_dict(snapshot.ray, analyze(snapshot.ray, snapshot))
    if snapshot.telemetry is not None:
        doc["telemetry"] = _node_telemetry(snapshot.telemetry)
    return doc


def _mig_slice(m: MigSlice, thresholds: Thresholds) -> dict[str, Any]:
    return {
        "index": m.index, "profile": m.profile, "name": m.name, "uuid": m.uuid,
        "gpu_instance_id": m.gpu_instance_id, "compute_instance_id": m.compute_instance_id,
        "total_mib": m.total_mib, "reserved_mib": m.reserved_mib, "used_mib": m.used_mib,
        "free_mib": m.free_mib, "state": gpu_state(m, thresholds), "memory_api": m.memory_api, "error": m.error,
    }


def _instance_telemetry(t: InstanceTelemetry) -> dict[str, Any]:
    """What the instance's engine reported (its figures as ``VllmMetrics`` names them)."""
    out: dict[str, Any] = {"status": t.status, "summary": t.summary, "endpoint": t.endpoint}
    if t.vllm is not None:
        m = t.vllm
        out.update({name: getattr(m, name) for name in (
            "kv_cache_usage", "requests_running", "requests_waiting", "preemptions_total",
            "prompt_tokens_per_s", "generation_tokens_per_s")})
        out["model_names"] = list(m.model_names)
        if m.cache is not None:
            out["cache"] = dataclasses.asdict(m.cache)
    if t.kv_check is not None:
        error = t.kv_check.error_pct
        out["kv_check"] = {**dataclasses.asdict(t.kv_check), "error_pct": None if error is None else round(error, 2)}
    return out


def _node_telemetry(tel: Telemetry) -> dict[str, Any]:
    """Ollama's loaded models, Ray Serve's autoscaling demand, memory trends, notices."""
    return {
        "ollama": None if tel.ollama is None else {
            "address": tel.ollama.address, "status": tel.ollama.status,
            "models": [dataclasses.asdict(m) for m in tel.ollama.models]},
        "serve": [{**dataclasses.asdict(a), "wanted_replicas": a.wanted_replicas} for a in tel.serve],
        "trends": [dataclasses.asdict(w) for w in tel.trends],
        "notices": list(tel.notices),
    }


def to_json(snapshot: NodeSnapshot, thresholds: Thresholds) -> str:
    return json.dumps(to_dict(snapshot, thresholds), indent=2)


def to_text(snapshot: NodeSnapshot, thresholds: Thresholds) -> str:
    """A plain, pipe-friendly picture: node, GPUs, instances, processes, errors."""
    out = []
    if snapshot.source == "cluster":
        nodes = len({g.node for g in snapshot.gpus})
        head = f"{snapshot.hostname}  {nodes} Ray node{'s' if nodes != 1 else ''} with GPUs (reserved memory counted as used)"
    else:
        head = f"{snapshot.hostname}  driver {snapshot.driver_version or 'n/a'}  CUDA {snapshot.cuda_version or 'n/a'}"
    if snapshot.source != "nvml":
        head += f"  [{snapshot.source.upper()}]"
    out.append(head)
    out.append(
        f"node: used {snapshot.used_mib:,} / {snapshot.total_mib:,} MiB ({gib(snapshot.used_mib)} / "
        f"{gib(snapshot.total_mib)}), reserved {snapshot.reserved_mib:,} MiB, free {snapshot.free_mib:,} MiB "
        f"({gib(snapshot.free_mib)})"
    )
    for g in snapshot.gpus:
        state = gpu_state(g, thresholds)
        gpu = f"GPU {g.index} {g.name}" + (f" on {g.node}" if g.node is not None else "")
        if g.lost:
            out.append(f"{gpu}: {SYMBOLS[state]} {state}: {g.error or 'GPU is lost'}")
            continue
        util = f"{g.utilization_pct}%" if g.utilization_pct is not None else "n/a"
        out.append(
            f"{gpu}: {memory_sum(g.used_mib, g.reserved_mib, g.free_mib, g.total_mib)}  util {util}  "
            f"{SYMBOLS[state]} {state}"
            + (f"  ({g.error})" if g.error else "")
        )
        for m in g.mig:
            state = gpu_state(m, thresholds)
            out.append(
                f"  MIG {slice_label(g.index, m.index)} {m.profile} (GI {m.gpu_instance_id} CI {m.compute_instance_id}): "
                f"{memory_sum(m.used_mib, m.reserved_mib, m.free_mib, m.total_mib)}  {SYMBOLS[state]} {state}"
            )
    instances = instances_of(snapshot)
    owner = instance_of(instances)
    if instances:
        out.append("instances:")
        for i in instances:
            per_gpu = ", ".join(f"GPU {g}: {mib:,}" for g, mib in i.per_slice_mib.items())
            sizes = "".join(f" {axis}={n}" for axis, n in (("TP", i.tp_size), ("PP", i.pp_size), ("DP", i.dp_size)) if n)
            out.append(f"  {i.label} [{i.engine}{sizes}] {i.total_mib:,} MiB ({per_gpu}), "
                       f"{len(i.members)} process{'es' if len(i.members) != 1 else ''}" + (f"; {i.note}" if i.note else ""))
    if snapshot.gpu_processes:
        out.append("processes:")
        for p in snapshot.gpu_processes:
            role = roles.classify(p.host)
            mib = f"{p.used_mib:,} MiB" if p.used_mib is not None else "n/a"
            what = p.host.title if p.host else (p.hidden_reason or "not visible from here")
            inst = found.name if (found := owner.get((p.gpu_index, p.pid))) else "-"
            out.append(f"  GPU {slice_label(p.gpu_index, p.mig_slice)} pid {p.pid} {mib:>10}  {role.text:<22} {inst}  {what}")
    if snapshot.ray is not None:
        from vramtop.ray import export as ray_export
        from vramtop.ray.feasibility import analyze

        out += ray_export.text_lines(snapshot.ray, analyze(snapshot.ray, snapshot))
    for e in snapshot.errors:
        out.append(f"error: {e.source}: {e.message}")
    return "\n".join(out)
