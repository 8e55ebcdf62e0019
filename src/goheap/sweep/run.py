"""One run of a sweep, and the figures kept from it.

:func:`run_one` is the single function every run of a sweep goes through, serially or on a
Dask worker: a source (a workload, or a trace replayed) on a fresh heap, with one keyword
per grid axis. It returns a :class:`RunRecord`: the row of the results table
(:data:`FIGURES`, and the final MemStats under Go's names) and the details kept in the
run's own JSON file (heap over time, per-class occupancy at the peak, the whole MemStats).
:func:`execute` wraps it for the sweep: a run that raises is recorded as failed, with its
error, and the sweep goes on.

Every figure except those in :data:`MEASURED` is a function of the run's parameters alone,
the same serially and on any worker. With ``clock="real"`` the pauses are measured on
this machine's clock (goheap's own compiled collector, not a Go binary's); with
``clock="virtual"`` they take no time and every figure but the measured ones is
reproducible.

The compiled runtime is loaded once per process: a worker process runs many runs, and
:func:`warm_up` loads it before the first (the sweep's Dask workers call it at start).
"""

from __future__ import annotations

import io
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..inspect import History, arena_rss, class_occupancy, heap_rss
from ..policy import Policy
from .spec import RunParams, Source

__all__ = [
    "FIGURES",
    "MEASURED",
    "MEMSTATS_COLUMNS",
    "RunRecord",
    "execute",
    "run_one",
    "warm_up",
]

#: The figures of a run, as columns of the results table, with what each is.
FIGURES: dict[str, str] = {
    "num_gc": "collections (NumGC)",
    "pause_total_ns": "total stop-the-world pause, ns (0 on the virtual clock)",
    "pause_max_ns": "longest pause, ns",
    "peak_heap_alloc": "peak HeapAlloc: exact for a replay (followed at every allocation); for a workload the largest of the samples and of each collection's start (its trigger)",
    "peak_heap_inuse": "largest HeapInuse among the samples",
    "peak_heap_sys": "largest HeapSys among the samples",
    "peak_resident": "peak resident heap: arena and bitmap at their sampled peak, plus the metadata resident at the end",
    "final_resident": "resident heap at the end: arena, bitmap and metadata",
    "fragmentation": "share of HeapInuse not in objects (free slots, tail waste) at the sample of peak HeapInuse",
    "total_alloc": "bytes allocated (TotalAlloc)",
    "mallocs": "allocations (Mallocs)",
    "events": "trace events replayed (traces)",
    "recorded_num_gc": "collections of the recorded run (traces)",
    "recorded_peak_bytes": "peak live bytes of the recorded run (traces)",
    "cpu_s": "CPU seconds of the run (its process)",
    "wall_s": "wall seconds of the run",
    "worker": "host:pid of the process that ran it",
}
#: Columns that are measurements of this machine, not functions of the parameters.
MEASURED = ("cpu_s", "wall_s", "worker")
#: Columns that are measured on the real clock (reproducible on the virtual one).
CLOCK_MEASURED = ("pause_total_ns", "pause_max_ns", "memstats.PauseTotalNs", "memstats.LastGC")
#: The final MemStats in the table: Go's names, without the PauseNs ring and BySize.
MEMSTATS_COLUMNS = (
    "Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys", "HeapIdle",
    "HeapInuse", "HeapReleased", "HeapObjects", "StackInuse", "StackSys", "MSpanInuse", "MSpanSys",
    "MCacheInuse", "MCacheSys", "BuckHashSys", "NextGC", "LastGC", "PauseTotalNs", "NumGC",
)  # fmt: skip
#: Points kept of each run's heap-over-time curve (more are thinned, keeping each bucket's extremes).
CURVE_POINTS = 1200
#: Samples a replay aims at (it samples between chunks of events).
REPLAY_SAMPLES = 200
_OCCUPANCY_FIELDS = ("sizeclass", "size", "nspans", "objects", "bytes_in_use", "bytes_in_spans", "free_slots", "tail_waste")


@dataclass
class RunRecord:
    """What one run gave: its row of the table, and the details for its JSON file."""

    params: RunParams
    row: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.params.run_id

    @property
    def ok(self) -> bool:
        return self.row.get("status") == "ok"

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "label": self.params.label, "params": self.params.to_json(),
                "row": self.row, **self.details}  # fmt: skip


