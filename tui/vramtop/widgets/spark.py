"""Sparklines as text, one cell per bucket of samples, so they sit inside a line of text (a GPU
bar, the detail line) and read under NO_COLOR.

Buckets are counted from the first sample ever taken, not from the newest, so a cell keeps its
height while its bucket fills and the line does not shimmer from one tick to the next.
"""

from __future__ import annotations

from functools import partial
from operator import is_not
from typing import Sequence

from vramtop.telemetry.model import ServingHistory

BARS = "▁▂▃▄▅▆▇█"


def spark(values: Sequence[float | None], cells: int, top: float | None = None,
          per_cell: int = 1, first: int = 0) -> str:
    """The last ``cells`` buckets of ``values`` (``per_cell`` samples each, the highest shown;
    ``first`` numbers the first value) scaled to ``top`` (default: the highest value); a bucket
    with no value is a blank. Fewer than two known values draw nothing: one sample is no trend,
    and scaled to itself it would be a full bar."""
    known = filter(_known, values)
    if cells <= 0 or next(known, None) is None or next(known, None) is None:
        return " " * max(cells, 0)
    per_cell = max(1, per_cell)
    last = (first + len(values) - 1) // per_cell
    peaks = []
    for key in range(last - cells + 1, last + 1):  # slices and C-level max: cheap on every tick
        lo, hi = max(0, key * per_cell - first), max(0, (key + 1) * per_cell - first)
        peaks.append(max(filter(_known, values[lo:hi]), default=None))
    return peaks_line(peaks, top)


def peaks_line(peaks: Sequence[float | None], top: float | None = None) -> str:
    """A cell for each bucket's peak, scaled to ``top`` (default: the highest peak); None a blank."""
    top = max(filter(_known, peaks), default=0.0) if top is None else top
    return "".join(" " if v is None else BARS[round(_share(v, top) * (len(BARS) - 1))] for v in peaks)


_known = partial(is_not, None)


def _share(value: float, top: float) -> float:
    return min(1.0, max(0.0, value / top)) if top > 0 else 0.0


def serving_sparks(history: ServingHistory, cells: int = 10) -> str:
    """An engine's throughput, KV cache use (scaled to full) and queue over all the scrapes kept
    (the peak of each stretch), for the detail line; empty until there are two scrapes to draw."""
    series = (("tok/s", history.generation_tokens_per_s, None), ("KV", history.kv_cache_usage, 1.0),
              ("waiting", history.requests_waiting, None))
    return " · ".join(f"{label} {spark(values, min(cells, len(values)), top, per_cell=-(-len(values) // cells))}"
                      for label, values, top in series if len(values) >= 2)
