"""Real process trees for tests, shaped as serving engines shape them.

``engine_tree(tp)`` starts a ``VLLM::EngineCore`` with ``Worker_TP0..N-1`` children. ``ProcTree``
starts any tree from a declarative description: each ``Proc`` names its parent, sets its title
with setproctitle (as vLLM, SGLang and Ray do) or runs under a real command line (``argv``: a
console script materialised under that name, or ``-m module`` as a package of that name, the way
engines look without setproctitle), or is ``fork``ed from its parent and keeps the parent's
command line (vLLM V0's workers). Every process is started by its parent, so the parentage psutil
reads is real. ``tree.scenario(...)`` lists the processes that hold GPU memory with their real
PIDs for the stand-in NVML driver, and ``run_once_json`` runs ``vramtop --once --json`` on it.
The whole tree runs in its own session and is killed as one process group afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import fakenvml

# The engine starts its workers, waits until each has renamed itself, then prints their PIDs.
ENGINE = r"""
import setproctitle, subprocess, sys, time
setproctitle.setproctitle("VLLM::EngineCore")
kids = [subprocess.Popen([sys.executable, "-c",
        "import setproctitle, time; setproctitle.setproctitle('VLLM::Worker_TP%d'); print(flush=True); time.sleep(600)" % r],
        stdout=subprocess.PIPE) for r in range(int(sys.argv[1]))]
for k in kids:
    k.stdout.readline()
print(" ".join(str(k.pid) for k in kids), flush=True)
time.sleep(600)
"""


@contextmanager
def engine_tree(tp: int) -> Iterator[tuple[int, list[int]]]:
    """Yields (engine PID, worker PIDs in rank order)."""
    engine = subprocess.Popen([sys.executable, "-c", ENGINE, str(tp)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in engine.stdout.readline().split()]
    try:
        yield engine.pid, workers
    finally:
        for pid in workers:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        engine.kill()
        engine.wait()
        engine.stdout.close()


@dataclass(frozen=True)
class Proc:
    """One process of a tree. ``parent``: another Proc's ``name`` (None: the tree's root, a child
    of the test). ``title``: set with setproctitle once started. ``argv``: the command line it runs
    under (``("vllm", "serve", "M")`` runs a script named ``vllm``; ``("-m", "vllm.entrypoints...")``
    a module of that name). ``fork``: forked from its parent, keeping the parent's command line.
    ``gpu_mib``: GPU index -> MiB it holds."""

    name: str
    title: str | None = None
    parent: str | None = None
    gpu_mib: Mapping[int, int] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    fork: bool = False


# Each process runs this: take its title, start its children, report every PID below it (one
# JSON line to its parent), then wait to be killed.
_NODE = r'''
import json, os, subprocess, sys, time

SPEC_ENV = "ENGINE_TREE_SPEC"


def _start(spec):
    if spec.get("title"):
        import setproctitle
        setproctitle.setproctitle(spec["title"])
    found = {spec["name"]: os.getpid()}
    for child in spec["children"]:
        if child["fork"]:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _serve(child, os.fdopen(w, "w"))
            os.close(w)
            line = os.fdopen(r).readline()
        else:
            env = dict(os.environ, **{SPEC_ENV: json.dumps(child)})
            p = subprocess.Popen(child["command"], env=env, stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline()
        found.update(json.loads(line))
    return found


def _serve(spec, out):
    found = _start(spec)
    out.write(json.dumps(found) + "\n")
    out.flush()
    while True:
        time.sleep(3600)


def main():
    _serve(json.loads(os.environ[SPEC_ENV]), sys.stdout)
'''


class ProcTree:
    """A started tree: ``pid[name]`` is each process's real PID."""

    def __init__(self, procs: tuple[Proc, ...], pids: dict[str, int]) -> None:
        self.procs = {p.name: p for p in procs}
        self.pid = pids

    def scenario(self, path: Path, gpus: int, *, name: str = "NVIDIA A10", total_mib: int = 23_028,
                 reserved_mib: int = 513, extra_used_mib: Mapping[int, int] | None = None) -> fakenvml.Scenario:
        """A node of ``gpus`` GPUs whose used memory is what the tree's processes hold (plus
        ``extra_used_mib``), each process listed with its real PID."""
        scenario = fakenvml.Scenario(Path(path))
        for g in range(gpus):
            used = sum(p.gpu_mib.get(g, 0) for p in self.procs.values()) + (extra_used_mib or {}).get(g, 0)
            scenario.add_gpu(name, total_mib=total_mib, reserved_mib=reserved_mib, used_mib=used)
        self.list_on(scenario)
        return scenario

    def list_on(self, scenario: fakenvml.Scenario) -> None:
        """List each process with its real PID on ``scenario``, whose GPUs already count its memory."""
        for p in self.procs.values():
            for gpu, mib in sorted(p.gpu_mib.items()):
                scenario.add_process(gpu, self.pid[p.name], mib)
        scenario.write()

    def freed_on(self, scenario: fakenvml.Scenario) -> None:
        """The tree ended: ``scenario`` lists no process and the memory it held is free again."""
        scenario.processes.clear()
        for gpu, g in enumerate(scenario.gpus):
            held = sum(p.gpu_mib.get(gpu, 0) for p in self.procs.values()) * fakenvml.MIB
            g.used -= held
            g.free += held
        scenario.write()


