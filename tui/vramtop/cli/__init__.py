"""The ``vramtop`` command: the live view, ``--once`` pictures, and the subcommands, one module
each in this package. Nothing else imports it: the commands use the rest, never the reverse.
A command imports what its path uses when it takes it (a subcommand does not read the config)."""

from __future__ import annotations

import argparse
import os
import importlib
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from vramtop import __version__

if TYPE_CHECKING:
    from vramtop.config import Config

DESCRIPTION = """\
vramtop shows, live, what uses the VRAM of a GPU node that serves LLMs: a bar per GPU
(used / driver-reserved / free, as nvidia-smi counts them), the processes on each GPU, and
which of them form one serving instance (vLLM engine and TP workers, Ray Serve replicas,
Ollama and llama.cpp runners), with the cost of each.
"""

EPILOG = """\
examples:
  vramtop                      live view of this node
  vramtop --demo               the built-in demo node (4x A10 serving one vLLM replica)
  vramtop --cluster            every Ray node's GPUs, from the Ray dashboard (also the view
                               where there is no NVIDIA driver and a Ray cluster answers)
  vramtop --once               print the current picture and exit
  vramtop --once --json        the same as a stable JSON document (see README)
  vramtop fit medgemma-4b-it --engine vllm --tp 2 --util 0.85 --demo
                               would this model fit on the node now? (see: vramtop fit --help)

keys in the live view: q quit, ? help, p pause, tab next panel, / filter, s/S sort, k stop,
w what-if, R Ray panel, r write a report, ctrl+r save the last minutes as a recording,
ctrl+p every action.

exit status: 0 ok, 1 standard output closed early (e.g. '| head'), 2 no NVIDIA driver (and no
Ray cluster) / bad configuration, 3 bad command-line input, 70 internal error (a bug: the
traceback is on stderr).
"""

EXIT_OK = 0
EXIT_PIPE_CLOSED = 1  # what Python's documentation does on a closed pipe (signal module, SIGPIPE)
EXIT_BAD_INPUT = 3
EXIT_CRASH = 70  # EX_SOFTWARE of sysexits.h: distinct from every status a command gives on purpose


# Each module adds its subparser with ``add_parser(subparsers)`` and sets ``run(args) -> int``.
SUBCOMMANDS: dict[str, str] = {"fit": "vramtop.cli.fit", "record": "vramtop.cli.record", "report": "vramtop.cli.report",
                               "export": "vramtop.cli.export", "watch": "vramtop.cli.watch",
                               "launch": "vramtop.cli.launch"}


def positive_seconds(text: str) -> float:
    """An argparse type for a span of time: a finite number above 0 (``nan`` would spin, ``inf``
    never tick)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds above 0: {text!r}")
    return value


def sample_interval(text: str) -> float:
    """``--interval``: a span of time in the range the config file's ``interval`` takes, so a bad
    value on the command line is a command-line error (exit 3), not a config error."""
    from vramtop.config import RANGES

    value = positive_seconds(text)
    low, high = RANGES["interval"]
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g} seconds: {text!r}")
    return value


class Parser(argparse.ArgumentParser):
    """Bad input on the command line is one line and exit status 3 (argparse's own is the whole
    usage and 2, which here means no driver). Subcommands' parsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser(subcommands: tuple[str, ...] = tuple(SUBCOMMANDS)) -> argparse.ArgumentParser:
    """The command line with the ``subcommands`` named; with none, only the live view's options
    (no subcommand's module is imported: ``fit`` and the recording format pull in YAML, the
    catalog and prometheus_client, which ``--once`` does not use)."""
    from vramtop.cli import options

    parser = Parser(
        prog="vramtop",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options.demo(defaults=True), options.ray(defaults=True), options.config(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"vramtop {__version__}")
    parser.add_argument("--replay", type=Path, metavar="FILE",
                        help="play a recording (from 'vramtop record' or the live view's ctrl+r) through the same views")
    parser.add_argument("--cluster", action="store_true",
                        help="show every Ray node's GPUs, as Ray's reporter reports them, instead of this machine's")
    parser.add_argument("--once", action="store_true", help="print the current picture and exit")
    parser.add_argument("--json", action="store_true", help="with --once: print the JSON snapshot")
    parser.add_argument("--csv", action="store_true", help="with --once: print the process table as CSV")
    parser.add_argument("--readonly", action="store_true",
                        help="the live view sends no signal and writes no file (no stop, report, recording, "
                             "screenshot or saved what-if state)")
    parser.add_argument("--interval", type=sample_interval, metavar="SECONDS", help="seconds between samples (default 1)")
    parser.add_argument("--theme", metavar="NAME", help="colour theme (see README)")
    parser.add_argument("--print-config", action="store_true", help="print the effective configuration and where each value came from")
    parser.add_argument("--export", metavar="HOST:PORT",
                        help="also serve Prometheus metrics of the live view's samples (see: vramtop export --help)")
    if not subcommands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in subcommands:
        importlib.import_module(SUBCOMMANDS[name]).add_parser(sub)
    return parser


class _NeedsSubcommands(Exception):
    pass


def _raise_needs_subcommands(message: str) -> NoReturn:
    raise _NeedsSubcommands(message)


def parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace, list[str]]:
    """(parser, arguments, what it did not know): a command line of the live view's options alone
    is parsed without the subcommands' modules, one that starts with a subcommand with that
    subcommand's alone; anything else (help, an error) by the whole parser, so it reads as it
    always did."""
    words = sys.argv[1:] if argv is None else argv
    if not {"-h", "--help"} & set(words):
        light = build_parser(subcommands=())
        light.error = _raise_needs_subcommands  # type: ignore[method-assign]
        try:
            args, extra = light.parse_known_args(argv)
        except _NeedsSubcommands:
            pass
        else:
            if not extra:
                del light.error  # later checks of these options say their error as usual
                return light, args, extra
    parser = build_parser((words[0],) if words and words[0] in SUBCOMMANDS else tuple(SUBCOMMANDS))
    args, extra = parser.parse_known_args(argv)
    return parser, args, extra


