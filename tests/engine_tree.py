"""A real vLLM-shaped process tree for tests: ``VLLM::EngineCore`` and its ``Worker_TP0..N-1``
children, titled with setproctitle as vLLM titles them, stopped by PID afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

# The engine starts its workers, waits until each has renamed itself, then prints their PIDs.
ENGINE = r"""
import setproctitle, subprocess, sys, time
setproctitle.setproctitle("VLLM::EngineCore")
kids = [subprocess.Popen([sys.executable, "-c",
        "import setproctitle, time; setproctitle.setproctitle('VLLM::Worker_TP%d'); print(flush=True); time.sleep(600)" % r],
        stdout=subprocess.PIPE) for r in range(int(sys.argv[1]))]
for k in kids:
    k.stdout.readline()
print(" ".join(str(k.pid) for k in kids), flush=True)
time.sleep(600)
"""


@contextmanager
def engine_tree(tp: int) -> Iterator[tuple[int, list[int]]]:
    """Yields (engine PID, worker PIDs in rank order)."""
    engine = subprocess.Popen([sys.executable, "-c", ENGINE, str(tp)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in engine.stdout.readline().split()]
    try:
        yield engine.pid, workers
    finally:
        for pid in workers:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        engine.kill()
        engine.wait()
        engine.stdout.close()
