"""A stand-in Hugging Face Hub and a stand-in Ollama registry, served on 127.0.0.1 by the tests.

The Hub answers the requests huggingface_hub 2.x really makes (read from its hf_api.py and
file_download.py): ``GET /api/models/{repo}[/revision/{rev}]`` (the file list; ``blobs=True``
adds sizes), ``GET /api/models?search=`` (the search), and ``HEAD``/``GET``/``Range`` on
``/{repo}/resolve/{rev}/{file}`` with the headers the client requires (``X-Repo-Commit``,
``ETag``, ``Content-Length``, ``X-Linked-Size``). Errors carry ``X-Error-Code`` as the real Hub
sends it: an anonymous request for a repository that does not exist (or is private) gets 401,
with a token 404; a gated repository serves its metadata to anyone and answers 401 (anonymous)
or 403 (a token without access) on its files.

Files are a prefix (a real config.json, a safetensors or GGUF header) and zeros up to their
size, generated on the fly: a 16 GB checkpoint costs the header's bytes. ``faults`` makes a
path answer 429, cut the connection, stall, or ignore Range and send the whole file
(``norange``, streamed until the client hangs up); ``log`` records every request.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence
from urllib.parse import parse_qs, unquote, urlparse

MIB = 1 << 20
ST_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4, "U8": 1, "I8": 1}


@dataclass
class Blob:
    """A file: its first bytes, then zeros up to ``size``."""

    prefix: bytes
    size: int

    @classmethod
    def of(cls, data: bytes) -> "Blob":
        return cls(data, len(data))

    def read(self, lo: int, hi: int) -> bytes:  # inclusive, as HTTP ranges count
        hi = min(hi, self.size - 1)
        if lo > hi:
            return b""
        head = self.prefix[lo: hi + 1]
        return head + bytes(hi + 1 - lo - len(head))

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.prefix + str(self.size).encode()).hexdigest()


def safetensors_blob(tensors: Iterable[tuple[str, str, Sequence[int]]]) -> Blob:
    """A safetensors file holding ``(name, dtype, shape)`` tensors: the real header, zero data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        size = n * ST_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return Blob(struct.pack("<Q", len(raw)) + raw, 8 + len(raw) + offset)


@dataclass
class Repo:
    files: dict[str, Blob]
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False
    private: bool = False


@dataclass
class StandInHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # path regex -> 429 | cut | stall
    token: str = "hf_standin_token"  # the one token this Hub accepts
    stall_s: float = 30.0
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, range
    url: str = ""

    def bytes_served(self, suffix: str) -> int:
        """Bytes of the bodies sent for paths ending in ``suffix``."""
        return sum(n for _, path, n in self._sent if path.split("?")[0].endswith(suffix))

    def __post_init__(self) -> None:
        self._sent: list[tuple[str, str, int]] = []


def _split_repo(parts: list[str]) -> tuple[str, list[str]]:
    return "/".join(parts[:2]), parts[2:]


