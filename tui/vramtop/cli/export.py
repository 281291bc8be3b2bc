"""``vramtop export``: the node's figures as Prometheus metrics, sampled on their own interval.

One thread samples (NVML and the processes every ``--interval`` s, Ray every ``ray_interval``,
the engines' telemetry) and publishes each snapshot; the HTTP server's threads only read the
latest one. ``start_export`` is also what the live view's ``--export`` uses, with the samples
the view already takes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # every vramtop command builds this parser: the rest is imported when used
    from vramtop.exporter.collector import LatestSnapshot
    from vramtop.sources.feed import Feed

from vramtop.exporter import DEFAULT_HOST

DEFAULT_PORT = 9400
DEFAULT_INTERVAL_S = 5.0

DESCRIPTION = """\
Serve this node's figures as Prometheus / OpenMetrics metrics: per GPU (memory total, reserved,
used and free in bytes, utilization, temperature, power, state), per serving instance (engine,
TP, memory per GPU, Ray Serve replica, container, KV cache use, requests running and waiting,
tokens/s), per Ray Serve deployment (replicas by state, autoscaling bounds, the most replicas
that can ever fit, warnings) and, for each of the config file's 'candidates', the fit verdict
(0 green, 1 yellow, 2 red), the largest max_model_len and KV tokens that would fit now and the
GPUs it would take. Listens on loopback unless another address is named.
"""

EPILOG = """\
examples:
  vramtop export                               http://127.0.0.1:9400/metrics
  vramtop export --listen 0.0.0.0:9400 --tls-cert node.crt --tls-key node.key --basic-auth-file auth.txt

exit status: 0 stopped (SIGTERM, ctrl+c), 2 no NVIDIA driver, 3 bad input (address, files, config).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``export`` to the ``vramtop`` command line."""
    from vramtop.cli import options

    p = subparsers.add_parser("export", help="serve Prometheus metrics of this node",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              parents=[options.demo(), options.ray(), options.config()])
    p.add_argument("--listen", default=f"{DEFAULT_HOST}:{DEFAULT_PORT}", metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_HOST}:{DEFAULT_PORT}; a bare PORT is loopback)")
    p.add_argument("--interval", dest="export_interval", type=float, metavar="SECONDS",
                   help=f"seconds between samples (default {DEFAULT_INTERVAL_S:g})")
    p.add_argument("--pid-labels", action="store_true",
                   help="also export each GPU process's memory with its PID (a new series per restart)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--basic-auth-file", type=Path, metavar="FILE",
                   help="require HTTP basic auth; FILE holds one line 'user:password'")
    add_bad_usage(p)
    p.set_defaults(run=run, parser=p)
    return p


def add_bad_usage(p: argparse.ArgumentParser) -> None:
    """A misuse is bad input: exit 3 with one line (argparse's own status, 2, means no driver)."""

    def bad_usage(message: str) -> None:
        p.exit(3, f"{p.prog}: error: {message}\n")

    p.error = bad_usage  # type: ignore[method-assign]


def start_export(address: str, latest: LatestSnapshot, certfile: Path | None = None, keyfile: Path | None = None,
                 basic_auth_file: Path | None = None):
    """Serve ``latest`` at ``address``; returns the server. Raises ``ListenError`` (one line)."""
    from vramtop.exporter.collector import registry_for
    from vramtop.exporter.server import ListenError, parse_listen, read_basic_auth, serve

    listen = parse_listen(address)
    if keyfile is not None and certfile is None:
        raise ListenError("--tls-key needs --tls-cert")
    auth = read_basic_auth(basic_auth_file) if basic_auth_file is not None else None
    return serve(registry_for(latest), listen, certfile, keyfile, auth)


def sample_once(feed: Feed, latest: LatestSnapshot) -> None:
    """Publish one sample; a failed one is counted, said in one line, and the last good snapshot
    stays served."""
    try:
        latest.publish(feed.sample())
    except Exception as exc:  # a source that fails is one line, the endpoint stays up
        latest.failed()
        print(f"vramtop export: sample failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)


def sample_forever(feed: Feed, latest: LatestSnapshot, interval: float, stop: threading.Event) -> None:
    """Sample every ``interval`` s on a fixed schedule until ``stop`` (a slow sample delays only
    itself: missed ticks are skipped, not caught up in a burst)."""
    start = time.monotonic()
    tick = 0
    while True:
        tick = max(tick + 1, int((time.monotonic() - start) // interval) + 1)
        if stop.wait(start + tick * interval - time.monotonic()):
            return
        sample_once(feed, latest)


def _bad(message: str) -> int:
    print(f"vramtop export: {message}", file=sys.stderr)
    return 3


def run(args: argparse.Namespace) -> int:
    """Run ``vramtop export`` until SIGTERM or ctrl+c."""
    from vramtop import config as config_mod
    from vramtop.exporter.collector import LatestSnapshot
    from vramtop.exporter.server import Listen, ListenError
    from vramtop.sources.feed import open_feed
    from vramtop.sources.nvml import NvmlUnavailable

    interval = args.export_interval or DEFAULT_INTERVAL_S
    if interval <= 0:
        return _bad("--interval must be above 0")
    try:
        cfg = config_mod.load(getattr(args, "config", None),
                              {"ray_address": getattr(args, "ray_address", None)})
    except config_mod.ConfigError as exc:
        return _bad(str(exc))
    latest = LatestSnapshot(cfg.thresholds, cfg.candidates, args.pid_labels)
    try:
        feed = open_feed(cfg, demo=getattr(args, "demo", False), ray=not getattr(args, "no_ray", False))
    except NvmlUnavailable as exc:
        print(f"vramtop export: {exc}; 'vramtop export --demo' serves the simulated node", file=sys.stderr)
        return 2
    sample_once(feed, latest)  # before serving: the endpoint never serves an empty picture
    try:
        server = start_export(args.listen, latest, args.tls_cert, args.tls_key, args.basic_auth_file)
    except ListenError as exc:
        feed.close()
        return _bad(str(exc))
    host, port = server.server_address[:2]
    scheme = "https" if args.tls_cert else "http"
    where = Listen(host, port)
    print(f"vramtop export: serving {scheme}://{where}/metrics, sampling every {interval:g} s"
          + ("" if where.loopback else " (not loopback: reachable from the network)"), file=sys.stderr)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sample_forever(feed, latest, interval, stop)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        feed.close()
    return 0


def export_live_view(address: str, cfg) -> LatestSnapshot:
    """``vramtop --export HOST:PORT``: serve the snapshots the live view already takes (it hands
    each one to the holder returned). Raises ``ListenError`` (one line)."""
    from vramtop.exporter.collector import LatestSnapshot

    latest = LatestSnapshot(cfg.thresholds, cfg.candidates)
    start_export(address, latest)
    return latest
