"""The Ray panel: each Serve deployment's replicas against its target, what a replica needs, how
many can ever fit, and below the table what Ray says about waiting replicas and what cannot work.

It watches the app's ``tick``: the snapshot's Ray state and its analysis (``feasibility.analyze``,
derived off the UI thread), or, elsewhere, is given them::

    panel.show(ray_state, feasibility.analyze(ray_state, snapshot))

Rows are keyed by deployment (``app/name``) and only changed cells are updated, so the cursor
and scroll survive every poll; a deployment whose analysis and status did not move is not
looked at again (a cluster of hundreds of deployments costs the rows that changed). Columns
are chosen by width; at 40 columns the table keeps the name, replicas, GPUs and fits, and the
lines below wrap.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable, Static

from vramtop.ray.feasibility import DeploymentAnalysis, RayAnalysis
from vramtop.ray.model import NOT_FOUND, Deployment, RayState
from vramtop.units import duration, gib
from vramtop.widgets.tick import Tick

# (key, header, width); widths are minimums, the name column takes what is left.
_ALL = (
    ("deployment", "Deployment", 0),
    ("status", "Status", 9),
    ("replicas", "Replicas", 9),
    ("bounds", "Min-max", 7),
    ("target_req", "Tgt req", 7),
    ("gpus", "GPU/r", 5),
    ("cpus", "CPU/r", 5),
    ("fits", "Fits", 4),
)
_WIDE = tuple(k for k, _, _ in _ALL)
_MEDIUM = ("deployment", "status", "replicas", "bounds", "gpus", "fits")
_NARROW = ("deployment", "replicas", "gpus", "fits")


def columns_for_width(width: int) -> tuple[str, ...]:
    if width >= 96:
        return _WIDE
    if width >= 64:
        return _MEDIUM
    return _NARROW


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:g}"


def replicas_text(a: DeploymentAnalysis) -> str:
    """"1/2 +1p": running / target, then starting (s) and pending (p) replicas."""
    text = f"{a.running}/{_num(a.target_replicas) if a.target_replicas is not None else '?'}"
    if a.starting:
        text += f" +{a.starting}s"
    if a.pending:
        text += f" +{a.pending}p"
    return text


def cells(dep: Deployment, a: DeploymentAnalysis) -> dict[str, Text]:
    """Every column's cell for one deployment (the table picks the ones that fit)."""
    bad = a.pending or a.warnings
    fits = _num(a.max_feasible_replicas)
    return {
        "deployment": Text(a.key, overflow="ellipsis", no_wrap=True),
        "status": Text(dep.status or "?", style="bold" if dep.status not in ("HEALTHY", None) else ""),
        "replicas": Text(replicas_text(a), style="bold" if bad else ""),
        "bounds": Text(f"{_num(a.min_replicas)}-{_num(a.max_replicas)}" if dep.autoscaling
                       else f"={_num(dep.num_replicas)}"),
        "target_req": Text(_num(a.target_ongoing_requests)),
        "gpus": Text(_num(a.gpus_per_replica)),
        "cpus": Text(_num(a.cpus_per_replica)),
        "fits": Text(fits, style="bold reverse" if a.warnings else ""),
    }


def detail_lines(state: RayState, analysis: RayAnalysis) -> list[str]:
    """Below the table: waiting replicas with Ray's own message, warnings, LLM config, VRAM at scale."""
    lines: list[str] = []
    deps = {d.key: d for d in state.deployments}
    for a in analysis.deployments:
        dep = deps.get(a.key)
        if a.pending:
            waited = f" for {duration(a.pending_for_s)}" if a.pending_for_s is not None else ""
            lines.append(f"{a.key}: {a.pending} replica{'s' if a.pending != 1 else ''} pending{waited} "
                         f"(no node has the resources)")
        if dep is not None and dep.message:
            lines.append(f"  Ray: {dep.message}")
        lines += [f"  ! {w}" for w in a.warnings]
        if dep is not None and dep.llm is not None:
            llm = dep.llm
            lines.append(f"  {a.key}: {llm.model_id} TP={llm.tensor_parallel_size} PP={llm.pipeline_parallel_size}"
                         f" gpu_memory_utilization={_num(llm.gpu_memory_utilization)}"
                         f" max_model_len={_num(llm.max_model_len)}")
        if a.vram_per_replica_mib is not None:
            parts = [f"{gib(a.vram_per_replica_mib)} per replica"]
            if a.vram_at_min_mib is not None:
                parts.append(f"x{a.min_replicas if a.min_replicas is not None else dep.num_replicas} = {gib(a.vram_at_min_mib)}")
            if a.vram_at_max_mib is not None:
                parts.append(f"x{a.max_replicas} = {gib(a.vram_at_max_mib)}")
            of = f" (cluster {gib(analysis.cluster_vram_mib)})" if analysis.cluster_vram_mib else ""
            lines.append(f"  {a.key} VRAM: " + ", ".join(parts) + of)
    lines += [f"note: {n}" for n in state.notes]
    return lines


def absent_line(address: str) -> str:
    """Ray not answering where it was looked for: one line, with the option that looks elsewhere."""
    return f"no Ray at {address.removeprefix('http://')} · --ray-address"


