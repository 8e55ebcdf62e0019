"""Mark: scanblock, flushptrbuf, the Workbufs and markroot of mgc0.c. See :mod:`goheap._runtime.gc`.

The seed's structures, as arrays:

* *Workbufs* (``workbuf`` rows, 339 Objs of (p, n, ti) each) on two lock-free stacks,
  ``work.full`` and ``work.empty`` (heads in gcstats). A buffer is carved from a 1 MB
  chunk only when ``empty`` is empty; each chunk is charged to Sys, as SysAlloc does.
* *Staging buffers* (``ptrbuf``, one per collector proc): scanning a block stages every
  word that falls inside [arena_start, arena_used) as a PtrTarget; 64 of them, or an
  empty work buffer, trigger :func:`flushptrbuf`.
* :func:`flushptrbuf` in two phases, as the seed: (1) find each target's block start
  (bitmap at the word, a backward scan within its bitmap word, else the span map) and
  keep the allocated, unmarked ones as BitTargets; (2) mark each BitTarget not marked
  meanwhile and queue the ones with pointers as Objs. Then, if another proc is waiting,
  more than 4 Objs are queued and ``work.full`` is empty, hand off half of them.

:func:`drain` is the hot loop (pop an Obj, scan it) for both collectors: the serial one
(nproc = 1, :func:`scanblock`) and the interleaved one (``gchelper.py``), where a proc's
scan state (its Workbuf, how many Objs it holds, staged targets) lives in its ``gcproc``
row between steps. Every queued Obj has ti = 0: goheap's types are pointer maps found through the
span type records (``gettype``), never programs passed along with a pointer.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit, jit_inline
from ..constants import (
    BIT_ALLOCATED,
    BIT_BLOCK_BOUNDARY,
    BIT_MARKED,
    BIT_NO_POINTERS,
    MSPAN_IN_USE,
    MTYPES_EMPTY,
    TYPEINFO_ARRAY,
    TYPEINFO_MAP,
)
from ..layout import (
    GP_NHANDOFF,
    GP_NHANDOFFCNT,
    GP_NOBJ,
    GP_NPTR,
    GP_WBUF,
    GR_A,
    GR_B,
    GR_KIND,
    GS_BUFFERLIST,
    GS_BUFFERLIST_FREE,
    GS_MARKED,
    GS_NFINQ,
    GS_NWAIT,
    GS_SCANNED_BYTES,
    GS_WORKBUF_CARVED,
    GS_WORKBUF_EMPTY,
    GS_WORKBUF_FULL,
    H_ARENA_START,
    H_ARENA_USED,
    H_BASE,
    H_PAGE_SHIFT,
    LC_SHADOW_SP,
    PT_BT_BITP,
    PT_BT_P,
    PT_BT_SHIFT,
    PT_P,
    PTRBUF_LEN,
    RG_ADDR,
    RG_KIND,
    RG_NBYTES,
    RG_NPTRS,
    RG_PTR_START,
    RK_BLOCK,
    RK_FINBLOCK,
    RK_HANDLES,
    RK_REGION,
    RK_SHADOW,
    RK_SPANTYPES,
    ROOT_PRECISE,
    SP_ELEMSIZE,
    SP_LIMIT,
    SP_NPAGES,
    SP_SIZECLASS,
    SP_START,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    SP_TYPES_DATA,
    ST_SYS,
    TD_NPTRS,
    TD_PTR_START,
    TD_SIZE,
    TYPE_TAG_BITS,
    WB_NEXT,
    WB_NOBJ,
    WB_OBJ,
    WORKBUF_NOBJ,
    runtime_ref,
)
from ..malloc import block_index, gettype, span_type_in
from ..units import UNIT_MARK, call_unit
from .rawmem import load_raw, prefetch
from .roots import finblock_range

_ALLOC = np.int64(BIT_ALLOCATED)
_ALLOC_OR_BOUNDARY = np.int64(BIT_ALLOCATED | BIT_BLOCK_BOUNDARY)
_ALLOC_OR_MARKED = np.int64(BIT_ALLOCATED | BIT_MARKED)
_MARKED = np.int64(BIT_MARKED)
_NOPTR = np.int64(BIT_NO_POINTERS)

HANDOFF_THRESHOLD = 4  # handoffThreshold: hand work off only if more than this many Objs are queued
WORKBUF_BYTES = 8192
WORKBUF_CHUNK = 1 << 20  # getempty carves Workbufs from 1 MB SysAlloc chunks
BUFFERLIST_BYTES = PTRBUF_LEN * (16 + 32 + 24) + 8  # PtrTargets, BitTargets, Objs and a link


# ================================================================ Workbufs (getempty, putempty, getfull, handoff)


@jit
def _lfstack_push(rt, head, b):
    rt.workbuf[b, WB_NEXT] = rt.gcstats[head]
    rt.gcstats[head] = b


@jit
def _lfstack_pop(rt, head):
    b = rt.gcstats[head]
    if b != 0:
        rt.gcstats[head] = rt.workbuf[b, WB_NEXT]
        rt.workbuf[b, WB_NEXT] = 0
    return b


@jit
def getempty(rt, b):
    """Push b (if any) on work.full; return an empty buffer, carving one if work.empty has none."""
    if b != 0:
        _lfstack_push(rt, GS_WORKBUF_FULL, b)
    b = _lfstack_pop(rt, GS_WORKBUF_EMPTY)
    if b == 0:
        carved = rt.gcstats[GS_WORKBUF_CARVED]
        if carved + 1 >= rt.workbuf.shape[0]:
            raise MemoryError("goheap: the collector's Workbuf pool is exhausted")
        if carved % (WORKBUF_CHUNK // WORKBUF_BYTES) == 0:
            rt.mstats[ST_SYS] += WORKBUF_CHUNK
        b = carved + 1  # row 0 is nil
        rt.gcstats[GS_WORKBUF_CARVED] = b
    rt.workbuf[b, WB_NOBJ] = 0
    return b


@jit
def putempty(rt, b):
    _lfstack_push(rt, GS_WORKBUF_EMPTY, b)


@jit
def handoff(rt, p, b, nobj):
    """Move the upper half of b's Objs to a new buffer, put b on work.full; the new buffer and its count."""
    b1 = getempty(rt, 0)
    n = nobj // 2
    nobj -= n
    wb = rt.workbuf
    for i in range(3 * n):  # a loop, not a slice copy: that would compile numba's shape-error formatting
        wb[b1, WB_OBJ + i] = wb[b, WB_OBJ + 3 * nobj + i]
    rt.gcproc[p, GP_NHANDOFF] += 1
    rt.gcproc[p, GP_NHANDOFFCNT] += n
    wb[b, WB_NOBJ] = nobj
    _lfstack_push(rt, GS_WORKBUF_FULL, b)
    return b1, n


