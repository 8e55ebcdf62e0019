"""The replay's own section of the HTML report: the recorded heap beside goheap's.

Built from a :class:`~goheap.trace.Trace` and the :class:`~goheap.trace.ReplayResult` of
its replay. The axis is the recorded run's clock when the trace has one (execution
traces), else the events replayed (allocfreetrace logs). The recorded curve is the bytes
allocated and not yet freed at each event, computed from the events themselves; an
execution trace adds the runtime's own HeapAlloc metric. goheap's curve is its HeapAlloc
and NextGC sampled between chunks of the replay (about :data:`~goheap.trace.replay.SAMPLES`
samples, whatever the length of the trace).
"""

from __future__ import annotations

import numpy as np

from goheap.report import plots
from goheap.trace.replay import ReplayResult
from goheap.trace.tracefile import KIND_ALLOC, KIND_FREE, KIND_GC, Trace

__all__ = ["replay_figure"]

_POINTS = 2000  # of the recorded curve


def replay_figure(trace: Trace, result: ReplayResult):
    """The figure, and a caption for it."""
    n = len(trace)
    sign = np.zeros(n, np.int64)
    sign[trace.kind == KIND_ALLOC] = 1
    sign[trace.kind == KIND_FREE] = -1
    live = np.cumsum(sign * trace.size.astype(np.int64))
    if n and live.min() < 0:  # frees of objects allocated before the trace began
        live -= live.min()
    pick = np.unique(np.linspace(0, max(n - 1, 0), min(n, _POINTS)).astype(np.int64)) if n else np.zeros(0, np.int64)
    events = result.series[:, 0]
    at = np.clip(events - 1, 0, max(n - 1, 0))
    gc_rows = np.flatnonzero(trace.kind == KIND_GC)
    goheap_gc_events = np.array([g.event for g in result.goheap_gcs if g.event >= 0], np.int64)
    metric_x: np.ndarray | None
    metric: np.ndarray | None
    if trace.has_clock:
        x = trace.time_ns
        x_label, x_scale = "time in the recorded run (ms)", 1e6
        metric_x = trace.heap_series["time_ns"].astype(np.float64)
        metric = trace.heap_series["bytes"].astype(np.float64)
    else:
        x = np.arange(n, dtype=np.int64)
        x_label, x_scale = "events replayed", 1.0
        metric_x = metric = None
    fig = plots.plot_recorded_vs_replayed(
        recorded_x=x[pick].astype(np.float64),
        recorded_live=live[pick].astype(np.float64),
        goheap_x=x[at].astype(np.float64) if n else np.zeros(0),
        goheap_heap=result.series[:, 1].astype(np.float64),
        goheap_next_gc=result.series[:, 2].astype(np.float64),
        metric_x=metric_x,
        metric=metric,
        recorded_gcs=x[gc_rows].astype(np.float64) if n else None,
        goheap_gcs=x[goheap_gc_events].astype(np.float64) if n else None,
        x_label=x_label,
        x_scale=x_scale,
    )
    caption = (
        f"The recorded run collected {result.trace_num_gc} times, goheap {result.num_gc} times (GOGC "
        f"{'off' if result.gogc < 0 else result.gogc}, from {result.gogc_source}). The grey curve is what the "
        "recording says is live: allocated and not yet freed, where a free is reported when the recorded run's "
        "sweeper frees the block, up to a cycle after the object died. goheap's HeapAlloc is sampled "
        f"{len(result.series)} times during the replay."
    )
    return fig, caption
