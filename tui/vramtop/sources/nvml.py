"""The GPUs as the NVIDIA driver's NVML reports them, read through nvidia-ml-py (``import pynvml``).

Opened once, read once per tick. What does not change (handles, names, UUIDs, the enforced power
limit, which API versions the driver has) is read once and kept, so a tick costs only the calls
whose answers move: memory, utilization, temperature, power and the process lists (each list
one call into a kept buffer: ``nvml_lists``). A GPU whose lists did not move gives the processes
it gave last time, the same list, and a reading where no GPU's did, the last reading's tuple: a
node at rest makes no object per process.

Memory comes from ``nvmlDeviceGetMemoryInfo_v2``: total = reserved + used + free in bytes, as
nvidia-smi counts; each figure in MiB rounded up, as nvidia-smi shows it (``nvml_mib``). Drivers
without it (before R510, or NOT_SUPPORTED) get the v1 call, which folds the memory the driver
reserves into "used"; such a GPU says ``memory_api="v1"`` with ``reserved_mib=0``, and the first
reading says so once.

A GPU in MIG mode lists its slices (MIG devices) in ``GpuInfo.mig``, each with its own memory,
read on its own handle. Processes still come from the GPU's one process list, whose instance IDs
name the slice each runs on; where that list is refused (the driver gives the aggregate to
privileged callers only) each slice's own list is read. A GPU in MIG mode has no utilization by
design, so none is asked for. Slices can be made and destroyed without a reset, so they are
listed again every ``MIG_RESCAN_S`` seconds, and at once when a slice stops answering or a
process names a slice not known. A driver or GPU without MIG (NOT_SUPPORTED, no such symbol)
reads as before.

Nothing here raises after opening: a lost GPU keeps its index, name and last figures with
``lost=True``; a field NVML will not give is ``None`` and named in the GPU's one-line ``error``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

pynvml: Any = None  # nvidia-ml-py, imported when NVML is opened: a command that only names NvmlUnavailable
# (vramtop fit --on, on paper) does not load it

from vramtop.snapshot import GpuInfo, MigSlice, SourceError, nvml_mib, slice_label
from vramtop.sources.nvml_lists import NO_INSTANCE, ProcessLists

LIBRARY_NOT_FOUND = "the NVIDIA driver's NVML library (libnvidia-ml.so.1) was not found"
MIG_RESCAN_S = 10.0


class NvmlUnavailable(Exception):
    """NVML cannot be opened. ``str()`` is one line naming the cause; ``code`` is the NVML error
    number (``None`` when nvidia-ml-py itself is missing)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NvmlProcess:
    """One entry of a GPU's compute or graphics process list; ``used_mib`` None: NVML cannot say."""

    pid: int
    gpu_index: int
    used_mib: int | None
    kind: str = "compute"
    mig_slice: int | None = None  # the MIG slice of gpu_index it runs on


@dataclass(frozen=True)
class NvmlReading:
    """What one tick read from NVML."""

    driver_version: str | None
    cuda_version: str | None
    nvml_version: str | None
    gpus: tuple[GpuInfo, ...]
    processes: tuple[NvmlProcess, ...]
    errors: tuple[SourceError, ...]


class _Lost(Exception):
    """The GPU answered GPU_IS_LOST: stop reading it this tick."""


@dataclass
class _Slice:
    """What is kept about one MIG slice between listings."""

    index: int
    handle: object
    name: str
    uuid: str
    gpu_instance_id: int | None
    compute_instance_id: int | None
    memory_api: str = "v2"
    last: MigSlice | None = None
    kept_processes: tuple | None = None  # (the GPU's slices, the entries lists, the processes made of them)


@dataclass
class _Gpu:
    """What is kept about one GPU between ticks."""

    index: int
    handle: object = None
    name: str = "unknown"
    uuid: str = ""
    power_limit_w: float | None = None
    static_problems: list[str] = field(default_factory=list)  # fields that will never come
    memory_api: str = "v2"
    last: GpuInfo | None = None
    memory_read_at: float | None = None  # when its memory was last read (Unix time)
    open_error: str | None = None  # why there is no handle yet
    mig: bool = False  # in MIG mode (read when the handle is opened; it changes only with a reset)
    max_slices: int = 0
    slices: list[_Slice] = field(default_factory=list)
    slices_listed_at: float | None = None  # monotonic time; None: list them on the next read
    kept_processes: tuple | None = None  # (its slices, the entries lists, the processes made of them)


