"""``vramtop launch -- COMMAND``: judge an engine's start on this node, admit it node-wide
through a reservation, start it with the GPUs chosen, and pass signals and its exit status.

Exit status: the command's own (128 + N when a signal N ended it); 2 when vramtop refuses (RED,
or no fit within ``--wait``; with ``--dry-run``: it would refuse); 3 bad input; 126 / 127 the
command cannot be run / is not found.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

from vramtop.launch import engine_args, reservations as rsv

REFUSED, BAD_INPUT = 2, 3
POLL_S = 0.5
SETTLED_READS = 3  # reads in a row the process's memory has not grown: its start-up is done
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

DESCRIPTION = """\
Start an LLM engine where it fits, with no start-up race against other launches.

vramtop reads the engine's own flags from COMMAND (vllm serve, python -m
vllm.entrypoints.openai.api_server, ollama serve with --model; unknown flags pass through
untouched), judges it as 'vramtop fit' does against the memory free now less what other
launches through vramtop have reserved, sets CUDA_VISIBLE_DEVICES (and CUDA_DEVICE_ORDER=PCI_BUS_ID)
to the GPUs chosen where the command's environment does not set it, and starts it. It waits up to
--wait seconds for a fit (one line on stderr: what it waits for, how long, the memory still
missing). Admission is serialised node-wide by a lock and a reservation file in the runtime
directory; the reservation holds until the process's memory has appeared in NVML and settled,
it exits, or --hold seconds pass. Signals (ctrl+c, SIGTERM, SIGHUP, ...) go to the command.
"""

EPILOG = """\
exit status:
  the command's own (128+N when signal N ended it); 2 refused: RED (without --force) or no fit
  within --wait; 3 bad input; 126 / 127 the command cannot be run / is not found

