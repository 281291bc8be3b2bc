"""Plain HTTP reads of the Ray dashboard: where it is, how to authenticate, and one GET.

No ``import ray``: the dashboard's REST API is all vramtop needs, it does not tie vramtop to the
cluster's Ray version, and importing Ray costs seconds. Every failure is a ``RayHttpError``
with a status word (``model``'s constants) and one line naming the cause; the HTTP itself is
``peer_http``'s (one deadline, a size cap, the token to the configured host only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from vramtop import peer_http
from vramtop.ray.model import BAD_RESPONSE, HTTP_ERROR, NOT_FOUND, TIMEOUT, UNAUTHORIZED
from vramtop.regular_file import NotRegularFile, open_regular

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
MAX_TOKEN_BYTES = 4096  # a Ray token is a few dozen characters


class RayHttpError(Exception):
    """One failed GET: ``status`` says which kind, the message says what."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def resolve_address(address: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The dashboard URL: the explicit address, then RAY_DASHBOARD_ADDRESS, then RAY_ADDRESS when it
    is an http(s) URL (a bare ``host:6379`` there is the GCS, not the dashboard), then the default."""
    env = os.environ if environ is None else environ
    for candidate, need_http in ((address, False), (env.get("RAY_DASHBOARD_ADDRESS"), False),
                                 (env.get("RAY_ADDRESS"), True)):
        text = (candidate or "").strip()
        if not text:
            continue
        has_scheme = text.startswith(("http://", "https://"))
        if need_http and not has_scheme:
            continue
        return (text if has_scheme else "http://" + text).rstrip("/")
    return DEFAULT_ADDRESS


def resolve_token(environ: Mapping[str, str] | None = None, home: Path | None = None) -> tuple[str | None, str | None]:
    """Ray's auth token and where it came from, looked up as Ray does: RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH, then ``~/.ray/auth_token``. (None, None) when there is none."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    paths = []
    if env.get("RAY_AUTH_TOKEN_PATH", "").strip():
        paths.append(Path(env["RAY_AUTH_TOKEN_PATH"].strip()).expanduser())
    paths.append((home or Path.home()) / ".ray" / "auth_token")
    for path in paths:
        try:  # a regular file of a token's size: a FIFO there would hold start-up forever
            with os.fdopen(open_regular(path), "rb") as f:
                raw = f.read(MAX_TOKEN_BYTES + 1)
            token = raw.decode("utf-8").strip() if len(raw) <= MAX_TOKEN_BYTES else ""
        except (OSError, NotRegularFile, UnicodeDecodeError):
            continue
        if token:
            return token, str(path)
    return None, None


MAX_BODY_BYTES = 16 * 2**20  # the largest answer read: ~10,000 detailed actors fit well under it


class DashboardClient:
    """GETs JSON from one dashboard under one deadline per request, with the bearer token, if
    any, sent to the configured host only (``peer_http``: no proxies, no redirects elsewhere)."""

    def __init__(self, address: str, timeout: float = 2.0, token: str | None = None,
                 token_source: str | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.token = token
        self.token_source = token_source

    def get_json(self, path: str) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            answer = peer_http.get(self.address + path, self.timeout, MAX_BODY_BYTES, headers)
        except peer_http.PeerError as exc:
            if exc.kind == peer_http.TIMEOUT:
                raise RayHttpError(TIMEOUT, f"no complete answer on {path} within {self.timeout:g} s") from None
            if exc.kind == peer_http.UNREACHABLE:
                raise RayHttpError(NOT_FOUND, str(exc)) from None
            raise RayHttpError(BAD_RESPONSE, f"{path}: {exc}") from None
        code = answer.status
        if code in (401, 403):
            how = f"token from {self.token_source} refused" if self.token else "needs a token (set RAY_AUTH_TOKEN)"
            raise RayHttpError(UNAUTHORIZED, f"HTTP {code} on {path}: {how}")
        if code == 404:
            raise RayHttpError(NOT_FOUND, f"HTTP 404 on {path}: not a Ray dashboard")
        if code != 200:
            first = answer.body.strip().splitlines()[:1]
            raise RayHttpError(HTTP_ERROR, f"HTTP {code} on {path}" + (f" ({peer_http.sample(first[0], 40)})" if first else ""))
        try:
            return json.loads(answer.body)
        except (ValueError, RecursionError):
            raise RayHttpError(BAD_RESPONSE, f"{path}: not JSON ({peer_http.sample(answer.body, 16)})") from None
