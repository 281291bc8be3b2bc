"""On a node of more instances than the fit engine judges stops for (``MAX_STOPS``), the stops it
judges, and so suggests, are those that free most on the candidate's GPUs, smallest first: real
Serve replicas on the stand-in driver, each holding its own memory on GPU 0."""

from __future__ import annotations

from vramtop.fit.verdict import MAX_STOPS, RED, evaluate
from vramtop.sources.live import LiveSource
from vramtop.widgets.whatif.assess import candidate_of
from vramtop.widgets.whatif.form import FormState

from engine_tree import Proc, proc_tree

# Ray starts actors as children of the raylet (src/ray/raylet/worker_pool.cc); a Serve replica
# titles itself ray::ServeReplica:<app>:<deployment> (ray/serve/_private/replica.py). Two more
# replicas than stops judged, 2,000 to 3,100 MiB each, all on GPU 0.
SIZES = [2_000 + 100 * k for k in range(MAX_STOPS + 4)]
TREE = (
    Proc("raylet", argv=("raylet", "--node_ip_address=10.0.0.5")),
    *(Proc(f"r{k}", f"ray::ServeReplica:chat:Model{k}", "raylet", {0: mib}) for k, mib in enumerate(SIZES)),
)
# Placed on GPU 0 only, at 0.5 of an H100: short of GPU 0's free memory by less than any replica.
CANDIDATE = FormState(model="google/medgemma-4b-it", gpu_memory_utilization="0.5", gpus="0")


def test_past_max_stops_the_stops_judged_free_most_on_the_candidates_gpus(fake_nvml):
    cand, errors = candidate_of(CANDIDATE)
    assert cand is not None and not errors, errors
    with proc_tree(*TREE) as tree:
        h100 = dict(name="NVIDIA H100 80GB HBM3", total_mib=81_559, reserved_mib=527)
        tree.scenario(fake_nvml.path, 2, **h100)
        (need,) = [g.needed_mib for g in evaluate(cand, LiveSource().sample(), suggest=False).per_gpu]
        held = sum(SIZES)
        used = 81_559 - 527 - need + 1_000  # GPU 0 1,000 MiB short: any one replica's stop would do
        tree.scenario(fake_nvml.path, 2, **h100, extra_used_mib={0: used - held})
        snapshot = LiveSource().sample()
        assert len({p.pid for p in snapshot.gpu_processes}) == len(SIZES)
        result = evaluate(cand, snapshot)

    assert result.verdict == RED
    stops = [s.text for s in result.suggestions if s.field == "stopped"]
    # The smallest of the MAX_STOPS largest, not the smallest replicas (2,000 and 2,100 MiB),
    # which were judged too before the bound.
    judged = sorted(SIZES)[-MAX_STOPS:]
    assert [s.split("(frees ")[1] for s in stops] == [f"{judged[0]:,} MiB)", f"{judged[1]:,} MiB)"], stops
