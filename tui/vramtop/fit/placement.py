"""Which GPUs a candidate would get: the live node (as if some instances were stopped) or a
node on paper, and the choice of GPUs with most free memory.

vLLM counts a GPU's total as CUDA does (``cudaMemGetInfo``), which leaves out what the driver
reserves; on a snapshot that is ``total_mib - reserved_mib``. A paper GPU's size is taken as
that CUDA total, empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vramtop.analysis.instances import Instance, group_instances
from vramtop.snapshot import NodeSnapshot


@dataclass(frozen=True)
class GpuSlot:
    """One GPU as the fit engine sees it, in MiB."""

    index: int
    name: str
    total_mib: int  # as nvidia-smi shows it
    cuda_total_mib: int  # what CUDA (and so vLLM) calls total
    free_mib: int


@dataclass(frozen=True)
class NodeView:
    """The GPUs a candidate can use and the instances that could be stopped for it."""

    label: str
    gpus: tuple[GpuSlot, ...]
    instances: tuple[Instance, ...] = ()
    paper: bool = False

    @property
    def total_mib(self) -> int:
        return sum(g.cuda_total_mib for g in self.gpus)

    def gpu(self, index: int) -> GpuSlot | None:
        return next((g for g in self.gpus if g.index == index), None)


_LAST: list = [None, None]  # (snapshot, view): the panel asks for the same tick many times


def node_from_snapshot(snapshot: NodeSnapshot) -> NodeView:
    """The usable (not lost) GPUs of ``snapshot`` and its serving instances."""
    if _LAST[0] is snapshot:
        return _LAST[1]
    gpus = tuple(
        GpuSlot(g.index, g.name, g.total_mib,
                g.total_mib - (g.reserved_mib if g.memory_api == "v2" else 0), g.free_mib)
        for g in snapshot.gpus if not g.lost
    )
    view = NodeView(snapshot.hostname or "this node", gpus, group_instances(snapshot))
    _LAST[:] = [snapshot, view]
    return view


_PAPER = re.compile(r"^\s*(\d+)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*(gib|gb|g|mib|mb|m)?\s*$", re.I)


def paper_node(text: str) -> NodeView:
    """``4x23028MiB`` or ``1x24GiB`` (GB and G are read as GiB): N empty GPUs of that size.

    Raises ``ValueError`` with one line naming what is wrong.
    """
    m = _PAPER.match(text)
    if not m:
        raise ValueError(f"--on must look like 1x24GiB or 4x23028MiB, got '{text}'")
    count = int(m.group(1))
    unit = (m.group(3) or "gib").lower()
    size = float(m.group(2)) * (1024 if unit.startswith("g") else 1)
    if not 1 <= count <= 64 or size < 1024:
        raise ValueError(f"--on {text}: need 1 to 64 GPUs of at least 1 GiB")
    mib = int(size)
    gpus = tuple(GpuSlot(i, "paper GPU", mib, mib, mib) for i in range(count))
    return NodeView(f"{count}x{mib} MiB on paper", gpus, (), paper=True)


def find_instance(node: NodeView, ref: str) -> Instance | None:
    """An instance by key, name, replica label or root PID, or by a part of its name that only
    it has."""
    for inst in node.instances:
        if ref in (inst.key, inst.name, inst.label, str(inst.root_pid)):
            return inst
    low = ref.lower()
    hits = [i for i in node.instances if low in i.name.lower() or low in i.key.lower()]
    return hits[0] if len(hits) == 1 else None


def free_after_stops(node: NodeView, stopped: tuple[Instance, ...]) -> dict[int, int]:
    """Free MiB per GPU as if ``stopped`` had released all their memory."""
    free = {g.index: g.free_mib for g in node.gpus}
    for inst in stopped:
        for gpu, mib in inst.per_gpu_mib.items():
            if gpu in free:
                free[gpu] += mib
    return free


def pick_gpus(free: dict[int, int], count: int, pool: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The ``count`` GPUs of ``pool`` (default: all) with most free memory, in index order."""
    candidates = [g for g in (pool if pool is not None else free) if g in free]
    best = sorted(candidates, key=lambda g: (-free[g], g))[:count]
    return tuple(sorted(best))


def pick_replica_sets(free: dict[int, int], replicas: int, per_replica: int,
                      pool: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
    """GPU sets for Ray Serve replicas of ``per_replica`` whole GPUs each (Ray hands a GPU to
    one replica only), most free first; fewer sets than asked when GPUs run out."""
    left = [g for g in (pool if pool is not None else free) if g in free]
    sets: list[tuple[int, ...]] = []
    for _ in range(replicas):
        if len(left) < per_replica:
            break
        chosen = pick_gpus(free, per_replica, tuple(left))
        sets.append(chosen)
        left = [g for g in left if g not in chosen]
    return sets
