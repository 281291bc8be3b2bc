"""Files other people made: crafted recordings, YAML bombs, special files, two recorders on one
file. Each case runs vramtop as a child under a memory bound (``files_support.MEMORY``) and a time
bound, and checks the exit status and the one line it prints. Property tests feed the recording
decoder and the config, theme and what-if state loaders arbitrary bytes: each gives a value or
its one documented error, never another exception.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from files_support import DELTA, demo_items, header, json_record, one_line, record, run, write
from vramtop import config, recording, themes
from vramtop.widgets.whatif import persist
from vramtop.config import ConfigError
from vramtop.recording import Recording, RecordingError
from vramtop.sources.replay import ReplaySource

BAD_INPUT = 2  # a recording or a config file vramtop cannot use: see README, "Record, replay and report"
FAST = 10.0  # seconds: every refusal below comes long before this


def replay_once(path) -> tuple[subprocess.CompletedProcess, float]:
    return run("--replay", str(path), "--once", "--json")


# -- recordings that name code -------------------------------------------------------------------

@pytest.mark.parametrize("tag", ["vramtop.__main__:main", "vramtop.cli:main", "os:system", "subprocess:Popen",
                                 "vramtop.config:Config", "builtins:eval"])
def test_a_record_type_is_a_name_in_the_registry_never_an_import_path(tmp_path, tag):
    items = demo_items()
    items["r"] = tag  # the Ray section's type
    items["t.instances"] = {"x": {"@": tag, "argv": ["--help"]}}  # and one nested record
    path = write(tmp_path / "code.vtrec", json_record(items))
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    doc = json.loads(result.stdout)  # one document: the command line did not run a second time
    assert doc["source"] == "replay" and "ray" not in doc
    notes = [e["message"] for e in doc["errors"] if e["source"] == "replay"]
    assert notes == [f"ray state not replayed: unknown record type '{tag}'",
                     f"telemetry state not replayed: Telemetry field 'instances': unknown record type '{tag}'"]
    # Decoding it imports nothing the file names.
    probe, _ = run(str(path), code="import sys; from vramtop.recording import Recording; Recording(sys.argv[1]); "
                                   "print(sorted(m for m in ('vramtop.__main__', 'subprocess', 'vramtop.cli') "
                                   "if m in sys.modules))")
    assert probe.returncode == 0 and probe.stdout.strip() == "[]", probe.stderr


def test_importing_vramtop_main_runs_nothing():
    result, _ = run("--demo", "--once", code="import vramtop.__main__")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


# -- recordings that expand ----------------------------------------------------------------------

def test_a_stream_of_gigabytes_of_zeros_is_refused_in_one_line(tmp_path):
    path = write(tmp_path / "zeros.vtrec", b"", then=bytes(1 << 20), times=4096)  # 4 GiB of zeros
    assert path.stat().st_size < 8 << 20
    result, took = replay_once(path)
    assert result.returncode == BAD_INPUT and took < FAST
    assert "holds no complete snapshot (damaged data" in one_line(result)


def test_a_snapshot_followed_by_gigabytes_of_zeros_replays_the_snapshot(tmp_path):
    path = write(tmp_path / "tail.vtrec", json_record(demo_items()), then=bytes(1 << 20), times=4096)
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    assert json.loads(result.stdout)["hostname"] == "demo-a10-node"
    rec = Recording(path)
    assert len(rec) == 1 and "damaged data" in rec.problem


def test_a_record_that_claims_gigabytes_is_not_waited_for(tmp_path):
    first = json_record(demo_items())
    path = write(tmp_path / "claims.vtrec", first + record(b"{}", size=3 << 30, kind=DELTA),
                 then=bytes(1 << 20), times=4096)
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    assert len(Recording(path)) == 1 and "damaged data" in Recording(path).problem


def test_millions_of_tiny_records_packed_tighter_than_a_recorder_writes_are_cut_off(tmp_path):
    tiny = json_record({}, kind=DELTA)
    path = write(tmp_path / "tiny.vtrec", json_record(demo_items()), then=tiny * 50_000, times=60)
    ratio = 3_000_000 * len(tiny) / path.stat().st_size
    assert ratio > 300  # what no recorder writes: each of its records ends a deflate block
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    rec = Recording(path)
    assert "more records than its bytes can hold" in rec.problem and len(rec) < 3_000_000


def test_records_of_megabytes_of_blanks_are_cut_off_by_their_expansion(tmp_path):
    blank = record(b" " * (8 << 20) + b"{}", kind=DELTA)  # a valid record: an empty delta, padded
    path = write(tmp_path / "blank.vtrec", json_record(demo_items()), then=blank, times=500)  # 4 GiB
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    rec = Recording(path)
    assert "expands more than 64-fold" in rec.problem and len(rec) < 10


# -- recordings whose figures are not figures -----------------------------------------------------

def _with_gpu_field(name: str, value) -> dict:
    items = demo_items()
    pos = [f.name for f in recording.dataclasses.fields(recording.GpuInfo)].index(name)
    items["g0"][pos] = value
    return items


@pytest.mark.parametrize("field, value, words", [
    ("used_mib", "20730", "GpuInfo field 'used_mib': must be a whole number, got '20730'"),
    ("used_mib", float("nan"), "GpuInfo field 'used_mib': must be a whole number, got nan"),
    ("used_mib", -5, "GpuInfo field 'used_mib': must not be below 0, got -5"),
    ("total_mib", 10 ** 30, "GpuInfo field 'total_mib': must be a whole number, got 1000000000000000000000000000000"),
    ("power_w", float("inf"), "GpuInfo field 'power_w': must be a finite number, got inf"),
    ("name", ["x"] * 1000, "GpuInfo field 'name': must be text, got ['x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x"),
    ("lost", "yes", "GpuInfo field 'lost': must be true or false, got 'yes'"),
])
def test_a_first_snapshot_with_a_figure_that_is_not_a_figure_is_one_line(tmp_path, field, value, words):
    path = write(tmp_path / "figures.vtrec", json_record(_with_gpu_field(field, value)))
    result, took = replay_once(path)
    assert result.returncode == BAD_INPUT and took < FAST
    line = one_line(result)
    assert line.startswith(f"vramtop: {path}: snapshot 1 is damaged: ") and words in line


@pytest.mark.parametrize("change", [
    {"m": "not a list"}, {"e": [[1, 2]]}, {"a": [999999]}, {"g5": []}, {"p0": [1, 2, "h-nowhere"]},
    {"h4100": "not a row"}, {"e": [["nvml", "x"]] * 3, "a": "x"},
])
def test_a_first_snapshot_not_shaped_as_vramtop_writes_it_is_one_line(tmp_path, change):
    path = write(tmp_path / "shape.vtrec", json_record({**demo_items(), **change}))
    result, took = replay_once(path)
    assert result.returncode == BAD_INPUT and took < FAST
    assert "snapshot 1 is damaged: " in one_line(result)


def test_nan_in_a_telemetry_figure_leaves_telemetry_out_with_a_note(tmp_path):
    items = demo_items()
    (key,) = items["t.instances"]
    items["t.instances"][key]["vllm"]["kv_cache_usage"] = float("nan")
    path = write(tmp_path / "kv.vtrec", json_record(items))
    result, took = replay_once(path)
    assert result.returncode == 0 and took < FAST, result.stderr
    doc = json.loads(result.stdout)
    assert "kv_cache_usage': must be a finite number, got nan" in doc["errors"][-1]["message"]
    assert all(i.get("telemetry") is None for i in doc["instances"]) and doc["gpus"][0]["used_mib"] == 22_483


def test_a_later_damaged_snapshot_is_one_line_when_the_replay_reaches_it(tmp_path):
    good = demo_items()
    bad = {"c": {"g1": {"5": "lots"}}}  # a delta that patches GPU 1's used_mib with text
    path = write(tmp_path / "later.vtrec", json_record(good) + json_record(bad, 1_700_000_001.0, DELTA))
    replay = ReplaySource(path)  # the first snapshot is fine: the replay opens
    assert replay.count == 2 and replay.sample().gpus[1].used_mib == 21_259
    replay.step(1)
    with pytest.raises(RecordingError) as exc:
        replay.sample()  # the live view shows this line in place (app.py: any source failure)
    assert "snapshot 2 is damaged: GpuInfo field 'used_mib': must be a whole number, got 'lots'" in str(exc.value)
    assert "\n" not in str(exc.value)


async def test_the_live_replay_shows_a_damaged_snapshot_in_one_line_and_goes_on(tmp_path):
    from vramtop.app import VramtopApp
    from vramtop.config import Config

    bad = {"c": {"g1": {"5": "lots"}}}
    path = write(tmp_path / "live.vtrec", json_record(demo_items()) + json_record(bad, 1_700_000_001.0, DELTA)
                 + json_record({}, 1_700_000_002.0, DELTA))
    app = VramtopApp(ReplaySource(path), Config(interval=3600.0))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.snapshot is not None:
                break
            await pilot.pause(0.05)
        await pilot.press("p", "greater_than_sign")
        for _ in range(100):
            if app.sample_error is not None:
                break
            await pilot.pause(0.05)
        assert "snapshot 2 is damaged: GpuInfo field 'used_mib'" in app.sample_error
        assert app.is_running and app.snapshot.gpus[1].used_mib == 21_259  # the last good picture stays


async def test_a_recorded_hostname_with_escape_sequences_and_markup_is_plain_text_in_the_header(tmp_path):
    """The header draws the recording's hostname as the text it is: markup stays markup-looking
    text, a terminal's escape sequences are drawn as U+FFFD and never sent."""
    from textual.geometry import Region

    from vramtop.app import VramtopApp
    from vramtop.config import Config
    from vramtop.widgets.node_header import NodeHeader

    items = demo_items()
    items["m"] = ["evil\x1b]0;owned\x07\x1b[2J[bold]x[/bold]", *items["m"][1:]]
    path = write(tmp_path / "host.vtrec", json_record(items))
    app = VramtopApp(ReplaySource(path), Config(interval=3600.0))
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(100):
            if app.snapshot is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        header = app.query_one(NodeHeader)
        drawn = "".join(strip.text for strip in header.render_lines(Region(0, 0, *header.region.size)))
        assert not {"\x1b", "\x07"} & set(drawn)
        assert "evil\ufffd]0;owned\ufffd\ufffd[2J[bold]x[/bold]" in drawn


