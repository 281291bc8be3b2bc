"""What names an instance's place on a node whose GPU 0 is split into MIG slices, read live from
the stand-in driver with real processes on the slices: the process table's instance row and the
what-if panel's "as if stopped" choice say the slice ("GPU 0:1"), while ``per_gpu_mib`` stays
keyed by the parent GPU for the bars and the fit engine."""

import pytest

import fakenvml
from engine_tree import Proc, proc_tree
from vramtop.analysis.instances import group_instances
from vramtop.report import build_report
from vramtop.sources.live import LiveSource
from vramtop.widgets.whatif.form import instance_label
from vramtop.widgets.process_rows import build_rows


@pytest.fixture
def snapshot(fake_nvml):
    """Slice 0:1: a Ray Serve replica that holds a CUDA context itself and the vLLM V1 engine core
    it started (TP=1: the EngineCore owns the device; vllm/v1/engine/core.py titles it through
    vllm/utils set_process_title); slice 0:0 a llama-server; GPU 1 whole, a training job."""
    procs = (
        Proc("root", argv=("raylet",)),
        Proc("replica", "ray::ServeReplica:chat:VLLMDeployment", "root"),
        Proc("engine", "VLLM::EngineCore", "replica"),
        Proc("llama", parent="root", argv=("llama-server", "-m", "/models/gemma.gguf")),
        Proc("job", parent="root", argv=("python3", "train.py")),
    )
    scenario = fakenvml.a100_mig(fake_nvml.path)
    with proc_tree(*procs) as tree:
        scenario.add_process(0, tree.pid["replica"], 480, mig=1)
        scenario.add_process(0, tree.pid["engine"], 35_510, mig=1)
        scenario.add_process(0, tree.pid["llama"], 5_120, mig=0)
        scenario.add_process(1, tree.pid["job"], 2_048)
        scenario.write()
        source = LiveSource()
        try:
            yield source.sample(), tree.pid
        finally:
            source.close()


def test_an_instance_on_a_slice_is_labelled_by_its_slice(snapshot):
    snap, pid = snapshot
    by_root = {i.root_pid: i for i in group_instances(snap)}
    vllm, job = by_root[pid["replica"]], by_root[pid["job"]]
    assert sorted(vllm.pids) == sorted([pid["replica"], pid["engine"]])
    assert vllm.per_gpu_mib == {0: 35_990} and vllm.per_slice_mib == {"0:1": 35_990} and vllm.on_slices
    assert instance_label(vllm) == f"{vllm.label} (GPU 0:1, 35,990 MiB)"
    assert instance_label(job) == f"{job.label} (GPU 1, 2,048 MiB)"
    rows = {r.key: r for r in build_rows(snap, group_instances(snap))}
    header = rows[f"i:{vllm.key}"]
    assert header.cells["gpu"] == "0:1" and "GPU0:1 35,990" in header.cells["command"]


def test_the_report_lists_slices_under_their_gpu_and_names_the_slice_of_processes_and_instances(snapshot):
    snap, pid = snapshot
    lines = build_report(snap).to_markdown().splitlines()
    gpu0 = next(n for n, line in enumerate(lines) if line.startswith("| 0 | NVIDIA A100"))
    assert lines[gpu0 + 1].startswith("| 0:0 | MIG 3g.40gb | 40,192 MiB |")
    assert lines[gpu0 + 2].startswith("| 0:1 | MIG 3g.40gb | 40,192 MiB |")
    assert lines[gpu0 + 3].startswith("| 1 | NVIDIA A100")
    assert any(line.startswith(f"| 0:1 | {pid['engine']} | 35,510 MiB |") for line in lines)
    assert any(line.startswith(f"| 1 | {pid['job']} | 2,048 MiB |") for line in lines)
    assert any("| 0:1 | 35,990 |" in line and "chat/VLLMDeployment" in line for line in lines)
