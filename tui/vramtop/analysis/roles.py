"""What a process is, from its title and command line: which engine, which role, which rank.

Serving engines name their processes on purpose (vLLM through setproctitle, Ray after the actor
class), so the title is the most reliable signal; the command line covers engines that do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from vramtop.snapshot import HostProcess

# Engines, as shown in the "role" column and used for grouping.
VLLM = "vllm"
RAY = "ray"
OLLAMA = "ollama"
LLAMA_CPP = "llama.cpp"
SGLANG = "sglang"
TGI = "tgi"
OTHER = "other"
UNKNOWN = "unknown"  # the OS does not show the process to us


@dataclass(frozen=True)
class Role:
    """``engine`` and ``kind`` say what the process does; ``label`` is the short name shown
    (``Worker_TP0``, ``EngineCore``, ``ServeReplica``). Ranks are None where not given."""

    engine: str
    kind: str
    label: str
    tp_rank: int | None = None
    pp_rank: int | None = None
    dp_rank: int | None = None
    app: str | None = None  # Ray Serve application
    deployment: str | None = None  # Ray Serve deployment

    @property
    def text(self) -> str:
        """The role as one short word pair, e.g. ``vllm Worker_TP0``."""
        return f"{self.engine} {self.label}" if self.label else self.engine


_VLLM_WORKER = re.compile(r"^(?:VLLM::)?(Worker(?:_[A-Z]+\d+)*)\b")
_VLLM_ENGINE = re.compile(r"^(?:VLLM::)?(EngineCore(?:_DP\d+)?)\b")
_VLLM_OLD_WORKER = re.compile(r"\b(VllmWorker(?:Process)?)\b")
_RANK = re.compile(r"_(DP|PP|TP|PCP|DCP|EP)(\d+)")
_SERVE_REPLICA = re.compile(r"^ray::ServeReplica:{1,2}([^:\s]+):{1,2}([^\s.]+(?::[^\s.]+)?)")
_RAY_ACTOR = re.compile(r"^ray::([A-Za-z_][\w]*)")


def _ranks(label: str) -> dict[str, int]:
    return {k: int(v) for k, v in _RANK.findall(label)}


def _argv_text(host: HostProcess) -> str:
    return " ".join(host.cmdline) if host.cmdline else host.title


def classify(host: HostProcess | None) -> Role:
    """The role of one process; ``UNKNOWN`` when the OS does not show it."""
    if host is None:
        return Role(UNKNOWN, "hidden", "")
    return _classify(host.title.strip(), _argv_text(host), host.name)


@lru_cache(maxsize=4096)
def _classify(title: str, argv: str, name: str) -> Role:
    """Pure in its text: cached, since every tick asks again about the same processes."""

    if m := _VLLM_ENGINE.match(title):
        r = _ranks(m.group(1))
        return Role(VLLM, "engine", m.group(1), dp_rank=r.get("DP"))
    if title.startswith("VLLM::APIServer"):
        return Role(VLLM, "api-server", "APIServer")
    if title.startswith("VLLM::"):
        if m := _VLLM_WORKER.match(title):
            r = _ranks(m.group(1))
            return Role(VLLM, "worker", m.group(1), r.get("TP"), r.get("PP"), r.get("DP"))
        return Role(VLLM, "process", title.removeprefix("VLLM::").split()[0])
    if m := _VLLM_OLD_WORKER.search(title):
        return Role(VLLM, "worker", m.group(1))
    if m := _SERVE_REPLICA.match(title):
        return Role(RAY, "replica", "ServeReplica", app=m.group(1), deployment=m.group(2))
    if title.startswith("ray::RayWorkerWrapper") or title.startswith("ray::RayWorkerProc"):
        return Role(RAY, "worker", "RayWorkerWrapper")
    if m := _RAY_ACTOR.match(title):
        return Role(RAY, "actor", m.group(1))

    if re.search(r"(^|[\s/])vllm\s+serve\b|vllm\.entrypoints", argv):
        return Role(VLLM, "api-server", "APIServer")
    if re.search(r"(^|/)ollama\s+runner\b|ollama_llama_server", argv):
        return Role(OLLAMA, "runner", "runner")
    if re.search(r"(^|/)ollama\s+serve\b", argv):
        return Role(OLLAMA, "server", "serve")
    if re.search(r"(^|/)llama-server\b", argv):
        return Role(LLAMA_CPP, "server", "llama-server")
    if re.search(r"sglang\.launch_server|(^|/)sglang\b", argv) or title.startswith("sglang::"):
        return Role(SGLANG, "server", title.split()[0] if title.startswith("sglang::") else "server")
    if re.search(r"text-generation-launcher|text-generation-server", argv):
        return Role(TGI, "server", "server")
    return Role(OTHER, "process", name)
