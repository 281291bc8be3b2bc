"""The first tick freezes start-up's objects (``gc.freeze``), and collects the garbage in cycles
first: a frozen object is never collected, so garbage frozen would stay for the process's life."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# In a child: the freeze is once a process. Automatic collection is off, so only the app's own
# collection can free the cycle made before it started.
CHILD = r"""
import asyncio, gc, sys, weakref
sys.path.insert(0, sys.argv[1])
from tui_support import make_app

class Cycle:
    pass

async def main():
    gc.disable()
    garbage = Cycle()
    garbage.me = garbage
    ref = weakref.ref(garbage)
    del garbage
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        print(gc.get_freeze_count() > 0, ref() is None)

asyncio.run(main())
"""


def test_the_first_tick_collects_cyclic_garbage_before_it_freezes():
    here = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-c", CHILD, str(here)], capture_output=True, text=True, timeout=60,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    frozen, collected = result.stdout.split()[-2:]
    assert frozen == "True"  # the first tick froze start-up's objects
    assert collected == "True"  # and the cycle made before it was collected, not frozen