examples:
  vramtop launch -- vllm serve Qwen/Qwen3-8B --max-model-len 16384 --gpu-memory-utilization 0.6
  vramtop launch --wait 600 -- vllm serve google/medgemma-4b-it -tp 2
  vramtop launch --model amsaravi/medgemma-4b-it:q8 -- ollama serve
  vramtop launch --dry-run -- vllm serve google/medgemma-27b-it -tp 4
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from vramtop.cli import options, positive_seconds

    p = subparsers.add_parser("launch", help="start an engine where it fits (see: vramtop launch --help)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter, parents=[options.demo()])
    p.add_argument("--wait", type=positive_seconds, default=None, metavar="SECONDS",
                   help="wait up to this long for the command to fit (default: do not wait)")
    p.add_argument("--hold", type=positive_seconds, default=900.0, metavar="SECONDS",
                   help="the longest a reservation holds while the engine loads (default 900)")
    p.add_argument("--dry-run", action="store_true", help="say what would be done, start nothing")
    p.add_argument("--force", action="store_true", help="start even when the verdict is RED")
    p.add_argument("--model", metavar="M", help="the model, where the command does not name it (ollama serve)")
    p.add_argument("--engine", metavar="E", help="vllm or ollama, where the command does not tell")
    p.add_argument("launch_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    p.set_defaults(run=run, parser=p)
    return p


def _say(text: str) -> None:
    print(f"vramtop launch: {text}", file=sys.stderr, flush=True)


class _Progress:
    """One progress line on stderr: rewritten in place on a terminal, else a line when it changes
    (and every 10 s)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last, self.at = "", 0.0

    def show(self, text: str, key: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r\033[Kvramtop launch: {text}")
            sys.stderr.flush()
        elif key != self.last or time.monotonic() - self.at >= 10:
            _say(text)
            self.last, self.at = key, time.monotonic()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    command = list(args.launch_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _say("give the command to start after --, e.g. vramtop launch -- vllm serve MODEL")
        return BAD_INPUT
    from vramtop.fit.fields import candidate_from_fields

    env = dict(os.environ)
    try:
        parsed = engine_args.parse(command, env, model=args.model, engine=args.engine)
    except engine_args.CommandError as exc:
        _say(str(exc))
        return BAD_INPUT
    if "model" not in parsed.fields:
        _say(f"no model in the command: name it with --model (e.g. --model gemma3:12b -- {command[0]} ...)")
        return BAD_INPUT
    candidate, errors = candidate_from_fields(parsed.fields)
    if candidate is None:
        name, why = next(iter(errors.items()))
        _say(why if name == "model" else f"{name}: {why}")
        return BAD_INPUT
    return _Launch(args, command, env, parsed, candidate).run()


class _Launch:
    def __init__(self, args, command, env, parsed, candidate) -> None:
        self.args, self.command, self.env, self.parsed, self.candidate = args, command, env, parsed, candidate
        self.model = parsed.fields["model"]
        self.dir = None
        self.feed = None
        self.noticed: set[str] = set()
        self.reservation: rsv.Reservation | None = None
        self.need: dict[str, int] = {}  # MiB per GPU first reserved (the record shrinks; this does not)

    # ---- reading the node ---------------------------------------------------------------------

    def _snapshot(self):
        if self.feed is None:  # the verdict reads the node alone: no Ray dashboard, no engine is asked
            from vramtop.sources.feed import open_feed

            self.feed = open_feed(demo=getattr(self.args, "demo", False), ray=False, telemetry=False)
        return self.feed.sample()

    def _notice(self, notices: list[str]) -> None:
        for n in notices:
            if n not in self.noticed:
                self.noticed.add(n)
                _say(n)

    def _reservations(self, clean: bool) -> list[rsv.Reservation]:
        live, stale, notices = rsv.read(self.dir)
        self._notice(notices)
        if clean:
            for pid in stale:
                rsv.remove(self.dir, pid)
        return [r for r in live if r.pid != os.getpid()]

    def _judge(self, held: list[rsv.Reservation]):
        """The verdict against free memory less the reservations, and the node view."""
        from vramtop.fit.command import place
        from vramtop.fit.placement import node_from_snapshot

        snapshot = self._snapshot()
        view = node_from_snapshot(snapshot)
        promised = rsv.promised_mib(held)
        view = replace(view, gpus=tuple(replace(g, free_mib=max(0, g.free_mib - promised.get(str(g.index), 0)))
                                        for g in view.gpus))
        candidate = self.candidate
        if self.parsed.visible_devices is not None and candidate.gpus is None:
            gpus = _visible(self.parsed.visible_devices, snapshot)
            if gpus is None:
                raise ValueError(f"CUDA_VISIBLE_DEVICES={self.parsed.visible_devices!r} names no GPU of this node")
            candidate = candidate.with_(gpus=gpus)
        return place(candidate, view)[1], promised, snapshot

    # ---- the launch ---------------------------------------------------------------------------

    def run(self) -> int:
        from vramtop.fit.command import chosen_gpus
        from vramtop.fit.verdict import RED
        from vramtop.sources.nvml import NvmlUnavailable

        if not getattr(self.args, "demo", False):
            try:
                self.dir = rsv.ensure_dir()
            except rsv.ReservationError as exc:
                _say(f"cannot serialise launches: {exc}")
                return BAD_INPUT
        deadline = time.monotonic() + (self.args.wait or 0)
        began = time.monotonic()
        progress = _Progress()
        try:
            while True:
                with (rsv.locked(self.dir) if self.dir else contextlib.nullcontext()):
                    held = self._reservations(clean=not self.args.dry_run) if self.dir else []
                    result, promised, snapshot = self._judge(held)
                    fits = result.verdict != RED
                    if (fits or self.args.force) and not self.args.dry_run:
                        gpus = chosen_gpus(self.candidate, result)
                        self._reserve(result, gpus)
                        break
                if self.args.dry_run or time.monotonic() >= deadline:
                    break
                progress.show(_waiting(result, promised, time.monotonic() - began, self.args.wait),
                              result.headline)
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        except NvmlUnavailable as exc:
            _say(f"{exc}")
            return REFUSED
        except KeyboardInterrupt:  # ctrl+c while waiting: nothing started, nothing reserved
            progress.done()
            _say("stopped while waiting; nothing was started")
            return 128 + signal.SIGINT
        except ValueError as exc:
            _say(str(exc))
            return BAD_INPUT
        progress.done()
        gpus = chosen_gpus(self.candidate, result)
        env = self._child_env(gpus)
        if self.args.dry_run:
            return self._dry(result, env, fits)
        if not fits and not self.args.force:
            waited = f" after waiting {self.args.wait:g} s" if self.args.wait else ""
            _say(f"refused{waited}: {result.line}")
            for reason in result.reasons[1:]:
                print(f"  - {reason}", file=sys.stderr)
            return REFUSED
        return self._start(env)

    def _child_env(self, gpus) -> dict[str, str]:
        env = dict(self.env)
        if self.parsed.visible_devices is None and gpus and all(isinstance(g, int) for g in gpus):
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
            env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
        return env

    def _dry(self, result, env, fits) -> int:
        import shlex

        added = " ".join(f"{k}={env[k]}" for k in ("CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES")
                         if env.get(k) != self.env.get(k))
        print(result.line)
        if fits or self.args.force:
            print(f"would start: {' '.join(p for p in (added, shlex.join(self.command)) if p)}")
            return 0
        print(f"would {'wait up to ' + format(self.args.wait, 'g') + ' s, then ' if self.args.wait else ''}"
              f"refuse: {result.headline}")
        return REFUSED

    def _reserve(self, result, gpus) -> None:
        if self.dir is None:
            return
        self.need = {str(g.gpu_index): g.needed_mib for g in result.per_gpu if g.gpu_index in gpus}
        now = time.time()
        self.reservation = rsv.Reservation(os.getpid(), self.model, self.need, now, now + self.args.hold)
        rsv.write(self.dir, self.reservation)

    def _start(self, env) -> int:
        try:
            child = subprocess.Popen(self.command, env=env, process_group=0)
        except FileNotFoundError:
            self._release()
            _say(f"{self.command[0]}: command not found")
            return 127
        except OSError as exc:
            self._release()
            _say(f"{self.command[0]}: {exc.strerror}")
            return 126
        for sig in FORWARDED:
            signal.signal(sig, lambda s, _f: _forward(child, s))
        if self.reservation is not None:
            with rsv.locked(self.dir):
                self.reservation = replace(self.reservation, child=child.pid)
                rsv.write(self.dir, self.reservation)
        watch = _Watch(self, child)
        while True:
            try:
                rc = child.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                watch.step()
        self._release()
        return rc if rc >= 0 else 128 - rc

    def _release(self) -> None:
        if self.dir is not None and self.reservation is not None:
            with rsv.locked(self.dir):
                rsv.remove(self.dir, os.getpid())
            self.reservation = None


class _Watch:
    """Shrinks the reservation as the started process tree's memory appears in NVML and drops
    it once that memory has stopped growing for ``SETTLED_READS`` reads (or the hold ended)."""

    def __init__(self, launch: _Launch, child: subprocess.Popen) -> None:
        self.launch, self.child = launch, child
        self.last_total, self.steady = -1, 0

    def step(self) -> None:
        import psutil

        launch = self.launch
        r = launch.reservation
        if r is None:
            return
        if time.time() > r.until:
            launch._release()
            return
        try:
            tree = {self.child.pid} | {p.pid for p in psutil.Process(self.child.pid).children(recursive=True)}
        except psutil.Error:
            return
        snapshot = launch._snapshot()
        used: dict[str, int] = {}
        for p in snapshot.gpu_processes:
            if p.pid in tree and p.used_mib:
                used[str(p.gpu_index)] = used.get(str(p.gpu_index), 0) + p.used_mib
        total = sum(used.values())
        self.steady = self.steady + 1 if total > 0 and total <= self.last_total else 0
        self.last_total = max(total, self.last_total)
        left = {g: max(0, mib - used.get(g, 0)) for g, mib in launch.need.items()}
        if not any(left.values()) or self.steady >= SETTLED_READS:
            launch._release()
            return
        if left != dict(r.gpus):
            with rsv.locked(launch.dir):
                launch.reservation = replace(r, gpus=left)
                rsv.write(launch.dir, launch.reservation)


def _forward(child: subprocess.Popen, sig: int) -> None:
    try:
        child.send_signal(sig)
    except ProcessLookupError:
        pass


def _visible(text: str, snapshot) -> tuple[int, ...] | None:
    """GPU indices from a CUDA_VISIBLE_DEVICES value (indices or GPU-UUIDs, as CUDA takes them)."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.isdigit():
            out.append(int(part))
        else:
            gpu = next((g for g in snapshot.gpus if g.uuid == part or g.uuid.startswith(part)), None)
            if gpu is None:
                return None
            out.append(gpu.index)
    return tuple(out) or None


def _waiting(result, promised: dict[str, int], waited: float, wait: float | None) -> str:
    """"waiting for GPU 1: 3,120 MiB short (2,048 MiB reserved for launches), 12 s of 60 s"."""
    short = [g for g in result.per_gpu if not g.fits]
    if short:
        what = "; ".join(f"GPU {g.gpu_index}: {g.needed_mib - g.free_mib:,} MiB short"
                         + (f" ({promised[str(g.gpu_index)]:,} MiB reserved for other launches)"
                            if promised.get(str(g.gpu_index)) else "") for g in short)
    else:
        what = result.headline
    return f"waiting for {what} — {waited:.0f} s of {wait:g} s"