@pytest.mark.parametrize("delta", [
    [1, 2], {"c": {"g0": {"999": 1}}}, {"c": {"m": {"0": 5}}}, {"x": "g0"}, {"c": {"nope": {"0": 1}}},
    {"c": {"g0": {"-1": 1}}}, {"s": []},
])
def test_a_delta_that_does_not_fit_its_snapshot_is_one_error(tmp_path, delta):
    path = write(tmp_path / "delta.vtrec", json_record(demo_items()) + json_record(delta, 1_700_000_001.0, DELTA))
    rec = Recording(path)
    with pytest.raises(RecordingError, match="snapshot 2 is damaged"):
        rec.snapshot(1)


def test_a_header_from_elsewhere_is_one_line(tmp_path):
    for head in (recording.MAGIC + b"[" * 60_000 + b"\n", recording.MAGIC + b'{"format_version": "1"}\n',
                 header(fields={"GpuInfo": [["x"]], "HostProcess": [], "GpuProcess": []}),
                 header(format_version=99, vramtop_version="\x1b[31m" + "9" * 5000)):
        path = write(tmp_path / "head.vtrec", json_record(demo_items()), head=head)
        result, took = replay_once(path)
        assert result.returncode == BAD_INPUT and took < FAST
        assert "\x1b" not in one_line(result)


