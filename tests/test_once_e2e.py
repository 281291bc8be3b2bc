"""End to end: ``vramtop --once`` in a child process, real nvidia-ml-py on the stand-in driver,
real processes with vLLM titles, nothing mocked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fakenvml
from engine_tree import engine_tree

@pytest.fixture
def vllm_tp4():
    """A real EngineCore with Worker_TP0..3 children: yields (engine pid, worker pids)."""
    with engine_tree(4) as tree:
        yield tree


def run_vramtop(scenario: fakenvml.Scenario, *args: str, variant: str = "full") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vramtop", *args],
        env=scenario.env(variant), capture_output=True, text=True, timeout=60,
    )


def seed_with_workers(tmp_path: Path, workers: list[int]) -> fakenvml.Scenario:
    scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
    for gpu, pid in enumerate(workers):
        scenario.add_process(gpu, pid, 20_730)
    scenario.write()
    return scenario


def test_seed_node_as_json(tmp_path, vllm_tp4):
    engine, workers = vllm_tp4
    result = run_vramtop(seed_with_workers(tmp_path, workers), "--once", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    gpus = doc["gpus"]
    assert [g["free_mib"] for g in gpus] == [32, 1_256, 1_254, 1_364]
    assert all(g["total_mib"] == 23_028 and g["reserved_mib"] == 513 for g in gpus)
    assert [g["state"] for g in gpus] == ["critical", "low", "low", "low"]
    assert doc["node"]["free_mib"] == 3_906
    assert [(p["pid"], p["gpu"], p["label"]) for p in doc["processes"]] == [
        (pid, i, f"Worker_TP{i}") for i, pid in enumerate(workers)
    ]
    (inst,) = doc["instances"]
    assert inst["root_pid"] == engine and inst["tp_size"] == 4
    assert inst["total_mib"] == 82_920 and inst["per_gpu_mib"] == {str(i): 20_730 for i in range(4)}
    assert {p["instance"] for p in doc["processes"]} == {inst["key"]}
    assert doc["errors"] == [] and doc["source"] == "nvml"


def test_text_picture_names_states_and_instance(tmp_path, vllm_tp4):
    _, workers = vllm_tp4
    result = run_vramtop(seed_with_workers(tmp_path, workers), "--once")
    assert result.returncode == 0, result.stderr
    assert "free 3,906 MiB" in result.stdout
    assert "GPU 0 NVIDIA A10: used 22,483 + reserved 513 + free 32 = 23,028 MiB" in result.stdout
    assert "critical" in result.stdout and "Worker_TP3" in result.stdout
    assert "82,920 MiB" in result.stdout


def test_lost_gpu_and_hidden_pid_are_reported_not_dropped(tmp_path, vllm_tp4):
    _, workers = vllm_tp4
    scenario = seed_with_workers(tmp_path, workers)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    scenario.add_process(3, gone.pid, 421)
    scenario.lose(2)
    scenario.write()
    doc = json.loads(run_vramtop(scenario, "--once", "--json").stdout)
    assert doc["gpus"][2]["lost"] and doc["gpus"][2]["state"] == "lost"
    assert [g["free_mib"] for g in doc["gpus"] if not g["lost"]] == [32, 1_256, 1_364]
    hidden = [p for p in doc["processes"] if p["pid"] == gone.pid]
    assert hidden and hidden[0]["used_mib"] == 421 and not hidden[0]["visible"]
    assert "PID namespace" in hidden[0]["hidden_reason"]
    assert any(e["source"].startswith("nvml") and "lost" in e["message"].lower() for e in doc["errors"])


def test_no_driver_exits_2_with_one_line(tmp_path):
    scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
    scenario.write()
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path))  # an empty folder: no libnvidia-ml.so.1
    result = subprocess.run([sys.executable, "-m", "vramtop", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "NVML library" in lines[0] and "not found" in lines[0] and "--demo" in lines[0]


def test_figures_that_do_not_add_up_once_rounded_say_so(tmp_path):
    """The bytes an H200 gave (driver 580.159.04): nvidia-smi showed 2,129 used, 616 reserved and
    141,028 free of 143,771, which add up to 2 MiB over; vramtop shows the same and writes "≈",
    in --once and in the report."""
    scenario = fakenvml.Scenario(tmp_path / "scenario.txt")
    gpu = scenario.add_gpu("NVIDIA H200", total_mib=143_771, reserved_mib=616, used_mib=2_129)
    gpu.total, gpu.reserved, gpu.used, gpu.free = 150_754_820_096, 644_939_776, 2_231_762_944, 147_878_117_376
    scenario.write()
    result = run_vramtop(scenario, "--once", "--no-ray")
    assert result.returncode == 0, result.stderr
    assert "GPU 0 NVIDIA H200: used 2,129 + reserved 616 + free 141,028 ≈ 143,771 MiB" in result.stdout
    for lang, words in (("en", "rounds each figure up to the MiB"), ("es", "redondea cada cifra al MiB superior")):
        report = run_vramtop(scenario, "report", "--no-ray", "--lang", lang)
        assert report.returncode == 0, report.stderr
        assert f"(GPU 0: 2,129 + 616 + 141,028 ≈ 143,771 MiB; nvidia-smi {words})" in report.stdout


def test_demo_once_needs_no_driver(tmp_path):
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "vramtop", "--demo", "--once", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    doc = json.loads(result.stdout)
    assert doc["source"] == "demo" and doc["node"]["free_mib"] == 3_906
    # the seed's autoscaling conclusion, reached by the Ray analysis on the demo's Serve state
    (dep,) = doc["ray"]["deployments"]
    assert dep["gpus_per_replica"] == 4 and dep["max_feasible_replicas"] == 1
    assert dep["replicas"]["running"] == 1 and dep["replicas"]["pending"] == 1
    assert dep["autoscaling"]["min_replicas"] == 2 and dep["autoscaling"]["max_replicas"] == 16
    assert any("min_replicas=2 cannot be met" in w for w in dep["warnings"])
    assert any("can never add replicas" in w for w in dep["warnings"])


def test_process_table_as_csv(tmp_path, vllm_tp4):
    import csv
    import io

    engine, workers = vllm_tp4
    result = run_vramtop(seed_with_workers(tmp_path, workers), "--once", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(int(r["gpu"]), int(r["pid"]), r["label"], int(r["used_mib"])) for r in rows] == [
        (i, pid, f"Worker_TP{i}", 20_730) for i, pid in enumerate(workers)
    ]
    assert {r["instance"] for r in rows} == {f"vllm:{engine}"}


def test_record_then_replay_once_and_report_through_the_cli(tmp_path):
    rec = tmp_path / "demo.vtrec"
    made = subprocess.run([sys.executable, "-m", "vramtop", "record", "-o", str(rec), "--demo", "--duration", "2",
                           "--interval", "1"], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    doc = json.loads(subprocess.run([sys.executable, "-m", "vramtop", "--replay", str(rec), "--once", "--json"],
                                    capture_output=True, text=True, timeout=60).stdout)
    assert doc["source"] == "replay" and doc["node"]["free_mib"] == 3_906
    assert doc["ray"]["deployments"][0]["max_feasible_replicas"] == 1  # recorded with the snapshot
    report = subprocess.run([sys.executable, "-m", "vramtop", "report", "--replay", str(rec), "--lang", "es"],
                            capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and "# Informe de VRAM" in report.stdout and "82.920" in report.stdout.replace(",", ".")


def test_a_damaged_recording_is_one_line_and_status_2(tmp_path):
    bad = tmp_path / "bad.vtrec"
    bad.write_bytes(b"not a recording\n\x00\x01")
    result = subprocess.run([sys.executable, "-m", "vramtop", "--replay", str(bad), "--once"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and str(bad) in result.stderr


def test_once_imports_no_reader_for_an_engine_the_node_does_not_run(tmp_path, vllm_tp4):
    """A vLLM engine core with no API server has no /metrics to read: ``--once`` imports no
    metrics parser, no KV check or fit model, and nothing for SGLang, TGI, Ollama or Ray."""
    _, workers = vllm_tp4
    probe = ("import sys\nfrom vramtop.cli import main\nstatus = main(['--once', '--json', '--no-ray'])\n"
             "print(' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", probe], env=seed_with_workers(tmp_path, workers).env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["instances"][0]["tp_size"] == 4
    loaded = set(result.stderr.split())
    assert "vramtop.telemetry.poller" in loaded  # the telemetry did run
    unneeded = {"prometheus_client", "vramtop.telemetry.kv_check", "vramtop.fit.specs", "vramtop.telemetry.ollama",
                "vramtop.telemetry.sglang_metrics", "vramtop.telemetry.tgi_metrics", "vramtop.telemetry.ray_serve",
                "vramtop.ray.link", "vramtop.ray.feasibility"}
    assert loaded & unneeded == set()
