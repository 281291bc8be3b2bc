"""The Ray dashboard client and poller against a local HTTP server that misbehaves on purpose:
slow, 500, garbage, an older Serve schema, a token-protected dashboard, nothing listening."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vramtop.ray.client import DEFAULT_ADDRESS, MAX_TOKEN_BYTES, resolve_address, resolve_token
from vramtop.ray.model import BAD_RESPONSE, HTTP_ERROR, NOT_FOUND, OK, TIMEOUT, UNAUTHORIZED, UNREACHABLE
from vramtop.ray.poller import RayPoller

SERVE_OK = {"applications": {"app": {"status": "RUNNING", "deployments": {"D": {
    "status": "HEALTHY", "message": "", "target_num_replicas": 1, "required_resources": {"GPU": 1},
    "deployment_config": {"num_replicas": 1, "ray_actor_options": {"num_gpus": 1}},
    "replicas": [{"replica_id": "r1", "state": "RUNNING", "pid": 7, "node_id": "n1"}]}}}}}
# Ray 2.9's Serve API: no target_num_replicas, no required_resources.
SERVE_OLD = {"applications": {"app": {"status": "RUNNING", "deployments": {"D": {
    "status": "HEALTHY", "message": "", "deployment_config": {"num_replicas": 1, "ray_actor_options": {"num_gpus": 1}},
    "replicas": [{"replica_id": "r1", "state": "RUNNING"}]}}}}}
NODES = {"data": {"result": {"result": [{"node_id": "n1", "node_ip": "10.0.0.1", "is_head_node": True,
                                         "state": "ALIVE", "resources_total": {"GPU": 4.0, "CPU": 8.0}}]}}}
SUMMARY = {"data": {"summary": [], "nodeLogicalResources": {"n1": "1.0/8.0 CPU\n1.0/4.0 GPU (1.0 used of 1.0 reserved in placement groups)\n0B/4.00GiB memory"}}}
EMPTY_ROWS = {"data": {"result": {"result": []}}}


class Dashboard:
    """Routes path prefixes to (status, body, delay); records the Authorization headers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.auth: list[str | None] = []
        self.set_ok()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.auth.append(self.headers.get("Authorization"))
                for prefix, (code, body, delay) in sorted(outer.routes.items(), key=lambda kv: -len(kv[0])):
                    if self.path.startswith(prefix):
                        time.sleep(delay)
                        try:
                            self.send_response(code)
                            self.end_headers()
                            self.wfile.write(body)
                        except OSError:
                            pass
                        return
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, prefix: str, code: int = 200, body: object = None, delay: float = 0.0) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.routes[prefix] = (code, raw, delay)

    def set_ok(self) -> None:
        self.set("/api/serve/applications/", body=SERVE_OK)
        self.set("/api/ray/version", body={"ray_version": "2.60.0"})
        self.set("/api/v0/nodes", body=NODES)
        self.set("/nodes", body=SUMMARY)
        self.set("/api/v0/placement_groups", body=EMPTY_ROWS)
        self.set("/api/v0/actors", body=EMPTY_ROWS)
        self.set("/api/jobs/", body=[])


@pytest.fixture
def dash():
    d = Dashboard()
    yield d
    d.server.shutdown()
    d.server.server_close()


def poller(address: str, timeout: float = 1.0, **env) -> RayPoller:
    return RayPoller(address, timeout=timeout, environ=env)


def test_a_good_dashboard_reads_as_ok_with_node_usage(dash):
    st = poller(dash.address).poll()
    assert st.status == OK and st.error is None and st.ray_version == "2.60.0" and st.notes == ()
    (dep,) = st.deployments
    assert (dep.key, dep.target_num_replicas, dep.num_replicas, dep.num_gpus) == ("app/D", 1, 1, 1)
    (n,) = st.nodes
    assert n.available("GPU") == 3 and n.available("CPU") == 7


def test_nothing_listening_is_a_quiet_not_found():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    st = poller(f"http://127.0.0.1:{port}").poll()
    assert st.status == NOT_FOUND and st.summary() == "Ray: not found" and not st.found


def test_slow_dashboard_times_out_and_the_last_success_is_kept(dash):
    p = poller(dash.address, timeout=0.3)
    good = p.poll()
    dash.set("/api/serve/applications/", body=SERVE_OK, delay=1.0)
    bad = p.poll()
    assert bad.status == TIMEOUT and "within 0.3 s" in bad.error
    assert bad.last_success == good.last_success and bad.deployments == good.deployments
    assert "last success" in bad.summary()


def test_a_slow_optional_endpoint_becomes_a_note_and_skips_the_rest(dash):
    dash.set("/api/v0/nodes", body=NODES, delay=1.0)
    st = poller(dash.address, timeout=0.3).poll()
    assert st.status == OK and st.nodes == ()
    assert st.notes[0].startswith("nodes: no complete answer")
    assert all("skipped after a timeout" in n for n in st.notes[1:]) and len(st.notes) == 5