# -- files that are not files ---------------------------------------------------------------------

def _special(tmp_path, kind: str):
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return tmp_path / "fifo"
    if kind == "folder":
        (tmp_path / "folder").mkdir()
        return tmp_path / "folder"
    return "/dev/zero"


@pytest.mark.parametrize("kind, words", [("fifo", "not a regular file"), ("folder", "a folder, not a file"),
                                         ("zero", "not a regular file")])
def test_a_special_file_given_as_a_recording_is_refused_at_once(tmp_path, kind, words):
    path = _special(tmp_path, kind)
    result, took = replay_once(path)
    assert result.returncode == BAD_INPUT and took < FAST
    assert one_line(result) == f"vramtop: {path}: {words}"
    result, took = run("report", "--replay", str(path))
    assert result.returncode != 0 and took < FAST and words in one_line(result)


@pytest.mark.parametrize("kind, words", [("fifo", "not a regular file"), ("folder", "a folder, not a file"),
                                         ("zero", "not a regular file")])
def test_a_special_file_given_as_the_config_is_refused_at_once(tmp_path, kind, words):
    path = _special(tmp_path, kind)
    result, took = run("--config", str(path), "--demo", "--once")
    assert result.returncode == BAD_INPUT and took < FAST
    assert one_line(result) == f"vramtop: {path}: {words}"


# -- YAML bombs and deep nesting ------------------------------------------------------------------

BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 12))
BOMB = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + BOMB + "interval: *l11\n"
DEEP = "interval: " + "[" * 50_000 + "]" * 50_000 + "\n"
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"


