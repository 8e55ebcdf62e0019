"""One collection: runtime.gc and the inner gc of mgc0.c. See :mod:`goheap._runtime.gc` for the phases."""

from __future__ import annotations

from .._jit import jit
from ..units import UNIT_GC, call_unit
from ..constants import FLAG_NO_GC, FLAG_NO_PROFILING, MAX_GCPROC, PAUSE_HISTORY
from ..layout import (
    FIRST_SPAN,
    GP_NHANDOFF,
    GP_NHANDOFFCNT,
    GP_NOSYIELD,
    GP_NPROCYIELD,
    GP_NSLEEP,
    GS_FREED,
    GS_MARKED,
    GS_NFIN,
    GS_NFINBLOCKS,
    GS_NPROC,
    GS_NTRACE,
    GS_NTYPEDSPANS,
    GS_NWAIT,
    GS_ROOTS_CAP,
    GS_SCANNED_BYTES,
    H_GC_PARFOR_BYTES,
    H_GC_PARFOR_DONE,
    H_GC_STACK_BYTES,
    H_GCPERCENT,
    H_GCTRACE,
    H_HEAP_MARKED,
    H_IN_GC,
    H_MEMORY_LIMIT,
    H_NGOROUTINES,
    H_NPROC,
    H_NSPAN,
    H_PROF_ORIGIN,
    LC_INUSE,
    PARFOR_MARK,
    PARFOR_SWEEP,
    PF_NOSYIELD,
    PF_NPROCYIELD,
    PF_NSLEEP,
    PF_NSTEAL,
    PF_NSTEALCNT,
    PROF_ORIGIN_PARFOR,
    ST_ENABLEGC,
    ST_HEAP_ALLOC,
    ST_HEAP_SYS,
    ST_LAST_GC,
    ST_NEXT_GC,
    ST_NFREE,
    ST_NMALLOC,
    ST_NUMGC,
    ST_PAUSE_TOTAL_NS,
    ST_SYS,
    TR_FORCED,
    TR_GOAL,
    TR_HEAP0,
    TR_HEAP1,
    TR_HEAP_SYS,
    TR_MARK_NS,
    TR_NFREE,
    TR_NHANDOFF,
    TR_NHANDOFFCNT,
    TR_NMALLOC,
    TR_NOSYIELD,
    TR_NPROC,
    TR_NPROCYIELD,
    TR_NSLEEP,
    TR_NSTEAL,
    TR_NSTEALCNT,
    TR_NEXT_GC,
    TR_NUMGC,
    TR_OBJ0,
    TR_OBJ1,
    TR_OTHER_NS,
    TR_PAUSE_NS,
    TR_PAUSE_TOTAL_NS,
    TR_START_NS,
    TR_SWEEP_NS,
    runtime_ref,
)
from ..malloc import free, malloc_nogc, settype_flush
from ..mcache import allm, mcache_release_all
from ..mheap import mheap_scavenge_top, nanotime, purgecachedstats
from ..mprof import mprof_gc
from ..pacer import heap_goal, pace_scavenger, scavenge_need
from .gchelper import gc_procs
from .mark import mark_serial
from .parfor import parforsetup
from .roots import addroots
from .sweep import sweepspan

ROOT_BYTES = 24  # sizeof(Obj)
ROOTS_FIRST_CAP = 4096 // ROOT_BYTES  # 170


@jit
def cachestats(rt):
    """Fold every cache's stats into MStats (the world is stopped)."""
    for c in range(rt.cache_local.shape[0]):
        if rt.cache_local[c, LC_INUSE] != 0:
            purgecachedstats(rt, c)
            for i in range(rt.by_size.shape[0]):
                rt.by_size[i, 1] += rt.cache_by_size[c, i, 0]
                rt.by_size[i, 2] += rt.cache_by_size[c, i, 1]
                rt.cache_by_size[c, i, 0] = 0
                rt.cache_by_size[c, i, 1] = 0


@jit
def _account_roots(rt):
    """Sys of the seed's work.roots array, sized for the seed's roots of this collection.

    Those are data, bss, one per typed span, one per goroutine stack, one per object with a
    finalizer and one per FinBlock. The array starts at 170 Objs and doubles (the old copy
    is SysFree'd, so each doubling adds the old capacity).
    """
    nroots = 2 + rt.gcstats[GS_NTYPEDSPANS] + rt.h[H_NGOROUTINES] + rt.gcstats[GS_NFIN] + rt.gcstats[GS_NFINBLOCKS]
    cap = rt.gcstats[GS_ROOTS_CAP]
    if cap == 0:
        cap = ROOTS_FIRST_CAP
        rt.mstats[ST_SYS] += cap * ROOT_BYTES
    while nroots > cap:
        rt.mstats[ST_SYS] += cap * ROOT_BYTES
        cap *= 2
    rt.gcstats[GS_ROOTS_CAP] = cap


@jit
def gc(rt, c, force):
    """runtime.gc: collect if enabled and (forced or the heap reached next_gc). True if it ran.

    Its machine code is the collector's unit (see units.py): callers reach it by address.
    """
    return call_unit(rt.code[UNIT_GC], UNIT_GC, runtime_ref(rt), c, force)


@jit
def gc_unit(rt, c, force):
    """The collector's unit: runtime.gc itself.

    GOGC=off disables it, as in the seed, unless the policy set a memory limit (then, as
    in Go >= 1.19, the limit alone paces it). GOGCTRACE >= 2 runs a second, forced
    collection after every automatic one, as in the seed.
    """
    if rt.mstats[ST_ENABLEGC] == 0 or (rt.h[H_GCPERCENT] < 0 and rt.h[H_MEMORY_LIMIT] < 0) or rt.h[H_IN_GC] != 0:
        return False
    segment = _stack_segment_alloc(rt, c)
    ran = _gc(rt, c, force)
    if segment > 0:
        free(rt, c, segment)  # reflect·call's segment is gone before the second collection
    if not force and rt.h[H_GCTRACE] > 1:
        ran = _gc(rt, c, True) or ran
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
    origin = rt.h[H_PROF_ORIGIN]
    rt.h[H_PROF_ORIGIN] = PROF_ORIGIN_PARFOR
    malloc_nogc(rt, c, nbytes, FLAG_NO_GC, True)
    malloc_nogc(rt, c, nbytes, FLAG_NO_GC, True)
    rt.h[H_PROF_ORIGIN] = origin


@jit
def gcprocs(rt):
    """work.nproc: the configured collector procs, at most MaxGcproc."""
    n = rt.h[H_NPROC]
    if n < 1:
        return 1
    if n > MAX_GCPROC:
        return MAX_GCPROC
    return n


@jit
def _fold_gcstats(rt, tr):
    """cachestats(&stats): every proc's handoff and getfull yield counts (zeroed), plus the sweepfor's."""
    for p in range(MAX_GCPROC):
        g = rt.gcproc[p]
        tr[TR_NHANDOFF] += g[GP_NHANDOFF]
        tr[TR_NHANDOFFCNT] += g[GP_NHANDOFFCNT]
        tr[TR_NPROCYIELD] += g[GP_NPROCYIELD]
        tr[TR_NOSYIELD] += g[GP_NOSYIELD]
        tr[TR_NSLEEP] += g[GP_NSLEEP]
        g[GP_NHANDOFF] = 0
        g[GP_NHANDOFFCNT] = 0
        g[GP_NPROCYIELD] = 0
        g[GP_NOSYIELD] = 0
        g[GP_NSLEEP] = 0
    sf = rt.parfor[PARFOR_SWEEP]
    tr[TR_NSTEAL] = sf[PF_NSTEAL]
    tr[TR_NSTEALCNT] = sf[PF_NSTEALCNT]
    tr[TR_NPROCYIELD] += sf[PF_NPROCYIELD]
    tr[TR_NOSYIELD] += sf[PF_NOSYIELD]
    tr[TR_NSLEEP] += sf[PF_NSLEEP]


