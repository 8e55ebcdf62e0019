"""Roots: addroots of mgc0.c, and the registered regions. See :mod:`goheap._runtime.gc` for the phases.

Each collection lists its roots in ``gcroots`` in the seed's order (data, bss, span type
arrays, stacks, objects with finalizers, FinBlocks); the mark phase's parallel for then
visits them by index, as the seed's ``markroot`` visits ``work.roots``. goheap's roots
stand where the seed's do:

=============== ============================================ ===================================
root kind       goheap                                       the seed
=============== ============================================ ===================================
RK_HANDLES      ``heap.roots`` handles, one array of words   data (a global variable each)
RK_REGION       each region registered with ``add_region``   bss (globals)
RK_SPANTYPES    span.types.data of Words/Bytes spans         the same
RK_SHADOW       each thread's shadow stack                   each goroutine's stack
RK_BLOCK        each object with a finalizer: its contents   the same (walkfintab, addfinroots)
RK_FINBLOCK     each FinBlock of queued finalizer arguments  the same
=============== ============================================ ===================================

A registered region is memory the user owns (a numpy array, a nogc block): scanned
conservatively (every word) or precisely (only the words its pointer bitmap names). It may
live outside the heap's reservation, so the mark phase reads it with ``rawmem.load_raw``.
"""

from __future__ import annotations

from .._jit import jit
from ..constants import MSPAN_IN_USE, MTYPES_BYTES, MTYPES_WORDS
from ..layout import (
    FINBLOCK_CAP,
    FINTAB_SHARDS,
    FIRST_SPAN,
    FT_KEY,
    FT_MAX,
    GR_A,
    GR_B,
    GR_KIND,
    GS_NFINBLOCKS,
    GS_NGCROOTS,
    GS_NROOTS,
    GS_NTYPEDSPANS,
    H_BASE,
    H_NSPAN,
    LC_INUSE,
    LC_LOCAL_NLOOKUP,
    RG_KIND,
    RK_BLOCK,
    RK_FINBLOCK,
    RK_HANDLES,
    RK_REGION,
    RK_SHADOW,
    RK_SPANTYPES,
    ROOT_NONE,
    SP_ELEMSIZE,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    H_NROOTSLOTS,
)
from ..mheap import mheap_lookup

@jit
def _addroot(rt, n, kind, a, b):
    if n >= rt.gcroots.shape[0]:
        raise MemoryError("goheap: more roots than the gcroots table holds")
    r = rt.gcroots[n]
    r[GR_KIND] = kind
    r[GR_A] = a
    r[GR_B] = b
    return n + 1


@jit
def addroots(rt, c):
    """Fill gcroots with this collection's roots, in the seed's order; returns their number.

    Like the seed's addfinroots, each object with a finalizer is found with mlookup, which
    counts in MemStats.Lookups.
    """
    n = 0
    n = _addroot(rt, n, RK_HANDLES, rt.h[H_NROOTSLOTS], 0)
    for r in range(rt.gcstats[GS_NROOTS]):
        if rt.roots[r, RG_KIND] != ROOT_NONE:
            n = _addroot(rt, n, RK_REGION, r, 0)
    ntyped = 0
    for s in range(FIRST_SPAN, FIRST_SPAN + rt.h[H_NSPAN]):
        if rt.spans[s, SP_STATE] == MSPAN_IN_USE:
            comp = rt.spans[s, SP_TYPES_COMPRESSION]
            if comp == MTYPES_WORDS or comp == MTYPES_BYTES:
                n = _addroot(rt, n, RK_SPANTYPES, s, 0)
                ntyped += 1
    rt.gcstats[GS_NTYPEDSPANS] = ntyped
    for k in range(rt.shadow.shape[0]):
        if rt.cache_local[k, LC_INUSE] != 0:
            n = _addroot(rt, n, RK_SHADOW, k, 0)
    # walkfintab: shard by shard, each key array in order
    base = rt.h[H_BASE]
    for t in range(FINTAB_SHARDS):
        key = rt.fintab[t, FT_KEY]
        for i in range(rt.fintab[t, FT_MAX]):
            p = rt.mem[((key - base) >> 3) + i]
            if p != 0 and p != -1:
                rt.cache_local[c, LC_LOCAL_NLOOKUP] += 1
                s = mheap_lookup(rt, p)
                n = _addroot(rt, n, RK_BLOCK, p, rt.spans[s, SP_ELEMSIZE])
    for k in range(rt.gcstats[GS_NFINBLOCKS]):
        n = _addroot(rt, n, RK_FINBLOCK, k, 0)
    rt.gcstats[GS_NGCROOTS] = n
    return n


@jit
def finblock_range(rt, k, nfinq):
    """The queue entries [lo, hi) that FinBlock k holds: the k-th run of 169 (possibly none)."""
    lo = k * FINBLOCK_CAP
    hi = lo + FINBLOCK_CAP
    if hi > nfinq:
        hi = nfinq
    if lo > hi:
        lo = hi
    return lo, hi