# ---------------------------------------------------------------- sampling a run


class _Recorder:
    """on_tick for a run: a History, the arena's resident size, the occupancy at peak HeapInuse."""

    def __init__(self) -> None:
        self.history = History(peak_page_map=False)
        self.position = 0  # trace events replayed so far
        self.events: list[int] = []
        self.resident: list[int] = []
        self.peak_inuse = -1
        self.released = 0
        self.peak_occupancy: np.ndarray | None = None

    def progress(self, position: int) -> None:
        self.position = position

    def __call__(self, heap) -> None:
        self.history(heap)
        self._measure(heap)

    def finish(self, heap) -> None:
        self.history.finish(heap)  # a last sample, and the final snapshot
        self._measure(heap)
        self.final_resident = heap_rss(heap)
        self.final_arena = arena_rss(heap)

    def _measure(self, heap) -> None:
        """What goes with the History's latest sample: the replay's position, the resident arena, the peak's occupancy.

        The arena's pages become resident as spans are first carved from them (HeapInuse
        reaching a new peak) and leave when the scavenger releases them (HeapReleased
        moving): the arena and bitmap are measured then, and the last measure carried
        over the samples between.
        """
        self.events.append(self.position)
        last = self.history.last_sample
        inuse, released = int(last["heap_inuse"]), int(last["heap_released"])
        if inuse > self.peak_inuse or released != self.released or not self.resident:
            self.resident.append(arena_rss(heap))
        else:
            self.resident.append(self.resident[-1])
        self.released = released
        if inuse > self.peak_inuse:
            self.peak_inuse = inuse
            self.peak_occupancy = class_occupancy(heap)


