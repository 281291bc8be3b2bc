"""A recording of a node with MIG slices replays them: ``vramtop record`` and ``--replay`` in
children on the stand-in driver."""

import json


def test_a_recording_replays_the_slices(serving_node, run_vramtop, tmp_path):
    scenario, engine, _, _ = serving_node
    rec = tmp_path / "mig.vtrec"
    done = run_vramtop(scenario, "record", "-o", str(rec), "--interval", "0.2", "--duration", "1")
    assert done.returncode == 0, done.stderr
    replay = run_vramtop(scenario, "--replay", str(rec), "--once", "--json")
    assert replay.returncode == 0, replay.stderr
    doc = json.loads(replay.stdout)
    assert [(m["index"], m["profile"], m["used_mib"]) for m in doc["gpus"][0]["mig"]] == [
        (0, "3g.40gb", 13), (1, "3g.40gb", 36_013)]
    assert {p["pid"]: p["mig_slice"] for p in doc["processes"]}[engine] == 1
