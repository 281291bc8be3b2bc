"""The process reader on real processes that carry the titles serving engines set."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from engine_tree import engine_tree as spawn_engine
from vramtop.analysis.instances import group_instances
from vramtop.snapshot import GpuProcess, NodeSnapshot
from vramtop.sources.processes import NOT_VISIBLE, ProcessReader

@pytest.fixture
def engine_tree():
    with spawn_engine(2) as tree:
        yield tree


def test_titles_ancestors_and_grouping_from_real_processes(engine_tree):
    engine_pid, workers = engine_tree
    reader = ProcessReader()
    hosts, hidden, ancestors, errors = reader.read(set(workers))
    assert not hidden and not errors
    assert [hosts[p].title for p in workers] == ["VLLM::Worker_TP0", "VLLM::Worker_TP1"]
    assert ancestors[engine_pid].title == "VLLM::EngineCore"
    assert os.getpid() in ancestors  # the chain goes up to, not including, PID 1
    assert 1 not in ancestors
    snap = NodeSnapshot(
        timestamp=0, hostname="h", source="test",
        gpu_processes=tuple(GpuProcess(p, i, 1000, host=hosts[p]) for i, p in enumerate(workers)),
        ancestors=ancestors,
    )
    (inst,) = group_instances(snap)
    assert inst.root_pid == engine_pid and inst.tp_size == 2 and inst.total_mib == 2000


def test_cpu_percent_is_measured_from_the_second_read(engine_tree):
    _, workers = engine_tree
    reader = ProcessReader()
    reader.read({workers[0]})
    hosts, *_ = reader.read({workers[0]})
    assert hosts[workers[0]].cpu_pct is not None and hosts[workers[0]].rss_mib > 0


def test_a_pid_that_is_gone_keeps_a_reason():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    hosts, hidden, ancestors, errors = ProcessReader().read({gone.pid})
    assert hosts == {} and hidden == {gone.pid: NOT_VISIBLE}


def test_all_hidden_says_how_to_fix_a_container():
    pids = set()
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", "pass"])
        p.wait()
        pids.add(p.pid)
    *_, errors = ProcessReader().read(pids)
    assert len(errors) == 1 and "--pid=host" in errors[0].message


class Renaming:
    """A child that titles itself ``first`` (None: keeps the interpreter's command line) and
    ``second`` when ``rename()`` is called, as Ray and vLLM retitle their processes through
    setproctitle (ray/_private/worker.py, vllm/utils set_process_title)."""

    def __init__(self, first: str | None, second: str) -> None:
        code = "import setproctitle, sys, time; "
        code += f"setproctitle.setproctitle({first!r}); " if first else ""
        code += (f"print(flush=True); sys.stdin.readline(); setproctitle.setproctitle({second!r}); "
                 "print(flush=True); time.sleep(60)")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def __enter__(self) -> "Renaming":
        self.proc.stdout.readline()  # started, with its first title
        return self

    def rename(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.wait()


def test_a_process_that_renames_itself_is_seen_under_its_new_title():
    with Renaming(None, "VLLM::Worker_TP3") as late:
        reader = ProcessReader()
        before, *_ = reader.read({late.pid})
        late.rename()
        after, *_ = reader.read({late.pid})
        assert before[late.pid].title.startswith(sys.executable)
        assert after[late.pid].title == "VLLM::Worker_TP3"


def test_a_long_known_process_that_renames_itself_is_seen_at_the_next_read():
    from vramtop.sources.processes import NEW_READS

    with Renaming(None, "ray::ServeReplica:app:D") as late:
        reader = ProcessReader(reread_s=0, settled_per_s=float("inf"))  # each read reads /proc (see the test of REREAD_S below)
        for _ in range(NEW_READS + 1):  # past the reads that check every time
            reader.read({late.pid})
        late.rename()
        # setproctitle sets the name in /proc/PID/stat too (as Ray's and vLLM's retitles do): at once
        assert reader.read({late.pid})[0][late.pid].title == "ray::ServeReplica:app:D"


def test_a_title_changed_past_the_name_is_seen_within_the_recheck_reads():
    # The name keeps 15 characters: a title that changes after them (or a command line rewritten
    # without the name) is only seen by the periodic check.
    from vramtop.sources.processes import NEW_READS, RECHECK_EVERY

    with Renaming("ray::ServeReplica:app:A", "ray::ServeReplica:app:B") as late:
        reader = ProcessReader(reread_s=0, settled_per_s=float("inf"))
        for _ in range(NEW_READS + 1):  # past the reads that check every time
            reader.read({late.pid})
        late.rename()
        titles = [reader.read({late.pid})[0][late.pid].title for _ in range(RECHECK_EVERY)]
        assert titles[0] == "ray::ServeReplica:app:A"  # the name did not change: not read again yet
        assert titles[-1] == "ray::ServeReplica:app:B"  # at most RECHECK_EVERY reads late


def test_a_new_process_whose_title_changes_past_the_name_is_seen_within_its_first_reads():
    # While new, its command line is read on its 2nd, 5th and 8th reads, one or two later by its
    # PID (and whenever its name changes): a thousand workers started together are not all read
    # twice every tick, nor all on the same tick.
    from vramtop.sources.processes import NEW_TITLE_READS

    with Renaming("ray::ServeReplica:app:A", "ray::ServeReplica:app:B") as late:
        reader = ProcessReader(reread_s=0, settled_per_s=float("inf"))
        for _ in range(2):
            reader.read({late.pid})
        late.rename()
        titles = [reader.read({late.pid})[0][late.pid].title for _ in range(3)]  # its 3rd to 5th reads
        seen = min(r for r in NEW_TITLE_READS if r + late.pid % 3 > 2) + late.pid % 3  # the first check after
        assert titles == ["ray::ServeReplica:app:A"] * (seen - 3) + ["ray::ServeReplica:app:B"] * (6 - seen)


def test_a_parent_that_holds_gpu_memory_itself_is_still_its_workers_ancestor(engine_tree):
    # The engine core is a GPU process too (a context, or TP=1): the walk up from its workers must
    # not stop at it, or grouping sees three instances where there is one.
    engine_pid, workers = engine_tree
    hosts, hidden, ancestors, errors = ProcessReader().read({engine_pid, *workers})
    assert ancestors[engine_pid].title == "VLLM::EngineCore" and os.getpid() in ancestors
    snap = NodeSnapshot(
        timestamp=0, hostname="h", source="test",
        gpu_processes=(GpuProcess(engine_pid, 0, 500, host=hosts[engine_pid]),
                       *(GpuProcess(p, i, 1000, host=hosts[p]) for i, p in enumerate(workers))),
        ancestors=ancestors,
    )
    (inst,) = group_instances(snap)
    assert inst.root_pid == engine_pid and inst.total_mib == 2500 and sorted(inst.pids) == sorted([engine_pid, *workers])


def test_cpu_and_rss_are_the_figures_psutil_gives():
    # One read of /proc/PID/stat per tick stands in for psutil's four: its figures must agree.
    busy = subprocess.Popen([sys.executable, "-c", "x = bytearray(64 * 2**20)\nwhile True: pass"])
    try:
        reader = ProcessReader()
        reader.read({busy.pid})
        proc = psutil.Process(busy.pid)
        proc.cpu_percent(None)
        time.sleep(1.0)
        (host,) = reader.read({busy.pid})[0].values()
        theirs = proc.cpu_percent(None)
        assert host.cpu_pct is not None and abs(host.cpu_pct - theirs) < 15  # read a moment apart
        assert host.cpu_pct > 20  # it spins: a share of a core on a loaded machine, not 0
        assert abs(host.rss_mib - proc.memory_info().rss // 2**20) <= 1 and host.rss_mib >= 64
    finally:
        busy.kill()
        busy.wait()


def test_a_process_that_did_not_move_keeps_its_record(engine_tree):
    # A tick where nothing moved builds no record: the snapshot's equality check is then an
    # identity check, and nothing is allocated per process.
    _, workers = engine_tree
    reader = ProcessReader()
    reader.read(set(workers))
    first, *_ = reader.read(set(workers))
    second, *_ = reader.read(set(workers))
    assert all(second[p] is first[p] for p in workers)
    assert all(second[p].cpu_pct == 0.0 for p in workers)  # the engine stand-ins sleep


# Spins, and grows by 1 MiB each 50 ms: every read some time apart sees new figures (CPU % alone
# may read the same twice, and equal figures keep the record).
SPINS_AND_GROWS = ("import time\nheld = []\nwhile True:\n    until = time.monotonic() + 0.05\n"
                   "    while time.monotonic() < until: pass\n    held.append(b'x' * 2**20)\n")


def test_a_settled_process_is_read_every_reread_s_and_keeps_its_record_between():
    # Each read of a process whose figures move makes a new record; between reads it keeps its record.
    from vramtop.sources.processes import NEW_READS

    busy = subprocess.Popen([sys.executable, "-c", SPINS_AND_GROWS])
    try:
        reader = ProcessReader(reread_s=0.6)
        for _ in range(NEW_READS):  # read on every tick while new
            first = reader.read({busy.pid})[0][busy.pid]
            time.sleep(0.01)
        records, start = [first], time.monotonic()
        while time.monotonic() - start < 2.0:
            records.append(reader.read({busy.pid})[0][busy.pid])
            time.sleep(0.02)
        changes = [i for i in range(1, len(records)) if records[i] is not records[i - 1]]
        # about 100 reads asked for in 2 s: the first due within 0.6 s (its phase), then every 0.6 s
        assert 2 <= len(changes) <= 4, changes
        assert changes[0] * 0.02 < 0.6 + 0.2
        assert all(records[i].cpu_pct > 20 for i in changes)  # CPU % over the time since the last read
        # read anew, not kept: its RSS grew between reads 0.6 s apart (the first re-read falls where
        # the PID's phase puts it, which may be a few ms after the last read while new: no MiB added yet)
        assert records[changes[0]].rss_mib >= records[changes[0] - 1].rss_mib
        assert all(records[i].rss_mib > records[i - 1].rss_mib for i in changes[1:])
    finally:
        busy.kill()
        busy.wait()


def test_a_process_that_has_run_a_while_when_first_seen_is_settled_at_once():
    # vramtop started on a busy node: its thousand workers are not new, and are not read on each
    # of the first ticks.
    busy = subprocess.Popen([sys.executable, "-c", SPINS_AND_GROWS])
    try:
        time.sleep(0.5)
        records = []
        for settled_after_s in (0.2, 60.0):
            reader = ProcessReader(reread_s=0.6, settled_after_s=settled_after_s)
            seen, start = [], time.monotonic()
            while time.monotonic() - start < 0.5:
                seen.append(reader.read({busy.pid})[0][busy.pid])
                time.sleep(0.02)
            records.append(len({id(r) for r in seen}))
        old, new = records
        assert old <= 2  # the first read, then at most one on its phase
        assert new >= 6  # young: read on each of its first ticks, a new record where CPU % moved
    finally:
        busy.kill()
        busy.wait()


def test_workers_started_together_are_read_on_phases_spread_over_reread_s():
    from vramtop.sources.processes import pid_phase

    tenths = [0] * 10
    for pid in range(31_000, 32_000):  # a thousand workers started together: consecutive PIDs
        tenths[int(pid_phase(pid) * 10)] += 1
    assert min(tenths) >= 80 and max(tenths) <= 120, tenths


@pytest.fixture
def stat_reads(monkeypatch):
    """The PIDs whose /proc/PID/stat the reader reads, in order (each read is the real one)."""
    from vramtop.sources import processes

    read, real = [], processes._stat
    monkeypatch.setattr(processes, "_stat", lambda pid: (read.append(pid), real(pid))[1])
    return read


def test_new_processes_past_the_tick_s_turn_are_read_in_turns(stat_reads):
    # A thousand workers started together are not all read on each of their first ticks: at most
    # so many a tick (here 4 of 12), those read longest ago first, each in its turn.
    kids = [subprocess.Popen(["sleep", "60"]) for _ in range(12)]
    try:
        pids = {k.pid for k in kids}
        reader = ProcessReader(new_per_tick=4)
        first, *_ = reader.read(pids)  # first seen: each looked up and read
        ticks = []
        for _ in range(6):
            stat_reads.clear()
            hosts, *_ = reader.read(pids)
            assert set(hosts) == pids and all(hosts[p].pid == p for p in pids)  # the others keep their records
            ticks.append(set(stat_reads))
        assert [len(t) for t in ticks] == [4] * 6
        assert ticks[0] | ticks[1] | ticks[2] == pids == ticks[3] | ticks[4] | ticks[5]
        roomy = ProcessReader()  # under the bound, all are read on each tick
        roomy.read(pids)
        stat_reads.clear()
        roomy.read(pids)
        assert set(stat_reads) == pids
    finally:
        for k in kids:
            k.kill()
            k.wait()


def test_settled_processes_are_read_no_more_than_so_many_a_second(stat_reads):
    # A node of a thousand GPU processes is not read 333 a second (each every 3 s): past the bound
    # (here 5 a second, 10 processes), each is read less often, the reads spread over the seconds.
    kids = [subprocess.Popen(["sleep", "60"]) for _ in range(10)]
    try:
        pids = {k.pid for k in kids}
        counts = []
        for per_s in (5, 1000):
            reader = ProcessReader(reread_s=0.5, settled_after_s=0.0, settled_per_s=per_s)
            reader.read(pids)  # first seen, and settled at once: each on its phase from here
            stat_reads.clear()
            start = time.monotonic()
            while time.monotonic() - start < 3.0:
                hosts, *_ = reader.read(pids)
                assert set(hosts) == pids
                time.sleep(0.02)
            counts.append(len(stat_reads))
        bounded, free = counts
        assert 10 <= bounded <= 20, counts  # 5 a second (each every 2 s), not each every 0.5 s
        assert free >= 45, counts  # under the bound: each every 0.5 s, about 60
    finally:
        for k in kids:
            k.kill()
            k.wait()
