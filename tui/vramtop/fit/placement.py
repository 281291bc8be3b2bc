"""Which GPUs a candidate would get: the live node (as if some instances were stopped) or a
node on paper, and the choice of GPUs with most free memory.

vLLM counts a GPU's total as CUDA does (``cudaMemGetInfo``), which leaves out what the driver
reserves; on a snapshot that is ``total_mib - reserved_mib``. A paper GPU's size is taken as
that CUDA total, empty.

A GPU in MIG mode is not a device for a candidate; each of its slices is, of its own memory,
keyed ``"0:1"`` (whole GPUs keep their integer index). A CUDA process sees one MIG device, so
NCCL and vLLM cannot run a tensor-parallel group across slices: a set of more than one device
holds whole GPUs only, and Ollama spreads over the whole GPUs (on a node of slices only, it
gets the slice with most free memory).

In cluster mode a GPU carries its Ray node (``GpuSlot.node``): a tensor-parallel group is one
vLLM process tree, so it never spans nodes, while replicas (each a placement group Ray packs on
one node) may go to different nodes.

The grouping of a snapshot into instances is imported by ``node_from_snapshot``, its one user:
a node on paper needs neither it nor the snapshot's types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from vramtop.analysis.instances import Instance
    from vramtop.snapshot import NodeSnapshot

Device = int | str  # a whole GPU's index, or a MIG slice's "GPU:index"


@dataclass(frozen=True)
class GpuSlot:
    """One GPU as the fit engine sees it, in MiB."""

    index: Device
    name: str
    total_mib: int  # as nvidia-smi shows it
    cuda_total_mib: int  # what CUDA (and so vLLM) calls total
    free_mib: int
    node: str | None = None  # cluster mode: the Ray node it sits on
    uuid: str = ""


@dataclass(frozen=True)
class NodeView:
    """The GPUs a candidate can use and the instances that could be stopped for it."""

    label: str
    gpus: tuple[GpuSlot, ...]
    instances: tuple[Instance, ...] = ()
    paper: bool = False
    on_slices: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # instance key -> slice -> MiB
    topology: tuple[tuple[int, int, int], ...] = ()  # (GPU, GPU, NVML common-ancestor level)

    @property
    def total_mib(self) -> int:
        return sum(g.cuda_total_mib for g in self.gpus)

    def gpu(self, index: Device) -> GpuSlot | None:
        return next((g for g in self.gpus if g.index == index), None)

    @property
    def nodes(self) -> dict[Device, str]:
        """Device -> Ray node (cluster mode; empty on one machine)."""
        return {g.index: g.node for g in self.gpus if g.node is not None}

    @cached_property
    def by_ref(self) -> dict[str, Instance]:
        """Instance by key, name, replica label or root PID, the first instance listed winning a
        name two share: built once, since a verdict looks its stopped instances up for every
        variant it judges (thousands on a cluster)."""
        out: dict[str, Instance] = {}
        for inst in self.instances:
            for ref in (inst.key, inst.name, inst.label, str(inst.root_pid)):
                out.setdefault(ref, inst)
        return out


_LAST: list = [None]  # (snapshot, view) in one item, swapped whole: the panel and the side column's
# worker ask for the same tick many times, from two threads


def node_from_snapshot(snapshot: NodeSnapshot) -> NodeView:
    """The usable (not lost) GPUs of ``snapshot`` and its serving instances."""
    from vramtop.analysis.instances import instance_of, instances_of
    from vramtop.snapshot import slice_label

    last = _LAST[0]
    if last is not None and last[0] is snapshot:
        return last[1]
    gpus = []
    for g in snapshot.gpus:
        if g.lost:
            continue
        if not g.mig:
            gpus.append(GpuSlot(g.index, g.name, g.total_mib,
                                g.total_mib - (g.reserved_mib if g.memory_api == "v2" else 0), g.free_mib, g.node, g.uuid))
        for m in g.mig:
            gpus.append(GpuSlot(slice_label(g.index, m.index), m.name, m.total_mib,
                                m.total_mib - (m.reserved_mib if m.memory_api == "v2" else 0), m.free_mib, g.node))
    instances = instances_of(snapshot)
    owner = instance_of(instances)
    on_slices: dict[str, dict[str, int]] = {}
    for p in snapshot.gpu_processes:
        if p.mig_slice is not None and p.used_mib and (inst := owner.get((p.gpu_index, p.pid))) is not None:
            per = on_slices.setdefault(inst.key, {})
            where = slice_label(p.gpu_index, p.mig_slice)
            per[where] = per.get(where, 0) + p.used_mib
    view = NodeView(snapshot.hostname or "this node", tuple(gpus), instances, on_slices=on_slices,
                    topology=snapshot.topology)
    _LAST[0] = (snapshot, view)
    return view


_PAPER = re.compile(r"^\s*(\d{1,6})\s*[x×*]\s*(\d{1,12}(?:\.\d{1,6})?)\s*(gib|gb|g|mib|mb|m)?\s*$", re.I)
PAPER_MAX_GIB = 4096  # no GPU comes near 4 TiB; a larger size is a typing slip, not a plan


def paper_node(text: str) -> NodeView:
    """``4x23028MiB`` or ``1x24GiB`` (GB and G are read as GiB): N empty GPUs of that size.

    Raises ``ValueError`` with one line naming what is wrong.
    """
    m = _PAPER.match(text)
    if not m:
        raise ValueError(f"--on must look like 1x24GiB or 4x23028MiB, got '{text[:40]}'")
    count = int(m.group(1))
    unit = (m.group(3) or "gib").lower()
    size = float(m.group(2)) * (1024 if unit.startswith("g") else 1)
    if not 1 <= count <= 64 or not 1024 <= size <= PAPER_MAX_GIB * 1024:
        raise ValueError(f"--on {text[:40]}: need 1 to 64 GPUs of 1 to {PAPER_MAX_GIB:,} GiB each")
    mib = int(size)
    gpus = tuple(GpuSlot(i, "paper GPU", mib, mib, mib) for i in range(count))
    return NodeView(f"{count}x{mib} MiB on paper", gpus, (), paper=True)


def find_instance(node: NodeView, ref: str) -> Instance | None:
    """An instance by key, name, replica label or root PID, or by a part of its name that only
    it has."""
    if (inst := node.by_ref.get(ref)) is not None:
        return inst
    low = ref.lower()
    hits = [i for i in node.instances if low in i.name.lower() or low in i.key.lower()]
    return hits[0] if len(hits) == 1 else None


def free_after_stops(node: NodeView, stopped: tuple[Instance, ...]) -> dict[Device, int]:
    """Free MiB per GPU or slice as if ``stopped`` had released all their memory."""
    free = {g.index: g.free_mib for g in node.gpus}
    for inst in stopped:
        for gpu, mib in (*inst.per_gpu_mib.items(), *node.on_slices.get(inst.key, {}).items()):
            if gpu in free:  # a GPU in MIG mode is no device: its slices are
                free[gpu] += mib
    return free


def device_order(device: Device) -> tuple[int, int]:
    """Sorts GPUs and slices together: GPU 0, its slices 0:0, 0:1, then GPU 1 ..."""
    if isinstance(device, int):
        return device, -1
    gpu, _, index = device.partition(":")
    return int(gpu), int(index)


def is_slice(device: Device) -> bool:
    return isinstance(device, str)


def pick_gpus(free: dict[Device, int], count: int, pool: tuple[Device, ...] | None = None) -> tuple[Device, ...]:
    """The ``count`` devices of ``pool`` (default: all) with most free memory, in index order;
    more than one are whole GPUs only (no tensor-parallel group spans MIG slices)."""
    candidates = [g for g in (pool if pool is not None else free) if g in free and (count == 1 or not is_slice(g))]
    best = sorted(candidates, key=lambda g: (-free[g], device_order(g)))[:count]
    return tuple(sorted(best, key=device_order))


def ollama_devices(free: dict[Device, int], pool: tuple[Device, ...] | None = None,
                   nodes: Mapping[Device, str] | None = None) -> tuple[Device, ...]:
    """What Ollama would run on: the whole GPUs of ``pool`` (default: all), or where there are
    only MIG slices, the one with most free memory (a CUDA process sees one MIG device). With
    ``nodes`` (cluster mode) one server's GPUs are one node's: the node with most free memory."""
    devices = [g for g in (pool if pool is not None else free) if g in free]
    if nodes:
        on: dict[str | None, list[Device]] = {}
        for g in devices:
            on.setdefault(nodes.get(g), []).append(g)
        devices = max(on.values(), key=lambda gs: sum(free[g] for g in gs), default=[])
    whole = tuple(g for g in devices if not is_slice(g))
    return whole or pick_gpus(free, 1, tuple(devices))


def pick_replica_sets(free: dict[Device, int], replicas: int, per_replica: int,
                      pool: tuple[Device, ...] | None = None,
                      nodes: Mapping[Device, str] | None = None) -> list[tuple[Device, ...]]:
    """GPU sets for Ray Serve replicas of ``per_replica`` whole GPUs each (Ray hands a GPU to
    one replica only), most free first; fewer sets than asked when GPUs run out. With ``nodes``
    (cluster mode) each set lies on one node: of each node's best set, the one whose tightest
    GPU has most free memory."""
    left = [g for g in (pool if pool is not None else free) if g in free and (per_replica == 1 or not is_slice(g))]
    sets: list[tuple[Device, ...]] = []
    for _ in range(replicas):
        groups: dict[str | None, list[Device]] = {}
        for g in left:
            groups.setdefault((nodes or {}).get(g), []).append(g)
        options = [pick_gpus(free, per_replica, tuple(gs)) for gs in groups.values() if len(gs) >= per_replica]
        if not options:
            break
        chosen = max(options, key=lambda s: (min(free[g] for g in s), sum(free[g] for g in s)))
        sets.append(chosen)
        left = [g for g in left if g not in chosen]
    return sets
