"""Replay a recorded Go program on goheap: the allocations of a trace, on a fresh heap.

A :class:`~goheap.trace.Trace` (imported from a ``GODEBUG=allocfreetrace=1`` log) is the
sequence of heap allocations, frees and collections of one run of a real Go program.
:func:`replay` performs the same allocations, of the logged sizes and in the same order,
on a goheap :class:`~goheap.Heap`, and compares the two heaps:

* each ``tracealloc`` becomes an allocation of the logged size: a no-pointer (noscan)
  block when the log names no type (Go logs a type only for blocks that hold pointers),
  otherwise an untyped block that may hold pointers, scanned conservatively. (Blocks
  stay zeroed, so they never keep anything else alive.)
* each ``tracefree`` ends that object's life, in one of two ways (``mode``):

  ``"gc"`` (the default)
      the object is dropped from the root set, and goheap's own collector decides when
      it dies, paced by goheap's GOGC: the 2013 collector run on a real program's
      allocations. Its collections are counted and compared with the recorded ones.
  ``"free"``
      the object is freed explicitly (``runtime.free``) at the moment the recorded
      run's sweeper freed it, so goheap's live heap follows the recorded one exactly;
      the collector still runs (finding nothing to free) and is still counted.

* each ``tracegc`` is a point of comparison: the objects and bytes live in the
  recorded run (its allocations minus its frees so far) against goheap's HeapObjects
  and HeapAlloc at the same event.

Roots
-----
Every live replayed object is held by one slot of the replaying thread's shadow stack
(:func:`goheap.nb.set_root`), which the collector scans at each collection as the seed
scans a goroutine stack; slots are reused as objects die, so the stack is as deep as the
most objects ever live at once. This costs one store per event and nothing in the heap
itself (the slots are outside the arena, as a Go program's stacks and globals are
outside its heap), so the heap statistics are the replayed objects' alone.

The plan
--------
Before anything is allocated, one compiled pass over the trace (:meth:`ReplayPlan.build`)
maps every event to its object's slot with an open-addressing hash table of the trace's
addresses, and checks that the trace is consistent:

* an address allocated again while it is live, or freed when it is not live (freed
  already), means the trace's objects overlap: :class:`TraceOverlapError`, naming the
  event and the address; nothing is replayed, the heap is not touched. (Checked by
  address: a block is identified by its start, as Go's trace identifies it.)
* a free of an address the trace never allocated is an object the program allocated
  *before tracing began* (every Go program has a few: the runtime allocates before it
  reads ``GODEBUG``). Such objects are allocated, noscan and of the freed size, before
  the first event, and count as live in the recorded run from its start.

The replay itself is a compiled loop over the event arrays, run in chunks so that Python
can print the collector's gctrace lines and update a progress display in between. The
heap is built with the seed's defaults except for three settings that change no result:
a virtual clock, so a replay is deterministic (same trace and settings, same output); a
shadow stack deep enough for the plan's slots; and a one-page finalizer table, since a
replay sets no finalizers and every collection walks the whole table.

Heap profiles
-------------
A replay's heap samples allocations for its profile as the seed does, one every
MemProfileRate bytes on average (an allocation of at least the rate always). Go's default
of 512 KB suits a program that allocates gigabytes; a trace of a few megabytes would leave
its profile with a handful of samples. :func:`heap_profile_rate` picks the rate for a
replay that writes a profile: the largest power of two, up to 512 KB, at which about
:data:`PROFILE_SAMPLES` allocations are sampled (1, every allocation, for a smaller
trace), or says when a rate the user chose leaves fewer than :data:`FEW_PROFILE_SAMPLES`.
The rate changes nothing else in the replay (goheap keeps its profile's buckets outside
the heap): only the profile, and BuckHashSys once a first allocation is sampled.

Figures
-------
goheap's HeapObjects and HeapAlloc at an event are read without disturbing the heap
(MemStats that lag in the thread's cache are added in, as ReadMemStats would fold them,
but nothing is folded), so observing the replay does not change when goheap collects.
Recorded bytes are the sizes Go 1.19 logged (its size classes); goheap's are its own
(the 2013 classes), so bytes differ slightly where objects do not.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from goheap import nb
from goheap._runtime._jit import jit
from goheap._runtime.bitmap import is_allocated
from goheap._runtime.layout import (
    LC_INUSE,
    LC_LOCAL_CACHEALLOC,
    LC_LOCAL_OBJECTS,
    ST_HEAP_ALLOC,
    ST_HEAP_OBJECTS,
    ST_NEXT_GC,
    ST_NUMGC,
)
from goheap._runtime.mallocinit import Limits
from goheap._runtime.stats import MemStats
from goheap.errors import HeapCorrupted, HeapError
from goheap.heap import Heap, HeapConfig
from goheap.policy import SEED, Policy
from goheap.trace.tracefile import KIND_ALLOC, KIND_FREE, KIND_GC, Trace

__all__ = [
    "MODES",
    "GCPoint",
    "GoheapGC",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "TraceOverlapError",
    "expected_profile_samples",
    "heap_profile_rate",
    "replay",
]

#: The ways a ``tracefree`` can be replayed.
MODES = ("gc", "free")
#: Most events per compiled chunk: between chunks Python prints gctrace lines and progress,
#: and samples the heap.
CHUNK_EVENTS = 1 << 17
#: Fewest events per chunk, and the number of samples a replay aims for.
MIN_CHUNK_EVENTS = 1 << 10
SAMPLES = 500
#: goheap collecting this many times as often as the recorded run is worth a note.
FREQUENT_GC_RATIO = 2.0
#: Shadow-stack slots kept spare above the replay's own (mallocgc pushes the new block).
SPARE_SLOTS = 64
#: Finalizer-table capacity of a replay's own heap (one page: a replay sets no finalizers).
REPLAY_FINALIZER_SLOTS = 512
#: How many allocations a replay's heap profile samples when the replay picks the rate.
PROFILE_SAMPLES = 10_000
#: A heap profile of fewer samples than this says little: worth a warning.
FEW_PROFILE_SAMPLES = 1_000
#: Go's default runtime.MemProfileRate, the most a replay picks.
GO_MEM_PROFILE_RATE = 512 * 1024


class ReplayError(HeapError):
    """A trace that cannot be replayed, or a replay that failed; the message says where."""

    __module__ = "goheap.trace"


class TraceOverlapError(ReplayError, ValueError):
    """The trace's objects overlap: an address allocated while live, or freed when not live.

    ``event`` is the index of the offending event, ``addr`` its address, ``other`` the
    event that made the address live (or dead) before it.
    """

    __module__ = "goheap.trace"

    def __init__(self, message: str, event: int, addr: int, other: int) -> None:
        super().__init__(message)
        self.event = event
        self.addr = addr
        self.other = other


# ================================================================ the plan: a compiled pre-pass

_ERR_LIVE = 1  # an allocation of an address that is live
_ERR_NOT_LIVE = 2  # a free of an address that was freed and not allocated since
_HASH_MULT = 0x45D9F3B  # < 2**27: a 32-bit value times it never overflows an int64

# The address table: one row of two int64 per address seen (16 bytes), open addressing
# with linear probing, never deleted from (a dead address must be remembered to tell a
# double free from an object allocated before the trace). Column 0 is the address;
# column 1 packs the event that last allocated or freed it (high 32 bits) and its state
# (low 32 bits): 0 an empty row, slot + 1 while live, _DEAD once freed.
_T_KEY = 0
_T_PACKED = 1
_DEAD = 0xFFFFFFFF
_LOW32 = 0xFFFFFFFF
#: Longest trace the plan handles (event numbers are packed into 32 bits).
MAX_EVENTS = (1 << 31) - 1


@jit
def _mix32(x):
    """A 32-bit mixer (xor-shift-multiply); every product stays below 2**63, so the
    arithmetic is the same compiled and interpreted."""
    x = ((x ^ (x >> 16)) * _HASH_MULT) & _LOW32
    x = ((x ^ (x >> 16)) * _HASH_MULT) & _LOW32
    return x ^ (x >> 16)


@jit
def _probe(table, a, mask):
    """The table row holding address ``a``, or the empty row where it would go."""
    i = _mix32(_mix32((a >> 3) & _LOW32) ^ ((a >> 35) & _LOW32)) & mask
    while (table[i, _T_PACKED] & _LOW32) != 0 and table[i, _T_KEY] != a:
        i = (i + 1) & mask
    return i


@jit
def _grow(table):
    """The table rehashed into twice as many rows."""
    bigger = np.zeros((2 * table.shape[0], 2), np.int64)
    mask = bigger.shape[0] - 1
    for j in range(table.shape[0]):
        if (table[j, _T_PACKED] & _LOW32) != 0:
            k = _probe(bigger, table[j, _T_KEY], mask)
            bigger[k, _T_KEY] = table[j, _T_KEY]
            bigger[k, _T_PACKED] = table[j, _T_PACKED]
    return bigger


@jit
def _plan(kind, addr, size, n_gc):
    """Map events to slots (see the module docstring). ``addr`` and ``size`` are int64.

    Returns (slot, nslots, pre_events, gc_live, peaks, err): slot[i] is event i's object
    slot (-1 for a GC point), pre-trace objects first; pre_events the free events of the
    pre-trace objects; gc_live[g] the (objects, bytes) live before GC point g, and peaks
    the largest (objects, bytes), both still without the pre-trace objects; err
    (code, event, address, other event) with code 0 when the trace is consistent.
    """
    n = kind.shape[0]
    slot = np.full(n, -1, np.int64)
    gc_live = np.zeros((n_gc, 2), np.int64)
    peaks = np.zeros(2, np.int64)
    err = np.zeros(4, np.int64)
    table = np.zeros((1 << 12, 2), np.int64)
    nused = 0
    slot_size = np.zeros(1024, np.int64)  # size of the object in each slot
    free_slots = np.empty(1024, np.int64)
    nfree_slots = 0
    nslots = 0
    pre = np.empty(16, np.int64)
    npre = 0
    objects = 0
    nbytes = 0
    g = 0
    for i in range(n):
        k = kind[i]
        if k == KIND_GC:
            gc_live[g, 0] = objects
            gc_live[g, 1] = nbytes
            g += 1
            continue
        a = addr[i]
        h = _probe(table, a, table.shape[0] - 1)
        state = table[h, _T_PACKED] & _LOW32
        if k == KIND_ALLOC:
            if state != 0 and state != _DEAD:
                err[0] = _ERR_LIVE
                err[1] = i
                err[2] = a
                err[3] = table[h, _T_PACKED] >> 32
                return slot[:0].copy(), 0, pre[:0].copy(), gc_live, peaks, err
            if state == 0:
                table[h, _T_KEY] = a
                nused += 1
            if nfree_slots > 0:
                nfree_slots -= 1
                s = free_slots[nfree_slots]
            else:
                s = nslots
                nslots += 1
                if nslots > slot_size.shape[0]:
                    grown = np.zeros(2 * slot_size.shape[0], np.int64)
                    grown[: slot_size.shape[0]] = slot_size
                    slot_size = grown
                    free_slots = np.empty(slot_size.shape[0], np.int64)  # empty right now
            table[h, _T_PACKED] = (i << 32) | (s + 1)
            slot_size[s] = size[i]
            slot[i] = s
            objects += 1
            nbytes += size[i]
            if objects > peaks[0]:
                peaks[0] = objects
            if nbytes > peaks[1]:
                peaks[1] = nbytes
        else:
            if state == _DEAD:
                err[0] = _ERR_NOT_LIVE
                err[1] = i
                err[2] = a
                err[3] = table[h, _T_PACKED] >> 32
                return slot[:0].copy(), 0, pre[:0].copy(), gc_live, peaks, err
            if state != 0:
                s = state - 1
                slot[i] = s
                free_slots[nfree_slots] = s  # never full: it holds at most nslots slots
                nfree_slots += 1
                objects -= 1
                nbytes -= slot_size[s]
            else:
                # never allocated in the trace: allocated before tracing began
                table[h, _T_KEY] = a
                nused += 1
                if npre == pre.shape[0]:
                    grown = np.empty(2 * npre, np.int64)
                    grown[:npre] = pre
                    pre = grown
                pre[npre] = i
                slot[i] = -2 - npre
                npre += 1
                objects -= 1
                nbytes -= size[i]
            table[h, _T_PACKED] = (i << 32) | _DEAD
        if 2 * nused > table.shape[0]:
            table = _grow(table)
    # pre-trace objects take slots 0..npre-1, the trace's own objects the rest
    for i in range(n):
        s = slot[i]
        if s >= 0:
            slot[i] = s + npre
        elif s <= -2:
            slot[i] = -2 - s
    return slot, nslots + npre, pre[:npre].copy(), gc_live, peaks, err


@dataclass(frozen=True, eq=False)
class ReplayPlan:
    """A trace checked and mapped for replay (see the module docstring, "The plan").

    ``slot`` (int64, one per event, -1 at GC points) is the event's object's root slot;
    ``nslots`` the slots needed; ``pre_sizes`` the sizes of the objects allocated before
    tracing began (slots 0.. len-1), ``pre_events`` the events that free them;
    ``gc_events`` the indices of the GC points, ``gc_live`` the recorded run's live
    (objects, bytes) just before each; ``peak_objects``/``peak_bytes`` its largest.
    """

    __module__ = "goheap.trace"

    trace: Trace
    slot: np.ndarray
    nslots: int
    pre_events: np.ndarray
    pre_sizes: np.ndarray
    size: np.ndarray
    gc_events: np.ndarray
    gc_live: np.ndarray
    peak_objects: int
    peak_bytes: int

    @classmethod
    def build(cls, trace: Trace, *, max_size: int | None = None) -> ReplayPlan:
        """Check ``trace`` and map its events to slots; raises :class:`TraceOverlapError`.

        With ``max_size``, an allocation larger than that raises :class:`ReplayError`.
        """
        kind = trace.kind
        size = trace.size
        if len(kind) > MAX_EVENTS:
            raise ReplayError(f"the trace has {len(kind):,} events; a replay handles at most {MAX_EVENTS:,}")
        objects = kind != KIND_GC
        if len(size):
            limit = max_size if max_size is not None else (1 << 62)
            too_big = np.flatnonzero(objects & (size > np.uint64(limit)))
            if len(too_big):
                i = int(too_big[0])
                raise ReplayError(
                    f"event {i}: {_event_text(trace, i)} is larger than the heap's "
                    f"{limit}-byte arena; it cannot be replayed"
                )
        size64 = size.astype(np.int64)
        gc_events = np.flatnonzero(kind == KIND_GC)
        slot, nslots, pre, gc_live, peaks, err = _plan(kind, trace.addr.view(np.int64), size64, len(gc_events))
        if err[0]:
            code, i, a, other = (int(x) for x in err)
            a &= (1 << 64) - 1
            if code == _ERR_LIVE:
                why = (
                    f"allocates {a:#x}, which is still live (allocated at event {other}, "
                    "not freed since)"
                )
            else:
                why = f"frees {a:#x}, which is not live (freed at event {other}, not allocated since)"
            raise TraceOverlapError(
                f"event {i}: {_event_text(trace, i)} {why}: the trace's objects overlap",
                i,
                a,
                other,
            )
        pre_sizes = size64[pre]
        n_pre = len(pre)
        gc_live = gc_live.copy()
        gc_live[:, 0] += n_pre
        gc_live[:, 1] += int(pre_sizes.sum())
        slot.flags.writeable = False
        return cls(
            trace=trace,
            slot=slot,
            nslots=int(nslots),
            pre_events=pre,
            pre_sizes=pre_sizes,
            size=size64,
            gc_events=gc_events,
            gc_live=gc_live,
            peak_objects=int(peaks[0]) + n_pre,
            peak_bytes=int(peaks[1]) + int(pre_sizes.sum()),
        )


def _gogc_source(gogc: int | None, own_heap: bool) -> str:
    """Where the GOGC of a replay comes from, as the output says it."""
    if not own_heap:
        return "the heap given"
    if gogc is not None:
        return "the gogc argument"
    value = os.environ.get("GOGC")
    if value is not None:
        return f"the GOGC environment variable ({value!r})"
    return "the default: no --gogc, no GOGC in the environment"


def _event_text(trace: Trace, i: int) -> str:
    k = int(trace.kind[i])
    if k == KIND_GC:
        return "tracegc()"
    name = "tracealloc" if k == KIND_ALLOC else "tracefree"
    return f"{name}({int(trace.addr[i]):#x}, {int(trace.size[i]):#x})"


# ================================================================ the replay loop

# st: the loop's state, shared with Python between chunks
_S_NEXT = 0  # next event to replay
_S_ERR = 1  # 0, an E_* code of the runtime, or _S_LOST
_S_ERR_EVENT = 2
_S_ERR_ADDR = 3
_S_NUMGC = 4  # NumGC seen after the last allocation
_S_NGCREC = 5  # rows of gcrec used in this chunk
_S_NGCPOINT = 6  # rows of gcpoint used
_S_PEAK_OBJECTS = 7
_S_PEAK_HEAP_ALLOC = 8
_S_NSLOTS = 9
_S_LOST = -100  # check mode: a live object was found freed

# gcpoint columns (one row per recorded GC point)
_P_EVENT = 0
_P_OBJECTS = 1
_P_HEAP_ALLOC = 2
_P_NUMGC = 3
_P_NCOLS = 4

# gcrec columns (one row per allocation that made goheap collect)
_G_EVENT = 0
_G_NUMGC = 1
_G_HEAP_ALLOC = 2
_G_OBJECTS = 3
_G_NEXT_GC = 4
_G_NCOLS = 5


@jit
def _heap_now(rt):
    """(HeapObjects, HeapAlloc) as ReadMemStats would report them now, folding nothing."""
    objects = rt.mstats[ST_HEAP_OBJECTS]
    heap_alloc = rt.mstats[ST_HEAP_ALLOC]
    for c in range(rt.cache_local.shape[0]):
        if rt.cache_local[c, LC_INUSE] != 0:
            objects += rt.cache_local[c, LC_LOCAL_OBJECTS]
            heap_alloc += rt.cache_local[c, LC_LOCAL_CACHEALLOC]
    return objects, heap_alloc


@jit
def _replay_chunk(
    rt, c, kind, size, noscan, charge, buckets, slot, i0, i1, free_mode, check, base, addrs, st, gcpoint, gcrec, prologue
):
    """Replay events i0..i1-1; stop early on an error (st[_S_ERR]). See the module docstring.

    ``base`` is the first shadow-stack slot of the replay; ``addrs[slot]`` the goheap
    address of each live object. With ``prologue`` (the objects allocated before the
    trace began) goheap's collections are recorded at event -1. Each allocation is charged
    to the memory-profile bucket ``buckets[charge + 1]`` (its stack's; see ``_charges``).
    Peaks are tracked from this cache's lagging stats (the replaying thread's cache is
    the only one that changes during a replay).
    """
    ncaches_objects, ncaches_alloc = _heap_now(rt)
    others_objects = ncaches_objects - rt.mstats[ST_HEAP_OBJECTS] - rt.cache_local[c, LC_LOCAL_OBJECTS]
    others_alloc = ncaches_alloc - rt.mstats[ST_HEAP_ALLOC] - rt.cache_local[c, LC_LOCAL_CACHEALLOC]
    mstats = rt.mstats
    lc = rt.cache_local[c]
    numgc = st[_S_NUMGC]
    peak_objects = st[_S_PEAK_OBJECTS]
    peak_heap_alloc = st[_S_PEAK_HEAP_ALLOC]
    ngcrec = st[_S_NGCREC]
    st[_S_NEXT] = i1
    for i in range(i0, i1):
        k = kind[i]
        if k == KIND_ALLOC:
            nb.set_profile_bucket(rt, buckets[charge[i] + 1])
            if noscan[i] != 0:
                v = nb.alloc_noscan(rt, c, size[i])
            else:
                v = nb.alloc(rt, c, size[i])
            if v < 0:
                st[_S_ERR] = v
                st[_S_ERR_EVENT] = i
                st[_S_NEXT] = i
                break
            j = slot[i]
            addrs[j] = v
            nb.set_root(rt, c, base + j, v)
            if mstats[ST_NUMGC] != numgc:
                # a collection folded every cache's deltas into mstats
                numgc = mstats[ST_NUMGC]
                others_objects = 0
                others_alloc = 0
                gcrec[ngcrec, _G_EVENT] = -1 if prologue else i
                gcrec[ngcrec, _G_NUMGC] = numgc
                objects, heap_alloc = _heap_now(rt)
                gcrec[ngcrec, _G_HEAP_ALLOC] = heap_alloc
                gcrec[ngcrec, _G_OBJECTS] = objects
                gcrec[ngcrec, _G_NEXT_GC] = mstats[ST_NEXT_GC]
                ngcrec += 1
            objects = mstats[ST_HEAP_OBJECTS] + lc[LC_LOCAL_OBJECTS] + others_objects
            heap_alloc = mstats[ST_HEAP_ALLOC] + lc[LC_LOCAL_CACHEALLOC] + others_alloc
            if objects > peak_objects:
                peak_objects = objects
            if heap_alloc > peak_heap_alloc:
                peak_heap_alloc = heap_alloc
        elif k == KIND_FREE:
            j = slot[i]
            v = addrs[j]
            if check and not is_allocated(rt, v):
                st[_S_ERR] = _S_LOST
                st[_S_ERR_EVENT] = i
                st[_S_ERR_ADDR] = v
                st[_S_NEXT] = i
                break
            if free_mode:
                e = nb.free(rt, c, v)
                if e < 0:
                    st[_S_ERR] = e
                    st[_S_ERR_EVENT] = i
                    st[_S_ERR_ADDR] = v
                    st[_S_NEXT] = i
                    break
            addrs[j] = 0
            nb.set_root(rt, c, base + j, 0)
        else:
            p = st[_S_NGCPOINT]
            objects, heap_alloc = _heap_now(rt)
            gcpoint[p, _P_EVENT] = i
            gcpoint[p, _P_OBJECTS] = objects
            gcpoint[p, _P_HEAP_ALLOC] = heap_alloc
            gcpoint[p, _P_NUMGC] = mstats[ST_NUMGC]
            st[_S_NGCPOINT] = p + 1
    st[_S_NUMGC] = numgc
    st[_S_PEAK_OBJECTS] = peak_objects
    st[_S_PEAK_HEAP_ALLOC] = peak_heap_alloc
    st[_S_NGCREC] = ngcrec


@jit
def _first_lost(rt, addrs):
    """Index of the first live slot whose object is not allocated, or -1."""
    for j in range(addrs.shape[0]):
        if addrs[j] != 0 and not is_allocated(rt, addrs[j]):
            return j
    return -1


@jit
def _shadow_depth(rt, c):
    return nb.shadow_depth(rt, c)


# ================================================================ results


@dataclass(frozen=True)
class GCPoint:
    """One recorded collection (a ``tracegc`` event) and both heaps at that moment."""

    __module__ = "goheap.trace"

    event: int
    trace_objects: int
    trace_bytes: int
    goheap_objects: int  # HeapObjects
    goheap_bytes: int  # HeapAlloc
    goheap_num_gc: int  # goheap's collections so far
    time_ns: int = -1  # when the recorded collection started, on the recorded run's clock (-1: no clock)
    end_ns: int = -1  # when its mark phase ended (-1: not recorded)
    recorded_heap_alloc: int = -1  # the recorded run's HeapAlloc metric then (-1: not recorded)


@dataclass(frozen=True)
class GoheapGC:
    """One of goheap's own collections: the event whose allocation triggered it
    (-1: before the first event), and the heap right after it."""

    __module__ = "goheap.trace"

    event: int
    num_gc: int
    heap_alloc: int
    heap_objects: int
    next_gc: int
    time_ns: int = -1  # of the triggering event on the recorded run's clock (-1: no clock)


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: goheap's MemStats and the comparison with the recorded run."""

    __module__ = "goheap.trace"

    source: str | None
    events: int
    counts: dict[str, int]
    mode: str
    gogc: int
    pre_trace_objects: int
    memstats: MemStats
    trace_num_gc: int
    gc_points: tuple[GCPoint, ...]
    goheap_gcs: tuple[GoheapGC, ...]
    trace_peak_objects: int
    trace_peak_bytes: int
    goheap_peak_objects: int
    goheap_peak_heap_alloc: int
    seconds: float = field(compare=False)  # wall time of the replay loop (not deterministic)
    gogc_source: str = ""
    duration_ns: int = -1  # the recorded run's length (-1: the trace has no clock)
    series: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64), compare=False, repr=False)
    policy: Policy = SEED  # the policy the heap ran

    @property
    def num_gc(self) -> int:
        """goheap's collections (MemStats.NumGC)."""
        return self.memstats.num_gc

    @property
    def gc_ratio(self) -> float | None:
        """goheap's collections per recorded collection (None when the run recorded none)."""
        return self.num_gc / self.trace_num_gc if self.trace_num_gc else None

    def notes(self) -> list[str]:
        """One-line remarks on the comparison: how often goheap collected, what frees mean."""
        out = []
        ratio = self.gc_ratio
        if ratio is not None and ratio >= FREQUENT_GC_RATIO and not self.policy.pacer.min_heap:
            out.append(
                f"goheap collected {ratio:.1f}x as often as the recorded run: the 2013 pacer starts the next "
                "collection at GOGC% above the live heap however small it is, where today's Go waits for at "
                "least 4 MB (and counts stacks and globals); to compare heap sizes at a similar pace, raise "
                "goheap's GOGC (--gogc N) or take today's minimum heap (--policy modern-pacer)"
            )
        elif ratio is not None and ratio >= FREQUENT_GC_RATIO:
            out.append(
                f"goheap collected {ratio:.1f}x as often as the recorded run: its pacer, with this policy's "
                "minimum heap, still counts the heap alone (today's Go adds stacks and globals to the live "
                "heap GOGC% grows from) and stops the world at the goal itself"
            )
        out.append(
            "A free in the trace is when the recorded run's sweeper freed the block, up to one GC cycle after "
            "it died: --mode free frees it then; --mode gc drops it then and goheap's collector frees it at "
            "its next collection."
        )
        return out

    def comparison_lines(self) -> list[str]:
        """The comparison with the recorded run, as printed by ``goheap replay``."""
        gogc = "off" if self.gogc < 0 else str(self.gogc)
        c = self.counts
        clock = self.duration_ns >= 0
        lines = [
            "# Replay",
            f"Trace={self.source or '-'}",
            f"Events={self.events} (allocs={c['alloc']} frees={c['free']} gcs={c['gc']})",
            f"Mode={self.mode}",
            f"GOGC={gogc} (from {self.gogc_source})" if self.gogc_source else f"GOGC={gogc}",
            f"Policy={self.policy.name}",
            f"PreTraceObjects={self.pre_trace_objects}",
        ]
        if clock:
            lines.append(f"RecordedTime={self.duration_ns / 1e9:.6f}s")
        lines += [
            "# Comparison with the recorded run",
            f"{'':<24}{'recorded':>14}{'goheap':>14}",
            f"{'collections':<24}{self.trace_num_gc:>14}{self.num_gc:>14}",
            f"{'peak live objects':<24}{self.trace_peak_objects:>14}{self.goheap_peak_objects:>14}",
            f"{'peak heap bytes':<24}{self.trace_peak_bytes:>14}{self.goheap_peak_heap_alloc:>14}",
        ]
        if self.gc_points:
            metric = any(p.recorded_heap_alloc >= 0 for p in self.gc_points)
            lines.append("At each recorded collection (objects and bytes live; goheap: HeapObjects, HeapAlloc):")
            lines.append(
                f"{'gc':>4} {'event':>10}" + (f" {'time':>10}" if clock else "")
                + f" {'rec objects':>12} {'rec bytes':>12}" + (f" {'rec HeapAlloc':>13}" if metric else "")
                + f" {'goheap objects':>15} {'goheap bytes':>13} {'goheap NumGC':>13}"
            )
            for k, p in enumerate(self.gc_points, 1):
                lines.append(
                    f"{k:>4} {p.event:>10}" + (f" {p.time_ns / 1e9:>9.4f}s" if clock else "")
                    + f" {p.trace_objects:>12} {p.trace_bytes:>12}"
                    + (f" {p.recorded_heap_alloc:>13}" if metric else "")
                    + f" {p.goheap_objects:>15} {p.goheap_bytes:>13} {p.goheap_num_gc:>13}"
                )
        lines += [f"# {note}" for note in self.notes()]
        return lines

    def to_json(self) -> dict[str, Any]:
        """Everything as one JSON-ready object (``goheap replay --json``)."""
        return {
            "trace": {"source": self.source, "events": self.events, "counts": dict(self.counts)},
            "mode": self.mode,
            "gogc": self.gogc,
            "gogc_source": self.gogc_source,
            "duration_ns": self.duration_ns,
            "notes": self.notes(),
            "policy": self.policy.to_dict(),
            "pre_trace_objects": self.pre_trace_objects,
            "memstats": self.memstats.to_go(),
            "comparison": {
                "num_gc": {"recorded": self.trace_num_gc, "goheap": self.num_gc},
                "peak_objects": {"recorded": self.trace_peak_objects, "goheap": self.goheap_peak_objects},
                "peak_bytes": {"recorded": self.trace_peak_bytes, "goheap": self.goheap_peak_heap_alloc},
                "gc_points": [p.__dict__ for p in self.gc_points],
            },
            "goheap_gcs": [g.__dict__ for g in self.goheap_gcs],
        }


