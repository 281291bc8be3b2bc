"""vramtop's live view with each part of a tick timed on its own thread's CPU clock, for
``tick_parts.py``: ``python bench/tick_probe.py LOG [vramtop options]``.

Each part is wrapped where the app calls it, and each call writes one line to LOG: when it began
(monotonic seconds, the system's clock that every process reads alike), the part, the CPU ms its
thread spent in it (``time.thread_time``: the sampling thread, the UI thread and the telemetry
poller each have their own) and the thread's id as the kernel knows it. A collector pass is a
line too, though its CPU is already in the part it interrupted. Where a wrapped name is not
where this expects it (the app or Textual moved it), the probe stops with one line saying which.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import sys
import threading
import time
from collections import deque

# (part, module, class or None, function): the sampling thread's sample and, within it, the
# /proc reads, the grouping and the rows; the UI thread's showing of a tick (within it, the GPU
# bars, the process table and the header taking the tick, and the history keeping it) and
# Textual's repaint of what changed (within it, a layout of the whole screen); the telemetry
# poll, apart from both.
PARTS = (
    ("sample", "vramtop.app", "VramtopApp", "_sample"),
    ("processes", "vramtop.sources.processes", "ProcessReader", "read"),
    ("grouping", "vramtop.widgets.tick", None, "instances_of"),
    ("rows", "vramtop.widgets.tick", None, "build_rows"),
    ("show", "vramtop.app", "VramtopApp", "on_snapshot_ready"),
    ("bars", "vramtop.widgets.gpu_bars", "GpuPanel", "_take_tick"),
    ("table", "vramtop.widgets.process_table", "ProcessTable", "_take_tick"),
    ("header", "vramtop.widgets.node_header", "NodeHeader", "_take_tick"),
    ("history", "vramtop.history", "History", "add"),
    ("paint", "textual.screen", "Screen", "_on_timer_update"),
    ("layout", "textual.screen", "Screen", "_refresh_layout"),
    ("poll", "vramtop.telemetry.poller", "TelemetryPoller", "poll"),
)

class _Log:
    """The lines, written a line at a time (the pane is killed, not quit) under a lock (three
    threads write). A collector pass can start inside a write, on the thread that holds the lock:
    its line waits in a queue, written after the next line of a part, never from the pass."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "w", buffering=1)
        self._lock = threading.Lock()
        self._passes: deque[str] = deque()

    @staticmethod
    def _line(part: str, began: float, cpu: float) -> str:
        return f"{began:.4f} {part} {(time.thread_time() - cpu) * 1000:.3f} {threading.get_native_id()}\n"

    def record(self, part: str, began: float, cpu: float) -> None:
        line = self._line(part, began, cpu)
        with self._lock:
            self._file.write(line)
            while self._passes:
                self._file.write(self._passes.popleft())

    def record_pass(self, generation: int, began: float, cpu: float) -> None:
        self._passes.append(self._line(f"gc{generation}", began, cpu))


def _timed(function, part: str, record):
    if inspect.iscoroutinefunction(function):
        async def timed_async(*args, **kwargs):
            began, cpu = time.monotonic(), time.thread_time()
            try:
                return await function(*args, **kwargs)
            finally:
                record(part, began, cpu)
        return timed_async

    def timed(*args, **kwargs):
        began, cpu = time.monotonic(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            record(part, began, cpu)
    return timed


def install(path: str) -> None:
    log = _Log(path)
    for part, module_name, class_name, name in PARTS:
        owner = importlib.import_module(module_name)
        if class_name is not None:
            owner = getattr(owner, class_name, None)
        function = getattr(owner, name, None)
        if function is None:
            sys.exit(f"tick_probe: no {module_name}.{class_name + '.' if class_name else ''}{name} to time")
        setattr(owner, name, _timed(function, part, log.record))
    passes: dict[int, tuple[float, float]] = {}

    def collector(phase: str, info: dict) -> None:
        if phase == "start":
            passes[threading.get_ident()] = (time.monotonic(), time.thread_time())
        elif (began := passes.pop(threading.get_ident(), None)) is not None:
            log.record_pass(info["generation"], *began)
    gc.callbacks.append(collector)


if __name__ == "__main__":
    install(sys.argv[1])
    sys.argv = ["vramtop", *sys.argv[2:]]
    from vramtop.__main__ import main

    main()