@jit
def bufferlist_get(rt):
    """A scanblock invocation borrows a BufferList, SysAlloc'ing one when none is free."""
    if rt.gcstats[GS_BUFFERLIST_FREE] == 0:
        rt.gcstats[GS_BUFFERLIST] += 1
        rt.mstats[ST_SYS] += BUFFERLIST_BYTES
    else:
        rt.gcstats[GS_BUFFERLIST_FREE] -= 1


@jit
def bufferlist_put(rt):
    rt.gcstats[GS_BUFFERLIST_FREE] += 1


# ================================================================ flushptrbuf
#
# The hot path takes the arrays it needs as arguments: fetching an array from the Runtime
# StructRef costs a reference count update, too much to pay per object.


@jit
def flushptrbuf(rt, p, wbuf, nobj, nptr):
    """Mark the nptr staged targets of proc p and queue the new ones with pointers; the new (wbuf, nobj)."""
    wbuf, nobj, marked = _flush(
        rt, rt.mem, rt.workbuf, rt.ptrbuf[p], rt.spans, rt.spanmap, rt.h[H_ARENA_START], rt.h[H_BASE], p, wbuf, nobj, nptr
    )
    rt.gcstats[GS_MARKED] += marked
    return wbuf, nobj


@jit
def _flush(rt, mem, wb, pb, spans, spanmap, arena_start, base, p, wbuf, nobj, nptr):
    """flushptrbuf over arrays; (wbuf, nobj, blocks newly marked)."""
    if wbuf == 0 or nobj + nptr >= WORKBUF_NOBJ:
        # nearly full: put it on work.full and continue in an empty one
        if wbuf != 0:
            wb[wbuf, WB_NOBJ] = nobj
        wbuf = getempty(rt, wbuf)
        nobj = 0
    bitbase = (arena_start - base) >> 3
    page_shift = rt.h[H_PAGE_SHIFT]
    page0 = arena_start >> page_shift

    # phase 1: find each target's block start; keep the allocated, unmarked ones
    nbit = 0
    for k in range(nptr):
        obj = pb[k, PT_P] & ~7
        off = (obj - arena_start) >> 3
        bitp = bitbase - (off >> 4) - 1
        shift = off & 15
        xbits = mem[bitp]
        bits = xbits >> shift
        if (bits & _ALLOC_OR_BOUNDARY) == 0:
            # pointing just past a block start? look back within this bitmap word
            j = shift - 1
            while j >= 0:
                if ((xbits >> j) & _ALLOC_OR_BOUNDARY) != 0:
                    break
                j -= 1
            if j >= 0:
                obj -= (shift - j) * 8
                shift = j
                bits = xbits >> shift
            else:
                # ask the span map (an inlined MHeap_LookupMaybe)
                page = obj >> page_shift
                s = spanmap[page - page0]
                if s == 0:
                    continue
                start = spans[s, SP_START]
                if page < start or page - start >= spans[s, SP_NPAGES] or spans[s, SP_STATE] != MSPAN_IN_USE:
                    continue
                sbase = start << page_shift
                if spans[s, SP_SIZECLASS] == 0:
                    obj = sbase
                else:
                    if obj >= spans[s, SP_LIMIT]:
                        continue
                    size = spans[s, SP_ELEMSIZE]
                    obj = sbase + (obj - sbase) // size * size
                off = (obj - arena_start) >> 3
                bitp = bitbase - (off >> 4) - 1
                shift = off & 15
                bits = mem[bitp] >> shift
        if (bits & _ALLOC_OR_MARKED) != _ALLOC:
            continue
        pb[nbit, PT_BT_P] = obj
        pb[nbit, PT_BT_BITP] = bitp
        pb[nbit, PT_BT_SHIFT] = shift
        nbit += 1

    # phase 2 (the seed holds one global lock here): mark; queue the blocks with pointers
    marked = 0
    for k in range(nbit):
        bitp = pb[k, PT_BT_BITP]
        shift = pb[k, PT_BT_SHIFT]
        xbits = mem[bitp]
        bits = xbits >> shift
        if (bits & _MARKED) != 0:
            continue
        mem[bitp] = xbits | (_MARKED << shift)
        marked += 1
        if (bits & _NOPTR) != 0:
            continue
        obj = pb[k, PT_BT_P]
        s = spanmap[(obj >> page_shift) - page0]
        prefetch(obj)
        i = WB_OBJ + 3 * nobj
        wb[wbuf, i] = obj
        wb[wbuf, i + 1] = spans[s, SP_ELEMSIZE]
        wb[wbuf, i + 2] = 0
        nobj += 1

    # if another proc wants work, give it some
    if nobj > HANDOFF_THRESHOLD and rt.gcstats[GS_NWAIT] > 0 and rt.gcstats[GS_WORKBUF_FULL] == 0:
        wb[wbuf, WB_NOBJ] = nobj
        wbuf, nobj = handoff(rt, p, wbuf, nobj)
    return wbuf, nobj, marked


