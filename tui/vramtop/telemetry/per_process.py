"""Facts read from /proc for each GPU process on this machine (its container, what it maps),
kept per process so that a tick does not read them again.

A process is keyed by PID and start time, so a reused PID is read afresh; one that is gone is
forgotten. A process NVML lists but the OS does not show, or (cluster mode) one on another
machine, is never read: /proc here is not its.
"""

from __future__ import annotations

import math
from typing import Callable, Generic, Hashable, Mapping, TypeVar

from vramtop.snapshot import NodeSnapshot
from vramtop.sources.processes import pid_phase

T = TypeVar("T")


def spread(pid: int) -> float:
    """1 to 1.25, by PID: the waits of processes that appeared together (a node's thousand
    workers at start-up) end over a few seconds, not all in one tick."""
    return 1.0 + pid_phase(pid) / 4


REREADS_PER_LOOKUP = 64  # about 4 ms of /proc/PID/maps reads


class PerProcess(Generic[T]):
    """``reader(pid)`` for each process, once, or again after ``first_refresh_s``, twice that,
    and so on up to ``max_refresh_s`` (for facts that change early in a process's life), each
    wait stretched by the process's ``spread``. A lookup reads a process it has not seen at once,
    and at most ``max_rereads`` of those due again: the rest wait for the next lookups (a node's
    thousand workers, due together ten seconds after start, cost one lookup 40 ms otherwise).
    With ``version(pid)`` (a cheap read that changes where what ``reader`` reads may have, None
    where it cannot tell), a process due again whose version is the one read with its facts keeps
    them, unread."""

    def __init__(self, reader: Callable[[int], T | None], first_refresh_s: float = math.inf,
                 max_refresh_s: float = math.inf, max_rereads: int = REREADS_PER_LOOKUP,
                 version: Callable[[int], Hashable | None] | None = None) -> None:
        self._reader = reader
        self._first = first_refresh_s
        self._max = max_refresh_s
        self._max_rereads = max_rereads
        self._version = version
        # (PID, start time) -> (when to read again, the wait after that, what was read, its version)
        self._known: dict[tuple[int, float | None], tuple[float, float, T | None, Hashable | None]] = {}
        # The last lookup's snapshot processes and their keys, its answer, and when the first of
        # them is due again
        self._last: tuple[tuple, tuple, Mapping[int, T], float] = ((), (), {}, -math.inf)

    def lookup(self, snapshot: NodeSnapshot) -> Mapping[int, T]:
        """PID -> what was read, for the processes where the reader found something. The same
        processes as the last lookup's, none of them due, get the last answer (the very dict):
        at once where they are the last snapshot's very tuple (a node at rest)."""
        now = snapshot.timestamp
        last_processes, last_keys, last_out, due = self._last
        if now < due and snapshot.gpu_processes is last_processes:
            return last_out
        keys = tuple((p.pid, p.host.create_time) for p in snapshot.gpu_processes
                     if p.host is not None and not p.hidden_reason)
        if keys == last_keys and now < due:
            self._last = (snapshot.gpu_processes, keys, last_out, due)
            return last_out
        out: dict[int, T] = {}
        alive: set[tuple[int, float | None]] = set()
        rereads = self._max_rereads
        for p in snapshot.gpu_processes:
            if p.host is None or p.hidden_reason or p.pid in out:
                continue
            key = (p.pid, p.host.create_time)
            alive.add(key)
            known = self._known.get(key)
            if known is None:
                wait = self._first * spread(p.pid)
                version = self._version_of(p.pid)
                known = self._known[key] = (now + wait, wait, self._reader(p.pid), version)
            elif now >= known[0] and rereads > 0:
                rereads -= 1
                wait = min(2 * known[1], self._max * spread(p.pid))
                version = self._version_of(p.pid)
                if version is not None and version == known[3]:  # unchanged: what was read stands
                    known = self._known[key] = (now + wait, wait, known[2], version)
                else:
                    known = self._known[key] = (now + wait, wait, self._reader(p.pid), version)
            if known[2] is not None:
                out[p.pid] = known[2]
        for key in [k for k in self._known if k not in alive]:
            del self._known[key]
        self._last = (snapshot.gpu_processes, keys, out,
                      min((known[0] for known in self._known.values()), default=math.inf))
        return out

    def _version_of(self, pid: int) -> Hashable | None:
        """``pid``'s version, taken before its read (a change made during the read shows as a new
        version next time); None without ``version``."""
        return self._version(pid) if self._version is not None else None
