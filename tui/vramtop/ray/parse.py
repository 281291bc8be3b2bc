"""Dashboard JSON to ``model`` records: pure, and lenient with every field.

Shapes checked against a live Ray 2.60 dashboard. The Serve API and the state API (``/api/v0``)
use snake_case; ``/nodes?view=summary`` uses camelCase. A field that is missing or of another
type reads as None; a document whose frame is not what we expect raises ``SchemaError`` naming
what is missing, so the state can say "another Ray release" instead of showing nothing.

Counts are capped (``MAX_*``): a dashboard that lists more deployments, rows or bundles than any
real cluster has gets the first ones read and a note, so memory and the analysis stay bounded.
Numbers must be finite and within 2**53; others read as None.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

from vramtop.ray.model import (
    Actor,
    Application,
    Autoscaling,
    Bundle,
    Deployment,
    Job,
    LLMConfig,
    Node,
    PlacementGroup,
    RayGpu,
    Replica,
)


MAX_DEPLOYMENTS = 2_000  # across applications
MAX_REPLICAS = 1_000  # listed per deployment
MAX_ROWS = 10_000  # per state API answer (vramtop asks for at most this many)
MAX_BUNDLES = 256  # per placement group
MAX_NODE_GPUS = 256
MAX_RESOURCES = 256  # resource names per node or bundle
MAX_MESSAGE = 2_000  # characters of Ray's own message on an application or deployment
_LARGEST = 2**53


class SchemaError(ValueError):
    """The JSON is not shaped as this Ray release's dashboard sends it."""


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    elif isinstance(v, str) and 0 < len(v.strip()) <= 20 and v.strip().lstrip("-").isdigit():
        v = int(v)
    return v if isinstance(v, int) and -_LARGEST <= v <= _LARGEST else None


def _float(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)) and -_LARGEST <= v <= _LARGEST:
        return float(v)  # NaN and infinities fail the range test
    return None


def _message(v: Any) -> str:
    """Ray's own words on an application or deployment, at most ``MAX_MESSAGE`` characters."""
    return v[:MAX_MESSAGE] if isinstance(v, str) else ""


def _resources(v: Any) -> dict[str, float]:
    return {str(k): float(x) for k, x in list(_dict(v).items())[:MAX_RESOURCES] if _float(x) is not None}


# -- /api/serve/applications/ ------------------------------------------------------------------

def serve_details(doc: Any) -> tuple[tuple[Application, ...], tuple[Deployment, ...], tuple[str, ...]]:
    """Applications and deployments, plus notes on fields this release does not send."""
    if not isinstance(doc, dict) or not isinstance(doc.get("applications"), dict):
        raise SchemaError("/api/serve/applications/ has no 'applications' map")
    apps: list[Application] = []
    deployments: list[Deployment] = []
    missing: set[str] = set()
    listed = 0
    for app_name, raw_app in sorted(doc["applications"].items()):
        a = _dict(raw_app)
        config = _dict(a.get("deployed_app_config"))
        apps.append(Application(
            name=str(app_name), status=_str(a.get("status")), message=_message(a.get("message")),
            route_prefix=_str(a.get("route_prefix")), import_path=_str(config.get("import_path")),
            last_deployed_time_s=_float(a.get("last_deployed_time_s")),
        ))
        llms = llm_configs(config)
        for dep_name, raw_dep in sorted(_dict(a.get("deployments")).items()):
            listed += 1
            if listed > MAX_DEPLOYMENTS:
                continue
            d = _dict(raw_dep)
            for needed in ("target_num_replicas", "required_resources", "deployment_config"):
                if needed not in d:
                    missing.add(needed)
            deployments.append(_deployment(str(app_name), str(dep_name), d, llms))
    notes = (f"this Ray's Serve API sends no {', '.join(sorted(missing))} (shown as n/a)",) if missing else ()
    if listed > MAX_DEPLOYMENTS:
        notes += (f"only the first {MAX_DEPLOYMENTS:,} of {listed:,} deployments are read",)
    return tuple(apps), tuple(deployments), notes