# ================================================================ scanning one block


@jit
def _stage(rt, p, w, wbuf, nobj, nptr):
    """Stage candidate w (already known to lie in the arena), flushing a full staging buffer."""
    rt.ptrbuf[p, nptr, PT_P] = w
    nptr += 1
    if nptr == PTRBUF_LEN:
        wbuf, nobj = flushptrbuf(rt, p, wbuf, nobj, nptr)
        nptr = 0
    return wbuf, nobj, nptr


@jit
def scan_typed(rt, p, b, n, typ, loop, wbuf, nobj, nptr):
    """Precise: only the pointer words of type ``typ`` (a typedesc row), once or for every element."""
    elemsize = rt.typedesc[typ, TD_SIZE]
    start = rt.typedesc[typ, TD_PTR_START]
    nptrs = rt.typedesc[typ, TD_NPTRS]
    if elemsize == 0 or nptrs == 0:
        return wbuf, nobj, nptr
    mem = rt.mem
    lo = rt.h[H_ARENA_START]
    hi = rt.h[H_ARENA_USED]
    i = (b - rt.h[H_BASE]) >> 3
    step = elemsize >> 3
    nelem = 1
    if loop:
        nelem = n // elemsize
    for e in range(nelem):
        for k in range(nptrs):
            w = mem[i + rt.typeptrs[start + k]]
            if w >= lo and w < hi:
                wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
        i += step
    return wbuf, nobj, nptr


