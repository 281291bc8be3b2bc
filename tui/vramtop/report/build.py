"""The report: sections of Markdown and findings, in English or Spanish, from ``facts.gather``.

Each finding is a conclusion drawn from the numbers (``fact``), a common misreading those numbers
correct, with the reason (``correction``), or something to do (``recommendation``). The fit
engine's own reasons and suggestions are quoted as it gives them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vramtop import __version__
from vramtop.analysis import roles
from vramtop.analysis.states import SYMBOLS
from vramtop.config import REPORT_LANGS
from vramtop.fit import Candidate
from vramtop.report import es_fit
from vramtop.report.facts import Facts, InstanceCost, gather
from vramtop.snapshot import NodeSnapshot
from vramtop.units import duration, gib, memory_sign

LANGS = REPORT_LANGS
FACT, CORRECTION, RECOMMENDATION = "fact", "correction", "recommendation"
_STATE_ES = {"critical": "crítico", "low": "bajo", "ok": "ok", "lost": "perdida"}
_VERDICT_ES = {"GREEN": "VERDE", "YELLOW": "AMARILLO", "RED": "ROJO", "INVALID": "NO VÁLIDO"}


@dataclass(frozen=True)
class Finding:
    id: str
    kind: str
    text: str


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    lang: str
    title: str
    sections: tuple[Section, ...]
    findings: tuple[Finding, ...]
    data: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for s in self.sections:
            out += [f"## {s.title}", "", *s.lines, ""]
        return "\n".join(out).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang, "title": self.title, "vramtop_version": __version__,
            "sections": [{"key": s.key, "title": s.title, "markdown": "\n".join(s.lines)} for s in self.sections],
            "findings": [{"id": f.id, "kind": f.kind, "text": f.text} for f in self.findings],
            **self.data,
        }


def _mib(v: int | float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f} MiB"


class _Writer:
    """Collects lines and findings in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.findings: list[Finding] = []

    def t(self, en: str, es: str) -> str:
        return es if self.lang == "es" else en

    def find(self, lines: list[str], id: str, kind: str, en: str, es: str) -> None:
        text = self.t(en, es)
        self.findings.append(Finding(id, kind, text))
        mark = {FACT: "", CORRECTION: self.t("**Correction:** ", "**Corrección:** "),
                RECOMMENDATION: self.t("**Recommendation:** ", "**Recomendación:** ")}[kind]
        lines.append(f"- {mark}{text}")

    def state(self, word: str) -> str:
        return f"{SYMBOLS.get(word, '')} {_STATE_ES.get(word, word) if self.lang == 'es' else word}"

    def verdict(self, word: str) -> str:
        return _VERDICT_ES.get(word, word) if self.lang == "es" else word

    def fit(self, text: str) -> str:
        """One of the fit engine's sentences in the report's language (marked where no Spanish
        template fits it)."""
        if self.lang != "es":
            return text
        return es_fit.translate(text) or f"{text} _(en inglés)_"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


# -- sections ----------------------------------------------------------------------------------

