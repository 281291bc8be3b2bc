"""Models that are not here yet: Hub repositories and Ollama library tags, and their specs cached.

``specs.resolve`` asks ``cached`` (a small on-disk cache of resolved specs, so a name resolved
once is instant and offline afterwards) before the local HF cache, and ``fetch`` last. ``fetch``
goes to the network only for names of a remote shape (``ORG/NAME[@REV]``, ``hf.co/ORG/NAME:QUANT``,
``name:tag``) and only outside ``cache_only()``: the what-if panel judges on every keystroke inside
it and resolves on the network in a worker. A failure caches nothing.

The cache lives in ``$XDG_CACHE_HOME/vramtop/specs`` (else ``~/.cache/vramtop/specs``; ``paths``), one JSON
file per name and source, each written whole (a temporary file renamed into place).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from vramtop import paths
from vramtop.fit import hub, ollama_library
from vramtop.fit.layers import StateShape
from vramtop.fit.specs import ModelSpec
from vramtop.fit.vision import VisionSpec
from vramtop.regular_file import NotRegularFile, open_regular

MAX_ENTRY = 64 * 1024  # one cached spec is about 1 KiB
_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec))
_VERSION = hashlib.sha256(" ".join(_FIELDS).encode()).hexdigest()[:12]  # a new field: a new cache
_NETWORK: ContextVar[bool] = ContextVar("vramtop_remote_network", default=True)


@contextmanager
def cache_only() -> Iterator[None]:
    """Within this block ``fetch`` does not touch the network (the UI thread judges inside it)."""
    token = _NETWORK.set(False)
    try:
        yield
    finally:
        _NETWORK.reset(token)


def network_allowed() -> bool:
    """False inside ``cache_only()``."""
    return _NETWORK.get()


def remote_ref(text: str) -> hub.HubRef | ollama_library.OllamaRef | None:
    """What a remote name points at: a Hub repository, an Ollama library tag, or None."""
    return hub.parse_ref(text) or ollama_library.parse_ref(text)


def _where(ref: hub.HubRef | ollama_library.OllamaRef) -> str:
    return hub.endpoint() if isinstance(ref, hub.HubRef) else ollama_library.registry()


def _entry(ref: hub.HubRef | ollama_library.OllamaRef) -> Path:
    key = f"{_VERSION}\n{_where(ref)}\n{ref.text}"
    return paths.spec_cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")


def _read_entry(path: Path) -> bytes:
    """A cache file's first ``MAX_ENTRY + 1`` bytes. It is opened as a file someone else made
    (``open_regular``): a FIFO put in its place would otherwise hold the UI thread, which reads
    this cache, forever."""
    with os.fdopen(open_regular(path), "rb") as f:
        return f.read(MAX_ENTRY + 1)


def cached(text: str) -> ModelSpec | None:
    """The spec resolved before for this remote name (same Hub or registry), or None."""
    ref = remote_ref(text)
    if ref is None:
        return None
    try:
        raw = _read_entry(_entry(ref))
        data = json.loads(raw) if len(raw) <= MAX_ENTRY else None
    except (OSError, ValueError, NotRegularFile):
        return None
    if not isinstance(data, dict) or data.get("name") != ref.text or not isinstance(data.get("spec"), dict):
        return None
    fields = data["spec"]
    if set(fields) != set(_FIELDS):
        return None
    try:
        return _spec_from_json(fields)
    except (TypeError, ValueError, KeyError):
        return None


def _spec_from_json(fields: dict) -> ModelSpec:
    """A spec as ``_store`` wrote it, with its tuples and nested specs rebuilt: JSON gives lists
    and dicts, and a spec holding one is unhashable (the fit engine caches by spec) or breaks
    where the fit engine reads the hybrid state's shape."""
    state, vision = fields["state"], fields["vision"]
    return ModelSpec(**{
        **fields, "aliases": tuple(fields["aliases"]), "unmodelled": tuple(fields["unmodelled"]),
        "state": StateShape(**{**state, "dims": tuple(state["dims"])}) if isinstance(state, dict) else None,
        "vision": VisionSpec(**vision) if isinstance(vision, dict) else None,
    })


def local_names(limit: int = 500) -> list[str]:
    """Names a search field can offer without the network: those resolved before (this cache)
    and the model repositories in the local HF cache (its folder names, nothing imported)."""
    names: list[str] = []
    try:
        entries = sorted(paths.spec_cache_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        entries = []
    for path in entries[:limit]:
        try:
            raw = _read_entry(path)
            name = json.loads(raw).get("name") if len(raw) <= MAX_ENTRY else None
        except (OSError, ValueError, AttributeError, NotRegularFile):
            continue
        if isinstance(name, str) and name not in names:
            names.append(name)
    try:
        repos = sorted(p.name for p in paths.hf_hub_cache().iterdir() if p.name.startswith("models--"))
    except OSError:
        repos = []
    for folder in repos[:limit]:
        name = folder[len("models--"):].replace("--", "/", 1)
        if name not in names:
            names.append(name)
    return names


def _store(ref: hub.HubRef | ollama_library.OllamaRef, spec: ModelSpec) -> None:
    path = _entry(ref)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".spec-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"name": ref.text, "spec": dataclasses.asdict(spec)}, f)
        os.replace(tmp, path)
    except OSError:  # a read-only home: resolving still works, only not faster next time
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def fetch(text: str, timeout: float | None = None) -> ModelSpec | None:
    """Resolve a remote name on the network and cache the spec; None when ``text`` has no
    remote shape or inside ``cache_only()``. Raises ``SpecError`` (one line) on failure."""
    ref = remote_ref(text)
    if ref is None or not network_allowed():
        return None
    spec: ModelSpec
    if isinstance(ref, hub.HubRef):
        spec = hub.resolve_hub(ref, timeout or hub.TIMEOUT_S)
    else:
        spec = ollama_library.resolve_library(ref, timeout or ollama_library.TIMEOUT_S)
    _store(ref, spec)
    return spec

