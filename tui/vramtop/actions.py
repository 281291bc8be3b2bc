"""Stopping a process or a whole serving instance: SIGTERM first, SIGKILL only when asked again.

An instance is stopped as a whole: its root (the vLLM API server, the engine core, the Ray Serve
replica, the launcher) and every member process get SIGTERM, so no worker is left holding memory
when its engine does not pass the signal on. Only what is still alive after the grace period may
be killed, and only after a second confirmation. Each
target is pinned by PID *and* start time, so a PID reused since the snapshot is never signalled.
``readonly`` refuses everything.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import psutil

from vramtop.analysis import roles
from vramtop.analysis.instances import Instance
from vramtop.snapshot import HostProcess, NodeSnapshot

READONLY_MESSAGE = "read-only mode (--readonly): stopping processes is turned off"
GRACE_S = 5.0


@dataclass(frozen=True)
class Target:
    """One process to signal, as the snapshot saw it."""

    pid: int
    create_time: float | None
    title: str
    user: str | None = None


@dataclass(frozen=True)
class StopPlan:
    """What a stop does: ``term`` get SIGTERM; ``watch`` are all the processes that must end
    (and the ones SIGKILL may hit); ``per_gpu_mib`` is the memory that frees on each GPU."""

    label: str
    term: tuple[Target, ...]
    watch: tuple[Target, ...]
    per_gpu_mib: Mapping[int, int] = field(default_factory=dict)
    note: str | None = None  # e.g. Ray Serve restarts a stopped replica
    refusal: str | None = None  # why this plan cannot be carried out at all

    @property
    def total_mib(self) -> int:
        return sum(self.per_gpu_mib.values())


@dataclass(frozen=True)
class StopResult:
    """``ok`` when every signal was delivered; ``remaining`` are the PIDs still alive."""

    ok: bool
    message: str
    remaining: tuple[int, ...] = ()


def _not_live(snapshot: NodeSnapshot) -> str | None:
    """Why processes of this snapshot must not be signalled: its PIDs are not this machine's."""
    if snapshot.source in ("demo", "replay"):
        return f"this is a {snapshot.source} node, not this machine: there is nothing to stop"
    return None


def _elsewhere(snapshot: NodeSnapshot, pids: Iterable[int]) -> str | None:
    """Why one of ``pids`` must not be signalled from here: in cluster mode it runs on another
    machine (its record, if any, is Ray's, and the same PID here is another process)."""
    if snapshot.source != "cluster":
        return None
    wanted = set(pids)
    for p in snapshot.gpu_processes:
        if p.pid in wanted and p.hidden_reason:
            return f"pid {p.pid} runs {p.hidden_reason}, not on this machine: stop it there"
    return None


def _target(host: HostProcess) -> Target:
    return Target(host.pid, host.create_time, host.title, host.user)


def plan_for_instance(snapshot: NodeSnapshot, instance: Instance) -> StopPlan:
    """Stop ``instance``: SIGTERM to its root and to every member, and watch them all."""
    root = snapshot.host_process(instance.root_pid)
    hidden = [m.pid for m in instance.members if m.host is None]
    watch = tuple(_target(m.host) for m in instance.members if m.host is not None)
    if root is not None and all(t.pid != root.pid for t in watch):
        watch = (_target(root),) + watch
    refusal = _not_live(snapshot) or _elsewhere(snapshot, [m.pid for m in instance.members])
    if refusal is None and (root is None or hidden):
        refusal = (f"pid {(hidden or [instance.root_pid])[0]} is not visible from here, so it cannot be stopped safely "
                   "(another PID namespace?)")
    note = None
    role = roles.classify(root)
    is_replica = role.engine == roles.RAY and role.kind == "replica"
    if is_replica or instance.replica is not None:
        note = ("Ray Serve starts a new replica when one dies; to free the GPUs for good, scale the "
                "deployment down or delete the application (serve shutdown / serve deploy).")
    # Every member gets the SIGTERM, the root first: a worker whose engine does not pass the
    # signal on (or that only Ray joins, under the raylet) would otherwise keep its memory.
    term = watch
    return StopPlan(
        label=f"{instance.label} ({instance.key})",
        term=term,
        watch=watch,
        per_gpu_mib=dict(instance.per_gpu_mib),
        note=note,
        refusal=refusal,
    )


