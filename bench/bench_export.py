"""What a Prometheus scrape of ``vramtop export`` costs, in CPU milliseconds.

The node is bench_record's synthetic one: 8 GPUs (80 GiB), 32 GPU processes (four vLLM
instances under Ray Serve replicas with their telemetry, eight Ollama runners, training jobs),
Ray Serve state; three headroom candidates (two vLLM, one Ollama). Measured in the same run:

  first scrape     a new snapshot's first scrape: instances, Ray analysis, the candidates'
                   verdicts, metric families and the text exposition (and without candidates)
  later scrape     another scrape of the same snapshot (the families are kept)
  JSON document    ``vramtop --once --json``'s document of the same snapshot (to_dict + dumps)
  empty registry   prometheus_client's generate_latest of a registry with nothing in it

Run from the repository root: python bench/bench_export.py [iterations]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from bench_record import SyntheticNode  # noqa: E402
from cpu import median_ms  # noqa: E402
from vramtop import once  # noqa: E402
from vramtop.analysis.states import Thresholds  # noqa: E402
from vramtop.exporter.candidates import parse_candidates  # noqa: E402
from vramtop.exporter.collector import LatestSnapshot, registry_for  # noqa: E402

CANDIDATES = [
    {"name": "medgemma-4b", "model": "medgemma-4b-it", "max_model_len": "8192"},
    {"name": "qwen-7b-tp2", "model": "Qwen/Qwen2.5-7B-Instruct", "tensor_parallel_size": "2"},
    {"name": "medgemma-27b-ollama", "model": "medgemma-27b", "engine": "ollama"},
]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    node = SyntheticNode()
    snapshots = [node.sample(i) for i in range(n + 1)]
    thresholds = Thresholds()
    latest = LatestSnapshot(thresholds, parse_candidates(CANDIDATES))
    registry = registry_for(latest)
    fresh = iter(snapshots)

    def first_scrape() -> bytes:
        latest.publish(next(fresh))
        return generate_latest(registry)

    first, first_min = median_ms(first_scrape, n)
    bare = LatestSnapshot(thresholds)  # the same scrape without candidates: the verdicts' share
    bare_registry = registry_for(bare)
    fresh = iter(snapshots)

    def first_bare() -> bytes:
        bare.publish(next(fresh))
        return generate_latest(bare_registry)

    no_candidates, no_candidates_min = median_ms(first_bare, n)
    later, later_min = median_ms(lambda: generate_latest(registry), n)
    document, document_min = median_ms(lambda: json.dumps(once.to_dict(snapshots[-1], thresholds)), n)
    empty, empty_min = median_ms(lambda: generate_latest(CollectorRegistry()), n)
    size = len(generate_latest(registry))

    print(f"8 GPUs, {len(snapshots[-1].gpu_processes)} GPU processes, {len(CANDIDATES)} candidates; "
          f"{size:,} bytes of exposition; CPU ms per call, median (fastest) of {n}")
    rows = [("first scrape of a snapshot", first, first_min),
            ("  the same without candidates", no_candidates, no_candidates_min),
            ("later scrape, same snapshot", later, later_min),
            ("baseline: --once --json document", document, document_min),
            ("baseline: empty registry", empty, empty_min)]
    for label, median, fastest in rows:
        print(f"  {label:<34} {median:7.2f} ({fastest:.2f})  {median / document:5.2f}x the JSON document")


if __name__ == "__main__":
    main()
