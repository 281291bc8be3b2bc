"""Helpers of the launch tests: ``vramtop launch`` as a child process, the stand-in engine's log."""

import json
import subprocess
import sys
from pathlib import Path


def launch(env, *args, **popen):
    """``vramtop launch ARGS`` as a real child process."""
    return subprocess.Popen([sys.executable, "-m", "vramtop", "launch", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
