"""The metrics endpoint: prometheus_client's WSGI app (content negotiation: Prometheus text or
OpenMetrics, gzip) on a threaded server, with optional TLS and basic auth.

Loopback unless the user names another address: vramtop runs as root and its metrics name the
node's processes and models. prometheus_client's own ``start_http_server`` does TLS but has no
basic auth, so the same pieces are put together here with one small WSGI check in front. A
connection that stalls is dropped after ``REQUEST_TIMEOUT_S``.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from vramtop.exporter import DEFAULT_HOST
from vramtop.regular_file import NotRegularFile, open_regular

if TYPE_CHECKING:  # prometheus_client itself is imported when serving starts
    from prometheus_client.registry import CollectorRegistry

REQUEST_TIMEOUT_S = 10.0
MAX_AUTH_FILE_BYTES = 4096


class ListenError(ValueError):
    """An address, certificate or password file that cannot be used; one line."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; a bare port listens on loopback."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenError(f"--listen wants PORT or HOST:PORT with a port from 1 to 65535, got {text!r}")
    if not host:
        raise ListenError(f"--listen wants HOST:PORT, got {text!r} (for every address write 0.0.0.0:{port})")
    return Listen(host, int(port))


def read_basic_auth(path: Path) -> tuple[str, str]:
    """``user:password`` from the first line of ``path`` (a file, so the password is not in
    the process list)."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:  # a FIFO given here would block start-up
            data = f.read(MAX_AUTH_FILE_BYTES + 1)
    except OSError as exc:
        raise ListenError(f"{path}: cannot read the basic-auth file ({exc.strerror or exc})") from None
    except NotRegularFile as exc:
        raise ListenError(f"{path}: cannot read the basic-auth file ({exc})") from None
    if len(data) > MAX_AUTH_FILE_BYTES:
        raise ListenError(f"{path}: the basic-auth file is larger than {MAX_AUTH_FILE_BYTES} bytes")
    try:
        line = data.decode("utf-8").splitlines()[0] if data.strip() else ""
    except UnicodeDecodeError:
        raise ListenError(f"{path}: the basic-auth file is not UTF-8 text") from None
    user, sep, password = line.partition(":")
    if not sep or not user or not password:
        raise ListenError(f"{path}: the basic-auth file must hold one line 'user:password'")
    return user, password


def _require_auth(app: Callable, user: str, password: str) -> Callable:
    expected = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    def guarded(environ, start_response):
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="vramtop"'),
                                             ("Content-Type", "text/plain")])
        return [b"401 Unauthorized\n"]

    return guarded


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S  # a client that stalls mid-request gives its thread back

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        """A scrape every few seconds is not news."""


def serve(registry: CollectorRegistry, listen: Listen, certfile: Path | None = None,
          keyfile: Path | None = None, basic_auth: tuple[str, str] | None = None):
    """Start serving in a daemon thread; returns the server (``shutdown()`` stops it, and
    ``server_address`` holds the port when ``listen.port`` was 0)."""
    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    try:
        family = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {listen}: {exc.strerror}") from None

    class Server(ThreadingWSGIServer):
        address_family = family

    app = make_wsgi_app(registry)
    if basic_auth is not None:
        app = _require_auth(app, *basic_auth)
    try:
        httpd = make_server(listen.host, listen.port, app, Server, handler_class=_Handler)
    except OSError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    if certfile is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            httpd.server_close()
            raise ListenError(f"cannot load the TLS certificate {certfile}"
                              f"{f' and key {keyfile}' if keyfile else ''}: {getattr(exc, 'strerror', None) or exc}") from None
        # the handshake happens in the request thread, under its timeout, not in the accept loop
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=httpd.serve_forever, name="vramtop-metrics", daemon=True).start()
    return httpd
