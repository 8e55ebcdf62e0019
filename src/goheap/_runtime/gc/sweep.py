"""Sweep: sweepspan of mgc0.c (handlespecial is in ``finalizers.py``). See :mod:`goheap._runtime.gc`."""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..bitmap import unmarkspan
from ..constants import (
    BIT_ALLOCATED,
    BIT_BLOCK_BOUNDARY,
    BIT_MARKED,
    BIT_MASK,
    BIT_SPECIAL,
    MSPAN_IN_USE,
    MTYPES_BYTES,
    MTYPES_BYTES_SLOTS,
    MTYPES_WORDS,
)
from ..layout import (
    GS_FREED,
    H_ARENA_START,
    H_BASE,
    H_PAGE_SHIFT,
    LC_LOCAL_ALLOC,
    LC_LOCAL_CACHEALLOC,
    LC_LOCAL_NFREE,
    LC_LOCAL_OBJECTS,
    SP_ELEMSIZE,
    SP_SIZECLASS,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    SP_TYPES_DATA,
)
from ..mcentral import mcentral_free_span
from ..mheap import mheap_free, span_base, span_bytes, store
from .finalizers import handlespecial

_ALLOC = np.int64(BIT_ALLOCATED)
_MARKED = np.int64(BIT_MARKED)
_SPECIAL = np.int64(BIT_SPECIAL)
_MASK = np.int64(BIT_MASK)
_BOUNDARY = np.int64(BIT_BLOCK_BOUNDARY)


@jit
def sweepspan(rt, c, s):
    """Free the unmarked blocks of span s; unmark the marked ones."""
    spans = rt.spans
    if spans[s, SP_STATE] != MSPAN_IN_USE:
        return
    cl = spans[s, SP_SIZECLASS]
    nbytes = span_bytes(rt, s)
    if cl == 0:
        size = nbytes
        n = 1
    else:
        size = spans[s, SP_ELEMSIZE]
        n = nbytes // size
    p = span_base(rt, s)
    compression = spans[s, SP_TYPES_COMPRESSION]
    type_data = spans[s, SP_TYPES_DATA]
    base = rt.h[H_BASE]
    arena_start = rt.h[H_ARENA_START]
    bitbase = (arena_start - base) >> 3
    lc = rt.cache_local[c]
    # the arrays once, in locals: read from rt inside the loop they would be reloaded after every store
    mem = rt.mem
    mem8 = rt.mem8
    nfree = 0
    freed = 0
    head = 0
    end = 0
    for i in range(n):
        off = (p - arena_start) >> 3
        bitp = bitbase - (off >> 4) - 1
        shift = off & 15
        bits = mem[bitp] >> shift
        if (bits & _ALLOC) == 0:
            p += size
            continue
        if (bits & _MARKED) != 0:
            mem[bitp] &= ~(_MARKED << shift)
            p += size
            continue
        if (bits & _SPECIAL) != 0:
            if handlespecial(rt, p, size):
                p += size
                continue
        # free it: boundary bit only
        mem[bitp] = (mem[bitp] & ~(_MASK << shift)) | (_BOUNDARY << shift)
        freed += 1
        if cl == 0:
            unmarkspan(rt, p, 1 << rt.h[H_PAGE_SHIFT])
            store(rt, p, 1)  # needs zeroing
            mheap_free(rt, c, s, True)
            lc[LC_LOCAL_ALLOC] -= size
            lc[LC_LOCAL_NFREE] += 1
        else:
            if compression == MTYPES_WORDS:
                mem[(type_data - base >> 3) + i] = 0
            elif compression == MTYPES_BYTES:
                mem8[type_data + MTYPES_BYTES_SLOTS * 8 + i - base] = 0
            if size > 8:
                mem[(p - base >> 3) + 1] = 1  # needs zeroing
            if head == 0:
                head = p
            else:
                mem[end - base >> 3] = p
            end = p
            nfree += 1
        p += size
    rt.gcstats[GS_FREED] += freed
    if nfree > 0:
        rt.cache_by_size[c, cl, 1] += nfree
        lc[LC_LOCAL_ALLOC] -= size * nfree
        lc[LC_LOCAL_NFREE] += nfree
        lc[LC_LOCAL_CACHEALLOC] -= size * nfree
        lc[LC_LOCAL_OBJECTS] -= nfree
        mcentral_free_span(rt, c, cl, s, nfree, head, end)
