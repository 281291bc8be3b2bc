"""vramtop against nvidia-smi on a real NVIDIA GPU: the helper ``bench/real_gpu_check.sh`` runs.

``hold``: a parent process titled ``VLLM::EngineCore`` that takes a CUDA context and allocates a
known amount through the CUDA driver (ctypes on ``libcuda.so.1``: cuInit, cuDeviceGet,
cuCtxCreate, cuMemAlloc), then starts children titled ``VLLM::Worker_TP<r>`` (setproctitle where
installed) that do the same on GPU ``r % count``; it prints their PIDs as one JSON line and waits.
``compare``: reads the three files the shell script wrote (``vramtop --once --json``, nvidia-smi's
``--query-gpu`` and ``--query-compute-apps``) and checks them field by field, one PASS/FAIL line
per check; exit 1 on any FAIL. The comparison is pure (``checks``) and tested without a GPU.
``speed``: with the held processes up, what a tick costs on the real driver (the stand-in answers
in microseconds; a real driver can block far longer): vramtop's NVML read and its whole sample
(NVML, /proc, grouping) against the bare reads any monitor makes, in CPU and wall milliseconds;
then ``vramtop --once`` against ``nvitop -1`` (where importable) and ``nvidia-smi``, wall, medians.
``context``: where PyTorch is installed, what a process holds beyond torch's reserved memory after
its first tensor (the CUDA context, which the vLLM fit charges as ``CUDA_CONTEXT_MIB``) and after a
first matrix product (cuBLAS's handle and workspace, part of vLLM's "non-torch" memory).
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

MIB = 1024 * 1024


def _title(text: str) -> bool:
    try:
        import setproctitle
    except ImportError:
        return False
    setproctitle.setproctitle(text)
    return True


def _allocate(device: int, mib: int) -> ctypes.c_void_p:
    """A context on ``device`` with ``mib`` MiB allocated in it, kept for the life of the process."""
    cuda = ctypes.CDLL("libcuda.so.1")

    def call(name: str, *args) -> None:
        rc = getattr(cuda, name)(*args)
        if rc != 0:
            raise SystemExit(f"{name} failed with CUDA error {rc}")

    dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    call("cuInit", 0)
    call("cuDeviceGet", ctypes.byref(dev), device)
    call("cuCtxCreate_v2", ctypes.byref(ctx), 0, dev)
    if mib:
        call("cuMemAlloc_v2", ctypes.byref(ptr), ctypes.c_size_t(mib * MIB))
    return ctx


def hold(parent_mib: int, child_mib: int, children: int, gpus: int) -> None:
    titled = _title("VLLM::EngineCore")
    _allocate(0, parent_mib)
    kids = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "child", str(r), str(r % gpus), str(child_mib)],
                             stdout=subprocess.PIPE, text=True) for r in range(children)]
    for k in kids:
        if k.stdout.readline().strip() != "ready":
            raise SystemExit(f"worker pid {k.pid} did not allocate")
    print(json.dumps({"parent": os.getpid(), "children": [k.pid for k in kids],
                      "parent_mib": parent_mib, "child_mib": child_mib, "titled": titled}), flush=True)
    while True:
        time.sleep(3600)


def child(rank: int, device: int, mib: int) -> None:
    _title(f"VLLM::Worker_TP{rank}")
    _allocate(device, mib)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: not comparable here (a field this driver does not report)
    detail: str

    @property
    def line(self) -> str:
        return f"{'SKIP' if self.ok is None else 'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text)) if row]


def _mib(cell: str) -> int | None:
    return int(cell) if cell.isdigit() else None  # "[N/A]", "[Not Supported]"


def checks(doc: dict, smi_gpus: str, smi_apps: str, held: dict) -> list[Check]:
    """Every comparison: GPU memory figures, the process list, what each process holds, grouping."""
    out: list[Check] = []
    by_index = {g["index"]: g for g in doc["gpus"]}
    for row in _rows(smi_gpus):
        index, fields = int(row[0]), dict(zip(("total_mib", "used_mib", "free_mib", "reserved_mib"), row[1:5]))
        mine = by_index.get(index)
        if mine is None:
            out.append(Check(f"GPU {index}", False, "nvidia-smi lists it, vramtop does not"))
            continue
        for name, cell in fields.items():
            smi = _mib(cell)
            if smi is None:
                out.append(Check(f"GPU {index} {name}", None, f"nvidia-smi says {cell!r}"))
            else:
                out.append(Check(f"GPU {index} {name}", mine[name] == smi, f"vramtop {mine[name]} MiB, nvidia-smi {smi} MiB"))
    uuid_of = {g["index"]: g["uuid"] for g in doc["gpus"]}
    mine_apps = {(p["pid"], uuid_of.get(p["gpu"])): p["used_mib"] for p in doc["processes"]}
    smi_apps_map = {(int(r[0]), r[1]): _mib(r[2]) for r in _rows(smi_apps)}
    out.append(Check("compute processes", set(mine_apps) == set(smi_apps_map),
                     f"vramtop {sorted(mine_apps)}, nvidia-smi {sorted(smi_apps_map)}"))
    for key in sorted(set(mine_apps) & set(smi_apps_map)):
        smi = smi_apps_map[key]
        if smi is None:
            out.append(Check(f"pid {key[0]} used_mib", None, "nvidia-smi gives no figure"))
        else:
            out.append(Check(f"pid {key[0]} used_mib", mine_apps[key] == smi, f"vramtop {mine_apps[key]} MiB, nvidia-smi {smi} MiB"))
    held_mib = {held["parent"]: held["parent_mib"], **{pid: held["child_mib"] for pid in held["children"]}}
    for pid, mib in held_mib.items():
        seen = sum(v or 0 for (p, _), v in mine_apps.items() if p == pid)
        out.append(Check(f"pid {pid} holds its allocation", seen >= mib, f"allocated {mib} MiB, vramtop shows {seen} MiB"))
    family = set(held_mib)
    owners = [i for i in doc["instances"] if family & set(i["pids"])]
    if not held.get("titled", True):
        out.append(Check("one instance: the parent and its workers", None,
                         "setproctitle is not installed: the processes carry no engine titles to group by"))
        return out
    one = len(owners) == 1 and set(owners[0]["pids"]) == family and owners[0]["root_pid"] == held["parent"]
    out.append(Check("one instance: the parent and its workers", one,
                     "; ".join(f"{i['key']} pids {sorted(i['pids'])}" for i in owners) or "no instance holds them"))
    if owners:
        out.append(Check("instance tp_size", owners[0]["tp_size"] == len(held["children"]),
                         f"{owners[0]['tp_size']} for {len(held['children'])} workers"))
    return out


def compare(doc_path: str, gpus_path: str, apps_path: str, held_path: str) -> int:
    with open(doc_path) as f:
        doc = json.load(f)
    with open(held_path) as f:
        held = json.loads(f.readline())
    with open(gpus_path) as f, open(apps_path) as g:
        results = checks(doc, f.read(), g.read(), held)
    for c in results:
        print(c.line)
    failed = [c for c in results if c.ok is False]
    print(f"{len(results) - len(failed)} of {len(results)} checks passed or skipped; {len(failed)} failed")
    return 1 if failed else 0


def _timed(fn, n: int) -> tuple[float, float]:
    """Median CPU and median wall milliseconds of ``fn`` over ``n`` calls, after one to warm up."""
    fn()
    cpu, wall = [], []
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def speed(runs: int = 7, reads: int = 30) -> None:
    import pynvml
    from floor import bare_reads  # beside this file

    from vramtop.analysis.instances import group_instances
    from vramtop.sources.live import LiveSource
    from vramtop.sources.nvml import NvmlSource

    pynvml.nvmlInit()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    floor = _timed(lambda: bare_reads(pynvml, handles), reads)
    nvml = NvmlSource()
    read = _timed(nvml.read, reads)
    nvml.close()
    live = LiveSource()
    tick = _timed(lambda: group_instances(live.sample()), reads)
    live.close()
    for name, (cpu, wall) in (("the bare reads", floor), ("vramtop NVML read", read), ("vramtop whole sample", tick)):
        print(f"speed  {name}: {cpu:.2f} ms CPU, {wall:.2f} ms wall "
              f"({cpu / floor[0]:.2f}x / {wall / floor[1]:.2f}x the bare reads), median of {reads}")

    def wall(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
        return time.perf_counter() - t0

    cmds = {"vramtop --once": [sys.executable, "-m", "vramtop", "--once", "--no-ray"]}
    if subprocess.run([sys.executable, "-c", "import nvitop"], capture_output=True).returncode == 0:
        cmds["nvitop -1"] = [sys.executable, "-m", "nvitop", "-1"]
    if shutil.which("nvidia-smi"):
        cmds["nvidia-smi"] = ["nvidia-smi"]
    for cmd in cmds.values():
        wall(cmd)  # bytecode written, files in the page cache
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):  # interleaved, so load on the machine falls on all alike
        for name, cmd in cmds.items():
            times[name].append(wall(cmd))
    ours = statistics.median(times["vramtop --once"])
    for name, t in times.items():
        print(f"speed  {name}: {statistics.median(t):.3f} s wall, median of {runs} "
              f"(vramtop --once is {ours / statistics.median(t):.2f}x)")


def context() -> None:
    try:
        import torch
    except ImportError:
        print("context  SKIP: PyTorch is not installed")
        return
    import pynvml

    from vramtop.fit.vllm import CUDA_CONTEXT_MIB, NON_TORCH_MIB

    pynvml.nvmlInit()
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)

    def beyond_torch() -> float:
        torch.cuda.synchronize()
        held = sum(p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(gpu)
                   if p.pid == os.getpid())
        return (held - torch.cuda.memory_reserved()) / MIB

    torch.zeros(1, device="cuda")
    ctx = beyond_torch()
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    a @ a
    blas = beyond_torch()
    print(f"context  torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}: "
          f"{ctx:.0f} MiB beyond torch's reserved memory after the first tensor (the fit charges "
          f"{CUDA_CONTEXT_MIB} for the CUDA context), {blas:.0f} after a first bf16 matrix product "
          f"(+{blas - ctx:.0f}; the fit charges {NON_TORCH_MIB} non-torch MiB)")


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    if what == "hold":
        hold(*map(int, args))
    elif what == "child":
        child(*map(int, args))
    elif what == "compare":
        sys.exit(compare(*args))
    elif what == "speed":
        speed()
    elif what == "context":
        context()
    else:
        raise SystemExit(f"unknown step {what!r}: hold, child, compare, speed or context")
