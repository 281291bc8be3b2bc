"""The process table as CSV (``vramtop --once --csv``): one row per process per GPU.

Same figures and names as the JSON snapshot and the live table, for spreadsheets and shell
pipelines; a figure nobody reported is an empty cell, never 0.
"""

from __future__ import annotations

import csv
import io

from vramtop.analysis import roles
from vramtop.analysis.instances import instance_of, instances_of
from vramtop.snapshot import NodeSnapshot, slice_label
from vramtop.telemetry.model import process_facts

COLUMNS = ("gpu", "pid", "user", "engine", "role", "label", "instance", "used_mib", "cpu_pct", "rss_mib", "command",
           "container", "frameworks")


def rows(snapshot: NodeSnapshot) -> list[dict[str, object]]:
    """The table's rows as dicts keyed by ``COLUMNS`` (None where unknown), GPU then PID order."""
    owner = instance_of(instances_of(snapshot))
    out: list[dict[str, object]] = []
    for p in sorted(snapshot.gpu_processes, key=lambda p: (p.gpu_index, p.pid)):
        role = roles.classify(p.host)
        host = p.host
        facts = process_facts(snapshot.telemetry, p)
        out.append({
            "gpu": slice_label(p.gpu_index, p.mig_slice),  # "0:1" on a MIG slice
            "pid": p.pid,
            "user": host.user if host else None,
            "engine": role.engine,
            "role": role.kind,
            "label": role.label or None,
            "instance": inst.key if (inst := owner.get((p.gpu_index, p.pid))) else None,
            "used_mib": p.used_mib,
            "cpu_pct": round(host.cpu_pct, 1) if host and host.cpu_pct is not None else None,
            "rss_mib": host.rss_mib if host else None,
            "command": host.title if host else None,
            "container": facts.container.label if facts.container is not None else None,
            "frameworks": " ".join(facts.loaded.frameworks) or None if facts.loaded is not None else None,
        })
    return out


def to_csv(snapshot: NodeSnapshot) -> str:
    """CSV text with a header line; quoting follows the csv module (commands may hold commas)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(snapshot):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()
