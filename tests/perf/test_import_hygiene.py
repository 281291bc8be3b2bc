"""Start-up: the one-shot commands import what they use. ``vramtop --once --json`` and
``vramtop fit`` run in a child process (``python -X importtime`` lists every module it imported),
on the stand-in driver with a real vLLM process tree; neither may import Textual, and the
one-shot picture may not import the subcommands' own modules (the recording format, the report,
the launcher; the fit model is there only because the telemetry's KV check uses it). ``fit`` on a
catalog model and paper GPUs imports no network client, no source of the node and no grouping;
``--once`` with no config file imports no PyYAML. The live view, headless in a child process on a
node without pins and without Ray, loads neither the fit engine nor the what-if and Ray panels,
the recording format or the HTTP client; a pin loads the fit engine when it is judged.

The import rules, read from the source with ``ast``: only the UI and the commands import Textual;
nothing but a command imports a command; the fit engine reaches no source (``sources/``, NVML)."""

import ast
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import fakenvml
from engine_tree import engine_tree
from vramtop.widgets.whatif.form import FormState
from vramtop.widgets.whatif.persist import WhatIfMemory, save_memory


def imported(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "vramtop", *args],
                            env=env, capture_output=True, text=True, timeout=60)
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
               if line.startswith("import time:") and "|" in line}
    return result, modules