@jit
def _scan_typed_or_map(rt, p, b, n, wbuf, nobj, nptr):
    """A block in a span with type records: precisely if its own record has a type, else conservatively."""
    t = gettype(rt, b)
    if t != 0:
        tag = t & 7
        if tag != TYPEINFO_MAP:
            return scan_typed(rt, p, b, n, t >> TYPE_TAG_BITS, tag == TYPEINFO_ARRAY, wbuf, nobj, nptr)
    return _scan_words_counted(rt, p, b, n, wbuf, nobj, nptr)


@jit
def _scan_words_counted(rt, p, b, n, wbuf, nobj, nptr):
    wbuf, nobj, nptr, marked = _scan_words(rt, rt.mem, rt.workbuf, rt.ptrbuf[p], rt.spans, rt.spanmap,
                                           rt.h[H_ARENA_START], rt.h[H_ARENA_USED], rt.h[H_BASE], p, b, n,
                                           wbuf, nobj, nptr)
    rt.gcstats[GS_MARKED] += marked
    return wbuf, nobj, nptr


@jit
def _scan_words(rt, mem, wb, pb, spans, spanmap, lo, hi, base, p, b, n, wbuf, nobj, nptr):
    """Conservative: every word of heap memory [b, b+n) that points into the arena is a candidate.

    Returns the scan state and the blocks newly marked by the flushes it made.
    """
    i = (b - base) >> 3
    marked = 0
    for k in range(i, i + (n >> 3)):
        w = mem[k]
        if w >= lo and w < hi:
            wbuf, nobj, nptr, m = _candidate(rt, mem, wb, pb, spans, spanmap, lo, base, p, w, wbuf, nobj, nptr)
            marked += m
    return wbuf, nobj, nptr, marked


@jit_inline
def _candidate(rt, mem, wb, pb, spans, spanmap, lo, base, p, w, wbuf, nobj, nptr):
    """Stage w (a word that points into the arena) as a PtrTarget, flushing a full staging buffer.

    The scan loops' step, over arrays (inlined: a call would cost reference counts on
    them); returns the scan state and the blocks the flush marked.
    """
    pb[nptr, PT_P] = w
    nptr += 1
    marked = 0
    if nptr == PTRBUF_LEN:
        wbuf, nobj, marked = _flush(rt, mem, wb, pb, spans, spanmap, lo, base, p, wbuf, nobj, nptr)
        nptr = 0
    return wbuf, nobj, nptr, marked


@jit
def scan_block(rt, p, b, n, wbuf, nobj, nptr):
    """Scan the heap block [b, b+n): precisely if its span records a type for it, else conservatively."""
    rt.gcstats[GS_SCANNED_BYTES] += n
    s = rt.spanmap[(b - rt.h[H_ARENA_START]) >> rt.h[H_PAGE_SHIFT]]
    if rt.spans[s, SP_TYPES_COMPRESSION] != MTYPES_EMPTY:
        return _scan_typed_or_map(rt, p, b, n, wbuf, nobj, nptr)
    return _scan_words_counted(rt, p, b, n, wbuf, nobj, nptr)


