"""Hostile HTTP peers on loopback for the peer tests, and a way to run vramtop and measure it.

``RawServer`` is a real TCP server in a thread of the test process whose routes write whatever
bytes a test wants (a redirect, one byte every 0.3 s, 200 MB, non-HTTP garbage) and which
records every request's path and headers, so a test can assert what reached it. ``run_vramtop``
runs ``vramtop`` as a user does, in a child process, and returns its exit code, output, wall time
and peak RSS (read from the kernel for that process alone, by ``os.wait4``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

Behaviour = Callable[[socket.socket], None]


def answer(body: bytes | dict | list, status: str = "200 OK", headers: dict[str, str] | None = None) -> Behaviour:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    def send(conn: socket.socket) -> None:
        head = {"Content-Type": "application/json", "Content-Length": str(len(raw)), **(headers or {})}
        conn.sendall(f"HTTP/1.1 {status}\r\n".encode() + b"".join(f"{k}: {v}\r\n".encode() for k, v in head.items())
                     + b"\r\n" + raw)
    return send


def redirect(location: str, status: str = "302 Found") -> Behaviour:
    return answer(b"", status, {"Location": location})


def drip(every_s: float = 0.3) -> Behaviour:
    """A valid-looking answer, one byte every ``every_s`` seconds, for as long as anyone reads."""
    text = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b" " * 10_000_000

    def send(conn: socket.socket) -> None:
        for byte in text:
            conn.sendall(bytes([byte]))
            time.sleep(every_s)
    return send


def flood(total: int, announce: bool) -> Behaviour:
    """``total`` bytes of a JSON-looking body, with or without a Content-Length saying so."""
    def send(conn: socket.socket) -> None:
        length = f"Content-Length: {total}\r\n" if announce else ""
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n".encode())
        block = b'{"a": [' + b"1," * 32_000 + b"1]}\n"
        sent = 0
        while sent < total:
            piece = block[: total - sent]
            conn.sendall(piece)
            sent += len(piece)
    return send


def raw(data: bytes) -> Behaviour:
    """Not HTTP at all: ``data`` and a closed connection."""
    return lambda conn: conn.sendall(data)


@dataclass
class Request:
    path: str
    headers: dict[str, str]


class RawServer:
    """Routes path prefixes (longest first) to behaviours; 404 otherwise. ``requests`` records
    what arrived, ``url`` is its loopback base URL."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Behaviour] = {}
        self.requests: list[Request] = []
        self._sock = socket.create_server((host, 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def route(self, prefix: str, behaviour: Behaviour) -> None:
        self.routes[prefix] = behaviour

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else lines[0]
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                self.requests.append(Request(target, headers))
                for prefix in sorted(self.routes, key=len, reverse=True):
                    if target.startswith(prefix):
                        self.routes[prefix](conn)
                        return
                answer(b"{}", "404 Not Found")(conn)
            except OSError:
                pass  # the reader gave up: that is what these peers are for

    def close(self) -> None:
        self._sock.close()


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    wall_s: float
    max_rss_mib: float

    @property
    def doc(self) -> dict:
        return json.loads(self.stdout)


# The kernel counts the memory a process had before exec into its peak RSS, so a child forked
# from this (large) test process would report the test's size. A small launcher runs vramtop as
# its own child and reports that grandchild's peak, which starts from the launcher's few MiB.
_LAUNCHER = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
with open(sys.argv[1], "w") as fh:
    fh.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_vramtop(args: list[str], env: dict[str, str], limit_s: float = 60.0) -> Run:
    """``python -m vramtop ARGS`` in a child; killed after ``limit_s`` (``subprocess`` raises)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        result = subprocess.run([sys.executable, "-c", _LAUNCHER, rss.name, sys.executable, "-m", "vramtop", *args],
                                env=env, capture_output=True, text=True, timeout=limit_s)
        wall = time.monotonic() - start
        peak_kib = int(rss.read() or 0)
    return Run(result.returncode, result.stdout, result.stderr, wall, peak_kib / 1024)


def dashboard_env(base: dict[str, str], address: str, home: str, token: str | None = None,
                  **extra: str) -> dict[str, str]:
    """``base`` with the dashboard at ``address``, no other Ray or proxy settings of the caller's."""
    env = {k: v for k, v in base.items()
           if not k.startswith("RAY_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(RAY_DASHBOARD_ADDRESS=address, HOME=home, XDG_CONFIG_HOME=home, **extra)
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    return env
