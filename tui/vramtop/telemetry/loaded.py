"""Which ML framework a GPU process runs and which model files it serves, from /proc/PID/maps.

A process title says "python3" for a training job and for a notebook alike; the shared libraries
it mapped say PyTorch or JAX, and the files it mapped say which model (llama.cpp and Ollama map
their GGUF, safetensors loaders map the shards while they read them). Read once when a process is
first seen and again at growing intervals (weights load after the CUDA context that makes NVML
list the process); a process whose maps cannot be read (another user's, without root) has none.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from vramtop.snapshot import NodeSnapshot
from vramtop.telemetry.model import LoadedFiles

FIRST_REFRESH_S = 10.0
MAX_REFRESH_S = 320.0

# Libraries that only a framework's CUDA build maps (its CPU build does not count: no GPU use).
FRAMEWORKS = (
    ("pytorch", ("/libtorch_cuda.so", "/libc10_cuda.so")),
    ("jax", ("/jaxlib/", "/jax_plugins/", "/jax_cuda", "/xla_extension.so")),
    ("tensorflow", ("/libtensorflow_framework.so", "/_pywrap_tensorflow_internal.so")),
    ("onnxruntime", ("/libonnxruntime_providers_cuda.so",)),
    ("tensorrt", ("/libnvinfer.so",)),
    ("cupy", ("/cupy_backends/",)),
)
MODEL_SUFFIXES = (".gguf", ".safetensors", ".pt", ".pth", ".ckpt", ".onnx", ".ggml")
OLLAMA_BLOB = re.compile(r"/blobs/sha256[-:][0-9a-f]{64}$")  # Ollama's store: blobs have no suffix


def _is_model_file(path: str) -> bool:
    if path.endswith(MODEL_SUFFIXES):
        return True
    if path.endswith(".bin"):
        return "/pytorch_model" in path  # transformers' pickled weights, not any .bin
    return "/blobs/sha256" in path and OLLAMA_BLOB.search(path) is not None


def parse_maps(text: str) -> LoadedFiles:
    """The frameworks and model files named by the contents of ``/proc/PID/maps``. A worker maps
    thousands of regions of a few hundred files: frameworks are found by searching the text for
    their libraries, model files by judging each mapped file once, in the order mapped."""
    frameworks = tuple(name for name, marks in FRAMEWORKS if any(mark in text for mark in marks))
    paths = dict.fromkeys(line[i + 1:].removesuffix(" (deleted)")
                          for line in text.splitlines() if (i := line.find(" /")) >= 0)
    return LoadedFiles(frameworks, tuple(path for path in paths if _is_model_file(path)))


def read_loaded(pid: int, proc: str = "/proc") -> LoadedFiles | None:
    """What ``pid`` has mapped; None when its maps cannot be read (it ended, or belongs to
    another user and vramtop is not root)."""
    try:
        with open(f"{proc}/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            return parse_maps(fh.read())
    except OSError:
        return None


class LoadedLookup:
    """Each GPU process's ``LoadedFiles``, kept per process (PID and start time). Read when the
    process appears, then again after ``first_refresh_s``, twice that, and so on up to
    ``max_refresh_s``: weights load in a process's first minute, and a worker's maps cost some
    milliseconds to read."""

    def __init__(self, reader: Callable[[int], LoadedFiles | None] = read_loaded,
                 first_refresh_s: float = FIRST_REFRESH_S, max_refresh_s: float = MAX_REFRESH_S) -> None:
        self._reader = reader
        self._first = first_refresh_s
        self._max = max_refresh_s
        # (PID, start time) -> (when to read again, the wait after that, what was read)
        self._known: dict[tuple[int, float | None], tuple[float, float, LoadedFiles | None]] = {}

    def lookup(self, snapshot: NodeSnapshot) -> Mapping[int, LoadedFiles]:
        """The visible GPU processes that map a framework or a model file."""
        out: dict[int, LoadedFiles] = {}
        alive: set[tuple[int, float | None]] = set()
        now = snapshot.timestamp
        for p in snapshot.gpu_processes:
            if p.host is None or p.hidden_reason or p.pid in out:
                continue  # not visible, or (cluster mode) on another machine: /proc here is not its
            key = (p.pid, p.host.create_time)
            alive.add(key)
            known = self._known.get(key)
            if known is None:
                known = self._known[key] = (now + self._first, self._first, self._reader(p.pid))
            elif now >= known[0]:
                wait = min(2 * known[1], self._max)
                known = self._known[key] = (now + wait, wait, self._reader(p.pid))
            if known[2] is not None and (known[2].frameworks or known[2].model_files):
                out[p.pid] = known[2]
        for key in [k for k in self._known if k not in alive]:
            del self._known[key]
        return out
