"""Recordings: snapshots appended to a compressed file that any interruption leaves readable.

Layout: one plain header line, ``vramtop-recording {json}\\n`` (format version, vramtop
version, hostname, interval, the field names of the snapshot records), then segments. A segment
is one zlib stream that starts with a keyframe (the whole snapshot) and goes on with deltas
(only the items that changed); each record is flushed with ``Z_SYNC_FLUSH`` as it is written, so
a file cut at any byte still decodes up to its last complete record. A new segment (a new
stream) starts every ``keyframe_every`` snapshots, which bounds the work of a jump in time.

Inside a stream a record is ``>IdB`` (payload length, timestamp, kind) and a compact JSON
payload. A snapshot is a flat map of items (``m`` meta, ``g<pos>`` GPUs, ``p<pos>`` GPU
processes, ``h<pid>`` host records, ``a`` ancestor PIDs, ``e`` errors, ``r.<field>`` Ray state,
``t.<field>`` telemetry); a delta sets whole new items, patches changed positions of list items
and drops items that went away. GPU, process and host records are positional lists whose field
names are in the header, so a file from a vramtop with more or fewer fields still reads. Ray
and telemetry records (any dataclasses) are encoded generically with a type tag, field by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from vramtop import __version__
from vramtop.snapshot import GpuInfo, GpuProcess, HostProcess, NodeSnapshot, SourceError

MAGIC = b"vramtop-recording "
FORMAT = "vramtop-recording"
FORMAT_VERSION = 1
OLDEST_READABLE = 1
KEYFRAME_EVERY = 120

_REC = struct.Struct(">IIdB")  # payload length, CRC-32 of the payload, timestamp, kind
_KEY, _DELTA = 1, 2
_RECORD_CLASSES = {"GpuInfo": GpuInfo, "HostProcess": HostProcess, "GpuProcess": GpuProcess}
_SECTIONS = {"r": "ray", "t": "telemetry"}
_MAX_HEADER = 1 << 16
_CUT = "the recording was cut mid-snapshot; replaying up to its last complete snapshot"
_OPEN = "the recording was not closed (still being written, or its recorder was stopped)"


class RecordingError(Exception):
    """A recording that cannot be read at all; the message is one line naming why."""


# -- generic encoding of dataclasses (Ray, telemetry) ------------------------------------------

def encode_value(value: Any) -> Any:
    """Any value of a snapshot's sections as JSON data: dataclasses by field name with a ``@``
    type tag (fields left at their default are omitted), tuples as lists, other lists and maps
    whose keys are not plain text under ``@list`` / ``@map``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        out: dict[str, Any] = {"@": f"{cls.__module__}:{cls.__qualname__}"}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and v == f.default and type(v) is type(f.default):
                continue
            if f.default_factory is not dataclasses.MISSING and v == f.default_factory() and not v:
                continue
            out[f.name] = encode_value(v)
        return out
    if isinstance(value, tuple):
        return [encode_value(v) for v in value]
    if isinstance(value, list):
        return {"@list": [encode_value(v) for v in value]}
    if isinstance(value, dict) or hasattr(value, "items") and hasattr(value, "keys"):
        if all(isinstance(k, str) and not k.startswith("@") for k in value):
            return {k: encode_value(v) for k, v in value.items()}
        return {"@map": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot record a {type(value).__name__}")


def _resolve(tag: str) -> type:
    """The dataclass a tag names; only vramtop's own, so a file cannot make us import anything."""
    module, _, name = tag.partition(":")
    if not (module == "vramtop" or module.startswith("vramtop.")) or not name.isidentifier():
        raise RecordingError(f"unknown record type {tag!r}")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise RecordingError(f"record type {tag!r} does not exist in vramtop {__version__}") from None
    if not dataclasses.is_dataclass(cls):
        raise RecordingError(f"{tag!r} is not a record type")
    return cls


def decode_value(data: Any) -> Any:
    """The inverse of ``encode_value``. Fields this vramtop does not know are dropped, fields the
    file lacks take their defaults; a required field that is missing raises RecordingError."""
    if isinstance(data, list):
        return tuple(decode_value(v) for v in data)
    if isinstance(data, dict):
        if "@" in data:
            cls = _resolve(data["@"])
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            kwargs = {k: decode_value(v) for k, v in data.items() if k in names}
            try:
                return cls(**kwargs)
            except TypeError as exc:
                raise RecordingError(f"{cls.__name__} record: {exc}") from None
        if "@list" in data:
            return [decode_value(v) for v in data["@list"]]
        if "@map" in data:
            return {decode_value(k): decode_value(v) for k, v in data["@map"]}
        return {k: decode_value(v) for k, v in data.items()}
    return data


# -- snapshot <-> flat items -------------------------------------------------------------------

def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _row(obj: Any, names: list[str]) -> list[Any]:
    return [list(v) if isinstance(v, tuple) else v for v in (getattr(obj, n) for n in names)]


def snapshot_items(snapshot: NodeSnapshot) -> dict[str, Any]:
    """A snapshot as a flat map of JSON items (the unit a delta sets, patches or drops)."""
    gpu_names = _fields(GpuInfo)
    host_names = _fields(HostProcess)
    proc_names = [n for n in _fields(GpuProcess) if n != "host"]
    items: dict[str, Any] = {
        "m": [snapshot.hostname, snapshot.source, snapshot.driver_version, snapshot.cuda_version,
              snapshot.nvml_version],
        "e": [[e.source, e.message] for e in snapshot.errors],
        "a": list(snapshot.ancestors),
    }
    for pos, g in enumerate(snapshot.gpus):
        items[f"g{pos}"] = _row(g, gpu_names)
    hosts: dict[str, HostProcess] = {}

    def host_key(h: HostProcess) -> str:
        key = f"h{h.pid}"
        n = 0
        while key in hosts and hosts[key] != h:  # the same PID seen twice with other figures
            n += 1
            key = f"h{h.pid}/{n}"
        hosts[key] = h
        return key

    for pid, h in snapshot.ancestors.items():
        if h.pid != pid:
            raise TypeError(f"ancestor {pid} holds the record of PID {h.pid}")
        host_key(h)
    for pos, p in enumerate(snapshot.gpu_processes):
        items[f"p{pos}"] = _row(p, proc_names) + [host_key(p.host) if p.host is not None else None]
    for key, h in hosts.items():
        items[key] = _row(h, host_names)
    for prefix, attr in _SECTIONS.items():
        value = getattr(snapshot, attr)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            cls = type(value)
            items[prefix] = f"{cls.__module__}:{cls.__qualname__}"
            for f in dataclasses.fields(value):
                items[f"{prefix}.{f.name}"] = encode_value(getattr(value, f.name))
        else:
            items[prefix] = None
            items[f"{prefix}."] = encode_value(value)
    return items


class _RowReader:
    """Builds records of ``cls`` from positional rows written with ``names``: fields this vramtop
    lacks are skipped, fields the file lacks take their defaults."""

    def __init__(self, cls: type, names: list[str]) -> None:
        known = {f.name for f in dataclasses.fields(cls)}
        self._cls = cls
        self._plan = [(pos, name) for pos, name in enumerate(names) if name in known]

    def __call__(self, row: list[Any], **extra: Any) -> Any:
        kwargs = {name: tuple(row[pos]) if isinstance(row[pos], list) else row[pos]
                  for pos, name in self._plan if pos < len(row)}
        try:
            return self._cls(**kwargs, **extra)
        except TypeError as exc:
            raise RecordingError(f"{self._cls.__name__} record: {exc}") from None


class ItemDecoder:
    """Snapshots from item maps read with the header's field names. Consecutive maps of one
    segment share the items that did not change, so each decoded record is kept by the identity
    of its item and only what changed is decoded again."""

    def __init__(self, schema: dict[str, list[str]]) -> None:
        self._gpu = _RowReader(GpuInfo, schema["GpuInfo"])
        self._host = _RowReader(HostProcess, schema["HostProcess"])
        self._proc = _RowReader(GpuProcess, [n for n in schema["GpuProcess"] if n != "host"])
        self._cache: dict[str, tuple[Any, Any, Any]] = {}

    def _cached(self, key: str, raw: Any, build: Any, extra: Any = None) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[0] is raw and hit[1] is extra:
            return hit[2]
        value = build()
        self._cache[key] = (raw, extra, value)
        return value

    def _section(self, items: dict[str, Any], prefix: str) -> Any:
        tag = items.get(prefix, dataclasses.MISSING)
        if tag is dataclasses.MISSING:
            return None
        if tag is None:
            return decode_value(items.get(f"{prefix}."))
        cls = _resolve(tag)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        start = len(prefix) + 1
        kwargs = {k[start:]: self._cached(k, v, lambda v=v: decode_value(v)) for k, v in items.items()
                  if k.startswith(prefix + ".") and k[start:] in names}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise RecordingError(f"{cls.__name__} record: {exc}") from None

    def decode(self, items: dict[str, Any], timestamp: float) -> NodeSnapshot:
        hostname, source, driver, cuda, nvml = (list(items["m"]) + [None] * 5)[:5]
        hosts = {k: self._cached(k, v, lambda v=v: self._host(v))
                 for k, v in items.items() if k[0] == "h"}
        gpus = tuple(self._cached(f"g{i}", items[f"g{i}"], lambda i=i: self._gpu(items[f"g{i}"]))
                     for i in range(sum(1 for k in items if k[0] == "g")))
        procs = []
        for i in range(sum(1 for k in items if k[0] == "p")):
            row = items[f"p{i}"]
            host = hosts[row[-1]] if row[-1] is not None else None
            procs.append(self._cached(f"p{i}", row, lambda row=row, host=host: self._proc(row[:-1], host=host), host))
        errors = []
        extra = {}
        for prefix, attr in _SECTIONS.items():
            try:
                extra[attr] = self._section(items, prefix)
            except RecordingError as exc:
                extra[attr] = None
                errors.append(SourceError("replay", f"{attr} state not replayed: {exc}"))
        return NodeSnapshot(
            timestamp=timestamp, hostname=hostname, source=source, driver_version=driver, cuda_version=cuda,
            nvml_version=nvml, gpus=gpus, gpu_processes=tuple(procs),
            ancestors={pid: hosts[f"h{pid}"] for pid in items["a"]},
            errors=tuple(SourceError(s, m) for s, m in items["e"]) + tuple(errors),
            **extra,
        )


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns ``old`` into ``new``: ``s`` whole items, ``c`` list positions, ``x`` drops."""
    whole: dict[str, Any] = {}
    patch: dict[str, dict[str, Any]] = {}
    for key, value in new.items():
        before = old.get(key, dataclasses.MISSING)
        if before == value and type(before) is type(value):
            continue
        if (isinstance(value, list) and isinstance(before, list) and len(value) == len(before)
                and key[0] in "ghp"):
            patch[key] = {str(i): v for i, (a, v) in enumerate(zip(before, value)) if a != v or type(a) is not type(v)}
        else:
            whole[key] = value
    out: dict[str, Any] = {}
    if whole:
        out["s"] = whole
    if patch:
        out["c"] = patch
    gone = [k for k in old if k not in new]
    if gone:
        out["x"] = gone
    return out


def apply(items: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``items`` with ``delta`` applied (a new map; ``items`` is left as it was)."""
    out = dict(items)
    for key in delta.get("x", ()):
        out.pop(key, None)
    out.update(delta.get("s", {}))
    for key, changes in delta.get("c", {}).items():
        row = list(out[key])
        for pos, value in changes.items():
            row[int(pos)] = value
        out[key] = row
    return out


# -- writing -----------------------------------------------------------------------------------

def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class Recorder:
    """Appends snapshots to a new recording; every ``write`` reaches the OS before it returns."""

    def __init__(self, path: str | Path | BinaryIO, hostname: str, interval: float | None,
                 keyframe_every: int = KEYFRAME_EVERY, level: int = 6) -> None:
        self._own = not hasattr(path, "write")
        self._file: BinaryIO = open(path, "wb") if self._own else path  # type: ignore[arg-type]
        self._keyframe_every = keyframe_every
        self._level = level
        self._stream: Any = None
        self._items: dict[str, Any] | None = None
        self._in_segment = 0
        self.count = 0
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "vramtop_version": __version__,
            "hostname": hostname, "interval": interval,
            "fields": {name: _fields(cls) for name, cls in _RECORD_CLASSES.items()},
        }
        self._file.write(MAGIC + _dumps(header) + b"\n")
        self._file.flush()

    def write(self, snapshot: NodeSnapshot) -> None:
        items = snapshot_items(snapshot)
        if self._stream is None or self._in_segment >= self._keyframe_every:
            if self._stream is not None:
                self._file.write(self._stream.flush(zlib.Z_FINISH))
            self._stream = zlib.compressobj(self._level)
            self._in_segment = 0
            kind, payload = _KEY, _dumps(items)
        else:
            kind, payload = _DELTA, _dumps(diff(self._items or {}, items))
        record = _REC.pack(len(payload), zlib.crc32(payload), snapshot.timestamp, kind) + payload
        self._file.write(self._stream.compress(record) + self._stream.flush(zlib.Z_SYNC_FLUSH))
        self._file.flush()
        self._items = items
        self._in_segment += 1
        self.count += 1

    def close(self) -> None:
        """End the last stream cleanly (a file never closed still reads: it just lacks the end)."""
        if self._stream is not None:
            self._file.write(self._stream.flush(zlib.Z_FINISH))
            self._stream = None
        self._file.flush()
        if self._own:
            self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(path: str | Path, snapshots: list[NodeSnapshot], interval: float | None = None) -> int:
    """Write ``snapshots`` as one recording; returns how many were written."""
    if not snapshots:
        raise RecordingError("nothing to record: no snapshot yet")
    with Recorder(path, snapshots[0].hostname, interval) as rec:
        for s in snapshots:
            rec.write(s)
        return rec.count


