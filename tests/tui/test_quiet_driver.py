"""The terminal driver on a real pseudo-terminal: idle, its input thread does not wake; keys,
a lone Escape and quitting work as with Textual's own driver."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tui_support import make_app
from vramtop.widgets.quiet_driver import QuietDriver

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a POSIX terminal")

APP = """
import sys
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.widgets import Static
from vramtop.widgets.quiet_driver import QuietDriver

LOG = open(sys.argv[2], "a", buffering=1)  # Textual draws on stderr: what it says goes here

class Keys(App):
    def compose(self):
        yield Static("ready")

    def on_mount(self):
        print("MOUNTED", file=LOG)

    def on_key(self, event):
        print("KEY", event.key, file=LOG)
        if event.key == "q":
            self.exit()

Keys(driver_class=QuietDriver if sys.argv[1] == "quiet" else LinuxDriver).run()
print("EXITED", file=LOG)
"""


class Terminal:
    """A child app on a pseudo-terminal, and what it says, line by line."""

    def __init__(self, driver: str, log: Path) -> None:
        self.master, slave = pty.openpty()
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-c", APP, driver, str(log)], stdin=slave, stdout=slave,
                                     stderr=slave, env=dict(os.environ, TERM="xterm-256color"))
        os.close(slave)
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def said(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def _drain(self) -> None:  # the screen it draws: read, so that it never blocks on a full terminal
        try:
            while os.read(self.master, 65536):
                pass
        except OSError:
            pass

    def wait_for(self, line: str, seconds: float = 10.0) -> float:
        start = time.monotonic()
        while line not in self.said:
            assert time.monotonic() - start < seconds, f"{line!r} not seen: {self.said}"
            time.sleep(0.01)
        return time.monotonic() - start

    def wakeups(self, seconds: float) -> int:
        """Context switches of all its threads over ``seconds`` of doing nothing."""
        def count() -> int:
            total = 0
            for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{tid}/status") as f:
                    total += sum(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
            return total
        before = count()
        time.sleep(seconds)
        return count() - before

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_idle_it_does_not_wake_and_keys_escape_and_quit_work(tmp_path):
    textual, quiet = Terminal("textual", tmp_path / "textual.log"), Terminal("quiet", tmp_path / "quiet.log")
    try:
        for term in (textual, quiet):
            term.wait_for("MOUNTED")
        time.sleep(0.5)  # the first frame written
        theirs, ours = textual.wakeups(2.0), quiet.wakeups(2.0)
        assert theirs >= 15  # Textual's input thread: ten times a second
        assert ours <= 3, (ours, theirs)

        os.write(quiet.master, b"a")
        quiet.wait_for("KEY a")
        os.write(quiet.master, b"\x1b")  # a lone Escape: a key once the escape delay has passed
        quiet.wait_for("KEY escape")
        os.write(quiet.master, b"\x1b[A")  # a whole sequence: one key
        quiet.wait_for("KEY up")
        time.sleep(1.5)  # past the second after input: the thread sleeps on the terminal again
        os.write(quiet.master, b"q")
        assert quiet.wait_for("EXITED", 5.0) < 1.0  # the exit event wakes the input thread
        assert quiet.proc.wait(5) == 0
    finally:
        textual.close()
        quiet.close()


def test_the_app_runs_on_it_on_posix():
    assert make_app().driver_class is QuietDriver
