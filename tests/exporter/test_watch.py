"""``vramtop watch``: a rule fires once per episode, running the user's command and posting the
webhook on loopback, when a real process on the stand-in driver frees its memory."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import fakenvml
from exporter_support import vramtop, wait_for, write_config
from vramtop.exporter import notify, rules

HOLDS_AFTER = 2.0  # seconds a rule held before it fires below


class Receiver:
    """A real HTTP server on loopback that records each POST (and answers ``status``)."""

    def __init__(self, status: int = 204, location: str | None = None) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                receiver.posts.append({"headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def occupy(scenario: fakenvml.Scenario, pid: int, used_mib: int) -> None:
    """GPU 0 holds ``used_mib`` for ``pid`` (0: the process freed its memory)."""
    scenario.gpus.clear()
    scenario.processes.clear()
    scenario.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=used_mib)
    if used_mib:
        scenario.add_process(0, pid, used_mib)
    scenario.write()


def test_rule_fires_once_per_episode_running_the_command_and_posting_the_webhook(tmp_path, receiver):
    fired = tmp_path / "fired.txt"
    with fakenvml.spawn_processes("python3 train.py --epochs 90") as (trainer,):
        scenario = fakenvml.Scenario(tmp_path / "scenario.txt")
        occupy(scenario, trainer, 22_000)
        watch = vramtop(scenario, "watch", "--when", "gpu0.free_mib >= 4096 for 1s", "--interval", "0.2",
                        "--run", f"sh -c 'echo \"$VRAMTOP_DETAIL\" >> {fired}'",
                        "--webhook", f"{receiver.url}/hooks/vram?team=llm",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(HOLDS_AFTER)
            assert receiver.posts == [] and not fired.exists()  # 515 MiB free: it does not hold
            freed_at = time.time()
            occupy(scenario, trainer, 0)  # the trainer frees its memory
            wait_for(lambda: receiver.posts and fired.exists(), 20, "the rule fires")
            time.sleep(HOLDS_AFTER)  # still holding: the same episode, no second alert
            assert len(receiver.posts) == 1
            assert fired.read_text() == "GPU 0 free_mib 22515\n"
            (post,) = receiver.posts
            assert receiver.paths == ["/hooks/vram?team=llm"]
            assert post["headers"]["Content-Type"] == "application/json"
            event = post["json"]
            assert event["rule"] == "gpu0.free_mib >= 4096 for 1s" and event["detail"] == "GPU 0 free_mib 22515"
            assert freed_at - 1 <= event["since"] <= event["fired_at"] - 1 + 0.5
            # it stops holding, then holds again: a new episode, a second alert
            occupy(scenario, trainer, 22_000)
            time.sleep(1.0)
            occupy(scenario, trainer, 0)
            wait_for(lambda: len(receiver.posts) == 2, 20, "the second episode fires")
            assert fired.read_text().count("\n") == 2
        finally:
            watch.terminate()
            out, err = watch.communicate(timeout=20)
    assert watch.returncode == 0, err
    assert out.count("gpu0.free_mib >= 4096 for 1s: GPU 0 free_mib 22515") == 2


def test_candidate_rule_fires_when_the_candidate_turns_green(tmp_path, receiver):
    with fakenvml.spawn_processes("python3 train.py") as (trainer,):
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        scenario.add_process(0, trainer, 20_000)
        scenario.write()
        watch = vramtop(scenario, "--config", str(write_config(tmp_path)), "watch", "--when",
                        "candidate:medgemma-4b turns green", "--interval", "0.2", "--webhook", receiver.url,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(HOLDS_AFTER)
            assert receiver.posts == []  # red on the seed node
            empty = fakenvml.Scenario(scenario.path)
            for _ in range(4):
                empty.add_gpu("NVIDIA A10", total_mib=23_028, reserved_mib=513, used_mib=0)
            empty.write()
            wait_for(lambda: receiver.posts, 30, "the candidate rule fires")
        finally:
            watch.terminate()
            watch.communicate(timeout=20)
    assert receiver.posts[0]["json"]["detail"] == "candidate medgemma-4b is green"


@pytest.mark.parametrize("rule, says", [
    ("gpu.fre_mib < 1024", "gpu has no figure 'fre_mib'"),
    ("gpu.free_mib < lots", "compared with a number"),
    ("gpu.free_mib < 1024 for 2 minutes", "'for' wants a duration"),
    ("node3.free_mib < 1", "'node' takes no index"),
    ("candidate:nope turns green", "no candidate named 'nope' (known: medgemma-4b, medgemma-27b)"),
    ("candidate:medgemma-4b turns blue", "green, yellow or red"),
    ("__import__('os').system('id')", "expected FIGURE OP NUMBER"),
])
def test_a_bad_rule_is_one_line_and_status_3(tmp_path, rule, says):
    result = subprocess.run([sys.executable, "-m", "vramtop", "--config", str(write_config(tmp_path)), "watch",
                             "--when", rule, "--demo"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr, result.stderr


@pytest.mark.parametrize("args, says", [
    (["--webhook", "file:///etc/passwd"], "http:// or https:// URL"),
    (["--run", "sh -c 'unclosed"], "No closing quotation"),
])
def test_bad_actions_are_one_line_and_status_3(args, says):
    result = subprocess.run([sys.executable, "-m", "vramtop", "watch", "--when", "gpu.free_mib < 1", "--demo", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1 and says in result.stderr


def test_episode_fires_after_holding_for_its_duration_and_once():
    episode = rules.Episode(for_s=120)
    seen = [episode.step(t, holds) for t, holds in
            [(0, True), (60, True), (119, True), (120, True), (300, True), (301, False), (302, True), (422, True)]]
    assert seen == [False, False, False, True, False, False, False, True]


def test_webhook_does_not_follow_a_redirect():
    elsewhere = Receiver()
    redirecting = Receiver(status=307, location=f"{elsewhere.url}/stolen")
    try:
        with pytest.raises(notify.NotifyError, match="HTTP 307, a redirect \\(not followed\\)"):
            notify.post(notify.parse_webhook(f"http://user:secret@{redirecting.url[7:]}/hook"), {"rule": "r"})
        assert redirecting.posts[0]["headers"]["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
        assert elsewhere.posts == []
    finally:
        elsewhere.close()
        redirecting.close()


def test_webhook_that_never_answers_fails_within_its_deadline():
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        with pytest.raises(notify.NotifyError, match="no answer within 0.5 s"):
            notify.post(notify.parse_webhook(f"http://127.0.0.1:{silent.getsockname()[1]}/"), {}, deadline_s=0.5)
        assert time.monotonic() - start < 2