# -- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    format_version: int
    vramtop_version: str
    hostname: str
    interval: float | None
    fields: dict[str, list[str]]


def read_header(f: BinaryIO, name: str) -> Header:
    """The header line, or RecordingError saying in one line why this file cannot be replayed."""
    line = f.readline(_MAX_HEADER)
    if not line.startswith(MAGIC):
        raise RecordingError(f"{name}: not a vramtop recording")
    if not line.endswith(b"\n"):
        raise RecordingError(f"{name}: the recording's header is incomplete (the file was cut at byte {len(line)})")
    try:
        data = json.loads(line[len(MAGIC):])
        version = data["format_version"]
    except (ValueError, KeyError, TypeError):
        raise RecordingError(f"{name}: the recording's header is damaged") from None
    written_by = data.get("vramtop_version", "an unknown version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RecordingError(
            f"{name}: recording format {version} (written by vramtop {written_by}) is newer than this "
            f"vramtop {__version__} reads (format {OLDEST_READABLE}-{FORMAT_VERSION}); upgrade vramtop to replay it")
    if version < OLDEST_READABLE:
        raise RecordingError(
            f"{name}: recording format {version} (written by vramtop {written_by}) is older than this "
            f"vramtop {__version__} reads (format {OLDEST_READABLE}-{FORMAT_VERSION}); replay it with vramtop {written_by}")
    fields = data.get("fields") or {}
    missing = [n for n in _RECORD_CLASSES if not isinstance(fields.get(n), list)]
    if missing:
        raise RecordingError(f"{name}: the recording's header lacks the field names of {', '.join(missing)}")
    return Header(version, written_by, str(data.get("hostname", "")), data.get("interval"), fields)