def _deployment(app: str, name: str, d: dict, llms: Mapping[str, LLMConfig]) -> Deployment:
    config = _dict(d.get("deployment_config"))
    options = _dict(config.get("ray_actor_options"))
    auto = config.get("autoscaling_config")
    autoscaling = None
    if isinstance(auto, dict):
        autoscaling = Autoscaling(
            min_replicas=_int(auto.get("min_replicas")), max_replicas=_int(auto.get("max_replicas")),
            initial_replicas=_int(auto.get("initial_replicas")),
            target_ongoing_requests=_float(auto.get("target_ongoing_requests")),
        )
    replicas = tuple(
        Replica(
            replica_id=str(r.get("replica_id") or "?"), state=str(r.get("state") or "?"),
            actor_name=_str(r.get("actor_name")), actor_id=_str(r.get("actor_id")),
            pid=_int(r.get("pid")), node_id=_str(r.get("node_id")), node_ip=_str(r.get("node_ip")),
            start_time_s=_float(r.get("start_time_s")) or None,
        )
        for r in map(_dict, _list(d.get("replicas"))[:MAX_REPLICAS])
    )
    required = d.get("required_resources")
    return Deployment(
        app=app, name=name, status=_str(d.get("status")), status_trigger=_str(d.get("status_trigger")),
        message=_message(d.get("message")),
        target_num_replicas=_int(d.get("target_num_replicas")),
        num_replicas=_int(config.get("num_replicas")) if autoscaling is None else None,
        autoscaling=autoscaling,
        num_gpus=_float(options.get("num_gpus")), num_cpus=_float(options.get("num_cpus")),
        required_resources=_resources(required) if isinstance(required, dict) else None,
        max_replicas_per_node=_int(config.get("max_replicas_per_node")),
        replicas=replicas,
        llm=_llm_for(name, llms),
    )


def _deployment_name(model_id: str) -> str:
    """Ray Serve LLM's deployment name for a model (default ``LLMServer:`` prefix)."""
    return "LLMServer:" + model_id.replace("/", "--").replace(".", "_")


def _llm_for(name: str, llms: Mapping[str, LLMConfig]) -> LLMConfig | None:
    if name in llms:
        return llms[name]
    # A custom name prefix still ends with the mangled model id.
    return next((c for key, c in llms.items() if name.endswith(key.removeprefix("LLMServer:"))), None)


def llm_configs(deployed_app_config: Mapping[str, Any]) -> dict[str, LLMConfig]:
    """Ray Serve LLM models in an application's declarative config (``args.llm_configs``), by
    the deployment name Serve LLM gives them. Entries given as YAML paths carry nothing to read."""
    args = _dict(deployed_app_config.get("args"))
    found: dict[str, LLMConfig] = {}
    for raw in _list(args.get("llm_configs"))[:MAX_DEPLOYMENTS]:
        c = _dict(raw)
        loading = _dict(c.get("model_loading_config"))
        model_id = _str(loading.get("model_id"))
        if model_id is None:
            continue
        engine = _dict(c.get("engine_kwargs"))
        found[_deployment_name(model_id)] = LLMConfig(
            model_id=model_id,
            tensor_parallel_size=_int(engine.get("tensor_parallel_size")) or 1,
            pipeline_parallel_size=_int(engine.get("pipeline_parallel_size")) or 1,
            gpu_memory_utilization=_float(engine.get("gpu_memory_utilization")),
            max_model_len=_int(engine.get("max_model_len")),
            dtype=_str(engine.get("dtype")),
            quantization=_str(engine.get("quantization")),
            kv_cache_dtype=_str(engine.get("kv_cache_dtype")),
            max_num_seqs=_int(engine.get("max_num_seqs")),
            max_num_batched_tokens=_int(engine.get("max_num_batched_tokens")),
            enforce_eager=engine.get("enforce_eager") is True,
            accelerator_type=_str(c.get("accelerator_type")),
            engine_kwargs=dict(engine),
        )
    return found


# -- /api/v0/* (state API) ---------------------------------------------------------------------

def state_rows(doc: Any, path: str) -> list[dict]:
    """The rows of a state API answer: ``data.result.result`` (the first ``MAX_ROWS``)."""
    rows = _dict(_dict(_dict(doc).get("data")).get("result")).get("result")
    if not isinstance(rows, list):
        raise SchemaError(f"{path} has no data.result.result list")
    return [r for r in rows[:MAX_ROWS] if isinstance(r, dict)]


def nodes(rows: list[dict]) -> tuple[Node, ...]:
    return tuple(
        Node(
            node_id=str(r["node_id"]), node_ip=_str(r.get("node_ip")), hostname=_str(r.get("node_name")),
            is_head=r.get("is_head_node") is True, state=_str(r.get("state")),
            resources_total=_resources(r.get("resources_total")),
        )
        for r in rows if _str(r.get("node_id"))
    )


def placement_groups(rows: list[dict]) -> tuple[PlacementGroup, ...]:
    out = []
    for r in rows:
        pg_id = _str(r.get("placement_group_id"))
        if pg_id is None:
            continue
        bundles = []
        for i, b in enumerate(map(_dict, _list(r.get("bundles"))[:MAX_BUNDLES])):
            index = _int(_dict(b.get("bundle_id")).get("bundle_index"))
            bundles.append(Bundle(index=i if index is None else index,
                                  resources=_resources(b.get("unit_resources")), node_id=_str(b.get("node_id"))))
        out.append(PlacementGroup(
            placement_group_id=pg_id, name=r.get("name") or "", state=_str(r.get("state")),
            bundles=tuple(bundles), scheduling_state=_str(_dict(r.get("stats")).get("scheduling_state")),
        ))
    return tuple(out)