def plan_for_process(snapshot: NodeSnapshot, pid: int) -> StopPlan:
    """Stop one process and nothing else."""
    per_gpu: dict[int, int] = {}
    for p in snapshot.gpu_processes:
        if p.pid == pid and p.used_mib is not None:
            per_gpu[p.gpu_index] = per_gpu.get(p.gpu_index, 0) + p.used_mib
    host = snapshot.host_process(pid)
    if (refusal := _not_live(snapshot) or _elsewhere(snapshot, [pid])) is not None:
        return StopPlan(f"pid {pid}", (), (), per_gpu, refusal=refusal)
    if host is None:
        return StopPlan(f"pid {pid}", (), (), per_gpu,
                        refusal=f"pid {pid} is not visible from here, so it cannot be stopped safely (another PID namespace?)")
    target = _target(host)
    return StopPlan(f"pid {pid} ({host.title[:60]})", (target,), (target,), per_gpu)


def _same_process(target: Target) -> psutil.Process | None:
    """The live process behind ``target``, or None when it ended (or the PID was reused)."""
    try:
        proc = psutil.Process(target.pid)
        if target.create_time is not None and abs(proc.create_time() - target.create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def _permission_text(target: Target) -> str:
    owner = f" (owned by {target.user})" if target.user else ""
    return f"permission denied signalling pid {target.pid}{owner}: run vramtop as that user or as root"


class Stopper:
    """Carries out stop plans; every call returns one line and never raises."""

    def __init__(self, readonly: bool = False) -> None:
        self.readonly = readonly

    def _send(self, targets: tuple[Target, ...], sig: int) -> StopResult:
        sent, gone = [], []
        for t in targets:
            if _same_process(t) is None:
                gone.append(t.pid)
                continue
            try:
                os.kill(t.pid, sig)
                sent.append(t.pid)
            except ProcessLookupError:
                gone.append(t.pid)
            except PermissionError:
                return StopResult(False, _permission_text(t), tuple(sent))
            except OSError as exc:
                return StopResult(False, f"could not signal pid {t.pid}: {exc.strerror or exc}", tuple(sent))
        name = signal.Signals(sig).name
        if not sent:
            return StopResult(True, f"nothing to {name}: pid {', '.join(map(str, gone))} already ended")
        return StopResult(True, f"sent {name} to pid {', '.join(map(str, sent))}")

    def terminate(self, plan: StopPlan) -> StopResult:
        """SIGTERM to the plan's root processes."""
        if self.readonly:
            return StopResult(False, READONLY_MESSAGE)
        if plan.refusal:
            return StopResult(False, plan.refusal)
        result = self._send(plan.term, signal.SIGTERM)
        return StopResult(result.ok, result.message, self.remaining(plan))

    def remaining(self, plan: StopPlan) -> tuple[int, ...]:
        """PIDs of the plan still alive (cheap: call it on a timer while waiting)."""
        return tuple(t.pid for t in plan.watch if _same_process(t) is not None)

    def kill(self, plan: StopPlan, confirmed: bool) -> StopResult:
        """SIGKILL to what is still alive, only with ``confirmed`` (the second confirmation)."""
        if self.readonly:
            return StopResult(False, READONLY_MESSAGE)
        if plan.refusal:
            return StopResult(False, plan.refusal)
        if not confirmed:
            return StopResult(False, "SIGKILL needs a second confirmation", self.remaining(plan))
        alive = tuple(t for t in plan.watch if _same_process(t) is not None)
        if not alive:
            return StopResult(True, "nothing left to kill")
        result = self._send(alive, signal.SIGKILL)
        return StopResult(result.ok, result.message, self.remaining(plan))