def _thin(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about n points of the curve (x ascending): each bucket of x keeps its lowest and highest y."""
    if len(x) <= n:
        return x, y
    buckets = np.minimum((np.arange(len(x)) * (n // 2)) // len(x), n // 2 - 1)
    keep = np.zeros(len(x), bool)
    starts = np.flatnonzero(np.r_[True, np.diff(buckets) > 0])
    for a, b in zip(starts, np.r_[starts[1:], len(x)]):
        seg = y[a:b]
        keep[a + int(seg.argmin())] = True
        keep[a + int(seg.argmax())] = True
    keep[0] = keep[-1] = True
    return x[keep], y[keep]


def _curve_times(rec: _Recorder, total_alloc: np.ndarray, trace) -> np.ndarray | None:
    """The recorded run's time (ns) at each point of the heap curve, when the trace has a clock.

    A sample's time is that of the last event replayed before it; a collection's point,
    placed between samples by the bytes allocated, is placed in time the same way.
    """
    if trace is None or not trace.has_clock or not len(trace):
        return None
    s = rec.history.samples
    events = np.asarray(rec.events, np.int64)
    times = np.where(events > 0, trace.time_ns[np.clip(events - 1, 0, len(trace) - 1)], 0).astype(np.float64)
    xs = s["total_alloc"].astype(np.float64)
    first = np.concatenate([[True], np.diff(xs) > 0])  # np.interp wants x increasing: the first of equal x
    return np.round(np.interp(total_alloc, xs[first], times[first])).astype(np.int64)


def _figures(rec: _Recorder, memstats, cpu_s: float, wall_s: float, trace=None) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..report.plots import heap_alloc_curve

    h = rec.history
    s = h.samples
    c = h.collections
    final = rec.final_resident
    x, y = heap_alloc_curve(h)
    x, y = _thin(x, y, CURVE_POINTS)
    if rec.peak_occupancy is not None:
        occ = rec.peak_occupancy
    else:
        assert h.final is not None  # the run's end was recorded (rec.finish)
        occ = h.final.occupancy
    in_spans = int(occ["bytes_in_spans"].sum())
    in_use = int(occ["bytes_in_use"].sum())
    row = {
        "num_gc": memstats.num_gc,
        "pause_total_ns": memstats.pause_total_ns,
        "pause_max_ns": int(c["pause_ns"].max()) if len(c) else 0,
        "peak_heap_alloc": int(max(y.max() if len(y) else 0, s["heap_alloc"].max())),
        "peak_heap_inuse": int(s["heap_inuse"].max()),
        "peak_heap_sys": int(s["heap_sys"].max()),
        "peak_resident": max(rec.resident) + final - rec.final_arena,  # the metadata only ever grows
        "final_resident": final,
        "fragmentation": (in_spans - in_use) / in_spans if in_spans else 0.0,
        "total_alloc": memstats.total_alloc,
        "mallocs": memstats.mallocs,
        "cpu_s": round(cpu_s, 6),
        "wall_s": round(wall_s, 6),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    used = occ[occ["nspans"] > 0]
    curve = {"total_alloc": x.astype(np.int64).tolist(), "heap_alloc": y.astype(np.int64).tolist()}
    times = _curve_times(rec, x, trace)
    if times is not None:
        curve["time_ns"] = times.tolist()
    details = {
        "curve": curve,
        "samples": {
            "total_alloc": s["total_alloc"].tolist(),
            "heap_alloc": s["heap_alloc"].tolist(),
            "heap_inuse": s["heap_inuse"].tolist(),
            "heap_sys": s["heap_sys"].tolist(),
            "next_gc": s["next_gc"].tolist(),
            "num_gc": s["num_gc"].tolist(),
            "resident": rec.resident,
            "event": rec.events,
        },
        "collections": {k: c[k].tolist() for k in ("num_gc", "total_alloc", "heap_before", "heap_after", "pause_ns")},
        "occupancy_at_peak": {k: used[k].tolist() for k in _OCCUPANCY_FIELDS},
        "resident_at_end": {"arena_and_bitmap": rec.final_arena, "metadata": final - rec.final_arena},
        "memstats": memstats.to_go(),
    }
    return row, details


# ---------------------------------------------------------------- the run function

_PLANS: dict[str, Any] = {}  # a worker's replay plans, by trace digest (a plan depends only on the trace)
_WARM = {"loaded": 0}


def warm_up() -> int:
    """Load the compiled runtime and the replay loop in this process (once); returns how often it was loaded."""
    if not _WARM["loaded"]:
        from ..trace.tracefile import KIND_ALLOC, KIND_FREE, Trace

        tiny = Trace.from_columns({
            "kind": np.array([KIND_ALLOC, KIND_FREE], np.uint8), "addr": np.full(2, 0xC000000000, np.uint64),
            "size": np.full(2, 16, np.uint64), "type_id": np.full(2, -1, np.int32), "func_id": np.full(2, -1, np.int32),
        })  # fmt: skip
        run_one(Source("trace", "warm-up"), trace=tiny, clock="virtual")
        _WARM["loaded"] += 1
    return _WARM["loaded"]


def run_one(
    source: Source,
    *,
    trace=None,
    clock: str = "real",
    gogc: int = 100,
    mode: str | None = "gc",
    policy: Policy | str = "seed",
    memory_limit: int | None = None,
    min_heap: int | None = None,
) -> RunRecord:
    """Run ``source`` on a fresh heap and keep its figures (see the module docstring).

    One keyword per grid axis (:data:`goheap.sweep.spec.AXES`): ``gogc`` (GC percent, -1
    for off), ``mode`` (traces: ``"gc"`` or ``"free"``, see :func:`goheap.trace.replay`),
    ``policy`` (a :class:`goheap.Policy`, a preset's name or a policy file),
    ``memory_limit`` (bytes, -1 for off) and ``min_heap`` (bytes), which replace the
    policy's own (None: the policy's; $GOMEMLIMIT is never read, so that a run is the same
    on every worker); ``clock`` is ``"real"`` or ``"virtual"``. ``trace`` is the
    :class:`~goheap.trace.Trace` of a trace source (loaded from ``source.path`` when not
    given). Raises what the run raises.
    """
    policy = Policy.from_name(policy)
    settings: dict[str, Any] = {"gogc": gogc}
    if source.kind == "trace":
        settings["mode"] = mode
    settings.update(policy=policy, memory_limit=memory_limit, min_heap=min_heap)
    params = RunParams(source, tuple(settings.items()), clock)
    ran = _heap_policy(policy, memory_limit, min_heap)
    rec = _Recorder()
    extra: dict[str, Any] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if source.kind == "workload":
        from ..workloads import run_workload

        result = run_workload(
            source.name, list(source.args), gcpercent=gogc, gctrace=0, trace_stream=io.StringIO(),
            virtual_clock=clock == "virtual", on_tick=rec, on_exit=rec.finish, **ran,
        )  # fmt: skip
        memstats = result.memstats
        extra["output"] = result.lines
    else:
        from ..trace.replay import check_mode

        mode = check_mode(mode)  # before the replay plan is built
        if trace is None:
            from ..trace.tracefile import Trace

            if source.path is None:
                raise ValueError(f"trace source {source.name!r} has no path, and no trace was given")
            trace = Trace.load(source.path)
        replayed = _replay(source, trace, gogc, mode, clock, rec, ran)
        memstats = replayed.memstats
        extra["row"] = {
            "events": replayed.events,
            "recorded_num_gc": replayed.trace_num_gc,
            "recorded_peak_bytes": replayed.trace_peak_bytes,
            "peak_heap_alloc": replayed.goheap_peak_heap_alloc,
        }
        extra["recorded"] = {"num_gc": replayed.trace_num_gc, "peak_objects": replayed.trace_peak_objects,
                             "peak_bytes": replayed.trace_peak_bytes, "source": replayed.source}  # fmt: skip
    cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    figures, details = _figures(rec, memstats, cpu_s, wall_s, trace)
    figures.update(extra.pop("row", {}))
    details.update(extra)
    details["policy"] = ran["policy"].to_dict()
    go = memstats.to_go()
    row = {"status": "ok", "error": None, **figures, **{f"memstats.{k}": go[k] for k in MEMSTATS_COLUMNS}}
    return RunRecord(params, row, details)


def _heap_policy(policy: Policy, memory_limit: int | None, min_heap: int | None) -> dict[str, Any]:
    """HeapConfig's policy fields for a run: the policy with the run's limits, resolved here
    without $GOMEMLIMIT, and the limit given explicitly so that the heap does not read it either."""
    resolved = policy.resolve(None if memory_limit is None else "off" if memory_limit < 0 else memory_limit, min_heap, environ={})
    limit = resolved.pacer.memory_limit
    return {"policy": resolved, "memory_limit": "off" if limit is None else limit}


def _replay(source: Source, trace, gogc: int, mode: str, clock: str, rec: _Recorder, policy: dict[str, Any]):
    """Replay the trace on a heap built here (so that the clock can be chosen), as goheap.trace.replay builds its own."""
    from ..heap import Heap, HeapConfig
    from .._runtime.mallocinit import Limits
    from ..trace.replay import REPLAY_FINALIZER_SLOTS, SPARE_SLOTS, ReplayPlan, replay

    config = HeapConfig(gcpercent=gogc, gctrace=0, virtual_clock=clock == "virtual", **policy)
    key = source.digest
    plan = _PLANS.get(key) if key else None
    if plan is None:
        plan = ReplayPlan.build(trace, max_size=config.arena_size)
        if key:
            _PLANS.clear()  # one trace at a time is what a sweep's worker needs
            _PLANS[key] = plan
    default = Limits()
    limits = Limits(**{**default.__dict__, "shadow_depth": max(default.shadow_depth, plan.nslots + SPARE_SLOTS),
                       "finalizers": REPLAY_FINALIZER_SLOTS})  # fmt: skip
    chunk = max(2048, -(-len(trace) // REPLAY_SAMPLES))
    with Heap(HeapConfig(**{**config.__dict__, "limits": limits})) as heap:
        return replay(plan, mode=mode, heap=heap, progress=rec.progress, chunk_events=chunk, on_tick=rec, on_exit=rec.finish)


def execute(params: RunParams, trace=None) -> RunRecord:
    """Run ``params`` (the task a sweep submits); a run that raises is a failed record, not an exception."""
    _announce(params.run_id)
    t0 = time.perf_counter()
    try:
        return run_one(params.source, trace=trace, clock=params.clock, **dict(params.settings))
    except Exception as exc:  # noqa: BLE001 - any failure of one run is recorded, the sweep goes on
        row = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "wall_s": round(time.perf_counter() - t0, 6),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        }
        return RunRecord(params, row, {"traceback": traceback.format_exc()})


#: The Dask event topic on which a worker says that a run started (for the progress display).
STARTED_TOPIC = "goheap-sweep-started"


def _announce(run_id: str) -> None:
    """Tell the sweep's client, through a Dask event, that this run started (on a Dask worker only)."""
    import sys

    if "distributed" not in sys.modules:
        return
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not in a worker
        return
    worker.log_event(STARTED_TOPIC, run_id)
