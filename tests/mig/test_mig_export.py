"""The Prometheus families of a node whose GPU 0 is split into two 3g.40gb MIG slices, read live
from the stand-in driver: each slice is a series of its own, and a process on a slice is labelled
with the slice, not with the whole GPU (a dashboard summing by ``gpu`` would mix slices)."""

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vramtop.analysis.states import Thresholds
from vramtop.exporter.collector import LatestSnapshot, registry_for

MIB = 2**20


@pytest.fixture
def families(live_mig_node):
    """Slice 0:1 holds a vLLM engine, GPU 1 a training job (the fixture in conftest.py)."""
    snapshot, engine, job = live_mig_node
    latest = LatestSnapshot(Thresholds(), pid_labels=True)
    latest.publish(snapshot)
    text = generate_latest(registry_for(latest)).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}, engine, job


def test_each_slice_has_its_memory_and_profile(families):
    by_name, _, _ = families
    used = {s.labels["gpu"]: s.value / MIB for s in by_name["vramtop_mig_memory_used_bytes"].samples}
    free = {s.labels["gpu"]: s.value / MIB for s in by_name["vramtop_mig_memory_free_bytes"].samples}
    assert used == {"0:0": 13, "0:1": 36_013} and free == {"0:0": 40_179, "0:1": 4_179}
    profiles = {s.labels["gpu"]: s.labels["profile"] for s in by_name["vramtop_mig_slice_info"].samples}
    assert profiles == {"0:0": "3g.40gb", "0:1": "3g.40gb"}


def test_a_process_on_a_slice_is_labelled_with_the_slice(families):
    by_name, engine, job = families
    where = {s.labels["pid"]: s.labels["gpu"] for s in by_name["vramtop_process_memory_used_bytes"].samples}
    assert where == {str(engine): "0:1", str(job): "1"}
    instance_gpus = {s.labels["gpu"] for s in by_name["vramtop_instance_memory_used_bytes"].samples}
    assert instance_gpus == {"0:1", "1"}
