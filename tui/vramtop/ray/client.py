"""Plain HTTP reads of the Ray dashboard: where it is, how to authenticate, and one GET.

No ``import ray``: the dashboard's REST API is all vramtop needs, it does not tie vramtop to the
cluster's Ray version, and importing Ray costs seconds. Every failure is a ``RayHttpError``
with a status word (``model``'s constants) and one line naming the cause.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from vramtop.ray.model import BAD_RESPONSE, HTTP_ERROR, NOT_FOUND, TIMEOUT, UNAUTHORIZED

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


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
        try:
            token = path.read_text().strip()
        except OSError:
            continue
        if token:
            return token, str(path)
    return None, None


class DashboardClient:
    """GETs JSON from one dashboard with a per-request timeout and the bearer token, if any."""

    def __init__(self, address: str, timeout: float = 2.0, token: str | None = None,
                 token_source: str | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.token = token
        self.token_source = token_source

    def get_json(self, path: str) -> Any:
        url = self.address + path
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                how = f"token from {self.token_source} refused" if self.token else "needs a token (set RAY_AUTH_TOKEN)"
                raise RayHttpError(UNAUTHORIZED, f"HTTP {exc.code} on {path}: {how}") from None
            if exc.code == 404:
                raise RayHttpError(NOT_FOUND, f"HTTP 404 on {path}: not a Ray dashboard") from None
            raise RayHttpError(HTTP_ERROR, f"HTTP {exc.code} on {path}{_reason(exc)}") from None
        except (TimeoutError, socket.timeout):
            raise RayHttpError(TIMEOUT, f"no answer on {path} within {self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise RayHttpError(TIMEOUT, f"no answer on {path} within {self.timeout:g} s") from None
            raise RayHttpError(NOT_FOUND, f"{_words(exc.reason)}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise RayHttpError(BAD_RESPONSE, f"{path}: {_words(exc)}") from None
        try:
            return json.loads(body)
        except ValueError:
            start = body[:40].decode("utf-8", "replace").replace("\n", " ")
            raise RayHttpError(BAD_RESPONSE, f"{path}: not JSON ({start!r}...)") from None


def _reason(exc: urllib.error.HTTPError) -> str:
    """The first line of the body Ray sent with an error status, when short and readable."""
    try:
        text = exc.read(300).decode("utf-8", "replace").strip().splitlines()
    except Exception:  # the body is only a hint
        return ""
    return f" ({text[0][:120]})" if text else ""


def _words(reason: object) -> str:
    """``connection refused`` rather than ``[Errno 111] Connection refused``."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
