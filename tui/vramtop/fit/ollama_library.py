"""Model specs for Ollama library tags that are not pulled here, read from the registry.

``qwen3:32b`` or ``user/model:tag``: the registry's manifest (``/v2/<ns>/<name>/manifests/<tag>``,
as ``ollama pull`` asks it) names the layers and their sizes; the model layer's GGUF header,
read by range requests, gives the architecture (``remote_gguf``). Nothing else is downloaded.
The registry is ``VRAMTOP_OLLAMA_REGISTRY`` when set, else registry.ollama.ai. Every read has a
size bound and the whole resolution one deadline; failures are one-line ``SpecError``s.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, replace

from vramtop.fit.remote_gguf import Deadline, spec_from_remote_gguf, within
from vramtop.fit.specs import ModelSpec, SpecError
from vramtop.units import MIB

REGISTRY = "https://registry.ollama.ai"
TIMEOUT_S = 10.0
MAX_MANIFEST = 1 * MIB
MODEL_LAYER = "application/vnd.ollama.image.model"
_MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json"
_NAME = re.compile(r"^(?:(?P<ns>[a-z0-9][\w.-]{0,63})/)?(?P<model>[a-z0-9][\w.-]{0,127}):(?P<tag>[\w.-]{1,127})$",
                   re.I)


@dataclass(frozen=True)
class OllamaRef:
    namespace: str  # "library" for the official models
    model: str
    tag: str

    @property
    def text(self) -> str:
        prefix = "" if self.namespace == "library" else f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"


def parse_ref(text: str) -> OllamaRef | None:
    """The library tag ``text`` names (a tag is required: ``qwen3:32b``), or None."""
    m = _NAME.match(text.strip())
    if not m:
        return None
    return OllamaRef(m.group("ns") or "library", m.group("model").lower(), m.group("tag").lower())


def registry() -> str:
    return (os.environ.get("VRAMTOP_OLLAMA_REGISTRY") or REGISTRY).rstrip("/")



def _get(url: str, dl: Deadline, headers: dict[str, str], limit: int) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "vramtop", **headers})
    with urllib.request.urlopen(req, timeout=dl.left()) as resp:  # noqa: S310 (http(s) only)
        if "Range" in headers and resp.status != 206 and not headers["Range"].startswith("bytes=0-"):
            raise SpecError(f"{url}: the registry ignored a range request")
        data = resp.read(limit + 1)
    if "Range" in headers:
        return data[:limit]  # a server that ignores Range sends the whole blob: keep the range
    if len(data) > limit:
        raise SpecError(f"{url}: answer larger than {limit // MIB} MiB")
    return data


def resolve_library(ref: OllamaRef, timeout: float = TIMEOUT_S) -> ModelSpec:
    """The spec of a library tag from its manifest and its model blob's GGUF header."""
    base = registry()
    dl = Deadline(timeout)
    name = ref.text
    try:
        return within(timeout, lambda: _resolve(ref, base, dl))
    except TimeoutError:
        raise SpecError(f"{name}: no answer in time from the Ollama registry {base}; offline: pull it "
                        "with `ollama pull`, or pass a GGUF file") from None


def _resolve(ref: OllamaRef, base: str, dl: Deadline) -> ModelSpec:
    name = ref.text
    try:
        raw = _get(f"{base}/v2/{ref.namespace}/{ref.model}/manifests/{ref.tag}", dl,
                   {"Accept": _MANIFEST_TYPES}, MAX_MANIFEST)
        try:
            manifest = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(f"{name}: malformed manifest from {base} ({exc})") from None
        layers = manifest.get("layers") if isinstance(manifest, dict) else None
        model = next((la for la in layers or () if isinstance(la, dict)
                      and la.get("mediaType") == MODEL_LAYER), None)
        if model is None or not str(model.get("digest", "")).startswith("sha256:"):
            raise SpecError(f"{name}: the registry's manifest names no model layer")
        size = model.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise SpecError(f"{name}: the registry's manifest gives the model layer no size")
        blob = f"{base}/v2/{ref.namespace}/{ref.model}/blobs/{model['digest']}"

        def fetch(lo: int, hi: int) -> bytes:
            return _get(blob, dl, {"Range": f"bytes={lo}-{hi}"}, hi - lo + 1)

        spec = spec_from_remote_gguf(fetch, size, name, blob)
    except urllib.error.HTTPError as exc:
        raise _http_line(name, base, exc.code) from None
    except (TimeoutError, OSError) as exc:
        why = "no answer in time" if isinstance(exc, TimeoutError) or "timed out" in str(exc) else "cannot connect"
        raise SpecError(f"{name}: {why} from the Ollama registry {base}; offline: pull it with "
                        "`ollama pull`, or pass a GGUF file") from None
    return replace(spec, origin="ollama",
                   source=f"{base}/{ref.namespace}/{ref.model}:{ref.tag} (manifest, GGUF header)")


def _http_line(name: str, base: str, code: int) -> SpecError:
    if code == 404:
        page = name.split(":", 1)[0] if "/" in name else "library/" + name.split(":", 1)[0]
        return SpecError(f"{name}: no such tag in the Ollama library; see "
                         f"https://ollama.com/{page}/tags")
    if code == 429:
        return SpecError(f"{name}: the Ollama registry is rate limiting this machine (429): "
                         "wait a minute")
    if code in (401, 403):
        return SpecError(f"{name}: the Ollama registry refused access (HTTP {code}): a private "
                         "model needs `ollama pull` with its key")
    return SpecError(f"{name}: the Ollama registry {base} answered HTTP {code}; try again later")
