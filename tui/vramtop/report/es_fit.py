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


def _weights_need(m: re.Match) -> str:
    other = f", {m['b']} GiB con TP {m['t0']}" if m["b"] else ""
    return (f"los pesos necesitan {m['a']} GiB por GPU con TP {m['t']}{other}; cada GPU pide {m['r']} GiB "
            f"(gpu_memory_utilization {m['u']} × {m['tot']} GiB)")


def _budget_sum(m: re.Match) -> str:
    graphs = f" + grafos CUDA {m['cg']} GiB" if m["cg"] else ""
    return (f"pesos {m['w']} GiB + activaciones {m['a']} GiB + no-torch {m['nt']} GiB{graphs} → caché KV "
            f"{m['kv']} GiB = {m['tok']} tokens, {m['c']}× peticiones de {m['len']}")


# (template as a regular expression, its Spanish); the Spanish may be a function of the match.
_RULES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    (rf"vLLM would not start on GPU (?P<g>\d+): it needs (?P<need>{_N}) MiB free, (?P<free>{_N}) MiB is free",
     r"vLLM no arrancaría en la GPU \g<g>: necesita \g<need> MiB libres y hay \g<free> MiB"),
    (rf"no room for a KV cache: weights, activations and overhead take more than the (?P<gib>{_N}) GiB "
     rf"gpu_memory_utilization=(?P<u>{_N}) gives",
     r"no queda sitio para la caché KV: pesos, activaciones y sobrecarga ocupan más de los \g<gib> GiB "
     r"que da gpu_memory_utilization=\g<u>"),
    (rf"weights need (?P<a>{_N}) GiB per GPU at TP (?P<t>\d+)(?:, (?P<b>{_N}) GiB at TP (?P<t0>\d+))?; each GPU's "
     rf"request is (?P<r>{_N}) GiB \(gpu_memory_utilization (?P<u>{_N}) × (?P<tot>{_N}) GiB\)",
     _weights_need),
    (r"(?P<head>.+); but not modelled: (?P<what>.+)",
     lambda m: f"{_inner(m['head'])}; pero sin modelar: {m['what']}"),
    (r"not modelled: (?P<what>.+)", r"sin modelar: \g<what>"),
    (r"weights estimated from config.json", "pesos estimados a partir de config.json"),
    (r"weights read from the safetensors headers", "pesos leídos de las cabeceras safetensors"),
    (rf"(?P<n>\d+) of (?P<l>\d+) layers keep a fixed state per request \((?P<k>\w+)\), not K/V per token; vLLM's "
     rf"attention blocks grow to (?P<b>{_N}) tokens to hold it",
     r"\g<n> de \g<l> capas guardan un estado fijo por petición (\g<k>), no K/V por token; vLLM agranda los "
     r"bloques de atención a \g<b> tokens para alojarlo"),
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
    (rf"weights (?P<w>{_N}) GiB \+ activations (?P<a>{_N}) GiB \+ non-torch (?P<nt>{_N}) GiB(?: \+ CUDA graphs "
     rf"(?P<cg>{_N}) GiB)? → KV cache (?P<kv>-?{_N}) GiB = (?P<tok>{_N}) tokens, (?P<c>{_N})× requests of (?P<len>{_N})",
     _budget_sum),
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
    # A multimodal model's profile run (the vision encoder's share of it).
    (rf"profile run: (?P<n>\d+) dummy image\(s\) of (?P<e>{_N}) embeddings through the vision encoder, held "
     r"while the language model runs \((?P<limit>limit_mm_per_prompt image=\d+)(?P<default>, vLLM's default)?\)",
     lambda m: (f"ejecución de perfilado: {m['n']} imagen(es) ficticia(s) de {m['e']} embeddings por el codificador "
                f"de visión, retenidas mientras corre el modelo de lenguaje ({m['limit']}"
                f"{', el valor por defecto de vLLM' if m['default'] else ''})")),
    (r"(?P<limit>limit_mm_per_prompt image=\d+)(?P<default>, vLLM's default)?: no images, so the profile run does "
     r"not run the vision encoder",
     lambda m: (f"{m['limit']}{', el valor por defecto de vLLM' if m['default'] else ''}: sin imágenes, la "
                f"ejecución de perfilado no pasa por el codificador de visión")),
    (r"--skip-mm-profiling: the profile run leaves the vision encoder out, so its peak is not reserved "
     r"\(vLLM leaves that to you\)",
     "--skip-mm-profiling: la ejecución de perfilado deja fuera el codificador de visión, así que su pico no se "
     "reserva (vLLM lo deja a su cargo)"),
    (r"the model has no vision or audio encoder: vLLM ignores --limit-mm-per-prompt, --skip-mm-profiling and "
     r"--mm-encoder-tp-mode for it",
     "el modelo no tiene codificador de visión ni de audio: vLLM ignora --limit-mm-per-prompt, "
     "--skip-mm-profiling y --mm-encoder-tp-mode para él"),
    (rf"stop (?P<name>.+) \(frees (?P<mib>{_N}) MiB\)", r"detener \g<name> (libera \g<mib> MiB)"),
    (r"(?P<n>\d+) replica\(s\)", r"\g<n> réplica(s)"),
    (r"(?P<flag>--[a-z-]+ \S+|OLLAMA_KV_CACHE_TYPE=\S+)", r"\g<flag>"),
    (r"fp8 weights(?P<flag> \(--quantization fp8\))?", r"pesos fp8\g<flag>"),
    (r"a 4-bit AWQ build(?P<model> of the model)?", lambda m: f"una versión AWQ de 4 bits{' del modelo' if m['model'] else ''}"),
    (r"a q4_K_M build", "una versión q4_K_M"),
    (r"let it pick the GPUs with most free memory", "dejar que elija las GPU con más memoria libre"),
    (r"num_ctx (?P<n>\d+) \(OLLAMA_CONTEXT_LENGTH=(?P=n)\)", r"num_ctx \g<n> (OLLAMA_CONTEXT_LENGTH=\g<n>)"),
    # A field the engine refuses (verdict INVALID), headed by the field's name.
    (r"engine must be vllm or ollama, not (?P<v>'.*')", r"el motor debe ser vllm u ollama, no \g<v>"),
    (r"gpu_memory_utilization must be in \(0, 1\], got (?P<v>.+)", r"gpu_memory_utilization debe estar en (0, 1], no \g<v>"),
    (r"(?P<name>\w+) must be a whole number ≥ 1, got (?P<v>.+)", r"\g<name> debe ser un número entero ≥ 1, no \g<v>"),
    (r"Total number of attention heads \((?P<h>\d+)\) must be divisible by tensor parallel size \((?P<tp>\d+)\)\.",
     r"vLLM lo rechaza: el número de cabezas de atención (\g<h>) debe ser divisible por tensor_parallel_size (\g<tp>)."),
    (r"Ollama has no tensor parallelism; it spreads layers over GPUs",
     "Ollama no tiene paralelismo tensorial: reparte capas entre las GPU"),
    (r"User-specified max_model_len \((?P<len>\d+)\) is greater than the derived max_model_len "
     r"\(max_position_embeddings=(?P<pos>\d+) in the model's config.json\)\.",
     r"vLLM lo rechaza: max_model_len (\g<len>) es mayor que el que deriva del modelo "
     r"(max_position_embeddings=\g<pos> en su config.json)."),
    (r"max_num_batched_tokens \((?P<b>\d+)\) must be greater than or equal to max_num_seqs \((?P<n>\d+)\)\.",
     r"max_num_batched_tokens (\g<b>) debe ser mayor o igual que max_num_seqs (\g<n>)."),
    (r"replicas apply to vLLM under Ray Serve; Ollama runs one copy per server",
     "las réplicas son de vLLM bajo Ray Serve; Ollama ejecuta una copia por servidor"),
    (r"unknown dtype / quantization (?P<v>'.*') \((?P<known>.+)\)", r"dtype o cuantización desconocida \g<v> (\g<known>)"),
    (r"dtype must be auto, bfloat16, float16 or float32, not (?P<v>'.*')",
     r"dtype debe ser auto, bfloat16, float16 o float32, no \g<v>"),
    (r"vLLM kv_cache_dtype must be auto or fp8, not (?P<v>'.*')", r"kv_cache_dtype de vLLM debe ser auto o fp8, no \g<v>"),
    (r"Ollama's KV cache type is f16, q8_0 or q4_0, not (?P<v>'.*')",
     r"la caché KV de Ollama es f16, q8_0 o q4_0, no \g<v>"),
    (r"no GPU (?P<g>\d+) on (?P<node>.+?) \(it has (?P<has>.+)\)",
     lambda m: f"no hay GPU {m['g']} en {m['node']} (tiene {'ninguna' if m['has'] == 'none' else m['has']})"),
    (r"a GPU is listed twice", "una GPU aparece dos veces"),
    (r"(?P<n>\d+) GPU\(s\) listed; (?P<r>\d+) replica\(s\) × tensor_parallel_size (?P<tp>\d+) need (?P<need>\d+)",
     r"\g<n> GPU indicadas; \g<r> réplica(s) × tensor_parallel_size \g<tp> necesitan \g<need>"),
    (r"no running instance (?P<ref>'.*') on (?P<node>.+)", r"no hay ninguna instancia \g<ref> en marcha en \g<node>"),
    (r"(?P<field>[a-z_]+): (?P<why>.+)", lambda m: (f"{m['field']}: {why}" if (why := translate(m['why'])) else None)),
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