def _records(chunks: Iterator[bytes], offset: int) -> Iterator[tuple[str, Any, Any, Any]]:
    """Walk concatenated zlib streams from file ``offset``. Yields ("segment", file offset),
    ("record", timestamp, kind, payload) and at most one ("end", reason or None, bytes)."""
    stream = None
    buf = bytearray()
    pos = offset
    pending = b""
    while True:
        if not pending:
            pending = next(chunks, b"")
            if not pending:
                break
        if stream is None:
            stream = zlib.decompressobj()
            buf.clear()
            yield ("segment", pos, None, None)
        saved = stream.copy()
        damaged = False
        try:
            out = stream.decompress(pending)
            pos += len(pending) - len(stream.unused_data)
            pending = stream.unused_data
        except zlib.error:  # keep what decodes before the damage: feed it again a little at a time
            stream, out, damaged = saved, b"", True
            for i in range(0, len(pending), 64):
                try:
                    out += stream.decompress(pending[i:i + 64])
                except zlib.error:
                    break
                pos += min(64, len(pending) - i)
        buf += out
        start = 0
        while len(buf) - start >= _REC.size:
            size, crc, ts, kind = _REC.unpack_from(buf, start)
            end = start + _REC.size + size
            if end > len(buf):
                break
            payload = bytes(buf[start + _REC.size:end])
            if zlib.crc32(payload) != crc or kind not in (_KEY, _DELTA):
                yield ("end", f"damaged data before byte {pos}", None, None)
                return
            yield ("record", ts, kind, payload)
            start = end
        del buf[:start]
        if damaged:
            yield ("end", f"damaged data at byte {pos}", None, None)
            return
        if stream.eof:
            if buf:
                yield ("end", f"damaged data before byte {pos}", None, None)
                return
            stream = None
    if stream is not None:
        yield ("end", _CUT if buf else _OPEN, None, None)
        return
    yield ("end", None, None, None)


