"""Per-thread caches: mcache.c. See :mod:`goheap._runtime.malloc` for the overview.

Each Python thread that allocates gets an MCache (the seed has one per M, the OS thread
running Go code): for every size class a LIFO list of free objects, taken from the
MCentral a transfer batch at a time, so that most allocations touch no shared state.
The cache also holds this thread's stat deltas (``local_*``), folded into MStats only
when the thread takes the heap lock or the world stops; the GC trigger reads the lagging
heap_alloc, exactly as in the seed.

Invariant: size == sum over classes of nlist * class size.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, jit_inline
from .constants import MAX_MCACHE_LIST_LEN, MAX_MCACHE_SIZE
from .fixalloc import FIX_EXHAUSTED, fixalloc_alloc, fixalloc_free
from .layout import (
    BY_SIZE_NFREE,
    BY_SIZE_NMALLOC,
    FA_CACHE,
    FA_INUSE,
    FA_SYS,
    H_FASTRAND,
    H_M_SEQ,
    H_MEMPROFILE_RATE,
    L_LIST,
    L_NLIST,
    L_NLISTMIN,
    LC_ALLOC_PATH,
    LC_FREE_NEXT,
    LC_INUSE,
    LC_LOCAL_CACHEALLOC,
    LC_LOCAL_OBJECTS,
    LC_M_SEQ,
    LC_NEXT_SAMPLE,
    LC_SHADOW_SP,
    LC_SIZE,
    PATH_MEMCLR,
    PATH_REFILL,
    ST_MCACHE_INUSE,
    ST_MCACHE_SYS,
)
from .mcentral import mcentral_alloc_list, mcentral_free_list
from .mheap import load, memclr, purgecachedstats, store


@jit
def fastrand1(rt):
    """The seed's fastrand1: a 32-bit xorshift-like generator (state in h[H_FASTRAND])."""
    x = rt.h[H_FASTRAND]
    x += x
    if x & 0x80000000:
        x ^= 0x88888EEF
    x &= 0xFFFFFFFF
    rt.h[H_FASTRAND] = x
    return x


@jit
def allocmcache(rt):
    """A new, empty MCache row; -1 when every row is taken."""
    row = fixalloc_alloc(rt, FA_CACHE, rt.cache_local[:, LC_FREE_NEXT])
    if row == FIX_EXHAUSTED:
        return -1
    if row < 0:
        row = -row - 1
    rt.mstats[ST_MCACHE_INUSE] = rt.fixalloc[FA_CACHE, FA_INUSE]
    rt.mstats[ST_MCACHE_SYS] = rt.fixalloc[FA_CACHE, FA_SYS]
    rt.cache_list[row, :, :] = 0
    rt.cache_local[row, :] = 0
    rt.cache_by_size[row, :, :] = 0
    rt.cache_local[row, LC_INUSE] = 1
    rt.h[H_M_SEQ] += 1
    rt.cache_local[row, LC_M_SEQ] = rt.h[H_M_SEQ]  # mcommoninit puts the new M at the head of allm
    rate = rt.h[H_MEMPROFILE_RATE]
    if rate > 0:
        if rate > 0x3FFFFFFF:
            rate = 0x3FFFFFFF
        rt.cache_local[row, LC_NEXT_SAMPLE] = fastrand1(rt) % (2 * rate)
    return row


@jit
def freemcache(rt, c):
    """A thread is gone: release everything cached in c, fold its stats, and free the row.

    As the seed's freemcache (which leaves MCacheInuse alone), and also folds the cache's
    BySize counts, which the seed folds only in cachestats: its Ms never exit, goheap's
    threads do (see Departures). The thread's shadow stack is cleared with it.
    """
    mcache_release_all(rt, c)
    purgecachedstats(rt, c)
    for i in range(rt.by_size.shape[0]):
        rt.by_size[i, BY_SIZE_NMALLOC] += rt.cache_by_size[c, i, 0]
        rt.by_size[i, BY_SIZE_NFREE] += rt.cache_by_size[c, i, 1]
    rt.cache_by_size[c, :, :] = 0
    rt.shadow[c, : rt.cache_local[c, LC_SHADOW_SP]] = 0
    rt.cache_local[c, LC_SHADOW_SP] = 0
    rt.cache_local[c, LC_INUSE] = 0
    fixalloc_free(rt, FA_CACHE, rt.cache_local[:, LC_FREE_NEXT], c)


