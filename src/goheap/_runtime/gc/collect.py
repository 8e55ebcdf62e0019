"""One collection: runtime.gc and the inner gc of mgc0.c. See :mod:`goheap._runtime.gc` for the phases."""

from __future__ import annotations

from .._jit import jit
from ..constants import NUM_SIZE_CLASSES, PAUSE_HISTORY
from ..layout import (
    FIRST_SPAN,
    GS_BUFFERLIST,
    GS_FREED,
    GS_MARKED,
    GS_NFIN,
    GS_NROOTS,
    GS_NTRACE,
    GS_NTYPEDSPANS,
    GS_ROOTS_CAP,
    GS_SCANNED_BYTES,
    GS_WORKBUF_CARVED,
    GS_WORKBUF_PEAK,
    H_GC_PARFOR_BYTES,
    H_GC_PARFOR_DONE,
    H_GC_STACK_BYTES,
    H_GCPERCENT,
    H_GCTRACE,
    H_IN_GC,
    H_NGOROUTINES,
    H_NPROC,
    H_NSPAN,
    LC_INUSE,
    ST_ENABLEGC,
    ST_HEAP_ALLOC,
    ST_LAST_GC,
    ST_NEXT_GC,
    ST_NFREE,
    ST_NMALLOC,
    ST_NUMGC,
    ST_PAUSE_TOTAL_NS,
    ST_SYS,
    TR_FORCED,
    TR_HEAP0,
    TR_HEAP1,
    TR_MARK_NS,
    TR_NFREE,
    TR_NMALLOC,
    TR_NPROC,
    TR_NUMGC,
    TR_OBJ0,
    TR_OBJ1,
    TR_OTHER_NS,
    TR_PAUSE_NS,
    TR_SWEEP_NS,
    SP_STATE,
    SP_TYPES_COMPRESSION,
)
from ..constants import MSPAN_IN_USE, MTYPES_BYTES, MTYPES_WORDS
from ..constants import FLAG_NO_GC, FLAG_NO_PROFILING
from ..malloc import free, malloc_nogc, settype_flush
from ..mcache import mcache_release_all
from ..mheap import nanotime, purgecachedstats
from ..mprof import mprof_gc
from .mark import markroots
from .sweep import sweepspan

WORKBUF_OBJS = 339  # Obj entries in one 8 KB Workbuf
WORKBUFS_PER_CHUNK = (1 << 20) // 8192  # Workbufs are carved from 1 MB SysAlloc chunks
ROOT_BYTES = 24  # sizeof(Obj)
ROOTS_FIRST_CAP = 4096 // ROOT_BYTES  # 170
BUFFERLIST_BYTES = 64 * 16 + 64 * 32 + 64 * 24 + 8  # PtrTarget, BitTarget and Obj staging, next


@jit
def cachestats(rt):
    """Fold every cache's stats into MStats (the world is stopped)."""
    for c in range(rt.cache_local.shape[0]):
        if rt.cache_local[c, LC_INUSE] != 0:
            purgecachedstats(rt, c)
            for i in range(NUM_SIZE_CLASSES):
                rt.by_size[i, 1] += rt.cache_by_size[c, i, 0]
                rt.by_size[i, 2] += rt.cache_by_size[c, i, 1]
                rt.cache_by_size[c, i, 0] = 0
                rt.cache_by_size[c, i, 1] = 0


@jit
def _account_gc_structures(rt):
    """Sys of the seed's GC bookkeeping: the roots array, one BufferList, the Workbuf chunks."""
    if rt.gcstats[GS_BUFFERLIST] == 0:
        rt.gcstats[GS_BUFFERLIST] = 1
        rt.mstats[ST_SYS] += BUFFERLIST_BYTES
    # roots: data, bss, one per typed span, one per goroutine stack, one per finalizer
    ntyped = 0
    for s in range(FIRST_SPAN, FIRST_SPAN + rt.h[H_NSPAN]):
        if rt.spans[s, SP_STATE] == MSPAN_IN_USE:
            comp = rt.spans[s, SP_TYPES_COMPRESSION]
            if comp == MTYPES_WORDS or comp == MTYPES_BYTES:
                ntyped += 1
    rt.gcstats[GS_NTYPEDSPANS] = ntyped
    nroots = 2 + ntyped + rt.h[H_NGOROUTINES] + rt.gcstats[GS_NFIN]
    cap = rt.gcstats[GS_ROOTS_CAP]
    if cap == 0:
        cap = ROOTS_FIRST_CAP
        rt.mstats[ST_SYS] += cap * ROOT_BYTES
    while nroots > cap:
        rt.mstats[ST_SYS] += cap * ROOT_BYTES  # new = 2*cap, old freed: net +cap
        cap *= 2
    rt.gcstats[GS_ROOTS_CAP] = cap


@jit
def _account_workbufs(rt):
    bufs = rt.gcstats[GS_WORKBUF_PEAK] // WORKBUF_OBJS + 1
    chunks = (bufs + WORKBUFS_PER_CHUNK - 1) // WORKBUFS_PER_CHUNK
    carved = rt.gcstats[GS_WORKBUF_CARVED]
    if chunks > carved:
        rt.mstats[ST_SYS] += (chunks - carved) << 20
        rt.gcstats[GS_WORKBUF_CARVED] = chunks


