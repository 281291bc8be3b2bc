"""Ollama's loaded models, from its ``/api/ps``: what each costs in VRAM and when it unloads.

Ollama loads and unloads models on demand, so a runner's VRAM comes and goes; ``/api/ps`` says
which model it is, how much of it sits on the GPU ("size_vram" vs "size"), its context length and
when the keep-alive expires. The server's address follows Ollama's own rule for ``OLLAMA_HOST``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Callable, Mapping

from vramtop import paths
from vramtop.snapshot import to_mib
from vramtop.telemetry import vllm_metrics
from vramtop.telemetry.model import NOT_REACHABLE, OK, OllamaModel, OllamaStatus
from vramtop.units import duration

DEFAULT_PORT = 11434
MAX_MODELS = 256  # more than any node loads at once
_FOREVER_S = 365 * 24 * 3600  # keep_alive < 0 shows as an expiry centuries away


def address(ollama_host: str | None) -> str:
    """The base URL a client uses for ``OLLAMA_HOST`` (unset: http://127.0.0.1:11434).

    As in Ollama: an explicit ``http://`` or ``https://`` without a port means port 80 or 443;
    a bare host or ``:port`` keeps 11434; a wildcard listen address is reached on loopback.
    """
    text = (ollama_host or "").strip()
    scheme, sep, hostport = text.partition("://")
    default_port = DEFAULT_PORT
    if not sep:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.split("/", 1)[0]
    host, port = hostport, str(default_port)
    if hostport.startswith("["):
        end = hostport.find("]")
        host = hostport[1:end] if end > 0 else hostport.strip("[]")
        rest = hostport[end + 1:] if end > 0 else ""
        if rest.startswith(":") and rest[1:]:
            port = rest[1:]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
        port = port or str(default_port)
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def server_address(server_environ: Mapping[str, str] | None, own_environ: Mapping[str, str]) -> str:
    """The address of the running ``ollama serve``: its own OLLAMA_HOST when we may read its
    environment, else ours (a client on this host would use the same), else the default."""
    for env in (server_environ, own_environ):
        if env and env.get("OLLAMA_HOST"):
            return address(env["OLLAMA_HOST"])
    return address(None)


def _expires_in(expires_at: str | None, now: datetime) -> float | None:
    if not expires_at:
        return None
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return (when - now).total_seconds()


def _count(v: object) -> int | None:
    """A non-negative whole number the server sent, or None (strings, NaN, absurd sizes)."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 else None


def _text(v: object) -> str | None:
    return v[:200] if isinstance(v, str) and v else None


def parse_ps(body: str) -> tuple[OllamaModel, ...]:
    """The models of an ``/api/ps`` answer; raises ValueError (one line) on anything else."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise ValueError("no 'models' list in the answer")
    out = []
    for m in doc["models"][:MAX_MODELS]:
        if not isinstance(m, dict):
            continue
        details = m.get("details") if isinstance(m.get("details"), dict) else {}
        ctx = _count(m.get("context_length"))
        out.append(
            OllamaModel(
                name=_text(m.get("name")) or _text(m.get("model")) or "?",
                size_mib=to_mib(_count(m.get("size")) or 0),
                vram_mib=to_mib(_count(m.get("size_vram")) or 0),
                context_length=ctx or None,
                expires_at=_text(m.get("expires_at")),
                parameter_size=_text(details.get("parameter_size")),
                quantization=_text(details.get("quantization_level")),
            )
        )
    return tuple(out)


def model_text(model: OllamaModel, now: datetime) -> str:
    """"llama3.1:8b 6.2 GiB (100 % GPU, ctx 4,096, unloads in 4 min)"."""
    facts = [f"{model.gpu_share * 100:.0f} % GPU"]
    if model.context_length:
        facts.append(f"ctx {model.context_length:,}")
    left = _expires_in(model.expires_at, now)
    if left is not None:
        facts.append("stays loaded" if left > _FOREVER_S else f"unloads in {duration(left)}")
    return f"{model.name} {model.vram_mib / 1024:.1f} GiB ({', '.join(facts)})"


def summary(models: tuple[OllamaModel, ...], now: datetime) -> str:
    if not models:
        return "ollama: no model loaded"
    return "ollama: " + " · ".join(model_text(m, now) for m in models)


def models_dir(server_environ: Mapping[str, str] | None, own_environ: Mapping[str, str]) -> Path | None:
    """The server's model store: its ``OLLAMA_MODELS``, else ``.ollama/models`` in its home;
    ours when its environment cannot be read; None for Ollama's own default for our user."""
    env = server_environ if server_environ is not None else own_environ
    if env.get("OLLAMA_MODELS") or (server_environ is not None and server_environ.get("HOME")):
        return paths.ollama_models_dir(env)
    return None


def runner_blob(argv: list[str]) -> str | None:
    """The file name of the model blob an ``ollama runner --model PATH`` loads (``sha256-…``)."""
    path = vllm_metrics.flag_value(argv, "--model")
    return PurePath(path).name if path else None


def match_runners(models: tuple[OllamaModel, ...], runners: Mapping[str, str | None],
                  blob_of: Callable[[str], Path | None]) -> dict[str, OllamaModel]:
    """Which loaded model each runner (instance key -> its blob name) serves: the model whose
    store manifest points at the runner's blob; with one runner and one model and no store to
    read, that model."""
    found: dict[str, OllamaModel] = {}
    by_blob = {}
    for m in models:
        try:
            blob = blob_of(m.name)
        except (OSError, ValueError):  # a malformed manifest: that model stays unmatched
            blob = None
        if blob is not None:
            by_blob[blob.name] = m
    for key, blob_name in runners.items():
        if blob_name is not None and blob_name in by_blob:
            found[key] = by_blob[blob_name]
    if not found and not by_blob and len(runners) == 1 and len(models) == 1:
        found[next(iter(runners))] = models[0]
    return found


def read(base_url: str, timeout_s: float, fetch: Callable[[str, float], str] = vllm_metrics.fetch,
         now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> OllamaStatus:
    """Ollama's loaded models at ``base_url``; an unreachable server is a quiet status."""
    url = base_url.rstrip("/") + "/api/ps"
    try:
        models = parse_ps(fetch(url, timeout_s))
    except vllm_metrics.MetricsUnavailable as exc:
        return OllamaStatus(base_url, NOT_REACHABLE, summary=f"ollama: not reachable ({exc})")
    except ValueError as exc:
        return OllamaStatus(base_url, NOT_REACHABLE, summary=f"ollama: {url} answered oddly: {exc}")
    return OllamaStatus(base_url, OK, models, summary(models, now()))


def process_environ(pid: int) -> Mapping[str, str] | None:
    """The environment of ``pid`` when the OS lets us read it (same user or root)."""
    import psutil

    try:
        return psutil.Process(pid).environ()
    except psutil.Error:
        return None
