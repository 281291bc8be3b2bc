"""Recordings replay exactly what was recorded, survive being cut at any byte, and refuse in one
line what they cannot read."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import zlib

import pytest

from recording_support import changing_node
from vramtop import recording
from vramtop.recording import MAGIC, Recorder, Recording, RecordingError, snapshot_items

SNAPSHOTS = changing_node(420)


def record(path, snapshots, keyframe_every=50):
    """Write ``snapshots``; returns the file size after each one (what a reader could see then)."""
    sizes = []
    with Recorder(path, snapshots[0].hostname, 1.0, keyframe_every=keyframe_every) as rec:
        for s in snapshots:
            rec.write(s)
            sizes.append(path.stat().st_size)
    return sizes


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "node.vtrec"
    return path, record(path, SNAPSHOTS)


def test_every_snapshot_replays_equal_to_what_was_recorded(recorded):
    path, _ = recorded
    rec = Recording(path)
    assert rec.problem is None
    assert rec.hostname == "demo-a10-node" and rec.header.interval == 1.0
    assert list(rec.timestamps) == [s.timestamp for s in SNAPSHOTS]
    replayed = list(rec)
    assert replayed == SNAPSHOTS
    # the things that change are in there: a lost GPU, hidden processes, errors, Ray coming and going
    assert any(g.lost for s in replayed for g in s.gpus)
    assert any(p.host is None for s in replayed for p in s.gpu_processes)
    assert any(s.ray is None for s in replayed) and any(s.ray is not None for s in replayed)
    assert replayed[0].ray.deployments[0].autoscaling.max_replicas == 16
    assert replayed[0].telemetry.instances  # serving telemetry per instance


def test_random_access_in_any_order_gives_the_same_snapshots(recorded):
    path, _ = recorded
    rec = Recording(path)
    order = list(range(len(SNAPSHOTS)))
    random.Random(3).shuffle(order)
    for i in order[:60]:
        assert rec.snapshot(i) == SNAPSHOTS[i]


def test_a_recording_cut_at_any_byte_replays_up_to_its_last_complete_snapshot(recorded, tmp_path):
    path, sizes = recorded
    data = path.read_bytes()
    header_end = data.index(b"\n") + 1
    rng = random.Random(11)
    cuts = sorted(rng.sample(range(header_end, len(data)), 40)) + [sizes[0] - 1, sizes[0], sizes[-1] - 1]
    for cut in cuts:
        cut_file = tmp_path / f"cut-{cut}.vtrec"
        cut_file.write_bytes(data[:cut])
        complete = sum(1 for size in sizes if size <= cut)
        try:
            rec = Recording(cut_file)
        except RecordingError as exc:
            assert complete == 0, (cut, exc)
            assert "holds no complete snapshot" in str(exc)
            continue
        # a snapshot is readable once its bytes are in, maybe before its flush marker is
        assert complete <= len(rec) <= complete + 1, cut
        assert rec.problem is not None
        for i in {0, len(rec) // 2, len(rec) - 2, len(rec) - 1} - {-1}:
            assert rec.snapshot(i) == SNAPSHOTS[i], (cut, i)


def test_a_header_cut_short_or_a_file_that_is_not_a_recording_is_one_line(recorded, tmp_path):
    path, _ = recorded
    data = path.read_bytes()
    cases = {
        "cut": (data[:30], "header is incomplete"),
        "empty": (b"", "not a vramtop recording"),
        "other": (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a vramtop recording"),
        "damaged": (MAGIC + b"{not json\n", "header is damaged"),
    }
    for name, (content, words) in cases.items():
        f = tmp_path / name
        f.write_bytes(content)
        with pytest.raises(RecordingError) as exc:
            Recording(f)
        assert words in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(RecordingError, match="No such file"):
        Recording(tmp_path / "missing.vtrec")


def test_damaged_bytes_stop_the_replay_before_them(recorded, tmp_path):
    path, sizes = recorded
    data = bytearray(path.read_bytes())
    at = sizes[len(sizes) // 2]
    data[at + 5] ^= 0xFF
    f = tmp_path / "damaged.vtrec"
    f.write_bytes(bytes(data))
    rec = Recording(f)
    assert rec.problem is not None and "damaged" in rec.problem
    assert len(SNAPSHOTS) // 2 <= len(rec) < len(SNAPSHOTS)
    assert list(rec) == SNAPSHOTS[:len(rec)]


def _with_header(path, out, **changes):
    data = path.read_bytes()
    end = data.index(b"\n")
    header = json.loads(data[len(MAGIC):end])
    header.update(changes)
    out.write_bytes(MAGIC + json.dumps(header).encode() + data[end:])


@pytest.mark.parametrize("version,words", [(99, "is newer than this vramtop"), (0, "is older than this vramtop")])
def test_another_format_version_is_refused_in_one_line_saying_why(recorded, tmp_path, version, words):
    path, _ = recorded
    f = tmp_path / "v.vtrec"
    _with_header(path, f, format_version=version, vramtop_version="9.9.9")
    with pytest.raises(RecordingError) as exc:
        Recording(f)
    message = str(exc.value)
    assert words in message and f"format {version}" in message and "9.9.9" in message
    assert "\n" not in message


def _write_raw(path, header_fields, item_maps, timestamps):
    """A recording as another vramtop would write it: our header with ``header_fields``."""
    with open(path, "wb") as f:
        header = {"format": "vramtop-recording", "format_version": 1, "vramtop_version": "0.2.0",
                  "hostname": "n", "interval": 1.0, "fields": header_fields}
        f.write(MAGIC + json.dumps(header).encode() + b"\n")
        z = zlib.compressobj()
        for i, (items, ts) in enumerate(zip(item_maps, timestamps)):
            payload = json.dumps(items).encode()
            f.write(z.compress(recording._REC.pack(len(payload), zlib.crc32(payload), ts, 1) + payload))
        f.write(z.flush())


def test_a_newer_vramtops_extra_fields_are_ignored_and_missing_ones_default(tmp_path):
    snap = SNAPSHOTS[0]
    items = snapshot_items(snap)
    fields = recording._RECORD_CLASSES
    names = {n: [f.name for f in dataclasses.fields(c)] for n, c in fields.items()}
    # newer: every GPU row carries a field this vramtop lacks; older: no power_limit_w at all
    newer = {**names, "GpuInfo": names["GpuInfo"] + ["fan_pct"]}
    extra = {k: (v + [55] if k[0] == "g" else v) for k, v in items.items()}
    extra["r.queue_depth"] = 3  # a RayState field this vramtop lacks
    _write_raw(tmp_path / "newer.vtrec", newer, [extra], [snap.timestamp])
    assert Recording(tmp_path / "newer.vtrec").snapshot(0) == snap

    cut = names["GpuInfo"].index("power_limit_w")
    older = {**names, "GpuInfo": [n for n in names["GpuInfo"] if n != "power_limit_w"]}
    fewer = {k: (v[:cut] + v[cut + 1:] if k[0] == "g" else v) for k, v in items.items()}
    _write_raw(tmp_path / "older.vtrec", older, [fewer], [snap.timestamp])
    replayed = Recording(tmp_path / "older.vtrec").snapshot(0)
    assert all(g.power_limit_w is None for g in replayed.gpus)
    assert replayed == dataclasses.replace(snap, gpus=tuple(dataclasses.replace(g, power_limit_w=None) for g in snap.gpus))


def test_ray_state_of_a_type_this_vramtop_lacks_is_left_out_with_one_line(tmp_path):
    snap = SNAPSHOTS[0]
    items = snapshot_items(snap)
    items["r"] = "vramtop.ray.model:RayStateV9"
    fields = {n: [f.name for f in dataclasses.fields(c)]
              for n, c in recording._RECORD_CLASSES.items()}
    _write_raw(tmp_path / "ray.vtrec", fields, [items], [snap.timestamp])
    replayed = Recording(tmp_path / "ray.vtrec").snapshot(0)
    assert replayed.ray is None
    assert replayed.telemetry == snap.telemetry and replayed.gpus == snap.gpus
    assert replayed.errors[:-1] == snap.errors and replayed.errors[-1].source == "replay"
    assert "RayStateV9" in replayed.errors[-1].message


def test_a_file_cannot_name_a_type_outside_vramtop():
    with pytest.raises(RecordingError, match="unknown record type"):
        recording.decode_value({"@": "os:system"})


def test_a_recording_being_written_is_readable_up_to_its_last_snapshot(tmp_path):
    path = tmp_path / "live.vtrec"
    rec = Recorder(path, "n", 1.0, keyframe_every=7)
    for i, s in enumerate(SNAPSHOTS[:20]):
        rec.write(s)
        reader = Recording(path)
        assert len(reader) == i + 1 and reader.snapshot(i) == s
        assert "not closed" in reader.problem
    rec.close()
    assert Recording(path).problem is None


def test_deltas_keep_a_steady_node_small(tmp_path):
    buf = io.BytesIO()
    with Recorder(buf, "n", 1.0) as rec:
        for s in SNAPSHOTS[:300]:
            rec.write(s)
    keyframe = len(zlib.compress(json.dumps(snapshot_items(SNAPSHOTS[0])).encode()))
    assert len(buf.getvalue()) / 300 < keyframe / 4


def _record_types_within(cls, seen):
    """Every dataclass that a field of ``cls`` can hold, at any depth, by its declared types."""
    import typing

    from vramtop.recording import _hints

    for hint in _hints(cls).values():
        stack = [hint]
        while stack:
            t = stack.pop()
            stack.extend(typing.get_args(t))
            if isinstance(t, type) and dataclasses.is_dataclass(t) and t not in seen:
                seen.add(t)
                _record_types_within(t, seen)
    return seen


def test_every_record_type_a_snapshot_can_hold_has_a_tag():
    from vramtop.ray.model import RayState
    from vramtop.record_types import tag_of
    from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess
    from vramtop.telemetry.model import Telemetry

    rows = {GpuInfo, GpuProcess, HostProcess}
    reachable = set().union(*(_record_types_within(c, set()) for c in (*rows, RayState, Telemetry)))
    reachable |= {RayState, Telemetry}
    assert len(reachable - rows) > 20
    assert sorted(c.__name__ for c in reachable - rows if tag_of(c) is None) == []


def test_a_gpu_in_mig_mode_replays_with_its_slices(tmp_path):
    from vramtop.snapshot import MigSlice

    snap = SNAPSHOTS[0]
    slices = (MigSlice(1, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", "MIG-1", 1, 0, 40_192, 0, 12_000, 28_192),
              MigSlice(2, "NVIDIA A100-SXM4-80GB MIG 3g.40gb", "MIG-2", 2, 0, 40_192, 0, 0, 40_192, error="x"))
    mig = dataclasses.replace(snap, gpus=(dataclasses.replace(snap.gpus[0], mig=slices),) + snap.gpus[1:])
    later = dataclasses.replace(mig, timestamp=mig.timestamp + 1, gpus=(
        dataclasses.replace(mig.gpus[0], mig=(dataclasses.replace(slices[0], used_mib=13_000),)),) + mig.gpus[1:])
    record(tmp_path / "mig.vtrec", [mig, later])
    assert list(Recording(tmp_path / "mig.vtrec")) == [mig, later]
