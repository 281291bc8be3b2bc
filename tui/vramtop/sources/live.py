"""The live source: NVML for the GPUs and their processes, psutil for what those processes are.

One ``sample()`` call is one tick: it reads NVML, then the OS, and returns one immutable
snapshot. It blocks (driver calls can), so the app calls it from a worker thread. A process whose
memory and record did not move is the same object as in the last snapshot, so comparing two
snapshots of a node at rest is a matter of identities; where no process moved, the snapshot's
processes are the last one's tuple, and the tick makes no object per process (NVML's unchanged
lists are kept objects too: ``nvml_lists``).
"""

from __future__ import annotations

import socket
import time

from vramtop.frozen import fresh
from vramtop.launch.reservations import for_snapshot
from vramtop.snapshot import GpuProcess, NodeSnapshot, SourceError
from vramtop.sources.nvml import NvmlSource
from vramtop.sources.processes import ProcessReader


class LiveSource:
    """This machine's GPUs. Opening raises ``NvmlUnavailable`` (one line) when there is no driver."""

    name = "nvml"

    def __init__(self) -> None:
        self._nvml = NvmlSource()
        self._processes = ProcessReader()
        self._hostname = socket.gethostname()
        self._last: dict[tuple, GpuProcess] = {}  # (pid, GPU, kind, MIG slice) -> as last given out
        # NVML's processes as last read, their PIDs, and the GPU processes given out for them
        self._listed: tuple = (None, set(), ())

    def sample(self) -> NodeSnapshot:
        reading = self._nvml.read()
        listed, pids, given = self._listed
        same = reading.processes is listed
        if not same:
            pids = {p.pid for p in reading.processes}
        hosts, hidden, ancestors, errors = self._processes.read(pids)
        if same and all(hosts.get(p.pid) is p.host and hidden.get(p.pid) == p.hidden_reason for p in given):
            procs = given  # NVML's lists and every record as last time: nothing to make
        else:
            procs = self._made(reading.processes, hosts, hidden)
            self._listed = (reading.processes, pids, procs)
        held, notices = for_snapshot()  # memory promised to engines vramtop launch is starting
        errors = (*errors, *(SourceError("reservations", n) for n in notices))
        return NodeSnapshot(
            timestamp=time.time(),
            hostname=self._hostname,
            source="nvml",
            driver_version=reading.driver_version,
            cuda_version=reading.cuda_version,
            nvml_version=reading.nvml_version,
            gpus=reading.gpus,
            gpu_processes=procs,
            ancestors=ancestors,
            errors=tuple(reading.errors) + tuple(errors),
            reservations=held,
            topology=self._nvml.topology(),
        )

    def _made(self, listed: tuple, hosts: dict, hidden: dict) -> tuple[GpuProcess, ...]:
        """The GPU processes of NVML's ``listed``, each the last one given out where it did not move."""
        last, self._last = self._last, {}
        procs = []
        for p in listed:
            key = (p.pid, p.gpu_index, p.kind, p.mig_slice)
            host, reason = hosts.get(p.pid), hidden.get(p.pid)
            kept = last.get(key)
            if kept is None or kept.host is not host or kept.hidden_reason != reason:
                kept = GpuProcess(p.pid, p.gpu_index, p.used_mib, p.kind, host, reason, p.mig_slice)
            elif kept.used_mib != p.used_mib:  # its memory alone moved: most processes of a busy node
                kept = fresh(kept, used_mib=p.used_mib)
            self._last[key] = kept
            procs.append(kept)
        return tuple(procs)

    def close(self) -> None:
        self._nvml.close()
