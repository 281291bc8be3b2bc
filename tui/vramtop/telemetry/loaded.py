"""Which ML framework a GPU process runs and which model files it serves, from /proc/PID/maps.

A process title says "python3" for a training job and for a notebook alike; the shared libraries
it mapped say PyTorch or JAX, and the files it mapped say which model (llama.cpp and Ollama map
their GGUF, safetensors loaders map the shards while they read them). Read once when a process is
first seen, then after about ``FIRST_REFRESH_S``, twice that, ... up to about ``MAX_REFRESH_S``
(weights load after the CUDA context that makes NVML list the process, and a worker's maps cost
some milliseconds to read), and then only where its virtual size changed since (the poller's
``mapped_size``: a new mapping grows it); a process whose maps cannot be read (another user's,
without root) has none.
"""

from __future__ import annotations

import re

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
    """What ``pid`` has mapped; None when it maps no framework or model file, or its maps cannot
    be read (it ended, or belongs to another user and vramtop is not root)."""
    try:
        with open(f"{proc}/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            found = parse_maps(fh.read())
    except OSError:
        return None
    return found if found.frameworks or found.model_files else None

