"""The recent past the app keeps: a bounded ring of snapshots, and each GPU's used memory over it.

Fed once per tick; pure and Textual-free. The per-GPU series (for sparklines) are kept beside
the ring as it fills, so reading them costs nothing per tick. ``save`` writes the ring as a
recording, which is how the app dumps "what just happened" with one key (``save_history``, which
names the file after the node and the time and answers in one line).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Iterator

from vramtop.snapshot import NodeSnapshot

DEFAULT_LENGTH = 900  # 15 minutes at 1 Hz: a few tens of MB of a live node's snapshots


class History:
    """The last ``length`` snapshots, oldest first."""

    def __init__(self, length: int = DEFAULT_LENGTH) -> None:
        if length < 1:
            raise ValueError(f"history length must be at least 1, got {length}")
        self.length = length
        self._snapshots: deque[NodeSnapshot] = deque(maxlen=length)
        self._used: dict[int, deque[int | None]] = {}
        self.added = 0  # snapshots ever added: the number of the oldest kept is added - len(self)

    def add(self, snapshot: NodeSnapshot) -> None:
        full = len(self._snapshots) == self.length
        self.added += 1
        self._snapshots.append(snapshot)
        used = {g.index: (None if g.lost else g.used_mib) for g in snapshot.gpus}
        for index in used.keys() - self._used.keys():  # a GPU seen for the first time
            self._used[index] = deque([None] * (len(self._snapshots) - 1), maxlen=self.length)
        for index, series in self._used.items():
            series.append(used.get(index))
        if full:
            for index in [i for i, s in self._used.items() if not any(v is not None for v in s)]:
                del self._used[index]  # a GPU gone for the whole window

    def __len__(self) -> int:
        return len(self._snapshots)

    def __iter__(self) -> Iterator[NodeSnapshot]:
        return iter(self._snapshots)

    @property
    def latest(self) -> NodeSnapshot | None:
        return self._snapshots[-1] if self._snapshots else None

    def snapshots(self) -> tuple[NodeSnapshot, ...]:
        return tuple(self._snapshots)

    def used_series(self, gpu_index: int) -> tuple[int | None, ...]:
        """Used MiB of one GPU per snapshot, oldest first; None where it was absent or lost."""
        series = self._used.get(gpu_index)
        return tuple(series) if series is not None else (None,) * len(self._snapshots)

    def gpu_indices(self) -> tuple[int, ...]:
        return tuple(sorted(self._used))

    def save(self, path: str | Path, interval: float | None = None) -> int:
        """Write the ring as a recording (``vramtop --replay`` plays it); returns the snapshot count.
        Raises RecordingError when there is nothing yet, OSError when the file cannot be written."""
        from vramtop.recording import write_recording

        return write_recording(path, list(self._snapshots), interval)


def default_path(snapshot: NodeSnapshot, directory: str | Path = ".") -> Path:
    """Where a dump of the app's history goes: ``vramtop-<host>-<YYYYmmdd-HHMMSS>.vtrec``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(snapshot.timestamp))
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in snapshot.hostname) or "node"
    return Path(directory) / f"vramtop-{host}-{stamp}.vtrec"


def save_history(history: History, path: str | Path | None = None, interval: float | None = None) -> str:
    """Dump the app's ``History`` to a recording; returns one line for the status bar (the path
    written, or why not). Never raises: a key press must not crash the app."""
    from vramtop.recording import RecordingError

    latest = history.latest
    if latest is None:
        return "nothing to save yet: no snapshot taken"
    target = Path(path) if path is not None else default_path(latest)
    try:
        count = history.save(target, interval)
    except (OSError, RecordingError) as exc:
        return f"could not save the history to {target}: {getattr(exc, 'strerror', None) or exc}"
    return f"saved {count} snapshot{'s' if count != 1 else ''} to {target}"
