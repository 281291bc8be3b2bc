"""The recent past the app keeps: a bounded ring of snapshots, and each GPU's used memory over it.

Fed once per tick; pure and Textual-free. Each GPU's used memory (for sparklines) is kept beside
the ring as it fills, and a sparkline bucket's peak is read from it once all its snapshots are in,
so a tick's sparkline costs two buckets' reads, however full the ring. The ring keeps each tick compactly:
a GPU process or GPU that is the tick before's but for the figures that move (a process's memory,
CPU % and RSS; a GPU's memory, load, temperature and power: a busy node's usual tick) is kept as
the earlier record, matched by PID and GPU (or GPU index), so also while other processes come and
go, and each figure that moved as one array of this tick's values; a snapshot is made whole again
only when read.
``save`` writes the ring as a recording, which is how the app dumps "what just happened" with one
key (``save_history``, which names the file after the node and the time and answers in one line).
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from dataclasses import fields, replace
from operator import attrgetter, is_, ne
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot

DEFAULT_LENGTH = 900  # 15 minutes at 1 Hz: a few tens of MB of a live node's snapshots


class History:
    """The last ``length`` snapshots, oldest first."""

    def __init__(self, length: int = DEFAULT_LENGTH) -> None:
        if length < 1:
            raise ValueError(f"history length must be at least 1, got {length}")
        self.length = length
        self._frames: deque[Frame] = deque(maxlen=length)
        self._latest: NodeSnapshot | None = None
        # Per GPU, its used MiB in each frame: one ring of machine integers for each, snapshot
        # number n at n % length (a deque of Python ints held 40 bytes a figure: 0.3 MiB at 8
        # GPUs); how many of the ring's figures are known; and the peaks of its sparkline buckets
        # whose snapshots are all kept (per_cell, {bucket: peak}), which no later tick changes.
        self._used: dict[int, array] = {}
        self._known: dict[int, int] = {}
        self._peaks: dict[int, tuple[int, dict[int, int]]] = {}
        self.added = 0  # snapshots ever added: the number of the oldest kept is added - len(self)

    def add(self, snapshot: NodeSnapshot) -> None:
        full = len(self._frames) == self.length
        self.added += 1
        if self._frames:
            self._frames.append(_frame(snapshot, self._frames[-1], self._latest))
        else:
            self._frames.append((snapshot, None, None))
        self._latest = snapshot
        used = {g.index: (_NO_USED if g.lost else _used_figure(g.used_mib)) for g in snapshot.gpus}
        for index in used.keys() - self._used.keys():  # a GPU seen for the first time
            self._used[index] = array("q", [_NO_USED]) * self.length
            self._known[index] = 0
        at, known = (self.added - 1) % self.length, self._known
        for index, series in self._used.items():
            figure = used.get(index, _NO_USED)
            known[index] += (figure != _NO_USED) - (series[at] != _NO_USED)
            series[at] = figure
        if full:
            for index in [i for i, n in known.items() if not n]:  # a GPU gone for the whole window
                del self._used[index], known[index]
                self._peaks.pop(index, None)

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Iterator[NodeSnapshot]:
        return (_whole(frame) for frame in list(self._frames))

    @property
    def latest(self) -> NodeSnapshot | None:
        return self._latest if self._frames else None

    def snapshots(self) -> tuple[NodeSnapshot, ...]:
        return tuple(self)

    def used_peaks(self, gpu_index: int, cells: int, per_cell: int) -> tuple[tuple[int | None, ...], int]:
        """One GPU's highest used MiB in each of the last ``cells`` buckets of ``per_cell``
        snapshots, numbered from the first snapshot ever added (a bucket keeps its height while it
        fills), None where no snapshot of a bucket still kept has a figure; and how many snapshots
        kept have one. A bucket whose snapshots are all kept is read from the ring once: a tick
        reads the newest bucket and the oldest (the ring as a tuple cost 58 us a GPU a tick when
        full, 11 when new)."""
        count, series = len(self._frames), self._used.get(gpu_index)
        if series is None or not count or cells <= 0:
            return (None,) * max(cells, 0), 0
        added, per_cell = self.added, max(1, per_cell)
        first = added - count
        kept = self._peaks.get(gpu_index)
        if kept is None or kept[0] != per_cell:
            kept = self._peaks[gpu_index] = (per_cell, {})
        done = kept[1]
        last = (added - 1) // per_cell
        peaks = []
        for key in range(last - cells + 1, last + 1):
            a, b = key * per_cell, (key + 1) * per_cell
            whole = a >= first and b <= added  # every snapshot of the bucket is in and still kept
            peak = done.get(key) if whole else None
            if peak is None:
                peak = _peak(series, max(a, first), min(b, added))
                if whole:
                    done[key] = peak
            peaks.append(None if peak == _NO_USED else peak)
        if len(done) > 2 * cells:
            done.clear()  # buckets long gone; the kept ones are read again once
        return tuple(peaks), self._known[gpu_index]

    def gpu_indices(self) -> tuple[int, ...]:
        return tuple(sorted(self._used))

    def save(self, path: str | Path, interval: float | None = None) -> int:
        """Write the ring as a recording (``vramtop --replay`` plays it); returns the snapshot count.
        Raises RecordingError when there is nothing yet, OSError when the file cannot be written."""
        from vramtop.recording import write_recording

        return write_recording(path, list(self), interval)


class _Column(NamedTuple):
    """One figure of a record that moves from tick to tick, kept in a frame as an array."""

    get: Callable[[Any], Any]  # the record's figure: int ("i") or float ("d"), or None
    code: str
    in_part: bool = False  # read from the record's part (a process's host record), not the record


class _Moving(NamedTuple):
    """The figures of one kind of record that move from tick to tick: a frame keeps an earlier
    frame's records and, for each figure that moved, this tick's values as one array."""

    key: Callable[[Any], Any]  # which process or GPU a record is of
    still: Callable[[Any, Any], bool]  # the same record but for these figures
    columns: tuple[_Column, ...]
    put: Callable[[Any, tuple], Any]  # the record with these figures, one per column (itself if they are its own)
    # Whether every record of a tick is the tick before's but for its own figures, its part the
    # very object it was (and so the part's figures too): one glance at a whole tick where ``still``
    # asks record by record. The live source hands out a host record again until it moves.
    as_last: Callable[[tuple, tuple], bool] | None = None


# In an array: the figure was None. Not NaN, so that equal columns compare equal.
_NO_INT, _NO_FLOAT = -(2**31), -math.inf
_NO_USED = -(2**63)  # in a GPU's ring of used MiB: absent or lost
_GPU_INTS = ("reserved_mib", "used_mib", "free_mib", "utilization_pct", "memory_utilization_pct", "temperature_c")
_GPU_FIGURES = attrgetter(*_GPU_INTS, "power_w")
_GPU_STILL = attrgetter(*(f.name for f in fields(GpuInfo) if f.name not in (*_GPU_INTS, "power_w")))
_PROC_STILL = attrgetter(*(f.name for f in fields(GpuProcess) if f.name not in ("used_mib", "host")))
_HOST_STILL = attrgetter(*(f.name for f in fields(HostProcess) if f.name not in ("cpu_pct", "rss_mib")))
_HOST = attrgetter("host")


def _peak(series: array, a: int, b: int) -> int:
    """The highest figure of snapshots ``a`` to ``b`` (numbers) in the ring ``series``
    (``_NO_USED`` where none has one)."""
    if a >= b:
        return _NO_USED
    length = len(series)
    i, j = a % length, (b - 1) % length + 1
    if i < j:
        return max(series[i:j])
    return max(max(series[i:], default=_NO_USED), max(series[:j], default=_NO_USED))


def _used_figure(mib: Any) -> int:
    """A GPU's used MiB as its ring holds it; one no machine integer holds (a peer's) as absent."""
    return mib if type(mib) is int and _NO_USED < mib < 2**63 else _NO_USED


def _put_gpu(gpu: GpuInfo, figures: tuple) -> GpuInfo:
    if figures == _GPU_FIGURES(gpu):
        return gpu
    return replace(gpu, **dict(zip(_GPU_INTS, figures)), power_w=figures[-1])


def _proc_still(new: GpuProcess, old: GpuProcess) -> bool:
    if new is old:
        return True
    a, b = new.host, old.host
    return _PROC_STILL(new) == _PROC_STILL(old) and (
        a is b or (a is not None and b is not None and _HOST_STILL(a) == _HOST_STILL(b)))


def _procs_as_last(new: tuple, last: tuple) -> bool:
    """Every process is the tick before's, with its very host record."""
    return (all(map(is_, map(_HOST, new), map(_HOST, last)))
            and list(map(_PROC_STILL, new)) == list(map(_PROC_STILL, last)))


