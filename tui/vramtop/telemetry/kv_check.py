"""The fit engine checked against a running vLLM instance: the KV cache blocks it predicts for
that model and config beside the ``num_gpu_blocks`` vLLM itself reports, with the error.

The config comes from what the instance says about itself: ``vllm:cache_config_info``
(gpu_memory_utilization, block size, cache dtype), the tensor parallel size its workers show, the
engine flags on its API server's command line, and the vLLM release its processes run: the
release's overheads differ (CUDA graphs in the KV budget from 0.21). vLLM's ``/metrics`` names no
release, so it is read from the package its interpreter loaded (``vllm_version_of``). Model names
resolve as ``vramtop fit`` resolves them (catalog, local model files, a local Ollama server),
once per name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from vramtop.analysis.instances import served_model
from vramtop.fit import specs, vllm
from vramtop.fit.specs import ModelSpec
from vramtop.fit.verdict import Candidate, predicted_kv_blocks
from vramtop.regular_file import NotRegularFile, open_regular
from vramtop.snapshot import GpuInfo, HostProcess
from vramtop.telemetry.model import VllmMetrics
from vramtop.telemetry.vllm_metrics import flag_value

MAPS_LIMIT = 4 * 1024 * 1024  # /proc/PID/maps of a vLLM worker is some hundred KiB
VERSION_FILE_LIMIT = 4096  # vllm/_version.py is a few lines
_DIST_INFO = re.compile(r"^vllm-([0-9][A-Za-z0-9.+_\-]{0,60})\.dist-info$")
_VERSION_PY = re.compile(r"""^(?:__version__|version)\s*=\s*(?:version\s*=\s*)?['"]([^'"\n]{1,60})['"]""", re.M)

# `vllm serve` flags that change the budget's activation and weight figures, as Candidate fields.
_FLAGS = {"--max-num-seqs": ("max_num_seqs", int), "--max-num-batched-tokens": ("max_num_batched_tokens", int),
          "--dtype": ("dtype", str), "--quantization": ("quantization", str)}


@dataclass(frozen=True)
class KvCheck:
    """``predicted_blocks`` is None where the fit engine cannot evaluate the instance's config;
    ``reason`` then says why, instead of an error of -100 % against a prediction of nothing.
    ``vllm_version``: the release modelled (the instance's where it could be read)."""

    model: str
    predicted_blocks: int | None
    actual_blocks: int
    reason: str | None = None
    vllm_version: str | None = None

    @property
    def error_pct(self) -> float | None:
        if self.predicted_blocks is None:
            return None
        return (self.predicted_blocks - self.actual_blocks) / self.actual_blocks * 100

    @property
    def text(self) -> str:
        if self.predicted_blocks is None:
            return f"KV blocks: no prediction: {self.reason} · vLLM {self.actual_blocks:,}"
        return (f"KV blocks: fit engine {self.predicted_blocks:,} · vLLM {self.actual_blocks:,} "
                f"({self.error_pct:+.1f} %)")


def _read_bounded(path: str, limit: int) -> str | None:
    """At most ``limit`` bytes of a regular file (a version file inside a container someone else
    controls may be a FIFO or a device), or None."""
    try:
        fd = open_regular(path)
    except (OSError, NotRegularFile):
        return None
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _release(text: str) -> str | None:
    try:
        vllm.parse_version(text)
    except ValueError:
        return None
    return text


@lru_cache(maxsize=256)
def _version_of_pid(pid: int, started: float | None) -> str | None:
    """The vLLM release process ``pid`` (started at ``started``: the cache's key, so a PID
    reused by a later process is read again) runs: an extension module of the ``vllm`` package it
    has mapped (``vllm/_C.abi3.so`` and its kin, in ``/proc/PID/maps``) names the directory the
    package was imported from; beside it, the ``vllm-X.Y.Z.dist-info`` pip wrote names the
    release (or, for a source checkout, ``vllm/_version.py``). Paths are read inside the
    process's own root, so a container's package is found too. None where nothing says."""
    maps = _read_bounded(f"/proc/{pid}/maps", MAPS_LIMIT)
    if not maps:
        return None
    homes = set()
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)  # address, perms, offset, device, inode, path
        path = parts[5] if len(parts) == 6 else ""
        if path.startswith("/") and "/vllm/" in path and ".so" in path.rsplit("/", 1)[-1]:
            homes.add(path[:path.rindex("/vllm/")])
    for home in sorted(homes)[:4]:
        root = f"/proc/{pid}/root{home}"
        try:
            names = [e.name for _, e in zip(range(50_000), os.scandir(root))]
        except OSError:
            continue
        found = {m.group(1) for n in names if (m := _DIST_INFO.match(n))}
        if len(found) == 1:
            return _release(found.pop())
        text = _read_bounded(f"{root}/vllm/_version.py", VERSION_FILE_LIMIT)
        if text and (m := _VERSION_PY.search(text)):
            return _release(m.group(1))
    return None


def vllm_version_of(procs: Iterable[HostProcess]) -> str | None:
    """The vLLM release the first of ``procs`` that shows one runs (the API server may not load
    vLLM's extension modules; its engine and workers do), or None. Remembered per process (PID
    and start time)."""
    for proc in procs:
        if (version := _version_of_pid(proc.pid, proc.create_time)) is not None:
            return version
    return None


@lru_cache(maxsize=64)
def _spec(name: str) -> ModelSpec | None:
    try:
        return specs.resolve(name)
    except (specs.SpecError, OSError):
        return None


def kv_check(metrics: VllmMetrics, tp: int, gpu: GpuInfo | None, argv: list[str] = (),
             vllm_version: str | None = None) -> KvCheck | None:
    """The check, or None where vLLM did not report its blocks or the model is not known here;
    a check without a prediction (and the reason) where the fit engine cannot evaluate the config.
    ``vllm_version``: the release the instance runs (``vllm_version_of``); None models the newest."""
    cache = metrics.cache
    if cache is None or not cache.num_gpu_blocks or gpu is None or gpu.lost or gpu.total_mib <= 0:
        return None
    argv = list(argv)
    for name in (served_model(argv), *metrics.model_names):
        spec = _spec(name) if name else None
        if spec is not None:
            break
    else:
        return None
    options = {}
    for option, (field, kind) in _FLAGS.items():
        if (value := flag_value(argv, option)) is not None:
            try:
                options[field] = kind(value)
            except ValueError:
                continue
    candidate = Candidate(spec, tensor_parallel_size=max(1, tp), gpu_memory_utilization=cache.gpu_memory_utilization,
                          kv_cache_dtype=cache.cache_dtype, enforce_eager="--enforce-eager" in argv,
                          vllm_version=vllm_version, **options)
    try:
        predicted = predicted_kv_blocks(candidate, gpu.total_mib - gpu.reserved_mib, gpu.name, cache.block_size or 16)
    except (ValueError, ArithmeticError) as exc:
        return KvCheck(spec.name, None, cache.num_gpu_blocks, f"the fit engine cannot evaluate this config ({exc})",
                       vllm_version)
    if predicted <= 0:
        # vLLM runs, so it found room: the config read from the instance is not the one it runs
        # with (a TP size no process shows, flags set elsewhere), and a -100 % error would blame the engine.
        return KvCheck(spec.name, None, cache.num_gpu_blocks,
                       f"with TP={candidate.tensor_parallel_size} on a {gpu.name} the fit engine finds no room for "
                       f"{spec.name}'s KV cache, yet vLLM runs: the config read from its processes is incomplete",
                       vllm_version)
    return KvCheck(spec.name, predicted, cache.num_gpu_blocks, vllm_version=vllm_version)