def _node(w: _Writer, f: Facts) -> Section:
    s = f.snapshot
    lines = [w.t(f"{len(f.gpus)} GPU(s) on **{s.hostname}**: used {_mib(s.used_mib)} of {_mib(s.total_mib)}, "
                 f"reserved by the driver {_mib(s.reserved_mib)}, free {_mib(s.free_mib)} ({gib(s.free_mib, 2)}).",
                 f"{len(f.gpus)} GPU en **{s.hostname}**: usados {_mib(s.used_mib)} de {_mib(s.total_mib)}, "
                 f"reservados por el driver {_mib(s.reserved_mib)}, libres {_mib(s.free_mib)} ({gib(s.free_mib, 2)})."), ""]
    head = w.t("GPU|Name|Total|Reserved|Used|Free|State", "GPU|Modelo|Total|Reservada|Usada|Libre|Estado").split("|")
    rows = []
    for g in f.gpus:  # a GPU in MIG mode, then its slices, as nvidia-smi lists MIG devices
        rows.append([str(g.index), g.name, _mib(g.total_mib), _mib(g.reserved_mib), _mib(g.used_mib),
                     f"**{_mib(g.free_mib)}**", w.state(g.state)])
        rows += [[m.label, f"MIG {m.profile}", _mib(m.total_mib), _mib(m.reserved_mib), _mib(m.used_mib),
                  f"**{_mib(m.free_mib)}**", w.state(m.state)] for m in g.slices]
    rows.append([w.t("**Total**", "**Total**"), "", _mib(s.total_mib), _mib(s.reserved_mib), _mib(s.used_mib),
                 f"**{_mib(s.free_mib)}**", ""])
    lines += _table(head, rows) + [""]
    live = [g for g in f.gpus if not g.lost]
    if live:
        g = live[0]
        sign = memory_sign(g.used_mib, g.reserved_mib, g.free_mib, g.total_mib)
        rounded, redondeo = ("", "") if sign == "=" else (
            "; nvidia-smi rounds each figure up to the MiB", "; nvidia-smi redondea cada cifra al MiB superior")
        w.find(lines, "reserved", FACT,
               f"On each GPU used + reserved + free = total (GPU {g.index}: {g.used_mib:,} + {g.reserved_mib:,} + "
               f"{g.free_mib:,} {sign} {g.total_mib:,} MiB{rounded}). The driver's reserve "
               f"({s.reserved_mib:,} MiB in all) is never available to processes; CUDA reports "
               f"{_mib(g.total_mib - g.reserved_mib)} "
               f"({gib(g.total_mib - g.reserved_mib, 2)}) per GPU.",
               f"En cada GPU usada + reservada + libre = total (GPU {g.index}: {g.used_mib:,} + {g.reserved_mib:,} + "
               f"{g.free_mib:,} {sign} {g.total_mib:,} MiB{redondeo}). La reserva del driver "
               f"({s.reserved_mib:,} MiB en total) nunca está disponible para los procesos; CUDA informa de "
               f"{_mib(g.total_mib - g.reserved_mib)} "
               f"({gib(g.total_mib - g.reserved_mib, 2)}) por GPU.")
    best = f.most_free
    low = min(live, key=lambda g: g.free_mib) if live else None
    if best is not None and len(live) > 1:
        w.find(lines, "free_is_per_gpu", CORRECTION,
               f"{_mib(s.free_mib)} are free in total, but spread over {len(live)} GPUs: the most on one GPU is "
               f"{_mib(best.free_mib)} (GPU {best.index}) and GPU {low.index} has {_mib(low.free_mib)}. A model must fit "
               f"on each GPU it uses, so its needs are compared per GPU, never with the node's total.",
               f"Hay {_mib(s.free_mib)} libres en total, pero repartidos en {len(live)} GPU: lo máximo en una GPU es "
               f"{_mib(best.free_mib)} (GPU {best.index}) y la GPU {low.index} tiene {_mib(low.free_mib)}. Un modelo "
               f"debe caber en cada GPU que use, así que sus necesidades se comparan por GPU, nunca con el total del nodo.")
    for g in f.tight_gpus:
        w.find(lines, f"gpu{g.index}_{g.state}", FACT,
               f"GPU {g.index} is {g.state}: {_mib(g.free_mib)} free of {_mib(g.total_mib)}.",
               f"La GPU {g.index} está en estado {_STATE_ES[g.state]}: {_mib(g.free_mib)} libres de {_mib(g.total_mib)}.")
    return Section("node", w.t("VRAM of the node", "VRAM del nodo"), tuple(lines))


