"""Every HTTP request vramtop makes of the peers it polls (the Ray dashboard, engines' ``/metrics``,
Ollama's ``/api/ps``, a running Ollama's ``/api/tags`` and ``/api/show``): one GET or POST under
one deadline and one size cap, failures as one plain line. ``connect`` and ``request_head`` are
its connection (no proxy, TLS, the deadline) and request head, which ``vramtop watch``'s webhook
POST shares. (Models that are not here are read through huggingface_hub and, for the Ollama
registry, urllib: see ``fit``.)

Why not urllib or urllib3: their timeouts bound each socket read, not the request, so a peer
that sends one byte every few tenths of a second holds the caller forever; and urllib follows
redirects to any host with the ``Authorization`` header and sends loopback requests to
``http_proxy``. Here:

- the deadline covers the name lookup, connect (over every address a name has), TLS, headers
  and body: every step is given what is left of it;
- the body is read up to ``max_bytes`` (an announced larger ``Content-Length`` is refused unread);
- environment proxies are never used: a dashboard token must reach the configured host only,
  and the peers vramtop discovers are on this machine;
- a redirect is followed only to the same scheme, host and port (so a token stays with the host
  it was configured for); any other is refused and says so;
- a ``PeerError`` message never carries more of the peer's bytes than ``sample`` lets through.

``http.client`` (with ``email`` and ``ssl``, which loads the TLS library: 5 MiB in all) is imported
once a peer accepts a connection, not with this module nor by a request that finds no one: a
node without Ray, polled for its dashboard every few seconds, never loads it.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urljoin, urlsplit

TIMEOUT = "timeout"
UNREACHABLE = "unreachable"
TOO_LARGE = "too large"
NOT_HTTP = "not http"
REDIRECT = "redirect"
BAD_URL = "bad url"

MAX_REDIRECTS = 3
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024


class PeerError(Exception):
    """One failed GET; ``kind`` is one of the constants above, the message one plain line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def sample(data: bytes | str, limit: int = 24) -> str:
    """At most ``limit`` characters of what a peer sent, safe to show anywhere: letters, digits
    and a few punctuation marks; anything else (markup brackets, control bytes) becomes ``?``."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    keep = "".join(c if (c.isascii() and (c.isalnum() or c in " .,:;_-/()=+%#@")) else "?" for c in text[:limit])
    return keep + ("..." if len(text) > limit else "")


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each given only what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What ``http.client.HTTPResponse`` needs of a socket: a reader under the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise PeerError(BAD_URL, f"not an http(s) URL: {sample(url, 60)}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise PeerError(BAD_URL, f"bad port in {sample(url, 60)}") from None
    return scheme, parts.hostname.lower(), port


def _clean(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PeerError(BAD_URL, "a header value holds control characters")
    return value


def connect(tls: bool, host: str, port: int, deadline: float, verify_tls: bool = True) -> socket.socket:
    """A socket connected to ``host:port`` (TLS when ``tls``) within ``deadline`` (a
    ``time.monotonic()`` instant), never through a proxy; raises ``TimeoutError`` once it has
    passed, ``OSError`` / ``ssl.SSLError`` as connecting fails."""
    sock = _connect_any(_addresses(host, port, deadline), deadline)
    if not tls:
        return sock
    import ssl

    try:
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def _addresses(host: str, port: int, deadline: float) -> list[tuple]:
    """``getaddrinfo`` within the deadline. The C library's lookup has no timeout of its own (a
    dead name server holds it for tens of seconds), so a name is looked up in a daemon thread that
    the caller stops waiting for; an address literal is read at once."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: dict[str, object] = {}

    def lookup() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    worker = threading.Thread(target=lookup, name="vramtop-dns", daemon=True)
    worker.start()
    worker.join(max(deadline - time.monotonic(), 0.0))
    if worker.is_alive():
        raise TimeoutError
    if "error" in found:
        raise found["error"]  # type: ignore[misc]
    return found["infos"]  # type: ignore[return-value]


def _connect_any(infos: list[tuple], deadline: float) -> socket.socket:
    """The first of ``infos`` that accepts a connection, all of them tried within the one
    deadline (``socket.create_connection`` gives each address the whole timeout again)."""
    error: OSError = OSError("no address")
    for family, kind, proto, _, address in infos:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, (TimeoutError, socket.timeout)):
                raise
            error = exc
    raise error


