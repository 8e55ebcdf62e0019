"""The finalizer table and queue, compiled side: mfinal.c and the FinBlocks of mgc0.c.

See :mod:`goheap._runtime.gc` for the collector's phases. The Python shell keeps the
callables (``Heap.set_finalizer``); here is what the collector sees.

*Table.* As in the seed: 17 shards (shard ``(p >> 3) % 17``), each an open-addressed
array of keys with linear probing from ``p % max``, 0 for empty and -1 for a deleted
entry. A shard's key array (``max`` words, no pointers) and value array (``max`` Fin
records of 16 bytes) are heap blocks, allocated without triggering a collection when the
shard is first used (max 27) and whenever it reaches 3/4 full counting deleted entries
(max x3, or the same max when at least half the entries are deleted); the old arrays are
freed. The arrays are allocated FlagNoGC: the seed keeps them alive through the
runtime's bss, which goheap does not have. The value arrays stay zero (the functions are
Python objects, kept by the shell).

*Queue.* Objects whose finalizers are ready wait in ``finq``, in page-sized FinBlocks of
169 entries: a new FinBlock is SysAlloc'd (4 KB of Sys) only when every block allocated so
far is full; the runner recycles them all.
"""

from __future__ import annotations

from .._jit import jit
from ..bitmap import setblockspecial
from ..constants import FINBLOCK_BYTES, FLAG_NO_GC, FLAG_NO_POINTERS
from ..layout import (
    E_OUT_OF_MEMORY,
    FINBLOCK_CAP,
    FINTAB_SHARDS,
    FT_KEY,
    FT_MAX,
    FT_NDEAD,
    FT_NKEY,
    FT_VAL,
    GS_NFIN,
    GS_NFINBLOCKS,
    GS_NFINQ,
    H_BASE,
    H_MAX_FINALIZERS,
    ST_SYS,
    H_PROF_ORIGIN,
    PROF_ORIGIN_FINALIZER,
)
from ..malloc import free, malloc_nogc
from ..mprof import mprof_free

FINTAB_INITIAL_MAX = 3 * 3 * 3
FIN_BYTES = 16  # sizeof(Fin): fn, nret
_DELETED = -1


@jit
def fintab_shard(p):
    return (p >> 3) % FINTAB_SHARDS


@jit
def _key_index(rt, key, i):
    return ((key - rt.h[H_BASE]) >> 3) + i


@jit
def addfintab(rt, t, k):
    """Insert k into shard t, which has room (reusing a deleted slot if the probe meets one first)."""
    tab = rt.fintab[t]
    mx = tab[FT_MAX]
    i = k % mx
    for _ in range(mx):
        j = _key_index(rt, tab[FT_KEY], i)
        key = rt.mem[j]
        if key == 0:
            tab[FT_NKEY] += 1
            rt.mem[j] = k
            return
        if key == _DELETED:
            tab[FT_NDEAD] -= 1
            rt.mem[j] = k
            return
        i += 1
        if i == mx:
            i = 0
    raise RuntimeError("goheap: finalizer table inconsistent")


@jit
def lookfintab(rt, t, k, delete):
    """Whether shard t holds k; with delete, mark its entry deleted."""
    tab = rt.fintab[t]
    mx = tab[FT_MAX]
    if mx == 0:
        return False
    i = k % mx
    for _ in range(mx):
        j = _key_index(rt, tab[FT_KEY], i)
        key = rt.mem[j]
        if key == 0:
            return False
        if key == k:
            if delete:
                rt.mem[j] = _DELETED
                tab[FT_NDEAD] += 1
            return True
        i += 1
        if i == mx:
            i = 0
    return False