def _processes(w: _Writer, f: Facts) -> Section:
    head = w.t("GPU|PID|Memory|Role|Instance|Command", "GPU|PID|Memoria|Rol|Instancia|Comando").split("|")
    rows = [[p.where or str(p.gpu_index), str(p.pid), _mib(p.used_mib), p.role, p.instance or "-", f"`{p.command}`" if p.command else "-"]
            for p in f.processes]
    lines = _table(head, rows) if rows else [w.t("No process uses a GPU.", "Ningún proceso usa una GPU.")]
    return Section("processes", w.t("Processes", "Procesos"), tuple(lines))


def _parts_text(w: _Writer, inst: InstanceCost) -> str:
    out = []
    for p in inst.parts:
        each = p.each_mib
        where = " / ".join(f"{m:,}" for m in p.per_gpu_mib.values())
        gpus = ", ".join(str(g) for g in p.per_gpu_mib)
        if p.count > 1 and each is not None:
            out.append(f"{p.count} × {p.label} × {each:,} = {p.mib:,} MiB")
        elif len(p.per_gpu_mib) > 1:
            out.append(w.t(f"{p.label} {p.mib:,} MiB ({where} on GPUs {gpus})",
                           f"{p.label} {p.mib:,} MiB ({where} en las GPU {gpus})"))
        else:
            out.append(w.t(f"{p.label} {p.mib:,} MiB (GPU {gpus})", f"{p.label} {p.mib:,} MiB (GPU {gpus})"))
    return ", ".join(out)


def _instances(w: _Writer, f: Facts) -> Section:
    lines: list[str] = []
    if not f.instances:
        return Section("instances", w.t("Serving instances", "Instancias de servicio"),
                       (w.t("No serving instance.", "Ninguna instancia de servicio."),))
    head = w.t("Instance|Engine|TP|GPUs|Per GPU|Total (one replica)",
               "Instancia|Motor|TP|GPU|Por GPU|Total (una réplica)").split("|")
    rows = [[i.name, i.engine, str(i.tp_size or "-"), ",".join(i.per_slice_mib or map(str, i.gpus)),
             " / ".join(f"{m:,}" for m in (i.per_slice_mib or i.per_gpu_mib).values()),
             f"**{_mib(i.total_mib)}** ({gib(i.total_mib, 2)})"]
            for i in f.instances]
    lines += _table(head, rows) + [""]
    cuda = f.cuda_total_mib
    best = f.most_free
    for inst in f.instances:
        workers = inst.part("worker")
        if len(inst.parts) > 1:
            w.find(lines, f"replica_cost:{inst.key}", FACT,
                   f"One replica of {inst.name} holds {_mib(inst.total_mib)} ({gib(inst.total_mib, 2)}) on "
                   f"{len(inst.gpus)} GPU(s): {_parts_text(w, inst)}. That is what stopping it frees.",
                   f"Una réplica de {inst.name} ocupa {_mib(inst.total_mib)} ({gib(inst.total_mib, 2)}) en "
                   f"{len(inst.gpus)} GPU: {_parts_text(w, inst)}. Es lo que se libera al detenerla.")
        if workers is not None and workers.mib < inst.total_mib:
            rest = inst.total_mib - workers.mib
            w.find(lines, f"workers_only:{inst.key}", CORRECTION,
                   f"Counting only the workers ({workers.mib:,} MiB, {gib(workers.mib, 2)}) leaves out {rest:,} MiB of the "
                   f"replica: the other processes of the instance hold CUDA memory too. The cost of a replica is "
                   f"{_mib(inst.total_mib)}.",
                   f"Contar solo los workers ({workers.mib:,} MiB, {gib(workers.mib, 2)}) deja fuera {rest:,} MiB de la "
                   f"réplica: los demás procesos de la instancia también ocupan memoria CUDA. El coste de una réplica es "
                   f"{_mib(inst.total_mib)}.")
        if inst.engine == roles.VLLM and cuda:
            _vllm_findings(w, lines, inst, cuda, best.free_mib if best else 0)
    return Section("instances", w.t("Serving instances and their cost", "Instancias de servicio y su coste"), tuple(lines))


def _vllm_findings(w: _Writer, lines: list[str], inst: InstanceCost, cuda: int, most_free: int) -> None:
    util = inst.gpu_memory_utilization
    said = (w.t(f"its metrics report gpu_memory_utilization={util:g}", f"sus métricas indican gpu_memory_utilization={util:g}")
            if util is not None else w.t("its metrics were not read", "no se leyeron sus métricas"))
    budget = round((util or 0.9) * cuda)
    w.find(lines, f"vllm_util:{inst.key}", CORRECTION,
           f"vLLM takes gpu_memory_utilization as a share of each GPU's TOTAL memory as CUDA reports it "
           f"({_mib(cuda)} = {gib(cuda, 2)} here), not of the model's size: at {util or 0.9:g} every rank reserves "
           f"{_mib(budget)} ({gib(budget, 2)}) whatever the model, and fills what the weights leave with KV cache. "
           f"The largest worker of {inst.name} holds {inst.util_from_memory or 0:.3f} of that total with its CUDA "
           f"context; {said}. Each 0.05 less frees {_mib(0.05 * cuda)} per GPU, after a restart.",
           f"vLLM interpreta gpu_memory_utilization como una fracción de la memoria TOTAL de cada GPU según CUDA "
           f"({_mib(cuda)} = {gib(cuda, 2)} aquí), no del tamaño del modelo: con {util or 0.9:g} cada rank reserva "
           f"{_mib(budget)} ({gib(budget, 2)}) sea cual sea el modelo, y llena con caché KV lo que dejan los pesos. "
           f"El worker más grande de {inst.name} ocupa {inst.util_from_memory or 0:.3f} de ese total con su contexto "
           f"CUDA; {said}. Cada 0.05 menos libera {_mib(0.05 * cuda)} por GPU, tras reiniciar.")
    startable = max(0.0, most_free / cuda)
    w.find(lines, "vllm_startup_check", FACT,
           f"A new vLLM instance checks at start-up that each of its GPUs has gpu_memory_utilization × {gib(cuda, 2)} "
           f"free and refuses to start otherwise (\"Free memory on device ... is less than desired GPU memory "
           f"utilization\"). With at most {_mib(most_free)} free on any GPU, none could start beside {inst.name} "
           f"unless its gpu_memory_utilization were at most {startable:.2f}.",
           f"Una instancia nueva de vLLM comprueba al arrancar que cada una de sus GPU tenga gpu_memory_utilization × "
           f"{gib(cuda, 2)} libres y, si no, no arranca (\"Free memory on device ... is less than desired GPU memory "
           f"utilization\"). Con como mucho {_mib(most_free)} libres en una GPU, ninguna podría arrancar junto a "
           f"{inst.name} salvo con gpu_memory_utilization de {startable:.2f} o menos.")
    if (check := inst.kv_check) is not None and check.error_pct is not None:
        close = abs(check.error_pct) <= 10
        w.find(lines, f"kv_check:{inst.key}", FACT,
               f"For {check.model} with this configuration the fit engine predicts {check.predicted_blocks:,} KV cache "
               f"blocks per rank; vLLM reports {check.actual_blocks:,} ({check.error_pct:+.1f} %): "
               + ("its model of vLLM's budget holds on this node." if close else
                  "its vLLM verdicts on this node may be off by about that much."),
               f"Para {check.model} con esta configuración el motor de ajuste predice {check.predicted_blocks:,} bloques "
               f"de caché KV por rank; vLLM indica {check.actual_blocks:,} ({check.error_pct:+.1f} %): "
               + ("su modelo del presupuesto de vLLM se cumple en este nodo." if close else
                  "sus veredictos de vLLM en este nodo pueden desviarse más o menos eso."))
    kv = (w.t(f" (its KV cache is {inst.kv_cache_usage:.0%} full now, inside that reserve)",
              f" (su caché KV está ahora al {inst.kv_cache_usage:.0%}, dentro de esa reserva)")
          if inst.kv_cache_usage is not None else "")
    w.find(lines, f"requests:{inst.key}", FACT,
           f"More requests do not grow the memory of {inst.name}: vLLM reserves its KV cache at start-up{kv}; "
           f"more load queues requests or, with autoscaling, adds replicas of {_mib(inst.total_mib)} each.",
           f"Más peticiones no aumentan la memoria de {inst.name}: vLLM reserva su caché KV al arrancar{kv}; "
           f"más carga encola peticiones o, con autoscaling, añade réplicas de {_mib(inst.total_mib)} cada una.")


def _ray(w: _Writer, f: Facts) -> Section | None:
    if f.ray is None:
        return None
    a = f.ray
    lines = [w.t(f"Cluster: {a.cluster_gpus:g} GPU(s)" + (f", {_mib(a.cluster_vram_mib)} of VRAM." if a.cluster_vram_mib else "."),
                 f"Clúster: {a.cluster_gpus:g} GPU" + (f", {_mib(a.cluster_vram_mib)} de VRAM." if a.cluster_vram_mib else ".")), ""]
    head = w.t("Deployment|Replicas (running / pending / target)|min / max / target_ongoing_requests|GPUs per replica|"
               "Replicas that fit|VRAM per replica|VRAM at min|VRAM at max",
               "Deployment|Réplicas (activas / pendientes / objetivo)|min / max / target_ongoing_requests|GPU por réplica|"
               "Réplicas que caben|VRAM por réplica|VRAM con min|VRAM con max").split("|")
    rows = []
    for d in a.deployments:
        rows.append([d.key, f"{d.running} / {d.pending} / {d.target_replicas if d.target_replicas is not None else '-'}",
                     f"{d.min_replicas} / {d.max_replicas} / {d.target_ongoing_requests:g}" if d.min_replicas is not None else "-",
                     f"{d.gpus_per_replica:g}" if d.gpus_per_replica is not None else "n/a",
                     str(d.max_feasible_replicas) if d.max_feasible_replicas is not None else "n/a",
                     _mib(d.vram_per_replica_mib), _mib(d.vram_at_min_mib), _mib(d.vram_at_max_mib)])
    lines += _table(head, rows) + [""]
    for d in a.deployments:
        gpus = d.gpus_per_replica
        fits = d.max_feasible_replicas
        if gpus is None or fits is None:
            continue
        per = d.vram_per_replica_mib
        for label, count, vram in (("min", d.min_replicas, d.vram_at_min_mib), ("max", d.max_replicas, d.vram_at_max_mib)):
            if count is None or count <= fits:
                continue
            w.find(lines, f"ray_{label}:{d.key}", FACT,
                   f"{label}_replicas={count} of {d.key} needs {count * gpus:g} GPUs ({count} × {gpus:g})"
                   + (f" and {_mib(vram)} ({count} × {per:,} MiB)" if vram is not None and per is not None else "")
                   + f"; the cluster has {a.cluster_gpus:g} GPUs, so at most {fits} replica(s) can run.",
                   f"{label}_replicas={count} de {d.key} necesita {count * gpus:g} GPU ({count} × {gpus:g})"
                   + (f" y {_mib(vram)} ({count} × {per:,} MiB)" if vram is not None and per is not None else "")
                   + f"; el clúster tiene {a.cluster_gpus:g} GPU, así que caben como mucho {fits} réplica(s).")
        if d.min_replicas is not None and d.max_replicas is not None and d.max_replicas > fits:
            waiting = (w.t(f" {d.pending} replica(s) wait for resources now"
                           + (f" (for {duration(d.pending_for_s)})" if d.pending_for_s else "") + ".",
                           f" Ahora hay {d.pending} réplica(s) esperando recursos"
                           + (f" (desde hace {duration(d.pending_for_s)})" if d.pending_for_s else "") + ".")
                       if d.pending else "")
            w.find(lines, f"ray_autoscaling:{d.key}", FACT,
                   f"Autoscaling of {d.key} cannot work as configured: each replica asks {gpus:g} GPUs, so the cluster holds "
                   f"{fits}; target_ongoing_requests={d.target_ongoing_requests:g} can only add replicas up to that.{waiting}",
                   f"El autoscaling de {d.key} no puede funcionar tal como está: cada réplica pide {gpus:g} GPU, así que el "
                   f"clúster admite {fits}; target_ongoing_requests={d.target_ongoing_requests:g} solo puede añadir réplicas "
                   f"hasta ese número.{waiting}")
    return Section("ray", w.t("Ray Serve deployments", "Deployments de Ray Serve"), tuple(lines))


def _candidates(w: _Writer, f: Facts) -> Section | None:
    if not f.candidates:
        return None
    lines: list[str] = []
    for c in f.candidates:
        r = c.result
        lines += [f"### {c.text}", "", f"**{r.symbol} {w.verdict(r.word)}** — {w.fit(r.headline)}", ""]
        lines.append(w.t("Why (fit engine):", "Por qué (motor de ajuste):"))
        lines += [f"- {w.fit(x)}" for x in r.reasons] + [""]
        if r.engine_error:
            lines += [w.t(f"vLLM would say: `{r.engine_error}`", f"vLLM diría: `{r.engine_error}`"), ""]
        plan = r.ollama_plan
        if plan is not None:
            total = plan.total_bytes / 2**30
            w.find(lines, f"needs_more_than_weights:{c.text}", CORRECTION,
                   f"{r.model} needs more than its weights ({plan.weights_bytes / 1e9:.1f} GB = "
                   f"{plan.weights_bytes / 2**30:.2f} GiB, {plan.quant}): Ollama adds a KV cache of "
                   f"{plan.kv_cache_bytes / 2**30:.2f} GiB for num_ctx {plan.num_ctx:,} × {plan.num_parallel} and a compute "
                   f"graph of {plan.graph_bytes / 2**30:.2f} GiB, {total:.2f} GiB in all.",
                   f"{r.model} necesita más que sus pesos ({plan.weights_bytes / 1e9:.1f} GB = "
                   f"{plan.weights_bytes / 2**30:.2f} GiB, {plan.quant}): Ollama añade una caché KV de "
                   f"{plan.kv_cache_bytes / 2**30:.2f} GiB para num_ctx {plan.num_ctx:,} × {plan.num_parallel} y un grafo "
                   f"de cómputo de {plan.graph_bytes / 2**30:.2f} GiB, {total:.2f} GiB en total.")
            w.find(lines, f"ollama_layers:{c.text}", CORRECTION,
                   f"Ollama has no tensor parallelism: it puts whole layers on the GPUs (each GPU it uses needs "
                   f"{plan.first_layers_bytes / 2**20:,.0f} MiB free to take any, keeping 457 MiB spare) and runs the "
                   f"rest on the CPU; tensor_parallel_size and gpu_memory_utilization are vLLM settings that do not "
                   f"apply to it.",
                   f"Ollama no usa paralelismo tensorial: coloca capas enteras en las GPU (cada GPU que use necesita "
                   f"{plan.first_layers_bytes / 2**20:,.0f} MiB libres para recibir alguna, dejando 457 MiB de margen) y "
                   f"ejecuta el resto en la CPU; tensor_parallel_size y gpu_memory_utilization son ajustes de vLLM que "
                   f"no se le aplican.")
            lines.append("")
        if r.per_gpu:
            head = w.t("GPU|Needs|Free|Note", "GPU|Necesita|Libre|Nota").split("|")
            lines += _table(head, [[str(g.gpu_index), _mib(g.needed_mib), _mib(g.free_mib),
                                    (es_fit.note(g.note) if w.lang == "es" else g.note)
                                    + ("" if g.fits else w.t(" — SHORT", " — NO CABE"))] for g in r.per_gpu]) + [""]
        if r.suggestions:
            lines.append(w.t("What would make it fit (fit engine):", "Qué lo haría caber (motor de ajuste):"))
            lines += [f"- {w.verdict(s.verdict.upper())}: {w.fit(s.text)}" for s in r.suggestions] + [""]
        if c.best is not None:
            lines += [w.t(f"After the best of these ({c.best_text}): **{c.best.symbol} {w.verdict(c.best.word)}** — {c.best.headline}",
                          f"Tras la mejor de ellas ({w.fit(c.best_text)}): **{c.best.symbol} {w.verdict(c.best.word)}** — "
                          f"{w.fit(c.best.headline)}"), ""]
        if c.launch is not None:
            lines += [w.t("Launch line on this node now (`vramtop launch -- ...` admits it without a start-up race):",
                          "Línea de arranque en este nodo ahora (`vramtop launch -- ...` la admite sin carrera al arrancar):"),
                      "", "```sh", *c.launch.text.splitlines(), "```", ""]
    return Section("candidates", w.t("Candidates", "Candidatos"), tuple(lines))


def _recommendations(w: _Writer, f: Facts) -> Section:
    lines: list[str] = []
    if f.ray is not None:
        for d in f.ray.deployments:
            fits = d.max_feasible_replicas
            if fits is None or d.min_replicas is None or d.max_replicas is None or d.max_replicas <= fits:
                continue
            keep = max(fits, 1)
            gpus = d.gpus_per_replica or 0
            w.find(lines, f"rec_ray:{d.key}", RECOMMENDATION,
                   f"Set {d.key} to min_replicas={keep}, max_replicas={keep} (what {f.ray.cluster_gpus:g} GPUs hold at "
                   f"{gpus:g} per replica), or add GPUs: each further replica needs {gpus:g} GPUs on one node"
                   + (f" and about {_mib(d.vram_per_replica_mib)}" if d.vram_per_replica_mib else "") + ".",
                   f"Configurar {d.key} con min_replicas={keep}, max_replicas={keep} (lo que admiten {f.ray.cluster_gpus:g} "
                   f"GPU a {gpus:g} por réplica), o añadir GPU: cada réplica más necesita {gpus:g} GPU en un nodo"
                   + (f" y unos {_mib(d.vram_per_replica_mib)}" if d.vram_per_replica_mib else "") + ".")
    for c in f.candidates:
        r, best = c.result, c.best
        if r.verdict == "green":
            w.find(lines, f"rec_candidate:{c.text}", RECOMMENDATION,
                   f"{c.text} fits as it is: {r.headline}.", f"{c.text} cabe tal cual: {r.headline}.")
        elif best is not None and best.verdict != "red":
            w.find(lines, f"rec_candidate:{c.text}", RECOMMENDATION,
                   f"To run {c.text}: {c.best_text} → {best.word}: {best.headline}.",
                   f"Para ejecutar {c.text}: {c.best_text} → {w.verdict(best.word)}: {best.headline}.")
        else:
            w.find(lines, f"rec_candidate:{c.text}", RECOMMENDATION,
                   f"{c.text} cannot run on this node as things are, and no single change found makes it fit.",
                   f"{c.text} no puede ejecutarse en este nodo tal como está, y ningún cambio encontrado lo hace caber.")
    for inst in f.instances:
        if inst.engine == roles.VLLM and f.cuda_total_mib and any(g.state == "critical" for g in f.gpus):
            w.find(lines, f"rec_util:{inst.key}", RECOMMENDATION,
                   f"If another process must share these GPUs, restart {inst.name} with a lower gpu_memory_utilization: "
                   f"each 0.05 less leaves {_mib(0.05 * f.cuda_total_mib)} more free on every GPU it uses (less KV cache, "
                   f"fewer concurrent requests).",
                   f"Si otro proceso debe compartir estas GPU, reiniciar {inst.name} con un gpu_memory_utilization menor: "
                   f"cada 0.05 menos deja {_mib(0.05 * f.cuda_total_mib)} más libres en cada GPU que usa (menos caché KV, "
                   f"menos peticiones simultáneas).")
    if not lines:
        lines.append(w.t("Nothing to change.", "Nada que cambiar."))
    return Section("recommendations", w.t("Recommendations", "Recomendaciones"), tuple(lines))


