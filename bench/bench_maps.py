"""What reading a GPU process's memory maps costs (its framework and model files), in CPU ms.

A vLLM worker maps thousands of regions (PyTorch, CUDA, NCCL, Triton, every Python extension);
the file written here has as many lines, shaped like a real worker's, with safetensors shards and
PyTorch's CUDA library among them. Measured in the same run:

  read          the file read whole, nothing else (the floor: any reader pays it)
  read + parse  telemetry.loaded.read_loaded: read, then pick frameworks and model files

Each process is read when it appears, then after 10 s, 20 s, ... up to every 320 s
(``loaded.FIRST_REFRESH_S``, ``MAX_REFRESH_S``): the last lines give the cost per 1 s tick for a
node of 32 GPU processes, in its first minute and once settled.
Run: python bench/bench_maps.py [iterations] [lines]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from cpu import mean_ms
from vramtop.telemetry import loaded

LIBS = ["torch/lib/libtorch_cuda.so", "torch/lib/libc10_cuda.so", "torch/lib/libtorch_cpu.so",
        "nvidia/cublas/lib/libcublasLt.so.12", "nvidia/nccl/lib/libnccl.so.2", "triton/_C/libtriton.so",
        "vllm/_C.abi3.so", "numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"]


def worker_maps(lines: int) -> str:
    out = []
    for i in range(lines):
        addr = f"7f{i:010x}000-7f{i:010x}fff"
        if i % 3 == 0:
            out.append(f"{addr} rw-p 00000000 00:00 0")  # anonymous
        elif i % 97 == 0:
            out.append(f"{addr} r--s 00000000 08:01 {i} /models/qwen/model-{i % 4 + 1:05d}-of-00004.safetensors")
        else:
            lib = LIBS[i % len(LIBS)] if i % 5 else f"site-packages/pkg{i}/_ext{i}.cpython-311-x86_64-linux-gnu.so"
            out.append(f"{addr} r-xp 00{i:06x} 08:01 {i} /venv/lib/python3.11/site-packages/{lib}")
    return "\n".join(out) + "\n"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 4_000
    with tempfile.TemporaryDirectory() as tmp:
        proc = Path(tmp)
        (proc / "1").mkdir()
        maps = proc / "1" / "maps"
        maps.write_text(worker_maps(lines))
        found = loaded.read_loaded(1, str(proc))
        read = mean_ms(lambda: maps.read_text(encoding="utf-8", errors="replace"), n)
        parse = mean_ms(lambda: loaded.read_loaded(1, str(proc)), n)
        size = maps.stat().st_size
    print(f"maps: {lines:,} lines, {size / 1024:.0f} KiB; found {found.label!r}; {n} iterations")
    print(f"read          {read:7.3f} ms CPU per process   (baseline)")
    print(f"read + parse  {parse:7.3f} ms CPU per process   {parse / read:5.2f}x read")
    for when, every in (("first minute", loaded.FIRST_REFRESH_S), ("settled", loaded.MAX_REFRESH_S)):
        per_tick = 32 * parse / every
        print(f"32 processes, {when} (read every {every:.0f} s): {per_tick:.3f} ms CPU per 1 s tick "
              f"({per_tick / 10:.3f} % of a core)")


if __name__ == "__main__":
    main()