@jit
def resizefintab(rt, c, t):
    """Rehash shard t into new arrays (x3 unless half the entries are deleted); False if out of memory."""
    tab = rt.fintab[t]
    mx = tab[FT_MAX]
    newmax = mx
    if newmax == 0:
        newmax = FINTAB_INITIAL_MAX
    elif tab[FT_NDEAD] < tab[FT_NKEY] // 2:
        newmax *= 3
    origin = rt.h[H_PROF_ORIGIN]
    rt.h[H_PROF_ORIGIN] = PROF_ORIGIN_FINALIZER
    newkey = malloc_nogc(rt, c, newmax * 8, FLAG_NO_POINTERS | FLAG_NO_GC, True)
    newval = malloc_nogc(rt, c, newmax * FIN_BYTES, FLAG_NO_GC, True) if newkey >= 0 else -1
    rt.h[H_PROF_ORIGIN] = origin
    if newkey < 0:
        return False
    if newval < 0:
        free(rt, c, newkey)
        return False
    oldkey = tab[FT_KEY]
    oldval = tab[FT_VAL]
    tab[FT_KEY] = newkey
    tab[FT_VAL] = newval
    tab[FT_MAX] = newmax
    tab[FT_NKEY] = 0
    tab[FT_NDEAD] = 0
    for i in range(mx):
        k = rt.mem[_key_index(rt, oldkey, i)]
        if k != 0 and k != _DELETED:
            addfintab(rt, t, k)
    free(rt, c, oldkey)
    free(rt, c, oldval)
    return True


@jit
def addfinalizer(rt, c, p):
    """Give the block at p a finalizer: 1, or 0 if it has one already, or E_OUT_OF_MEMORY.

    E_OUT_OF_MEMORY also when ``Limits.finalizers`` blocks have finalizers already.
    """
    t = fintab_shard(p)
    if lookfintab(rt, t, p, False):
        return 0
    if rt.gcstats[GS_NFIN] >= rt.h[H_MAX_FINALIZERS]:
        return E_OUT_OF_MEMORY  # goheap's limit, not the seed's
    tab = rt.fintab[t]
    if tab[FT_NKEY] >= tab[FT_MAX] // 2 + tab[FT_MAX] // 4:
        if not resizefintab(rt, c, t):
            return E_OUT_OF_MEMORY
    addfintab(rt, t, p)
    setblockspecial(rt, p, True)
    rt.gcstats[GS_NFIN] += 1
    return 1


@jit
def getfinalizer(rt, p, delete):
    """Whether p has a finalizer; with delete, forget it (the special bit is the caller's business)."""
    found = lookfintab(rt, fintab_shard(p), p, delete)
    if found and delete:
        rt.gcstats[GS_NFIN] -= 1
    return found


@jit
def finq_push(rt, p):
    """Queue p's finalizer; False if goheap's queue is full (the object then waits a cycle)."""
    n = rt.gcstats[GS_NFINQ]
    if n >= rt.finq.shape[0]:
        return False
    if n % FINBLOCK_CAP == 0 and n // FINBLOCK_CAP >= rt.gcstats[GS_NFINBLOCKS]:
        # every FinBlock is full: SysAlloc another page
        rt.gcstats[GS_NFINBLOCKS] += 1
        rt.mstats[ST_SYS] += FINBLOCK_BYTES
    rt.finq[n] = p
    rt.gcstats[GS_NFINQ] = n + 1
    return True


@jit
def finq_take(rt):
    """runfinq's first step: the queued objects, oldest first, and the queue emptied, in one step."""
    n = rt.gcstats[GS_NFINQ]
    queue = rt.finq[:n].copy()
    rt.finq[:n] = 0
    rt.gcstats[GS_NFINQ] = 0
    return queue


@jit
def finq_remove(rt, p):
    """Take p out of the queue if it waits there (goheap's free of a block whose finalizer is queued)."""
    n = rt.gcstats[GS_NFINQ]
    for k in range(n):
        if rt.finq[k] == p:
            for j in range(k, n - 1):
                rt.finq[j] = rt.finq[j + 1]
            rt.finq[n - 1] = 0
            rt.gcstats[GS_NFINQ] = n - 1
            return True
    return False


@jit
def handlespecial(rt, p, size):
    """An unreachable special block: queue its finalizer and keep it (True), or settle its profile record."""
    if getfinalizer(rt, p, False):
        if finq_push(rt, p):
            getfinalizer(rt, p, True)
        return True
    setblockspecial(rt, p, False)
    mprof_free(rt, p, size)
    return False
