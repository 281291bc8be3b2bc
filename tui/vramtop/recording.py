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
and telemetry records are encoded field by name with a short type tag from ``record_types``.

A file is data, never code, and anyone may have made it: it can name only the types of
``record_types``, every field read is checked against its declared type (a figure that is text,
NaN or below 0 is damage), and what decompression makes, how big a record and how many records
there may be are bounded by the file's size. Damage is a ``RecordingError`` of one line.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import stat
import struct
import types
import typing
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from vramtop import __version__
from vramtop.record_types import RECORD_TYPES, tag_of, type_of
from vramtop.regular_file import NotRegularFile, open_regular
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
# Bounds on what a file can make a replay hold or do. A snapshot of a busy 8-GPU node is tens of
# KB; vramtop's own files expand about 8-20 fold, a crafted stream up to 1,032 fold. Every record
# vramtop writes ends with a sync flush, an empty stored block of at least 4 bytes, so a file
# holds at most one record per 4 of its bytes; a month at 1 Hz is 2.6 million snapshots.
_MAX_RECORD = 16 << 20
_MAX_EXPANSION = 64
_EXPANSION_ALLOWANCE = 4 << 20
_MIN_RECORD_BYTES = 4
_STEP = 1 << 20  # most bytes one decompress call may make
_MAX_SNAPSHOTS = 3_000_000
_LATEST_TIME = 1e11  # the year 5138: a timestamp past it is damage, not a clock
_CUT = "the recording was cut mid-snapshot; replaying up to its last complete snapshot"
_OPEN = "the recording was not closed (still being written, or its recorder was stopped)"


class RecordingError(Exception):
    """A recording that cannot be read at all; the message is one line naming why."""


