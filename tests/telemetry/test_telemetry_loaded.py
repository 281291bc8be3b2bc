"""What a GPU process runs in and has loaded: its container (from its cgroup) and its framework
and model files (from its memory maps), read off real processes and shown in --once --json, the
CSV and the live view's detail line."""

from __future__ import annotations

import csv
import io
import json
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vramtop.snapshot import GpuProcess, HostProcess, NodeSnapshot
from vramtop.sources.processes import mapped_size
from vramtop.telemetry.loaded import parse_maps, read_loaded
from vramtop.telemetry.per_process import PerProcess, spread
from vramtop.telemetry.model import LoadedFiles

MAPS = """\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1048600                    /usr/bin/python3.11
7f10a0000000-7f10a8000000 r--s 00000000 08:01 2097152                    /srv/models/qwen/model-00001-of-00004.safetensors
7f10b0000000-7f10b8000000 r--s 00000000 08:01 2097153                    /srv/models/qwen/model-00002-of-00004.safetensors
7f10b8000000-7f10b9000000 r--s 08000000 08:01 2097153                    /srv/models/qwen/model-00002-of-00004.safetensors
7f10c0000000-7f10c1000000 r-xp 00000000 08:01 3145728                    /venv/lib/python3.11/site-packages/torch/lib/libc10_cuda.so
7f10c2000000-7f10c9000000 r-xp 00000000 08:01 3145729                    /venv/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so
7f10d0000000-7f10d0021000 rw-p 00000000 00:00 0                          [heap]
7f10d1000000-7f10d1001000 rw-s 00000000 00:01 4194304                    /dev/shm/psm_old (deleted)
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_maps_name_the_framework_and_each_model_file_once():
    loaded = parse_maps(MAPS)
    assert loaded.frameworks == ("pytorch",)
    assert loaded.model_files == ("/srv/models/qwen/model-00001-of-00004.safetensors",
                                  "/srv/models/qwen/model-00002-of-00004.safetensors")
    assert loaded.label == "pytorch · model-00001-of-00004.safetensors (+1 file)"
    ollama = parse_maps("7f0-7f1 r--p 00000000 08:01 9 /usr/share/ollama/.ollama/models/blobs/sha256-" + "ab" * 32)
    assert ollama.model_files and not ollama.frameworks
    assert parse_maps("7f0-7f1 r-xp 00000000 08:01 9 /usr/lib/libc.so.6\n7f2-7f3 rw-p 0 00:00 0\n") == LoadedFiles()


HOLDER = """\
import mmap, sys, time
maps = []
for path in sys.argv[1:]:
    with open(path, "rb") as fh:
        maps.append(mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ))
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A real process that maps a CUDA build of PyTorch's library (a file by that name) and a GGUF
    model, the way llama.cpp maps its weights."""
    lib = tmp_path / "site-packages" / "torch" / "lib" / "libtorch_cuda.so"
    model = tmp_path / "models" / "medgemma-4b-it-Q8_0.gguf"
    for path in (lib, model):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\0" * mmap.PAGESIZE)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lib), str(model)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc, model
    proc.kill()
    proc.wait()


def _in_a_docker_cgroup(pid: int) -> str | None:
    """Put ``pid`` in a cgroup named as Docker names a container's; its id, or None where this
    machine does not let the test make cgroups (not root, or no cgroup v1 pids hierarchy)."""
    cid = "3f2a9c1b7d4e" + "0" * 52
    group = Path("/sys/fs/cgroup/pids/docker") / cid
    try:
        group.mkdir(parents=True, exist_ok=True)
        (group / "cgroup.procs").write_text(str(pid))
    except OSError:
        return None
    return cid


def _leave_cgroup(cid: str, pid: int) -> None:
    group = Path("/sys/fs/cgroup/pids/docker") / cid
    (Path("/sys/fs/cgroup/pids") / "cgroup.procs").write_text(str(pid))  # back to the root: the group empties
    for path in (group, group.parent):
        try:
            path.rmdir()
        except OSError:
            pass


def test_a_real_process_shows_its_container_framework_and_model(fake_nvml, holder):
    proc, model = holder
    cid = _in_a_docker_cgroup(proc.pid)
    try:
        fake_nvml.add_process(3, proc.pid, 4_200)
        fake_nvml.write()
        result = subprocess.run([sys.executable, "-m", "vramtop", "--once", "--json", "--no-ray"],
                                env=fake_nvml.env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        (doc,) = [p for p in json.loads(result.stdout)["processes"] if p["pid"] == proc.pid]
        assert doc["frameworks"] == ["pytorch"] and doc["model_files"] == [str(model)]
        if cid is None:
            assert doc["container"] is None  # the test runs on the host
        else:
            assert doc["container"] == {"runtime": "docker", "container_id": cid, "pod_uid": None, "pod": None}

        csv_out = subprocess.run([sys.executable, "-m", "vramtop", "--once", "--csv", "--no-ray"],
                                 env=fake_nvml.env(), capture_output=True, text=True, timeout=60).stdout
        (row,) = [r for r in csv.DictReader(io.StringIO(csv_out)) if r["pid"] == str(proc.pid)]
        assert row["frameworks"] == "pytorch" and row["container"] == ("" if cid is None else f"docker {cid[:12]}")
    finally:
        if cid is not None:
            _leave_cgroup(cid, proc.pid)


def test_the_live_view_says_it_on_the_process_row(holder):
    from vramtop.snapshot import HostProcess
    from vramtop.telemetry.model import ContainerInfo, Telemetry
    from vramtop.widgets.process_rows import build_rows

    proc, model = holder
    loaded = read_loaded(proc.pid)
    host = HostProcess(proc.pid, os.getpid(), "python3", "python3 serve.py", ("python3", "serve.py"))
    snap = NodeSnapshot(0.0, "h", "test", gpu_processes=(GpuProcess(proc.pid, 0, 4_200, host=host),),
                        telemetry=Telemetry(0.0, containers={proc.pid: ContainerInfo("docker", "3f2a9c1b7d4e" + "0" * 52)},
                                            loaded={proc.pid: loaded}, phases={proc.pid: "memory stable"}))
    (row,) = build_rows(snap, ())
    assert row.cells["role"] == "pytorch python3"  # not "other": the maps say what it runs
    assert row.detail.endswith(" · container docker 3f2a9c1b7d4e · pytorch · medgemma-4b-it-Q8_0.gguf · memory stable")


def test_maps_are_read_when_a_process_appears_then_less_and_less_often():
    clock = [0.0]
    reads: list[float] = []

    def reader(pid):
        reads.append(clock[0])
        return LoadedFiles(("jax",))

    host = HostProcess(7, 1, "python3", "python3 train.py", create_time=100.0)
    lookup = PerProcess(reader, first_refresh_s=10, max_refresh_s=40)

    def at(t, pids=(7,)):
        clock[0] = t
        procs = tuple(GpuProcess(p, g, 10, host=host) for p in pids for g in (0, 1))  # one process on two GPUs
        return lookup.lookup(NodeSnapshot(t, "h", "test", gpu_processes=procs))

    for t in range(150):
        assert at(float(t)) == {7: LoadedFiles(("jax",))}
    # waits of 10, 20, 40, then 40 (the cap), each stretched by the PID's spread (a tick rounds up)
    s = spread(7)
    assert 1.0 <= s <= 1.25
    gaps = [b - a for a, b in zip(reads, reads[1:])]
    assert len(gaps) == 4
    for gap, wait in zip(gaps, (10, 20, 40, 40)):
        assert wait * s - 1 < gap < wait * s + 1
    assert at(150.0, pids=()) == {}
    at(151.0)
    assert reads[-1] == 151.0  # forgotten once gone: a new process under that PID is read afresh

    reads.clear()
    lookup = PerProcess(reader)  # as containers are read: a process never moves to another
    for t in range(0, 10_000, 7):
        at(float(t))
    assert reads == [0.0]
    answer = at(10_000.0)
    assert at(10_007.0) is answer  # the same processes, none due: the last answer itself, not a new one
    assert at(10_014.0, pids=(7, 8)) == {7: LoadedFiles(("jax",)), 8: LoadedFiles(("jax",))} and reads[-1] == 10_014.0


def test_processes_that_appeared_together_are_read_again_over_several_ticks():
    """A node's thousand workers start together; their maps are not all read again in one tick."""
    reads: dict[float, int] = {}
    clock = [0.0]

    def reader(pid):
        reads[clock[0]] = reads.get(clock[0], 0) + 1
        return None

    procs = tuple(GpuProcess(pid, 0, 10, host=HostProcess(pid, 1, "python3", "python3 w.py", create_time=5.0))
                  for pid in range(40_000, 41_000))
    lookup = PerProcess(reader, first_refresh_s=10, max_refresh_s=320, max_rereads=150)
    for t in range(0, 60, 2):  # the telemetry polls every 2 s
        clock[0] = float(t)
        lookup.lookup(NodeSnapshot(float(t), "h", "test", gpu_processes=procs))
    assert reads[0.0] == 1_000  # each is read when first seen, however many
    again = {t: n for t, n in reads.items() if t > 0}
    assert sum(again.values()) == 2_000  # after about 10 s, then after about 20 more
    assert max(again.values()) == 150  # due together from 10 s to 13 s: 150 a lookup, the rest later
    assert max(t for t, n in again.items()) < 60


