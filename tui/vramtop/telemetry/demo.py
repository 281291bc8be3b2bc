"""Telemetry for the built-in demo node, so ``vramtop --demo`` shows the serving line too.

The demo node (sources/demo.py) serves one vLLM replica (TP=4, gpu_memory_utilization 0.9)
under Ray Serve on all four A10s: the autoscaler wants a second replica that cannot fit, the
situation the serving line exists to explain. Figures drift with the clock, without randomness,
so screenshots reproduce. Same ``poll`` signature as ``TelemetryPoller``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable

from vramtop.analysis import roles
from vramtop.analysis.instances import instances_of
from vramtop.snapshot import NodeSnapshot
from vramtop.telemetry import kv_check, ray_serve, vllm_metrics
from vramtop.telemetry.model import (
    OK, CacheConfig, InstanceTelemetry, ServeAutoscaling, ServingHistory, Telemetry, VllmMetrics,
)
from vramtop.telemetry.trend import MemoryTrend

MODEL = "google/medgemma-27b-it"
# What vLLM would report for it at TP=4 and 0.9 on the demo's A10s: a plausible figure, not a measured one.
CACHE = CacheConfig(gpu_memory_utilization=0.9, num_gpu_blocks=16_912, block_size=16, cache_dtype="auto")


def _wave(t: float, period: float, phase: float = 0.0) -> float:
    return 0.5 + 0.5 * math.sin(2 * math.pi * t / period + phase)


class DemoTelemetry:
    """What the demo replica's engine and Ray's autoscaler would report at ``clock()``."""

    def __init__(self, clock: Callable[[], float] = time.time, history: int = 300) -> None:
        self._clock = clock
        self._history: deque[VllmMetrics] = deque(maxlen=history)
        self._trend = MemoryTrend()

    @property
    def trend(self) -> MemoryTrend:
        return self._trend

    def poll(self, snapshot: NodeSnapshot) -> Telemetry:
        instances = instances_of(snapshot)
        t = self._clock()
        busy = _wave(t, 41.0)
        gen_rate = round(900 + 1_100 * busy)
        metrics = VllmMetrics(
            url="http://127.0.0.1:8000/metrics (demo)",
            model_names=(MODEL,),
            kv_cache_usage=round(0.2 + 0.6 * busy, 2),
            kv_metric=vllm_metrics.KV_USAGE,
            requests_running=round(4 + 10 * busy),
            requests_waiting=round(3 * _wave(t, 41.0, -0.8)),
            preemptions_total=0,
            prompt_tokens_per_s=float(round(2.5 * gen_rate)),
            generation_tokens_per_s=float(gen_rate),
            cache=CACHE,
        )
        self._history.append(metrics)
        per_instance: dict[str, InstanceTelemetry] = {}
        serve: list[ServeAutoscaling] = []
        for inst in instances:
            role = roles.classify(snapshot.host_process(inst.root_pid))
            if role.kind != "replica":
                continue
            demand = ServeAutoscaling(role.app or "", role.deployment or "", total_requests=7.0,
                                      target_ongoing_requests=5.0, desired_replicas=2, target_replicas=2)
            serve.append(demand)
            totals = {g: gpu.total_mib for g in inst.gpu_indices if (gpu := snapshot.gpu(g)) is not None}
            line = f"{vllm_metrics.summary(metrics, totals)} · serve: {ray_serve.summary(demand, fits=1)}"
            first_gpu = snapshot.gpu(inst.gpu_indices[0]) if inst.gpu_indices else None
            per_instance[inst.key] = InstanceTelemetry(inst.key, inst.engine, OK, line, metrics.url, metrics,
                                                       ServingHistory.of(self._history),
                                                       kv_check.kv_check(metrics, inst.tp_size or 1, first_gpu))
        return Telemetry(timestamp=snapshot.timestamp, instances=per_instance,
                         trends=self._trend.update(snapshot, instances), serve=tuple(serve))