def _quote(value: Any, limit: int = 48) -> str:
    """A value from a file, for a message: its repr, cut to a few characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _open(path: str | Path) -> BinaryIO:
    """``path`` for reading when it is a regular file (``regular_file``); RecordingError if not."""
    try:
        return os.fdopen(open_regular(path), "rb")
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror or exc}") from None
    except NotRegularFile as exc:
        raise RecordingError(f"{path}: {exc}") from None


# -- records of the Ray and telemetry sections, and figures of GPU and process rows ------------

_SCALARS = frozenset({str, int, float, bool, type(None)})


def encode_value(value: Any) -> Any:
    """Any value of a snapshot's sections as JSON data: records by field name with their ``@``
    type tag (fields left at their default are omitted), tuples as lists, other lists and maps
    whose keys are not plain text under ``@list`` / ``@map``."""
    if type(value) in _SCALARS:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        tag = tag_of(type(value))
        if tag is None:
            raise TypeError(f"cannot record a {type(value).__name__}: it has no tag in vramtop.record_types")
        out: dict[str, Any] = {"@": tag}
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


_NAMES = {cls.__name__: cls for cls in (*RECORD_TYPES.values(), *_RECORD_CLASSES.values())}


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    """The declared type of each field of ``cls`` that its constructor takes."""
    hints = typing.get_type_hints(cls, localns=_NAMES)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _record(data: dict[str, Any], expected: type | None = None) -> Any:
    """A record from its tagged JSON data, every field checked against its declared type."""
    cls = type_of(data.get("@"))
    if cls is None:
        raise RecordingError(f"unknown record type {_quote(data.get('@'))}")
    if expected is not None and not issubclass(cls, expected):
        raise RecordingError(f"a {cls.__name__} record where a {expected.__name__} belongs")
    hints = _hints(cls)
    kwargs = {}
    for name, value in data.items():
        if name in hints:
            try:
                kwargs[name] = _typed(hints[name], value)
            except RecordingError as exc:
                raise RecordingError(f"{cls.__name__} field '{name}': {exc}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"{cls.__name__} record: {str(exc)[:80]}") from None


def _typed(hint: Any, data: Any) -> Any:
    """``data`` read as a value of type ``hint``; RecordingError naming what it should be."""
    return _reader(hint)(data)


_INT_LIMIT = 1 << 63


def _read_bool(data: Any) -> bool:
    if type(data) is bool:
        return data
    raise RecordingError(f"must be true or false, got {_quote(data)}")


def _read_int(data: Any) -> int:
    if type(data) is int and -_INT_LIMIT <= data < _INT_LIMIT:
        return data
    raise RecordingError(f"must be a whole number, got {_quote(data)}")


def _read_float(data: Any) -> float:
    if (type(data) is float and math.isfinite(data)) or (type(data) is int and -_INT_LIMIT <= data < _INT_LIMIT):
        return data
    raise RecordingError(f"must be a finite number, got {_quote(data)}")


def _read_str(data: Any) -> str:
    if type(data) is str:
        return data
    raise RecordingError(f"must be text, got {_quote(data)}")


@lru_cache(maxsize=None)
def _reader(hint: Any) -> Any:
    """A function that reads JSON data as a value of type ``hint`` (made once per type)."""
    simple = {bool: _read_bool, int: _read_int, float: _read_float, str: _read_str}
    if hint in simple:
        return simple[hint]
    if hint is Any:
        return decode_value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        nullable = type(None) in args
        options = [_reader(a) for a in args if a is not type(None)]

        def read_union(data: Any) -> Any:
            if data is None:
                if nullable:
                    return None
                raise RecordingError("is missing")
            problem = None
            for option in options:
                try:
                    return option(data)
                except RecordingError as exc:
                    problem = problem or exc
            raise problem or RecordingError("is missing")
        return read_union
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _reader(args[0])

            def read_tuple(data: Any) -> tuple:
                if type(data) is not list:
                    raise RecordingError(f"must be a list, got {_quote(data)}")
                return tuple(map(item, data))
            return read_tuple
        items = [_reader(a) for a in args]

        def read_fixed(data: Any) -> tuple:
            if type(data) is not list or len(data) != len(items):
                raise RecordingError(f"must be a list of {len(items)} values, got {_quote(data)}")
            return tuple(read(v) for read, v in zip(items, data))
        return read_fixed
    if origin is list:
        item = _reader(args[0] if args else Any)

        def read_list(data: Any) -> list:
            if not (type(data) is dict and type(data.get("@list")) is list):
                raise RecordingError(f"must be a list, got {_quote(data)}")
            return [item(v) for v in data["@list"]]
        return read_list
    if origin is dict or origin is Mapping:
        key, value = (_reader(a) for a in (args or (Any, Any)))

        def read_map(data: Any) -> dict:
            if type(data) is dict and "@map" in data:
                pairs = data["@map"]
                if not (type(pairs) is list and all(type(p) is list and len(p) == 2 for p in pairs)):
                    raise RecordingError("must be a list of key and value pairs")
            elif type(data) is dict and "@" not in data and "@list" not in data:
                pairs = data.items()
            else:
                raise RecordingError(f"must be a map, got {_quote(data)}")
            try:
                return {key(k): value(v) for k, v in pairs}
            except TypeError:  # a key that Python cannot hash (a map as a key)
                raise RecordingError("has a key that is not a plain value") from None
        return read_map
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        def read_record(data: Any) -> Any:
            if type(data) is not dict:
                raise RecordingError(f"must be a {hint.__name__} record, got {_quote(data)}")
            return _record(data, hint)
        return read_record
    return decode_value


def decode_value(data: Any) -> Any:
    """The inverse of ``encode_value`` for a value of no declared type. Records are only the
    types of ``record_types``, each field checked against its type; fields this vramtop does not
    know are dropped, fields the file lacks take their defaults; RecordingError otherwise."""
    if isinstance(data, list):
        return tuple(decode_value(v) for v in data)
    if isinstance(data, dict):
        if "@" in data:
            return _record(data)
        if "@list" in data:
            return _typed(list[Any], data)
        if "@map" in data:
            return _typed(Mapping[Any, Any], data)
        return {k: decode_value(v) for k, v in data.items()}
    if isinstance(data, float) and not math.isfinite(data):
        raise RecordingError(f"must be a finite number, got {_quote(data)}")
    return data


# -- snapshot <-> flat items -------------------------------------------------------------------

def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _row(obj: Any, names: list[str]) -> list[Any]:
    out = []
    for name in names:
        value = getattr(obj, name)
        if type(value) in _SCALARS:  # nearly every figure: the fast way
            out.append(value)
        elif type(value) is tuple and all(type(v) in _SCALARS for v in value):
            out.append(list(value))
        else:
            out.append(encode_value(value))
    return out


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
            tag = tag_of(type(value))
            if tag is None:
                raise TypeError(f"cannot record a {type(value).__name__}: it has no tag in vramtop.record_types")
            items[prefix] = tag
            for f in dataclasses.fields(value):
                items[f"{prefix}.{f.name}"] = encode_value(getattr(value, f.name))
        else:
            items[prefix] = None
            items[f"{prefix}."] = encode_value(value)
    return items


class _RowReader:
    """Builds records of ``cls`` from positional rows written with ``names``: fields this vramtop
    lacks are skipped, fields the file lacks take their defaults. Every figure is checked: of
    the declared type, and no number below 0 (memory, PIDs, indices, percentages, watts)."""

    def __init__(self, cls: type, names: list[str]) -> None:
        hints = _hints(cls)
        self._cls = cls
        self._plan = [(pos, name, _reader(hints[name])) for pos, name in enumerate(names) if name in hints]

    def __call__(self, row: Any, **extra: Any) -> Any:
        if not isinstance(row, list):
            raise RecordingError(f"a {self._cls.__name__} record must be a list, got {_quote(row)}")
        kwargs = {}
        for pos, name, read in self._plan:
            if pos < len(row):
                try:
                    value = read(row[pos])
                except RecordingError as exc:
                    raise RecordingError(f"{self._cls.__name__} field '{name}': {exc}") from None
                if (type(value) is int or type(value) is float) and value < 0:
                    raise RecordingError(f"{self._cls.__name__} field '{name}': must not be below 0, got {value}")
                kwargs[name] = value
        try:
            return self._cls(**kwargs, **extra)
        except (TypeError, ValueError) as exc:
            raise RecordingError(f"{self._cls.__name__} record: {str(exc)[:80]}") from None


def _numbered(items: dict[str, Any], letter: str) -> int:
    """How many ``<letter>0``, ``<letter>1``... items there are; they must be numbered from 0."""
    count = sum(1 for k in items if k[:1] == letter)
    if any(f"{letter}{i}" not in items for i in range(count)):
        raise RecordingError(f"its '{letter}' items are not numbered 0 to {count - 1}")
    return count


class ItemDecoder:
    """Snapshots from item maps read with the header's field names. Consecutive maps of one
    segment share the items that did not change, so each decoded record is kept by the identity
    of its item and only what changed is decoded again. A map that is not what vramtop writes
    raises RecordingError naming the first thing wrong."""

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
        cls = type_of(tag)
        if cls is None:
            raise RecordingError(f"unknown record type {_quote(tag)}")
        hints = _hints(cls)
        start = len(prefix) + 1
        kwargs = {}
        for k, v in items.items():
            if k.startswith(prefix + ".") and k[start:] in hints:
                try:
                    kwargs[k[start:]] = self._cached(k, v, lambda k=k, v=v: _typed(hints[k[start:]], v))
                except RecordingError as exc:
                    raise RecordingError(f"{cls.__name__} field '{k[start:]}': {exc}") from None
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise RecordingError(f"{cls.__name__} record: {str(exc)[:80]}") from None

    def decode(self, items: Any, timestamp: float) -> NodeSnapshot:
        if not isinstance(items, dict):
            raise RecordingError(f"a snapshot must be a map, got {_quote(items)}")
        meta, errors_in, pids = items.get("m"), items.get("e"), items.get("a")
        if not (isinstance(meta, list) and len(meta) <= 5 and all(v is None or isinstance(v, str) for v in meta)):
            raise RecordingError(f"its 'm' item must list up to 5 texts, got {_quote(meta)}")
        if not (isinstance(errors_in, list) and all(
                isinstance(e, list) and len(e) == 2 and all(isinstance(t, str) for t in e) for e in errors_in)):
            raise RecordingError(f"its 'e' item must list [source, message] pairs, got {_quote(errors_in)}")
        if not (isinstance(pids, list) and all(isinstance(p, int) and f"h{p}" in items for p in pids)):
            raise RecordingError(f"its 'a' item must list PIDs that have host records, got {_quote(pids)}")
        hostname, source, driver, cuda, nvml = (meta + [None] * 5)[:5]
        hosts = {k: self._cached(k, v, lambda v=v: self._host(v))
                 for k, v in items.items() if k[:1] == "h"}
        gpus = tuple(self._cached(f"g{i}", items[f"g{i}"], lambda i=i: self._gpu(items[f"g{i}"]))
                     for i in range(_numbered(items, "g")))
        procs = []
        for i in range(_numbered(items, "p")):
            row = items[f"p{i}"]
            host_key = row[-1] if isinstance(row, list) and row else ...
            if not (host_key is None or isinstance(host_key, str) and host_key in hosts):
                raise RecordingError(f"process record p{i} must end with the key of a host record")
            host = hosts[host_key] if host_key is not None else None
            procs.append(self._cached(f"p{i}", row, lambda row=row, host=host: self._proc(row[:-1], host=host), host))
        errors = []
        extra = {}
        for prefix, attr in _SECTIONS.items():
            try:
                extra[attr] = self._section(items, prefix)
            except (RecordingError, RecursionError) as exc:
                extra[attr] = None
                reason = exc if isinstance(exc, RecordingError) else "nested too deeply"
                errors.append(SourceError("replay", f"{attr} state not replayed: {reason}"))
        return NodeSnapshot(
            timestamp=timestamp, hostname=hostname or "", source=source or "replay", driver_version=driver,
            cuda_version=cuda, nvml_version=nvml, gpus=gpus, gpu_processes=tuple(procs),
            ancestors={pid: hosts[f"h{pid}"] for pid in pids},
            errors=tuple(SourceError(s, m) for s, m in errors_in) + tuple(errors),
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


def apply(items: dict[str, Any], delta: Any) -> dict[str, Any]:
    """``items`` with ``delta`` applied (a new map; ``items`` is left as it was). A delta that
    does not fit ``items`` raises RecordingError."""
    if not isinstance(delta, dict):
        raise RecordingError(f"a delta must be a map, got {_quote(delta)}")
    gone, whole, patch = delta.get("x", []), delta.get("s", {}), delta.get("c", {})
    if not (isinstance(gone, list) and all(isinstance(k, str) for k in gone)
            and isinstance(whole, dict) and isinstance(patch, dict)):
        raise RecordingError("a delta's 'x', 's' and 'c' must be a list of keys and two maps")
    out = dict(items)
    for key in gone:
        out.pop(key, None)
    out.update(whole)
    for key, changes in patch.items():
        row = out.get(key)
        if not (isinstance(row, list) and isinstance(changes, dict)):
            raise RecordingError(f"a delta patches {_quote(key)}, which is not a list")
        row = list(row)
        for pos, value in changes.items():
            if not (pos.isascii() and pos.isdigit() and int(pos) < len(row)):
                raise RecordingError(f"a delta patches position {_quote(pos)} of {_quote(key)}, which it lacks")
            row[int(pos)] = value
        out[key] = row
    return out


# -- writing -----------------------------------------------------------------------------------

def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _create(path: str | Path) -> BinaryIO:
    """``path`` emptied for a new recording, with an exclusive lock held until it is closed: a
    second recorder on the same file is refused (RecordingError) instead of truncating it."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise RecordingError(f"cannot write {path}: not a regular file")
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordingError(f"cannot write {path}: another vramtop is recording to it") from None
        os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


