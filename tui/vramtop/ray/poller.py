"""``RayPoller.poll()``: one ``RayState`` from the dashboard, never an exception.

Serve's application details are the one read that must succeed; nodes, placement groups and
actors add to it and their failures become notes. A failed poll keeps the last good data and
says what failed and when the last success was. Nothing answering at an address that never
answered is Ray not running there: a quiet "not found", not an error.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Mapping
from urllib.parse import quote

from vramtop import peer_http
from vramtop.ray import parse
from vramtop.ray.client import DashboardClient, RayHttpError, resolve_address, resolve_token
from vramtop.ray.model import (
    BAD_RESPONSE,
    HTTP_ERROR,
    NOT_FOUND,
    OK,
    TIMEOUT,
    UNREACHABLE,
    RayState,
)

SERVE = "/api/serve/applications/"
VERSION = "/api/ray/version"


def _not(key: str, value: str) -> str:
    """A state API filter: rows whose ``key`` is not ``value``."""
    return f"&filter_keys={key}&filter_predicates={quote('!=')}&filter_values={value}"


NODES = "/api/v0/nodes?detail=true&limit=1000"
SUMMARY = "/nodes?view=summary"
PLACEMENT_GROUPS = "/api/v0/placement_groups?detail=true&limit=1000" + _not("state", "REMOVED")
ACTORS = "/api/v0/actors?detail=true&limit=10000" + _not("state", "DEAD")
JOBS = "/api/jobs/"


class RayPoller:
    """Polls one dashboard; safe to call ``poll`` from a background thread (one at a time)."""

    def __init__(self, address: str | None = None, timeout: float = 2.0,
                 environ: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.address = resolve_address(address, environ)
        token, source = resolve_token(environ)
        self.client = DashboardClient(self.address, timeout, token, source)
        self._clock = clock
        self._good: RayState | None = None
        self._version: str | None = None

    def poll(self) -> RayState:
        now = self._clock()
        try:
            state = self._read(now)
        except RayHttpError as exc:
            return self._failed(now, exc.status, str(exc))
        except parse.SchemaError as exc:
            release = f" (Ray {self._version})" if self._version else ""
            return self._failed(now, BAD_RESPONSE, f"unexpected schema{release}: {exc}")
        except Exception as exc:  # a poll never takes the monitor down; say what broke
            return self._failed(now, BAD_RESPONSE, f"{type(exc).__name__}: {peer_http.sample(str(exc), 40)}")
        self._good = state
        return state

    def _failed(self, now: float, status: str, message: str) -> RayState:
        good = self._good
        if good is None:
            return RayState(address=self.address, status=status, checked_at=now, error=message)
        if status == NOT_FOUND:
            status = UNREACHABLE  # it answered before: the dashboard went away
        self._version = None  # a restarted cluster may be another release
        return RayState(
            address=self.address, status=status, checked_at=now, error=message,
            last_success=good.last_success, ray_version=good.ray_version,
            applications=good.applications, deployments=good.deployments, nodes=good.nodes,
            placement_groups=good.placement_groups, actors=good.actors, notes=good.notes, jobs=good.jobs,
        )

    def _read(self, now: float) -> RayState:
        notes: list[str] = []
        try:
            apps, deployments, schema_notes = parse.serve_details(self.client.get_json(SERVE))
            notes += schema_notes
        except RayHttpError as exc:
            if exc.status != HTTP_ERROR or "HTTP 501" not in str(exc):
                raise
            apps, deployments = (), ()
            notes.append("Serve is not installed where the dashboard runs (HTTP 501)")
        if self._version is None:
            try:
                version = self.client.get_json(VERSION)
            except RayHttpError:
                version = None
            if isinstance(version, dict) and isinstance(version.get("ray_version"), str):
                self._version = version["ray_version"]

        nodes = pgs = actors = jobs = ()
        used: dict = {}
        gpus: dict = {}
        timed_out = False
        for path, what in ((NODES, "nodes"), (SUMMARY, "node usage"), (PLACEMENT_GROUPS, "placement groups"),
                           (ACTORS, "actors"), (JOBS, "jobs")):
            if timed_out:
                notes.append(f"{what}: skipped after a timeout")
                continue
            try:
                doc = self.client.get_json(path)
                if path == NODES:
                    nodes = parse.nodes(parse.state_rows(doc, "/api/v0/nodes"))
                elif path == SUMMARY:
                    used, gpus = parse.node_summary(doc)
                elif path == PLACEMENT_GROUPS:
                    pgs = parse.placement_groups(parse.state_rows(doc, "/api/v0/placement_groups"))
                elif path == ACTORS:
                    actors = parse.actors(parse.state_rows(doc, "/api/v0/actors"))
                else:
                    jobs = parse.jobs(doc)
            except (RayHttpError, parse.SchemaError) as exc:
                timed_out = getattr(exc, "status", None) == TIMEOUT
                notes.append(f"{what}: {exc}")

        nodes = tuple(
            replace(n, resources_used=used.get(n.node_id),
                    hostname=(gpus.get(n.node_id, (None, ()))[0] or n.hostname),
                    gpus=gpus.get(n.node_id, (None, ()))[1])
            for n in nodes
        )
        return RayState(
            address=self.address, status=OK, checked_at=now, last_success=now, ray_version=self._version,
            applications=apps, deployments=deployments, nodes=nodes, placement_groups=pgs, actors=actors,
            notes=tuple(notes), jobs=jobs,
        )
