"""Stand-in engine processes: a child that holds a (logical) GPU in the tests' eyes.

Its command line names the replica and rank, so tests can tell from the OS alone whose it is.
Imported by the Serve apps inside Ray's workers and by the tests (no Ray import here).
"""

from __future__ import annotations

import subprocess
import sys

GPU_USER = "vramtop-test-gpu-user"

# Lives as long as its parent (the replica or worker actor that started it).
_CHILD = "import os, time\nparent = os.getppid()\nwhile os.getppid() == parent: time.sleep(0.5)"


def start_gpu_user(replica_id: str, rank: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, GPU_USER, replica_id, str(rank)])
