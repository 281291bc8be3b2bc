"""Reports: the node's VRAM, its serving instances and what they cost, Ray Serve's autoscaling
against what the cluster holds, and candidate models' verdicts, as Markdown or JSON.

Public API::

    from vramtop.report import build_report, parse_candidate, SEED_CANDIDATES
    report = build_report(snapshot, [(text, parse_candidate(text)) for text in texts], lang="es")
    report.to_markdown(); report.to_dict()
"""

from vramtop.report.build import Finding, Report, Section, build_report
from vramtop.report.candidates import SEED_CANDIDATES, CandidateError, parse_candidate

__all__ = ["Finding", "Report", "Section", "build_report", "parse_candidate", "CandidateError", "SEED_CANDIDATES"]
