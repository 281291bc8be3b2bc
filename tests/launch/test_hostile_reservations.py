"""Reservation files someone else wrote: garbage, huge, a symbolic link, a wrong PID, a
directory others may write. Each is ignored with one notice naming it; nothing crashes."""

import os

from launch_support import launch

DRY = ["--dry-run", "--", "vllm", "serve", "google/medgemma-4b-it", "--gpu-memory-utilization", "0.55",
       "--max-model-len", "8192"]


def test_bad_records_are_ignored_with_one_notice_each(node, tmp_path):
    _, env, _ = node
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    (run / "101.json").write_bytes(b"\xff\xfe not json \x00" * 10)
    (run / "102.json").write_bytes(b"{" + b" " * (1 << 20))  # 1 MiB: never read whole
    secret = tmp_path / "secret"
    secret.write_text('{"pid": 103}')
    (run / "103.json").symlink_to(secret)
    (run / "104.json").write_text('{"pid": 999, "model": "x", "gpus": {"0": 1}, "since": 0, "until": 9e99}')
    (run / "105.json").write_text('{"pid": 105, "model": "[b]x", "gpus": {"0": -5}, "since": 0, "until": 9e99}')
    (run / "106.json").mkdir()
    p = launch(env, *DRY)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "would start" in out
    lines = err.splitlines()
    for name, why in (("101.json", "not a JSON reservation"), ("102.json", "more than a reservation's"),
                      ("103.json", "symbolic link"), ("104.json", "pid does not match"),
                      ("105.json", "'gpus' is not a map"), ("106.json", "not a regular file")):
        assert sum(name in line and why in line for line in lines) == 1, (name, err)
    assert "Traceback" not in err
    assert secret.read_text() == '{"pid": 103}'


def test_a_directory_others_can_write_is_refused(node, tmp_path):
    _, env, log = node
    run = tmp_path / "run"
    run.mkdir()
    os.chmod(run, 0o777)
    p = launch(env, "--", "vllm", "serve", "google/medgemma-4b-it", "--gpu-memory-utilization", "0.55")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 3
    assert err.count("\n") == 1 and "writable by other users" in err
    assert not log.exists()


def test_a_symlinked_directory_is_refused(node, tmp_path):
    _, env, _ = node
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(real)
    p = launch(env, "--", "vllm", "serve", "google/medgemma-4b-it")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 3 and "is not a directory" in err
