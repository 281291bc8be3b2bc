"""``vramtop watch``: alerts without Prometheus. Samples the node, checks one rule (see
``rules``) on each sample, and when it fires runs a command and/or posts a JSON webhook, once
per episode.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
import time

from vramtop.cli.export import add_bad_usage

DESCRIPTION = """\
Watch this node and act when a rule holds: print a line, run a command (--run) and/or post a
JSON webhook (--webhook), once per episode (again only after the rule stopped holding).

rules:
  gpu.free_mib < 1024 for 2m        any GPU under 1 GiB free for two minutes
  gpu0.temperature_c >= 85          GPU 0 at 85 °C or more
  node.free_mib > 40000             the node's GPUs have 40,000 MiB free in all
  candidate:medgemma-27b turns green   a config file 'candidates' entry would now fit
figures: gpu[N].free_mib, used_mib, reserved_mib, total_mib, utilization_pct, temperature_c,
power_w; node.free_mib, used_mib, reserved_mib, total_mib. Operators: < <= > >= == !=.
"""

EPILOG = """\
The command is split like a shell line but no shell runs (write sh -c '...' for one); it gets
VRAMTOP_RULE, VRAMTOP_DETAIL, VRAMTOP_HOSTNAME and VRAMTOP_EVENT (the webhook's JSON).
The webhook gets {"rule", "detail", "hostname", "since", "fired_at"} within 5 s; redirects are
not followed.

exit status: 0 stopped (SIGTERM, ctrl+c), 2 no NVIDIA driver, 3 bad input (rule, URL, config).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``watch`` to the ``vramtop`` command line."""
    from vramtop.cli import options

    p = subparsers.add_parser("watch", help="run a command or post a webhook when a rule holds",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              parents=[options.demo(), options.config()])
    p.add_argument("--when", required=True, metavar="RULE", help="the rule (see above)")
    p.add_argument("--run", dest="watch_run", metavar="CMD", help="command to run when the rule fires")
    p.add_argument("--webhook", metavar="URL", help="POST the event as JSON to URL when the rule fires")
    p.add_argument("--interval", dest="watch_interval", type=float, metavar="SECONDS",
                   help="seconds between samples (default: the config's interval, 1)")
    add_bad_usage(p)
    p.set_defaults(run=run, parser=p)
    return p


def _bad(message: str) -> int:
    print(f"vramtop watch: {message}", file=sys.stderr)
    return 3


def run(args: argparse.Namespace) -> int:
    """Run ``vramtop watch`` until SIGTERM or ctrl+c."""
    from vramtop import config as config_mod
    from vramtop.exporter import notify, rules
    from vramtop.exporter.watcher import Watcher, say
    from vramtop.sources.feed import open_feed
    from vramtop.sources.nvml import NvmlUnavailable

    try:
        cfg = config_mod.load(getattr(args, "config", None))
    except config_mod.ConfigError as exc:
        return _bad(str(exc))
    try:
        rule = rules.parse(args.when, tuple(c.name for c in cfg.candidates))
        argv = notify.parse_command(args.watch_run) if args.watch_run is not None else None
        hook = notify.parse_webhook(args.webhook) if args.webhook is not None else None
    except ValueError as exc:
        return _bad(str(exc))
    interval = args.watch_interval or getattr(args, "interval", None) or cfg.interval
    if interval <= 0:
        return _bad("--interval must be above 0")
    try:  # the rules read the node alone: no Ray dashboard, no engine is asked
        feed = open_feed(cfg, demo=getattr(args, "demo", False), ray=False, telemetry=False)
    except NvmlUnavailable as exc:
        print(f"vramtop watch: {exc}; 'vramtop watch --demo' watches the simulated node", file=sys.stderr)
        return 2
    watcher = Watcher(rule, cfg.candidates, argv, hook)
    say(f"watching {socket.gethostname()} every {interval:g} s for: {rule.text}")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                event = watcher.observe(feed.sample(), started)
            except Exception as exc:  # a failed sample is one line; the watch goes on
                say(f"sample failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                event = None
            if event is not None:
                watcher.act(event)
            watcher.reap()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        feed.close()
    return 0
