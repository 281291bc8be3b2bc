"""``vramtop --once`` (JSON and text) on a node whose GPU 0 is split into MIG slices: children on
the stand-in driver, real processes on the slices, nothing mocked."""

import csv
import io
import json


def test_once_json_lists_slices_under_their_gpu_and_processes_on_them(serving_node, run_vramtop):
    scenario, engine, llama, job = serving_node
    done = run_vramtop(scenario, "--once", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    gpu0, gpu1 = doc["gpus"]
    assert [(m["index"], m["profile"], m["gpu_instance_id"], m["total_mib"], m["used_mib"], m["free_mib"], m["state"])
            for m in gpu0["mig"]] == [(0, "3g.40gb", 1, 40_192, 13, 40_179, "ok"),
                                      (1, "3g.40gb", 2, 40_192, 36_013, 4_179, "ok")]
    assert gpu0["mig"][1]["name"] == "NVIDIA A100-SXM4-80GB MIG 3g.40gb" and gpu0["utilization_pct"] is None
    assert gpu1["mig"] == [] and gpu1["utilization_pct"] == 0
    where = {p["pid"]: (p["gpu"], p["mig_slice"]) for p in doc["processes"]}
    assert where == {engine: (0, 1), llama: (0, 0), job: (1, None)}
    by_pid = {i["root_pid"]: i for i in doc["instances"]}
    # Instances name the slice they run on, as processes do; a whole GPU keeps its plain key.
    assert by_pid[engine]["per_gpu_mib"] == {"0:1": 35_990} and by_pid[engine]["engine"] == "vllm"
    assert by_pid[engine]["members"][0]["per_gpu_mib"] == {"0:1": 35_990}
    assert by_pid[llama]["per_gpu_mib"] == {"0:0": 5_120} and by_pid[job]["per_gpu_mib"] == {"1": 2_048}
    assert doc["errors"] == []


def test_once_text_shows_each_slice_and_where_a_process_runs(serving_node, run_vramtop):
    scenario, engine, llama, _ = serving_node
    done = run_vramtop(scenario, "--once")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    gpu0 = next(i for i, line in enumerate(lines) if line.startswith("GPU 0 "))
    assert lines[gpu0 + 1] == "  MIG 0:0 3g.40gb (GI 1 CI 0): used 13 + reserved 0 + free 40,179 = 40,192 MiB  ● ok"
    assert lines[gpu0 + 2].startswith("  MIG 0:1 3g.40gb (GI 2 CI 0): used 36,013 ")
    assert lines[gpu0 + 3].startswith("GPU 1 ")
    assert any(line.startswith(f"  GPU 0:1 pid {engine} ") for line in lines)
    assert any(line.startswith(f"  GPU 0:0 pid {llama} ") for line in lines)
    assert any(line.endswith("35,990 MiB (GPU 0:1: 35,990), 1 process") for line in lines)


def test_once_csv_names_the_slice_in_the_gpu_column(serving_node, run_vramtop):
    scenario, engine, llama, job = serving_node
    done = run_vramtop(scenario, "--once", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {int(r["pid"]): r["gpu"] for r in rows} == {engine: "0:1", llama: "0:0", job: "1"}

