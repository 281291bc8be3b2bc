"""Helpers of the launch tests: ``vramtop launch`` as a child process, the stand-in engine's log."""

import json
import subprocess
import sys
from pathlib import Path


# ctrl+c's SIGINT as a terminal's shell leaves it: where the suite itself runs with SIGINT ignored
# (a shell without job control ignores it for a command put in the background), a child would
# inherit that and Python would install no KeyboardInterrupt handler; exec keeps the default.
_SIGINT_AS_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                         "os.execv(sys.executable, [sys.executable, '-m', 'vramtop', 'launch', *sys.argv[1:]])")


def launch(env, *args, **popen):
    """``vramtop launch ARGS`` as a real child process, ctrl+c reaching it as from a terminal."""
    return subprocess.Popen([sys.executable, "-c", _SIGINT_AS_A_TERMINAL, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
