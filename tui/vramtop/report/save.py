"""The live view's ``r``: the report of the snapshot on screen, written to a file named after the
node and the time. One line back for the status bar, whatever happens."""

from __future__ import annotations

import time
from pathlib import Path

from vramtop.report.build import build_report
from vramtop.snapshot import NodeSnapshot


def save_report(snapshot: NodeSnapshot, candidates: list, directory: str | Path = ".", lang: str = "en",
                label: str | None = None) -> str:
    """Write the report of ``snapshot`` as ``vramtop-report-<host>-<time>.md``; returns one line
    for the status bar (the path written, or why not). Never raises: a key press must not crash
    the app."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(snapshot.timestamp))
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in snapshot.hostname) or "node"
    path = Path(directory) / f"vramtop-report-{host}-{stamp}.md"
    try:
        path.write_text(build_report(snapshot, candidates, lang, label).to_markdown(), encoding="utf-8")
    except OSError as exc:
        return f"could not write the report to {path}: {exc.strerror or exc}"
    count = len(candidates)
    judged = f" with {count} candidate{'s' if count != 1 else ''}" if count else ""
    return f"report{judged} written to {path}"
