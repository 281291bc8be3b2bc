"""Serve applications the Ray tests deploy over REST (imported by Ray's workers, not by pytest).

Light on purpose: no CPU asked where Ray allows it, and the only GPUs are the cluster's logical
ones. ``llm_app`` has the shape of a Ray Serve LLM deployment: the replica asks for no GPU, Serve
gives it a placement group of one GPU bundle per tensor-parallel rank, and the replica starts one
worker actor per bundle, as vLLM's Ray executor does.
"""

from __future__ import annotations

import os

import ray
from ray import serve
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from gpu_user import start_gpu_user


def _replica_id() -> str:
    return serve.get_replica_context().replica_id.unique_id


@serve.deployment
class FakeLLM:
    def __init__(self) -> None:
        self.child = start_gpu_user(_replica_id(), 0)

    async def __call__(self, request) -> str:
        return "ok"


plain_app = FakeLLM.bind()


@ray.remote(num_cpus=0, num_gpus=1)
class RayWorkerWrapper:
    """Stands in for a vLLM worker: it holds one GPU bundle of the replica's placement group."""

    def __init__(self, replica_id: str, rank: int) -> None:
        self.child = start_gpu_user(replica_id, rank)

    def pid(self) -> int:
        return os.getpid()


class LLMServer:
    def __init__(self, tensor_parallel_size: int) -> None:
        pg = get_current_placement_group()
        self.workers = [
            RayWorkerWrapper.options(
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=rank),
            ).remote(_replica_id(), rank)
            for rank in range(tensor_parallel_size)
        ]
        self.worker_pids = ray.get([w.pid.remote() for w in self.workers])

    async def __call__(self, request) -> list[int]:
        return self.worker_pids


def llm_app(args: dict):
    """Builder with Ray Serve LLM's argument shape: ``{"llm_configs": [{model_loading_config,
    engine_kwargs, deployment_config}]}`` (one model here)."""
    (cfg,) = args["llm_configs"]
    model_id = cfg["model_loading_config"]["model_id"]
    tp = int(cfg.get("engine_kwargs", {}).get("tensor_parallel_size", 1))
    name = "LLMServer:" + model_id.replace("/", "--").replace(".", "_")
    bundles = [{"CPU": 0.01, "GPU": 1}] + [{"GPU": 1} for _ in range(tp - 1)]
    dep = serve.deployment(LLMServer, name=name).options(
        ray_actor_options={"num_cpus": 0.01, "num_gpus": 0},
        placement_group_bundles=bundles,
        placement_group_strategy="PACK",
        **cfg.get("deployment_config", {}),
    )
    return dep.bind(tp)
