"""How long Python's garbage collector stops the process, per generation, for ``/metrics``.

A collection holds the GIL from start to end: every request, socket and worker of the process
waits for it. The youngest generations take microseconds; a full (generation 2) collection walks
every object the process holds, so on a server with 10,000 open sockets it can stop everything
for a noticeable fraction of a second: the first thing to rule in or out when deliveries stall.

The collector's callbacks are process-wide, so the figures are kept once per process and every
app's registry reports the same ones. The callback takes no lock: one that a thread already held
when the collection began in it would never be released (prometheus_client's instruments lock),
and collections never overlap, so plain counters are safe.
"""

from __future__ import annotations

import gc
import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_NAME = "jobchat_gc_pause_seconds"
_HELP = "Time the garbage collector stopped the process, by generation collected."


class _Pauses:
    def __init__(self) -> None:
        self.started = 0.0
        # Per generation: a count per bucket (the last one is +Inf), and the sum.
        self.counts = [[0] * (len(BUCKETS) + 1) for _ in range(3)]
        self.sums = [0.0, 0.0, 0.0]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        seconds = time.perf_counter() - self.started
        generation = info["generation"]
        # The first bucket whose bound is at least the pause; past the last, +Inf's.
        self.counts[generation][bisect_left(BUCKETS, seconds)] += 1
        self.sums[generation] += seconds


_PAUSES = _Pauses()


def install() -> None:
    """Start timing collections in this process (once, however many apps ask)."""
    if _PAUSES not in gc.callbacks:
        gc.callbacks.append(_PAUSES)


class GcPauseCollector(Collector):
    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(_NAME, _HELP)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(_NAME, _HELP, labels=["generation"])
        for generation in range(3):
            counts = list(_PAUSES.counts[generation])
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound == math.inf else repr(bound), running))
            family.add_metric([str(generation)], buckets, _PAUSES.sums[generation])
        yield family
