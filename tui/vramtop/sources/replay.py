"""A recording played back as a source: the app shows it through the same views as live data.

``sample()`` gives the snapshot recorded at the replay's current time (``source`` = "replay").
Playing, the replay's time follows the wall clock times ``speed``; the controls (pause, step,
jump, speed) are plain methods so any key binding can call them. Nothing here imports Textual;
the recording format is imported when a replay opens (the live view only asks whether its source
is one).
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from array import array
from pathlib import Path
from typing import Callable

from vramtop.snapshot import NodeSnapshot

SPEEDS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def _clock_text(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class JumpError(ValueError):
    """A jump target that cannot be read; the message says what is accepted."""


_UNITS = {"s": 1, "m": 60, "h": 3600}
_JUMP_FORMS = "HH:MM[:SS] (clock time), +MM:SS or +5m (from the start), now-30s or now+2m"


def _duration(text: str) -> float:
    """"90", "1:30", "01:02:03", "5m", "30s", "2h" as seconds."""
    if text and text[-1] in _UNITS:
        return float(text[:-1]) * _UNITS[text[-1]]
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def jump_target(text: str, start: float, now: float) -> float:
    """The recorded time a typed jump means: a clock time ("14:02", "14:02:30", on the
    recording's first day or the next one it reaches), an offset from the start ("+5:00",
    "+90s"), or from the current time ("now-30s", "now+2m"). Raises JumpError."""
    t = text.strip().lower().replace(" ", "")
    try:
        if t.startswith("now"):
            rest = t[3:]
            if not rest:
                return now
            sign = -1 if rest[0] == "-" else 1 if rest[0] == "+" else None
            if sign is None:
                raise ValueError
            return now + sign * _duration(rest[1:])
        if t.startswith("+"):
            return start + _duration(t[1:])
        parts = [int(p) for p in t.split(":")]
        if not 2 <= len(parts) <= 3 or not (0 <= parts[0] < 24 and all(0 <= p < 60 for p in parts[1:])):
            raise ValueError
    except ValueError:
        raise JumpError(f"cannot read '{text}': use {_JUMP_FORMS}") from None
    day = time.localtime(start)
    clock = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, parts[0], parts[1],
                         parts[2] if len(parts) == 3 else 0, 0, 0, -1))
    return clock if clock >= start else clock + 86_400  # before the start: the next day's


class ReplaySource:
    """Plays ``path`` (a recording). Opening raises ``RecordingError`` (one line) when it cannot."""

    name = "replay"
    carries_ray = True  # the recorded Ray state rides on each snapshot

    def __init__(self, path: str | Path, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        from vramtop.recording import Recording

        self.recording = Recording(path)
        # Play time never goes back, even where the recorded clock did (an NTP step).
        self._times = array("d", self.recording.timestamps)
        for i in range(1, len(self._times)):
            if self._times[i] < self._times[i - 1]:
                self._times[i] = self._times[i - 1]
        self._clock = clock
        self._speed = self._clamp(speed)
        self._index = 0
        self._paused = False
        self._anchor_wall = clock()  # wall time at which the replay stood at ``_anchor_time``
        self._anchor_time = self.start

    # -- what the app reads --------------------------------------------------------------------

    @property
    def start(self) -> float:
        return self._times[0]

    @property
    def end(self) -> float:
        return self._times[-1]

    @property
    def count(self) -> int:
        return len(self.recording)

    @property
    def index(self) -> int:
        """The snapshot the next ``sample`` shows (0-based)."""
        self._follow_clock()
        return self._index

    @property
    def paused(self) -> bool:
        return self._paused or self.at_end

    @property
    def at_end(self) -> bool:
        return self._index == self.count - 1 and self._time() >= self.end

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def problem(self) -> str | None:
        """Why the end of the file was not replayed (a cut recording), one line; else None."""
        return self.recording.problem

    def sample(self) -> NodeSnapshot:
        self._follow_clock()
        return dataclasses.replace(self.recording.snapshot(self._index), source="replay")

    @property
    def label(self) -> str:
        """Where the picture on screen comes from, for a report: "replay of FILE, snapshot 3 of 9"."""
        note = f" ({self.problem})" if self.problem else ""
        return f"replay of {self.recording.path}, snapshot {self._index + 1} of {self.count}{note}"

    def status(self) -> str:
        """One line for a status bar: "replay 14:02:11  +00:05:12 / 01:00:00  #313/3601  10×  paused"."""
        self._follow_clock()
        ts = self._times[self._index]
        state = "end" if self.at_end else "paused" if self._paused else "playing"
        return (f"replay {time.strftime('%H:%M:%S', time.localtime(ts))}  +{_clock_text(ts - self.start)} / "
                f"{_clock_text(self.end - self.start)}  #{self._index + 1}/{self.count}  {self._speed:g}×  {state}")

    # -- controls ------------------------------------------------------------------------------

    def pause(self) -> None:
        self._follow_clock()
        self._anchor_time = self._time()
        self._paused = True

    def play(self) -> None:
        if self._paused:
            self._paused = False
            self._anchor_wall = self._clock()

    def toggle_pause(self) -> bool:
        """Pause or play; returns whether it is now paused."""
        if self._paused:
            self.play()
        else:
            self.pause()
        return self._paused

    def step(self, count: int = 1) -> int:
        """Pause and move ``count`` snapshots (negative: back); returns the new index."""
        self.pause()
        self._index = max(0, min(self.count - 1, self._index + count))
        self._anchor_time = self._times[self._index]
        return self._index

    def jump_to(self, timestamp: float) -> int:
        """Go to the last snapshot recorded at or before ``timestamp`` (the first one if none)."""
        self._anchor_time = max(self.start, min(self.end, timestamp))
        self._anchor_wall = self._clock()
        self._index = max(0, bisect.bisect_right(self._times, self._anchor_time) - 1)
        return self._index

    @property
    def position(self) -> float:
        """The recorded time the replay stands at."""
        return self._time()

    def seek(self, seconds: float) -> int:
        """Move by ``seconds`` of recorded time (negative: back)."""
        self._follow_clock()
        return self.jump_to(self._time() + seconds)

    def set_speed(self, speed: float) -> float:
        """Play ``speed`` times faster than recorded (1–60); returns the speed set."""
        self._follow_clock()
        self._anchor_time = self._time()
        self._anchor_wall = self._clock()
        self._speed = self._clamp(speed)
        return self._speed

    def faster(self) -> float:
        return self.set_speed(next((s for s in SPEEDS if s > self._speed), SPEEDS[-1]))

    def slower(self) -> float:
        return self.set_speed(next((s for s in reversed(SPEEDS) if s < self._speed), SPEEDS[0]))

    # -- time ----------------------------------------------------------------------------------

    @staticmethod
    def _clamp(speed: float) -> float:
        return max(SPEEDS[0], min(SPEEDS[-1], float(speed)))

    def _time(self) -> float:
        """The replay's current recorded time."""
        if self._paused:
            return self._anchor_time
        return min(self.end, self._anchor_time + (self._clock() - self._anchor_wall) * self._speed)

    def _follow_clock(self) -> None:
        if self._paused:
            return
        self._index = max(0, bisect.bisect_right(self._times, self._time()) - 1)
