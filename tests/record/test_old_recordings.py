"""Recordings written by an earlier vramtop replay today, record for record.

``recordings/v0.1.0-demo.vtrec`` was written by vramtop 0.1.0 (format 1): 40 snapshots of the
changing demo node, in segments of 16, with Ray state (deployments, replicas, placement groups,
actors, Ray's view of the GPUs) and serving telemetry (vLLM metrics with the KV check, Ray Serve
demand, Ollama, containers, mapped files, trends). Its Ray and telemetry records are tagged with
the Python path of their class (``vramtop.ray.model:RayState``), as 0.1.0 wrote them. Beside it,
``v0.1.0-demo.summary.json`` holds ``old_recordings.summary`` of each snapshot as it was before
it was written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from old_recordings import summary
from vramtop.recording import Recording

HERE = Path(__file__).parent / "recordings"
V010 = HERE / "v0.1.0-demo.vtrec"


def test_a_recording_made_by_vramtop_0_1_0_replays_every_record():
    expected = json.loads((HERE / "v0.1.0-demo.summary.json").read_text())
    rec = Recording(V010)
    assert rec.header.vramtop_version == "0.1.0" and rec.problem is None
    replayed = [summary(s) for s in rec]
    assert len(replayed) == len(expected) == 40
    for i, (got, want) in enumerate(zip(replayed, expected)):
        assert got == want, f"snapshot {i} differs"
    # Every record came back as its type, not as a note that a section was left out.
    assert not [e for s in rec for e in s.errors if e.source == "replay"]


def test_the_0_1_0_recording_names_classes_by_python_path():
    """What makes the test above a test of the old tags: the file really holds them."""
    import zlib

    data = V010.read_bytes()
    body = data[data.index(b"\n") + 1:]
    text = b""
    while body:
        d = zlib.decompressobj()
        text += d.decompress(body)
        body = d.unused_data
    for tag in (b"vramtop.ray.model:RayState", b"vramtop.telemetry.model:Telemetry",
                b"vramtop.telemetry.kv_check:KvCheck", b"vramtop.ray.model:PlacementGroup",
                b"vramtop.telemetry.model:OllamaStatus"):
        assert tag in text


def test_vramtop_once_reads_the_0_1_0_recording():
    env = dict(os.environ, COLUMNS="120")
    result = subprocess.run([sys.executable, "-m", "vramtop", "--replay", str(V010), "--once", "--json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["source"] == "replay" and doc["ray"]["status"] == "ok"
    assert [(d["app"], d["name"]) for d in doc["ray"]["deployments"]] == [("medgemma", "VLLMDeployment")]
    assert [i["telemetry"]["kv_check"]["actual_blocks"] for i in doc["instances"] if i.get("telemetry")]
