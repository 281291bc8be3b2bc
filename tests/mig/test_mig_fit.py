"""The fit engine on a node whose GPU 0 is split into two 3g.40gb MIG slices, read live from the
stand-in driver with a real process on a slice: each slice is a device of its own memory, a
tensor-parallel group never spans slices, stopping an instance on a slice frees that slice."""

import pytest

from vramtop.fit.placement import node_from_snapshot
from vramtop.fit.specs import resolve
from vramtop.fit.verdict import GREEN, RED, YELLOW, Candidate, evaluate


@pytest.fixture
def node(live_mig_node):
    snapshot, engine, _ = live_mig_node
    return snapshot, engine


def test_the_slices_are_devices_and_the_gpu_in_mig_mode_is_not(node):
    snapshot, engine = node
    view = node_from_snapshot(snapshot)
    assert [(g.index, g.total_mib, g.free_mib) for g in view.gpus] == [
        ("0:0", 40_192, 40_179), ("0:1", 40_192, 4_179), (1, 81_920, 11_401)]
    assert view.gpu("0:1").name == "NVIDIA A100-SXM4-80GB MIG 3g.40gb"
    (inst,) = [i for i in view.instances if i.root_pid == engine]
    assert view.on_slices[inst.key] == {"0:1": 35_990}


def test_a_7b_model_with_tp1_goes_on_the_empty_slice(node):
    snapshot, _ = node
    r = evaluate(Candidate(resolve("Qwen/Qwen2.5-7B-Instruct"), max_model_len=8192), snapshot)
    assert r.verdict in (GREEN, YELLOW), r.headline
    assert [(g.gpu_index, g.total_mib) for g in r.per_gpu] == [("0:0", 40_192)]


def test_tensor_parallel_never_spans_slices(node):
    snapshot, _ = node
    r = evaluate(Candidate(resolve("Qwen/Qwen2.5-7B-Instruct"), tensor_parallel_size=2, max_model_len=8192),
                 snapshot, suggest=False)
    # Two slices of one GPU would hold it, but CUDA shows a process one MIG device: only whole
    # GPUs can form the group, and there is one.
    assert r.verdict == RED and r.per_gpu == ()
    assert "tensor_parallel_size 2" in r.headline


def test_stopping_the_instance_on_a_slice_frees_that_slice(node):
    snapshot, engine = node
    view = node_from_snapshot(snapshot)
    (inst,) = [i for i in view.instances if i.root_pid == engine]
    two = Candidate(resolve("Qwen/Qwen2.5-7B-Instruct"), max_model_len=8192, replicas=2)
    assert evaluate(two, snapshot, suggest=False).verdict == RED  # 0:1 and GPU 1 lack util x total
    freed = evaluate(two.with_(stopped=(inst.key,)), snapshot, suggest=False)
    assert freed.verdict in (GREEN, YELLOW), freed.headline
    assert sorted(g.gpu_index for g in freed.per_gpu) == ["0:0", "0:1"]
    assert [g.free_mib for g in freed.per_gpu if g.gpu_index == "0:1"] == [4_179 + 35_990]


def test_ollama_spreads_over_whole_gpus_only(node):
    snapshot, _ = node
    r = evaluate(Candidate(resolve("amsaravi/medgemma-4b-it:q8"), engine="ollama", num_ctx=4096), snapshot,
                 suggest=False)
    assert {g.gpu_index for g in r.per_gpu} == {1}