# ================================================================ heap profiles


def expected_profile_samples(trace: Trace, memprofilerate: int) -> float:
    """About how many of ``trace``'s allocations a heap sampling every ``memprofilerate``
    bytes records: each allocation of at least the rate, and one every rate bytes of the
    smaller ones (0 when the rate is 0: profiling off)."""
    if memprofilerate <= 0:
        return 0.0
    sizes = trace.size[trace.kind == KIND_ALLOC]
    return float(np.minimum(sizes / memprofilerate, 1.0).sum())


def heap_profile_rate(trace: Trace, memprofilerate: int | None = None) -> tuple[int, str | None]:
    """The MemProfileRate for a replay of ``trace`` that writes a heap profile, and a note
    saying why (or None).

    None picks it (see the module docstring); a rate given is kept, with a warning in the
    note if its profile would hold fewer than :data:`FEW_PROFILE_SAMPLES` samples.
    """
    allocs = int(np.count_nonzero(trace.kind == KIND_ALLOC))
    rate = GO_MEM_PROFILE_RATE
    while rate > 1 and expected_profile_samples(trace, rate) < PROFILE_SAMPLES:
        rate //= 2
    chosen = expected_profile_samples(trace, rate)
    if memprofilerate is None:
        if rate == GO_MEM_PROFILE_RATE:
            return rate, None
        go = expected_profile_samples(trace, GO_MEM_PROFILE_RATE)
        return rate, (
            f"heap profile: MemProfileRate={rate}, about {chosen:,.0f} of the trace's {allocs:,} allocations "
            f"sampled (Go's default {GO_MEM_PROFILE_RATE} would sample about {go:,.0f}); --memprofilerate N to choose"
        )
    expected = expected_profile_samples(trace, memprofilerate)
    if expected >= FEW_PROFILE_SAMPLES or expected >= allocs:
        return memprofilerate, None
    return memprofilerate, (
        f"heap profile: MemProfileRate={memprofilerate} samples about {expected:,.0f} of the trace's {allocs:,} "
        f"allocations, too few for a useful profile; --memprofilerate {rate} would sample about {chosen:,.0f}"
    )