def top(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_once_json_imports_neither_textual_nor_subcommands(tmp_path):
    with engine_tree(2) as (_, workers):
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        for gpu, pid in enumerate(workers):
            scenario.add_process(gpu, pid, 20_730)
        scenario.write()
        result, modules = imported(["--once", "--json", "--no-ray"], scenario.env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"instances"' in result.stdout  # it did the whole picture, not an early exit
    assert "vramtop.sources.live" in modules and "vramtop.once" in modules  # the listing is complete
    assert not top(modules) & {"textual", "rich"}
    subcommands = {"vramtop.cli.fit", "vramtop.cli.record", "vramtop.recording", "vramtop.cli.report",
                   "vramtop.report.build", "vramtop.cli.export", "vramtop.cli.watch", "vramtop.cli.launch"}
    assert not subcommands & modules


def test_fit_imports_no_textual():
    result, modules = imported(["fit", "medgemma-4b-it", "--on", "1x24GiB", "--json"])
    assert result.returncode in (0, 1, 2), result.stderr[-2000:]
    assert "vramtop.fit.verdict" in modules
    assert "textual" not in top(modules)
    assert not {"vramtop.recording", "vramtop.report.build", "vramtop.cli.launch", "prometheus_client"} & modules


# What a path does not use it does not import: the network stack (``http.client``, ``urllib``,
# ``email``, ``ssl``) only where a request may be made, PyYAML only where a YAML file is read, the
# node's sources and the snapshot's grouping only where a live node is read.
NETWORK = {"http.client", "urllib.request", "email.parser", "ssl", "huggingface_hub", "vramtop.peer_http",
           "vramtop.fit.remote", "vramtop.fit.hub", "vramtop.fit.ollama_library"}


def test_fit_on_paper_with_a_catalog_model_imports_no_network_no_node_and_no_config(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result, modules = imported(["fit", "medgemma-4b-it", "--on", "2x80GiB", "--json"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["kv_cache_tokens"] > 0  # a verdict with its numbers, not an early exit
    assert {"vramtop.fit.verdict", "vramtop.fit.command", "yaml"} <= modules  # the listing is complete
    assert not NETWORK & modules
    assert not {m for m in modules if _within(m, ("vramtop.sources", "vramtop.analysis", "vramtop.snapshot",
                                                    "vramtop.config", "pynvml", "psutil"))}


def test_fit_on_a_name_the_catalog_lacks_goes_on_to_the_remote_lookups(tmp_path):
    """The other side of the rule above: a name the catalog does not know still reaches the
    Hub's cache and the network lookups (here refused: offline, nothing cached)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1", "OLLAMA_HOST": "127.0.0.1:9", "OLLAMA_MODELS": str(tmp_path / "ollama")}
    result, modules = imported(["fit", "no-such-org/no-such-model", "--on", "1x24GiB"], env)
    assert result.returncode == 3, result.stderr[-2000:]
    said = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert len(said) == 1 and "no-such-org/no-such-model" in said[0] and "HF_HUB_OFFLINE" in said[0]
    assert "vramtop.fit.remote" in modules


def test_once_without_a_config_file_or_a_peer_to_ask_imports_no_yaml_and_no_http(tmp_path):
    """No file to read, no engine's server to ask (the engine core has no API server): neither
    PyYAML nor the HTTP client and its TLS library is imported. The telemetry tests ask a real
    server from ``--once`` in a child process, where the client is imported by that request."""
    with engine_tree(2) as (_, workers):
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        for gpu, pid in enumerate(workers):
            scenario.add_process(gpu, pid, 20_730)
        scenario.write()
        env = scenario.env(base={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "none")})
        result, modules = imported(["--once", "--no-ray"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "GPU 0 NVIDIA A10" in result.stdout and "VLLM::Worker_TP0" in result.stdout
    assert {"vramtop.config", "vramtop.telemetry.poller", "vramtop.peer_http"} <= modules  # the listing is complete
    assert "yaml" not in top(modules)
    assert not {"http.client", "ssl", "email.parser"} & modules
    assert not {"textual", "rich"} & top(modules)

    # With a file, it is read: its threshold decides the GPUs' states (32 MiB free on GPU 0 is
    # critical by default, not under a 16 MiB threshold).
    (tmp_path / "none" / "vramtop").mkdir(parents=True)
    (tmp_path / "none" / "vramtop" / "config.yaml").write_text("critical_free_mib: 16\n")
    result, modules = imported(["--once", "--no-ray"], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "yaml" in modules
    gpu0 = next(line for line in result.stdout.splitlines() if line.startswith("GPU 0 "))
    assert "critical" not in gpu0


# The live view run as the command runs it (the config's defaults, ``open_feed`` on this node with
# no Ray, ``VramtopApp``), headless in a child process, for a few ticks; it prints the side
# column's line and the modules it imported.
LIVE_VIEW = r"""
import json, os, sys, time
from vramtop.app import VramtopApp  # first, as the command imports it: before anything imports asyncio
import asyncio
from vramtop.config import Config
from vramtop.sources.feed import open_feed

async def main():
    ray_at = os.environ.get("VRAMTOP_TEST_RAY")  # a dashboard to poll; none: no Ray
    cfg = Config(interval=0.2, ray_address=ray_at, ray_interval=0.5)
    app = VramtopApp(open_feed(cfg, ray=ray_at is not None), cfg)
    async with app.run_test(size=(160, 45)) as pilot:
        deadline = time.monotonic() + 30
        pins = ""
        ray = None
        while time.monotonic() < deadline and (app.history.added < 3 or "judging" in pins or (ray_at and not ray)):
            await pilot.pause(0.05)
            pins = str(app.query_one("#side-pins").render())
            ray = app.snapshot.ray.error if app.snapshot and app.snapshot.ray else None
        shown = [p.pid for p in app.snapshot.gpu_processes] if app.snapshot else []
    print(json.dumps({"ticks": app.history.added, "pids": shown, "pins": pins, "ray": ray,
                      "modules": sorted(sys.modules)}))
    sys.stdout.flush()
    os._exit(0)  # the feed's threads end with the process

asyncio.run(main())
"""

# What the live view loads only when it is used: the what-if panel (the fit engine and the model
# lookups over the network), the Ray panel and the Ray analysis, the recording format, and ``ssl`` with
# OpenSSL (asyncio is imported without it; the telemetry's ``peer_http`` is there, and imports the HTTP client
# and ``ssl`` with its first request).
ON_DEMAND = {"vramtop.fit.verdict", "vramtop.fit.specs", "vramtop.fit.fields", "vramtop.fit.vllm",
             "vramtop.widgets.whatif.assess", "vramtop.widgets.whatif.panel", "vramtop.widgets.ray_panel",
             "vramtop.ray.feasibility", "vramtop.recording", "vramtop.record_types", *(NETWORK - {"vramtop.peer_http"})}


def _live_view(env: dict[str, str]) -> dict:
    result = subprocess.run([sys.executable, "-c", LIVE_VIEW], env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_live_view_loads_the_fit_engine_only_for_a_pin(tmp_path):
    """A node of training jobs, no Ray, nothing pinned: the live view samples it without the
    what-if panel's fit engine, the Ray panel, the recording format or the HTTP client. Once a
    candidate is pinned (as the what-if panel saves it), the side column judges it, and only then
    is the fit engine loaded."""
    with fakenvml.spawn_processes("python train.py --run 0", "python train.py --run 1") as pids:
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        for gpu, pid in enumerate(pids):
            scenario.add_process(gpu, pid, 20_000)
        scenario.write()
        env = scenario.env(base={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
                                 "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                                 "HF_HUB_OFFLINE": "1"})
        bare = _live_view(env)
        assert bare["ticks"] >= 3 and sorted(bare["pids"]) == sorted(pids)  # it sampled this node, live
        assert bare["pins"].startswith("w what if")  # the hint: nothing pinned
        assert {"vramtop.sources.live", "vramtop.widgets.side_column", "vramtop.widgets.whatif.persist",
                "pynvml"} <= set(bare["modules"])  # the listing is complete
        assert ON_DEMAND & set(bare["modules"]) == set()

        pin = FormState(model="medgemma-4b-it", engine="vllm")
        assert save_memory(WhatIfMemory(pins=(pin,)), tmp_path / "state" / "vramtop" / "whatif.yaml") is None
        pinned = _live_view(env)
    assert pinned["pins"].split()[0] in ("✓", "!", "✗") and "medgemma-4b-it" in pinned["pins"]
    assert "vramtop.fit.verdict" in pinned["modules"]


# The live view's asyncio came without ``ssl``; ``ssl`` itself is imported as usual afterwards:
# an HTTPS request (a dashboard, the Hub) from the live view's process, to a server on 127.0.0.1
# whose self-signed certificate the client trusts through SSL_CERT_FILE, verified.
HTTPS_AFTER = r"""
import sys
from vramtop.app import VramtopApp
import asyncio
from vramtop import peer_http

held_off = "ssl" not in sys.modules

async def main():
    return await asyncio.to_thread(peer_http.get, sys.argv[1], 10, 1 << 16)

answer = asyncio.run(main())
print(held_off, answer.status, answer.body.decode())
"""


def test_an_https_request_works_in_the_live_views_process(tmp_path):
    cert, key = tmp_path / "node.crt", tmp_path / "node.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run([sys.executable, "-c", HTTPS_AFTER, f"https://127.0.0.1:{server.server_port}/"],
                                env={**os.environ, "SSL_CERT_FILE": str(cert)}, capture_output=True, text=True,
                                timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "200", "hello"]


def test_the_live_view_polls_an_absent_dashboard_without_loading_the_http_client(tmp_path):
    """The default on a node without Ray: the dashboard's address is polled and refuses. The HTTP
    client (``http.client``, ``email``, ``ssl`` and OpenSSL: 5 MiB) is loaded by the first peer
    that accepts a connection, not by polls that find no one; a dashboard that answers loads it."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    base = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    with fakenvml.spawn_processes("python train.py") as (pid,):
        scenario = fakenvml.seed_a10(tmp_path / "scenario.txt")
        scenario.add_process(0, pid, 20_000)
        scenario.write()
        absent = _live_view(scenario.env(base={**base, "VRAMTOP_TEST_RAY": f"http://127.0.0.1:{closed}"}))
        assert "refused" in absent["ray"]  # polled, and said so
        assert not {"http.client", "ssl", "email.parser"} & set(absent["modules"])

        class NotRay(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_error(404)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), NotRay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            there = _live_view(scenario.env(base={**base, "VRAMTOP_TEST_RAY": f"http://127.0.0.1:{server.server_port}"}))
        finally:
            server.shutdown()
    assert "404" in there["ray"] and "http.client" in there["modules"]


def test_help_still_lists_every_subcommand():
    result, _ = imported(["--help"])
    assert result.returncode == 0
    for name in ("fit", "record", "report", "export", "watch", "launch"):
        assert name in result.stdout


# -- The import rules: every import counts, also those inside functions, except those under
# ``if TYPE_CHECKING:``, which are not made at run time.

PACKAGE = Path(__file__).resolve().parents[2] / "tui" / "vramtop"
UI = ("vramtop.app", "vramtop.themes", "vramtop.widgets")
COMMANDS = ("vramtop.cli", "vramtop.once")
SOURCES = ("vramtop.sources", "pynvml")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


class _Imports(ast.NodeVisitor):
    def __init__(self, package: str) -> None:
        self.package, self.found = package, set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found |= {alias.name for alias in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parent = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join(parent + ([node.module] if node.module else []))
        self.found.add(base)
        self.found |= {f"{base}.{alias.name}" for alias in node.names}  # a module imported by name


def import_graph() -> dict[str, set[str]]:
    """Each vramtop module and the modules it imports (vramtop's own as modules that exist)."""
    files = {_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        visitor = _Imports(module if path.name == "__init__.py" else module.rpartition(".")[0])
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[module] = {m for m in visitor.found if not m.startswith("vramtop") or m in files}
    return graph


def reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for m in graph.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_the_import_graph_is_read_whole():
    graph = import_graph()
    assert "textual.app" in graph["vramtop.app"]
    assert "vramtop.widgets.gpu_bars" in graph["vramtop.app"]  # a submodule imported from its package
    assert "vramtop.fit.specs" in graph["vramtop.fit.hub"]
    assert "vramtop.telemetry.kv_check" not in graph["vramtop.telemetry.model"]  # TYPE_CHECKING only
    assert "pynvml" in reach(graph, "vramtop.sources.live")


def test_only_the_ui_and_the_commands_import_textual():
    graph = import_graph()
    textual = {m for m, imports in graph.items()
               if {i.split(".")[0] for i in imports} & {"textual", "rich"}}
    assert "vramtop.app" in textual
    assert {m for m in textual if not _within(m, UI + COMMANDS)} == set()


def test_nothing_but_a_command_imports_a_command():
    graph = import_graph()
    breaks = {(m, i) for m, imports in graph.items() for i in imports
              if _within(i, COMMANDS) and not _within(m, COMMANDS) and m != "vramtop.__main__"}
    assert breaks == set()


def test_the_fit_engine_reaches_no_source():
    graph = import_graph()
    fit = [m for m in graph if _within(m, ("vramtop.fit",))]
    assert "vramtop.fit.verdict" in fit
    reaching = {m for m in fit if any(_within(r, SOURCES) for r in reach(graph, m))}
    assert reaching == set()
