"""A model spec from a GGUF file's header alone, read in pieces: by HTTP range requests for a
file that is not here, by ``pread`` for a local one (``specs.from_gguf``): one header walk for both.

The caller gives ``fetch(first, last) -> bytes`` (an inclusive byte range, as HTTP's Range
header counts) and the file's size. A GGUF header has no length field, so ``_walk`` steps over
it (key/value pairs, then tensor infos) and asks for a longer prefix until it ends inside the
bytes fetched. The header then goes, without the tokenizer's tables, at the start of a sparse
file as large as the original, and the ``gguf`` package reads it (``specs.from_gguf_reader``):
the tensor data, never fetched, stays holes on disk. The tables (150,000 strings for a Qwen
vocabulary) would cost the ``gguf`` package's reader tens of seconds and say nothing about
memory; the vocabulary's size stays, as the ``<arch>.vocab_size`` key llama.cpp defines.

``Deadline`` and ``within`` hold the Hub's and the Ollama registry's requests to one deadline.
"""

from __future__ import annotations

import re
import struct
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, TypeVar

from vramtop.fit.specs import ModelSpec, SpecError, from_gguf_reader
from vramtop.units import MIB

FIRST_READ = 2 * MIB  # a Llama 3 vocabulary in the header is about 1.5 MiB
MAX_HEADER = 64 * MIB  # a header larger than this is not one
BIG_ARRAY = 4096  # arrays longer than this are tokenizer tables (per-layer arrays are shorter)
# GGUF value types (gguf.GGUFValueType): fixed sizes; 8 is a string, 9 an array
_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY, _UINT32 = 8, 9, 4
_T = TypeVar("_T")


class Deadline:
    """One deadline for all the requests of a resolution (each gets the time left)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        return left


def within(seconds: float, call: Callable[[], _T]) -> _T:
    """``call()``, or TimeoutError after ``seconds``: one deadline over calls that take no
    timeout or retry past theirs. The abandoned call goes on in a daemon thread until its own
    requests end; nothing it returns is used."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, call()))
        except BaseException as exc:  # handed to the caller's thread
            box.append((False, exc))

    worker = threading.Thread(target=run, daemon=True, name="vramtop-remote-call")
    worker.start()
    worker.join(max(0.0, seconds))
    if not box:
        raise TimeoutError(f"no answer within {seconds:.1f} s")
    ok, value = box[0]
    if ok:
        return value
    raise value


class _Short(Exception):
    """The header goes on past the bytes fetched."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise _Short
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def string(self) -> bytes:
        n = self.u64()
        if n > MAX_HEADER:
            raise SpecError(f"malformed GGUF header (a string of {n} bytes)")
        return self.take(n)

    def skip_value(self, kind: int) -> None:
        if kind == _STRING:
            self.string()
        elif kind == _ARRAY:
            inner, count = self.u32(), self.u64()
            if inner in _SIZES:
                self.take(_SIZES[inner] * count)
            elif inner == _STRING:
                self._skip_strings(count)
            else:
                for _ in range(count):
                    self.skip_value(inner)
        elif kind in _SIZES:
            self.take(_SIZES[kind])
        else:
            raise SpecError(f"malformed GGUF header (value type {kind})")


    def _skip_strings(self, count: int) -> None:
        """Steps over ``count`` strings without copying them (a tokenizer's 150,000)."""
        data, at, end, length = self.data, self.at, len(self.data), struct.Struct("<Q").unpack_from
        for _ in range(count):
            if at + 8 > end:
                raise _Short
            n = length(data, at)[0]
            if n > MAX_HEADER:
                raise SpecError(f"malformed GGUF header (a string of {n} bytes)")
            at += 8 + n
        if at > end:
            raise _Short
        self.at = at


def _walk(data: bytes) -> tuple[bytes, int]:
    """(the header without its big arrays, where the original's tensor data starts); raises
    ``_Short`` when ``data`` ends inside the header."""
    r = _Reader(data)
    if r.take(4) != b"GGUF":
        raise SpecError("not a GGUF file (no GGUF magic)")
    version = r.u32()
    if version not in (2, 3):
        raise SpecError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = r.u64(), r.u64()
    if n_tensors > 1_000_000 or n_kv > 100_000:
        raise SpecError("malformed GGUF header (counts out of range)")
    kept: list[bytes] = []
    arch = b""
    alignment = 32
    vocab: int | None = None
    for _ in range(n_kv):
        start = r.at
        key = r.string()
        kind = r.u32()
        value_at = r.at
        if kind == _ARRAY:
            inner, count = r.u32(), r.u64()
            r.at = value_at
            r.skip_value(kind)
            if count > BIG_ARRAY:
                if key == b"tokenizer.ggml.tokens":
                    vocab = count
                continue
        else:
            r.skip_value(kind)
        if key == b"general.architecture" and kind == _STRING:
            arch = data[value_at + 8:r.at]
        if key == b"general.alignment" and kind == _UINT32:
            alignment = struct.unpack("<I", data[value_at:r.at])[0] or 32
        kept.append(data[start:r.at])
    if vocab is not None and arch:
        name = arch + b".vocab_size"
        kept.append(struct.pack("<Q", len(name)) + name + struct.pack("<II", _UINT32, vocab))
    infos_at = r.at
    for _ in range(n_tensors):
        r.string()
        dims = r.u32()
        if dims > 8:
            raise SpecError("malformed GGUF header (a tensor of more than 8 dimensions)")
        r.take(8 * dims + 4 + 8)
    infos = data[infos_at:r.at]
    data_start = -(-r.at // alignment) * alignment
    header = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kept)) + b"".join(kept) + infos
    return header + bytes(-len(header) % alignment), data_start


def spec_from_remote_gguf(fetch: Callable[[int, int], bytes], size: int, name: str,
                          source: str) -> ModelSpec:
    """The spec of the GGUF file behind ``fetch`` (``size`` bytes), reading only its header."""
    if size < 24:
        raise SpecError(f"{source}: not a GGUF file ({size} bytes)")
    head = b""
    want = min(FIRST_READ, size)
    while True:
        head += fetch(len(head), want - 1)[:want - len(head)]  # the bytes not read yet
        try:
            header, data_start = _walk(head)
            break
        except _Short:
            if len(head) < want or want >= min(size, MAX_HEADER):
                raise SpecError(f"{source}: malformed GGUF header (not ended within "
                                f"{len(head) // MIB} MiB)") from None
            want = min(want * 2, size, MAX_HEADER)
        except SpecError as exc:
            raise SpecError(f"{source}: {exc}") from None
    if data_start > size:
        raise SpecError(f"{source}: malformed GGUF header (longer than the file)")
    with tempfile.TemporaryDirectory(prefix="vramtop-gguf-") as tmp:
        # named as the original, whose stem names the model where its header does not
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(source).stem)[:100].lstrip(".")
        path = Path(tmp) / f"{stem or 'header'}.gguf"
        with open(path, "wb") as f:
            f.write(header)
            f.truncate(len(header) + size - data_start)  # sparse: the weights are never fetched
        try:
            return replace(from_gguf_reader(path, name), source=source)
        except SpecError as exc:  # said of the original, not of the copy
            raise SpecError(str(exc).replace(str(path), source)) from None