@jit
def gc(rt, c, force):
    """runtime.gc: collect if enabled and (forced or the heap reached next_gc). True if it ran.

    GOGCTRACE >= 2 runs a second, forced collection after every automatic one, as in the seed.
    """
    if rt.mstats[ST_ENABLEGC] == 0 or rt.h[H_GCPERCENT] < 0 or rt.h[H_IN_GC] != 0:
        return False
    segment = _stack_segment_alloc(rt, c)
    ran = _gc(rt, c, force)
    if ran and not force and rt.h[H_GCTRACE] > 1:
        _gc(rt, c, True)
    if segment > 0:
        free(rt, c, segment)
    return ran


@jit
def _stack_segment_alloc(rt, c):
    """go_process: the big stack segment the seed's runtime·gc switches to (reflect·call with StackBig).

    A heap block the collector never scans nor frees (FlagNoGC), freed explicitly when the
    collection returns, as oldstack frees it: one malloc and one free per collection.
    """
    nbytes = rt.h[H_GC_STACK_BYTES]
    if nbytes <= 0:
        return 0
    return malloc_nogc(rt, c, nbytes, FLAG_NO_GC | FLAG_NO_PROFILING, False)


@jit
def _parfor_alloc(rt, c):
    """go_process: the first collection allocates the mark and sweep ParFor descriptors (kept forever)."""
    nbytes = rt.h[H_GC_PARFOR_BYTES]
    if nbytes <= 0 or rt.h[H_GC_PARFOR_DONE] != 0:
        return
    rt.h[H_GC_PARFOR_DONE] = 1
    # work.markfor and work.sweepfor live in the runtime's bss, a root the collector always
    # sees; FlagNoGC gives the same immortality without a root.
    malloc_nogc(rt, c, nbytes, FLAG_NO_GC, True)
    malloc_nogc(rt, c, nbytes, FLAG_NO_GC, True)


@jit
def _gc(rt, c, force):
    if not force and rt.mstats[ST_HEAP_ALLOC] < rt.mstats[ST_NEXT_GC]:
        return False
    rt.h[H_IN_GC] = 1
    t0 = nanotime(rt)
    for k in range(rt.cache_local.shape[0]):
        if rt.cache_local[k, LC_INUSE] != 0:
            settype_flush(rt, k)
    heap0 = 0
    obj0 = 0
    if rt.h[H_GCTRACE] > 0:
        cachestats(rt)
        heap0 = rt.mstats[ST_HEAP_ALLOC]
        obj0 = rt.mstats[ST_NMALLOC] - rt.mstats[ST_NFREE]
    _parfor_alloc(rt, c)
    _account_gc_structures(rt)
    rt.gcstats[GS_MARKED] = 0
    rt.gcstats[GS_FREED] = 0
    rt.gcstats[GS_SCANNED_BYTES] = 0
    rt.gcstats[GS_WORKBUF_PEAK] = 0

    t1 = nanotime(rt)
    markroots(rt, rt.fintab[rt.fintab > 0])
    _account_workbufs(rt)
    t2 = nanotime(rt)
    nspan = rt.h[H_NSPAN]  # spans created during the sweep are not visited
    for s in range(FIRST_SPAN, FIRST_SPAN + nspan):
        sweepspan(rt, c, s)
    t3 = nanotime(rt)

    for k in range(rt.cache_local.shape[0]):
        if rt.cache_local[k, LC_INUSE] != 0:
            mcache_release_all(rt, k)
    cachestats(rt)
    rt.mstats[ST_NEXT_GC] = rt.mstats[ST_HEAP_ALLOC] + rt.mstats[ST_HEAP_ALLOC] * rt.h[H_GCPERCENT] // 100

    heap1 = rt.mstats[ST_HEAP_ALLOC]
    obj1 = rt.mstats[ST_NMALLOC] - rt.mstats[ST_NFREE]
    t4 = nanotime(rt)
    numgc = rt.mstats[ST_NUMGC]
    rt.mstats[ST_LAST_GC] = t4
    rt.pause_ns[numgc % PAUSE_HISTORY] = t4 - t0
    rt.mstats[ST_PAUSE_TOTAL_NS] += t4 - t0
    rt.mstats[ST_NUMGC] = numgc + 1

    row = rt.gcstats[GS_NTRACE] % rt.gctrace_log.shape[0]
    tr = rt.gctrace_log[row]
    tr[:] = 0
    tr[TR_NUMGC] = numgc + 1
    tr[TR_NPROC] = rt.h[H_NPROC]
    tr[TR_MARK_NS] = t2 - t1
    tr[TR_SWEEP_NS] = t3 - t2
    tr[TR_OTHER_NS] = (t1 - t0) + (t4 - t3)
    tr[TR_HEAP0] = heap0
    tr[TR_HEAP1] = heap1
    tr[TR_OBJ0] = obj0
    tr[TR_OBJ1] = obj1
    tr[TR_NMALLOC] = rt.mstats[ST_NMALLOC]
    tr[TR_NFREE] = rt.mstats[ST_NFREE]
    tr[TR_FORCED] = 1 if force else 0
    tr[TR_PAUSE_NS] = t4 - t0
    rt.gcstats[GS_NTRACE] += 1

    mprof_gc(rt)
    rt.h[H_IN_GC] = 0
    return True