LOADER = """\
import mmap, sys
maps = []
for line in sys.stdin:  # one path a line: map it, then say so
    with open(line.strip(), "rb") as fh:
        maps.append(mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ))
    print("mapped", flush=True)
"""


def test_maps_due_again_are_read_only_where_the_process_mapped_something_since(tmp_path):
    """A real process maps a GGUF, then (later) a second: its maps are read again when its
    virtual size grew, and not while it held."""
    models = [tmp_path / f"part-{n}.gguf" for n in (1, 2)]
    for model in models:
        model.write_bytes(b"\0" * 16 * mmap.PAGESIZE)
    proc = subprocess.Popen([sys.executable, "-c", LOADER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    reads: list[float] = []
    clock = [0.0]

    def reader(pid):
        reads.append(clock[0])
        return read_loaded(pid)

    def load(model):
        proc.stdin.write(f"{model}\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "mapped"

    try:
        load(models[0])
        lookup = PerProcess(reader, first_refresh_s=2, max_refresh_s=2, version=mapped_size)
        host = HostProcess(proc.pid, os.getpid(), "python3", "python3 -c", create_time=1.0)

        def at(t):
            clock[0] = t
            snap = NodeSnapshot(t, "h", "test", gpu_processes=(GpuProcess(proc.pid, 0, 10, host=host),))
            return lookup.lookup(snap)[proc.pid].model_files

        assert at(0.0) == (str(models[0]),)
        for t in range(3, 30, 3):  # due again every 2 to 2.5 s: its size held, nothing read
            assert at(float(t)) == (str(models[0]),)
        assert reads == [0.0]
        load(models[1])
        assert set(at(30.0)) == {str(models[0]), str(models[1])} and reads == [0.0, 30.0]
    finally:
        proc.kill()
        proc.wait()


def test_a_process_on_another_machine_never_gets_this_machines_facts_by_pid(holder):
    """Cluster mode: a remote worker may share a PID with a local process; /proc here is not its."""
    from vramtop.telemetry.model import Telemetry
    from vramtop.widgets.process_rows import build_rows

    proc, _ = holder
    remote = GpuProcess(proc.pid, 1, 9_000, host=HostProcess(proc.pid, None, "ray::RayWorkerWrapper",
                                                            "ray::RayWorkerWrapper"),
                        hidden_reason="on Ray node gpu-b")
    snap = NodeSnapshot(0.0, "h", "cluster", gpu_processes=(remote,))
    assert PerProcess(read_loaded).lookup(snap) == {}
    snap = NodeSnapshot(0.0, "h", "cluster", gpu_processes=(remote,),
                        telemetry=Telemetry(0.0, loaded={proc.pid: read_loaded(proc.pid)}, phases={proc.pid: "memory stable"}))
    (row,) = build_rows(snap, ())
    assert "pytorch" not in row.cells["role"] and "pytorch" not in row.detail and "memory" not in row.detail


def test_a_process_mapping_no_framework_or_model_reads_as_nothing(tmp_path):
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "maps").write_text("7f0-7f1 r-xp 00000000 08:01 9 /usr/lib/libc.so.6\n")
    assert read_loaded(9, str(tmp_path)) is None and read_loaded(10, str(tmp_path)) is None