@jit
def scan_root(rt, p, i, wbuf, nobj, nptr):
    """Scan root i of gcroots; returns the scan state and the bytes of root scanned."""
    r = rt.gcroots[i]
    kind = r[GR_KIND]
    lo = rt.h[H_ARENA_START]
    hi = rt.h[H_ARENA_USED]
    nbytes = 0
    if kind == RK_BLOCK:
        nbytes = r[GR_B]
        wbuf, nobj, nptr = scan_block(rt, p, r[GR_A], nbytes, wbuf, nobj, nptr)
    elif kind == RK_HANDLES:
        nbytes = 8 * r[GR_A]
        for k in range(r[GR_A]):
            w = rt.rootslots[k]
            if w >= lo and w < hi:
                wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
    elif kind == RK_REGION:
        g = rt.roots[r[GR_A]]
        addr = g[RG_ADDR]
        nbytes = g[RG_NBYTES]
        if g[RG_KIND] == ROOT_PRECISE:
            start = g[RG_PTR_START]
            for k in range(start, start + g[RG_NPTRS]):
                w = load_raw(addr + 8 * rt.rootptrs[k])
                if w >= lo and w < hi:
                    wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
        else:
            for k in range(nbytes >> 3):
                w = load_raw(addr + 8 * k)
                if w >= lo and w < hi:
                    wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
    elif kind == RK_SPANTYPES:
        nbytes = 8
        w = rt.spans[r[GR_A], SP_TYPES_DATA]
        if w >= lo and w < hi:
            wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
    elif kind == RK_SHADOW:
        c = r[GR_A]
        depth = rt.cache_local[c, LC_SHADOW_SP]
        nbytes = 8 * depth
        for k in range(depth):
            w = rt.shadow[c, k]
            if w >= lo and w < hi:
                wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
    elif kind == RK_FINBLOCK:
        a, z = finblock_range(rt, r[GR_A], rt.gcstats[GS_NFINQ])
        nbytes = 24 * (z - a)
        for k in range(a, z):
            w = rt.finq[k]
            if w >= lo and w < hi:
                wbuf, nobj, nptr = _stage(rt, p, w, wbuf, nobj, nptr)
    return wbuf, nobj, nptr, nbytes


# ================================================================ draining a buffer; the serial collector (nproc = 1)


@jit
def drain(rt, p, wbuf, nobj, nptr, clock, limit_clock, limit_p, cost_object, cost_word):
    """Pop and scan proc p's Objs while it has some and stays first in the interleaving.

    The loop of scanblock between two refills. Proc p goes on while (clock, p) is below
    (limit_clock, limit_p), the next proc due (see gchelper.py); each Obj adds cost_object
    plus cost_word per word to its clock. The serial collector passes costs of 0 and a
    limit of 1. Returns (wbuf, nobj, nptr, clock).
    """
    mem = rt.mem
    mem8 = rt.mem8
    wb = rt.workbuf
    pb = rt.ptrbuf[p]
    spans = rt.spans
    spanmap = rt.spanmap
    lo = rt.h[H_ARENA_START]
    hi = rt.h[H_ARENA_USED]
    base = rt.h[H_BASE]
    page_shift = rt.h[H_PAGE_SHIFT]
    page0 = lo >> page_shift
    scanned = 0
    marked = 0
    typedesc = rt.typedesc
    typeptrs = rt.typeptrs
    recip_n = 0
    recip = 0.0
    last_t = 0
    elemsize = 0
    first = 0
    nptrs = 0
    while nobj > 0 and (clock < limit_clock or (clock == limit_clock and p < limit_p)):
        nobj -= 1
        i = WB_OBJ + 3 * nobj
        b = wb[wbuf, i]
        n = wb[wbuf, i + 1]
        scanned += n
        clock += cost_object + cost_word * (n >> 3)
        k0 = (b - base) >> 3
        s = spanmap[(b >> page_shift) - page0]
        t = 0
        if spans[s, SP_TYPES_COMPRESSION] != MTYPES_EMPTY:
            # b's place in its span (b is a block start), without the division
            if n != recip_n:
                recip_n = n
                recip = 1.0 / n
            t = span_type_in(spans, mem, mem8, base, s, block_index(b - (spans[s, SP_START] << page_shift), recip))
        if t != 0 and (t & 7) != TYPEINFO_MAP:
            # scan_typed, inlined by hand as the conservative loop below: precisely, only
            # the pointer words of type t, once or for every element
            if t != last_t:  # most blocks have the type of the last one: skip its row's loads
                last_t = t
                typ = t >> TYPE_TAG_BITS
                elemsize = typedesc[typ, TD_SIZE]
                first = typedesc[typ, TD_PTR_START]
                nptrs = typedesc[typ, TD_NPTRS]
            if elemsize == 0 or nptrs == 0:
                continue
            nelem = n // elemsize if (t & 7) == TYPEINFO_ARRAY else 1
            for e in range(nelem):
                for k in range(first, first + nptrs):
                    w = mem[k0 + typeptrs[k]]
                    if w >= lo and w < hi:
                        wbuf, nobj, nptr, m = _candidate(rt, mem, wb, pb, spans, spanmap, lo, base, p, w, wbuf, nobj, nptr)
                        marked += m
                k0 += elemsize >> 3
            continue
        # _scan_words, inlined by hand: a call costs reference counts on its array arguments,
        # which halves the marking speed
        for k in range(k0, k0 + (n >> 3)):
            w = mem[k]
            if w >= lo and w < hi:
                wbuf, nobj, nptr, m = _candidate(rt, mem, wb, pb, spans, spanmap, lo, base, p, w, wbuf, nobj, nptr)
                marked += m
    rt.gcstats[GS_SCANNED_BYTES] += scanned
    rt.gcstats[GS_MARKED] += marked
    return wbuf, nobj, nptr, clock