def request_head(method: str, target: str, host: str, port: int, headers: list[str]) -> bytes:
    """An HTTP/1.1 request's head for one origin (``Connection: close``), ``headers`` already
    written as ``Name: value`` lines."""
    netloc = f"[{host}]" if ":" in host else host
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}:{port}", "User-Agent: vramtop",
             "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _one(method: str, url: str, payload: bytes | None, deadline: float, max_bytes: int,
         headers: Mapping[str, str], verify_tls: bool) -> tuple[int, str | None, bytes]:
    scheme, host, port = _origin(url)
    parts = urlsplit(url)
    target = _clean((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    sock = connect(scheme == "https", host, port, deadline, verify_tls)
    try:
        import http.client  # a peer is there: now the HTTP client is worth loading

        lines = ["Accept-Encoding: identity"]
        lines += [f"{_clean(k)}: {_clean(v)}" for k, v in headers.items()]
        if payload is not None:
            lines.append(f"Content-Length: {len(payload)}")
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(request_head(method, target, host, port, lines) + (payload or b""))
        response = http.client.HTTPResponse(_DeadlineSocket(sock, deadline), method=method)  # type: ignore[arg-type]
        try:
            response.begin()
            if response.status in _REDIRECTS:
                return response.status, response.getheader("Location"), b""
            announced = response.getheader("Content-Length", "")
            if announced.strip().isdigit() and int(announced) > max_bytes:
                raise PeerError(TOO_LARGE, f"answer larger than {_size(max_bytes)}")
            body = bytearray()
            while chunk := response.read(min(_CHUNK, max_bytes + 1 - len(body))):
                body += chunk
                if len(body) > max_bytes:
                    raise PeerError(TOO_LARGE, f"answer larger than {_size(max_bytes)}")
            return response.status, None, bytes(body)
        finally:
            response.close()
    finally:
        sock.close()


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n:,} bytes"


def get(url: str, deadline_s: float, max_bytes: int, headers: Mapping[str, str] | None = None,
        verify_tls: bool = True) -> Answer:
    """GET ``url`` within ``deadline_s`` seconds in all, its body at most ``max_bytes``; any
    HTTP status is an ``Answer``. Raises ``PeerError`` (one line, no peer bytes) otherwise."""
    return _request("GET", url, None, deadline_s, max_bytes, headers, verify_tls)


def post(url: str, payload: bytes, deadline_s: float, max_bytes: int,
         headers: Mapping[str, str] | None = None) -> Answer:
    """POST ``payload`` to ``url`` under the same bounds as ``get``; a redirect is not followed
    (a request with a body is not sent twice)."""
    return _request("POST", url, payload, deadline_s, max_bytes, headers, True)


def _request(method: str, url: str, payload: bytes | None, deadline_s: float, max_bytes: int,
             headers: Mapping[str, str] | None, verify_tls: bool) -> Answer:
    deadline = time.monotonic() + deadline_s
    origin = _origin(url)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _one(method, url, payload, deadline, max_bytes, headers or {}, verify_tls)
            if location is None:
                return Answer(status, body)
            if payload is not None:
                raise PeerError(REDIRECT, f"HTTP {status} redirects a {method} (not followed)")
            try:
                target = urljoin(url, location)
                same = _origin(target) == origin
            except (PeerError, ValueError):
                same = False
            if not same:
                raise PeerError(REDIRECT, f"HTTP {status} redirects to another host or scheme (not followed)")
            url = target
        raise PeerError(REDIRECT, f"more than {MAX_REDIRECTS} redirects")
    except PeerError:
        raise
    except (TimeoutError, socket.timeout):
        raise PeerError(TIMEOUT, f"no complete answer within {deadline_s:g} s") from None
    except Exception as exc:
        failure = _failure(exc, origin[1])
        if failure is None:
            raise
        raise failure from None


def _failure(exc: Exception, host: str) -> PeerError | None:
    """The line a failed request reads as (None: not a failure of the peer or the network).
    ``http.client`` and ``ssl`` are looked up, not imported: only a request that has loaded
    them can raise their exceptions."""
    client, tls = sys.modules.get("http.client"), sys.modules.get("ssl")
    if client is not None and isinstance(exc, client.RemoteDisconnected):
        return PeerError(NOT_HTTP, "closed the connection without an answer")
    if client is not None and isinstance(exc, client.IncompleteRead):
        return PeerError(NOT_HTTP, "the answer broke off before its end")
    not_http = (client.HTTPException if client else ()), (tls.SSLError if tls else ())
    if isinstance(exc, not_http):  # BadStatusLine and friends quote the peer's bytes: say what it is, not what it sent
        return PeerError(NOT_HTTP, "answered, but not with HTTP")
    if isinstance(exc, socket.gaierror):
        return PeerError(UNREACHABLE, f"unknown host {sample(host, 60)}")
    if isinstance(exc, ConnectionRefusedError):
        return PeerError(UNREACHABLE, "connection refused")
    if isinstance(exc, (OSError, ValueError, UnicodeError)):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return PeerError(UNREACHABLE, sample(reason.lower(), 60))
    return None