def _handler(hub: StandInHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _authorized(self) -> bool | None:
            auth = self.headers.get("Authorization")
            if not auth:
                return None
            return auth == f"Bearer {hub.token}"

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  length: int | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
            hub._sent.append((self.command, self.path, len(body) if self.command != "HEAD" else 0))

        def _error(self, status: int, code: str, message: str = "") -> None:
            body = json.dumps({"error": message or code}).encode()
            self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message or code,
                                      "Content-Type": "application/json"})

        def _fault(self) -> bool:
            for pattern, kind in hub.faults.items():
                if re.search(pattern, self.path) and kind != "norange":
                    if kind == "429":
                        self._send(429, b'{"error":"rate limited"}', {"Retry-After": "60"})
                    elif kind == "cut":
                        self.close_connection = True
                        self.connection.shutdown(2)
                    elif kind == "stall":
                        time.sleep(hub.stall_s)
                        self.close_connection = True
                    return True
            return False

        def _repo(self, repo_id: str) -> Repo | None:
            repo = hub.repos.get(repo_id)
            auth = self._authorized()
            if repo is None or (repo.private and not auth):
                # The Hub's answer for a repository it will not show: 401 anonymous, 404 with a token.
                self._error(404 if auth else 401, "RepoNotFound", "Repository not found")
                return None
            return repo

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            hub.log.append((self.command, self.path, self.headers.get("Range")))
            if self._fault():
                return
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts[:2] == ["api", "models"] and len(parts) == 2:
                return self._search(parse_qs(url.query))
            if parts[:2] == ["api", "models"]:
                return self._info(parts[2:], parse_qs(url.query))
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._file(parts)
            self._error(404, "NotFound")

        def _search(self, query: dict[str, list[str]]) -> None:
            words = (query.get("search") or [""])[0].lower()
            limit = int((query.get("limit") or ["20"])[0])
            hits = [{"id": rid, "modelId": rid} for rid, r in sorted(hub.repos.items())
                    if words in rid.lower() and not r.private][:limit]
            self._send(200, json.dumps(hits).encode(), {"Content-Type": "application/json"})

        def _info(self, parts: list[str], query: dict[str, list[str]]) -> None:
            repo_id, rest = _split_repo(parts)
            repo = self._repo(repo_id)
            if repo is None:
                return
            if rest[:1] == ["revision"] and unquote("/".join(rest[1:])) not in ("main", repo.sha):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
            siblings = [{"rfilename": n, **({"size": b.size} if blobs else {})}
                        for n, b in sorted(repo.files.items())]
            body = {"id": repo_id, "modelId": repo_id, "sha": repo.sha, "private": repo.private,
                    "gated": "manual" if repo.gated else False, "siblings": siblings, "tags": []}
            self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

        def _file(self, parts: list[str]) -> None:
            repo_id = "/".join(parts[:2])
            rev, name = parts[3], "/".join(parts[4:])
            repo = self._repo(repo_id)
            if repo is None:
                return
            if rev not in ("main", repo.sha):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            auth = self._authorized()
            if repo.gated and not auth:
                return self._error(401 if auth is None else 403, "GatedRepo",
                                   "Access to model is restricted")
            blob = repo.files.get(name)
            if blob is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{blob.etag}"', "Accept-Ranges": "bytes",
                       "X-Linked-Size": str(blob.size), "Content-Type": "application/octet-stream"}
            rng = self.headers.get("Range")
            if self.command == "HEAD":
                return self._send(200, b"", headers, length=blob.size)
            if any(kind == "norange" and re.search(p, self.path) for p, kind in hub.faults.items()):
                return self._stream_whole(blob, headers)
            if rng:
                m = re.match(r"bytes=(\d+)-(\d*)", rng)
                lo = int(m.group(1))
                hi = int(m.group(2)) if m.group(2) else blob.size - 1
                data = blob.read(lo, hi)
                headers["Content-Range"] = f"bytes {lo}-{lo + len(data) - 1}/{blob.size}"
                return self._send(206, data, headers)
            self._send(200, blob.read(0, blob.size - 1), headers)

        def _stream_whole(self, blob: Blob, headers: dict[str, str]) -> None:
            """200 and the whole file, a MiB at a time, until the client hangs up."""
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(blob.size))
            self.end_headers()
            sent = 0
            self.close_connection = True
            try:
                while sent < blob.size:
                    chunk = blob.read(sent, min(blob.size, sent + MIB) - 1)
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            hub._sent.append((self.command, self.path, sent))

    return Handler


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_hub(hub: StandInHub) -> _Server:
    server = _Server(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- the Ollama registry ------------------------------------------------------------------------

@dataclass
class StandInRegistry:
    """``/v2/<ns>/<model>/manifests/<tag>`` and ``/v2/<ns>/<model>/blobs/<digest>`` (Range), as
    registry.ollama.ai answers ``ollama pull``; blobs are sent through a redirect, as the real
    registry hands them to its CDN."""

    manifests: dict[str, dict] = field(default_factory=dict)  # "library/qwen3:32b" -> manifest
    blobs: dict[str, Blob] = field(default_factory=dict)  # digest -> blob
    faults: dict[str, str] = field(default_factory=dict)
    url: str = ""
    served: list[int] = field(default_factory=list)
    manifest_delay_s: float = 0.0  # a slow registry

    def add(self, name: str, model: Blob, extra_layers: Sequence[tuple[str, bytes]] = ()) -> None:
        layers = []
        for media, data in [("application/vnd.ollama.image.model", None), *extra_layers]:
            blob = model if data is None else Blob.of(data)
            digest = "sha256:" + hashlib.sha256(blob.prefix + str(blob.size).encode()).hexdigest()
            self.blobs[digest] = blob
            layers.append({"mediaType": media, "digest": digest, "size": blob.size})
        config = {"mediaType": "application/vnd.docker.container.image.v1+json",
                  "digest": "sha256:" + "0" * 64, "size": 2}
        self.manifests[name] = {"schemaVersion": 2, "mediaType":
                                "application/vnd.docker.distribution.manifest.v2+json",
                                "config": config, "layers": layers}


def serve_registry(reg: StandInRegistry) -> _Server:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            reg.served.append(len(body))

        def do_GET(self) -> None:
            for pattern, kind in reg.faults.items():
                if re.search(pattern, self.path):
                    if kind == "cut":
                        self.connection.shutdown(2)
                        self.close_connection = True
                    else:
                        self._send(int(kind), b'{"errors":[{"code":"ERR"}]}')
                    return
            m = re.match(r"^/v2/(.+)/manifests/([^/]+)$", self.path)
            if m:
                time.sleep(reg.manifest_delay_s)
                manifest = reg.manifests.get(f"{m.group(1)}:{m.group(2)}")
                if manifest is None:
                    return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                return self._send(200, json.dumps(manifest).encode(),
                                  {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
            m = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", self.path)
            if m:  # the real registry redirects blobs to its CDN
                return self._send(307, b"", {"Location": f"/cdn/{m.group(2)}"})
            m = re.match(r"^/cdn/(sha256:[0-9a-f]{64})$", self.path)
            if m and m.group(1) in reg.blobs:
                blob = reg.blobs[m.group(1)]
                rng = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if rng:
                    lo = int(rng.group(1))
                    hi = int(rng.group(2)) if rng.group(2) else blob.size - 1
                    data = blob.read(lo, hi)
                    return self._send(206, data, {"Content-Range": f"bytes {lo}-{lo + len(data) - 1}/{blob.size}"})
                return self._send(200, blob.read(0, blob.size - 1))
            self._send(404, b"{}")

    server = _Server(("127.0.0.1", 0), Handler)
    reg.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
