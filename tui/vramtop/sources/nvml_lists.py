"""NVML's per-GPU process lists, read into one kept buffer and unpacked by ``struct``.

pynvml's ``nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3`` asks the driver twice for each
list (once for the count, once for the entries) and makes each entry a Python object through
its generic converter: on a node of 16 GPUs and 1,000 processes that was 2.4 ms of every tick
(0.14 ms here), most of NVML's share of the sampling thread. Here a list is one call into an
array kept from tick to tick (grown, and the call made again, when the driver answers
INSUFFICIENT_SIZE, as pynvml grows it: twice the count and five), whose entries are unpacked from
the layout pynvml declares for them (``c_nvmlProcessInfo_v3_t``, which the _v2 calls share).
pynvml still loads the library, finds each symbol (raising FUNCTION_NOT_FOUND where a driver
lacks it) and turns each error code into its exception class. Where pynvml's struct is not that
layout (the old ``pynvml`` package, whose entries have no instance IDs), its own functions are used.

A list whose entries are the bytes the same list of the same device had last time is returned as
the same list object, made once: on a node at rest no tick makes an object per process, and the
callers can tell an unchanged list by its identity (at most ``KEPT_LISTS`` lists are kept). The
returned lists are shared, never to be changed.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

NO_INSTANCE = 0xFFFFFFFF  # the instance IDs of a process outside MIG
_ENTRY = struct.Struct("=I4xQII")  # pid, (padding), usedGpuMemory, gpuInstanceId, computeInstanceId
_OFFSETS = {"pid": 0, "usedGpuMemory": 8, "gpuInstanceId": 16, "computeInstanceId": 20}
_TRIES = 4  # calls before a list that keeps growing past the buffer is an error
KEPT_LISTS = 256  # lists kept for their next read (two per GPU and MIG device); past this, all are let go

Entry = tuple[int, "int | None", int, int]  # pid, used bytes (None: not available), GPU and compute instance


def _known_layout(info: Any) -> bool:
    """Whether pynvml's entry struct is the one ``_ENTRY`` unpacks."""
    try:
        return ctypes.sizeof(info) == _ENTRY.size and all(
            getattr(info, name).offset == offset for name, offset in _OFFSETS.items())
    except (AttributeError, TypeError):
        return False


class ProcessLists:
    """Reads the process lists of one NVML session; one reader at a time (the buffer is shared)."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._info = getattr(nvml, "c_nvmlProcessInfo_v3_t", None)
        self.direct = _known_layout(self._info) and hasattr(nvml, "_nvmlGetFunctionPointer")
        self._buffer: Any = None
        self._capacity = 0
        self._count = ctypes.c_uint()
        self._kept: dict[tuple[str, int | None], tuple[bytes, list[Entry]]] = {}  # by list and device
        if self.direct:  # pynvml's names for the codes and for usedGpuMemory the driver cannot say (WDDM)
            self._success, self._too_small = nvml.NVML_SUCCESS, nvml.NVML_ERROR_INSUFFICIENT_SIZE
            self._not_available = nvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value

    def read(self, symbol: str, handle: Any) -> list[Entry]:
        """The entries of list ``symbol`` (``nvmlDeviceGetComputeRunningProcesses_v3``, ...) of
        the device ``handle``; raises pynvml's NVMLError subclass for the code NVML answered."""
        if not self.direct:
            return [(e.pid, e.usedGpuMemory, getattr(e, "gpuInstanceId", NO_INSTANCE),
                     getattr(e, "computeInstanceId", NO_INSTANCE)) for e in getattr(self._nvml, symbol)(handle)]
        fn = self._nvml._nvmlGetFunctionPointer(symbol)  # kept by pynvml after the first lookup
        count = self._count
        for _ in range(_TRIES):
            count.value = self._capacity
            code = fn(handle, ctypes.byref(count), self._buffer)
            if code != self._too_small:
                break
            self._capacity = count.value * 2 + 5
            self._buffer = (self._info * self._capacity)()
        if code != self._success:
            raise self._nvml.NVMLError(code)
        # One copy of the entries' bytes (a comparison of the buffer itself goes byte by byte in Python's terms).
        raw = ctypes.string_at(self._buffer, count.value * _ENTRY.size) if count.value else b""
        key = (symbol, ctypes.cast(handle, ctypes.c_void_p).value)
        kept = self._kept.get(key)
        if kept is not None and raw == kept[0]:
            return kept[1]
        unknown = self._not_available
        entries = [(pid, None if used == unknown else used, gi, ci) for pid, used, gi, ci in _ENTRY.iter_unpack(raw)]
        if kept is None and len(self._kept) >= KEPT_LISTS:  # devices come and go (MIG slices made again)
            self._kept.clear()
        self._kept[key] = (raw, entries)
        return entries