# ================================================================ replay()


def check_mode(mode: object) -> str:
    """``mode`` if it is one of :data:`MODES`, else ValueError."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return mode


def replay(
    trace: Trace | ReplayPlan,
    *,
    mode: str = "gc",
    gogc: int | None = None,
    gctrace: int | None = None,
    gctrace_format: str = "seed",
    trace_stream: TextIO | None = None,
    heap: Heap | None = None,
    check: bool = False,
    progress: Callable[[int], Any] | None = None,
    chunk_events: int | None = None,
    memprofilerate: int | None = None,
    gogc_source: str | None = None,
    on_tick: Callable[[Heap], Any] | None = None,
    on_exit: Callable[[Heap], Any] | None = None,
    policy: Policy | str = "seed",
    memory_limit: int | str | None = None,
    min_heap: int | str | None = None,
) -> ReplayResult:
    """Replay ``trace`` on goheap and compare (see the module docstring).

    mode: ``"gc"`` (objects die when goheap's collector finds them unreachable) or
    ``"free"`` (freed explicitly when the recorded run freed them).
    gogc / gctrace: as HeapConfig's gcpercent / gctrace (None: the GOGC / GOGCTRACE
    environment variables); gctrace lines go to ``trace_stream`` (default stderr).
    heap: replay on this heap instead of a fresh one (then gogc/gctrace are ignored, and
    the replayed objects stay allocated, rooted on this thread's shadow stack above its
    current depth); a fresh heap (virtual clock, so runs are deterministic) is closed
    at the end.
    check: verify, at every free and at the end, that goheap never freed an object that is
    still live, and run :meth:`Heap.check` at the end (slower).
    progress: called with the number of events replayed after each chunk.
    chunk_events: events per compiled chunk, between which goheap's heap is sampled
    (``ReplayResult.series``, ``on_tick``); default: enough for about :data:`SAMPLES`
    samples. gogc_source: where the GOGC came from, for the output (default: worked out
    from ``gogc`` and the environment).
    memprofilerate: runtime.MemProfileRate of a fresh heap (default: the seed's 512 KB);
    sampled allocations are charged to the function the trace names for them.
    on_tick(heap): called after each chunk (e.g. a :class:`goheap.History`);
    on_exit(heap): called once the replay is done, with the heap still open (to write a
    report or a heap profile).
    policy / memory_limit / min_heap: a fresh heap's (as HeapConfig's; see :class:`goheap.Policy`).

    Raises :class:`TraceOverlapError` (nothing replayed) for an inconsistent trace, and
    the runtime's :class:`~goheap.HeapError` (naming the event) if goheap fails, e.g.
    :class:`~goheap.OutOfMemory`; the heap stays consistent either way.
    """
    check_mode(mode)
    own_heap = heap is None
    max_size = heap.config.arena_size if heap is not None else HeapConfig().arena_size
    plan = trace if isinstance(trace, ReplayPlan) else ReplayPlan.build(trace, max_size=max_size)
    trace = plan.trace
    if own_heap:
        profile_rate: dict[str, Any] = {} if memprofilerate is None else {"memprofilerate": memprofilerate}  # a HeapConfig field
        default = Limits()
        limits = Limits(
            **{
                **default.__dict__,
                "shadow_depth": max(default.shadow_depth, plan.nslots + SPARE_SLOTS),
                # a replay sets no finalizers, and each collection walks the whole table
                "finalizers": REPLAY_FINALIZER_SLOTS,
            }
        )
        heap = Heap(
            HeapConfig(
                gcpercent=gogc,
                gctrace=gctrace,
                gctrace_format=gctrace_format,
                trace_stream=trace_stream,
                virtual_clock=True,
                limits=limits,
                policy=policy,
                memory_limit=memory_limit,
                min_heap=min_heap,
                **profile_rate,
            )
        )
    assert heap is not None
    try:
        if gogc_source is None:
            gogc_source = _gogc_source(gogc, own_heap)
        if chunk_events is None:
            chunk_events = int(np.clip(len(plan.trace) // SAMPLES, MIN_CHUNK_EVENTS, CHUNK_EVENTS))
        result = _run(heap, plan, gogc_source, mode, check, progress, chunk_events, on_tick, fold=not own_heap)
        if on_exit is not None:
            on_exit(heap)
        return result
    finally:
        if own_heap:
            heap.close()


def _run(
    heap: Heap,
    plan: ReplayPlan,
    gogc_source: str,
    mode: str,
    check: bool,
    progress: Callable[[int], Any] | None,
    chunk_events: int,
    on_tick: Callable[[Heap], Any] | None,
    *,
    fold: bool,
) -> ReplayResult:
    trace = plan.trace
    rt = heap.runtime
    c = heap.cache()
    base = int(_shadow_depth(rt, c))
    depth = heap.config.limits.shadow_depth
    if base + plan.nslots + SPARE_SLOTS > depth:
        raise ReplayError(
            f"this replay needs {plan.nslots} shadow-stack slots above the {base} in use, "
            f"but the heap's stacks hold {depth}; build it with "
            f"Limits(shadow_depth={base + plan.nslots + SPARE_SLOTS}) or more"
        )
    if fold:
        heap.read_mem_stats()  # fold other threads' deltas, as ReadMemStats does
    gogc = heap.set_gc_percent(0)  # read GOGC (the heap's, whatever set it) ...
    heap.set_gc_percent(gogc)  # ... and put it back
    chunk_events = max(1, int(chunk_events))
    free_mode = mode == "free"
    addrs = np.zeros(max(plan.nslots, 1), np.int64)
    st = np.zeros(_S_NSLOTS, np.int64)
    st[_S_NUMGC] = heap.read_gc_stats().num_gc
    gcpoint = np.zeros((len(plan.gc_events), _P_NCOLS), np.int64)
    gcrec = np.zeros((chunk_events, _G_NCOLS), np.int64)
    gcs: list[GoheapGC] = []

    def collect_gcs() -> None:
        for row in gcrec[: st[_S_NGCREC]]:
            gcs.append(GoheapGC(*(int(x) for x in row)))
        st[_S_NGCREC] = 0

    charge, buckets = _charges(heap, trace)
    series: list[tuple[int, int, int, int]] = []  # (events replayed, HeapAlloc, NextGC, NumGC)

    def sample(i: int) -> None:
        _objects, heap_alloc = _heap_now(rt)
        ms = heap._arrays.mstats
        series.append((i, int(heap_alloc), int(ms[ST_NEXT_GC]), int(ms[ST_NUMGC])))

    start = time.perf_counter()
    # objects the program allocated before tracing began, as a prologue of allocations
    n_pre = len(plan.pre_sizes)
    if n_pre:
        pre_kind = np.full(n_pre, KIND_ALLOC, np.uint8)
        pre_noscan = np.ones(n_pre, np.uint8)  # only their size is known
        pre_slot = np.arange(n_pre, dtype=np.int64)
        pre_charge = np.full(n_pre, -1, np.int32)
        for i0 in range(0, n_pre, chunk_events):
            i1 = min(n_pre, i0 + chunk_events)
            _replay_chunk(
                rt, c, pre_kind, plan.pre_sizes, pre_noscan, pre_charge, buckets, pre_slot, i0, i1,
                free_mode, check, base, addrs, st, gcpoint, gcrec, True,
            )  # fmt: skip
            collect_gcs()
            heap.after_compiled()
            if st[_S_ERR]:
                k = int(st[_S_ERR_EVENT])
                where = (
                    f"object {k} of the {n_pre} allocated before the trace began "
                    f"({int(plan.pre_sizes[k])} bytes, freed at event {int(plan.pre_events[k])})"
                )
                _raise_runtime(heap, st, where)
    # the trace
    n = len(trace)
    kind, size, noscan, slot = trace.kind, plan.size, trace.noscan, plan.slot
    i = 0
    sample(0)
    while i < n:
        i1 = min(n, i + chunk_events)
        _replay_chunk(
            rt, c, kind, size, noscan, charge, buckets, slot, i, i1,
            free_mode, check, base, addrs, st, gcpoint, gcrec, False,
        )  # fmt: skip
        collect_gcs()
        heap.after_compiled()
        if st[_S_ERR]:
            k = int(st[_S_ERR_EVENT])
            _raise_runtime(heap, st, f"event {k}: {_event_text(trace, k)}")
        i = int(st[_S_NEXT])
        sample(i)
        if progress is not None:
            progress(i)
        if on_tick is not None:
            on_tick(heap)
    seconds = time.perf_counter() - start
    if check:
        j = int(_first_lost(rt, addrs))
        if j >= 0:
            raise HeapCorrupted(
                f"after the replay: goheap freed the live object at {int(addrs[j]):#x} (root slot {j})"
            )
        heap.check()
    memstats = heap.read_mem_stats()
    time_ns = trace.time_ns
    recorded_heap = _recorded_heap_alloc(trace, plan.gc_events)
    points = tuple(
        GCPoint(
            event=int(row[_P_EVENT]),
            trace_objects=int(plan.gc_live[g, 0]),
            trace_bytes=int(plan.gc_live[g, 1]),
            goheap_objects=int(row[_P_OBJECTS]),
            goheap_bytes=int(row[_P_HEAP_ALLOC]),
            goheap_num_gc=int(row[_P_NUMGC]),
            time_ns=int(time_ns[row[_P_EVENT]]),
            end_ns=int(trace.gc_end_ns[g]) if len(trace.gc_end_ns) else -1,
            recorded_heap_alloc=int(recorded_heap[g]),
        )
        for g, row in enumerate(gcpoint)
    )
    gcs = [
        dataclasses.replace(g, time_ns=int(time_ns[g.event]) if g.event >= 0 and n else (0 if trace.has_clock else -1))
        for g in gcs
    ]
    return ReplayResult(
        source=trace.meta.get("source"),
        events=n,
        counts=trace.counts(),
        mode=mode,
        gogc=gogc,
        pre_trace_objects=n_pre,
        memstats=memstats,
        trace_num_gc=len(plan.gc_events),
        gc_points=points,
        goheap_gcs=tuple(gcs),
        trace_peak_objects=plan.peak_objects,
        trace_peak_bytes=plan.peak_bytes,
        goheap_peak_objects=int(st[_S_PEAK_OBJECTS]),
        goheap_peak_heap_alloc=int(st[_S_PEAK_HEAP_ALLOC]),
        seconds=seconds,
        gogc_source=gogc_source,
        duration_ns=int(time_ns[-1]) if trace.has_clock else -1,
        series=np.array(series, np.int64).reshape(-1, 4),
        policy=heap.policy,
    )


def _recorded_heap_alloc(trace: Trace, gc_events: np.ndarray) -> np.ndarray:
    """The recorded run's HeapAlloc metric at each GC point (the last value at or before
    it), or -1 where the trace has none (allocfreetrace logs)."""
    series = trace.heap_series
    if not len(series):
        return np.full(len(gc_events), -1, np.int64)
    k = np.searchsorted(series["event"], gc_events, side="right") - 1
    return np.where(k >= 0, series["bytes"][np.maximum(k, 0)].astype(np.int64), -1)


def _charges(heap: Heap, trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """What each event's allocation is charged to in the heap profile, and the profile
    bucket of each charge (index charge + 1; -1 charges the runtime).

    The event's full stack when the trace has them (allocfreetrace logs); else, for an
    execution trace (its allocation events carry no stack), a one-frame stack named after
    the object's Go type, ``new(T)``; else the allocating function the trace names.
    """
    runtime = [heap.profile_bucket([("runtime", "", 0)])]
    if trace.n_stacks:
        stacks = [heap.profile_bucket(trace.stack(k)) for k in range(trace.n_stacks)]
        return trace.stack_id, np.array(runtime + stacks, np.int64)
    if trace.meta.get("source_format") == "exectrace":
        by_type = [heap.profile_bucket([(f"new({t})", "", 0)]) for t in trace.types]
        return trace.type_id, np.array(runtime + by_type, np.int64)
    by_func = [heap.profile_bucket([(f, "", 0)]) for f in trace.funcs]
    return trace.func_id, np.array(runtime + by_func, np.int64)


def _raise_runtime(heap: Heap, st: np.ndarray, where: str) -> None:
    """Raise the error the replay loop stopped on, naming ``where`` it happened."""
    code = int(st[_S_ERR])
    if code == _S_LOST:
        raise HeapCorrupted(
            f"{where}: goheap freed this object ({int(st[_S_ERR_ADDR]):#x}) while it was "
            "still live (reachable from its root slot)"
        )
    try:
        heap._raise(code)  # the runtime's own exception for the code
    except HeapError as e:
        raise type(e)(f"{where}: {e}") from None
