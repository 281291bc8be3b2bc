"""``vramtop launch`` with real processes on the stand-in driver: admission, waiting, refusal,
signals and exit status, stale reservations."""

import json
import os
import signal
import time
from pathlib import Path

from launch_support import events, launch

SERVE = ["--", "vllm", "serve", "google/medgemma-4b-it", "--gpu-memory-utilization", "0.55",
         "--max-model-len", "8192", "--port", "8000"]  # --port: a flag vramtop does not model


def _reservations(env) -> list[Path]:
    return sorted(Path(env["VRAMTOP_RUNTIME_DIR"]).glob("*.json"))


def test_two_launches_at_once_take_turns(node):
    """Each needs 55 % of the GPU: one fits, two do not. The second waits for the first's memory
    to be taken and given back, then starts; neither engine ever ran beside the other."""
    _, env, log = node
    env = dict(env, STANDIN_HOLD="2")
    a = launch(env, "--wait", "30", *SERVE)
    b = launch(env, "--wait", "30", *SERVE)
    outs = [p.communicate(timeout=60) for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outs
    ev = events(log)
    starts = [e for e in ev if e["event"] == "start"]
    exits = {e["pid"]: e["t"] for e in ev if e["event"] == "exit"}
    assert len(starts) == 2 and len(exits) == 2
    first, second = sorted(starts, key=lambda e: e["t"])
    assert second["t"] >= exits[first["pid"]], "the second engine started while the first held its memory"
    assert all(s["visible"] == "0" for s in starts)  # CUDA_VISIBLE_DEVICES set by vramtop
    assert "--port" in first["argv"] and "8000" in first["argv"]  # unknown flags untouched
    waited = [err for _, err in outs if "waiting for GPU 0" in err]
    assert len(waited) == 1 and "MiB short" in waited[0]
    assert _reservations(env) == []


def test_a_launch_that_never_fits_fails_after_wait(node):
    _, env, log = node
    t0 = time.monotonic()
    p = launch(env, "--wait", "2", "--", "vllm", "serve", "google/medgemma-27b-it", "--max-model-len", "8192")
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2
    assert time.monotonic() - t0 >= 2
    assert "refused after waiting 2 s" in err and "weights need" in err
    assert "Traceback" not in err and events(log) == []


def test_red_refuses_without_force_and_dry_run_starts_nothing(node):
    _, env, log = node
    cmd = ["--", "vllm", "serve", "google/medgemma-4b-it", "--gpu-memory-utilization", "0.2"]
    p = launch(env, *cmd)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 2 and "RED" in err
    p = launch(env, "--dry-run", *SERVE)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and "would start: CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0 vllm serve" in out
    assert events(log) == [] and _reservations(env) == []


def _wait_for(predicate, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_signals_and_exit_status_pass_through(node):
    _, env, log = node
    env = dict(env, STANDIN_HOLD="60", STANDIN_SIGNAL_EXIT="43")
    p = launch(env, *SERVE)
    assert _wait_for(lambda: any(e["event"] == "loaded" for e in events(log)))
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    assert p.returncode == 43
    assert [e["signum"] for e in events(log) if e["event"] == "signal"] == [signal.SIGTERM]
    env = dict(env, STANDIN_HOLD="0.2", STANDIN_EXIT="7")
    p = launch(env, *SERVE)
    p.communicate(timeout=30)
    assert p.returncode == 7


def test_reservation_of_a_killed_launcher_expires(node):
    """kill -9 of the launcher leaves its record; the next launch finds its PID dead, ignores it
    and removes it."""
    _, env, log = node
    env = dict(env, STANDIN_HOLD="60", STANDIN_STEP="5")  # loads slowly: the record stays
    p = launch(env, *SERVE)
    try:
        assert _wait_for(lambda: any(e["event"] == "start" for e in events(log)))
        [record] = _reservations(env)
        assert json.loads(record.read_text())["pid"] == p.pid
        p.kill()
        p.wait()
        assert _reservations(env) == [record]
        engine = next(e["pid"] for e in events(log) if e["event"] == "start")
        os.kill(engine, signal.SIGTERM)  # the engine outlives its launcher; stop it here
        assert _wait_for(lambda: any(e["event"] == "signal" for e in events(log)))
        q = launch(env, *SERVE[:1], "vllm", "serve", "google/medgemma-4b-it", "--gpu-memory-utilization", "0.1")
        q.communicate(timeout=30)  # RED, refused: but it cleaned up first
        assert _reservations(env) == []
    finally:
        p.kill()


def test_ctrl_c_while_waiting_starts_nothing(node):
    _, env, log = node
    p = launch(env, "--wait", "60", "--", "vllm", "serve", "google/medgemma-27b-it", "--max-model-len", "8192")
    time.sleep(3)  # judged at least once: it waits
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "stopped while waiting" in err and "Traceback" not in err
    assert events(log) == [] and _reservations(env) == []
