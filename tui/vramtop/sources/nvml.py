"""The GPUs as the NVIDIA driver's NVML reports them, read through nvidia-ml-py (``import pynvml``).

Opened once, read once per tick. What does not change (handles, names, UUIDs, the enforced power
limit, which API versions the driver has) is read once and kept, so a tick costs only the calls
whose answers move: memory, utilization, temperature, power and the process lists.

Memory comes from ``nvmlDeviceGetMemoryInfo_v2``: total = reserved + used + free, as nvidia-smi
counts. Drivers without it (before R510, or NOT_SUPPORTED) get the v1 call, which folds the memory
the driver reserves into "used"; such a GPU says ``memory_api="v1"`` with ``reserved_mib=0``, and
the first reading says so once.

Nothing here raises after opening: a lost GPU keeps its index, name and last figures with
``lost=True``; a field NVML will not give is ``None`` and named in the GPU's one-line ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

try:
    import pynvml
except ImportError:  # nvidia-ml-py is a dependency, but a broken install must not be a traceback
    pynvml = None

from vramtop.snapshot import GpuInfo, SourceError, to_mib

LIBRARY_NOT_FOUND = "the NVIDIA driver's NVML library (libnvidia-ml.so.1) was not found"


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
    open_error: str | None = None  # why there is no handle yet


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
        if pynvml is None:
            raise NvmlUnavailable("nvidia-ml-py (the pynvml module) is not installed")
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
        self._gpus = [_Gpu(i) for i in range(count)]
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

    def read(self) -> NvmlReading:
        """One tick: every GPU and its processes; failures become errors, never exceptions."""
        gpus, processes, errors = [], [], list(self._notes)
        self._notes.clear()
        fell_back = []
        for gpu in self._gpus:
            api_before = gpu.memory_api
            info, procs, gpu_errors = self._read_gpu(gpu)
            if api_before != gpu.memory_api:
                fell_back.append(gpu.index)
            gpus.append(info)
            processes.extend(procs)
            errors.extend(gpu_errors)
        if fell_back:
            errors.insert(0, SourceError(
                "nvml",
                f"GPU {', '.join(map(str, fell_back))}: the driver has no memory info v2, so the "
                "memory it reserves is counted as used (v1)",
            ))
        return NvmlReading(self.driver_version, self.cuda_version, self.nvml_version,
                           tuple(gpus), tuple(processes), tuple(errors))

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
        if memory is None:
            problems.append(f"memory: {exc}")
            last = gpu.last
            memory = (last.total_mib, last.reserved_mib, last.used_mib, last.free_mib) if last else (0, 0, 0, 0)
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
                f"GPU {gpu.index}: cannot list its processes ({exc}); its memory figures are still live",
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
        )
        gpu.last = info
        return info, procs, errors

    def _memory(self, gpu: _Gpu):
        """(total, reserved, used, free) in MiB, or (None, error)."""
        if gpu.memory_api == "v2":
            mem, exc = _call(pynvml.nvmlDeviceGetMemoryInfo, gpu.handle, pynvml.nvmlMemory_v2)
            if mem is not None:
                return (to_mib(mem.total), to_mib(mem.reserved), to_mib(mem.used), to_mib(mem.free)), None
            if not isinstance(exc, (pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_NotSupported,
                                    pynvml.NVMLError_ArgumentVersionMismatch)):
                return None, exc
            gpu.memory_api = "v1"
        mem, exc = _call(pynvml.nvmlDeviceGetMemoryInfo, gpu.handle)
        if mem is None:
            return None, exc
        return (to_mib(mem.total), 0, to_mib(mem.used), to_mib(mem.free)), None

    def _processes(self, gpu: _Gpu) -> tuple[list[NvmlProcess], Exception | None]:
        """Compute then graphics processes; a PID in both is listed once, as compute."""
        if self._processes_v3:
            lists = (("compute", pynvml.nvmlDeviceGetComputeRunningProcesses_v3),
                     ("graphics", pynvml.nvmlDeviceGetGraphicsRunningProcesses_v3))
        else:
            lists = (("compute", pynvml.nvmlDeviceGetComputeRunningProcesses_v2),
                     ("graphics", pynvml.nvmlDeviceGetGraphicsRunningProcesses_v2))
        out: dict[int, NvmlProcess] = {}
        for kind, fn in lists:
            entries, exc = _call(fn, gpu.handle)
            if isinstance(exc, pynvml.NVMLError_FunctionNotFound) and self._processes_v3:
                self._processes_v3 = False  # a driver before R510: the _v2 calls, same struct
                return self._processes(gpu)
            if exc is not None:
                return list(out.values()), exc
            for p in entries:
                if p.pid not in out:
                    used = None if p.usedGpuMemory is None else to_mib(p.usedGpuMemory)
                    out[p.pid] = NvmlProcess(p.pid, gpu.index, used, kind)
        return list(out.values()), None

    def _lost(self, gpu: _Gpu) -> tuple[GpuInfo, list[NvmlProcess], list[SourceError]]:
        """A lost GPU keeps its index, name and last memory figures; nothing of it is live."""
        message = gpu.open_error or "GPU is lost (NVML: GPU_IS_LOST; it fell off the bus or needs a reset)"
        base = gpu.last or GpuInfo(gpu.index, gpu.name, gpu.uuid, 0, 0, 0, 0, memory_api=gpu.memory_api)
        info = replace(base, utilization_pct=None, memory_utilization_pct=None, temperature_c=None,
                       power_w=None, lost=True, error=message)
        return info, [], [SourceError(f"nvml:gpu{gpu.index}", f"GPU {gpu.index} ({gpu.name}): {message}")]

    def close(self) -> None:
        """Shut NVML down; safe to call twice."""
        if getattr(self, "_open", False):
            self._open = False
            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass
