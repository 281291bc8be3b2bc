"""The fit engine's sentences in Spanish, for the Spanish report.

The fit engine speaks English everywhere else (the TUI, ``vramtop fit``, JSON); its sentences are
few and built from fixed templates, so the report reads each one back by its template and writes
it again in Spanish with the same figures. A sentence no template matches is returned as None:
the report then shows the English and says so, rather than guess.
"""

from __future__ import annotations

import re
from typing import Callable

_N = r"[\d,.]+"  # a figure as the engine prints it: 1,256 · 0.85 · 18.69
_TEXT = r".+?"


def _inner(text: str) -> str:
    """A sentence inside a sentence (a headline after "only if ... is stopped:")."""
    return translate(text) or text


# (template as a regular expression, its Spanish); the Spanish may be a function of the match.
_RULES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    (rf"vLLM would not start on GPU (?P<g>\d+): it needs (?P<need>{_N}) MiB free, (?P<free>{_N}) MiB is free",
     r"vLLM no arrancaría en la GPU \g<g>: necesita \g<need> MiB libres y hay \g<free> MiB"),
    (rf"no room for a KV cache: weights, activations and overhead take more than the (?P<gib>{_N}) GiB "
     rf"gpu_memory_utilization=(?P<u>{_N}) gives",
     r"no queda sitio para la caché KV: pesos, activaciones y sobrecarga ocupan más de los \g<gib> GiB "
     r"que da gpu_memory_utilization=\g<u>"),
    (rf"KV cache (?P<kv>{_N}) GiB cannot hold one request of (?P<len>{_N}) tokens \((?P<req>{_N}) GiB\)",
     r"una caché KV de \g<kv> GiB no cabe ni una petición de \g<len> tokens (\g<req> GiB)"),
    (rf"no gpu_memory_utilization helps here: starting needs ≤ (?P<hi>{_N}), a KV cache for one request of "
     rf"(?P<len>{_N}) tokens needs ≥ (?P<lo>{_N}) \(it is a share of each GPU's total memory, not of the model\)",
     r"ningún gpu_memory_utilization sirve aquí: para arrancar hace falta ≤ \g<hi> y para una caché KV de una "
     r"petición de \g<len> tokens ≥ \g<lo> (es una fracción de la memoria total de cada GPU, no del modelo)"),
    (rf"only (?P<got>\d+) of (?P<want>\d+) replicas get (?P<tp>\d+) free GPU\(s\) each \((?P<n>\d+) GPU\(s\) on "
     rf"(?P<node>{_TEXT})\)",
     r"solo \g<got> de \g<want> réplicas tienen \g<tp> GPU libres cada una (\g<n> GPU en \g<node>)"),
    (rf"needs (?P<need>\d+) GPU\(s\) \((?P<r>\d+) replica\(s\) × tensor_parallel_size (?P<tp>\d+)\); "
     rf"(?P<node>{_TEXT}) has (?P<n>\d+)",
     r"necesita \g<need> GPU (\g<r> réplica(s) × tensor_parallel_size \g<tp>); \g<node> tiene \g<n>"),
    (rf"starts, but holds only (?P<c>{_N}) requests of (?P<len>{_N}) tokens at once",
     r"arranca, pero solo admite \g<c> peticiones de \g<len> tokens a la vez"),
    (rf"starts with only (?P<left>{_N}) MiB left free on GPU (?P<g>\d+)",
     r"arranca dejando solo \g<left> MiB libres en la GPU \g<g>"),
    (rf"fits: (?P<tok>{_N}) KV tokens, (?P<c>{_N})× requests of (?P<len>{_N}); (?P<left>{_N}) MiB left on the "
     r"tightest GPU",
     r"cabe: \g<tok> tokens de caché KV, \g<c>× peticiones de \g<len>; quedan \g<left> MiB en la GPU más justa"),
    (rf"per GPU, vLLM asks for (?P<u>{_N}) × (?P<tot>{_N}) GiB total = (?P<req>{_N}) GiB and needs (?P<ov>{_N}) GiB "
     r"more for its CUDA context(?P<nccl> and NCCL)?",
     lambda m: (f"por GPU, vLLM pide {m['u']} × {m['tot']} GiB totales = {m['req']} GiB y necesita {m['ov']} GiB más "
                f"para su contexto CUDA{' y NCCL' if m['nccl'] else ''}")),
    (rf"GPU (?P<g>\d+) \((?P<note>{_TEXT})\): needs (?P<need>{_N}) MiB, free (?P<free>{_N}) MiB — (?P<mark>ok|SHORT)",
     lambda m: (f"GPU {m['g']} ({note(m['note'])}): necesita {m['need']} MiB, libres {m['free']} MiB — "
                f"{'bien' if m['mark'] == 'ok' else 'NO CABE'}")),
    (rf"weights (?P<w>{_N}) GiB \+ activations (?P<a>{_N}) GiB \+ non-torch (?P<nt>{_N}) GiB \+ CUDA graphs "
     rf"(?P<cg>{_N}) GiB → KV cache (?P<kv>-?{_N}) GiB = (?P<tok>{_N}) tokens, (?P<c>{_N})× requests of (?P<len>{_N})",
     r"pesos \g<w> GiB + activaciones \g<a> GiB + no-torch \g<nt> GiB + grafos CUDA \g<cg> GiB → caché KV \g<kv> GiB "
     r"= \g<tok> tokens, \g<c>× peticiones de \g<len>"),
    (rf"no GPU has room for even one layer \(most free: (?P<most>{_N}) MiB\); Ollama would run all (?P<gib>{_N}) GiB "
     r"on the CPU",
     r"ninguna GPU tiene sitio ni para una capa (la más libre: \g<most> MiB); Ollama ejecutaría los \g<gib> GiB "
     r"en la CPU"),
    (rf"partial CPU offload: (?P<on>\d+) of (?P<all>\d+) layers on the GPU \((?P<pct>\d+)% of (?P<gib>{_N}) GiB\), "
     r"the rest on the CPU \(slow\)",
     r"descarga parcial a la CPU: \g<on> de \g<all> capas en la GPU (\g<pct> % de \g<gib> GiB), el resto en la "
     r"CPU (lento)"),
    (rf"fits on (?P<where>{_TEXT}) with only (?P<left>{_N}) MiB left on GPU (?P<g>\d+)",
     r"cabe en \g<where> dejando solo \g<left> MiB en la GPU \g<g>"),
    (rf"fits fully on (?P<where>{_TEXT}) \((?P<gib>{_N}) GiB\), (?P<left>{_N}) MiB left on the tightest GPU",
     r"cabe entero en \g<where> (\g<gib> GiB); quedan \g<left> MiB en la GPU más justa"),
    (rf"weights (?P<w>{_N}) GiB \((?P<q>\S+)\) \+ KV cache (?P<kv>{_N}) GiB \(num_ctx (?P<ctx>{_N}) × (?P<par>\d+) "
     rf"parallel, (?P<kvt>\S+)\) \+ compute graph (?P<g>{_N}) GiB; Ollama keeps (?P<keep>\d+) MiB free on each GPU "
     r"it uses",
     r"pesos \g<w> GiB (\g<q>) + caché KV \g<kv> GiB (num_ctx \g<ctx> × \g<par> en paralelo, \g<kvt>) + grafo de "
     r"cómputo \g<g> GiB; Ollama deja \g<keep> MiB libres en cada GPU que usa"),
    (rf"GPU (?P<g>\d+): (?P<note>{_TEXT}), needs (?P<need>{_N}) MiB of (?P<free>{_N}) MiB free",
     lambda m: f"GPU {m['g']}: {note(m['note'])}, necesita {m['need']} MiB de {m['free']} MiB libres"),
    (r"as things run now: (?P<rest>.+)", lambda m: f"tal como está ahora: {_inner(m['rest'])}"),
    (r"only if (?P<names>.+?) is stopped: (?P<rest>.+)",
     lambda m: f"solo si se detiene {m['names']}: {_inner(m['rest'])}"),
    (rf"stop (?P<name>.+) \(frees (?P<mib>{_N}) MiB\)", r"detener \g<name> (libera \g<mib> MiB)"),
    (r"(?P<n>\d+) replica\(s\)", r"\g<n> réplica(s)"),
    (r"(?P<flag>--[a-z-]+ \S+|OLLAMA_KV_CACHE_TYPE=\S+)", r"\g<flag>"),
    (r"fp8 weights(?P<flag> \(--quantization fp8\))?", r"pesos fp8\g<flag>"),
    (r"a 4-bit AWQ build(?P<model> of the model)?", lambda m: f"una versión AWQ de 4 bits{' del modelo' if m['model'] else ''}"),
    (r"a q4_K_M build", "una versión q4_K_M"),
    (r"let it pick the GPUs with most free memory", "dejar que elija las GPU con más memoria libre"),
    (r"num_ctx (?P<n>\d+) \(OLLAMA_CONTEXT_LENGTH=(?P=n)\)", r"num_ctx \g<n> (OLLAMA_CONTEXT_LENGTH=\g<n>)"),
]
_COMPILED = [(re.compile(pattern), spanish) for pattern, spanish in _RULES]

_NOTES = [(re.compile(r"replica (\d+) TP rank (\d+)"), r"réplica \1, rank TP \2"),
          (re.compile(r"TP rank (\d+)"), r"rank TP \1"),
          (re.compile(r"(\d+) layers"), r"\1 capas"),
          (re.compile(r"first layers"), "primeras capas")]


def note(text: str) -> str:
    """A per-GPU note ("TP rank 0", "12 layers", "first layers") in Spanish."""
    for pattern, spanish in _NOTES:
        if pattern.fullmatch(text):
            return pattern.sub(spanish, text)
    return text


def translate(text: str) -> str | None:
    """``text`` (one of the fit engine's sentences) in Spanish, or None when no template fits."""
    for pattern, spanish in _COMPILED:
        if (m := pattern.fullmatch(text)) is not None:
            return spanish(m) if callable(spanish) else m.expand(spanish)
    # Two changes suggested together: "--max-model-len 8192 and fp8 weights".
    for m in re.finditer(" and ", text):
        first, second = translate(text[:m.start()]), translate(text[m.end():])
        if first is not None and second is not None:
            return f"{first} y {second}"
    return None
