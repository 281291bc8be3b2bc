"""The record types a recording may hold, by short stable tag: the only classes a replay builds.

A recording names each Ray and telemetry record by its tag (``ray.deployment``), never by where
its class lives, so moving a module keeps every saved recording readable, and a file cannot
make vramtop import or build anything that is not in this table. vramtop 0.1.0 wrote the Python
path of the class instead (``vramtop.ray.model:Deployment``); those paths are kept as aliases.
Records inside a GPU's or a process's row (a MIG slice) are tagged too. A new record type gets
a tag here (the recording tests check that every type a snapshot can hold has one).
"""

from __future__ import annotations

from vramtop.ray import model as ray
from vramtop.snapshot import MigSlice
from vramtop.telemetry import model as telemetry
from vramtop.telemetry.kv_check import KvCheck

RECORD_TYPES: dict[str, type] = {
    "ray": ray.RayState,
    "ray.application": ray.Application,
    "ray.deployment": ray.Deployment,
    "ray.replica": ray.Replica,
    "ray.autoscaling": ray.Autoscaling,
    "ray.llm_config": ray.LLMConfig,
    "ray.node": ray.Node,
    "ray.gpu": ray.RayGpu,
    "ray.placement_group": ray.PlacementGroup,
    "ray.bundle": ray.Bundle,
    "ray.actor": ray.Actor,
    "ray.job": ray.Job,
    "telemetry": telemetry.Telemetry,
    "telemetry.instance": telemetry.InstanceTelemetry,
    "telemetry.vllm": telemetry.VllmMetrics,
    "telemetry.vllm_cache": telemetry.CacheConfig,
    "telemetry.history": telemetry.ServingHistory,
    "telemetry.kv_check": KvCheck,
    "telemetry.ollama": telemetry.OllamaStatus,
    "telemetry.ollama_model": telemetry.OllamaModel,
    "telemetry.container": telemetry.ContainerInfo,
    "telemetry.loaded": telemetry.LoadedFiles,
    "telemetry.trend": telemetry.TrendWarning,
    "telemetry.serve": telemetry.ServeAutoscaling,
    "gpu.mig_slice": MigSlice,  # GpuInfo.mig
}

# What vramtop 0.1.0 wrote: the class's module and name. Written out, not computed, so that
# they stay what the old files hold when the classes move.
OLD_TAGS: dict[str, str] = {
    "vramtop.ray.model:RayState": "ray",
    "vramtop.ray.model:Application": "ray.application",
    "vramtop.ray.model:Deployment": "ray.deployment",
    "vramtop.ray.model:Replica": "ray.replica",
    "vramtop.ray.model:Autoscaling": "ray.autoscaling",
    "vramtop.ray.model:LLMConfig": "ray.llm_config",
    "vramtop.ray.model:Node": "ray.node",
    "vramtop.ray.model:RayGpu": "ray.gpu",
    "vramtop.ray.model:PlacementGroup": "ray.placement_group",
    "vramtop.ray.model:Bundle": "ray.bundle",
    "vramtop.ray.model:Actor": "ray.actor",
    "vramtop.telemetry.model:Telemetry": "telemetry",
    "vramtop.telemetry.model:InstanceTelemetry": "telemetry.instance",
    "vramtop.telemetry.model:VllmMetrics": "telemetry.vllm",
    "vramtop.telemetry.model:CacheConfig": "telemetry.vllm_cache",
    "vramtop.telemetry.model:ServingHistory": "telemetry.history",
    "vramtop.telemetry.kv_check:KvCheck": "telemetry.kv_check",
    "vramtop.telemetry.model:OllamaStatus": "telemetry.ollama",
    "vramtop.telemetry.model:OllamaModel": "telemetry.ollama_model",
    "vramtop.telemetry.model:ContainerInfo": "telemetry.container",
    "vramtop.telemetry.model:LoadedFiles": "telemetry.loaded",
    "vramtop.telemetry.model:TrendWarning": "telemetry.trend",
    "vramtop.telemetry.model:ServeAutoscaling": "telemetry.serve",
}

_TAGS = {cls: tag for tag, cls in RECORD_TYPES.items()}


def tag_of(cls: type) -> str | None:
    """The tag a record of ``cls`` is written with; None for a class that is no record type."""
    return _TAGS.get(cls)


def type_of(tag: object) -> type | None:
    """The class a tag read from a file names (a current tag or a 0.1.0 path); None otherwise."""
    if not isinstance(tag, str):
        return None
    return RECORD_TYPES.get(OLD_TAGS.get(tag, tag))