class Recorder:
    """Appends snapshots to a new recording; every ``write`` reaches the OS before it returns.
    Given a path, it holds the file's lock (``flock``) while it writes: one recorder per file."""

    def __init__(self, path: str | Path | BinaryIO, hostname: str, interval: float | None,
                 keyframe_every: int = KEYFRAME_EVERY, level: int = 6) -> None:
        self._own = not hasattr(path, "write")
        self._file: BinaryIO = _create(path) if self._own else path  # type: ignore[arg-type]
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
    except (ValueError, KeyError, TypeError, RecursionError):
        raise RecordingError(f"{name}: the recording's header is damaged") from None
    written_by = data.get("vramtop_version")
    written_by = written_by[:24] if isinstance(written_by, str) and written_by.isprintable() else "an unknown version"
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RecordingError(
            f"{name}: recording format {_quote(version)} (written by vramtop {written_by}) is newer than this "
            f"vramtop {__version__} reads (format {OLDEST_READABLE}-{FORMAT_VERSION}); upgrade vramtop to replay it")
    if version < OLDEST_READABLE:
        raise RecordingError(
            f"{name}: recording format {version} (written by vramtop {written_by}) is older than this "
            f"vramtop {__version__} reads (format {OLDEST_READABLE}-{FORMAT_VERSION}); replay it with vramtop {written_by}")
    fields = data.get("fields")
    fields = fields if isinstance(fields, dict) else {}
    missing = [n for n in _RECORD_CLASSES
               if not (isinstance(fields.get(n), list) and all(isinstance(v, str) for v in fields[n]))]
    if missing:
        raise RecordingError(f"{name}: the recording's header lacks the field names of {', '.join(missing)}")
    hostname, interval = data.get("hostname"), data.get("interval")
    if not (isinstance(interval, (int, float)) and not isinstance(interval, bool) and 0 < interval < 1e9):
        interval = None
    return Header(version, written_by, hostname if isinstance(hostname, str) else "", interval,
                  {n: fields[n] for n in _RECORD_CLASSES})