def _command(proc: Proc, bin_dir: Path) -> list[str]:
    if not proc.argv:
        return [sys.executable, "-c", "import _engine_tree_node; _engine_tree_node.main()"]
    if proc.argv[0] == "-m":
        package = bin_dir.joinpath(*proc.argv[1].split("."))
        for parent in [bin_dir.joinpath(*proc.argv[1].split(".")[:i]) for i in range(1, proc.argv[1].count(".") + 1)]:
            parent.mkdir(parents=True, exist_ok=True)
            (parent / "__init__.py").touch()
        package.with_suffix(".py").write_text("import _engine_tree_node\n_engine_tree_node.main()\n")
        return [sys.executable, *proc.argv]
    script = bin_dir / proc.argv[0]
    script.write_text("import _engine_tree_node\n_engine_tree_node.main()\n")
    return [sys.executable, str(script), *proc.argv[1:]]


def _spec(proc: Proc, procs: tuple[Proc, ...], bin_dir: Path) -> dict:
    return {
        "name": proc.name, "title": proc.title, "fork": proc.fork, "command": _command(proc, bin_dir),
        "children": [_spec(c, procs, bin_dir) for c in procs if c.parent == proc.name],
    }


@contextmanager
def proc_tree(*procs: Proc) -> Iterator[ProcTree]:
    """Start the tree (one root), yield it once every process has taken its title, kill it after."""
    (root,) = [p for p in procs if p.parent is None]
    with tempfile.TemporaryDirectory(prefix="engine-tree-") as tmp:
        bin_dir = Path(tmp)
        (bin_dir / "_engine_tree_node.py").write_text(_NODE)
        spec = _spec(root, procs, bin_dir)
        env = dict(os.environ, ENGINE_TREE_SPEC=json.dumps(spec),
                   PYTHONPATH=os.pathsep.join(p for p in (str(bin_dir), os.environ.get("PYTHONPATH", "")) if p))
        top = subprocess.Popen(spec["command"], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            line = top.stdout.readline()
            if not line:
                raise RuntimeError(f"the process tree did not start (exit {top.wait()})")
            yield ProcTree(procs, json.loads(line))
        finally:
            try:
                os.killpg(top.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            top.wait()
            top.stdout.close()


def run_once_json(scenario: fakenvml.Scenario, *args: str) -> dict:
    """``vramtop --once --json`` on the stand-in driver, as a user runs it; its JSON document."""
    result = subprocess.run([sys.executable, "-m", "vramtop", "--once", "--json", *args],
                            env=scenario.env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
