"""The state word of a GPU (critical / low / ok / lost / unknown) from its free memory.

The word and symbol always travel together so that no view relies on colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.snapshot import GpuInfo

CRITICAL = "critical"
LOW = "low"
OK = "ok"
LOST = "lost"
UNKNOWN = "unknown"  # present, but no memory figures (e.g. a Ray reporter that sent none)

SYMBOLS = {CRITICAL: "✖", LOW: "▲", OK: "●", LOST: "?", UNKNOWN: "?"}


@dataclass(frozen=True)
class Thresholds:
    """Critical below ``critical_free_mib`` free; low below ``low_free_pct`` % of total free."""

    critical_free_mib: int = 1024
    low_free_pct: float = 10.0


def gpu_state(gpu: GpuInfo, thresholds: Thresholds = Thresholds()) -> str:
    if gpu.lost:
        return LOST
    if gpu.total_mib <= 0:
        return UNKNOWN
    if gpu.free_mib < thresholds.critical_free_mib:
        return CRITICAL
    if gpu.total_mib and gpu.free_mib < gpu.total_mib * thresholds.low_free_pct / 100:
        return LOW
    return OK
