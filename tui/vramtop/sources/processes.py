"""What the OS says about the GPU processes NVML lists, and about their parents.

psutil ``Process`` objects are kept between ticks: CPU % needs the previous reading, and a
process's name, command line, owner and parent do not change, so they are read once. Whether a
PID was reused, and whether a process retitled itself, is checked on every read for a process's
first reads (engines and Ray workers retitle before they use a GPU, so early) and every few after.
A PID that psutil cannot see keeps its GPU memory; the reason goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import psutil

from vramtop.snapshot import HostProcess, SourceError, to_mib

NOT_VISIBLE = "not visible from here: no such PID in this PID namespace (a container?) or it just ended"
NO_PERMISSION = "not visible from here: permission denied reading the process"


RECHECK_EVERY = 5  # reads between checks of a known process's identity and title
NEW_READS = 10  # ... after this many reads of it on every tick (a process retitles early)


@dataclass
class _Known:
    proc: psutil.Process
    static: HostProcess  # the fields that never change for this process
    reads: int = 0


def _title(cmdline: list[str], name: str) -> str:
    # setproctitle pads the rewritten argv with NULs or spaces; psutil may split on them.
    title = " ".join(a for a in cmdline if a).strip()
    return title or name


class ProcessReader:
    """Reads host records for PIDs; reuse one instance across ticks."""

    def __init__(self) -> None:
        self._known: dict[int, _Known] = {}

    def _lookup(self, pid: int) -> _Known:
        """The kept record of ``pid``, read the first time it is seen. Whether it is still the
        same process is checked by ``read`` on each tick (cheaply, from the parent PID)."""
        known = self._known.get(pid)
        if known is not None:
            return known
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
        proc.cpu_percent(None)  # arm the CPU counter: the next tick reads a real figure
        known = _Known(proc, static)
        self._known[pid] = known
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
        for pid in sorted(gpu_pids):
            try:
                known = self._lookup(pid)
                known.reads += 1
                # Whether the PID still names the same process, and its title: each costs a read
                # of /proc; a process that has lived a while and kept both is asked less often.
                check = known.reads <= NEW_READS or known.reads % RECHECK_EVERY == 0
                with known.proc.oneshot():  # one read of /proc/PID/stat for the parent and the CPU
                    if check and known.proc.ppid() != known.static.ppid:  # the PID was reused
                        del self._known[pid]
                        known = self._lookup(pid)
                    cpu = known.proc.cpu_percent(None)
                    rss = to_mib(known.proc.memory_info().rss)
                    s = self._retitled(known) if check else known.static
                hosts[pid] = HostProcess(s.pid, s.ppid, s.name, s.title, s.cmdline, s.user, cpu, rss, s.create_time)
            except psutil.AccessDenied:
                hidden[pid] = NO_PERMISSION
            except psutil.Error:
                hidden[pid] = NOT_VISIBLE
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
                    except psutil.Error:
                        break
                ancestors[ppid] = parent
                ppid = parent.ppid
        alive = set(hosts) | set(ancestors)
        for pid in [p for p in self._known if p not in alive]:
            del self._known[pid]
        return hosts, hidden, ancestors, errors
