"""What the OS says about the GPU processes NVML lists, and about their parents.

A process's name, command line, owner, parent and start time do not change, so psutil reads them
once, when the PID is first seen. After that a read is one of ``/proc/PID/stat``: its start
time tells a reused PID from the same process, its CPU time and resident pages give CPU % and
RSS, and its name (what setproctitle also sets, as vLLM and Ray do when they retitle a process)
tells when to read the command line again. (psutil answers those with four reads, and a count of
the CPUs, per process: on a busy node that was most of vramtop's CPU.) A new process is read on
each tick for its first ``NEW_READS`` reads (engines retitle early; one that had already run
``SETTLED_AFTER_S`` when first seen, as most have when vramtop starts on a busy node, is past
that), at most ``NEW_PER_TICK`` new processes a tick, those read longest ago first, so that a
thousand workers started together are read in turns; then every ``REREAD_S`` seconds (where more
than ``SETTLED_PER_S`` x ``REREAD_S`` processes use the GPUs, as often as reads ``SETTLED_PER_S`` of
them a second: a thousand every 8 s, so that a tick's reads stay bounded), each on a
phase of its own so that they are not all read in one tick either: between reads a process keeps
its record (the process table shows CPU % and RSS that often; a PID that NVML lists on every tick
is the same process).
A process whose figures did not move keeps its record too, so a tick where nothing moved builds
none. The command line is read again at once when its name changed (a retitle sets both), on a
new process's 2nd, 5th and 8th reads (or one or two reads later, by its PID, so that a thousand
workers started together have a third of their titles read on each of those ticks), and every
``RECHECK_EVERY`` reads after (a title changed past the 15 characters of the name). A PID that
cannot be seen keeps its GPU memory; the reason goes with it. While the PIDs asked about stay the
same, they are not sorted again, and the records of processes gone are looked for only on a read
that made, dropped or could not read one: a tick on a node at rest walks the PIDs and no more.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import psutil

from vramtop.snapshot import HostProcess, SourceError, to_mib

NOT_VISIBLE = "not visible from here: no such PID in this PID namespace (a container?) or it just ended"
NO_PERMISSION = "not visible from here: permission denied reading the process"


RECHECK_EVERY = 30  # reads between checks of a known process's title whose name did not change
NEW_READS = 10  # ... after this many reads of it on every tick (a process retitles early)
NEW_PER_TICK = 256  # ... of at most this many such processes a tick (a read is 10-20 us of CPU)
NEW_TITLE_READS = (2, 5, 8)  # ... of which these, 0-2 later by PID, read its title (the first follows its lookup)
REREAD_S = 3.0  # a settled process is read this often, as the process table shows CPU % and RSS
SETTLED_PER_S = 128  # ... and no more settled processes than this a second (past 384, each less often)
SETTLED_AFTER_S = 60.0  # a process this old when first seen is settled at once
STAT_BYTES = 4096  # /proc/PID/stat is one line of about 300 bytes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class _Known:
    proc: psutil.Process
    static: HostProcess  # the fields that never change for this process
    started: int  # clock ticks after boot (stat field 22): another value means another process
    comm: bytes  # its name in /proc/PID/stat when its title was last read
    cpu_s: float = 0.0  # CPU seconds at the last read ...
    read_at: float = 0.0  # ... and when (monotonic)
    host: HostProcess | None = None  # the last record given out
    reads: int = 0
    due: float = 0.0  # when a settled process is read again (monotonic)


def _stat_fields(pid: int) -> tuple[bytes, list[bytes]]:
    """The name and the fields after it (state first) of ``/proc/PID/stat``."""
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)  # not open(): a buffered file object costs half again
    try:
        data = os.read(fd, STAT_BYTES)
    finally:
        os.close(fd)
    end = data.rindex(b")")  # the name in parentheses may hold anything
    return data[data.index(b"(") + 1:end], data[end + 2:].split()


def _stat(pid: int) -> tuple[bytes, int, float, int]:
    """(name, start time in clock ticks, CPU seconds, resident pages) of ``pid`` from /proc/PID/stat."""
    name, fields = _stat_fields(pid)
    return name, int(fields[19]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, int(fields[21])


def mapped_size(pid: int) -> tuple[int, int] | None:
    """(start time in clock ticks, virtual size in bytes) of ``pid``, or None where it cannot be
    read: a new mapping (a model file, a library) grows the size, so an equal one says the
    process most likely maps what it mapped before, for one small read instead of its maps."""
    try:
        _, fields = _stat_fields(pid)
        return int(fields[19]), int(fields[20])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_pct(known: _Known, cpu_s: float, now: float) -> float | None:
    """CPU % since the last read, as top shows it (100 per busy core); None on the first read."""
    if not known.read_at or now <= known.read_at:
        return None
    return round((cpu_s - known.cpu_s) / (now - known.read_at) * 100, 1)


def _title(cmdline: list[str], name: str) -> str:
    # setproctitle pads the rewritten argv with NULs or spaces; psutil may split on them.
    title = " ".join(a for a in cmdline if a).strip()
    return title or name


def pid_phase(pid: int) -> float:
    """0 to 1, by PID, evenly for consecutive PIDs: where in each ``REREAD_S`` a settled process
    is read (workers started together have consecutive PIDs)."""
    return (pid * 2_654_435_761 % 2**32) / 2**32


class ProcessReader:
    """Reads host records for PIDs; reuse one instance across ticks."""

    def __init__(self, reread_s: float = REREAD_S, settled_after_s: float = SETTLED_AFTER_S,
                 new_per_tick: int = NEW_PER_TICK, settled_per_s: float = SETTLED_PER_S) -> None:
        self._known: dict[int, _Known] = {}
        self._order: tuple[frozenset[int], list[int]] = (frozenset(), [])  # the last PIDs asked about, sorted
        self._changed = False  # a record made, dropped or not read since the PIDs gone were last forgotten
        self._reread_s = reread_s
        self._settled_after_s = settled_after_s
        self._new_per_tick = new_per_tick
        self._settled_per_s = settled_per_s

    def _lookup(self, pid: int) -> _Known:
        """The kept record of ``pid``, read the first time it is seen. Whether it is still the
        same process is checked by ``read`` on each tick, from its start time."""
        known = self._known.get(pid)
        if known is not None:
            return known
        comm, started, *_ = _stat(pid)
        proc = psutil.Process(pid)
        with proc.oneshot():
            name = proc.name()
            try:
                cmdline = proc.cmdline()
            except psutil.AccessDenied:
                cmdline = []
            try:
                user = proc.username()
            except (psutil.AccessDenied, KeyError):
                user = None
            static = HostProcess(
                pid=pid,
                ppid=proc.ppid(),
                name=name,
                title=_title(cmdline, name),
                cmdline=tuple(cmdline),
                user=user,
                create_time=proc.create_time(),
            )
        known = _Known(proc, static, started, comm)
        self._known[pid] = known
        self._changed = True
        return known

    def _retitled(self, known: _Known) -> HostProcess:
        """The static record, re-titled if the process renamed itself (engines do so once,
        early: a worker may first be seen as ``python -c ...`` and then as ``VLLM::Worker_TP0``)."""
        try:
            cmdline = tuple(known.proc.cmdline())
        except psutil.AccessDenied:
            return known.static
        if cmdline != known.static.cmdline:
            name = known.proc.name()
            known.static = replace(known.static, name=name, title=_title(list(cmdline), name), cmdline=cmdline)
        return known.static

    def read(self, gpu_pids: set[int]) -> tuple[dict[int, HostProcess], dict[int, str], dict[int, HostProcess], list[SourceError]]:
        """Host records of ``gpu_pids`` (with CPU % and RSS), the reason for each PID that
        cannot be seen, and the ancestors of the visible ones (without PID 1), whether or not
        they use a GPU themselves."""
        hosts: dict[int, HostProcess] = {}
        hidden: dict[int, str] = {}
        errors: list[SourceError] = []
        new = [pid for pid in gpu_pids
               if (k := self._known.get(pid)) is not None and k.host is not None and k.reads < NEW_READS]
        later: set[int] = set()  # new processes past this tick's turn: they keep their records
        reread_s = max(self._reread_s, len(gpu_pids) / self._settled_per_s)
        if len(new) > self._new_per_tick:
            new.sort(key=lambda pid: self._known[pid].read_at)
            later = set(new[self._new_per_tick:])
        if gpu_pids != self._order[0]:  # other PIDs than last time (most ticks ask about the same)
            self._order = (frozenset(gpu_pids), sorted(gpu_pids))
            self._changed = True  # some may be gone
        tick = time.monotonic()
        for pid in self._order[1]:
            settled = self._known.get(pid)
            if settled is not None and settled.host is not None and (tick < settled.due or pid in later):
                hosts[pid] = settled.host
                continue
            try:
                now = time.monotonic()
                known = self._lookup(pid)
                comm, started, cpu_s, pages = _stat(pid)
                if started != known.started:  # the PID was reused
                    del self._known[pid]
                    self._changed = True
                    known = self._lookup(pid)
                if not known.reads and time.time() - (known.static.create_time or 0.0) > self._settled_after_s:
                    known.reads = NEW_READS - 1  # this first read is its last on every tick
                known.reads += 1
                # Its title costs a read of /proc: a process that has lived a while and kept its
                # name is asked less often.
                reads = known.reads
                check = comm != known.comm or reads - pid % 3 in NEW_TITLE_READS or reads % RECHECK_EVERY == 0
                if check:
                    known.comm = comm
                s = self._retitled(known) if check else known.static
                cpu, rss = _cpu_pct(known, cpu_s, now), to_mib(pages * PAGE_BYTES)
                known.cpu_s, known.read_at = cpu_s, now
                if known.reads >= NEW_READS:
                    phase = pid_phase(pid) if known.reads == NEW_READS else 1.0
                    known.due = now + reread_s * phase
                host = known.host
                if host is None or (host.cpu_pct, host.rss_mib, host.cmdline, host.title) != (cpu, rss, s.cmdline, s.title):
                    host = known.host = HostProcess(s.pid, s.ppid, s.name, s.title, s.cmdline, s.user, cpu, rss,
                                                    s.create_time)
                hosts[pid] = host
            except (psutil.AccessDenied, PermissionError):
                hidden[pid] = NO_PERMISSION
                self._changed = True  # its record, if any, goes
            except (psutil.Error, OSError, ValueError, IndexError):  # gone, or /proc says something else
                hidden[pid] = NOT_VISIBLE
                self._changed = True
        if len(hidden) >= 2 and not hosts:
            errors.append(SourceError("processes", f"none of the {len(hidden)} GPU processes is visible from here; "
                                                   "if vramtop runs in a container, give it the host's PID namespace "
                                                   "(docker --pid=host, Kubernetes hostPID: true)"))

        # Every parent up to PID 1, GPU processes included: a replica or an engine core that holds
        # GPU memory itself is still the parent its workers are grouped under.
        ancestors: dict[int, HostProcess] = {}
        for host in list(hosts.values()):
            ppid = host.ppid
            while ppid and ppid > 1 and ppid not in ancestors:
                if (parent := hosts.get(ppid)) is None:
                    try:
                        parent = self._lookup(ppid).static
                    except (psutil.Error, OSError, ValueError, IndexError):
                        break
                ancestors[ppid] = parent
                ppid = parent.ppid
        if self._changed:  # records of processes neither asked about nor parents of one are dropped
            alive = set(hosts) | set(ancestors)
            for pid in [p for p in self._known if p not in alive]:
                del self._known[pid]
            self._changed = False
        return hosts, hidden, ancestors, errors
