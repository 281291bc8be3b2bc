"""A stand-in ``vllm serve`` for launch tests: it "loads" by taking memory through the stand-in
NVML driver's scenario file, as a real engine's allocations show in NVML, and gives it back on exit.

Installed as an executable named ``vllm`` (vLLM's console script, whose ``serve`` subcommand is
vllm/entrypoints/cli/serve.py), it reads ``--gpu-memory-utilization`` (default 0.9, as vLLM) and
takes that share of each visible GPU's CUDA total (the GPU's total less the driver's reserve) in
four steps ``STANDIN_STEP`` seconds apart, then holds it for ``STANDIN_HOLD`` seconds. It logs each step as a JSON line to
``STANDIN_LOG``. SIGINT / SIGTERM: it frees its memory, logs the signal and exits with
``STANDIN_SIGNAL_EXIT``; otherwise it exits with ``STANDIN_EXIT``.
"""

import fcntl
import json
import os
import signal
import sys
import tempfile
import time

SCENARIO = os.environ["VRAMTOP_FAKE_NVML_SCENARIO"]
PID = os.getpid()


def log(event, **more):
    with open(os.environ["STANDIN_LOG"], "a") as f:
        f.write(json.dumps({"pid": PID, "event": event, "t": time.time(), **more}) + "\n")


def edit(change):
    """Rewrite the scenario under a lock shared by every stand-in, atomically, with a later mtime."""
    with open(SCENARIO + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lines = open(SCENARIO).read().splitlines()
        lines = change(lines)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(SCENARIO), prefix=".scenario-")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        mtime = max(time.time_ns(), os.stat(SCENARIO).st_mtime_ns + 1)
        os.utime(tmp, ns=(mtime, mtime))
        os.replace(tmp, SCENARIO)


def cuda_total(gpu):
    lines = open(SCENARIO).read().splitlines()
    at = lines.index(f"gpu {gpu}")
    mem = next(line for line in lines[at:] if line.startswith("memory "))
    total, reserved = (int(x) for x in mem.split()[1:3])
    return total - reserved


def hold(gpu, nbytes):
    """Make this process hold ``nbytes`` on ``gpu`` (0: none), moving the difference between
    the GPU's free and used figures."""
    def change(lines):
        mine = f"process {gpu} {PID} "
        before = next((int(line.split()[3]) for line in lines if line.startswith(mine)), 0)
        lines = [line for line in lines if not line.startswith(mine)]
        at = lines.index(f"gpu {gpu}")
        m = next(i for i in range(at, len(lines)) if lines[i].startswith("memory "))
        total, reserved, used, free = (int(x) for x in lines[m].split()[1:])
        delta = nbytes - before
        lines[m] = f"memory {total} {reserved} {used + delta} {free - delta}"
        if nbytes:
            lines.append(f"process {gpu} {PID} {nbytes} compute")
        return lines
    edit(change)


def main():
    args = sys.argv[1:]
    util = 0.9
    for i, a in enumerate(args):
        if a == "--gpu-memory-utilization":
            util = float(args[i + 1])
        elif a.startswith("--gpu-memory-utilization="):
            util = float(a.split("=", 1)[1])
    gpus = [int(g) for g in os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")]
    log("start", gpus=gpus, argv=args, visible=os.environ.get("CUDA_VISIBLE_DEVICES"))

    def stop(signum, _frame):
        for g in gpus:
            hold(g, 0)
        log("signal", signum=signum)
        sys.exit(int(os.environ.get("STANDIN_SIGNAL_EXIT", "0")))

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    targets = {g: int(util * cuda_total(g)) for g in gpus}
    for step in range(1, 5):
        for g in gpus:
            hold(g, targets[g] * step // 4)
        time.sleep(float(os.environ.get("STANDIN_STEP", "0.2")))
    log("loaded")
    time.sleep(float(os.environ.get("STANDIN_HOLD", "2")))
    for g in gpus:
        hold(g, 0)
    log("exit")
    sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))


if __name__ == "__main__":
    main()