DETAIL_LINES = 14  # the most lines of details shown under the table


def shown_details(lines: list[str]) -> str:
    """The details that fit under the table, the last line saying how many more there are: on a
    cluster of 200 deployments they run to hundreds of lines, laid out again on every poll for
    the first few that can be seen."""
    if len(lines) > DETAIL_LINES:
        lines = [*lines[:DETAIL_LINES - 1], f"… {len(lines) - DETAIL_LINES + 1} more lines"]
    return "\n".join(lines)


class RayPanel(Widget):
    """Ray Serve deployments and what the cluster can hold. ``show`` with each new poll."""

    DEFAULT_CSS = f"""
    RayPanel {{ height: auto; max-height: 60%; layout: vertical; }}
    RayPanel > #ray-summary {{ height: 1; text-wrap: nowrap; text-overflow: ellipsis; }}
    RayPanel > #ray-table {{ height: auto; max-height: 12; }}
    RayPanel > #ray-details {{ height: auto; max-height: {DETAIL_LINES}; }}
    RayPanel.-quiet > #ray-summary {{ color: $text-muted; }}
    RayPanel.-quiet > #ray-table, RayPanel.-quiet > #ray-details {{ display: none; }}
    RayPanel.-stale > #ray-summary {{ text-style: bold; }}
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._columns: tuple[str, ...] = ()
        self._shown: dict[str, dict[str, str]] = {}
        self._inputs: dict[str, tuple] = {}  # deployment -> what its shown cells were made of
        self._state: RayState | None = None
        self._analysis = RayAnalysis()
        self._texts: dict[str | None, str] = {}  # box id -> the text it shows

    def on_mount(self) -> None:
        self.watch(self.app, "tick", self._take_tick)

    def _take_tick(self, tick: Tick | None) -> None:
        if tick is not None and not tick.at_rest:
            self.show(tick.snapshot.ray, tick.ray)

    def compose(self) -> ComposeResult:
        yield Static("Ray: not polled", id="ray-summary", markup=False)
        yield DataTable(id="ray-table", cursor_type="row", zebra_stripes=False)
        yield Static("", id="ray-details", markup=False)

    @property
    def table(self) -> DataTable:
        return self.query_one("#ray-table", DataTable)

    def show(self, state: RayState | None, analysis: RayAnalysis | None = None) -> None:
        """Show a poll (None: Ray is not polled). ``analysis`` defaults to none (no rows)."""
        self._state = state
        self._analysis = analysis or RayAnalysis()
        summary = self.query_one("#ray-summary", Static)
        if state is None:
            self._put(summary, "Ray: not polled")
            self.set_class(True, "-quiet")
            self._apply()
            return
        self._put(summary, absent_line(state.address) if state.status == NOT_FOUND else state.summary())
        self.set_class(state.status == NOT_FOUND, "-quiet")
        self.set_class(state.error is not None and state.last_success is not None, "-stale")
        self._apply()

    def _put(self, box: Static, text: str) -> None:
        """Update ``box`` only when its text changes, and lay the screen out again only when its
        line count does: a pending replica's wait ticks every second, the layout need not."""
        before = self._texts.get(box.id)
        if text == before:
            return
        self._texts[box.id] = text
        width = box.content_size.width

        def rows(t: str) -> int:  # lines once wrapped at the box's width
            return sum(max(1, -(-len(line) // width)) for line in t.split("\n")) if width else -1

        box.update(text, layout=before is None or rows(before) != rows(text))

    def on_resize(self) -> None:
        wanted = columns_for_width(self.size.width)
        if wanted != self._columns:
            self._set_columns(wanted)

    def _set_columns(self, columns: tuple[str, ...]) -> None:
        """A new column set (on resize only): the one time rows are rebuilt."""
        table = self.table
        table.clear(columns=True)
        self._shown.clear()
        self._inputs.clear()
        self._columns = columns
        widths = {k: w for k, _, w in _ALL}
        name_width = max(12, self.size.width - sum(widths[c] + 2 for c in columns if c != "deployment") - 4)
        for key, header, width in _ALL:
            if key in columns:
                table.add_column(header, key=key, width=width or name_width)
        self._apply()

    def _apply(self) -> None:
        if not self._columns:
            return
        table = self.table
        state, analysis = self._state, self._analysis
        deps = {d.key: d for d in state.deployments} if state else {}
        inputs = {a.key: (a, deps[a.key].status, deps[a.key].autoscaling is None, deps[a.key].num_replicas)
                  for a in analysis.deployments if a.key in deps}
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in inputs]:
                table.remove_row(key)
                del self._shown[key], self._inputs[key]
            for key, made_of in inputs.items():
                if self._inputs.get(key) == made_of:
                    continue
                self._inputs[key] = made_of
                row = cells(deps[key], made_of[0])
                texts = {c: row[c].plain for c in self._columns}
                if key not in self._shown:
                    table.add_row(*(row[c] for c in self._columns), key=key)
                else:
                    for c in self._columns:
                        if self._shown[key].get(c) != texts[c]:
                            table.update_cell(key, c, row[c])
                self._shown[key] = texts
            details = detail_lines(state, analysis) if state is not None and state.found else []
            self._put(self.query_one("#ray-details", Static), shown_details(details))