def _open_message(exc: Exception) -> str:
    value = getattr(exc, "value", None)
    if value == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
        return LIBRARY_NOT_FOUND
    if value == pynvml.NVML_ERROR_DRIVER_NOT_LOADED:
        return "the NVIDIA driver is not loaded (NVML: Driver Not Loaded)"
    if value == pynvml.NVML_ERROR_NO_PERMISSION:
        return "NVML refused access to the GPUs (Insufficient Permissions)"
    if value == pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        return "the NVML library and the loaded NVIDIA kernel driver differ in version (reload the driver or reboot after an upgrade)"
    return f"NVML could not start: {exc}"


def _cuda_text(version: int) -> str:
    """12040 -> "12.4", as nvidia-smi prints the CUDA version of the driver."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _call(fn, *args):
    """``(value, None)``, or ``(None, error)`` for an NVML error; a lost GPU raises ``_Lost``."""
    try:
        return fn(*args), None
    except pynvml.NVMLError_GpuIsLost:
        raise _Lost from None
    except pynvml.NVMLError as exc:
        return None, exc


class NvmlSource:
    """This machine's GPUs through NVML. Raises ``NvmlUnavailable`` when NVML cannot be opened."""

    def __init__(self) -> None:
        global pynvml
        try:
            import pynvml
        except ImportError:  # nvidia-ml-py is a dependency, but a broken install must not be a traceback
            raise NvmlUnavailable("nvidia-ml-py (the pynvml module) is not installed") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(_open_message(exc), exc.value) from None
        self._open = True
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            self.close()
            raise NvmlUnavailable(f"NVML could not count the GPUs: {exc}", exc.value) from None
        self.driver_version = self._system(pynvml.nvmlSystemGetDriverVersion)
        self.nvml_version = self._system(pynvml.nvmlSystemGetNVMLVersion)
        self.cuda_version = self._cuda_version()
        self._processes_v3 = True
        self._lists = ProcessLists(pynvml)
        self._topology: tuple[tuple[int, int, int], ...] | None = None
        self._gpus = [_Gpu(i) for i in range(count)]
        self._kept_processes: tuple[list[list[NvmlProcess]], tuple[NvmlProcess, ...]] = ([], ())  # per GPU, all
        for gpu in self._gpus:
            self._open_gpu(gpu)
        self._notes: list[SourceError] = []  # said in the next reading only
        if pynvml.__file__.endswith("__init__.py"):
            self._notes.append(SourceError(
                "nvml", "the deprecated 'pynvml' package shadows nvidia-ml-py: uninstall pynvml"))
        if not count:
            self._notes.append(SourceError("nvml", "the NVIDIA driver reports no GPU"))

    @staticmethod
    def _system(fn) -> str | None:
        try:
            return fn()
        except pynvml.NVMLError:
            return None

    @staticmethod
    def _cuda_version() -> str | None:
        for fn in (pynvml.nvmlSystemGetCudaDriverVersion_v2, pynvml.nvmlSystemGetCudaDriverVersion):
            try:
                return _cuda_text(fn())
            except pynvml.NVMLError_FunctionNotFound:
                continue
            except pynvml.NVMLError:
                return None
        return None

    def _open_gpu(self, gpu: _Gpu) -> None:
        """Reads what never changes; a GPU that cannot be reached now is retried next tick."""
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(gpu.index)
            name, name_exc = _call(pynvml.nvmlDeviceGetName, handle)
            uuid, uuid_exc = _call(pynvml.nvmlDeviceGetUUID, handle)
            limit, limit_exc = _call(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            mode, _ = _call(pynvml.nvmlDeviceGetMigMode, handle)  # NOT_SUPPORTED, or no such symbol: no MIG
            mig = bool(mode and mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE)
            count, _ = _call(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle) if mig else (0, None)
        except (pynvml.NVMLError_GpuIsLost, _Lost):
            gpu.open_error = None
            return
        except pynvml.NVMLError as exc:
            gpu.open_error = f"NVML gives no handle for it: {exc}"
            return
        gpu.handle, gpu.open_error = handle, None
        gpu.name = name or gpu.name
        gpu.uuid = uuid or gpu.uuid
        gpu.power_limit_w = None if limit is None else limit / 1000
        problems = (("name", name_exc), ("uuid", uuid_exc), ("power limit", limit_exc))
        gpu.static_problems = [f"{what}: {exc}" for what, exc in problems if exc is not None]
        gpu.mig, gpu.max_slices = mig, count or 0
        gpu.slices, gpu.slices_listed_at = [], None

    def _list_slices(self, gpu: _Gpu) -> None:
        """The GPU's MIG devices now, with what does not change while they exist."""
        slices = []
        for index in range(gpu.max_slices):
            handle, _ = _call(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, gpu.handle, index)
            if handle is None:
                continue  # NOT_FOUND: no MIG device at this index
            known = next((s for s in gpu.slices if s.index == index), None)
            name, _ = _call(pynvml.nvmlDeviceGetName, handle)
            uuid, _ = _call(pynvml.nvmlDeviceGetUUID, handle)
            gi, _ = _call(pynvml.nvmlDeviceGetGpuInstanceId, handle)
            ci, _ = _call(pynvml.nvmlDeviceGetComputeInstanceId, handle)
            same = known is not None and known.uuid == (uuid or "")
            slices.append(_Slice(index, handle, name or f"MIG device {index}", uuid or "", gi, ci,
                                 known.memory_api if same else "v2", known.last if same else None))
        gpu.slices = slices
        gpu.slices_listed_at = time.monotonic()

    def _read_slices(self, gpu: _Gpu) -> tuple[tuple[MigSlice, ...], list[str]]:
        """Each slice's memory (listing the slices again when due), and what failed."""
        listed = gpu.slices_listed_at
        if listed is None or time.monotonic() - listed >= MIG_RESCAN_S:
            self._list_slices(gpu)
        out, problems = [], []
        for s in gpu.slices:
            memory, exc = self._memory(s)
            if memory is None:
                problems.append(f"MIG {slice_label(gpu.index, s.index)} memory: {exc}")
                gpu.slices_listed_at = None  # gone, perhaps: list them again next tick
                last = s.last
                memory = (last.total_mib, last.reserved_mib, last.used_mib, last.free_mib) if last else (0, 0, 0, 0)
            total, reserved, used, free = memory
            s.last = MigSlice(s.index, s.name, s.uuid, s.gpu_instance_id, s.compute_instance_id,
                              total, reserved, used, free, s.memory_api,
                              None if exc is None else f"memory: {exc}")
            out.append(s.last)
        return tuple(out), problems

    @staticmethod
    def _slice_of(gpu: _Gpu, gi: int, ci: int) -> int | None:
        """The slice a process list entry names by its GPU and compute instance IDs (None: not on a slice)."""
        if not gpu.mig or gi is None or gi == NO_INSTANCE:
            return None
        for s in gpu.slices:
            if s.gpu_instance_id == gi and s.compute_instance_id == ci:
                return s.index
        gpu.slices_listed_at = None  # a slice made since the last listing: list them next tick
        return None

    def topology(self) -> tuple[tuple[int, int, int], ...]:
        """(GPU, GPU, NVML topology level) for each pair whose closest common ancestor NVML
        reports (``nvmlDeviceGetTopologyCommonAncestor``: 10 one PCIe switch ... 40 one NUMA node,
        50 across NUMA nodes). Read once: the topology does not change while the driver runs."""
        if self._topology is None:
            pairs = []
            gpus = [g for g in self._gpus if g.handle is not None]
            for n, a in enumerate(gpus):
                for b in gpus[n + 1:]:
                    try:
                        level = int(pynvml.nvmlDeviceGetTopologyCommonAncestor(a.handle, b.handle))
                    except (pynvml.NVMLError, AttributeError):
                        continue  # not reported (a VM, an old driver, a MIG-enabled board)
                    pairs.append((a.index, b.index, level))
            self._topology = tuple(pairs)
        return self._topology

    def read(self) -> NvmlReading:
        """One tick: every GPU and its processes; failures become errors, never exceptions."""
        gpus, per_gpu, errors = [], [], list(self._notes)
        self._notes.clear()
        fell_back = []
        for gpu in self._gpus:
            api_before = gpu.memory_api
            info, procs, gpu_errors = self._read_gpu(gpu)
            if api_before != gpu.memory_api:
                fell_back.append(gpu.index)
            gpus.append(info)
            per_gpu.append(procs)
            errors.extend(gpu_errors)
        kept_per_gpu, processes = self._kept_processes
        if len(per_gpu) != len(kept_per_gpu) or any(a is not b for a, b in zip(per_gpu, kept_per_gpu)):
            processes = tuple(p for procs in per_gpu for p in procs)
            self._kept_processes = (per_gpu, processes)
        if fell_back:
            errors.insert(0, SourceError(
                "nvml",
                f"GPU {', '.join(map(str, fell_back))}: the driver has no memory info v2, so the "
                "memory it reserves is counted as used (v1)",
            ))
        return NvmlReading(self.driver_version, self.cuda_version, self.nvml_version,
                           tuple(gpus), processes, tuple(errors))

    def _read_gpu(self, gpu: _Gpu) -> tuple[GpuInfo, list[NvmlProcess], list[SourceError]]:
        if gpu.handle is None:
            self._open_gpu(gpu)
            if gpu.handle is None:
                return self._lost(gpu)
        try:
            return self._read_live(gpu)
        except _Lost:
            return self._lost(gpu)

    def _read_live(self, gpu: _Gpu) -> tuple[GpuInfo, list[NvmlProcess], list[SourceError]]:
        h = gpu.handle
        problems = list(gpu.static_problems)
        memory, exc = self._memory(gpu)
        memory_live = memory is not None
        stale_since = None  # where this read failed: when the figures shown were read
        if not memory_live:
            problems.append(f"memory: {exc}")
            last = gpu.last
            memory = (last.total_mib, last.reserved_mib, last.used_mib, last.free_mib) if last else (0, 0, 0, 0)
            stale_since = gpu.memory_read_at if last else None
        else:
            gpu.memory_read_at = time.time()
        mig: tuple[MigSlice, ...] = ()
        if gpu.mig:  # no utilization under MIG: the driver answers NOT_SUPPORTED by design
            util = None
            mig, slice_problems = self._read_slices(gpu)
            problems += slice_problems
        else:
            util, exc = _call(pynvml.nvmlDeviceGetUtilizationRates, h)
            if exc is not None:
                problems.append(f"utilization: {exc}")
        temp, exc = _call(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
        if exc is not None:
            problems.append(f"temperature: {exc}")
        power, exc = _call(pynvml.nvmlDeviceGetPowerUsage, h)
        if exc is not None:
            problems.append(f"power: {exc}")
        procs, exc = self._processes(gpu)
        errors = []
        if exc is not None:
            problems.append(f"processes: {exc}")
            errors.append(SourceError(
                f"nvml:gpu{gpu.index}",
                f"GPU {gpu.index}: cannot list its processes ({exc}); "
                + ("its memory figures are still live" if memory_live else "its memory cannot be read either"),
            ))
        total, reserved, used, free = memory
        info = GpuInfo(
            index=gpu.index, name=gpu.name, uuid=gpu.uuid,
            total_mib=total, reserved_mib=reserved, used_mib=used, free_mib=free,
            utilization_pct=None if util is None else util.gpu,
            memory_utilization_pct=None if util is None else util.memory,
            temperature_c=temp,
            power_w=None if power is None else power / 1000,
            power_limit_w=gpu.power_limit_w,
            memory_api=gpu.memory_api,
            error="; ".join(problems) or None,
            stale_since=stale_since,
            mig=mig,
        )
        gpu.last = info
        return info, procs, errors

    def _memory(self, gpu: _Gpu | _Slice):
        """(total, reserved, used, free) in MiB of a GPU or a MIG slice, or (None, error)."""
        if gpu.memory_api == "v2":
            mem, exc = _call(pynvml.nvmlDeviceGetMemoryInfo, gpu.handle, pynvml.nvmlMemory_v2)
            if mem is not None:
                return (nvml_mib(mem.total), nvml_mib(mem.reserved), nvml_mib(mem.used), nvml_mib(mem.free)), None
            if not isinstance(exc, (pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_NotSupported,
                                    pynvml.NVMLError_ArgumentVersionMismatch)):
                return None, exc
            gpu.memory_api = "v1"
        mem, exc = _call(pynvml.nvmlDeviceGetMemoryInfo, gpu.handle)
        if mem is None:
            return None, exc
        return (nvml_mib(mem.total), 0, nvml_mib(mem.used), nvml_mib(mem.free)), None

    def _processes(self, gpu: _Gpu, on_slice: _Slice | None = None) -> tuple[list[NvmlProcess], Exception | None]:
        """Compute then graphics processes of the GPU (or of one slice); a PID in both is listed
        once, as compute. A GPU in MIG mode whose own list is refused is read slice by slice."""
        version = "_v3" if self._processes_v3 else "_v2"
        handle = gpu.handle if on_slice is None else on_slice.handle
        lists: list[tuple[str, list]] = []
        for kind, symbol in (("compute", "nvmlDeviceGetComputeRunningProcesses"),
                             ("graphics", "nvmlDeviceGetGraphicsRunningProcesses")):
            entries, exc = _call(self._lists.read, symbol + version, handle)
            if isinstance(exc, pynvml.NVMLError_FunctionNotFound) and self._processes_v3:
                self._processes_v3 = False  # a driver before R510: the _v2 calls, same struct
                return self._processes(gpu, on_slice)
            if gpu.mig and kind == "graphics" and isinstance(exc, pynvml.NVMLError_NotSupported):
                continue  # MIG has no graphics
            if gpu.mig and on_slice is None and isinstance(exc, pynvml.NVMLError_NoPermission) and gpu.slices:
                return self._slice_processes(gpu)
            if exc is not None:
                return self._made(gpu, on_slice, lists), exc
            lists.append((kind, entries))
        return self._made(gpu, on_slice, lists), None

    def _made(self, gpu: _Gpu, on_slice: _Slice | None, lists: list[tuple[str, list]]) -> list[NvmlProcess]:
        """The processes of ``lists`` (kind, entries); the list made last time for the same GPU or
        slice where its entries are the same lists (``nvml_lists`` keeps an unchanged list's
        object) and its slices the same listing: a GPU at rest makes no object per process."""
        owner = gpu if on_slice is None else on_slice
        now = tuple(entries for _, entries in lists)
        kept = owner.kept_processes
        if (kept is not None and kept[0] is gpu.slices and len(kept[1]) == len(now)
                and all(a is b for a, b in zip(kept[1], now))):
            return kept[2]
        out: dict[int, NvmlProcess] = {}
        for kind, entries in lists:
            for pid, used, gi, ci in entries:
                if pid not in out:
                    where = self._slice_of(gpu, gi, ci) if on_slice is None else on_slice.index
                    out[pid] = NvmlProcess(pid, gpu.index, None if used is None else nvml_mib(used), kind, where)
        made = list(out.values())
        owner.kept_processes = (gpu.slices, now, made)
        return made

    def _slice_processes(self, gpu: _Gpu) -> tuple[list[NvmlProcess], Exception | None]:
        """Every slice's own process list, where the GPU's aggregate one is refused."""
        out: list[NvmlProcess] = []
        for s in gpu.slices:
            procs, exc = self._processes(gpu, s)
            out += procs
            if exc is not None:
                return out, exc
        return out, None

    def _lost(self, gpu: _Gpu) -> tuple[GpuInfo, list[NvmlProcess], list[SourceError]]:
        """A lost GPU keeps its index, name and last memory figures; nothing of it is live."""
        message = gpu.open_error or "GPU is lost (NVML: GPU_IS_LOST; it fell off the bus or needs a reset)"
        base = gpu.last or GpuInfo(gpu.index, gpu.name, gpu.uuid, 0, 0, 0, 0, memory_api=gpu.memory_api)
        info = replace(base, utilization_pct=None, memory_utilization_pct=None, temperature_c=None,
                       power_w=None, lost=True, error=message, mig=())
        return info, [], [SourceError(f"nvml:gpu{gpu.index}", f"GPU {gpu.index} ({gpu.name}): {message}")]

    def close(self) -> None:
        """Shut NVML down; safe to call twice."""
        if getattr(self, "_open", False):
            self._open = False
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass
