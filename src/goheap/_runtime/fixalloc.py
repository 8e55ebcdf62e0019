"""Fixed-size allocators: mfixalloc.c.

See :mod:`goheap._runtime.malloc` for the overview.

The seed carves MSpan and MCache records out of 128 KB chunks it gets from SysAlloc and
never gives back, keeping freed records on a LIFO list. Here the records are rows of
arrays that were sized from the arena when the heap was built, so a FixAlloc hands out
row numbers; its bookkeeping (chunks taken, bytes in use, the LIFO reuse order) is the
seed's, and so are the MemStats it feeds (MSpanInuse/Sys, MCacheInuse/Sys, part of Sys).
The caller holds the heap lock.
"""

from __future__ import annotations

from ._jit import jit
from .constants import FIX_ALLOC_CHUNK
from .layout import FA_CAP, FA_INUSE, FA_LIST, FA_NCHUNK, FA_NEXT, FA_SIZE, FA_SYS, ST_SYS

FIX_EXHAUSTED = -(1 << 62)


@jit
def fixalloc_alloc(rt, fa, links):
    """A record of allocator ``fa``: a recycled one (LIFO) or, as -(row) - 1, a never-used one.

    ``links[row]`` is where a free row stores the next free row + 1 (the seed keeps the
    link in the record's first word). Returns FIX_EXHAUSTED when the rows run out.
    A never-used row is returned negated so that the caller can run the ``first`` hook.
    """
    f = rt.fixalloc[fa]
    if f[FA_LIST] != 0:
        row = f[FA_LIST] - 1
        f[FA_LIST] = links[row]
        links[row] = 0
        f[FA_INUSE] += f[FA_SIZE]
        return row
    if f[FA_NEXT] >= f[FA_CAP]:
        return FIX_EXHAUSTED
    if f[FA_NCHUNK] < f[FA_SIZE]:
        # the rest of the old chunk is abandoned, as in the seed
        f[FA_SYS] += FIX_ALLOC_CHUNK
        rt.mstats[ST_SYS] += FIX_ALLOC_CHUNK
        f[FA_NCHUNK] = FIX_ALLOC_CHUNK
    f[FA_NCHUNK] -= f[FA_SIZE]
    row = f[FA_NEXT]
    f[FA_NEXT] += 1
    f[FA_INUSE] += f[FA_SIZE]
    return -row - 1


@jit
def fixalloc_free(rt, fa, links, row):
    """Return ``row`` to allocator ``fa``'s LIFO list."""
    f = rt.fixalloc[fa]
    f[FA_INUSE] -= f[FA_SIZE]
    links[row] = f[FA_LIST]
    f[FA_LIST] = row + 1
