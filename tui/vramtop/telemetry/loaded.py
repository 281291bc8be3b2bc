"""Which ML framework a GPU process runs and which model files it serves, from /proc/PID/maps.

A process title says "python3" for a training job and for a notebook alike; the shared libraries
it mapped say PyTorch or JAX, and the files it mapped say which model (llama.cpp and Ollama map
their GGUF, safetensors loaders map the shards while they read them). Read once when a process is
first seen and again every ``REFRESH_S`` (weights load after the CUDA context that makes NVML
list the process); a process whose maps cannot be read (another user's, without root) has none.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from vramtop.snapshot import NodeSnapshot
from vramtop.telemetry.model import LoadedFiles

REFRESH_S = 30.0

# Libraries that only a framework's CUDA build maps (its CPU build does not count: no GPU use).
FRAMEWORKS = (
    ("pytorch", re.compile(r"/lib(?:torch_cuda|c10_cuda)\.so")),
    ("jax", re.compile(r"/jax(?:lib|_cuda\d+_plugin|_plugins)/|/xla_extension\.so")),
    ("tensorflow", re.compile(r"/libtensorflow_framework\.so|/_pywrap_tensorflow_internal\.so")),
    ("onnxruntime", re.compile(r"/libonnxruntime_providers_cuda\.so")),
    ("tensorrt", re.compile(r"/libnvinfer\.so")),
    ("cupy", re.compile(r"/cupy_backends/")),
)
MODEL_FILE = re.compile(
    r"\.(?:gguf|safetensors|pt|pth|ckpt|onnx|ggml)$"  # by suffix
    r"|/pytorch_model[^/]*\.bin$"  # transformers' pickled weights
    r"|/models/blobs/sha256[-:][0-9a-f]{64}$"  # Ollama's store: blobs have no suffix
)


def parse_maps(text: str) -> LoadedFiles:
    """The frameworks and model files named by the contents of ``/proc/PID/maps``."""
    frameworks: list[str] = []
    files: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue  # anonymous memory, [heap], [stack], ...
        path = parts[5].removesuffix(" (deleted)")
        if path in seen:
            continue
        seen.add(path)
        if MODEL_FILE.search(path):
            files.append(path)
            continue
        for name, pattern in FRAMEWORKS:
            if name not in frameworks and pattern.search(path):
                frameworks.append(name)
    return LoadedFiles(tuple(frameworks), tuple(files))


def read_loaded(pid: int, proc: str = "/proc") -> LoadedFiles | None:
    """What ``pid`` has mapped; None when its maps cannot be read (it ended, or belongs to
    another user and vramtop is not root)."""
    try:
        with open(f"{proc}/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            return parse_maps(fh.read())
    except OSError:
        return None


class LoadedLookup:
    """Each GPU process's ``LoadedFiles``, kept per process (PID and start time) and read again
    every ``refresh_s``."""

    def __init__(self, reader: Callable[[int], LoadedFiles | None] = read_loaded,
                 refresh_s: float = REFRESH_S) -> None:
        self._reader = reader
        self._refresh_s = refresh_s
        self._known: dict[tuple[int, float | None], tuple[float, LoadedFiles | None]] = {}

    def lookup(self, snapshot: NodeSnapshot) -> Mapping[int, LoadedFiles]:
        """The visible GPU processes that map a framework or a model file."""
        out: dict[int, LoadedFiles] = {}
        alive: set[tuple[int, float | None]] = set()
        now = snapshot.timestamp
        for p in snapshot.gpu_processes:
            if p.host is None or p.pid in out:
                continue
            key = (p.pid, p.host.create_time)
            alive.add(key)
            known = self._known.get(key)
            if known is None or now - known[0] >= self._refresh_s:
                known = self._known[key] = (now, self._reader(p.pid))
            if known[1] is not None and (known[1].frameworks or known[1].model_files):
                out[p.pid] = known[1]
        for key in [k for k in self._known if k not in alive]:
            del self._known[key]
        return out