def _put_proc(p: GpuProcess, figures: tuple) -> GpuProcess:
    used, rss, cpu = figures
    host = p.host
    if host is not None and (host.rss_mib, host.cpu_pct) != (rss, cpu):
        host = replace(host, rss_mib=rss, cpu_pct=cpu)
    return p if host is p.host and used == p.used_mib else replace(p, used_mib=used, host=host)


_GPUS = _Moving(attrgetter("index"), lambda n, o: n is o or _GPU_STILL(n) == _GPU_STILL(o),
                (*(_Column(attrgetter(name), "i") for name in _GPU_INTS), _Column(attrgetter("power_w"), "d")),
                _put_gpu)
# A busy node's processes move their memory on every tick and their CPU % and RSS at each read.
_PROCS = _Moving(attrgetter("pid", "gpu_index"), _proc_still, (_Column(attrgetter("used_mib"), "i"),
                               _Column(lambda p: None if p.host is None else p.host.rss_mib, "i", True),
                               _Column(lambda p: None if p.host is None else p.host.cpu_pct, "d", True)),
                 _put_proc, _procs_as_last)

Figures = tuple["array | None", ...]  # per column: this tick's values, or None (the records' own)
# Per tick: the snapshot, its GPU processes and GPUs perhaps an earlier frame's records, and then
# the figures of each that moved since (None: the records' own).
Frame = tuple[NodeSnapshot, "Figures | None", "Figures | None"]


