"""A node at rest, read live through the stand-in driver and real processes: a tick where nothing
moved makes no object per process (NVML's lists, the reading's processes and the snapshot's are
the last tick's objects), and anything that moves, memory on one GPU or a process that ends while
the driver still lists it, is seen on the tick it moves."""

import subprocess

import fakenvml
from vramtop.sources.live import LiveSource
from vramtop.sources.nvml import NvmlSource
from vramtop.sources.processes import NOT_VISIBLE


def test_nvml_lists_that_did_not_move_are_the_last_reading_s_processes(fake_nvml):
    for n in range(6):
        fake_nvml.add_process(n % 2, 700 + n, 1_000 + n)
    fake_nvml.add_process(1, 800, 64, "graphics")
    fake_nvml.write()
    source = NvmlSource()
    try:
        first, again = source.read(), source.read()
        assert again.processes is first.processes
        fake_nvml.processes[3].used += fakenvml.MIB  # PID 703, on GPU 1
        fake_nvml.write()
        moved = source.read()
        assert moved.processes is not again.processes
        assert [(p.pid, p.used_mib) for p in moved.processes if p.gpu_index == 1] == [
            (701, 1_001), (703, 1_004), (705, 1_005), (800, 64)]
        # GPU 0's processes are the objects it gave before; GPU 1's list was made again.
        assert all(p is q for p, q in zip(moved.processes, again.processes) if p.gpu_index == 0)
        assert not any(p is q for p, q in zip(moved.processes, again.processes) if p.gpu_index == 1)
        fake_nvml.processes[3].used -= fakenvml.MIB  # back to what it was: the same figures, made anew
        fake_nvml.write()
        back = source.read()
        assert [(p.pid, p.gpu_index, p.used_mib, p.kind) for p in back.processes] == [
            (p.pid, p.gpu_index, p.used_mib, p.kind) for p in first.processes]
    finally:
        source.close()


def test_a_sample_where_nothing_moved_is_the_last_sample_s_processes(fake_nvml):
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(6)]
    try:
        for n, child in enumerate(children):
            fake_nvml.add_process(n % 2, child.pid, 2_000 + n)
        fake_nvml.write()
        source = LiveSource()
        try:
            first, second, again = source.sample(), source.sample(), source.sample()
            assert second.gpu_processes is not first.gpu_processes  # CPU % comes with the second read
            assert again.gpu_processes is second.gpu_processes
            assert [p.host.pid for p in again.gpu_processes] == [c.pid for c in children[::2] + children[1::2]]
            fake_nvml.processes[5].used += 3 * fakenvml.MIB
            fake_nvml.write()
            moved = source.sample()
            assert moved.gpu_processes is not again.gpu_processes
            kept = [p is q for p, q in zip(moved.gpu_processes, again.gpu_processes)]
            assert kept == [True, True, True, True, True, False]
            assert moved.gpu_processes[5].used_mib == 2_008
            assert moved.gpu_processes[5].host is again.gpu_processes[5].host
            # A process that ends while the driver still lists it: new processes are read every tick.
            children[0].kill()
            children[0].wait()
            gone = source.sample()
            assert gone.gpu_processes is not moved.gpu_processes
            assert gone.gpu_processes[0].pid == children[0].pid and gone.gpu_processes[0].hidden_reason == NOT_VISIBLE
            assert gone.gpu_processes[0].host is None and gone.gpu_processes[1:] == moved.gpu_processes[1:]
            assert source.sample().gpu_processes is gone.gpu_processes  # hidden as before: nothing moved
        finally:
            source.close()
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_the_lists_kept_for_their_next_read_are_bounded(fake_nvml, monkeypatch):
    import pynvml

    from vramtop.sources import nvml_lists

    monkeypatch.setattr(nvml_lists, "KEPT_LISTS", 3)
    for n in range(8):
        fake_nvml.add_process(n % 4, 900 + n, 100 + n)
    fake_nvml.write()
    source = NvmlSource()
    try:
        lists = source._lists
        for _ in range(2):
            reading = source.read()
            assert 1 <= len(lists._kept) <= 3
            assert sorted((p.pid, p.gpu_index, p.used_mib) for p in reading.processes) == [
                (900 + n, n % 4, 100 + n) for n in range(8)]
        handle = pynvml.nvmlDeviceGetHandleByIndex(2)
        symbol = "nvmlDeviceGetComputeRunningProcesses_v3"
        assert lists.read(symbol, handle) is lists.read(symbol, handle)  # kept while it stays
    finally:
        source.close()
