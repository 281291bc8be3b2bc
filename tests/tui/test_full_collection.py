"""The live view runs a full collection every ``app.FULL_COLLECT_S`` on its sampling thread: at
the app's collector thresholds the garbage in cycles that reaches the oldest generation (Textual
leaves its widget map in one after each layout) otherwise waited about an hour at 0.2 s, and the
RSS climbed for as long (bench/soak_rss.py). A pass slower than ``app.FULL_COLLECT_MS`` puts the
next one off in proportion (a cluster's history makes one 30-100 ms, and it holds the interpreter)."""

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
vramtop.app.FULL_COLLECT_S, vramtop.app.FULL_COLLECT_MS = float(sys.argv[2]), float(sys.argv[3])
from tui_support import make_app, next_sample

class Cycle:
    pass

async def main():
    gc.disable()
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        while app.snapshot is None:
            await pilot.pause(0.05)
        collected = []
        for _ in range(2):
            garbage = Cycle()
            garbage.me = garbage
            ref = weakref.ref(garbage)
            del garbage
            time.sleep(0.5)
            await next_sample(app, pilot)
            collected.append(ref() is None)
        print(gc.get_freeze_count() > 0, *collected)

asyncio.run(main())
"""


def collected(period_s: float, pass_ms: float = 1000.0) -> tuple[str, ...]:
    """Whether start-up was frozen, then for two cycles made in turn, each followed by half a
    second and a sample, whether the cycle was collected."""
    here = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, "-c", CHILD, str(here), str(period_s), str(pass_ms)],
                            capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert result.returncode == 0, result.stderr[-2000:]
    return tuple(result.stdout.split()[-3:])


def test_a_sample_after_the_period_collects_the_cycles_made_since():
    assert collected(0.2) == ("True", "True", "True")


def test_a_sample_within_the_period_leaves_them():
    assert collected(3600.0) == ("True", "False", "False")


def test_a_slow_pass_puts_the_next_one_off():
    # Any pass takes over a nanosecond: the second cycle waits some thousand times the period.
    assert collected(0.2, pass_ms=1e-6) == ("True", "True", "False")
