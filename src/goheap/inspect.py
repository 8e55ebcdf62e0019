"""Read-only views of a heap, for notebooks, tools and reports.

Nothing here changes the heap or the course of a run. In particular nothing here calls
``ReadMemStats``: that folds every cache's lagging statistics into MStats, which moves
the collector's trigger (heap_alloc lags in the seed, and the next collection starts when
the lagging value crosses next_gc). :func:`mem_stats` computes the same numbers on the
side instead, so a :class:`History` can sample a workload after every compiled chunk and
the run collects exactly as it would unobserved.

Views of the present state:

- :func:`spans`: every span (start address, npages, sizeclass, state, ref, elemsize, ...)
  as a numpy structured array; :func:`span_records` the same as a list of :class:`Span`;
- :func:`size_classes`: the heap's size-class table (the seed's: msize.c's 61 classes), as
  ``goheap sizeclasses`` prints it;
- :func:`class_occupancy`: per size class, objects and bytes in use, bytes in spans, tail
  waste and free slots (row 0: large objects);
- :func:`page_map`: one :class:`PageState` per arena page in use;
- :func:`mem_stats`: MemStats as ReadMemStats would return them now;
- :func:`snapshot`: all of these at once, as a :class:`HeapSnapshot` that outlives the heap.

Over time: :class:`History` records MemStats samples (``run_workload(on_tick=history)``),
one point per collection rebuilt from the heap's gctrace rows, and the page map at the
peak of heap_inuse.

Terms are the runtime's (see the glossary in :mod:`goheap._runtime.malloc`): a *page* is
a runtime page (4 KB in the seed; the policy's page size), a *slot* is the room for one
object in a span of a size class.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, cast

import numpy as np

from ._runtime import layout as L
from ._runtime.constants import MSPAN_FREE, MSPAN_IN_USE, PAGE_SIZE
from ._runtime.stats import MemStats
from .policy import Policy

if TYPE_CHECKING:
    from .heap import Heap

__all__ = [
    "CLASS_OCCUPANCY_DTYPE",
    "COLLECTION_DTYPE",
    "SAMPLE_DTYPE",
    "SIZE_CLASS_DTYPE",
    "SPAN_DTYPE",
    "HeapSnapshot",
    "History",
    "PageMapSnapshot",
    "PageState",
    "Span",
    "SpanState",
    "class_occupancy",
    "mem_stats",
    "page_map",
    "arena_rss",
    "heap_rss",
    "process_rss",
    "resident_bytes",
    "size_classes",
    "snapshot",
    "span_records",
    "spans",
]


class SpanState(enum.IntEnum):
    """MSpan.state (malloc.h): a span holds objects, or is a run of free pages in the page heap."""

    IN_USE = MSPAN_IN_USE
    FREE = MSPAN_FREE


class PageState(enum.IntEnum):
    """What one runtime page of the arena is used for (the values of :func:`page_map`)."""

    UNUSED = 0  # in the arena's mapped part but in no span (the seed leaves none such)
    IN_USE = 1  # in an in-use span: objects, free slots or tail waste
    FREE = 2  # in a free span, still backed by memory
    RELEASED = 3  # in a free span, given back to the OS by the scavenger (madvise)


# ================================================================ spans

SPAN_DTYPE = np.dtype(
    [
        ("start", np.uint64),  # address of the first byte
        ("npages", np.int64),
        ("sizeclass", np.int32),  # 0: one large object (or a free span)
        ("state", np.int8),  # SpanState
        ("ref", np.int64),  # objects handed out of the span (to caches or to the program)
        ("elemsize", np.int64),  # bytes per object (the whole span for a large one)
        ("nslots", np.int64),  # objects the span holds (1 for a large object)
        ("npreleased", np.int64),  # pages given back to the OS (free spans)
    ]
)


class Span(NamedTuple):
    """One span, as a record (see :data:`SPAN_DTYPE` for the fields)."""

    start: int
    npages: int
    sizeclass: int
    state: SpanState
    ref: int
    elemsize: int
    nslots: int
    npreleased: int
    page_size: int = PAGE_SIZE

    @property
    def nbytes(self) -> int:
        return self.npages * self.page_size

    @property
    def end(self) -> int:
        return self.start + self.nbytes


def _span_rows(heap: Heap) -> np.ndarray:
    """The span table rows that are spans now (in use or free), in address order."""
    heap._check_open()
    a = heap._arrays
    rows = a.spans[L.FIRST_SPAN : L.FIRST_SPAN + int(a.h[L.H_NSPAN])]
    state = rows[:, L.SP_STATE]
    rows = rows[(state == MSPAN_IN_USE) | (state == MSPAN_FREE)]
    return rows[np.argsort(rows[:, L.SP_START], kind="stable")]


def spans(heap: Heap, *, free: bool = True) -> np.ndarray:
    """Every span of the heap in address order, as a structured array of :data:`SPAN_DTYPE`.

    free: include the free spans of the page heap (otherwise only spans in use).
    """
    rows = _span_rows(heap)
    if not free:
        rows = rows[rows[:, L.SP_STATE] == MSPAN_IN_USE]
    shift = _page_shift(heap)
    out = np.zeros(len(rows), SPAN_DTYPE)
    out["start"] = rows[:, L.SP_START].astype(np.uint64) << np.uint64(shift)
    out["npages"] = rows[:, L.SP_NPAGES]
    out["state"] = rows[:, L.SP_STATE]
    inuse = rows[:, L.SP_STATE] == MSPAN_IN_USE
    out["sizeclass"] = np.where(inuse, rows[:, L.SP_SIZECLASS], 0)
    out["ref"] = np.where(inuse, rows[:, L.SP_REF], 0)
    out["elemsize"] = np.where(inuse, rows[:, L.SP_ELEMSIZE], 0)
    elemsize = np.maximum(out["elemsize"], 1)
    out["nslots"] = np.where(inuse, (rows[:, L.SP_NPAGES] << shift) // elemsize, 0)
    out["npreleased"] = np.where(inuse, 0, rows[:, L.SP_NPRELEASED])
    return out


def span_records(heap: Heap, *, free: bool = True) -> list[Span]:
    """:func:`spans` as a list of :class:`Span` records."""
    page_size = 1 << _page_shift(heap)
    return [
        Span(int(r["start"]), int(r["npages"]), int(r["sizeclass"]), SpanState(int(r["state"])),
             int(r["ref"]), int(r["elemsize"]), int(r["nslots"]), int(r["npreleased"]), page_size)
        for r in spans(heap, free=free)
    ]


def _page_shift(heap: Heap) -> int:
    return int(heap._arrays.h[L.H_PAGE_SHIFT])


# ================================================================ size classes

SIZE_CLASS_DTYPE = np.dtype(
    [
        ("sizeclass", np.int32),
        ("size", np.int64),  # bytes per object
        ("npages", np.int64),  # pages per span
        ("span_bytes", np.int64),
        ("objects", np.int64),  # objects per span
        ("tail_waste", np.int64),  # bytes per span after the last object
        ("transfer", np.int64),  # objects moved between a cache and the central list at once
    ]
)


def size_classes(of: Heap | Policy | str | None = None) -> np.ndarray:
    """A size-class table (classes 1..N) as a structured array of :data:`SIZE_CLASS_DTYPE`.

    of: a heap (its policy's table), a policy or a preset's name; None: the seed's.
    """
    # a heap stands for its policy, found by attribute: importing Heap here would load the runtime
    chosen = getattr(of, "policy", of) if of is not None else "seed"
    policy = Policy.from_name(cast("str | os.PathLike[str] | Policy", chosen))
    return np.array(policy.size_classes.build().rows(), SIZE_CLASS_DTYPE)


# ================================================================ occupancy per size class

CLASS_OCCUPANCY_DTYPE = np.dtype(
    [
        ("sizeclass", np.int32),  # 0: large objects
        ("size", np.int64),  # bytes per object (0 for row 0)
        ("nspans", np.int64),  # spans in use
        ("objects", np.int64),  # objects in use by the program (and the runtime)
        ("bytes_in_use", np.int64),  # objects * size: what HeapAlloc counts
        ("bytes_in_spans", np.int64),  # pages of the class's spans: what HeapInuse counts
        ("tail_waste", np.int64),  # bytes after the last slot of each span
        ("free_slots", np.int64),  # slots not in use: on span free lists or in caches
        ("cached_slots", np.int64),  # of which in the threads' caches
    ]
)


def class_occupancy(heap: Heap) -> np.ndarray:
    """Per size class (row i is class i, row 0 large objects): :data:`CLASS_OCCUPANCY_DTYPE`.

    Per class, ``bytes_in_spans = bytes_in_use + free_slots * size + tail_waste``. Objects
    in use are the slots handed out of the spans (their ``ref``) less those sitting free
    in a cache: the same count as BySize's Mallocs - Frees. Read from the spans and the
    caches directly, so it is exact at any moment, without folding any statistics.
    """
    a = heap._arrays
    rows = _span_rows(heap)
    rows = rows[rows[:, L.SP_STATE] == MSPAN_IN_USE]
    cls = rows[:, L.SP_SIZECLASS]
    nbytes = rows[:, L.SP_NPAGES] << _page_shift(heap)
    elemsize = rows[:, L.SP_ELEMSIZE]
    nslots = nbytes // np.maximum(elemsize, 1)
    n = len(a.class_to_size)

    def per_class(weights) -> np.ndarray:
        return np.bincount(cls, weights=weights, minlength=n).astype(np.int64)

    out = np.zeros(n, CLASS_OCCUPANCY_DTYPE)
    out["sizeclass"] = np.arange(n)
    out["size"] = a.class_to_size
    out["size"][0] = 0
    out["nspans"] = np.bincount(cls, minlength=n)
    out["bytes_in_spans"] = per_class(nbytes)
    out["tail_waste"] = per_class(np.where(cls > 0, nbytes - nslots * elemsize, 0))
    handed_out = per_class(np.where(cls > 0, rows[:, L.SP_REF], 0))
    inuse_caches = a.cache_local[:, L.LC_INUSE] != 0
    cached = a.cache_list[inuse_caches, :, L.L_NLIST].sum(axis=0).astype(np.int64)
    cached[0] = 0
    out["cached_slots"] = cached
    out["objects"] = handed_out - cached
    out["free_slots"] = per_class(np.where(cls > 0, nslots, 0)) - out["objects"]
    out["bytes_in_use"] = out["objects"] * out["size"]
    # large objects: one per span, the whole span in use
    out["objects"][0] = out["nspans"][0]
    out["bytes_in_use"][0] = out["bytes_in_spans"][0]
    return out


# ================================================================ the page map


def page_map(heap: Heap) -> np.ndarray:
    """One :class:`PageState` (uint8) per runtime page from arena_start to arena_used.

    Page i is at address ``heap.arena_start + i * page size`` (4096 in the seed). The seed does not record which
    pages of a partly released free span were released (coalescing adds up the counts,
    ``npreleased``), so such a span shows its released pages at its end: the counts are
    exact (``HeapReleased`` is the number of RELEASED pages times the page size), their place
    within the span is nominal.
    """
    a = heap._arrays
    rows = _span_rows(heap)
    shift = _page_shift(heap)
    first_page = int(a.h[L.H_ARENA_START]) >> shift
    npages = (int(a.h[L.H_ARENA_USED]) - int(a.h[L.H_ARENA_START])) >> shift
    start = rows[:, L.SP_START] - first_page
    end = start + rows[:, L.SP_NPAGES]
    inuse = rows[:, L.SP_STATE] == MSPAN_IN_USE
    released = np.where(inuse, 0, rows[:, L.SP_NPRELEASED])
    split = end - released
    # Paint by differences: each run adds its state at its first page and takes it back
    # after its last; spans never overlap, so the running sum is the state of each page.
    delta = np.zeros(npages + 1, np.int64)
    code = np.where(inuse, PageState.IN_USE, PageState.FREE)
    np.add.at(delta, np.clip(start, 0, npages), code)
    np.add.at(delta, np.clip(split, 0, npages), -code)
    np.add.at(delta, np.clip(split, 0, npages), np.where(released > 0, PageState.RELEASED, 0))
    np.add.at(delta, np.clip(end, 0, npages), -np.where(released > 0, PageState.RELEASED, 0))
    return np.cumsum(delta[:npages]).astype(np.uint8)


@dataclass(frozen=True)
class PageMapSnapshot:
    """The page map at one moment, with what it shows."""

    pages: np.ndarray = field(repr=False)  # uint8 PageState per page, from arena_start
    arena_start: int
    heap_inuse: int
    heap_idle: int
    heap_released: int
    total_alloc: int
    num_gc: int
    time_s: float  # seconds since the history started
    page_size: int = PAGE_SIZE  # bytes of one page of ``pages``

    def counts(self) -> dict[PageState, int]:
        """Pages in each state."""
        n = np.bincount(self.pages, minlength=len(PageState))
        return {s: int(n[s]) for s in PageState}


def _page_map_snapshot(heap: Heap, ms: MemStats, time_s: float) -> PageMapSnapshot:
    return PageMapSnapshot(
        page_map(heap), heap.arena_start, ms.heap_inuse, ms.heap_idle, ms.heap_released,
        ms.total_alloc, ms.num_gc, time_s, 1 << _page_shift(heap),
    )


# ================================================================ MemStats, unperturbed


def mem_stats(heap: Heap) -> MemStats:
    """The MemStats ReadMemStats would return now, computed without touching the heap.

    ReadMemStats folds each cache's pending deltas into MStats (cachestats); this adds
    them up on copies, so the lagging heap_alloc the collector paces itself by stays as it
    was (observing a run does not change when it collects).
    """
    heap._check_open()
    a = heap._arrays
    st = a.mstats.copy()
    by_size = a.by_size.copy()
    inuse = a.cache_local[:, L.LC_INUSE] != 0
    lc = a.cache_local[inuse].sum(axis=0)
    for st_slot, lc_slot in (
        (L.ST_HEAP_ALLOC, L.LC_LOCAL_CACHEALLOC),
        (L.ST_HEAP_OBJECTS, L.LC_LOCAL_OBJECTS),
        (L.ST_NMALLOC, L.LC_LOCAL_NMALLOC),
        (L.ST_NFREE, L.LC_LOCAL_NFREE),
        (L.ST_NLOOKUP, L.LC_LOCAL_NLOOKUP),
        (L.ST_ALLOC, L.LC_LOCAL_ALLOC),
        (L.ST_TOTAL_ALLOC, L.LC_LOCAL_TOTAL_ALLOC),
    ):
        st[st_slot] += lc[lc_slot]
    cbs = a.cache_by_size[inuse].sum(axis=0)
    by_size[:, L.BY_SIZE_NMALLOC] += cbs[:, 0]
    by_size[:, L.BY_SIZE_NFREE] += cbs[:, 1]
    return MemStats.from_arrays(st, a.pause_ns, by_size)


def process_rss() -> int:
    """Resident set size of this process in bytes (/proc/self/statm), 0 where there is none."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _OS_PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


_OS_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _mincore():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.mincore.restype = ctypes.c_int
    return libc.mincore


def resident_bytes(addr: int, nbytes: int) -> int:
    """Bytes of the mapping [addr, addr+nbytes) resident in RAM now (mincore(2)), 0 where unknown."""
    lo = addr - addr % _OS_PAGE_SIZE
    npages = -(-(addr + nbytes - lo) // _OS_PAGE_SIZE)
    if npages <= 0:
        return 0
    vec = np.zeros(npages, np.uint8)
    if _MINCORE[0] is None:
        _MINCORE[0] = _mincore()
    if _MINCORE[0](lo, npages * _OS_PAGE_SIZE, vec.ctypes.data) != 0:
        return 0
    return int(np.count_nonzero(vec & 1)) * _OS_PAGE_SIZE


_MINCORE: list = [None]


def _mappings() -> list[tuple[int, int, int]]:
    """(start, end, resident bytes) of each of this process's mappings (/proc/self/smaps)."""
    try:
        with open("/proc/self/smaps", "rb") as f:
            text = f.read()
    except OSError:
        return []
    out = []
    start = end = -1
    for line in text.split(b"\n"):
        if line[:1] in b"0123456789abcdef" and b"-" in line[:33] and not line.startswith(b"Rss:"):
            lo, _, rest = line.partition(b"-")
            try:
                start, end = int(lo, 16), int(rest.split(b" ", 1)[0], 16)
            except ValueError:
                start = end = -1
        elif line.startswith(b"Rss:") and start >= 0:
            out.append((start, end, int(line.split()[1]) * 1024))
    return out


def _arena_and_bitmap(heap: Heap) -> tuple[int, int]:
    """[start, end) of the mapped bitmap and arena: the bitmap grows down from arena_start, the arena up."""
    h = heap._arrays.h
    return int(h[L.H_ARENA_START]) - int(h[L.H_BITMAP_MAPPED]), int(h[L.H_ARENA_USED])


def arena_rss(heap: Heap) -> int:
    """The part of :func:`heap_rss` in the arena and its bitmap: what grows as spans are first
    used and shrinks as the scavenger releases them (the metadata only ever grows). One
    mincore(2) over the mapped range: cheap enough to take at every sample."""
    heap._check_open()
    lo, hi = _arena_and_bitmap(heap)
    return resident_bytes(lo, hi - lo)


def heap_rss(heap: Heap) -> int:
    """The heap's own resident memory: arena pages in use, bitmap and metadata, as the OS counts them.

    Unlike the process RSS (Python, numba, the compiled code...), this is the memory the
    2013 runtime's heap itself occupies: the arena up to arena_used, the bitmap mapped
    below it, and every metadata array (span table, page map, profile buckets...), counted
    only where the OS has actually paged them in. The arena and bitmap are measured with
    mincore(2) (:func:`arena_rss`: the part that can shrink); the metadata with the
    kernel's count per mapping (/proc/self/smaps) where a mapping is wholly the heap's,
    mincore for the part of a mapping the heap shares with another (the metadata arrays
    reserve hundreds of GB of address space, which mincore alone would walk page by page).
    A few ms: sample it sparingly.
    """
    heap._check_open()
    arena_start = int(heap._arrays.h[L.H_ARENA_START])
    ranges = []
    for addr, nbytes in heap._sysmem._owned:
        if not addr <= arena_start < addr + nbytes:  # the reservation: arena_rss measures its mapped part
            ranges.append((addr, addr + nbytes))
    merged: list[tuple[int, int]] = []  # adjacent arrays may share one kernel mapping
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    total = arena_rss(heap)
    for start, end, rss in _mappings():
        for lo, hi in merged:
            if lo <= start and end <= hi:
                total += rss
            elif start < hi and lo < end:
                total += resident_bytes(max(lo, start), min(hi, end) - max(lo, start))
    return total


# ================================================================ a snapshot of everything


@dataclass(frozen=True)
class HeapSnapshot:
    """Every view of one heap at one moment; plain data, valid after the heap is closed."""

    mem_stats: MemStats
    spans: np.ndarray = field(repr=False)  # SPAN_DTYPE
    occupancy: np.ndarray = field(repr=False)  # CLASS_OCCUPANCY_DTYPE
    page_map: PageMapSnapshot
    gctrace: np.ndarray = field(repr=False)  # one row per collection (layout.TR_*)
    arena_start: int
    arena_used: int
    arena_size: int
    gcpercent: int
    mem_profile_rate: int
    virtual_clock: bool
    policy: Policy = field(default_factory=Policy)  # the policy the heap ran


def snapshot(heap: Heap, *, time_s: float = 0.0) -> HeapSnapshot:
    """All the views of ``heap`` now (see :class:`HeapSnapshot`)."""
    ms = mem_stats(heap)
    a = heap._arrays
    return HeapSnapshot(
        mem_stats=ms,
        spans=spans(heap),
        occupancy=class_occupancy(heap),
        page_map=_page_map_snapshot(heap, ms, time_s),
        gctrace=heap.gctrace_rows(),
        arena_start=heap.arena_start,
        arena_used=heap.arena_used,
        arena_size=heap.config.arena_size,
        gcpercent=int(a.h[L.H_GCPERCENT]),
        mem_profile_rate=int(a.h[L.H_MEMPROFILE_RATE]),
        virtual_clock=bool(a.h[L.H_CLOCK_VIRTUAL]),
        policy=heap.policy,
    )


# ================================================================ history

SAMPLE_DTYPE = np.dtype(
    [
        ("time_s", np.float64),  # wall-clock seconds since the history started
        ("heap_alloc", np.int64),
        ("next_gc", np.int64),
        ("heap_sys", np.int64),
        ("heap_idle", np.int64),
        ("heap_inuse", np.int64),
        ("heap_released", np.int64),
        ("heap_objects", np.int64),
        ("total_alloc", np.int64),
        ("mallocs", np.int64),
        ("frees", np.int64),
        ("sys", np.int64),
        ("num_gc", np.int64),
        ("pause_total_ns", np.int64),
        ("rss", np.int64),  # process RSS in bytes
        ("heap_rss", np.int64),  # the heap's own resident bytes (heap_rss(): arena, bitmap, metadata)
    ]
)

COLLECTION_DTYPE = np.dtype(
    [
        ("num_gc", np.int64),
        ("time_s", np.float64),  # interpolated between samples
        ("total_alloc", np.int64),  # interpolated between samples (by mallocs)
        ("heap_before", np.int64),  # heap_alloc when it started (estimated unless ``measured``)
        ("heap_after", np.int64),  # and when it ended
        ("next_gc", np.int64),  # the trigger it set: heap_after * (1 + GOGC/100) in the seed, the pacer's goal
        ("measured", np.bool_),  # heap_before and objects_before measured by the runtime (gctrace on)
        ("objects_before", np.int64),  # -1 unless measured
        ("objects_after", np.int64),
        ("mallocs", np.int64),
        ("frees", np.int64),
        ("mark_ns", np.int64),
        ("sweep_ns", np.int64),
        ("other_ns", np.int64),
        ("pause_ns", np.int64),
        ("forced", np.bool_),
    ]
)


class History:
    """MemStats over a run: call it (or :meth:`sample`) with the heap, e.g. as ``on_tick``.

        history = History()
        run_workload("binarytrees", ["14"], on_tick=history, on_exit=history.finish)
        history.samples["heap_alloc"], history.collections["pause_ns"]

    Each sample is :data:`SAMPLE_DTYPE`: the MemStats a ReadMemStats would return (computed
    without perturbing the run, see :func:`mem_stats`), the process RSS, the heap's own
    resident memory (:func:`heap_rss`, measured every :attr:`HEAP_RSS_INTERVAL_S`) and the
    wall time. Each collection is one row of :attr:`collections` (:data:`COLLECTION_DTYPE`),
    rebuilt from the heap's gctrace rows; where it fell between two samples, its time and
    total_alloc are interpolated by the number of mallocs. With ``peak_page_map`` (the
    default) the page map is kept whenever heap_inuse reaches a new peak among the
    samples (:attr:`peak`); :meth:`finish` adds a last sample and a full
    :class:`HeapSnapshot` (:attr:`final`), so the heap may then be closed.
    """

    #: Seconds between two measurements of the heap's resident memory (the samples between repeat it).
    HEAP_RSS_INTERVAL_S = 0.25

    def __init__(self, *, peak_page_map: bool = True, clock=time.perf_counter):
        self._clock = clock
        self._t0 = clock()
        self._rows: list[tuple] = []
        self._trace: list[np.ndarray] = []
        self._ntrace = 0
        self.peak_page_map = peak_page_map
        self.peak: PageMapSnapshot | None = None
        self.final: HeapSnapshot | None = None
        self._heap_rss_at: float | None = None
        self._heap_rss_value = 0

    # ------------------------------------------------------------ recording

    def __call__(self, heap: Heap) -> None:
        self.sample(heap)

    def sample(self, heap: Heap) -> None:
        """Record one sample of ``heap`` now (and the collections since the last one)."""
        t = self._clock() - self._t0
        ms = mem_stats(heap)
        self._rows.append(
            (
                t, ms.heap_alloc, ms.next_gc, ms.heap_sys, ms.heap_idle, ms.heap_inuse,
                ms.heap_released, ms.heap_objects, ms.total_alloc, ms.mallocs, ms.frees,
                ms.sys, ms.num_gc, ms.pause_total_ns, process_rss(), self._heap_rss(heap, t),
            )
        )
        self._read_trace(heap)
        if self.peak_page_map and (self.peak is None or ms.heap_inuse > self.peak.heap_inuse):
            self.peak = _page_map_snapshot(heap, ms, t)

    def _heap_rss(self, heap: Heap, t: float) -> int:
        """heap_rss(), measured at most every HEAP_RSS_INTERVAL_S (it reads /proc: a few ms)."""
        if self._heap_rss_at is None or t - self._heap_rss_at >= self.HEAP_RSS_INTERVAL_S:
            self._heap_rss_at, self._heap_rss_value = t, heap_rss(heap)
        return self._heap_rss_value

    def finish(self, heap: Heap) -> HeapSnapshot:
        """A last sample and a snapshot of everything (:attr:`final`); call before closing the heap."""
        self._heap_rss_at = None  # measured now
        self.sample(heap)
        self.final = snapshot(heap, time_s=self._rows[-1][0])
        return self.final

    def _read_trace(self, heap: Heap) -> None:
        """Copy the gctrace rows written since the last look (the log is a ring: read it often enough)."""
        a = heap._arrays
        n = int(a.gcstats[L.GS_NTRACE])
        log = a.gctrace_log
        first = max(self._ntrace, n - log.shape[0])
        if n > first:
            idx = np.arange(first, n) % log.shape[0]
            self._trace.append(log[idx].copy())
        self._ntrace = n

    # ------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_sample(self) -> np.void:
        """The latest sample (a record of :data:`SAMPLE_DTYPE`); IndexError before the first."""
        return np.array([self._rows[-1]], SAMPLE_DTYPE)[0]

    @property
    def samples(self) -> np.ndarray:
        """Every sample, oldest first (:data:`SAMPLE_DTYPE`)."""
        return np.array(self._rows, SAMPLE_DTYPE)

    @property
    def gctrace(self) -> np.ndarray:
        """The gctrace rows of every collection seen (columns ``layout.TR_*``)."""
        if not self._trace:
            return np.zeros((0, L.TR_NSLOTS), np.int64)
        return np.concatenate(self._trace)

    @property
    def collections(self) -> np.ndarray:
        """One row per collection (:data:`COLLECTION_DTYPE`), oldest first."""
        tr = self.gctrace
        out = np.zeros(len(tr), COLLECTION_DTYPE)
        if not len(tr):
            return out
        out["num_gc"] = tr[:, L.TR_NUMGC]
        out["heap_after"] = tr[:, L.TR_HEAP1]
        out["objects_after"] = tr[:, L.TR_OBJ1]
        out["mallocs"] = tr[:, L.TR_NMALLOC]
        out["frees"] = tr[:, L.TR_NFREE]
        out["mark_ns"] = tr[:, L.TR_MARK_NS]
        out["sweep_ns"] = tr[:, L.TR_SWEEP_NS]
        out["other_ns"] = tr[:, L.TR_OTHER_NS]
        out["pause_ns"] = tr[:, L.TR_PAUSE_NS]
        out["forced"] = tr[:, L.TR_FORCED] != 0
        heap1 = out["heap_after"]
        out["next_gc"] = tr[:, L.TR_NEXT_GC]
        # The seed measures heap_alloc and the objects at the start of a collection only when
        # gctrace is on (it folds the caches' stats first). Otherwise an automatic collection
        # started once the lagging heap_alloc crossed the previous one's trigger: that
        # trigger is heap_before to within the caches' lag (a lower bound); a forced one or
        # the first (whose trigger is 0) is shown without its drop.
        measured = (tr[:, L.TR_HEAP0] != 0) | (tr[:, L.TR_OBJ0] != 0)
        trigger = np.concatenate([[0], out["next_gc"][:-1]])
        trigger = np.where(out["forced"], 0, trigger)
        out["measured"] = measured
        out["heap_before"] = np.where(measured, tr[:, L.TR_HEAP0], np.maximum(trigger, heap1))
        out["objects_before"] = np.where(measured, tr[:, L.TR_OBJ0], -1)
        s = self.samples
        # the heap starts from nothing: an implicit first point at 0 mallocs, 0 bytes, time 0
        mallocs = np.concatenate([[0], s["mallocs"]]).astype(np.float64)
        total = np.concatenate([[0], s["total_alloc"]]).astype(np.float64)
        times = np.concatenate([[0.0], s["time_s"]])
        m = out["mallocs"].astype(np.float64)
        out["total_alloc"] = np.round(_interp_monotone(m, mallocs, total)).astype(np.int64)
        out["time_s"] = _interp_monotone(m, mallocs, times)
        return out


def _interp_monotone(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """np.interp over points whose x may repeat (samples between which nothing was allocated)."""
    if len(xp) == 1:
        return np.full(len(x), fp[0])
    keep = np.concatenate([[True], np.diff(xp) > 0])
    return np.interp(x, xp[keep], fp[keep])
