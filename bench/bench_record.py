"""What recording costs: CPU per snapshot, and bytes per snapshot and per day at 1 Hz.

Run from the repository root: ``python bench/bench_record.py [--snapshots 3600]``.

The node is synthetic, 8 GPUs (80 GiB) and 32 GPU processes: four vLLM instances (TP=2:
API server, EngineCore and two workers each, under a Ray Serve replica), eight Ollama runners
and a few training jobs. Change rates follow a live node's: utilization, temperature and power
of every GPU and the CPU share of every process move every tick; vLLM's memory never moves;
training jobs' memory and RSS drift every few ticks; a job ends and another starts every ten
minutes; Ray is polled every 5 s and serving telemetry every tick.

Baselines in the same run: ``json.dumps`` of the snapshot's ``--once --json`` document (what a
naive recorder would append per tick), as is and gzip-compressed as one stream.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from vramtop import once  # noqa: E402
from vramtop.analysis.states import Thresholds  # noqa: E402
from vramtop.ray.demo import DemoRayPoller  # noqa: E402
from vramtop.recording import Recorder, Recording  # noqa: E402
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot  # noqa: E402
from vramtop.telemetry.model import InstanceTelemetry, Telemetry, VllmMetrics  # noqa: E402

TOTAL, RESERVED = 81_559, 527


class SyntheticNode:
    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.t = 1_700_000_000.0
        self.ray = DemoRayPoller(clock=lambda: self.t)
        self.ray_state = None
        self.hosts: dict[int, HostProcess] = {}
        self.ancestors: dict[int, HostProcess] = {}
        self.procs: list[list] = []  # [pid, gpu, used_mib]
        pid = 10_000
        raylet = self._host(900, 1, "raylet", "raylet")
        self.ancestors[900] = raylet
        for inst in range(4):
            replica = self._host(pid, 900, "ray::ServeRepli", f"ray::ServeReplica:llm{inst}:VLLMDeployment")
            api = self._host(pid + 1, pid, "python", f"vllm serve model{inst} --tensor-parallel-size 2")
            engine = self._host(pid + 2, pid + 1, "VLLM::EngineCor", "VLLM::EngineCore")
            self.ancestors.update({pid: replica, pid + 1: api, pid + 2: engine})
            for rank in range(2):
                w = self._host(pid + 3 + rank, pid + 2, "VLLM::Worker_TP", f"VLLM::Worker_TP{rank}")
                self.hosts[w.pid] = w
                self.procs.append([w.pid, 2 * inst + rank, 70_100])
            pid += 10
        ollama = self._host(20_000, 1, "ollama", "ollama serve")
        self.ancestors[20_000] = ollama
        for i in range(8):
            runner = self._host(20_001 + i, 20_000, "ollama", f"ollama runner --model m{i} --port {40000 + i}")
            self.hosts[runner.pid] = runner
            self.procs.append([runner.pid, i, 900 + 37 * i])
        self.next_pid = 30_000
        while len(self.procs) < 32:
            self._start_job()

    def _host(self, pid, ppid, name, title):
        return HostProcess(pid, ppid, name, title, tuple(title.split()), "svc", 1.0, 2_000, self.t)

    def _start_job(self):
        h = self._host(self.next_pid, 1, "python", f"python train.py --run {self.next_pid}")
        self.hosts[h.pid] = h
        self.procs.append([h.pid, self.rng.randrange(8), 2_000])
        self.next_pid += 1

    def sample(self, tick: int) -> NodeSnapshot:
        rng = self.rng
        self.t += 1.0
        if tick % 600 == 599:  # a job ends, another starts
            jobs = [p for p in self.procs if p[0] >= 30_000]
            self.procs.remove(jobs[0])
            self._start_job()
        for p in self.procs:
            if p[0] >= 30_000 and tick % 5 == 0:
                p[2] += rng.randrange(-16, 48)
        for pid, h in list(self.hosts.items()):  # psutil's cpu_percent moves every tick
            rss = h.rss_mib + (rng.randrange(-4, 8) if tick % 10 == 0 else 0)
            self.hosts[pid] = dataclasses.replace(h, cpu_pct=round(rng.uniform(0, 120), 1), rss_mib=rss)
        used = [sum(p[2] for p in self.procs if p[1] == g) for g in range(8)]
        gpus = tuple(GpuInfo(
            index=g, name="NVIDIA H100 80GB HBM3", uuid=f"GPU-0d1c0000-0000-4000-8000-{g:012d}",
            total_mib=TOTAL, reserved_mib=RESERVED, used_mib=min(used[g], TOTAL - RESERVED),
            free_mib=max(0, TOTAL - RESERVED - used[g]), utilization_pct=rng.randrange(40, 100),
            memory_utilization_pct=rng.randrange(20, 80), temperature_c=rng.randrange(55, 75),
            power_w=round(rng.uniform(300, 690), 2), power_limit_w=700.0) for g in range(8))
        procs = tuple(GpuProcess(p[0], p[1], p[2], host=self.hosts[p[0]]) for p in self.procs)
        if tick % 5 == 0:
            self.ray_state = self.ray.poll()
        telemetry = Telemetry(self.t, instances={
            f"ray:{10_000 + 10 * i}": InstanceTelemetry(
                f"ray:{10_000 + 10 * i}", "vllm", "ok", f"KV {rng.randrange(100)} %",
                vllm=VllmMetrics("http://127.0.0.1:8000/metrics", kv_cache_usage=round(rng.random(), 2),
                                 requests_running=rng.randrange(30), requests_waiting=rng.randrange(5),
                                 generation_tokens_per_s=float(rng.randrange(3000))))
            for i in range(4)})
        return NodeSnapshot(self.t, "bench-h100-node", "nvml", "550.54.15", "12.4", "12.550.54.15",
                            gpus, procs, dict(self.ancestors), (), self.ray_state, telemetry)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshots", type=int, default=3600, help="snapshots to record (default: one hour at 1 Hz)")
    n = ap.parse_args().snapshots
    node = SyntheticNode()
    snaps = [node.sample(i) for i in range(n)]
    th = Thresholds()

    buf = io.BytesIO()
    rec_ms = []
    with Recorder(buf, snaps[0].hostname, 1.0) as rec:
        for s in snaps:
            t0 = time.perf_counter()
            rec.write(s)
            rec_ms.append((time.perf_counter() - t0) * 1000)
    size = len(buf.getvalue())

    json_ms, json_bytes = [], 0
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb") as zf:
        for s in snaps:
            t0 = time.perf_counter()
            line = json.dumps(once.to_dict(s, th)).encode() + b"\n"
            json_ms.append((time.perf_counter() - t0) * 1000)
            json_bytes += len(line)
            zf.write(line)
    per = size / n
    print(f"synthetic node: 8 GPUs, {len(snaps[0].gpu_processes)} GPU processes, "
          f"{len(snaps[0].ancestors)} ancestors, Ray + telemetry; {n} snapshots at 1 Hz")
    print(f"record   {statistics.median(rec_ms):6.3f} ms/snapshot (median)   "
          f"json.dumps(--once --json) {statistics.median(json_ms):6.3f} ms   "
          f"ratio {statistics.median(rec_ms) / statistics.median(json_ms):.2f}x")
    print(f"bytes    recording {per:8,.0f} B/snapshot = {per * 86_400 / 2**20:7.1f} MiB/day at 1 Hz")
    print(f"         JSON lines {json_bytes / n:7,.0f} B/snapshot = {json_bytes / n * 86_400 / 2**20:7.1f} MiB/day; "
          f"gzip'd JSON lines {len(gz.getvalue()) / n:6,.0f} B/snapshot = "
          f"{len(gz.getvalue()) / n * 86_400 / 2**20:6.1f} MiB/day")

    path = Path("bench-record.vtrec")
    path.write_bytes(buf.getvalue())
    try:
        t0 = time.perf_counter()
        recording = Recording(path)
        open_s = time.perf_counter() - t0
        rng = random.Random(2)
        t0 = time.perf_counter()
        for _ in range(20):
            recording.snapshot(rng.randrange(len(recording)))
        jump_ms = (time.perf_counter() - t0) / 20 * 1000
        t0 = time.perf_counter()
        for i in range(len(recording)):
            recording.snapshot(i)
        play_ms = (time.perf_counter() - t0) / len(recording) * 1000
        assert recording.snapshot(n - 1) == snaps[-1]
    finally:
        path.unlink()
    print(f"replay   open {open_s * 1000:.0f} ms ({open_s / n * 86_400:.1f} s for a day), "
          f"jump to a random time {jump_ms:.1f} ms, play in order {play_ms:.3f} ms/snapshot")


if __name__ == "__main__":
    main()
