"""Mark: the roots and scanblock of mgc0.c. See :mod:`goheap._runtime.gc` for the phases.

The seed stages candidate pointers in fixed buffers and flushes them in two phases
(find the block start without a lock, then mark under one); with one marking thread the
two phases collapse into :func:`mark_candidate`, which does the same steps in the same
order for each pointer. The work list is a LIFO stack of (block, nbytes, type info) like
the seed's Workbufs; its peak depth drives the seed's Workbuf Sys accounting.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..constants import (
    BIT_ALLOCATED,
    BIT_BLOCK_BOUNDARY,
    BIT_MARKED,
    BIT_NO_POINTERS,
    MSPAN_IN_USE,
    MTYPES_BYTES,
    MTYPES_WORDS,
    PAGE_SHIFT,
    TYPEINFO_ARRAY,
    TYPEINFO_MAP,
)
from ..layout import (
    GS_MARKED,
    GS_NFINQ,
    GS_NROOTS,
    GS_SCANNED_BYTES,
    GS_WORKBUF_PEAK,
    H_ARENA_START,
    H_ARENA_USED,
    H_BASE,
    H_NROOTSLOTS,
    H_NSPAN,
    LC_INUSE,
    LC_SHADOW_SP,
    ROOT_OBJECT,
    FIRST_SPAN,
    SP_ELEMSIZE,
    SP_LIMIT,
    SP_NPAGES,
    SP_SIZECLASS,
    SP_START,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    SP_TYPES_DATA,
    TD_NPTRS,
    TD_PTR_START,
    TD_SIZE,
    TYPE_TAG_BITS,
)
from ..malloc import gettype
from ..mheap import load

_ALLOC = np.int64(BIT_ALLOCATED)
_ALLOC_OR_BOUNDARY = np.int64(BIT_ALLOCATED | BIT_BLOCK_BOUNDARY)
_ALLOC_OR_MARKED = np.int64(BIT_ALLOCATED | BIT_MARKED)
_MARKED = np.int64(BIT_MARKED)
_NOPTR = np.int64(BIT_NO_POINTERS)
_PRECISE = 1  # flag bit of a type-info word passed with a block: scan with its type


@jit
def mark_candidate(rt, obj, ti, sp):
    """One candidate pointer (flushptrbuf): find its block, mark it, queue it if it has pointers.

    ``sp`` is the work-list depth; returns the new depth.
    """
    arena_start = rt.h[H_ARENA_START]
    if obj < arena_start or obj >= rt.h[H_ARENA_USED]:
        return sp
    if obj & 7:
        obj &= ~7
        ti = 0
    off = (obj - arena_start) >> 3
    bitp = ((arena_start - rt.h[H_BASE]) >> 3) - (off >> 4) - 1
    shift = off & 15
    xbits = rt.mem[bitp]
    bits = xbits >> shift
    if (bits & _ALLOC_OR_BOUNDARY) == 0:
        ti = 0
        found = False
        # pointing just past a block start? look back within this bitmap word
        j = shift - 1
        while j >= 0:
            if ((xbits >> j) & _ALLOC_OR_BOUNDARY) != 0:
                obj -= (shift - j) * 8
                shift = j
                bits = xbits >> shift
                found = True
                break
            j -= 1
        if not found:
            # ask the span map (an inlined MHeap_LookupMaybe)
            page = obj >> PAGE_SHIFT
            s = rt.spanmap[page - (arena_start >> PAGE_SHIFT)]
            if s == 0:
                return sp
            sps = rt.spans[s]
            if page < sps[SP_START] or page - sps[SP_START] >= sps[SP_NPAGES] or sps[SP_STATE] != MSPAN_IN_USE:
                return sp
            p = sps[SP_START] << PAGE_SHIFT
            if sps[SP_SIZECLASS] == 0:
                obj = p
            else:
                if obj >= sps[SP_LIMIT]:
                    return sp
                size = sps[SP_ELEMSIZE]
                obj = p + (obj - p) // size * size
            off = (obj - arena_start) >> 3
            bitp = ((arena_start - rt.h[H_BASE]) >> 3) - (off >> 4) - 1
            shift = off & 15
            bits = rt.mem[bitp] >> shift
    # only allocated, unmarked blocks
    if (bits & _ALLOC_OR_MARKED) != _ALLOC:
        return sp
    rt.mem[bitp] |= _MARKED << shift
    rt.gcstats[GS_MARKED] += 1
    if (bits & _NOPTR) != 0:
        return sp
    s = rt.spanmap[(obj - arena_start) >> PAGE_SHIFT]
    rt.markstack[sp, 0] = obj
    rt.markstack[sp, 1] = rt.spans[s, SP_ELEMSIZE]
    rt.markstack[sp, 2] = ti
    sp += 1
    if sp > rt.gcstats[GS_WORKBUF_PEAK]:
        rt.gcstats[GS_WORKBUF_PEAK] = sp
    return sp


@jit
def scan_conservative(rt, b, n, sp):
    """Every word of [b, b+n) that points into the arena is a candidate."""
    base = rt.h[H_BASE]
    lo = rt.h[H_ARENA_START]
    hi = rt.h[H_ARENA_USED]
    i = (b - base) >> 3
    for k in range(n >> 3):
        w = rt.mem[i + k]
        if w >= lo and w < hi:
            sp = mark_candidate(rt, w, 0, sp)
    return sp


@jit
def scan_typed(rt, b, n, typ, loop, sp):
    """Scan only the pointer words of type ``typ`` (a typedesc row), once or over every element."""
    elemsize = rt.typedesc[typ, TD_SIZE]
    start = rt.typedesc[typ, TD_PTR_START]
    nptrs = rt.typedesc[typ, TD_NPTRS]
    if elemsize == 0 or nptrs == 0:
        return sp
    lo = rt.h[H_ARENA_START]
    hi = rt.h[H_ARENA_USED]
    e = b
    end = b + n
    while e + elemsize <= end:
        for k in range(nptrs):
            w = load(rt, e + 8 * rt.typeptrs[start + k])
            if w >= lo and w < hi:
                sp = mark_candidate(rt, w, 0, sp)
        if not loop:
            break
        e += elemsize
    return sp


@jit
def scanblock(rt, b, n, ti, sp):
    """Scan one block: with its type if it has one (ti, else the span's type record), else conservatively."""
    rt.gcstats[GS_SCANNED_BYTES] += n
    if ti != 0:
        return scan_typed(rt, b, n, ti >> TYPE_TAG_BITS, (ti & 7) == TYPEINFO_ARRAY, sp)
    t = gettype(rt, b)
    if t != 0:
        tag = t & 7
        if tag != TYPEINFO_MAP:
            return scan_typed(rt, b, n, t >> TYPE_TAG_BITS, tag == TYPEINFO_ARRAY, sp)
    return scan_conservative(rt, b, n, sp)


@jit
def drain(rt, sp):
    """Pop and scan blocks until the work list is empty."""
    while sp > 0:
        sp -= 1
        sp = scanblock(rt, rt.markstack[sp, 0], rt.markstack[sp, 1], rt.markstack[sp, 2], sp)
    return sp


@jit
def markroots(rt, fintab_keys):
    """Mark everything reachable from the roots (addroots + markroot + the final scanblock)."""
    sp = 0
    # registered global regions (the seed's data and bss)
    for r in range(rt.gcstats[GS_NROOTS]):
        addr = rt.roots[r, 0]
        nbytes = rt.roots[r, 1]
        if rt.roots[r, 2] == ROOT_OBJECT:
            sp = mark_candidate(rt, addr, 0, sp)
        else:
            i = (addr - rt.h[H_BASE]) >> 3 if addr >= rt.h[H_BASE] else -1
            if i >= 0 and addr + nbytes <= rt.h[H_ARENA_USED]:
                sp = scan_conservative(rt, addr, nbytes, sp)
        sp = drain(rt, sp)
    # span type arrays: the word &span.types.data of every Words/Bytes span
    for s in range(FIRST_SPAN, FIRST_SPAN + rt.h[H_NSPAN]):
        if rt.spans[s, SP_STATE] == MSPAN_IN_USE:
            comp = rt.spans[s, SP_TYPES_COMPRESSION]
            if comp == MTYPES_WORDS or comp == MTYPES_BYTES:
                sp = mark_candidate(rt, rt.spans[s, SP_TYPES_DATA], 0, sp)
                sp = drain(rt, sp)
    # shadow stacks, one per thread (the seed's goroutine stacks)
    for c in range(rt.shadow.shape[0]):
        if rt.cache_local[c, LC_INUSE] != 0:
            for k in range(rt.cache_local[c, LC_SHADOW_SP]):
                sp = mark_candidate(rt, rt.shadow[c, k], 0, sp)
            sp = drain(rt, sp)
    # explicit root handles
    for k in range(rt.h[H_NROOTSLOTS]):
        w = rt.rootslots[k]
        if w != 0:
            sp = mark_candidate(rt, w, 0, sp)
            sp = drain(rt, sp)
    # objects with finalizers: their contents, not themselves
    for k in range(fintab_keys.shape[0]):
        p = fintab_keys[k]
        s = rt.spanmap[(p - rt.h[H_ARENA_START]) >> PAGE_SHIFT]
        sp = scanblock(rt, p, rt.spans[s, SP_ELEMSIZE], 0, sp)
        sp = drain(rt, sp)
    # queued finalizers keep their arguments alive
    for k in range(rt.gcstats[GS_NFINQ]):
        sp = mark_candidate(rt, rt.finq[k], 0, sp)
        sp = drain(rt, sp)
    return sp