def _chunks(f: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


class Recording:
    """An open recording: its header, the time of each complete snapshot, and each snapshot on
    demand (decoded from its segment's keyframe; the last segment read is kept)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problem: str | None = None  # one line: why the end of the file was not replayed
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            raise RecordingError(f"{path}: {exc.strerror or exc}") from None
        with f:
            self.header = read_header(f, str(path))
            self._data_start = f.tell()
            self.timestamps: list[float] = []
            self._segments: list[tuple[int, int]] = []  # (file offset, index of its first snapshot)
            seg_offset = self._data_start
            first_in_segment = True
            for what, a, b, _ in _records(_chunks(f), self._data_start):
                if what == "segment":
                    seg_offset, first_in_segment = a, True
                elif what == "record":
                    if first_in_segment:
                        if b != _KEY:
                            self.problem = f"damaged data: segment at byte {seg_offset} starts without a keyframe"
                            break
                        self._segments.append((seg_offset, len(self.timestamps)))
                        first_in_segment = False
                    self.timestamps.append(a)
                elif a is not None:
                    self.problem = a
        if not self.timestamps:
            raise RecordingError(f"{path}: the recording holds no complete snapshot"
                                 + (f" ({self.problem})" if self.problem else ""))
        self._cache: tuple[int, list[NodeSnapshot]] | None = None

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def hostname(self) -> str:
        return self.header.hostname

    def _segment_of(self, index: int) -> int:
        lo, hi = 0, len(self._segments) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._segments[mid][1] <= index:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _decode_segment(self, seg: int) -> list[NodeSnapshot]:
        offset, first = self._segments[seg]
        last = self._segments[seg + 1][1] if seg + 1 < len(self._segments) else len(self.timestamps)
        out: list[NodeSnapshot] = []
        items: dict[str, Any] = {}
        decoder = ItemDecoder(self.header.fields)
        with open(self.path, "rb") as f:
            f.seek(offset)
            for what, ts, kind, payload in _records(_chunks(f, 1 << 16), offset):
                if what == "segment" and out:
                    break
                if what != "record":
                    continue
                try:
                    data = json.loads(payload)
                except ValueError:
                    raise RecordingError(f"{self.path}: damaged snapshot {first + len(out)}") from None
                items = data if kind == _KEY else apply(items, data)
                out.append(decoder.decode(items, ts))
                if first + len(out) >= last:
                    break
        return out

    def snapshot(self, index: int) -> NodeSnapshot:
        """The ``index``-th snapshot exactly as it was recorded."""
        if not 0 <= index < len(self.timestamps):
            raise IndexError(index)
        seg = self._segment_of(index)
        if self._cache is None or self._cache[0] != seg:
            self._cache = (seg, self._decode_segment(seg))
        return self._cache[1][index - self._segments[seg][1]]

    def __iter__(self) -> Iterator[NodeSnapshot]:
        for i in range(len(self.timestamps)):
            yield self.snapshot(i)


def open_recording(path: str | Path) -> Recording:
    """Open a recording (RecordingError with one line when it cannot be replayed at all)."""
    return Recording(path)
