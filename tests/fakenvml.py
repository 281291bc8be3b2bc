"""The stand-in NVML driver for tests: build it, describe a node for it, load it.

``tests/nvml_stub/fake_nvml.c`` is compiled into a real ``libnvidia-ml.so.1`` (soname included)
under ``tests/.build/<variant>/``, rebuilt only when the C source is newer. nvidia-ml-py then
loads it exactly as it loads the driver's library, so the bindings, the ctypes struct layouts and
the two-call size protocol all run for real; nothing in pynvml is mocked.

How it gets loaded:

* **Child processes** (the CLI, a whole app): ``Scenario.env()`` gives an environment with
  ``LD_LIBRARY_PATH`` pointing at the build folder; the dynamic loader reads it at process start.
* **This process** (Pilot tests, the source's own tests): setting ``LD_LIBRARY_PATH`` now is too
  late, glibc read it at start. Instead ``load_in_process()`` loads the stub once by its full
  path. glibc answers a later ``dlopen("libnvidia-ml.so.1")`` (what pynvml's loader does) with an
  already loaded object whose soname matches, so pynvml's own loader ends up on the stub. The
  stub cannot be unloaded, so a process holds one variant (the full one) for its whole life; a
  test that needs another variant, or no library at all, runs a child process. ``tests/conftest.py``
  calls it at session start, before anything can load a real driver library.

The scenario file is named by ``VRAMTOP_FAKE_NVML_SCENARIO`` and read again whenever it changes,
so a test rewrites it (``Scenario.write()``, atomic) while the program keeps polling.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

SCENARIO_ENV = "VRAMTOP_FAKE_NVML_SCENARIO"
# nvmlGpuTopologyLevel_t, for Scenario.topology: one board, one PCIe switch, several switches,
# one host bridge, one NUMA node, across NUMA nodes (SMP interconnect)
TOPOLOGY_INTERNAL, TOPOLOGY_SINGLE, TOPOLOGY_MULTIPLE, TOPOLOGY_HOSTBRIDGE, TOPOLOGY_NODE, TOPOLOGY_SYSTEM = (
    0, 10, 20, 30, 40, 50)
MIB = 1024 * 1024

STUB_DIR = Path(__file__).resolve().parent / "nvml_stub"
BUILD_DIR = Path(__file__).resolve().parent / ".build"
LIBRARY = "libnvidia-ml.so.1"

# Each variant is the stub built with some symbols left out, like an older driver.
VARIANTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "no_memory_v2": ("-DNO_MEMORY_INFO_V2",),  # drivers before R510: no nvmlDeviceGetMemoryInfo_v2
    "no_processes_v3": ("-DNO_PROCESSES_V3",),  # only the _v2 running-process calls
    "no_mig": ("-DNO_MIG",),  # drivers before R450: no MIG calls at all
}


def _below(mib: int, tail: int) -> int:
    """``mib`` MiB less ``tail`` bytes (under one MiB): what shows as ``mib`` once rounded up."""
    return mib * MIB - tail if mib else 0


def build(variant: str = "full") -> Path:
    """The folder holding the built ``libnvidia-ml.so.1`` of ``variant`` (built if stale)."""
    sources = sorted(STUB_DIR.glob("*.c"))
    out_dir = BUILD_DIR / variant
    lib = out_dir / LIBRARY
    newest = max(s.stat().st_mtime for s in sources)
    if lib.exists() and lib.stat().st_mtime >= newest:
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent loader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".so")
    os.close(fd)
    cmd = [
        os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O2", "-Wall",
        f"-Wl,-soname,{LIBRARY}", *VARIANTS[variant], "-o", tmp, *map(str, sources), "-lpthread",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        os.unlink(tmp)
        raise RuntimeError(f"a C compiler ({cmd[0]!r}; set CC to choose one) is needed to build the stand-in NVML driver") from None
    except subprocess.CalledProcessError as exc:
        os.unlink(tmp)
        raise RuntimeError(f"building the stand-in NVML driver failed: {' '.join(cmd)}\n{exc.stderr}") from None
    os.replace(tmp, lib)
    return out_dir


_LOADED: list[ctypes.CDLL] = []


def stub() -> ctypes.CDLL:
    """The stand-in as loaded in this process (after ``load_in_process``): that very object,
    since loading the path again after a rebuild by another test run would load a second copy."""
    return _LOADED[0]


def load_in_process() -> ctypes.CDLL:
    """Make pynvml in this process load the stub (full variant); see the module docstring.

    Raises if pynvml already holds another library (a real driver), so no test ever reads a
    real GPU while believing it reads the stand-in.
    """
    if _LOADED:
        return _LOADED[0]
    lib = ctypes.CDLL(str(build("full") / LIBRARY))
    _LOADED.append(lib)
    import pynvml

    loaded = pynvml.nvmlLib
    if loaded is not None and not hasattr(loaded, "vramtopFakeNvml"):
        raise RuntimeError(f"pynvml already loaded a real NVML library ({loaded._name}) before the stand-in")
    return lib


@dataclass
class FakeMig:
    """One MIG device (slice) of a GPU: its profile ("3g.40gb"), GPU and compute instance IDs and
    memory in bytes (total = reserved + used + free)."""

    profile: str
    uuid: str
    gpu_instance: int
    compute_instance: int = 0
    total: int = 0
    reserved: int = 0
    used: int = 0
    free: int = 0


@dataclass
class FakeGpu:
    """One GPU. Memory in bytes, as NVML gives it: total = reserved + used + free.

    ``mig_mode`` None: the GPU cannot do MIG (NVML answers NOT_SUPPORTED); otherwise (current,
    pending). ``migs`` are its MIG devices, shown while the current mode is 1.
    """

    name: str = "NVIDIA A10"
    uuid: str = ""
    total: int = 0
    reserved: int = 0
    used: int = 0
    free: int = 0
    utilization: int = 0
    memory_utilization: int = 0
    temperature: int = 40
    power_mw: int = 60_000
    power_limit_mw: int = 150_000
    mig_mode: tuple[int, int] | None = None
    migs: list[FakeMig] = field(default_factory=list)


@dataclass
class FakeProcess:
    gpu: int
    pid: int
    used: int | None  # bytes; None: NVML cannot say (written as "na")
    kind: str = "compute"  # or "graphics"
    mig: int | None = None  # the MIG device (index on its GPU) it runs on


@dataclass
class Scenario:
    """A node for the stub, written to ``path``. Change the fields, then call ``write()``."""

    path: Path
    gpus: list[FakeGpu] = field(default_factory=list)
    processes: list[FakeProcess] = field(default_factory=list)
    faults: list[tuple[str, int | None, str]] = field(default_factory=list)
    topology: dict[tuple[int, int], int] = field(default_factory=dict)  # GPU pair -> NVML topology level
    driver: str = "550.54.15"
    nvml: str = "12.550.54.15"
    cuda: int = 12040  # 1000 * major + 10 * minor, as nvmlSystemGetCudaDriverVersion gives it

    def add_gpu(self, name: str = "NVIDIA A10", *, total_mib: int, reserved_mib: int, used_mib: int,
                free_mib: int | None = None, **fields: int) -> FakeGpu:
        """A GPU from the MiB figures nvidia-smi shows for it, in bytes with odd tails as a real
        driver gives them (never whole MiB where anything is allocated). nvidia-smi rounds each
        figure up, and so does vramtop: each tail is under a MiB and they add up to under one, so
        every figure shows as given and the figures add up; rounded down, each would show one less.
        """
        if free_mib is None:
            free_mib = total_mib - reserved_mib - used_mib
        index = len(self.gpus)
        gpu = FakeGpu(
            name=name,
            uuid=f"GPU-fa4e0000-0000-4000-8000-{index:012d}",
            reserved=_below(reserved_mib, 983_040),
            used=_below(used_mib, 32_768),
            free=_below(free_mib, 16_384),
            **fields,
        )
        gpu.total = gpu.reserved + gpu.used + gpu.free
        self.gpus.append(gpu)
        return gpu

    def add_process(self, gpu: int, pid: int, used_mib: int | None, kind: str = "compute",
                    mig: int | None = None) -> FakeProcess:
        """A process on ``gpu``, or on its MIG device ``mig`` (an index from ``add_mig``)."""
        proc = FakeProcess(gpu, pid, None if used_mib is None else used_mib * MIB, kind, mig)
        self.processes.append(proc)
        return proc

    def add_mig(self, gpu: int, profile: str, *, total_mib: int, used_mib: int, reserved_mib: int = 0,
                gpu_instance: int | None = None, compute_instance: int = 0) -> int:
        """Split ``gpu`` (MIG mode on) with one more MIG device of ``profile`` ("3g.40gb"); returns
        its index. Byte tails as in ``add_gpu``; GPU instance IDs count up from 1 unless given."""
        g = self.gpus[gpu]
        g.mig_mode = (1, 1)
        index = len(g.migs)
        mig = FakeMig(
            profile=profile, uuid=f"MIG-fa4e{gpu:04d}-{index:04d}-5000-8000-000000000000",
            gpu_instance=index + 1 if gpu_instance is None else gpu_instance,
            compute_instance=compute_instance,
            reserved=_below(reserved_mib, 983_040), used=_below(used_mib, 32_768),
            free=_below(total_mib - reserved_mib - used_mib, 16_384),
        )
        mig.total = mig.reserved + mig.used + mig.free
        g.migs.append(mig)
        return index

    def fault(self, function: str, gpu: int | str | None, error: str) -> None:
        """Make ``function`` fail with NVML_ERROR_<error> on ``gpu`` (None: every GPU and system call).

        ``gpu`` N covers the GPU and its MIG devices; "N:gpu" the GPU's own handle only; "N:M" its
        MIG device M only.

        ``function`` is a symbol ("nvmlDeviceGetMemoryInfo_v2"), a name without its version suffix
        (covers all versions: "nvmlDeviceGetComputeRunningProcesses"), "nvmlInit" (all init calls)
        or "*" (every call).
        """
        self.faults.append((function, gpu, error))

    def lose(self, gpu: int) -> None:
        """The GPU fell off the bus: every call on it answers GPU_IS_LOST."""
        self.fault("*", gpu, "GPU_IS_LOST")

    def clear_faults(self) -> None:
        self.faults.clear()

    def text(self) -> str:
        lines = [f"driver {self.driver}", f"nvml {self.nvml}", f"cuda {self.cuda}"]
        for i, g in enumerate(self.gpus):
            lines += [
                f"gpu {i}", f"name {g.name}", f"uuid {g.uuid or f'GPU-fa4e0000-0000-4000-8000-{i:012d}'}",
                f"memory {g.total} {g.reserved} {g.used} {g.free}",
                f"utilization {g.utilization} {g.memory_utilization}",
                f"temperature {g.temperature}", f"power {g.power_mw}", f"power_limit {g.power_limit_mw}",
            ]
            if g.mig_mode is not None:
                lines.append(f"mig_mode {g.mig_mode[0]} {g.mig_mode[1]}")
            for m in g.migs:
                lines += [f"mig_device {m.gpu_instance} {m.compute_instance} {m.profile} {m.uuid}",
                          f"mig_memory {m.total} {m.reserved} {m.used} {m.free}"]
        for p in self.processes:
            where = p.gpu if p.mig is None else f"{p.gpu}:{p.mig}"
            lines.append(f"process {where} {p.pid} {'na' if p.used is None else p.used} {p.kind}")
        for function, gpu, error in self.faults:
            lines.append(f"fault {function} {'*' if gpu is None else gpu} {error}")
        for (i, j), level in self.topology.items():
            lines.append(f"topology {i} {j} {level}")
        return "\n".join(lines) + "\n"

    def write(self) -> Path:
        """Replace the file atomically: a reader sees the old node or the new one, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".scenario-")
        with os.fdopen(fd, "w") as f:
            f.write(self.text())
        # The stub notices a change by (inode, size, mtime). Inodes get reused and the kernel's
        # file clock ticks only every few ms, so make each write's mtime strictly later.
        try:
            previous = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            previous = 0
        mtime = max(time.time_ns(), previous + 1)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, self.path)
        return self.path

    def env(self, variant: str = "full", base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a child process that loads the stub (``variant``) and this scenario."""
        env = dict(os.environ if base is None else base)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(build(variant)), env.get("LD_LIBRARY_PATH", "")) if p
        )
        env[SCENARIO_ENV] = str(self.path)
        return env


def seed_a10(path: Path) -> Scenario:
    """The seed analysis's node: 4x NVIDIA A10, 23,028 MiB each, 513 MiB reserved by the driver,
    free 32 / 1,256 / 1,254 / 1,364 MiB. No processes: add them with real PIDs."""
    scenario = Scenario(Path(path))
    for i, used in enumerate((22_483, 21_259, 21_261, 21_151)):
        scenario.add_gpu(
            "NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=used,
            utilization=90 + i, memory_utilization=40 + i, temperature=60 + i,
            power_mw=140_000 + 1_000 * i, power_limit_mw=150_000,
        )
    return scenario


_TITLED = """
import sys, time
try:
    import setproctitle
    setproctitle.setproctitle(sys.argv[1])
except ImportError:
    pass
print("ready", flush=True)
time.sleep(3600)
"""


@contextmanager
def spawn_processes(*titles: str) -> Iterator[list[int]]:
    """Start one idle child per title (set with setproctitle, as vLLM and Ray do) and yield their
    real PIDs, to list in a scenario; they are killed on exit."""
    children = [
        subprocess.Popen([sys.executable, "-c", _TITLED, title], stdout=subprocess.PIPE, text=True)
        for title in titles
    ]
    try:
        for child in children:
            child.stdout.readline()  # the title is set once it says "ready"
        yield [c.pid for c in children]
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()
            child.stdout.close()



def a100_mig(path: Path) -> Scenario:
    """Two NVIDIA A100-SXM4-80GB (81,920 MiB, 515 reserved): GPU 0 in MIG mode, split into two
    3g.40gb slices (GPU instances 1 and 2) of 40,192 MiB, 13 MiB used each as an empty slice
    reads; GPU 1 whole and MIG-capable with MIG off. No processes: add them with real PIDs."""
    scenario = Scenario(Path(path))
    scenario.add_gpu("NVIDIA A100-SXM4-80GB", total_mib=81_920, reserved_mib=515, used_mib=26,
                     temperature=35, power_mw=62_000, power_limit_mw=400_000)
    for _ in range(2):
        scenario.add_mig(0, "3g.40gb", total_mib=40_192, used_mib=13)
    scenario.add_gpu("NVIDIA A100-SXM4-80GB", total_mib=81_920, reserved_mib=515, used_mib=4,
                     temperature=33, power_mw=58_000, power_limit_mw=400_000, mig_mode=(0, 0))
    return scenario