def test_http_500_names_the_status_and_the_first_line_of_the_body(dash):
    dash.set("/api/serve/applications/", 500, b"Traceback (most recent call last):\n  boom")
    st = poller(dash.address).poll()
    assert st.status == HTTP_ERROR
    assert st.error == "HTTP 500 on /api/serve/applications/ (Traceback (most recent call last):)"


def test_garbage_is_a_bad_response_not_a_traceback(dash):
    dash.set("/api/serve/applications/", 200, b"<html>login</html>")
    st = poller(dash.address).poll()
    assert st.status == BAD_RESPONSE and "not JSON" in st.error and "?html?login" in st.error  # a few safe characters


def test_json_of_another_shape_says_which_part_is_missing_and_the_release(dash):
    dash.set("/api/serve/applications/", 200, {"apps": []})
    st = poller(dash.address).poll()
    assert st.status == BAD_RESPONSE
    assert st.error == "unexpected schema: /api/serve/applications/ has no 'applications' map"
    p = poller(dash.address)
    dash.set_ok()
    p.poll()
    dash.set("/api/serve/applications/", 200, {"apps": []})
    assert p.poll().error.startswith("unexpected schema (Ray 2.60.0)")


def test_an_older_serve_schema_reads_with_a_note_on_what_it_lacks(dash):
    dash.set("/api/serve/applications/", body=SERVE_OLD)
    st = poller(dash.address).poll()
    assert st.status == OK
    (dep,) = st.deployments
    assert dep.target_num_replicas is None and dep.required_resources is None and dep.num_gpus == 1
    assert dep.replicas[0].pid is None and not dep.replicas[0].pending
    assert st.notes == ("this Ray's Serve API sends no required_resources, target_num_replicas (shown as n/a)",)


def test_serve_not_installed_still_shows_the_nodes(dash):
    dash.set("/api/serve/applications/", 501, b"Serve dependencies are not installed.")
    st = poller(dash.address).poll()
    assert st.status == OK and st.deployments == () and len(st.nodes) == 1
    assert st.notes == ("Serve is not installed where the dashboard runs (HTTP 501)",)


def test_dashboard_gone_after_a_success_is_unreachable(dash):
    p = poller(dash.address)
    good = p.poll()
    dash.server.shutdown()
    dash.server.server_close()
    bad = p.poll()
    assert bad.status == UNREACHABLE and bad.error == "connection refused"
    assert bad.last_success == good.last_success


def test_token_is_sent_as_bearer_and_a_refusal_says_where_it_came_from(dash, tmp_path):
    token_file = tmp_path / "tok"
    token_file.write_text("s3cret\n")
    p = poller(dash.address, RAY_AUTH_TOKEN_PATH=str(token_file))
    p.poll()
    assert set(dash.auth) == {"Bearer s3cret"}
    dash.set("/api/serve/applications/", 401, b"")
    assert p.poll().error == f"HTTP 401 on /api/serve/applications/: token from {token_file} refused"
    assert poller(dash.address).poll().status == UNAUTHORIZED


def test_token_lookup_order(tmp_path):
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("fromhome")
    path = tmp_path / "t"
    path.write_text("frompath")
    assert resolve_token({"RAY_AUTH_TOKEN": "env"}, home=tmp_path) == ("env", "RAY_AUTH_TOKEN")
    assert resolve_token({"RAY_AUTH_TOKEN_PATH": str(path)}, home=tmp_path) == ("frompath", str(path))
    assert resolve_token({}, home=tmp_path) == ("fromhome", str(tmp_path / ".ray" / "auth_token"))
    assert resolve_token({}, home=tmp_path / "nowhere") == (None, None)


def test_a_token_path_that_is_a_fifo_or_huge_is_passed_over(tmp_path):
    """Opening a FIFO nobody writes to would wait forever; neither is a token file."""
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("fromhome")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge"
    huge.write_text("t" * (MAX_TOKEN_BYTES + 1))
    for path in (fifo, huge, tmp_path):
        assert resolve_token({"RAY_AUTH_TOKEN_PATH": str(path)}, home=tmp_path) == (
            "fromhome", str(tmp_path / ".ray" / "auth_token"))


def test_address_order_and_gcs_addresses_are_not_dashboards():
    assert resolve_address("head:8265", {"RAY_DASHBOARD_ADDRESS": "http://d:1"}) == "http://head:8265"
    assert resolve_address(None, {"RAY_DASHBOARD_ADDRESS": "http://d:1/", "RAY_ADDRESS": "http://r:2"}) == "http://d:1"
    assert resolve_address(None, {"RAY_ADDRESS": "https://r:2"}) == "https://r:2"
    assert resolve_address(None, {"RAY_ADDRESS": "10.0.0.1:6379"}) == DEFAULT_ADDRESS
    assert resolve_address(None, {"RAY_ADDRESS": "auto"}) == DEFAULT_ADDRESS
