"""The recent past the app keeps: a bounded ring of snapshots, and each GPU's used memory over it.

Fed once per tick; pure and Textual-free. The per-GPU series (for sparklines) are kept beside
the ring as it fills, so reading them costs nothing per tick. The ring keeps each tick compactly:
where the GPU processes are the tick before's but for their memory (a busy node's usual tick),
it keeps the earlier records once and this tick's memory as one array, and records equal to the
tick before's as that tick's objects; a snapshot is made whole again only when read.
``save`` writes the ring as a
recording, which is how the app dumps "what just happened" with one key (``save_history``, which
names the file after the node and the time and answers in one line).
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from dataclasses import fields, replace
from operator import attrgetter
from pathlib import Path
from typing import Iterator

from vramtop.snapshot import GpuProcess, NodeSnapshot

DEFAULT_LENGTH = 900  # 15 minutes at 1 Hz: a few tens of MB of a live node's snapshots


class History:
    """The last ``length`` snapshots, oldest first."""

    def __init__(self, length: int = DEFAULT_LENGTH) -> None:
        if length < 1:
            raise ValueError(f"history length must be at least 1, got {length}")
        self.length = length
        # Per tick: the snapshot, its GPU processes perhaps an earlier tick's, and then this
        # tick's memory of each (None: theirs).
        self._frames: deque[tuple[NodeSnapshot, array | None]] = deque(maxlen=length)
        self._latest: NodeSnapshot | None = None
        self._used: dict[int, deque[int | None]] = {}
        self.added = 0  # snapshots ever added: the number of the oldest kept is added - len(self)

    def add(self, snapshot: NodeSnapshot) -> None:
        full = len(self._frames) == self.length
        self.added += 1
        if not self._frames:
            frame = (snapshot, None)
        elif snapshot.gpu_processes is self._latest.gpu_processes:  # the last tick's very records (a
            kept, memory = self._frames[-1]  # cluster between polls): kept as that tick's frame keeps them
            frame = (replace(snapshot, gpus=_shared(snapshot.gpus, kept.gpus), gpu_processes=kept.gpu_processes,
                             ancestors=kept.ancestors if snapshot.ancestors == kept.ancestors else snapshot.ancestors),
                     memory)
        else:
            frame = _frame(snapshot, self._frames[-1][0])
        self._frames.append(frame)
        self._latest = snapshot
        used = {g.index: (None if g.lost else g.used_mib) for g in snapshot.gpus}
        for index in used.keys() - self._used.keys():  # a GPU seen for the first time
            self._used[index] = deque([None] * (len(self._frames) - 1), maxlen=self.length)
        for index, series in self._used.items():
            series.append(used.get(index))
        if full:
            for index in [i for i, s in self._used.items() if not any(v is not None for v in s)]:
                del self._used[index]  # a GPU gone for the whole window

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[NodeSnapshot]:
        return (_whole(frame) for frame in list(self._frames))

    @property
    def latest(self) -> NodeSnapshot | None:
        return self._latest if self._frames else None

    def snapshots(self) -> tuple[NodeSnapshot, ...]:
        return tuple(self)

    def used_series(self, gpu_index: int) -> tuple[int | None, ...]:
        """Used MiB of one GPU per snapshot, oldest first; None where it was absent or lost."""
        series = self._used.get(gpu_index)
        return tuple(series) if series is not None else (None,) * len(self._frames)

    def gpu_indices(self) -> tuple[int, ...]:
        return tuple(sorted(self._used))

    def save(self, path: str | Path, interval: float | None = None) -> int:
        """Write the ring as a recording (``vramtop --replay`` plays it); returns the snapshot count.
        Raises RecordingError when there is nothing yet, OSError when the file cannot be written."""
        from vramtop.recording import write_recording

        return write_recording(path, list(self), interval)


_NO_FIGURE = -1  # in a frame's memory array: NVML could not say (used_mib None)


def _shared(new: tuple, old: tuple) -> tuple:
    """``new``, its items equal to ``old``'s at the same place as ``old``'s objects (``old`` itself
    when all are)."""
    if new is old:
        return old
    kept = tuple(o if n == o else n for n, o in zip(new, old)) + new[len(old):]
    return old if len(kept) == len(old) and all(k is o for k, o in zip(kept, old)) else kept


_BUT_MEMORY = attrgetter(*(f.name for f in fields(GpuProcess) if f.name != "used_mib"))


def _but_memory(new: GpuProcess, old: GpuProcess) -> bool:
    """The same process record but for its memory."""
    return new is old or _BUT_MEMORY(new) == _BUT_MEMORY(old)


def _frame(snapshot: NodeSnapshot, previous: NodeSnapshot) -> tuple[NodeSnapshot, array | None]:
    """What the ring keeps of ``snapshot``, the tick after ``previous`` (a kept frame's snapshot)."""
    procs, earlier = snapshot.gpu_processes, previous.gpu_processes
    memory = None
    if len(procs) == len(earlier) and all(_but_memory(n, o) for n, o in zip(procs, earlier)):
        if any(n.used_mib != o.used_mib for n, o in zip(procs, earlier)):
            memory = array("q", (_NO_FIGURE if p.used_mib is None else p.used_mib for p in procs))
        procs = earlier
    else:
        procs = _shared(procs, earlier)
    ancestors = previous.ancestors if snapshot.ancestors == previous.ancestors else snapshot.ancestors
    return replace(snapshot, gpus=_shared(snapshot.gpus, previous.gpus), gpu_processes=procs,
                   ancestors=ancestors), memory


def _whole(frame: tuple[NodeSnapshot, array | None]) -> NodeSnapshot:
    """A kept frame as the snapshot it was."""
    snapshot, memory = frame
    if memory is None:
        return snapshot
    procs = []
    for p, mib in zip(snapshot.gpu_processes, memory):
        used = None if mib == _NO_FIGURE else mib
        procs.append(p if p.used_mib == used else replace(p, used_mib=used))
    return replace(snapshot, gpu_processes=tuple(procs))


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
