"""``vramtop record``: snapshots to a recording, without a UI, until stopped or for a duration.

Each snapshot reaches the file as it is taken, so stopping in any way (Ctrl-C, SIGTERM, a kill,
a full disk) leaves a recording that replays up to its last complete snapshot. Ray state is
polled on its own slower interval and, like serving telemetry, rides on every snapshot, as in
the live view.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from vramtop.recording import Recorder, RecordingError
from vramtop.snapshot import NodeSnapshot
from vramtop.sources.feed import Feed, open_feed

DESCRIPTION = """\
Record this node's snapshots (GPUs, processes and their ancestors, errors, Ray Serve state,
serving telemetry) to FILE until Ctrl-C, SIGTERM or --duration. Replay it with
'vramtop --replay FILE', or write a report from it with 'vramtop report --replay FILE'.
The file is written as it goes: a recording that is cut short still replays up to its last
complete snapshot. A day at 1 Hz on an 8-GPU node takes a few tens of MB (see bench/bench_record.py).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``record`` to the ``vramtop`` command line."""
    from vramtop.cli import options, positive_seconds  # (the command line imports this module)

    p = subparsers.add_parser("record", help="record snapshots to a file without a UI",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              parents=[options.demo(), options.ray(), options.config()])
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="the recording to write")
    p.add_argument("--interval", dest="record_interval", type=positive_seconds, metavar="SECONDS",
                   help="seconds between snapshots (default 1)")
    p.add_argument("--duration", type=positive_seconds, metavar="SECONDS", help="stop after this many seconds")
    p.set_defaults(run=run)
    return p


def record_loop(feed: Feed, recorder: Recorder, interval: float, duration: float | None = None,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                stop: Callable[[], bool] = lambda: False, first: NodeSnapshot | None = None) -> int:
    """Sample every ``interval`` s (on a fixed schedule: a slow tick delays only itself) and
    write each snapshot, starting with ``first`` when given; returns how many were written."""
    start = clock()
    tick = 0
    while not stop():
        now = clock()
        if duration is not None and now - start >= duration:
            break
        snapshot, first = (first, None) if first is not None else (feed.sample(now), None)
        recorder.write(snapshot)
        tick += 1
        next_at = start + tick * interval
        now = clock()
        if next_at < now:  # fell behind: skip the missed ticks rather than burst
            tick = int((now - start) // interval) + 1
            next_at = start + tick * interval
        if duration is not None and next_at - start >= duration:
            break
        sleep(next_at - now)
    return recorder.count


def _open(args: argparse.Namespace) -> Feed:
    from vramtop import config as config_mod

    demo = getattr(args, "demo", False)
    cfg = None if demo else config_mod.load(getattr(args, "config", None),
                                            {"ray_address": getattr(args, "ray_address", None)})
    return open_feed(cfg, demo=demo, ray=not getattr(args, "no_ray", False))


def _bad(message: str) -> int:
    print(f"vramtop record: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``vramtop record``; 0 when at least one snapshot was written, 2 otherwise."""
    from vramtop.config import ConfigError
    from vramtop.sources.nvml import NvmlUnavailable

    interval = args.record_interval or getattr(args, "interval", None) or 1.0
    if interval <= 0 or (args.duration is not None and args.duration <= 0):
        return _bad("--interval and --duration must be above 0")
    try:
        feed = _open(args)
    except NvmlUnavailable as exc:
        return _bad(f"{exc}; 'vramtop record --demo' records the simulated node")
    except ConfigError as exc:
        return _bad(str(exc))
    first = feed.sample()
    try:
        recorder = Recorder(args.output, first.hostname, interval)
    except OSError as exc:
        return _bad(f"cannot write {args.output}: {exc.strerror or exc}")
    except RecordingError as exc:  # another recorder holds the file, or it is no regular file
        return _bad(str(exc))
    stopping = []
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    print(f"recording {first.hostname} to {args.output} every {interval:g} s"
          + (f" for {args.duration:g} s" if args.duration else " (Ctrl-C stops)"), file=sys.stderr)
    try:
        record_loop(feed, recorder, interval, args.duration, stop=lambda: bool(stopping), first=first)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"vramtop record: stopped: {exc.strerror or exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        recorder.close()
        feed.close()
    size = args.output.stat().st_size if args.output.exists() else 0
    print(f"{recorder.count} snapshot{'s' if recorder.count != 1 else ''}, {size / 1024:,.1f} KiB in {args.output}",
          file=sys.stderr)
    return 0 if recorder.count else 2