@jit_inline
def mcache_alloc(rt, c, sizeclass, size, zeroed):
    """Pop an object of ``sizeclass`` from cache c, refilling from the central list; 0 when out of memory."""
    lst = rt.cache_list[c, sizeclass]
    lc = rt.cache_local[c]
    v = lst[L_LIST]
    if v == 0:
        lc[LC_ALLOC_PATH] |= PATH_REFILL
        v = mcache_refill(rt, c, sizeclass, size)
        if v == 0:
            return 0
    lst[L_LIST] = load(rt, v)
    lst[L_NLIST] -= 1
    if lst[L_NLIST] < lst[L_NLISTMIN]:
        lst[L_NLISTMIN] = lst[L_NLIST]
    lc[LC_SIZE] -= size
    store(rt, v, 0)  # v->next = nil
    if zeroed and size > 8 and load(rt, v + 8) != 0:
        lc[LC_ALLOC_PATH] |= PATH_MEMCLR
        memclr(rt, v, size)  # word 1 non-zero: the object is dirty
    lc[LC_LOCAL_CACHEALLOC] += size
    lc[LC_LOCAL_OBJECTS] += 1
    return v


@jit
def mcache_refill(rt, c, sizeclass, size):
    """The list of ``sizeclass`` is empty: install a transfer batch from the MCentral; its head, or 0.

    (Inline in the seed's MCache_Alloc; apart here so that the common case stays small
    enough for LLVM to inline into mallocgc.)
    """
    n, first = mcentral_alloc_list(rt, c, sizeclass, rt.class_to_transfercount[sizeclass])
    if n == 0:
        return 0
    rt.cache_list[c, sizeclass, L_LIST] = first
    rt.cache_list[c, sizeclass, L_NLIST] = n
    rt.cache_local[c, LC_SIZE] += n * size
    return first


@jit_inline
def mcache_free(rt, c, v, sizeclass, size):
    """Push v on cache c's list; release a batch past 256 entries, scavenge past 2 MB."""
    lst = rt.cache_list[c, sizeclass]
    lc = rt.cache_local[c]
    store(rt, v, lst[L_LIST])
    lst[L_LIST] = v
    lst[L_NLIST] += 1
    lc[LC_SIZE] += size
    lc[LC_LOCAL_CACHEALLOC] -= size
    lc[LC_LOCAL_OBJECTS] -= 1
    if lst[L_NLIST] >= MAX_MCACHE_LIST_LEN:
        mcache_release_n(rt, c, sizeclass, rt.class_to_transfercount[sizeclass])
    if lc[LC_SIZE] >= MAX_MCACHE_SIZE:
        mcache_scavenge(rt, c)


@jit
def mcache_scavenge(rt, c):
    """The cache holds 2 MB: give back half of each list's low-water mark (at least one), reset the marks."""
    for i in range(rt.cache_list.shape[1]):
        n = rt.cache_list[c, i, L_NLISTMIN]
        if n > 0:
            if n > 1:
                n //= 2
            mcache_release_n(rt, c, i, n)
        rt.cache_list[c, i, L_NLISTMIN] = rt.cache_list[c, i, L_NLIST]


@jit
def mcache_release_n(rt, c, sizeclass, n):
    """Cut the first n objects off the list and return them to the central list."""
    lst = rt.cache_list[c, sizeclass]
    first = lst[L_LIST]
    last = first
    for _ in range(n - 1):
        last = load(rt, last)
    lst[L_LIST] = load(rt, last)
    store(rt, last, 0)
    lst[L_NLIST] -= n
    if lst[L_NLIST] < lst[L_NLISTMIN]:
        lst[L_NLISTMIN] = lst[L_NLIST]
    rt.cache_local[c, LC_SIZE] -= n * rt.class_to_size[sizeclass]
    mcentral_free_list(rt, c, sizeclass, first)


@jit
def mcache_release_all(rt, c):
    """Return every cached object to the central lists (the GC does this for every cache)."""
    for i in range(rt.cache_list.shape[1]):
        if rt.cache_list[c, i, L_LIST] != 0:
            mcache_release_n(rt, c, i, rt.cache_list[c, i, L_NLIST])
        rt.cache_list[c, i, L_NLISTMIN] = 0


@jit
def allm(rt):
    """The rows of the caches in use, in the order of the seed's allm list: newest M first
    (the collector flushes their settype buffers and releases their objects in that order)."""
    rows = np.nonzero(rt.cache_local[:, LC_INUSE])[0]
    seq = np.empty(rows.size, np.int64)
    for i in range(rows.size):
        seq[i] = -rt.cache_local[rows[i], LC_M_SEQ]
    return rows[np.argsort(seq, kind="mergesort")]