@jit
def _gc(rt, c, force):
    if not force and rt.mstats[ST_HEAP_ALLOC] < rt.mstats[ST_NEXT_GC]:
        return False
    rt.h[H_IN_GC] = 1
    t0 = nanotime(rt)
    goal = rt.mstats[ST_NEXT_GC]
    ms = allm(rt)
    for k in ms:
        settype_flush(rt, k)
    heap0 = 0
    obj0 = 0
    if rt.h[H_GCTRACE] > 0:
        cachestats(rt)
        heap0 = rt.mstats[ST_HEAP_ALLOC]
        obj0 = rt.mstats[ST_NMALLOC] - rt.mstats[ST_NFREE]
    _parfor_alloc(rt, c)
    rt.gcstats[GS_MARKED] = 0
    rt.gcstats[GS_FREED] = 0
    rt.gcstats[GS_SCANNED_BYTES] = 0
    rt.gcstats[GS_NWAIT] = 0
    nproc = gcprocs(rt)
    rt.gcstats[GS_NPROC] = nproc
    nroot = addroots(rt, c)
    _account_roots(rt)
    nspan = rt.h[H_NSPAN]  # spans created during the sweep are not visited
    parforsetup(rt, PARFOR_MARK, nproc, nroot, False)
    parforsetup(rt, PARFOR_SWEEP, nproc, nspan, True)

    t1 = nanotime(rt)
    if nproc == 1:
        mark_serial(rt, nroot)
        t2 = nanotime(rt)
        for s in range(FIRST_SPAN, FIRST_SPAN + nspan):
            sweepspan(rt, c, s)
    else:
        t2 = gc_procs(rt, c, nproc)
    t3 = nanotime(rt)

    for k in ms:  # stealcache
        mcache_release_all(rt, k)
    cachestats(rt)
    row = rt.gcstats[GS_NTRACE] % rt.gctrace_log.shape[0]
    tr = rt.gctrace_log[row]
    tr[:] = 0
    _fold_gcstats(rt, tr)
    rt.h[H_HEAP_MARKED] = rt.mstats[ST_HEAP_ALLOC]
    rt.mstats[ST_NEXT_GC] = heap_goal(rt)
    pace_scavenger(rt, goal)
    mheap_scavenge_top(rt, scavenge_need(rt, 0))

    heap1 = rt.mstats[ST_HEAP_ALLOC]
    obj1 = rt.mstats[ST_NMALLOC] - rt.mstats[ST_NFREE]
    t4 = nanotime(rt)
    numgc = rt.mstats[ST_NUMGC]
    rt.mstats[ST_LAST_GC] = t4
    rt.pause_ns[numgc % PAUSE_HISTORY] = t4 - t0
    rt.mstats[ST_PAUSE_TOTAL_NS] += t4 - t0
    rt.mstats[ST_NUMGC] = numgc + 1

    tr[TR_NUMGC] = numgc + 1
    tr[TR_NPROC] = nproc
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
    tr[TR_START_NS] = t0
    tr[TR_GOAL] = goal
    tr[TR_PAUSE_TOTAL_NS] = rt.mstats[ST_PAUSE_TOTAL_NS]
    tr[TR_NEXT_GC] = rt.mstats[ST_NEXT_GC]
    tr[TR_HEAP_SYS] = rt.mstats[ST_HEAP_SYS]
    rt.gcstats[GS_NTRACE] += 1

    mprof_gc(rt)
    rt.h[H_IN_GC] = 0
    return True


@jit
def gc_repeat(rt, n, t_first, period):
    """Record n more forced collections at t_first, t_first + period, ..., each a repeat of the last one.

    For Heap.advance_clock over a quiet heap: when a forced collection on one proc changed
    nothing but the collector's own counters, and no mutator runs, every later one does
    exactly the same, so this writes what they would have written (NumGC, LastGC, the
    pause history, the gctrace rows: the last row, renumbered and re-timed) without running them.
    Their cost stays O(the rings' sizes).
    """
    if n <= 0:
        return
    log = rt.gctrace_log
    nrows = log.shape[0]
    last = log[(rt.gcstats[GS_NTRACE] - 1) % nrows].copy()
    pause = last[TR_PAUSE_NS]
    numgc = rt.mstats[ST_NUMGC]
    ntrace = rt.gcstats[GS_NTRACE]
    pause_total = rt.mstats[ST_PAUSE_TOTAL_NS]
    for k in range(max(0, n - nrows), n):
        row = log[(ntrace + k) % nrows]
        row[:] = last
        row[TR_NUMGC] = numgc + k + 1
        row[TR_START_NS] = t_first + k * period
        row[TR_PAUSE_TOTAL_NS] = pause_total + (k + 1) * pause
    for k in range(max(0, n - PAUSE_HISTORY), n):
        rt.pause_ns[(numgc + k) % PAUSE_HISTORY] = pause
    rt.gcstats[GS_NTRACE] = ntrace + n
    rt.mstats[ST_NUMGC] = numgc + n
    rt.mstats[ST_PAUSE_TOTAL_NS] += n * pause
    rt.mstats[ST_LAST_GC] = t_first + (n - 1) * period + pause
