"""The live view runs a full collection every ``app.FULL_COLLECT_S`` on its sampling thread: at
the app's collector thresholds the garbage in cycles that reaches the oldest generation (Textual
leaves its widget map in one after each layout) otherwise waited about an hour at 0.2 s, and the
RSS climbed for as long (bench/soak_rss.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# In a child: the first tick's freeze is once a process. Automatic collection is off, so only the
# app's own full collection can free the cycle made after start-up was frozen.
CHILD = r"""
import asyncio, gc, sys, time, weakref
sys.path.insert(0, sys.argv[1])
import vramtop.app
vramtop.app.FULL_COLLECT_S = float(sys.argv[2])
from tui_support import make_app, next_sample

class Cycle:
    pass

async def main():
    gc.disable()
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.05)
        garbage = Cycle()
        garbage.me = garbage
        ref = weakref.ref(garbage)
        del garbage
        time.sleep(0.5)
        await next_sample(app, pilot)
        print(gc.get_freeze_count() > 0, ref() is None)

asyncio.run(main())
"""


def collected_after_a_sample(period_s: float) -> tuple[str, str]:
    here = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-c", CHILD, str(here), str(period_s)], capture_output=True,
                            text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    frozen, collected = result.stdout.split()[-2:]
    return frozen, collected


def test_a_sample_after_the_period_collects_the_cycles_made_since():
    assert collected_after_a_sample(0.2) == ("True", "True")


def test_a_sample_within_the_period_leaves_them():
    assert collected_after_a_sample(3600.0) == ("True", "False")