def _records(chunks: Iterator[bytes], offset: int) -> Iterator[tuple[str, Any, Any, Any]]:
    """Walk concatenated zlib streams from file ``offset``. Yields ("segment", file offset),
    ("record", timestamp, kind, payload) and at most one ("end", reason or None, bytes).
    Memory and time stay bounded by the file's size whatever it holds: a record is at most
    ``_MAX_RECORD`` bytes, one decompress call makes at most ``_STEP``, and data that expands
    more than ``_MAX_EXPANSION`` fold, or packs a record in fewer than ``_MIN_RECORD_BYTES``, is
    refused as not written by vramtop."""
    stream = None
    buf = bytearray()
    pos = offset
    made = 0
    count = 0
    pending = memoryview(b"")
    careful = False  # after damage: feed 64 bytes at a time to keep what decodes before it
    while True:
        if not pending:
            pending = memoryview(next(chunks, b""))
            if not pending:
                break
        if stream is None:
            stream = zlib.decompressobj()
            buf.clear()
            careful = False
            yield ("segment", pos, None, None)
        piece = pending[:64] if careful else pending
        saved = stream.copy()
        try:
            out = stream.decompress(piece, _STEP)
        except zlib.error:
            if careful:
                yield ("end", f"damaged data at byte {pos}", None, None)
                return
            stream, careful = saved, True
            continue
        consumed = len(piece) - len(stream.unused_data if stream.eof else stream.unconsumed_tail)
        pos += consumed
        pending = pending[consumed:]
        made += len(out)
        if made > _MAX_EXPANSION * (pos - offset) + _EXPANSION_ALLOWANCE:
            yield ("end", f"damaged data at byte {pos}: it expands more than {_MAX_EXPANSION}-fold, "
                          "which no vramtop recording does", None, None)
            return
        buf += out
        start = 0
        while len(buf) - start >= _REC.size:
            size, crc, ts, kind = _REC.unpack_from(buf, start)
            if size > _MAX_RECORD or kind not in (_KEY, _DELTA) or not 0 <= ts < _LATEST_TIME:
                yield ("end", f"damaged data before byte {pos}", None, None)
                return
            end = start + _REC.size + size
            if end > len(buf):
                break
            payload = bytes(buf[start + _REC.size:end])
            if zlib.crc32(payload) != crc:
                yield ("end", f"damaged data before byte {pos}", None, None)
                return
            count += 1
            if count > (pos - offset) // _MIN_RECORD_BYTES + 1:
                yield ("end", f"damaged data before byte {pos}: more records than its bytes can hold, "
                              "which no vramtop recording has", None, None)
                return
            yield ("record", ts, kind, payload)
            start = end
        del buf[:start]
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
    demand (decoded from its segment's keyframe; the last segment read is kept). Only a regular
    file opens; its first snapshot is decoded on opening, so a file whose first snapshot is
    damaged is refused at once. A later damaged snapshot raises RecordingError when asked for."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problem: str | None = None  # one line: why the end of the file was not replayed
        with _open(path) as f:
            self.header = read_header(f, str(path))
            self._data_start = f.tell()
            self.timestamps = array("d")
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
                    if len(self.timestamps) == _MAX_SNAPSHOTS:
                        self.problem = f"replaying its first {_MAX_SNAPSHOTS:,} snapshots, the most vramtop replays"
                        break
                    self.timestamps.append(a)
                elif a is not None:
                    self.problem = a
        if not self.timestamps:
            raise RecordingError(f"{path}: the recording holds no complete snapshot"
                                 + (f" ({self.problem})" if self.problem else ""))
        self._cache: tuple[int, list[NodeSnapshot]] | None = (0, self._decode_segment(0, 0, whole=False))

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

    def _decode_segment(self, seg: int, upto: int, whole: bool = True) -> list[NodeSnapshot]:
        """The snapshots of segment ``seg`` (only up to index ``upto`` unless ``whole``), or up to
        the first that is damaged (RecordingError when that is ``upto`` or before)."""
        offset, first = self._segments[seg]
        last = self._segments[seg + 1][1] if seg + 1 < len(self._segments) else len(self.timestamps)
        out: list[NodeSnapshot] = []
        items: dict[str, Any] = {}
        decoder = ItemDecoder(self.header.fields)
        with _open(self.path) as f:
            f.seek(offset)
            for what, ts, kind, payload in _records(_chunks(f, 1 << 16), offset):
                if what == "segment" and out:
                    break
                if what != "record":
                    continue
                try:
                    data = json.loads(payload)
                    items = data if kind == _KEY else apply(items, data)
                    out.append(decoder.decode(items, ts))
                except (ValueError, RecordingError, RecursionError) as exc:
                    if first + len(out) > upto:
                        break
                    why = exc if isinstance(exc, RecordingError) else "not the JSON vramtop writes"
                    raise RecordingError(f"{self.path}: snapshot {first + len(out) + 1} is damaged: {why}") from None
                if first + len(out) >= (last if whole else upto + 1):
                    break
        if first + len(out) <= upto:
            raise RecordingError(f"{self.path}: snapshot {upto + 1} could not be read again (the file changed)")
        return out

    def snapshot(self, index: int) -> NodeSnapshot:
        """The ``index``-th snapshot exactly as it was recorded."""
        if not 0 <= index < len(self.timestamps):
            raise IndexError(index)
        seg = self._segment_of(index)
        offset = index - self._segments[seg][1]
        if self._cache is None or self._cache[0] != seg or offset >= len(self._cache[1]):
            self._cache = (seg, self._decode_segment(seg, index))
        return self._cache[1][offset]

    def __iter__(self) -> Iterator[NodeSnapshot]:
        for i in range(len(self.timestamps)):
            yield self.snapshot(i)
