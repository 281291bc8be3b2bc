"""``vramtop report``: a Markdown (or JSON) report of this node, the demo node or a recording.

Exit status: 0 written, 2 bad input or no data (one line on stderr saying why).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from vramtop.report.build import LANGS, build_report
from vramtop.report.candidates import SEED_CANDIDATES, CandidateError, parse_candidate

DESCRIPTION = """\
Write a report of the node's VRAM: each GPU with its state, the processes and the serving
instances with what one replica costs, Ray Serve deployments with their autoscaling against
what the cluster can hold (VRAM at min and max replicas), each candidate model's verdict with
the changes that would make it fit, and recommendations drawn from those facts.

A candidate is MODEL[,key=value...]: options follow a comma because model names may hold
colons, e.g.  --candidate amsaravi/medgemma-27b-it:q8,engine=ollama
              --candidate medgemma-4b-it,tp=2,util=0.85,max_model_len=8192,stopped=ray:4000
Keys: engine, tp, util, max_model_len, quant, kv_cache_dtype, num_ctx, num_parallel, replicas,
gpus (0+1), stopped (instance keys joined by +), as in 'vramtop fit'.
With --demo and no --candidate, the seed analysis's two Ollama models are evaluated.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``report`` to the ``vramtop`` command line."""
    from vramtop.cli import options

    p = subparsers.add_parser("report", help="write a Markdown or JSON report of the node's VRAM",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                              parents=[options.demo(), options.ray(), options.config()])
    p.add_argument("--replay", type=Path, metavar="FILE", help="report on a recording (its last snapshot)")
    p.add_argument("--at", type=float, metavar="SECONDS", help="with --replay: the snapshot this far into the recording")
    p.add_argument("--candidate", action="append", default=[], metavar="MODEL[,k=v...]",
                   help="a model to check for fit; repeatable")
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the report (default en)")
    p.add_argument("--json", dest="report_json", action="store_true", help="the same content as JSON")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(run=run, parser=p)
    return p


def _bad(message: str) -> int:
    print(f"vramtop report: {message}", file=sys.stderr)
    return 2


def _snapshot(args: argparse.Namespace):
    """The snapshot to report on and a label for where it came from."""
    from vramtop import config as config_mod
    from vramtop.sources.feed import open_feed

    if args.replay is not None:
        src = open_feed(replay=args.replay).source
        if args.at is not None:
            src.jump_to(src.start + args.at)
        else:
            src.step(src.count)
        return src.sample(), src.label
    if getattr(args, "demo", False):
        return open_feed(demo=True).sample(), "demo"
    cfg = config_mod.load(getattr(args, "config", None), {"ray_address": getattr(args, "ray_address", None)})
    feed = open_feed(cfg, ray=not getattr(args, "no_ray", False))
    try:
        snap = feed.sample()
    finally:
        feed.close()
    if snap.ray is not None and not snap.ray.found:  # no dashboard here: the report says nothing of Ray
        snap = replace(snap, ray=None)
    return snap, "live"


def run(args: argparse.Namespace) -> int:
    """Run ``vramtop report``; returns the exit status."""
    from vramtop.config import ConfigError
    from vramtop.recording import RecordingError
    from vramtop.sources.nvml import NvmlUnavailable

    if getattr(args, "demo", False) and args.replay is not None:
        args.parser.error("argument --replay: not allowed with argument --demo")
    if args.at is not None and args.replay is None:
        return _bad("--at needs --replay FILE")
    texts = args.candidate or (list(SEED_CANDIDATES) if getattr(args, "demo", False) else [])
    try:
        candidates = [(t, parse_candidate(t)) for t in texts]
    except CandidateError as exc:
        return _bad(str(exc))
    try:
        snapshot, label = _snapshot(args)
    except (RecordingError, ConfigError) as exc:
        return _bad(str(exc))
    except NvmlUnavailable as exc:
        return _bad(f"{exc} (use --demo or --replay FILE)")
    report = build_report(snapshot, candidates, args.lang, label)
    text = (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n" if args.report_json
            else report.to_markdown())
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        return _bad(f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"report written to {args.output}", file=sys.stderr)
    return 0
