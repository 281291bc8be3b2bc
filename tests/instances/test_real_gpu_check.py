"""The comparison ``bench/real_gpu_check.sh`` makes on a real GPU, run here on the stand-in driver:
vramtop's real ``--once --json`` of a real titled parent-and-workers tree, against the CSV that
nvidia-smi prints for the same NVML figures (MiB rounded up, as an H200's nvidia-smi showed them:
``test_nvml_source``). It passes when they agree and names the
field that does not when one is off."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from engine_tree import Proc, proc_tree, run_once_json
from fakenvml import MIB

_PATH = Path(__file__).resolve().parents[2] / "bench" / "real_gpu_check.py"
_spec = importlib.util.spec_from_file_location("real_gpu_check", _PATH)
real_gpu_check = sys.modules.setdefault("real_gpu_check", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(real_gpu_check)


def smi(nbytes: int) -> int:
    return -(-nbytes // MIB)


def smi_csv(scenario) -> tuple[str, str]:
    """What nvidia-smi's two queries print for the scenario's NVML figures."""
    gpus = "".join(f"{i}, {smi(g.total)}, {smi(g.used)}, {smi(g.free)}, {smi(g.reserved)}\n"
                   for i, g in enumerate(scenario.gpus))
    apps = "".join(f"{p.pid}, {scenario.gpus[p.gpu].uuid}, {smi(p.used)}\n" for p in scenario.processes)
    return gpus, apps


def test_agreeing_figures_pass_and_one_mib_off_fails_by_name(tmp_path):
    procs = (
        Proc("parent", "VLLM::EngineCore", None, {0: 300}),
        Proc("w0", "VLLM::Worker_TP0", "parent", {0: 1_100}),
        Proc("w1", "VLLM::Worker_TP1", "parent", {1: 1_100}),
    )
    with proc_tree(*procs) as tree:
        scenario = tree.scenario(tmp_path / "nvml.txt", 2)
        doc = run_once_json(scenario)
    held = {"parent": tree.pid["parent"], "children": [tree.pid["w0"], tree.pid["w1"]],
            "parent_mib": 256, "child_mib": 1_024, "titled": True}
    gpus, apps = smi_csv(scenario)
    results = real_gpu_check.checks(doc, gpus, apps, held)
    assert [c.line for c in results if c.ok is not True] == []
    assert {c.name for c in results} >= {"GPU 1 reserved_mib", f"pid {tree.pid['w1']} used_mib",
                                         "one instance: the parent and its workers", "instance tp_size"}

    used = smi(scenario.gpus[0].used)
    off_by_one = gpus.replace(f"0, 23028, {used},", f"0, 23028, {used + 1},")
    (failed,) = [c for c in real_gpu_check.checks(doc, off_by_one, apps, held) if c.ok is False]
    assert failed.name == "GPU 0 used_mib"

    # Files on disk, as the shell script hands them over: exit 1 on a mismatch, 0 otherwise.
    files = {name: tmp_path / name for name in ("doc.json", "gpus.csv", "apps.csv", "held.json")}
    files["doc.json"].write_text(json.dumps(doc))
    files["held.json"].write_text(json.dumps(held) + "\n")
    files["apps.csv"].write_text(apps)
    for text, status in ((gpus, 0), (off_by_one, 1)):
        files["gpus.csv"].write_text(text)
        assert real_gpu_check.compare(*(str(files[n]) for n in ("doc.json", "gpus.csv", "apps.csv", "held.json"))) == status


def test_workers_split_from_their_parent_fail_the_grouping_check(tmp_path):
    procs = (
        Proc("parent", argv=("bash-like",), gpu_mib={0: 300}),
        Proc("w0", "VLLM::Worker_TP0", "parent", {0: 1_100}),
    )
    with proc_tree(*procs) as tree:
        scenario = tree.scenario(tmp_path / "nvml.txt", 1)
        doc = run_once_json(scenario)
    held = {"parent": tree.pid["parent"], "children": [tree.pid["w0"]], "parent_mib": 256, "child_mib": 1_024}
    (failed,) = [c for c in real_gpu_check.checks(doc, *smi_csv(scenario), held) if c.ok is False]
    assert failed.name == "one instance: the parent and its workers"