@pytest.mark.parametrize("text, words", [
    (BOMB, "line 1: anchors and aliases (& and *) are not allowed"),
    (DEEP, "line 1: nested more than 32 levels deep"),
    (DEEP_BLOCK, "nested more than 32 levels deep"),
    ("interval: 1\n" + "#" * (2 << 20), "larger than 1,024 KiB"),
    ("interval: !!python/object/apply:os.system ['echo pwned']\n", "could not determine a constructor"),
], ids=["aliases", "deep-flow", "deep-block", "big", "python-tag"])
def test_a_config_bomb_is_one_line_that_quotes_nothing_expanded(tmp_path, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result, took = run("--config", str(path), "--demo", "--once")
    assert result.returncode == BAD_INPUT and took < FAST
    line = one_line(result)
    assert line.startswith(f"vramtop: {path}: ") and words in line and "lol" not in line and "pwned" not in result.stdout


@pytest.mark.parametrize("text", ["interval: .nan\n", "interval: 0\n", "interval: -1\n", "interval: .inf\n",
                                  "interval: fast\n", "ray_interval: 1e999\n"])
def test_a_config_interval_that_would_spin_or_never_tick_is_one_line(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    result, took = run("--config", str(path), "--demo", "--once")
    assert result.returncode == BAD_INPUT and took < FAST
    assert "must be a number from" in one_line(result)


def test_theme_bombs_are_one_line_each_and_the_good_theme_still_loads(tmp_path):
    (tmp_path / "bomb.yaml").write_text(BOMB.replace("interval", "name"))
    (tmp_path / "deep.yaml").write_text(DEEP.replace("interval", "primary"))
    (tmp_path / "keys.yaml").write_text("1: x\nname: k\nprimary: '#112233'\n")  # keys of two types
    (tmp_path / "big.yaml").write_text("name: big\n" + "#" * (2 << 20))
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "ok.yaml").write_text("name: ok\nprimary: '#112233'\n")
    code = ("import sys; from pathlib import Path; from vramtop import themes; "
            "found, errors = themes.load_dir(Path(sys.argv[1])); "
            "print([t.name for t in found]); print('\\n'.join(map(str, errors)))")
    result, took = run(str(tmp_path), code=code)
    assert result.returncode == 0 and took < FAST, result.stderr
    found, *errors = result.stdout.splitlines()
    assert found == "['ok']"
    assert sorted(errors) == [
        "theme big.yaml: larger than 1,024 KiB, more than any vramtop file needs",
        "theme bomb.yaml: line 1: anchors and aliases (& and *) are not allowed",
        "theme deep.yaml: line 1: nested more than 32 levels deep",
        "theme dir.yaml: a folder, not a file",
        "theme fifo.yaml: not a regular file",
        "theme keys.yaml: unknown field 1",
    ]


@pytest.mark.parametrize("text, words", [
    (BOMB.replace("interval", "recent"), "anchors and aliases"),
    ("version: 1\nrecent: " + "[" * 10_000 + "]" * 10_000 + "\n", "nested more than 32"),
    ("version: 1\ncurrent: {model: " + "m" * 100_000 + "}\n", "'model' is longer than 256 characters"),
    ("version: 1\npins: [{" + "x" * 300 + ": 1}]\n", "unknown candidate field 'xxxxxxxxxxxxxxxxxxxx..."),
])
def test_a_hostile_what_if_state_starts_fresh_with_one_line(tmp_path, text, words):
    path = tmp_path / "whatif.yaml"
    path.write_text(text)
    code = ("import sys; from pathlib import Path; from vramtop.widgets.whatif import persist as w; "
            "memory, warning = w.load_memory(Path(sys.argv[1])); "
            "print(memory == w.WhatIfMemory()); print(warning)")
    result, took = run(str(path), code=code)
    assert result.returncode == 0 and took < FAST, result.stderr
    fresh, warning = result.stdout.splitlines()
    assert fresh == "True" and warning.startswith(f"{path}: ") and words in warning
    assert warning.endswith("; starting fresh") and len(warning) < len(str(path)) + 200


# -- two recorders on one file --------------------------------------------------------------------

def test_a_second_recorder_on_the_same_file_is_refused_and_the_first_keeps_every_snapshot(tmp_path):
    out = tmp_path / "node.vtrec"
    first = subprocess.Popen([sys.executable, "-m", "vramtop", "record", "--demo", "-o", str(out), "--interval", "0.2"],
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if len(Recording(out)) >= 3:
                    break
            except RecordingError:
                pass
            time.sleep(0.1)
        result, took = run("record", "--demo", "-o", str(out), "--duration", "1")
        assert result.returncode == 2 and took < FAST
        assert one_line(result) == f"vramtop record: cannot write {out}: another vramtop is recording to it"
        time.sleep(0.5)
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    written = int(err.strip().splitlines()[-1].split()[0])  # "N snapshots, X KiB in FILE"
    rec = Recording(out)
    assert written >= 5 and len(rec) == written and rec.problem is None


def test_a_recorder_is_refused_a_file_that_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    result, took = run("record", "--demo", "-o", str(tmp_path / "fifo"), "--duration", "1")
    assert result.returncode == 2 and took < FAST
    assert one_line(result) == f"vramtop record: cannot write {tmp_path / 'fifo'}: not a regular file"


# -- any bytes: a value or the documented error ---------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12)


def _replay_all(path) -> None:
    try:
        rec = Recording(path)
    except RecordingError as exc:
        assert "\n" not in str(exc)
        return
    for i in range(len(rec)):
        try:
            assert isinstance(rec.snapshot(i), recording.NodeSnapshot)
        except RecordingError as exc:
            assert "\n" not in str(exc)


@PROPERTY
@given(body=st.binary(max_size=2048))
def test_any_bytes_after_a_header_replay_or_say_why(tmp_path, body):
    path = tmp_path / "any.vtrec"
    path.write_bytes(header() + body)
    _replay_all(path)


@PROPERTY
@given(data=st.data())
def test_any_json_in_a_valid_stream_replays_or_says_why(tmp_path, data):
    """Records with valid CRCs whose content is a real snapshot with items replaced, or a delta
    of arbitrary JSON: what a byte-level fuzzer rarely reaches."""
    items = demo_items()
    for key in data.draw(st.lists(st.sampled_from(sorted(items)), max_size=3)):
        items[key] = data.draw(JSON)
    for key in data.draw(st.lists(st.sampled_from([k for k, v in items.items() if isinstance(v, list) and v]), max_size=2)):
        row = items[key]
        row[data.draw(st.integers(0, len(row) - 1))] = data.draw(JSON)
    deltas = data.draw(st.lists(JSON, max_size=3))
    raw = json_record(items) + b"".join(json_record(d, 1_700_000_001.0 + i, DELTA) for i, d in enumerate(deltas))
    _replay_all(write(tmp_path / "json.vtrec", raw))


@PROPERTY
@given(body=st.binary(max_size=2048) | st.text(alphabet="ab:-[]{}&*!|>'\"\n #.0123456789", max_size=400).map(str.encode)
       | st.dictionaries(st.sampled_from(sorted(config._KEYS)), JSON, max_size=4).map(lambda d: json.dumps(d).encode()))
def test_any_bytes_as_a_config_give_settings_or_one_line(tmp_path, body):
    path = tmp_path / "config.yaml"
    path.write_bytes(body)
    try:
        config.load(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@PROPERTY
@given(body=st.binary(max_size=2048) | st.text(alphabet="ab:-[]{}&*!|>'\"\n #.0123456789", max_size=400).map(str.encode)
       | st.dictionaries(st.sampled_from(["name", "primary", "dark", "variables", "background", "text_alpha"]), JSON)
       .map(lambda d: json.dumps(d).encode()))
def test_any_bytes_as_a_theme_give_a_theme_or_one_line(tmp_path, body):
    folder = tmp_path / "themes"
    folder.mkdir(exist_ok=True)
    (folder / "t.yaml").write_bytes(body)
    found, errors = themes.load_dir(folder)
    assert len(found) + len(errors) == 1 and all("\n" not in str(e) for e in errors)


@PROPERTY
@given(body=st.binary(max_size=2048) | st.text(alphabet="ab:-[]{}&*!|>'\"\n #.0123456789", max_size=400).map(str.encode)
       | st.fixed_dictionaries({"version": st.just(1)}, optional={"current": JSON, "recent": JSON, "pins": JSON})
       .map(lambda d: json.dumps(d).encode()))
def test_any_bytes_as_the_what_if_state_give_a_state_or_one_line(tmp_path, body):
    path = tmp_path / "whatif.yaml"
    path.write_bytes(body)
    memory, warning = persist.load_memory(path)
    assert isinstance(memory, persist.WhatIfMemory)
    assert warning is None or "\n" not in warning


def test_the_zlib_stream_helper_really_compresses():
    """What the expansion cases rely on: the crafted streams are small on disk."""
    assert len(zlib.compress(bytes(1 << 20), 9)) < 2 << 10
