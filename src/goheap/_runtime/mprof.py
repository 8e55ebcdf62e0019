"""Memory profiling: mprof.goc. See :mod:`goheap._runtime.malloc` for the overview.

mallocgc samples one allocation every MemProfileRate bytes on average (the draw is in
``malloc_nogc``) and calls :func:`mprof_malloc`, which charges it to the *bucket* of the
allocating call stack and remembers the address's bucket; :func:`mprof_free` charges the
free back when a sampled block is freed (explicitly or by the sweep). Counts go to
``recent_*`` first and become the profile's totals only at the next collection
(:func:`mprof_gc`), so a profile always shows the heap as of the last GC, as in Go.

Buckets are identified by the caller: ``h[H_PROF_STACK]`` holds the id of the stack to
charge (interned by the Python shell, see ``goheap.profile``); compiled mutators set it to
the id of their own function. An allocation the runtime makes for itself (type arrays,
the collector's descriptors, the finalizer table: ``h[H_PROF_ORIGIN]`` says which) is
charged, as Go charges it, to the runtime function that made it, called from the
program's stack: a *derived* bucket per (stack, origin), taken from the top of the table
(the shell's own buckets fill it from the bottom) and named by the shell. Sys is charged for the seed's bucket hash table (179999
pointers, BuckHashSys) and its first 128 KB bucket pool chunk when the first bucket is
created.
"""

from __future__ import annotations

from ._jit import jit
from .constants import FIX_ALLOC_CHUNK
from .layout import (
    GS_PROF_NBUCKET,
    GS_PROF_NDERIVED,
    H_ARENA_START,
    H_PROF_NSTACKS,
    H_PROF_ORIGIN,
    H_PROF_STACK,
    PB_ALLOC_BYTES,
    PB_ALLOCS,
    PB_DERIVED,
    PB_FREE_BYTES,
    PB_FREES,
    PB_ORIGIN,
    PB_PARENT,
    PB_RECENT_ALLOC_BYTES,
    PB_RECENT_ALLOCS,
    PB_RECENT_FREE_BYTES,
    PB_RECENT_FREES,
    ST_BUCKHASH_SYS,
    ST_SYS,
)

BUCK_HASH_SIZE = 179999
BUCK_HASH_BYTES = BUCK_HASH_SIZE * 8


@jit
def mprof_malloc(rt, c, v, size):
    """Record a sampled allocation of ``size`` bytes at v in the current stack's bucket."""
    if rt.mstats[ST_BUCKHASH_SYS] == 0:
        rt.mstats[ST_BUCKHASH_SYS] = BUCK_HASH_BYTES
        rt.mstats[ST_SYS] += BUCK_HASH_BYTES + FIX_ALLOC_CHUNK
    b = rt.h[H_PROF_STACK]
    if b < 0 or b >= rt.prof.shape[0]:
        b = 0
    if b >= rt.gcstats[GS_PROF_NBUCKET]:
        rt.gcstats[GS_PROF_NBUCKET] = b + 1
    origin = rt.h[H_PROF_ORIGIN]
    if origin > 0:
        b = _derived_bucket(rt, b, origin)
    rt.prof[b, PB_RECENT_ALLOCS] += 1
    rt.prof[b, PB_RECENT_ALLOC_BYTES] += size
    rt.profaddr[(v - rt.h[H_ARENA_START]) >> 3] = b + 1


@jit
def _derived_bucket(rt, b, origin):
    """The bucket of runtime function ``origin`` called from stack ``b``; made on first use (0 when full)."""
    d = rt.prof[b, PB_DERIVED + origin - 1]
    if d != 0:
        return d
    top = rt.prof.shape[0] - 1 - rt.gcstats[GS_PROF_NDERIVED]
    if top < rt.h[H_PROF_NSTACKS] or top < rt.gcstats[GS_PROF_NBUCKET]:
        return 0
    rt.gcstats[GS_PROF_NDERIVED] += 1
    rt.prof[b, PB_DERIVED + origin - 1] = top
    rt.prof[top, PB_PARENT] = b + 1
    rt.prof[top, PB_ORIGIN] = origin
    return top


@jit
def mprof_free(rt, v, size):
    """Charge the free of the sampled block at v to the bucket that allocated it."""
    i = (v - rt.h[H_ARENA_START]) >> 3
    b = rt.profaddr[i] - 1
    rt.profaddr[i] = 0
    if b >= 0:
        rt.prof[b, PB_RECENT_FREES] += 1
        rt.prof[b, PB_RECENT_FREE_BYTES] += size


@jit
def mprof_gc(rt):
    """A collection happened: the recent counts become the profile's totals."""
    top = rt.prof.shape[0]
    for k in range(rt.gcstats[GS_PROF_NBUCKET] + rt.gcstats[GS_PROF_NDERIVED]):
        b = k if k < rt.gcstats[GS_PROF_NBUCKET] else top - 1 - (k - rt.gcstats[GS_PROF_NBUCKET])
        p = rt.prof[b]
        p[PB_ALLOCS] += p[PB_RECENT_ALLOCS]
        p[PB_FREES] += p[PB_RECENT_FREES]
        p[PB_ALLOC_BYTES] += p[PB_RECENT_ALLOC_BYTES]
        p[PB_FREE_BYTES] += p[PB_RECENT_FREE_BYTES]
        p[PB_RECENT_ALLOCS] = 0
        p[PB_RECENT_FREES] = 0
        p[PB_RECENT_ALLOC_BYTES] = 0
        p[PB_RECENT_FREE_BYTES] = 0
