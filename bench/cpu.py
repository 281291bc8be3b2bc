"""CPU time of one call, shared by the benchmarks: process time, so what else the machine runs is
not counted as ours. Each warms the call up once (imports, caches, connections) before measuring."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def mean_ms(fn: Callable[[], object], n: int) -> float:
    """Mean CPU milliseconds of ``fn`` over ``n`` calls (for calls too short to time one by one)."""
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) * 1000 / n


def median_ms(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(median, fastest) CPU milliseconds of ``fn`` over ``n`` calls; the fastest shows the cost
    without the noise of other work on the machine."""
    fn()
    times = []
    for _ in range(n):
        t0 = time.process_time_ns()
        fn()
        times.append((time.process_time_ns() - t0) / 1e6)
    return statistics.median(times), min(times)
