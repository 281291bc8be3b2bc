"""What ``vramtop watch`` does when a rule fires: run the user's command, post a JSON webhook.

The command is an argv list (``shlex`` splits the text as a shell would, but no shell runs
unless the user writes ``sh -c``); it runs without waiting, with what fired in its environment.
The webhook goes to the URL the user gave and nowhere else: one POST under one overall deadline
(connect, TLS, request, status line; connection and request head as ``peer_http`` makes them, so
never through a proxy), redirects are not followed, credentials in the URL go to
that host only, and only the status line of the answer is read.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from vramtop import peer_http

WEBHOOK_DEADLINE_S = 5.0
MAX_STATUS_LINE = 1024


class NotifyError(Exception):
    """A command or webhook that failed; one line."""


def parse_command(text: str) -> list[str]:
    """``--run`` text as an argv list; raises ``ValueError`` (one line) when it cannot be split."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"--run {text!r}: {exc}") from None
    if not argv:
        raise ValueError("--run needs a command")
    return argv


def run_command(argv: list[str], event: dict[str, Any]) -> subprocess.Popen:
    """Start ``argv`` with the event in ``VRAMTOP_*`` variables; does not wait for it."""
    env = dict(os.environ, VRAMTOP_RULE=event["rule"], VRAMTOP_DETAIL=event["detail"],
               VRAMTOP_HOSTNAME=event["hostname"], VRAMTOP_EVENT=json.dumps(event))
    try:
        return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise NotifyError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Webhook:
    """A parsed webhook URL."""

    url: str
    tls: bool
    host: str
    port: int
    target: str
    authorization: str | None  # from user:password@ in the URL, for this host only


def parse_webhook(url: str) -> Webhook:
    """Raises ``ValueError`` (one line) for anything but an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--webhook wants an http:// or https:// URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"--webhook: bad port in {url!r}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(ord(c) < 33 or ord(c) == 127 for c in target):
        raise ValueError(f"--webhook: the URL's path holds spaces or control characters: {url!r}")
    auth = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode()
    return Webhook(url, parts.scheme == "https", parts.hostname, port, target, auth)


def post(hook: Webhook, event: dict[str, Any], deadline_s: float = WEBHOOK_DEADLINE_S) -> int:
    """POST ``event`` as JSON; returns the HTTP status (2xx). Raises ``NotifyError`` otherwise."""
    deadline = time.monotonic() + deadline_s

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    body = json.dumps(event).encode()
    lines = ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    if hook.authorization:
        lines.append(f"Authorization: {hook.authorization}")
    try:
        sock = peer_http.connect(hook.tls, hook.host, hook.port, deadline)
        try:
            sock.settimeout(left())
            sock.sendall(peer_http.request_head("POST", hook.target, hook.host, hook.port, lines) + body)
            answer = b""
            while b"\r\n" not in answer and len(answer) < MAX_STATUS_LINE:
                sock.settimeout(left())
                chunk = sock.recv(MAX_STATUS_LINE)
                if not chunk:
                    break
                answer += chunk
        finally:
            sock.close()
    except (TimeoutError, socket.timeout):
        raise NotifyError(f"webhook {hook.url}: no answer within {deadline_s:g} s") from None
    except ssl.SSLError as exc:
        raise NotifyError(f"webhook {hook.url}: TLS failed ({exc.reason or 'handshake'})") from None
    except OSError as exc:
        raise NotifyError(f"webhook {hook.url}: {exc.strerror or type(exc).__name__}") from None
    parts = answer.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise NotifyError(f"webhook {hook.url}: the answer is not HTTP")
    status = int(parts[1])
    if 300 <= status < 400:
        raise NotifyError(f"webhook {hook.url}: HTTP {status}, a redirect (not followed)")
    if not 200 <= status < 300:
        raise NotifyError(f"webhook {hook.url}: HTTP {status}")
    return status
