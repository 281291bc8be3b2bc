"""A node that keeps changing, for recording tests: the demo node with its Ray state and serving
telemetry, plus processes that come and go, a GPU lost for a while, errors, hidden processes and
a PID whose ancestor record differs from its GPU-process record."""

from __future__ import annotations

import dataclasses
import random

from vramtop.ray.demo import DemoRayPoller
from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot, SourceError
from vramtop.sources.demo import DemoSource
from vramtop.telemetry.demo import DemoTelemetry

START = 1_700_000_100.0


def changing_node(count: int, seed: int = 7, step: float = 1.0) -> list[NodeSnapshot]:
    rng = random.Random(seed)
    now = [START]
    clock = lambda: now[0]  # noqa: E731
    node, ray, telemetry = DemoSource(clock=clock), DemoRayPoller(clock=clock), DemoTelemetry(clock=clock)
    out = []
    extra: dict[int, GpuProcess] = {}
    ray_state = None
    for tick in range(count):
        s = node.sample()
        if tick % 5 == 0:  # Ray is polled more slowly than the node
            ray_state = ray.poll()
        if rng.random() < 0.05:  # a job starts on a GPU...
            pid = 9000 + rng.randrange(50)
            host = HostProcess(pid, 1, "python", f"python train.py --job {pid}", ("python", "train.py"),
                               "alice", round(rng.uniform(0, 400), 1), rng.randrange(100, 9000), START + tick)
            extra[pid] = GpuProcess(pid, rng.randrange(4), rng.randrange(100, 2000), host=host)
        if extra and rng.random() < 0.04:  # ...and another ends
            extra.pop(rng.choice(sorted(extra)))
        procs = list(s.gpu_processes)
        for p in extra.values():  # their memory and CPU move
            procs.append(dataclasses.replace(
                p, used_mib=p.used_mib + rng.randrange(0, 64),
                host=dataclasses.replace(p.host, cpu_pct=round(rng.uniform(0, 400), 1))))
        if tick % 17 == 3:
            procs.append(GpuProcess(31337, 2, None, "graphics", None, "another PID namespace"))
        gpus = list(s.gpus)
        if 40 <= tick % 120 < 55:
            gpus[1] = dataclasses.replace(gpus[1], lost=True, error="GPU is lost", utilization_pct=None)
        errors = (SourceError("nvml:gpu1", "GPU is lost"),) if 40 <= tick % 120 < 55 else ()
        if tick % 31 == 0:
            errors += (SourceError("processes", f"pid {tick} vanished while being read"),)
        ancestors = dict(s.ancestors)
        if tick % 11 == 0:  # the engine read twice, with other figures as an ancestor
            ancestors[4100] = dataclasses.replace(ancestors[4100], cpu_pct=float(tick))
        s = dataclasses.replace(s, gpus=tuple(gpus), gpu_processes=tuple(procs), errors=errors,
                                ancestors=ancestors, ray=None if 200 <= tick < 210 else ray_state)
        s = dataclasses.replace(s, telemetry=telemetry.poll(s))
        out.append(s)
        now[0] += step * rng.uniform(0.9, 1.1)
    return out