# -- the whole report --------------------------------------------------------------------------

def _data(f: Facts) -> dict[str, Any]:
    s = f.snapshot
    out: dict[str, Any] = {
        "node": {"hostname": s.hostname, "source": s.source, "timestamp": s.timestamp,
                 "total_mib": s.total_mib, "reserved_mib": s.reserved_mib, "used_mib": s.used_mib,
                 "free_mib": s.free_mib, "cuda_total_mib_per_gpu": f.cuda_total_mib},
        "gpus": [{"index": g.index, "name": g.name, "total_mib": g.total_mib, "reserved_mib": g.reserved_mib,
                  "used_mib": g.used_mib, "free_mib": g.free_mib, "state": g.state} for g in f.gpus],
        "processes": [{"gpu": p.gpu_index, "pid": p.pid, "used_mib": p.used_mib, "role": p.role,
                       "instance": p.instance, "command": p.command} for p in f.processes],
        "instances": [{"key": i.key, "name": i.name, "engine": i.engine, "tp_size": i.tp_size,
                       "per_gpu_mib": {str(g): m for g, m in i.per_gpu_mib.items()}, "total_mib": i.total_mib,
                       "parts": [{"role": p.role, "label": p.label, "count": p.count, "mib": p.mib,
                                  "per_gpu_mib": {str(g): m for g, m in p.per_gpu_mib.items()}} for p in i.parts],
                       "gpu_memory_utilization": i.gpu_memory_utilization, "util_from_memory": i.util_from_memory,
                       "kv_cache_usage": i.kv_cache_usage} for i in f.instances],
        "candidates": [{"text": c.text, **c.result.to_json(),
                        "after_best_suggestion": c.best.to_json() if c.best else None,
                        "launch": c.launch.to_json() if c.launch else None} for c in f.candidates],
    }
    if f.ray is not None:
        from vramtop.ray import export as ray_export

        out["ray"] = ray_export.to_dict(s.ray, f.ray)
    return out


def build_report(snapshot: NodeSnapshot, candidates: list[tuple[str, Candidate]] | None = None, lang: str = "en",
                 source_label: str | None = None) -> Report:
    """The report of ``snapshot`` with each (text, Candidate) evaluated by the fit engine.
    ``source_label`` says where the snapshot came from ("replay of FILE at 12:00:01")."""
    if lang not in LANGS:
        raise ValueError(f"unknown language '{lang}' (en or es)")
    f = gather(snapshot, list(candidates or ()))
    w = _Writer(lang)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snapshot.timestamp))
    title = w.t(f"VRAM report: {snapshot.hostname}, {when}", f"Informe de VRAM: {snapshot.hostname}, {when}")
    intro = [w.t(f"Written by vramtop {__version__} from {source_label or snapshot.source} data"
                 + (f"; driver {snapshot.driver_version}, CUDA {snapshot.cuda_version}" if snapshot.driver_version else "") + ".",
                 f"Escrito por vramtop {__version__} a partir de datos {source_label or snapshot.source}"
                 + (f"; driver {snapshot.driver_version}, CUDA {snapshot.cuda_version}" if snapshot.driver_version else "") + ".")]
    intro += [f"- {e.source}: {e.message}" for e in snapshot.errors]
    sections = [Section("about", w.t("About this report", "Sobre este informe"), tuple(intro)),
                _node(w, f), _processes(w, f), _instances(w, f)]
    sections += [s for s in (_ray(w, f), _candidates(w, f)) if s is not None]
    sections.append(_recommendations(w, f))
    return Report(lang, title, tuple(sections), tuple(w.findings), _data(f))
