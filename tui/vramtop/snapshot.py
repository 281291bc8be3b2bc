"""One immutable picture of the node per tick: what every source feeds and every view reads.

Memory is in MiB, integers, counted as nvidia-smi counts them (bytes // 2**20 for each of
total, reserved, used and free). Optional fields are ``None`` when the driver or the OS did not
say: a view shows "n/a", it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from vramtop.units import MIB


def to_mib(nbytes: int) -> int:
    """Bytes to whole MiB, rounded down (a process's RSS, a model's size)."""
    return int(nbytes) // MIB


def nvml_mib(nbytes: int) -> int:
    """NVML's bytes to whole MiB as nvidia-smi shows them: rounded up. Seen on an H200 (driver
    580.159): 2,128.375 MiB used shows as 2,129 and 615.0625 MiB reserved as 616, so the three
    parts can add up to a MiB or two over the total, in nvidia-smi and here alike."""
    return -(-int(nbytes) // MIB)


@dataclass(frozen=True)
class SourceError:
    """A one-line failure of one source, shown in place while the rest stays live.

    ``source`` names where it came from ("nvml", "nvml:gpu2", "processes", "ray", "config"...).
    """

    source: str
    message: str


@dataclass(frozen=True)
class MigSlice:
    """One MIG device of a GPU in MIG mode (a slice), as NVML reports it on its own handle.

    ``index`` is NVML's MIG device index on its GPU (nvidia-smi's "MIG Dev"); a slice is named
    ``GPU:index`` ("0:1") wherever one is shown. ``name`` is the driver's
    ("NVIDIA A100-SXM4-80GB MIG 3g.40gb"); ``error`` says why its figures are missing.
    """

    index: int
    name: str
    uuid: str
    gpu_instance_id: int | None
    compute_instance_id: int | None
    total_mib: int
    reserved_mib: int
    used_mib: int
    free_mib: int
    memory_api: str = "v2"
    error: str | None = None
    lost = False  # read with its GPU: a lost GPU's slices are not shown

    @property
    def profile(self) -> str:
        """The MIG profile, "3g.40gb", from the driver's name."""
        return self.name.rpartition(" MIG ")[2] if " MIG " in self.name else self.name


def slice_label(gpu_index: int, mig_slice: int | None) -> str:
    """"0" for a whole GPU, "0:1" for MIG device 1 of GPU 0."""
    return str(gpu_index) if mig_slice is None else f"{gpu_index}:{mig_slice}"


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it. ``lost`` GPUs keep their index and last known name.

    A GPU in MIG mode lists its slices in ``mig`` (empty otherwise); its own figures stay the
    whole GPU's.
    """

    index: int
    name: str
    uuid: str
    total_mib: int
    reserved_mib: int
    used_mib: int
    free_mib: int
    utilization_pct: int | None = None
    memory_utilization_pct: int | None = None
    temperature_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    memory_api: str = "v2"  # "v2" or "v1" (v1 folds the reserved memory into used)
    lost: bool = False
    error: str | None = None  # one line: why some of this GPU's figures are missing
    stale_since: float | None = None  # its memory read failed: the figures are those read then (Unix time)
    node: str | None = None  # cluster mode: the Ray node it sits on (None: this machine's GPU)
    mig: tuple[MigSlice, ...] = ()


@dataclass(frozen=True)
class HostProcess:
    """What the OS says about one process: GPU processes and their ancestors.

    ``title`` is what ps shows (a process title set by setproctitle, e.g. ``VLLM::Worker_TP0``,
    or the command line joined by spaces); ``name`` is the executable name.
    """

    pid: int
    ppid: int | None
    name: str
    title: str
    cmdline: tuple[str, ...] = ()
    user: str | None = None
    cpu_pct: float | None = None
    rss_mib: int | None = None
    create_time: float | None = None


@dataclass(frozen=True)
class GpuProcess:
    """One process on one GPU, from NVML (compute or graphics list).

    ``used_mib`` is None where NVML cannot say (e.g. no permission, or Windows WDDM).
    ``mig_slice`` is the index of the MIG slice of ``gpu_index`` it runs on (None: the whole GPU).
    ``host`` is None when psutil cannot see the PID (another PID namespace, a container, or
    the process ended between the NVML and the psutil read); ``hidden_reason`` then says which.
    """

    pid: int
    gpu_index: int
    used_mib: int | None
    kind: str = "compute"  # "compute" or "graphics"
    host: HostProcess | None = None
    hidden_reason: str | None = None
    mig_slice: int | None = None


@dataclass(frozen=True)
class LaunchReservation:
    """Memory ``vramtop launch`` has promised to an engine that is starting and whose memory is
    not yet (all) in NVML: ``gpu_mib`` pairs a GPU index with the MiB still promised there."""

    model: str
    gpu_mib: tuple[tuple[int, int], ...]
    since: float
    pid: int  # the launcher

    def on(self, gpu_index: int) -> int:
        return sum(mib for g, mib in self.gpu_mib if g == gpu_index)


@dataclass(frozen=True)
class NodeSnapshot:
    """Everything known about the node at ``timestamp``.

    ``ancestors`` maps a PID to its host record for the parents of GPU processes (up to, not
    including, PID 1), so that grouping can walk process trees without any I/O.
    ``ray`` and ``telemetry`` hold the latest state of those slower sources (their own types,
    polled on their own schedule and attached to each tick), or None when they are not polled.
    """

    timestamp: float
    hostname: str
    source: str  # "nvml", "demo", "replay"
    driver_version: str | None = None
    cuda_version: str | None = None
    nvml_version: str | None = None
    gpus: tuple[GpuInfo, ...] = ()
    gpu_processes: tuple[GpuProcess, ...] = ()
    ancestors: Mapping[int, HostProcess] = field(default_factory=dict)
    errors: tuple[SourceError, ...] = ()
    ray: Any = None
    telemetry: Any = None
    reservations: tuple[LaunchReservation, ...] = ()  # live only: launches still loading
    topology: tuple[tuple[int, int, int], ...] = ()  # (GPU, GPU, NVML topology level), live only

    @property
    def total_mib(self) -> int:
        return sum(g.total_mib for g in self.gpus if not g.lost)

    @property
    def used_mib(self) -> int:
        return sum(g.used_mib for g in self.gpus if not g.lost)

    @property
    def reserved_mib(self) -> int:
        return sum(g.reserved_mib for g in self.gpus if not g.lost)

    @property
    def free_mib(self) -> int:
        return sum(g.free_mib for g in self.gpus if not g.lost)

    def gpu(self, index: int) -> GpuInfo | None:
        return next((g for g in self.gpus if g.index == index), None)

    def host_process(self, pid: int) -> HostProcess | None:
        """The host record of any PID the snapshot knows (GPU process or ancestor)."""
        return self._hosts.get(pid)

    @cached_property
    def _hosts(self) -> dict[int, HostProcess]:
        """PID -> host record, built on first use: a busy node asks for each of its thousand
        processes every tick, and a scan per question made that quadratic."""
        hosts = dict(self.ancestors)
        for p in reversed(self.gpu_processes):  # the first GPU process of a PID wins, as it did
            if p.host is not None:
                hosts[p.pid] = p.host
        return hosts
