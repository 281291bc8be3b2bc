"""The endpoint itself: loopback unless told, basic auth and TLS, a stalled client that holds
nobody up, and bad input as one line with status 3."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from exporter_support import free_port, scrape, wait_for
from vramtop.exporter.server import ListenError, parse_listen


@pytest.mark.parametrize("text, host, port", [
    ("9400", "127.0.0.1", 9400),
    ("127.0.0.1:9400", "127.0.0.1", 9400),
    ("0.0.0.0:9100", "0.0.0.0", 9100),
    ("[::1]:9400", "::1", 9400),
])
def test_listen_address_is_loopback_unless_named(text, host, port):
    listen = parse_listen(text)
    assert (listen.host, listen.port) == (host, port)
    assert listen.loopback == (host != "0.0.0.0")


@pytest.mark.parametrize("text", ["", ":9400", "host:", "127.0.0.1:99999", "127.0.0.1:http"])
def test_bad_listen_address_is_refused(text):
    with pytest.raises(ListenError):
        parse_listen(text)


@pytest.fixture
def export_demo(tmp_path):
    started = []

    def start(*extra: str, scheme: str = "http", context=None) -> str:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "vramtop", "export", "--demo", "--listen", f"127.0.0.1:{port}",
                                 "--interval", "0.5", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started.append(proc)
        url = f"{scheme}://127.0.0.1:{port}/metrics"
        wait_for(lambda: proc.poll() is not None or scrape(url, context=context)[0] in (200, 401), 60,
                 "the exporter listens")
        assert proc.poll() is None, proc.stderr.read()
        return url

    yield start
    for proc in started:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_basic_auth_lets_in_only_the_right_password(tmp_path, export_demo):
    auth = tmp_path / "auth.txt"
    auth.write_text("prometheus:s3cret:with:colons\n")
    url = export_demo("--basic-auth-file", str(auth))

    def basic(pair: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    assert scrape(url)[0] == 401
    assert scrape(url, headers=basic("prometheus:wrong"))[0] == 401
    status, body = scrape(url, headers=basic("prometheus:s3cret:with:colons"))
    assert status == 200 and b'vramtop_gpu_memory_free_bytes{gpu="0"} 3.3554432e+07' in body


def test_tls_serves_https_and_a_client_that_never_handshakes_holds_nobody_up(tmp_path, export_demo):
    cert, key = tmp_path / "node.crt", tmp_path / "node.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(cafile=str(cert))
    url = export_demo("--tls-cert", str(cert), "--tls-key", str(key), scheme="https", context=context)
    port = int(url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port)):  # connects, never says a word
        start = time.monotonic()
        status, body = scrape(url, context=context)
        assert status == 200 and b"vramtop_gpu_state{" in body
        assert time.monotonic() - start < 5
    with pytest.raises(OSError):  # plain HTTP gets no metrics from the TLS port
        scrape(url.replace("https", "http"), timeout=3)


@pytest.mark.parametrize("args, says", [
    (["--listen", "127.0.0.1:99999"], "port from 1 to 65535"),
    (["--basic-auth-file", "/nonexistent/auth"], "cannot read the basic-auth file"),
    (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], "cannot load the TLS certificate"),
    (["--tls-key", "k.pem"], "--tls-key needs --tls-cert"),
    (["--interval", "soon"], "invalid float value"),
])
def test_bad_input_is_one_line_and_status_3(args, says):
    result = subprocess.run([sys.executable, "-m", "vramtop", "export", "--demo", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr, result.stderr


def test_a_basic_auth_file_that_is_a_fifo_is_refused_unread(tmp_path):
    """Nobody writes to the FIFO: opening it to read would wait forever."""
    fifo = tmp_path / "auth"
    os.mkfifo(fifo)
    result = subprocess.run([sys.executable, "-m", "vramtop", "export", "--demo", "--basic-auth-file", str(fifo)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip() == f"vramtop export: {fifo}: cannot read the basic-auth file (not a regular file)", result.stderr


def test_a_bad_candidate_in_the_config_is_one_line_naming_file_and_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("interval: 1\ncandidates:\n  - model: medgemma-4b-it\n    tensor_paralel_size: 2\n")
    result = subprocess.run([sys.executable, "-m", "vramtop", "--config", str(config), "export", "--demo"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert f"{config}: line 2: 'candidates': candidate 1: unknown candidate field 'tensor_paralel_size'" in line


def test_demo_export_carries_the_seeds_serve_analysis(export_demo):
    """The demo node's Ray Serve state, analysed as the Ray panel analyses it: min_replicas=2
    cannot be met on GPUs that hold one replica, and autoscaling can never add replicas."""
    status, body = scrape(export_demo())
    text = body.decode()
    dep = 'app="medgemma",deployment="VLLMDeployment"'
    for line in (f"vramtop_serve_deployment_max_feasible_replicas{{{dep}}} 1.0",
                 f"vramtop_serve_deployment_min_replicas{{{dep}}} 2.0",
                 f"vramtop_serve_deployment_max_replicas{{{dep}}} 16.0",
                 f'vramtop_serve_deployment_replicas{{{dep},state="pending"}} 1.0',
                 "vramtop_ray_dashboard_up 1.0"):
        assert line in text, line
    warnings = [l for l in text.splitlines() if l.startswith("vramtop_serve_deployment_warning{")]
    assert any("min_replicas=2 cannot be met" in w for w in warnings)
    assert any("can never add replicas" in w for w in warnings)
