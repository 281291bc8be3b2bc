"""What a test compares when it replays a recording that an earlier vramtop wrote: a plain-data
summary of each snapshot (GPUs, processes, errors, Ray state, serving telemetry), read only
through attributes, so the summary saved beside the file when it was made and the one taken
from today's replay of it say the same thing only if every record came back."""

from __future__ import annotations

from typing import Any

from vramtop.snapshot import NodeSnapshot


def summary(s: NodeSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timestamp": s.timestamp,
        "hostname": s.hostname,
        "gpus": [[g.index, g.name, g.used_mib, g.free_mib, g.lost] for g in s.gpus],
        "processes": [[p.pid, p.gpu_index, p.used_mib, p.host.title if p.host else None, p.hidden_reason]
                      for p in s.gpu_processes],
        "ancestors": sorted(s.ancestors),
        "errors": [[e.source, e.message] for e in s.errors],
        "ray": None,
        "telemetry": None,
    }
    if s.ray is not None:
        out["ray"] = {
            "address": s.ray.address,
            "status": s.ray.status,
            "applications": [a.name for a in s.ray.applications],
            "deployments": [[d.app, d.name, d.target_num_replicas, d.num_gpus,
                             [d.autoscaling.min_replicas, d.autoscaling.max_replicas] if d.autoscaling else None,
                             [r.state for r in d.replicas]] for d in s.ray.deployments],
            "nodes": [[n.node_id, dict(n.resources_total),
                       [[g.index, g.uuid, g.memory_used_mib, {str(k): v for k, v in g.process_mib.items()}] for g in n.gpus]]
                      for n in s.ray.nodes],
            "placement_groups": [[pg.placement_group_id, pg.state, [dict(b.resources) for b in pg.bundles]]
                                 for pg in s.ray.placement_groups],
            "actors": [[a.actor_id, a.class_name, a.pid, a.placement_group_id, a.bundle_index] for a in s.ray.actors],
        }
    if s.telemetry is not None:
        t = s.telemetry
        out["telemetry"] = {
            "instances": {
                key: [i.engine, i.status, i.summary, i.endpoint,
                      i.vllm.kv_cache_usage if i.vllm else None,
                      i.vllm.cache.num_gpu_blocks if i.vllm and i.vllm.cache else None,
                      list(i.history.kv_cache_usage),
                      [i.kv_check.predicted_blocks, i.kv_check.actual_blocks] if i.kv_check else None]
                for key, i in t.instances.items()},
            "serve": [[a.application, a.deployment, a.total_requests, a.desired_replicas] for a in t.serve],
            "notices": list(t.notices),
            "ollama": [t.ollama.address, t.ollama.status, [[m.name, m.size_mib, m.vram_mib] for m in t.ollama.models]]
            if t.ollama else None,
            "containers": {str(pid): [c.runtime, c.container_id, c.pod] for pid, c in t.containers.items()},
            "loaded": {str(pid): [list(f.frameworks), list(f.model_files)] for pid, f in t.loaded.items()},
            "trends": [[w.pid, w.gpu_index, w.mib_per_s, w.message] for w in t.trends],
            "phases": {str(pid): phase for pid, phase in t.phases.items()},
        }
    return out
