"""Reading a typed jump target in a replay: clock times, offsets from the start and from now."""

from __future__ import annotations

import time

import pytest

from vramtop.sources.replay import JumpError, jump_target

START = time.mktime((2026, 11, 28, 13, 50, 0, 0, 0, -1))  # local 13:50:00


@pytest.mark.parametrize("text, seconds_after_start", [
    ("14:02", 12 * 60), ("14:02:30", 12 * 60 + 30), (" 13:50 ", 0),
    ("+5:00", 300), ("+90s", 90), ("+2m", 120), ("+1:00:00", 3600), ("+1h", 3600),
    ("now", 600), ("now-30s", 570), ("now+2m", 720), ("NOW - 1:00", 540),
])
def test_jump_targets(text, seconds_after_start):
    assert jump_target(text, START, START + 600) == pytest.approx(START + seconds_after_start)


def test_a_clock_time_before_the_start_is_the_next_days():
    assert jump_target("13:00", START, START) == pytest.approx(START + 23 * 3600 + 10 * 60, abs=3600)  # DST-safe


@pytest.mark.parametrize("text", ["", "soon", "25:00", "14:60", "+", "+x", "now*2", "1:2:3:4"])
def test_unreadable_targets_say_what_is_accepted(text):
    with pytest.raises(JumpError, match=r"cannot read .*HH:MM\[:SS\]"):
        jump_target(text, START, START)