def _print_config(cfg: Config) -> None:
    for key, source in cfg.sources.items():
        print(f"{key}: {getattr(cfg, key)!r}  # {source}")


def main(argv: list[str] | None = None) -> int:
    """The ``vramtop`` command; returns its exit status (see EPILOG)."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a reader that went away is found here, inside the guard
        return status
    except BrokenPipeError:
        # As Python's documentation does (signal module, "Note on SIGPIPE"): no traceback, and
        # the interpreter's own flush at exit goes to /dev/null instead of failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    except Exception as exc:  # a bug: the traceback for the report, then one line that says so
        import traceback

        traceback.print_exc()
        print(f"vramtop: internal error ({crash_line(exc)}); this is a bug, please report it with the "
              "traceback above", file=sys.stderr)
        return EXIT_CRASH


def crash_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _main(argv: list[str] | None) -> int:
    parser, args, extra = parse(argv)
    if extra:  # said by the subcommand's own parser, which knows its exit statuses
        getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command:
        return args.run(args)
    from vramtop import config as config_mod

    try:
        cfg = config_mod.load(args.config, {"interval": args.interval, "theme": args.theme,
                                             "ray_address": args.ray_address})
    except config_mod.ConfigError as exc:
        print(f"vramtop: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        _print_config(cfg)
        return 0
    if (args.json or args.csv) and not args.once:
        parser.error("--json and --csv need --once")
    if args.json and args.csv:
        parser.error("choose one of --json and --csv")
    if args.cluster and (args.demo or args.replay):
        parser.error("--cluster shows a live Ray cluster: it cannot go with --demo or --replay")
    if args.cluster and args.no_ray:
        parser.error("--cluster reads the Ray dashboard: it cannot go with --no-ray")
    if args.export and args.once:
        parser.error("--export serves the live view's samples: for metrics without it, run 'vramtop export'")

    from vramtop.sources.nvml import NvmlUnavailable

    recording_errors: tuple[type[Exception], ...] = ()  # the recording format's module is large: a replay's alone
    if args.replay:
        from vramtop.recording import RecordingError

        recording_errors = (RecordingError,)

    from vramtop.sources.feed import answering_cluster, open_feed

    try:
        feed = open_feed(cfg, demo=args.demo, replay=args.replay, cluster=args.cluster, ray=not args.no_ray)
    except NvmlUnavailable as exc:
        cluster = None if args.no_ray else answering_cluster(cfg)
        if cluster is None:
            print(f"vramtop: {exc}; run 'vramtop --demo' to see a simulated node", file=sys.stderr)
            return 2
        feed, address = cluster
        if args.once:
            print(f"vramtop: no NVIDIA driver here ({exc}); showing the Ray cluster at {address}", file=sys.stderr)
    except recording_errors as exc:
        print(f"vramtop: {exc}", file=sys.stderr)
        return 2
    if args.once:
        from vramtop import once

        snapshot = feed.sample()  # telemetry's levels (KV use, queue) from one read; rates need two
        if snapshot.source == "cluster" and snapshot.ray is not None and snapshot.ray.error is not None:
            print(f"vramtop: --cluster needs the Ray dashboard at {snapshot.ray.address}: {snapshot.ray.error}",
                  file=sys.stderr)
            return 2
        if args.csv:
            from vramtop.telemetry import csv_export

            print(csv_export.to_csv(snapshot), end="")
        else:
            print(once.to_json(snapshot, cfg.thresholds) if args.json else once.to_text(snapshot, cfg.thresholds))
        return 0

    exporter = None
    if args.export:  # the view hands each sample it takes to the endpoint: no second sampler
        from vramtop.cli.export import export_live_view
        from vramtop.exporter.server import ListenError

        try:
            exporter = export_live_view(args.export, cfg)
        except ListenError as exc:
            print(f"vramtop: {exc}", file=sys.stderr)
            return 3
    from vramtop.app import VramtopApp

    app = VramtopApp(feed, cfg, readonly=args.readonly, exporter=exporter)
    app.run()
    status = EXIT_OK
    if app.return_code:  # an exception ended the app; Textual printed its traceback once the terminal was back
        print("vramtop: the live view stopped on an internal error (the traceback is above); this is a bug, "
              "please report it", file=sys.stderr)
        status = EXIT_CRASH
    # A driver call that hangs keeps its sampling thread alive; the app has ended, so end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