_BUNDLE_RESOURCE = re.compile(r"^[A-Za-z_]+_group_(\d+)_[0-9a-f]+$")


def actors(rows: list[dict]) -> tuple[Actor, ...]:
    out = []
    for r in rows:
        actor_id = _str(r.get("actor_id"))
        if actor_id is None:
            continue
        indices = {int(m.group(1)) for k in _dict(r.get("required_resources"))
                   if (m := _BUNDLE_RESOURCE.match(k))}
        pid = _int(r.get("pid"))
        out.append(Actor(
            actor_id=actor_id, class_name=r.get("class_name") or "", name=r.get("name") or "",
            state=_str(r.get("state")), pid=pid if pid else None, node_id=_str(r.get("node_id")),
            placement_group_id=_str(r.get("placement_group_id")),
            bundle_index=indices.pop() if len(indices) == 1 else None,
            job_id=_str(r.get("job_id")),
            detached=r.get("is_detached") if isinstance(r.get("is_detached"), bool) else None,
        ))
    return tuple(out)


def jobs(doc: Any) -> tuple[Job, ...]:
    """``/api/jobs/`` (a list of ``JobDetails``, dashboard/modules/job/pydantic_models.py): the
    running jobs with a driver; ``driver_info.pid`` is a string there."""
    if not isinstance(doc, list):
        raise SchemaError("/api/jobs/ is not a list")
    out = []
    for r in map(_dict, doc[:MAX_ROWS]):
        driver = _dict(r.get("driver_info"))
        pid = _str(driver.get("pid"))
        job_id = _str(r.get("job_id"))
        if r.get("status") != "RUNNING" or job_id is None or pid is None or not re.fullmatch(r"[1-9]\d{0,9}", pid):
            continue
        out.append(Job(job_id=job_id, driver_pid=int(pid), driver_ip=_str(driver.get("node_ip_address")),
                       driver_node_id=_str(r.get("driver_node_id")),
                       entrypoint=(_str(r.get("entrypoint")) or "")[:MAX_MESSAGE]))
    return tuple(out)


# -- /nodes?view=summary (camelCase) -----------------------------------------------------------

# "2.0/4.0 GPU (2.0 used of 2.0 reserved in placement groups)"; byte amounts carry a unit.
_USAGE_LINE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)([A-Za-z]*)/([0-9]+(?:\.[0-9]*)?)([A-Za-z]*) (\S+)(?:\s.*)?$")


def node_summary(doc: Any) -> tuple[dict[str, dict[str, float]], dict[str, tuple[str | None, tuple[RayGpu, ...]]]]:
    """Per node id: logical resources in use (from ``nodeLogicalResources`` lines such as
    ``4.0/4.0 GPU``; byte amounts are skipped) and (hostname, the reporter's GPUs)."""
    data = _dict(_dict(doc).get("data"))
    if "summary" not in data and "nodeLogicalResources" not in data:
        raise SchemaError("/nodes?view=summary has no data.summary")
    used: dict[str, dict[str, float]] = {}
    for node_id, text in list(_dict(data.get("nodeLogicalResources")).items())[:MAX_ROWS]:
        amounts: dict[str, float] = {}
        for line in str(text)[:65536].splitlines():
            m = _USAGE_LINE.match(line)
            if m and not m.group(2) and not m.group(4):
                amounts[m.group(5)] = _float(float(m.group(1))) or 0.0
        used[str(node_id)] = amounts
    gpus: dict[str, tuple[str | None, tuple[RayGpu, ...]]] = {}
    for s in map(_dict, _list(data.get("summary"))[:MAX_ROWS]):
        node_id = _str(_dict(s.get("raylet")).get("nodeId"))
        if node_id is None:
            continue
        found = []
        for g in map(_dict, _list(s.get("gpus"))[:MAX_NODE_GPUS]):
            index = _int(g.get("index"))
            if index is None:
                continue
            procs = {}
            for p in map(_dict, _list(g.get("processesPids"))[:MAX_ROWS]):
                pid, mib = _int(p.get("pid")), _int(p.get("gpuMemoryUsage"))
                if pid is not None and mib is not None:
                    procs[pid] = mib
            found.append(RayGpu(
                index=index, name=_str(g.get("name")), uuid=_str(g.get("uuid")),
                memory_used_mib=_int(g.get("memoryUsed")), memory_total_mib=_int(g.get("memoryTotal")),
                utilization_pct=_int(g.get("utilizationGpu")), process_mib=procs,
            ))
        gpus[node_id] = (_str(s.get("hostname")), tuple(found))
    return used, gpus
