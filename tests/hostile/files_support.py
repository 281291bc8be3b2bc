"""Hostile files for the tests of what vramtop reads from disk: recordings crafted byte by byte
(a real header and zlib stream, records with valid CRCs, whatever content a test wants) and a
child ``vramtop`` run under a memory and a time bound."""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from vramtop import recording
from vramtop.ray.demo import DemoRayPoller
from vramtop.sources.demo import DemoSource
from vramtop.telemetry.demo import DemoTelemetry

MEMORY = 400 << 20  # address space a child may map: vramtop --once uses about 30 MiB resident
SECONDS = 20.0  # wall time a child may take; every case here answers within a few seconds
KEY, DELTA = 1, 2


def demo_items() -> dict[str, Any]:
    """The item map of one demo snapshot with Ray state and telemetry, as a recorder writes it."""
    clock = lambda: 1_700_000_000.0  # noqa: E731
    snap = dataclasses.replace(DemoSource(clock=clock).sample(), ray=DemoRayPoller(clock=clock).poll())
    return recording.snapshot_items(dataclasses.replace(snap, telemetry=DemoTelemetry(clock=clock).poll(snap)))


def header(**changes: Any) -> bytes:
    data = {"format": "vramtop-recording", "format_version": 1, "vramtop_version": "0.1.0",
            "hostname": "demo-a10-node", "interval": 1.0,
            "fields": {n: [f.name for f in dataclasses.fields(c)]
                       for n, c in recording._RECORD_CLASSES.items()}}
    data.update(changes)
    return recording.MAGIC + json.dumps(data).encode() + b"\n"


def record(payload: bytes, ts: float = 1_700_000_000.0, kind: int = KEY, size: int | None = None) -> bytes:
    """One record as the format frames it, with the CRC of its payload."""
    return recording._REC.pack(len(payload) if size is None else size, zlib.crc32(payload), ts, kind) + payload


def json_record(data: Any, ts: float = 1_700_000_000.0, kind: int = KEY) -> bytes:
    return record(json.dumps(data).encode(), ts, kind)


def write(path: Path, *streams: bytes, head: bytes | None = None, then: bytes = b"", times: int = 0) -> Path:
    """A recording: the header, then each of ``streams`` (raw record bytes) as one zlib stream;
    the last stream goes on with ``then`` repeated ``times`` times. That tail is compressed once
    and its deflate blocks written ``times`` times (a full flush makes each copy the same bytes),
    so gigabytes of content cost a second to make; the stream's checksum is then not that of its
    content, which no reader here gets far enough to see."""
    with open(path, "wb") as f:
        f.write(header() if head is None else head)
        for n, raw in enumerate(streams):
            z = zlib.compressobj(9)
            f.write(z.compress(raw) + z.flush(zlib.Z_FULL_FLUSH))
            if n == len(streams) - 1 and times:
                block = z.compress(then) + z.flush(zlib.Z_FULL_FLUSH)
                assert z.compress(then) + z.flush(zlib.Z_FULL_FLUSH) == block
                for _ in range(times):
                    f.write(block)
            f.write(z.flush())
    return path


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run(*args: str, env: dict[str, str] | None = None, code: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """``vramtop ARGS`` (or ``python -c CODE ARGS``) in a child under MEMORY; the result and the
    seconds it took. A child past SECONDS fails the test (subprocess.TimeoutExpired)."""
    argv = [sys.executable, "-c", code, *args] if code is not None else [sys.executable, "-m", "vramtop", *args]
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=SECONDS, env=env, preexec_fn=_limits)
    return result, time.monotonic() - start


def one_line(result: subprocess.CompletedProcess) -> str:
    """The child's stderr, which must be exactly one short line."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert len(lines[0]) < 400, lines[0][:500]
    return lines[0]
