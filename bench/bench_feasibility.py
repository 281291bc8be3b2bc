"""What the Ray panel's feasibility costs: ``feasibility.pack`` (first fit in closed form: one
turn per distinct placement) against first fit one replica at a time (the packing it replaced),
measured in the same run on the same clusters.

  cluster            nodes x GPUs, the replica's bundles, replicas asked (max_replicas + 1)
  one at a time      replicas placed one by one, each trying the nodes in order
  closed form        feasibility.pack

Run: python bench/bench_feasibility.py [iterations]
"""

from __future__ import annotations

import sys

from cpu import mean_ms
from vramtop.ray.feasibility import PLACEMENT_GROUP, ReplicaShape, pack


def one_at_a_time(shape: ReplicaShape, capacity: dict, wanted: int) -> int:
    """First fit replica by replica (bundles on the first bundle's node first)."""
    free = {n: dict(r) for n, r in capacity.items()}
    running = 0
    while running < wanted:
        trial = {n: dict(r) for n, r in free.items()}
        homes: list[str] = []
        for bundle in shape.bundles:
            order = homes[:1] + [n for n in trial if n not in homes[:1]]
            node = next((n for n in order if all(trial[n].get(k, 0.0) + 1e-9 >= v for k, v in bundle.items())), None)
            if node is None:
                return running
            for k, v in bundle.items():
                trial[node][k] -= v
            homes.append(node)
        free = trial
        running += 1
    return running


CASES = (
    ("seed: 1 x 4 GPUs, 4-GPU replica, max 16", 1, 4, ({"GPU": 4.0, "CPU": 1.0},), 17),
    ("16 x 8 GPUs, 1-GPU replica, max 200", 16, 8, ({"GPU": 1.0, "CPU": 1.0},), 201),
    ("64 x 8 GPUs, TP=2 bundles, max 1,000", 64, 8, ({"GPU": 1.0, "CPU": 1.0}, {"GPU": 1.0}), 1001),
)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for name, nodes, gpus, bundles, wanted in CASES:
        shape = ReplicaShape(bundles, PLACEMENT_GROUP)
        capacity = {f"n{i}": {"GPU": float(gpus), "CPU": 64.0} for i in range(nodes)}
        assert pack(shape, capacity, wanted).running == one_at_a_time(shape, capacity, wanted)
        base = mean_ms(lambda: one_at_a_time(shape, capacity, wanted), n)
        closed = mean_ms(lambda: pack(shape, capacity, wanted), n)
        print(f"{name:40} one at a time {base:8.3f} ms   closed form {closed:7.3f} ms   one at a time / closed form {base / closed:5.1f}")
    huge = ReplicaShape(({"GPU": 1.0},), PLACEMENT_GROUP)
    closed = mean_ms(lambda: pack(huge, {"n": {"GPU": 1e15}}, 10**9 + 1), n)
    print(f"{'1 node x 1e15 GPUs, max_replicas 1e9':40} one at a time (not run: 1e9 turns)   closed form {closed:7.3f} ms")


if __name__ == "__main__":
    main()
