"""What the app publishes to every panel: one ``Tick`` per new snapshot.

The app's sampling thread takes a whole snapshot from its feed and derives, off the UI thread,
what several panels show (the serving instances, the analysis of the Ray state, the process
table's rows for the view the table had when the sample began); the app sets
its ``tick`` to the result, and each panel watches ``app.tick`` from its mount on (Textual's
``watch``: attributes down, messages up). Textual-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vramtop.analysis.instances import Instance, instances_of
from vramtop.snapshot import NodeSnapshot
from vramtop.telemetry.model import same_process_facts
from vramtop.widgets.process_rows import RowMemo, Rows, RowView, build_rows

if TYPE_CHECKING:  # the Ray analysis loads with the first Ray state: none with --no-ray
    from vramtop.ray.feasibility import RayAnalysis


@dataclass(frozen=True)
class Tick:
    """A snapshot and what is derived from it. ``ray`` analyses ``snapshot.ray`` (None without a
    Ray state). ``at_rest``: nothing the panels judge moved since the tick before (the same GPUs,
    processes, errors and slower sources), only the clock-bound parts need drawing; a failed
    sample's aged picture is one too. ``where``: a replay's position, for the header. ``rows``:
    the process table's rows for ``rows_view`` (None: not built; the table builds its own)."""

    snapshot: NodeSnapshot
    instances: tuple[Instance, ...]
    ray: RayAnalysis | None = None
    at_rest: bool = False
    where: str | None = None
    rows: Rows | None = None
    rows_view: RowView | None = None


def same_picture(before: NodeSnapshot, now: NodeSnapshot) -> bool:
    """Nothing a view shows moved between two snapshots but the clock."""
    return (now.gpus == before.gpus and now.gpu_processes == before.gpu_processes and now.errors == before.errors
            and now.ancestors == before.ancestors and now.ray is before.ray and now.telemetry is before.telemetry)


def derive(snapshot: NodeSnapshot, before: Tick | None = None, view: RowView | None = None,
           memo: RowMemo | None = None) -> Tick:
    """The tick of ``snapshot``; what ``before`` derived is reused when nothing moved (the Ray
    analysis grows with the cluster and the rows with the processes, so they are built here, in
    the sampling thread). With a ``view``, the process table's rows for it (``memo``: the rows of
    the last build, kept for the next), ``before``'s where its records, instances and the
    processes' telemetry facts are the same."""
    if before is not None and same_picture(before.snapshot, snapshot):
        rows = before.rows if view == before.rows_view else None
        return Tick(snapshot, before.instances, before.ray, rows=rows, rows_view=view if rows is not None else None)
    ray = None
    if snapshot.ray is not None:
        from vramtop.ray.feasibility import analyze

        ray = analyze(snapshot.ray, snapshot)
    instances = instances_of(snapshot)
    if (view is not None and before is not None and before.rows is not None and view == before.rows_view
            and instances is before.instances and same_process_facts(before.snapshot.telemetry, snapshot.telemetry)):
        rows = before.rows  # the same records and facts: a new telemetry poll, or GPUs whose figures moved
    else:
        rows = build_rows(snapshot, instances, view, memo) if view is not None else None
    return Tick(snapshot, instances, ray, rows=rows, rows_view=view)
