"""What a process is, from its title and command line: which engine, which role, which rank.

Serving engines name their processes on purpose (vLLM and SGLang through setproctitle, Ray after
the actor class), so the title is the most reliable signal; the command line covers engines that
do not, and vLLM started without setproctitle installed. The sources of each title:

* vLLM ``vllm/utils/system_utils.py`` ``set_process_title``: ``<prefix>::<name>[_<suffix>]``,
  prefix ``VLLM_PROCESS_NAME_PREFIX`` (default ``VLLM``); names ``APIServer_<i>``
  (``vllm/entrypoints/cli/serve.py``), ``EngineCore[_DP<n>]`` (``vllm/v1/engine/core.py``),
  ``Worker[_DP<n>][_PP<n>][_TP<n>][_EP<n>]`` (``vllm/v1/executor/multiproc_executor.py``).
* SGLang ``sglang/srt/managers/scheduler.py``: ``sglang::scheduler[_DP<n>][_TP<n>][_PP<n>]``;
  ``sglang::detokenizer``, ``sglang::data_parallel_controller``.
* Ray: ``ray::<ActorClass>``, Serve replicas ``ray::ServeReplica:<app>:<deployment>``.
* TGI ``launcher/src/main.rs``: ``text-generation-launcher`` starts one
  ``text-generation-server serve ... --uds-path <path>-<rank>`` per shard and the router.
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
TRTLLM = "tensorrt-llm"
TORCHRUN = "torchrun"  # torchrun / torch.distributed.run: one process per rank
MPI = "mpi"  # mpirun / mpiexec: one process per rank
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


# vLLM titles with any prefix (VLLM_PROCESS_NAME_PREFIX); Ray and SGLang use "::" too.
_VLLM_TITLE = re.compile(r"^(?!ray::|sglang::)([A-Za-z_][\w.-]*)::"
                         r"(APIServer(?:_\d+)?|EngineCore(?:_DP\d+)?|Worker(?:_[A-Z]+\d+)*)(?![\w])")
_VLLM_OTHER = re.compile(r"^VLLM::(\S+)")
_VLLM_OLD_WORKER = re.compile(r"\b(VllmWorker(?:Process)?)\b")
_RANK = re.compile(r"_(DP|PP|TP|PCP|DCP|EP)(\d+)")
_SERVE_REPLICA = re.compile(r"^ray::ServeReplica:{1,2}([^:\s]+):{1,2}([^\s.]+(?::[^\s.]+)?)")
_RAY_ACTOR = re.compile(r"^ray::([A-Za-z_][\w]*)")
_SGLANG_TITLE = re.compile(r"^sglang::(\w+?)((?:_[A-Z]+\d+)*)(?![\w])")
_TGI_SHARD_RANK = re.compile(r"--uds-path[= ]\S*?-(\d+)\b")

# Command lines (title not set, or not set yet).
_VLLM_ARGV = re.compile(r"(^|[\s/])vllm\s+serve\b|vllm\.entrypoints|(^|\s)-m\s+vllm(\s|$)")
_SGLANG_ROUTER_ARGV = re.compile(r"sglang_router\.launch_server|(^|/)sglang-router\b")
_SGLANG_ARGV = re.compile(r"sglang\.launch_server|(^|[\s/])sglang\s+serve\b")
_TORCHRUN_ARGV = re.compile(r"(^|[\s/])torchrun(\s|$)|-m\s+torch\.distributed\.(run|launch)\b")
_MPI_ARGV = re.compile(r"^(\S*/)?(mpirun|mpiexec)(\s|$)")
_TRTLLM_ARGV = re.compile(r"(^|[\s/])trtllm-serve(\s|$)|(^|[\s/])trtllm-llmapi-launch(\s|$)")


def _ranks(label: str) -> dict[str, int]:
    return {k: int(v) for k, v in _RANK.findall(label)}


def classify(host: HostProcess | None) -> Role:
    """The role of one process; ``UNKNOWN`` when the OS does not show it."""
    if host is None:
        return Role(UNKNOWN, "hidden", "")
    return _classify(host.title, host.cmdline, host.name)


@lru_cache(maxsize=4096)
def _classify(title: str, cmdline: tuple[str, ...], name: str) -> Role:
    """Pure in its text: cached, since every tick asks again about the same processes (several
    times: the grouping, the rows, the telemetry). Keyed by the command line's words, whose hashes
    the strings keep, not by their join: a join made on each call was hashed anew, the most of it."""
    argv = " ".join(cmdline) if cmdline else title
    title = title.strip()
    if m := _VLLM_TITLE.match(title):
        label = m.group(2)
        r = _ranks(label)
        if label.startswith("APIServer"):
            return Role(VLLM, "api-server", label)
        if label.startswith("EngineCore"):
            return Role(VLLM, "engine", label, dp_rank=r.get("DP"))
        return Role(VLLM, "worker", label, r.get("TP"), r.get("PP"), r.get("DP"))
    if m := _VLLM_OTHER.match(title):
        return Role(VLLM, "process", m.group(1))
    if m := _VLLM_OLD_WORKER.search(title):
        return Role(VLLM, "worker", m.group(1))
    if m := _SERVE_REPLICA.match(title):
        return Role(RAY, "replica", "ServeReplica", app=m.group(1), deployment=m.group(2))
    if title.startswith("ray::RayWorkerWrapper") or title.startswith("ray::RayWorkerProc"):
        return Role(RAY, "worker", "RayWorkerWrapper")
    if m := _RAY_ACTOR.match(title):
        return Role(RAY, "actor", m.group(1))
    if m := _SGLANG_TITLE.match(title):
        what, r = m.group(1), _ranks(m.group(2))
        label = what + m.group(2)
        if what == "scheduler":
            return Role(SGLANG, "worker", label, r.get("TP"), r.get("PP"), r.get("DP"))
        if what == "data_parallel_controller":
            return Role(SGLANG, "engine", label)
        return Role(SGLANG, "process", label)

    if _VLLM_ARGV.search(argv):
        return Role(VLLM, "api-server", "APIServer")
    if re.search(r"(^|/)ollama\s+runner\b|ollama_llama_server|(^|/)ollama\s+llama-runner\b", argv):
        return Role(OLLAMA, "runner", "runner")
    if re.search(r"(^|/)ollama\s+serve\b", argv):
        return Role(OLLAMA, "server", "serve")
    if re.search(r"(^|/)llama-server\b", argv):
        return Role(LLAMA_CPP, "server", "llama-server")
    if _SGLANG_ROUTER_ARGV.search(argv):
        return Role(SGLANG, "launcher", "router")
    if _SGLANG_ARGV.search(argv):
        return Role(SGLANG, "api-server", "server")
    if re.search(r"(^|[\s/])text-generation-launcher\b", argv):
        return Role(TGI, "launcher", "launcher")
    if re.search(r"(^|[\s/])text-generation-server\b", argv):
        rank = _TGI_SHARD_RANK.search(argv)
        return Role(TGI, "worker", f"shard{rank.group(1)}" if rank else "shard",
                    tp_rank=int(rank.group(1)) if rank else None)
    if re.search(r"(^|[\s/])text-generation-router\b", argv):
        return Role(TGI, "api-server", "router")
    if _TRTLLM_ARGV.search(argv):
        return Role(TRTLLM, "api-server", "trtllm-serve")
    if _TORCHRUN_ARGV.search(argv):
        return Role(TORCHRUN, "launcher", "torchrun")
    if _MPI_ARGV.search(argv):
        return Role(MPI, "launcher", name or "mpirun")
    return Role(OTHER, "process", name)
