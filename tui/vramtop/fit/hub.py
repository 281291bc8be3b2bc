"""Model specs from the Hugging Face Hub, read without downloading the weights.

``ORG/NAME[@REVISION]``: one metadata request first (the file list, with a timeout, so a dead
or stalled endpoint fails fast), then config.json through the HF cache (and quantize_config.json
or hf_quant_config.json where a quantizer kept its settings there), then the safetensors headers
of the files vLLM would load, by range reads: dtype and shape of every tensor, nothing else.
vLLM loads the top-level ``*.safetensors`` (never ``original/``), only the shards the index's
``weight_map`` names when there is an index, and not the multi-token-prediction layers that
follow the model's own (DeepSeek-V3's layer 61). A header is read in at most two range reads,
each streamed and cut at its length, and one over safetensors' own limit (100 MB) is refused
before it is read; it is decoded a pair at a time (``json_object_items``), so the UI thread
beside the resolving one keeps its turns. A Qwen-VL repository's preprocessor_config.json sets
the largest image its processor lets through, which sizes vLLM's encoder budget; nothing else
vLLM reads from a repository's other configs changes memory (generation_config.json gives
default sampling parameters only: vllm/config ModelConfig.get_diff_sampling_param).

A repository of GGUF files only: the header of the chosen quant file (``hf.co/ORG/NAME:Q8_0``
names it, as Ollama spells it; else Q4_K_M as Ollama picks, else the smallest).

Endpoint, token, offline mode and cache are huggingface_hub's own settings (HF_ENDPOINT,
HF_TOKEN or the stored login, HF_HUB_OFFLINE, HF_HOME), which it reads when imported. Every
failure is a ``SpecError`` of one line saying what to do; the client's progress bars and
multi-line errors are silenced.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from json.decoder import scanstring
from typing import Any, Callable, Iterator

from vramtop.fit.remote_gguf import Deadline, spec_from_remote_gguf, within
from vramtop.fit.specs import (BITS_PER_WEIGHT, ModelSpec, SpecError, closest_names,
                               quantization_of, spec_from_config)
from vramtop.fit.vision import largest_image, sized_by_processor
from vramtop.fit.weights import weights_for_vllm
from vramtop.units import MIB

TIMEOUT_S = 10.0  # one resolution, all requests together
MAX_JSON = 16 * MIB  # config.json, an index: larger is not one
MAX_HEADER = 100_000_000  # safetensors' own limit on one header (its MAX_HEADER_SIZE)
MAX_HEADERS = 256 * MIB  # all headers of one resolution together
FIRST_READ = 100_000  # bytes of the first range read of a header: most headers fit in it
OFFLINE = "offline: pass a local directory, or set HF_ENDPOINT"
GATED = "gated: accept the licence on the model page and set HF_TOKEN"

_REF = re.compile(
    r"^(?:(?:https?://)?(?:hf\.co|huggingface\.co)/)?"
    r"(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96})"
    r"(?:@(?P<rev>[\w./-]{1,120}))?(?::(?P<quant>[\w.-]{1,40}))?$"
)


@dataclass(frozen=True)
class HubRef:
    """A Hub repository as typed: ``Qwen/Qwen3-8B@main``, ``hf.co/ORG/NAME-GGUF:Q8_0``."""

    repo: str
    revision: str | None = None
    quant: str | None = None  # a GGUF quant file to pick

    @property
    def text(self) -> str:
        return self.repo + (f"@{self.revision}" if self.revision else "") + (
            f":{self.quant}" if self.quant else "")


def parse_ref(text: str) -> HubRef | None:
    """The Hub repository ``text`` names, or None when it is no repository id.

    ``ORG/NAME:TAG`` without ``hf.co/`` is an Ollama name (a user's namespace), not the Hub's.
    """
    m = _REF.match(text.strip())
    if not m or ".." in m.group("repo") or m.group("repo").endswith((".", "-")):
        return None
    explicit = text.strip().lower().split("/", 1)[0] in ("hf.co", "huggingface.co", "https:", "http:")
    if m.group("quant") and not explicit:
        return None
    return HubRef(m.group("repo"), m.group("rev"), m.group("quant"))


def _client() -> Any:
    """The Hub client, quiet: no progress bars, no warnings on stderr."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import disable_progress_bars, logging

    disable_progress_bars()
    logging.set_verbosity_error()
    return HfApi()


def endpoint() -> str:
    """The Hub this process talks to: HF_ENDPOINT, read as the client reads it (without importing
    the client, which takes half a second: the UI thread asks this for the spec cache)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def is_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


# ---- failures in one line -----------------------------------------------------------------------

def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _one_line(exc: BaseException, ref: HubRef, token: bool) -> SpecError:
    """The client's exception as vramtop's one line, saying what to do."""
    import httpx2
    from huggingface_hub import errors

    repo = ref.repo
    if isinstance(exc, SpecError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return SpecError(f"{repo}: not resolved before and HF_HUB_OFFLINE is set; {OFFLINE}")
    if isinstance(exc, errors.GatedRepoError):
        return SpecError(f"{repo}: {GATED}")
    if isinstance(exc, errors.RevisionNotFoundError):
        return SpecError(f"{repo}: no revision '{ref.revision}' on the Hub (a branch, tag or commit)")
    if isinstance(exc, errors.RepositoryNotFoundError):
        # Anonymous requests get 401 for missing and private repositories alike.
        private = "" if token else " (or private: set HF_TOKEN)"
        near = closest_hub_names(repo) or closest_names(repo)
        hint = f"; closest: {', '.join(near[:5])}" if near else ""
        return SpecError(f"{repo}: no such model on the Hub{private}{hint}")
    status = _status(exc)
    if status == 429:
        return SpecError(f"{repo}: the Hub is rate limiting this machine (429): wait a minute, "
                         "or set HF_TOKEN")
    if status in (401, 403):
        return SpecError(f"{repo}: {GATED}")
    if status is not None:
        return SpecError(f"{repo}: the Hub answered HTTP {status}; try again later, or {OFFLINE[9:]}")
    if isinstance(exc, (httpx2.TimeoutException, TimeoutError)):
        return SpecError(f"{repo}: the Hub did not answer within {TIMEOUT_S:g} s; {OFFLINE}")
    if isinstance(exc, (httpx2.TransportError, errors.LocalEntryNotFoundError, ConnectionError)):
        return SpecError(f"{repo}: cannot reach {endpoint()}; {OFFLINE}")
    return SpecError(f"{repo}: {type(exc).__name__} from the Hub ({str(exc).splitlines()[0][:120]})")


def search(query: str, limit: int = 8, timeout: float = 3.0) -> list[str]:
    """Hub repository ids matching ``query`` (the Hub's own search, most downloaded first); an
    empty list when offline or the Hub does not answer in time."""
    if len(query.strip()) < 2 or is_offline():
        return []
    api = _client()
    try:
        models = within(timeout, lambda: list(api.list_models(
            search=query.strip(), limit=limit, sort="downloads")))
    except Exception:  # completion is best effort: the field still takes what is typed
        return []
    return [m.id for m in models if isinstance(getattr(m, "id", None), str)]


def closest_hub_names(repo: str) -> list[str]:
    """Hub ids near a repository that does not exist: the Hub's search for its model name, then
    for the name's first two words ("Qwen3-8B-Instruct" finds Qwen/Qwen3-8B)."""
    name = repo.rsplit("/", 1)[-1]
    for query in dict.fromkeys((name, "-".join(name.split("-")[:2]))):
        found = [n for n in search(query, limit=5, timeout=2.0) if n != repo]
        if found:
            return found
    return []


# ---- reading the repository ---------------------------------------------------------------------


def _read_json(path: str, what: str) -> dict[str, Any]:
    """A JSON object from the HF cache, read a pair at a time (``json_object_items``): an index
    of DeepSeek-V3's 92,000 tensors would hold the GIL for 0.3 s in ``json.loads``."""
    with open(path, "rb") as f:
        raw = f.read(MAX_JSON + 1)
    if len(raw) > MAX_JSON:
        raise SpecError(f"{what}: larger than {MAX_JSON // MIB} MiB, not a config")
    try:
        return dict(json_object_items(raw.decode("utf-8"), frozenset({"weight_map"})))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SpecError(f"{what}: malformed JSON ({exc})") from None


def vllm_weight_files(files: list[str], weight_map_files: list[str] | None) -> list[str]:
    """The safetensors files vLLM loads from a repository listing: those at the top level, and of
    those only the shards the index's weight_map names when there is an index (a repository may
    also hold ``consolidated.safetensors`` or ``original/`` copies of the same weights)."""
    top = sorted(f for f in files if "/" not in f and f.endswith(".safetensors"))
    if weight_map_files is not None:
        named = set(weight_map_files)
        return [f for f in top if f in named]
    return top


_SPLIT = re.compile(r"-0*(\d+)-of-0*(\d+)\.gguf$", re.I)


def pick_gguf(files: list[str], quant: str | None) -> list[str]:
    """The GGUF file (all its splits) to read: the named quant, else Q4_K_M, else the first."""
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower())
    if not ggufs:
        return []
    wanted = (quant or "Q4_K_M").lower().replace("-", "_")
    chosen = [f for f in ggufs if wanted in f.lower().replace("-", "_")]
    if not chosen:
        if quant:
            names = sorted({re.sub(r"^.*?[-.]((?:i?q\d|f16|bf16|f32)[\w]*)\.gguf$", r"\1", f, flags=re.I)
                            for f in ggufs})
            raise SpecError(f"no {quant} file in this repository; it has {', '.join(names[:8])}")
        chosen = [ggufs[0]]
    first = chosen[0]
    split = _SPLIT.search(first)
    if split:
        stem = first[: split.start()]
        return sorted(f for f in chosen if f.startswith(stem) and _SPLIT.search(f))
    return [first]


def _range_reader(url: str, dl: Deadline) -> Callable[[int, int], bytes]:
    """``read(lo, hi)``: bytes lo..hi (inclusive) of the file at ``url``, streamed and cut at the
    range's length: a server that ignores Range (or sends more) never gets more than that read."""
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    headers = build_hf_headers()

    def read(lo: int, hi: int) -> bytes:
        want = hi - lo + 1
        with get_session().stream("GET", url, headers={**headers, "range": f"bytes={lo}-{hi}"},
                                  timeout=dl.left(), follow_redirects=True) as r:
            if r.status_code >= 400:
                r.read()
                hf_raise_for_status(r)
            if r.status_code != 206 and lo:
                raise SpecError(f"{url.rsplit('/', 1)[-1]}: the Hub's file server ignored a range request")
            data = bytearray()
            for chunk in r.iter_bytes():
                data += chunk
                if len(data) >= want:
                    break
        return bytes(data[:want])

    return read


class _Budget:
    """Bytes of headers one resolution may still read (its threads share it)."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if n > self.left:
                return False
            self.left -= n
            return True


def remote_safetensors_tensors(read: Callable[[int, int], bytes], filename: str, size: int | None,
                        budget: _Budget) -> list[tuple[str, str, Any]]:
    """(name, dtype, shape) of every tensor in the header of a remote safetensors file: its
    length checked against safetensors' limit, the file's size and ``budget`` before the rest
    of it is read. Raises ``SpecError`` naming the file."""
    head = read(0, FIRST_READ - 1)
    if len(head) < 8:
        raise SpecError(f"{filename}: not a safetensors file (shorter than 8 bytes)")
    (length,) = struct.unpack("<Q", head[:8])
    if length > MAX_HEADER or (size and length > size - 8):
        where = f" in a file of {size:,}" if size else ""
        raise SpecError(f"{filename}: a safetensors header of {length:,} bytes{where} "
                        f"(safetensors allows {MAX_HEADER:,}); not read")
    if not budget.take(length):
        raise SpecError(f"{filename}: the safetensors headers of this repository pass "
                        f"{MAX_HEADERS // MIB} MiB together; not read")
    raw = head[8:8 + length]
    if len(raw) < length:
        raw += read(8 + len(raw), 8 + length - 1)
    if len(raw) != length:
        raise SpecError(f"{filename}: the safetensors header was cut short ({len(raw):,} of {length:,} bytes)")
    out = []
    seen: set[str] = set()
    try:
        for name, info in json_object_items(raw.decode("utf-8")):
            if name in seen:
                raise SpecError(f"{filename}: malformed safetensors header (tensor '{name[:60]}' twice)")
            seen.add(name)
            if name == "__metadata__":
                continue
            if not (isinstance(info, dict) and isinstance(info.get("dtype"), str)
                    and isinstance(info.get("shape"), list)):
                raise SpecError(f"{filename}: malformed safetensors header (tensor '{name[:60]}')")
            out.append((name, info["dtype"], tuple(info["shape"])))  # ints in a tuple: nothing for the GC
    except SpecError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SpecError(f"{filename}: malformed safetensors header (not JSON)") from None
    return out


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def json_object_items(text: str, nested: frozenset[str] = frozenset()) -> Iterator[tuple[str, Any]]:
    """The key/value pairs of the JSON object ``text``, decoded a pair at a time; an object under
    a key in ``nested`` (an index's weight_map) is read a pair at a time too.

    ``json.loads`` is one C call that holds the GIL for the whole text (a 12 MB header: 0.3 s),
    and the what-if panel resolves in a thread beside the UI's; between pairs the UI thread gets
    its turn. Raises ``ValueError`` on anything but one JSON object (trailing spaces allowed, as
    safetensors pads its header)."""
    pos = [0]
    yield from _pairs(text, pos, nested)
    if _SPACE.match(text, pos[0]).end() != len(text):
        raise ValueError("data after the object")


def _pairs(text: str, pos: list[int], nested: frozenset[str]) -> Iterator[tuple[str, Any]]:
    """The pairs of the object at ``pos[0]``; ``pos[0]`` is left just past it."""
    space = _SPACE.match
    at = space(text, pos[0]).end()
    if text[at:at + 1] != "{":
        raise ValueError(f"no object at {at}")
    at = space(text, at + 1).end()
    if text[at:at + 1] == "}":
        pos[0] = at + 1
        return
    while True:
        if text[at:at + 1] != '"':
            raise ValueError(f"no key at {at}")
        key, at = scanstring(text, at + 1)
        at = space(text, at).end()
        if text[at:at + 1] != ":":
            raise ValueError(f"no ':' at {at}")
        at = space(text, at + 1).end()
        if key in nested and text[at:at + 1] == "{":
            pos[0] = at
            value: Any = dict(_pairs(text, pos, frozenset()))
            at = pos[0]
        else:
            value, at = _DECODER.raw_decode(text, at)
        yield key, value
        at = space(text, at).end()
        sep = text[at:at + 1]
        at = space(text, at + 1).end() if sep == "," else at + 1
        if sep == "}":
            break
        if sep != ",":
            raise ValueError(f"no ',' at {at - 1}")
    pos[0] = at


def _quant_config(ref: HubRef, files: list[str],
                  download: Callable[[str], str]) -> dict[str, Any] | None:
    """A quantization config kept beside config.json (AutoGPTQ's, NVIDIA ModelOpt's)."""
    if "quantize_config.json" in files:
        qc = _read_json(download("quantize_config.json"), f"{ref.repo}/quantize_config.json")
        return {"quant_method": qc.get("quant_method") or ("awq" if qc.get("version") == "GEMM" else "gptq"), **qc}
    if "hf_quant_config.json" in files:
        qc = _read_json(download("hf_quant_config.json"), f"{ref.repo}/hf_quant_config.json")
        algo = str((qc.get("quantization") or {}).get("quant_algo") or "").lower()
        if algo:
            return {"quant_method": "nvfp4" if "fp4" in algo else "fp8" if "fp8" in algo else algo}
    return None


def resolve_hub(ref: HubRef, timeout: float = TIMEOUT_S) -> ModelSpec:
    """The spec of a Hub repository, from its metadata and file headers (see the module's
    docstring); raises ``SpecError`` with one line saying what to do."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_token

    if constants.HF_HUB_OFFLINE:
        raise SpecError(f"{ref.repo}: not resolved before and HF_HUB_OFFLINE is set; {OFFLINE}")
    token = get_token() is not None
    try:
        # The client retries some requests with back-off past any timeout given to it (a stalled
        # or cut download took minutes): the deadline holds for the whole resolution instead.
        return within(timeout, lambda: _resolve(ref, Deadline(timeout)))
    except Exception as exc:
        raise _one_line(exc, ref, token) from None


def _resolve(ref: HubRef, dl: Deadline) -> ModelSpec:
    from huggingface_hub import hf_hub_download, hf_hub_url

    api = _client()
    info = api.model_info(ref.repo, revision=ref.revision, timeout=dl.left(),
                          files_metadata=True)
    sha = str(info.sha or ref.revision or "main")
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    files = sorted(siblings)
    rev = ref.revision or "main"

    def download(filename: str) -> str:
        # Through the HF cache: a second resolution of this revision reads it from disk.
        return hf_hub_download(ref.repo, filename, revision=rev, etag_timeout=dl.left())

    source = f"{endpoint()}/{ref.repo}@{sha[:12]}"
    try:
        gguf_files = pick_gguf(files, ref.quant) if (ref.quant or not any(
            f.endswith(".safetensors") for f in files)) else []
    except SpecError as exc:
        raise SpecError(f"{ref.repo}: {exc}") from None
    if gguf_files:
        return _from_gguf(api, ref, rev, gguf_files, siblings, source, dl)
    if "config.json" not in files:
        raise SpecError(f"{ref.repo}: no config.json, safetensors or GGUF files in this repository "
                        "(vLLM needs config.json and safetensors)")
    cfg = _read_json(download("config.json"), f"{ref.repo}/config.json")
    if not cfg.get("quantization_config"):
        quant = _quant_config(ref, files, download)
        if quant:
            cfg = {**cfg, "quantization_config": quant}
    weight_map = None
    if "model.safetensors.index.json" in files:
        index = _read_json(download("model.safetensors.index.json"),
                           f"{ref.repo}/model.safetensors.index.json")
        weight_map = sorted(set((index.get("weight_map") or {}).values()))
    chosen = vllm_weight_files(files, weight_map)
    if not chosen:
        raise SpecError(f"{ref.repo}: no safetensors weights at the top of this repository "
                        "(vLLM loads *.safetensors; .bin checkpoints are not read)")

    budget = _Budget(MAX_HEADERS)

    def header(filename: str) -> list[tuple[str, str, Any]]:
        url = hf_hub_url(ref.repo, filename, revision=rev, endpoint=endpoint())
        size = getattr(siblings.get(filename), "size", None)
        try:
            return remote_safetensors_tensors(_range_reader(url, dl), filename, size, budget)
        except SpecError as exc:
            raise SpecError(f"{ref.repo}: {exc}") from None

    with ThreadPoolExecutor(max_workers=min(8, len(chosen))) as pool:
        headers = list(pool.map(header, chosen))
    fmt, _, _ = quantization_of(cfg)
    try:
        figures = weights_for_vllm((t for h in headers for t in h), cfg,
                                   math.floor(BITS_PER_WEIGHT[fmt]) if fmt else None)
    except ValueError as exc:
        raise SpecError(f"{ref.repo}: malformed safetensors header on the Hub ({exc})") from None
    spec = spec_from_config(cfg, ref.repo, source, figures)
    if sized_by_processor(spec.vision) and "preprocessor_config.json" in files:
        processor = _read_json(download("preprocessor_config.json"), f"{ref.repo}/preprocessor_config.json")
        spec = replace(spec, vision=largest_image(spec.vision, processor))
    return replace(spec, origin="hf", source=f"{source} (config.json, {len(chosen)} safetensors headers)")


def _from_gguf(api: Any, ref: HubRef, rev: str, files: list[str], siblings: dict[str, Any],
               source: str, dl: Deadline) -> ModelSpec:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    first = files[0]
    url = hf_hub_url(ref.repo, first, revision=rev, endpoint=endpoint())
    size = getattr(siblings.get(first), "size", None) or get_hf_file_metadata(url, timeout=dl.left()).size
    spec = spec_from_remote_gguf(_range_reader(url, dl), int(size or 0), ref.repo, f"{source}/{first}")
    if len(files) > 1:  # split GGUF: the first file's header describes the model; bytes add up
        sizes = [int(getattr(siblings.get(f), "size", 0) or 0) for f in files]
        total = sum(sizes)
        if total and spec.weight_bytes:
            scale = total / sizes[0]
            spec = replace(spec, weight_bytes=total, params=int(spec.params * scale))
    return replace(spec, name=ref.text, source=f"{source}/{first} (GGUF header)")
