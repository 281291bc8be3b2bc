"""Pilot tests of the stop dialog (on real processes)."""

from __future__ import annotations

import subprocess
import sys


from dialog_host import DialogHost
from telemetry_support import snapshot_of
from vramtop.actions import READONLY_MESSAGE, Stopper, plan_for_process
from vramtop.widgets.stop_dialog import StopDialog, freed_text

STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(120)")
POLITE = "import time; print('ready', flush=True); time.sleep(120)"


def _spawn(code: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


async def _wait_for(pilot, cond, seconds=5.0):
    for _ in range(int(seconds / 0.05)):
        if cond():
            return True
        await pilot.pause(0.05)
    return cond()


async def test_y_stops_a_polite_process_and_reports_the_memory_freed():
    p = _spawn(POLITE)
    try:
        plan = plan_for_process(snapshot_of({p.pid: (0, 1_500), }), p.pid)
        app = DialogHost(StopDialog(plan, Stopper(), grace_s=3))
        async with app.run_test() as pilot:
            body = str(app.screen.query_one("#stop-body").render())
            assert "GPU 0: 1,500 MiB" in body and f"pid {p.pid}" in body
            await pilot.press("y")
            assert await _wait_for(pilot, lambda: app.outcomes)
        (outcome,) = app.outcomes
        assert outcome.action == "stopped" and "1,500 MiB" in outcome.message
        assert p.wait(timeout=5) == -15
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


async def test_sigkill_is_offered_only_after_the_grace_period_and_needs_K():
    p = _spawn(STUBBORN)
    try:
        plan = plan_for_process(snapshot_of({p.pid: (1, 900)}), p.pid)
        app = DialogHost(StopDialog(plan, Stopper(), grace_s=0.5, poll_s=0.05))
        async with app.run_test() as pilot:
            kill = app.screen.query_one("#kill")
            assert not kill.display
            await pilot.press("K")  # before the grace period: nothing happens
            await pilot.press("y")
            assert await _wait_for(pilot, lambda: kill.display, seconds=3)
            assert p.poll() is None
            assert "Still running" in str(app.screen.query_one("#stop-status").render())
            await pilot.press("K")
            assert await _wait_for(pilot, lambda: app.outcomes)
        assert app.outcomes[0].action == "killed"
        assert p.wait(timeout=5) == -9
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


async def test_readonly_dialog_refuses_and_escape_closes():
    p = _spawn(POLITE)
    try:
        plan = plan_for_process(snapshot_of({p.pid: (0, 10)}), p.pid)
        app = DialogHost(StopDialog(plan, Stopper(readonly=True)))
        async with app.run_test() as pilot:
            assert READONLY_MESSAGE in str(app.screen.query_one("#stop-status").render())
            await pilot.press("y")
            await pilot.press("escape")
            assert await _wait_for(pilot, lambda: app.outcomes)
        assert app.outcomes[0].action == "cancelled" and p.poll() is None
    finally:
        p.kill()
        p.wait()


def test_freed_text_sums_gpus():
    from vramtop.actions import StopPlan

    assert freed_text(StopPlan("x", (), (), {1: 2_000, 0: 1_000})) == "Frees GPU 0: 1,000 MiB · GPU 1: 2,000 MiB (3,000 MiB in all)"