@jit
def scanblock(rt, p, wbuf, nobj, nptr, keepworking):
    """The seed's scanblock loop with one proc: scan until the buffer (keepworking: all work) is done."""
    while True:
        if nobj == 0:
            wbuf, nobj = flushptrbuf(rt, p, wbuf, nobj, nptr)
            nptr = 0
            if nobj == 0:
                putempty(rt, wbuf)
                if not keepworking:
                    return
                # getfull with one proc: never waits
                wbuf = _lfstack_pop(rt, GS_WORKBUF_FULL)
                if wbuf == 0:
                    return
                nobj = rt.workbuf[wbuf, WB_NOBJ]
        wbuf, nobj, nptr, _ = drain(rt, p, wbuf, nobj, nptr, 0, 1, 0, 0, 0)


@jit
def markroot(rt, p, i):
    """Root i: enqueue it in a fresh buffer and scan until that buffer is empty (keepworking false)."""
    bufferlist_get(rt)
    wbuf = getempty(rt, 0)
    wbuf, nobj, nptr, _ = scan_root(rt, p, i, wbuf, 0, 0)
    scanblock(rt, p, wbuf, nobj, nptr, False)
    bufferlist_put(rt)


@jit
def mark_serial(rt, nroot):
    """parfordo(markfor) with one thread, then scanblock(nil, keepworking) to drain work.full.

    Its machine code is a unit of its own (see units.py): callers reach it by address.
    """
    call_unit(rt.code[UNIT_MARK], UNIT_MARK, runtime_ref(rt), nroot)


@jit
def mark_serial_unit(rt, nroot):
    """The unit of :func:`mark_serial`."""
    for i in range(nroot):
        markroot(rt, 0, i)
    bufferlist_get(rt)
    scanblock(rt, 0, 0, 0, 0, True)
    bufferlist_put(rt)


# ================================================================ one step of a proc's scan (nproc > 1)

SCAN_CONTINUE = 0  # the buffer has Objs again
SCAN_RETURNED = 1  # keepworking false and the buffer is empty: back to the parfor
SCAN_WAIT = 2  # nothing on work.full: this proc now waits in getfull (nwait was incremented)


@jit
def refill(rt, p, keepworking):
    """Proc p's buffer is empty: flush its staged targets, and if that queued nothing, end its
    scan (keepworking false) or take a buffer from work.full, else start waiting in getfull.

    One step of the interleaving; returns SCAN_CONTINUE, SCAN_RETURNED or SCAN_WAIT.
    """
    g = rt.gcproc[p]
    wbuf, nobj = flushptrbuf(rt, p, g[GP_WBUF], g[GP_NOBJ], g[GP_NPTR])
    g[GP_NPTR] = 0
    status = SCAN_CONTINUE
    if nobj == 0:
        putempty(rt, wbuf)
        wbuf = 0
        if not keepworking:
            status = SCAN_RETURNED
        else:
            wbuf = _lfstack_pop(rt, GS_WORKBUF_FULL)
            if wbuf != 0:
                nobj = rt.workbuf[wbuf, WB_NOBJ]
            else:
                rt.gcstats[GS_NWAIT] += 1
                status = SCAN_WAIT
    g[GP_WBUF] = wbuf
    g[GP_NOBJ] = nobj
    return status


@jit
def markroot_begin(rt, p, i):
    """Proc p starts root i (markroot): a fresh buffer, the root scanned into it; bytes scanned."""
    bufferlist_get(rt)
    wbuf = getempty(rt, 0)
    wbuf, nobj, nptr, nbytes = scan_root(rt, p, i, wbuf, 0, 0)
    g = rt.gcproc[p]
    g[GP_WBUF] = wbuf
    g[GP_NOBJ] = nobj
    g[GP_NPTR] = nptr
    return nbytes
