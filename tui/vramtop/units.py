"""Sizes and spans written one way wherever vramtop writes them (screen, JSON summaries, report).

NVML and nvidia-smi count in MiB, so MiB is the unit of every snapshot; the fit engine counts
bytes, as vLLM does. GiB is only ever a way of writing either for people.
"""

from __future__ import annotations

MIB = 1024**2  # bytes in a MiB
GIB = 1024**3  # bytes in a GiB
MIB_PER_GIB = 1024


def gib(mib: float, digits: int = 1, unit: bool = True) -> str:
    """"20.2 GiB" from MiB; ``unit=False`` gives "20.2" for a "used/total GiB" pair."""
    text = f"{mib / MIB_PER_GIB:,.{digits}f}"
    return f"{text} GiB" if unit else text


def gib_of_bytes(nbytes: float, digits: int = 2) -> str:
    """"18.37 GiB" from bytes: the fit engine's budgets, to the hundredth vLLM logs them in."""
    return f"{nbytes / GIB:,.{digits}f} GiB"


def memory_sign(used: int, reserved: int, free: int, total: int) -> str:
    """"=" where a GPU's MiB figures add up to its total, "≈" where they do not: in bytes they
    always do, but nvidia-smi (and so vramtop) rounds each figure up to the MiB, so on a real GPU
    they can add up to a MiB or two over the total."""
    return "=" if used + reserved + free == total else "≈"


def memory_sum(used: int, reserved: int, free: int, total: int) -> str:
    """"used 3,830 + reserved 616 + free 139,326 ≈ 143,771 MiB" (``memory_sign``)."""
    sign = memory_sign(used, reserved, free, total)
    return f"used {used:,} + reserved {reserved:,} + free {free:,} {sign} {total:,} MiB"


def duration(seconds: float) -> str:
    """"45 s", "15 min", "3 h", "38 d": a span or a wait in the unit a person would say it."""
    for unit, size, above in (("d", 86_400, 2 * 86_400), ("h", 3_600, 3 * 3_600), ("min", 60, 90)):
        if seconds >= above:
            return f"{seconds / size:,.0f} {unit}"
    return f"{max(0.0, seconds):.0f} s"