def _shared(new: tuple, old: tuple) -> tuple:
    """``new``, its items equal to ``old``'s at the same place as ``old``'s objects (``old`` itself
    when all are)."""
    if new is old:
        return old
    kept = tuple(o if n == o else n for n, o in zip(new, old)) + new[len(old):]
    return old if len(kept) == len(old) and all(k is o for k, o in zip(kept, old)) else kept


def _matched(new: tuple, old: tuple, moving: _Moving) -> tuple:
    """``new``, each record as ``old``'s of the same process or GPU where that is the same but for
    the moving figures: when processes come and go, the others' records are still kept once."""
    by_key = {moving.key(o): o for o in old}
    return tuple(o if (o := by_key.get(moving.key(n))) is not None and moving.still(n, o) else n for n in new)


def _keep(new: tuple, old: tuple, moving: _Moving, before: Figures | None,
          last: tuple) -> tuple[tuple, Figures | None]:
    """What a frame keeps of the records ``new``, where the frame before kept ``old`` and
    ``before`` of the tick's records ``last``: ``old``'s records where they are ``new``'s but for
    the figures that move, and those figures where they moved, a column that did not move since
    the frame before as that frame's very array. (``old``'s records are, place by place, ``last``'s
    but for those figures, so records that are ``last``'s but for theirs are ``old``'s too.)"""
    base = old
    glance = moving.as_last is not None and len(new) == len(last) == len(old) and moving.as_last(new, last)
    if not glance and (len(new) != len(old) or not all(map(moving.still, new, old))):
        base, before = _matched(new, old, moving), None  # ``before`` holds figures of other places
        if all(map(is_, base, new)):  # no record of the frame before is kept
            return _shared(new, old), None
    figures = []
    try:
        for column, was in zip(moving.columns, before or (None,) * len(moving.columns)):
            if glance and column.in_part:  # the very parts of the tick before: its figures
                figures.append(was)
            elif was is None and not any(map(ne, map(column.get, new), map(column.get, base))):
                figures.append(None)
            else:
                now = _array(column, new)
                figures.append(was if was == now else now)
    except (TypeError, OverflowError):  # a figure not of its type or range: the records kept as they are
        return _shared(new, old), None
    if all(f is None for f in figures):
        return base, None
    # A frame whose figures did not move since the frame before keeps that frame's very tuple of
    # them: at 0.2 s with memory moving each second, four frames in five (0.11 MiB of 900 frames).
    return base, before if before is not None and all(map(is_, figures, before)) else tuple(figures)


def _array(column: _Column, records: tuple) -> array:
    values = list(map(column.get, records))
    if column.code == "i":
        return array("i", [_NO_INT if v is None else v for v in values])
    if not all(v is None or type(v) is float for v in values):
        raise TypeError("not a float")  # an int would come back as a float
    return array("d", [_NO_FLOAT if v is None else v for v in values])


def _made_whole(records: tuple, figures: Figures | None, moving: _Moving) -> tuple:
    if figures is None:
        return records
    kept = [(c.get, f, c.code == "i") for c, f in zip(moving.columns, figures)]
    return tuple(moving.put(r, tuple(get(r) if f is None else _figure(f[k], whole) for get, f, whole in kept))
                 for k, r in enumerate(records))


def _figure(value: int | float, whole: bool) -> int | float | None:
    return None if value == (_NO_INT if whole else _NO_FLOAT) else value


def _frame(snapshot: NodeSnapshot, previous: Frame, latest: NodeSnapshot) -> Frame:
    """What the ring keeps of ``snapshot``, the tick after ``latest``, which the ring kept as ``previous``."""
    kept, kept_procs, kept_gpus = previous
    if snapshot.gpu_processes is latest.gpu_processes:  # the last tick's very records (a cluster between polls)
        procs, proc_figures = kept.gpu_processes, kept_procs
    else:
        procs, proc_figures = _keep(snapshot.gpu_processes, kept.gpu_processes, _PROCS, kept_procs,
                                    latest.gpu_processes)
    gpus, gpu_figures = _keep(snapshot.gpus, kept.gpus, _GPUS, kept_gpus, latest.gpus)
    ancestors = kept.ancestors if snapshot.ancestors == kept.ancestors else snapshot.ancestors
    return replace(snapshot, gpus=gpus, gpu_processes=procs, ancestors=ancestors), proc_figures, gpu_figures


def _whole(frame: Frame) -> NodeSnapshot:
    """A kept frame as the snapshot it was."""
    snapshot, procs, gpus = frame
    if procs is None and gpus is None:
        return snapshot
    return replace(snapshot, gpu_processes=_made_whole(snapshot.gpu_processes, procs, _PROCS),
                   gpus=_made_whole(snapshot.gpus, gpus, _GPUS))


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
