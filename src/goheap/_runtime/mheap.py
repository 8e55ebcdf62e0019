"""Page heap: mheap.c. See :mod:`goheap._runtime.malloc` for the overview.

The heap hands out runs of pages (spans): 4 KB in the seed, the policy's page size
(``h[H_PAGE_SHIFT]``) in general. Free spans under 1 MB (n < 256 pages of 4 KB:
``h[H_MAX_MHEAP_LIST]``) sit on the exact list free[n], larger ones on the single list
``large``; every list is LIFO. Allocation takes the first span of the smallest exact list that fits, else the best fit
on ``large`` (fewest pages, then lowest address), else grows the arena by at least 1 MB.
A span bigger than asked for is trimmed and its tail goes back as a free span. Freeing
coalesces with both neighbours, found through the page -> span map.

Span map invariants: an in-use span owns every map entry of its pages; a free span owns
at least its first and last entries (interior entries may be stale).

The "needs zeroing" mark of a span is its first word: non-zero means dirty. It spreads to
merged neighbours and to trimmed tails, and MHeap_Alloc clears a dirty span on request.

All functions here are called with the heap lock held (the GIL, in goheap) unless noted.
``c`` is the calling thread's MCache row, whose cached stats are purged on every call
that takes the heap lock, exactly where the seed purges them.
"""

from __future__ import annotations

from ._jit import jit
from .constants import (
    BITMAP_CHUNK,
    GROW_ROUND_BYTES,
    HEAP_ALLOC_CHUNK,
    MAX_MHEAP_LIST,
    MSPAN_DEAD,
    MSPAN_FREE,
    MSPAN_IN_USE,
    MSPAN_LIST_HEAD,
    MTYPES_EMPTY,
)
from .fixalloc import FIX_EXHAUSTED, fixalloc_alloc, fixalloc_free
from .layout import (
    FA_INUSE,
    FA_SPAN,
    FA_SYS,
    FREE_HEAD0,
    H_ARENA_END,
    H_ARENA_START,
    H_ARENA_USED,
    H_BASE,
    H_BITMAP_MAPPED,
    H_CLOCK_VIRTUAL,
    H_MAX_MHEAP_LIST,
    H_MEMORY_LIMIT,
    H_NOW,
    H_NSPAN,
    H_NSPANCAP,
    H_PAGE_SHIFT,
    H_RACE,
    H_SCAVENGE_RETAIN,
    LARGE_HEAD,
    LC_LOCAL_ALLOC,
    LC_LOCAL_CACHEALLOC,
    LC_LOCAL_NFREE,
    LC_LOCAL_NLOOKUP,
    LC_LOCAL_NMALLOC,
    LC_LOCAL_OBJECTS,
    LC_LOCAL_TOTAL_ALLOC,
    SP_ELEMSIZE,
    SP_FIXLINK,
    SP_FREELIST,
    SP_LIMIT,
    SP_NEXT,
    SP_NPAGES,
    SP_NPRELEASED,
    SP_PREV,
    SP_REF,
    SP_SIZECLASS,
    SP_START,
    SP_STATE,
    SP_TYPES_COMPRESSION,
    SP_TYPES_DATA,
    SP_UNUSEDSINCE,
    ST_ALLOC,
    ST_HEAP_ALLOC,
    ST_HEAP_IDLE,
    ST_HEAP_INUSE,
    ST_HEAP_OBJECTS,
    ST_HEAP_RELEASED,
    ST_HEAP_SYS,
    ST_MSPAN_INUSE,
    ST_MSPAN_SYS,
    ST_NFREE,
    ST_NLOOKUP,
    ST_NEXT_GC,
    ST_NMALLOC,
    ST_SYS,
    ST_TOTAL_ALLOC,
    runtime_ref,
)
from .pacer import heap_goal, scavenge_need
from .raceshadow import racemapshadow
from .sysmem import CLOCK_REALTIME, os_clock_gettime, sys_map, sys_unused
from .units import UNIT_MHEAP_ALLOC, UNIT_MHEAP_FREE, call_unit

_INT64_MAX = (1 << 63) - 1

ALLSPANS_FIRST_CAP = (64 << 10) // 8  # the seed's first allspans array: 64 KB of pointers


# ================================================================ memory words and time


@jit
def load(rt, addr):
    """The word at heap (or bitmap) address ``addr``."""
    return rt.mem[(addr - rt.h[H_BASE]) >> 3]


@jit
def store(rt, addr, value):
    rt.mem[(addr - rt.h[H_BASE]) >> 3] = value


MEMSET_BYTES = 1024  # from this size on memclr calls memset: its wide stores win over the call


@jit
def memclr(rt, addr, nbytes):
    """Zero [addr, addr+nbytes); both multiples of 8.

    Small objects (mallocgc's common case) with a plain loop, which avoids the call into
    memset that a slice assignment makes (3x slower for a 16-byte object); large ones with
    memset, whose wide stores clear a 1 MB span 2.5x faster than the loop (churn, which
    zeroes 60 GB of large blocks, runs in half the time).
    """
    mem = rt.mem
    i = (addr - rt.h[H_BASE]) >> 3
    if nbytes >= MEMSET_BYTES:
        mem[i : i + (nbytes >> 3)] = 0
        return
    for k in range(i, i + (nbytes >> 3)):
        mem[k] = 0


@jit
def nanotime(rt):
    """The runtime's clock: the virtual clock when one is installed, else wall-clock ns (as Go's nanotime)."""
    if rt.h[H_CLOCK_VIRTUAL] != 0:
        return rt.h[H_NOW]
    os_clock_gettime(CLOCK_REALTIME, rt.scratch)
    return rt.scratch[0] * 1000000000 + rt.scratch[1]


# ================================================================ cached stats


@jit
def purgecachedstats(rt, c):
    """Fold MCache ``c``'s stat deltas into MStats. Heap lock held or world stopped."""
    lc = rt.cache_local[c]
    st = rt.mstats
    st[ST_HEAP_ALLOC] += lc[LC_LOCAL_CACHEALLOC]
    lc[LC_LOCAL_CACHEALLOC] = 0
    st[ST_HEAP_OBJECTS] += lc[LC_LOCAL_OBJECTS]
    lc[LC_LOCAL_OBJECTS] = 0
    st[ST_NMALLOC] += lc[LC_LOCAL_NMALLOC]
    lc[LC_LOCAL_NMALLOC] = 0
    st[ST_NFREE] += lc[LC_LOCAL_NFREE]
    lc[LC_LOCAL_NFREE] = 0
    st[ST_NLOOKUP] += lc[LC_LOCAL_NLOOKUP]
    lc[LC_LOCAL_NLOOKUP] = 0
    st[ST_ALLOC] += lc[LC_LOCAL_ALLOC]
    lc[LC_LOCAL_ALLOC] = 0
    st[ST_TOTAL_ALLOC] += lc[LC_LOCAL_TOTAL_ALLOC]
    lc[LC_LOCAL_TOTAL_ALLOC] = 0


# ================================================================ span lists (MSpanList_*)


@jit
def mspanlist_init(rt, head):
    sp = rt.spans[head]
    sp[SP_STATE] = MSPAN_LIST_HEAD
    sp[SP_NEXT] = head
    sp[SP_PREV] = head


@jit
def mspanlist_is_empty(rt, head):
    return rt.spans[head, SP_NEXT] == head


@jit
def mspanlist_remove(rt, s):
    """Unlink s from whatever list holds it (no-op if none)."""
    spans = rt.spans
    prev = spans[s, SP_PREV]
    nxt = spans[s, SP_NEXT]
    if prev == 0:
        return
    spans[prev, SP_NEXT] = nxt
    spans[nxt, SP_PREV] = prev
    spans[s, SP_NEXT] = 0
    spans[s, SP_PREV] = 0


@jit
def mspanlist_insert(rt, head, s):
    """Insert s at the front of list ``head``; s must be on no list."""
    spans = rt.spans
    first = spans[head, SP_NEXT]
    spans[s, SP_NEXT] = first
    spans[s, SP_PREV] = head
    spans[first, SP_PREV] = s
    spans[head, SP_NEXT] = s


# ================================================================ MSpan records


@jit
def mspan_init(rt, s, start, npages):
    sp = rt.spans[s]
    sp[SP_NEXT] = 0
    sp[SP_PREV] = 0
    sp[SP_START] = start
    sp[SP_NPAGES] = npages
    sp[SP_FREELIST] = 0
    sp[SP_REF] = 0
    sp[SP_SIZECLASS] = 0
    sp[SP_ELEMSIZE] = 0
    sp[SP_STATE] = MSPAN_IN_USE
    sp[SP_UNUSEDSINCE] = 0
    sp[SP_NPRELEASED] = 0
    sp[SP_LIMIT] = 0
    sp[SP_TYPES_COMPRESSION] = MTYPES_EMPTY
    sp[SP_TYPES_DATA] = 0


@jit
def _record_span(rt):
    """spanalloc's ``first`` hook (RecordSpan): a new MSpan joins allspans, whose array grows x1.5."""
    if rt.h[H_NSPAN] >= rt.h[H_NSPANCAP]:
        cap = rt.h[H_NSPANCAP] * 3 // 2
        if cap < ALLSPANS_FIRST_CAP:
            cap = ALLSPANS_FIRST_CAP
        rt.mstats[ST_SYS] += cap * 8 - rt.h[H_NSPANCAP] * 8  # SysAlloc the new array, SysFree the old
        rt.h[H_NSPANCAP] = cap
    rt.h[H_NSPAN] += 1


@jit
def _span_stats(rt):
    rt.mstats[ST_MSPAN_INUSE] = rt.fixalloc[FA_SPAN, FA_INUSE]
    rt.mstats[ST_MSPAN_SYS] = rt.fixalloc[FA_SPAN, FA_SYS]


@jit
def span_alloc(rt):
    """A fresh MSpan record (row id), or 0 when the rows are exhausted."""
    row = fixalloc_alloc(rt, FA_SPAN, rt.spans[:, SP_FIXLINK])
    if row == FIX_EXHAUSTED:
        return 0
    if row < 0:
        row = -row - 1
        _record_span(rt)
    return row


@jit
def span_free(rt, s):
    rt.spans[s, SP_STATE] = MSPAN_DEAD
    fixalloc_free(rt, FA_SPAN, rt.spans[:, SP_FIXLINK], s)


# ================================================================ pages and the page map


@jit
def span_base(rt, s):
    """The address of span s's first page."""
    return rt.spans[s, SP_START] << rt.h[H_PAGE_SHIFT]


@jit
def span_bytes(rt, s):
    """The bytes of span s's pages."""
    return rt.spans[s, SP_NPAGES] << rt.h[H_PAGE_SHIFT]


@jit
def arena_page(rt, page):
    """Index into the span map of absolute page number ``page``."""
    return page - (rt.h[H_ARENA_START] >> rt.h[H_PAGE_SHIFT])


@jit
def mheap_lookup(rt, v):
    """The span holding v, with no checks (MHeap_Lookup). v must be inside a span."""
    return rt.spanmap[(v - rt.h[H_ARENA_START]) >> rt.h[H_PAGE_SHIFT]]


@jit
def mheap_lookup_maybe(rt, v):
    """The in-use span holding v, or 0 (MHeap_LookupMaybe)."""
    if v < rt.h[H_ARENA_START] or v >= rt.h[H_ARENA_USED]:
        return 0
    shift = rt.h[H_PAGE_SHIFT]
    p = v >> shift
    s = rt.spanmap[p - (rt.h[H_ARENA_START] >> shift)]
    if s == 0:
        return 0
    sp = rt.spans[s]
    if p < sp[SP_START] or p - sp[SP_START] >= sp[SP_NPAGES]:
        return 0
    if sp[SP_STATE] != MSPAN_IN_USE:
        return 0
    return s


# ================================================================ growing the arena (MHeap_SysAlloc, MHeap_MapBits)


@jit
def mheap_mapbits(rt, arena_used):
    """MHeap_MapBits: map more bitmap, just below what is mapped, to cover the arena up to arena_used."""
    n = (arena_used - rt.h[H_ARENA_START]) // 16
    n = (n + BITMAP_CHUNK - 1) & ~(BITMAP_CHUNK - 1)
    if rt.h[H_BITMAP_MAPPED] >= n:
        return True
    if not sys_map(rt, rt.h[H_ARENA_START] - n, n - rt.h[H_BITMAP_MAPPED]):
        return False
    rt.h[H_BITMAP_MAPPED] = n
    return True


@jit
def mheap_sysalloc(rt, n):
    """MHeap_SysAlloc: commit the next n bytes of the arena; 0 when the reservation is exhausted.

    The bitmap covering them is mapped first (the seed maps it just after), so that a refusal
    of either leaves arena_used, and Sys, matching what is mapped; in race mode, so is
    the race shadow (the seed's racemapshadow, also just after).
    """
    if n > rt.h[H_ARENA_END] - rt.h[H_ARENA_USED]:
        return 0  # 64-bit: the reservation is all there is
    p = rt.h[H_ARENA_USED]
    if not mheap_mapbits(rt, p + n):
        return 0
    if rt.h[H_RACE] != 0 and not racemapshadow(rt, p, n):  # race mode: the shadow of the new arena
        return 0
    if not sys_map(rt, p, n):
        return 0
    rt.h[H_ARENA_USED] = p + n
    return p


# ================================================================ MHeap_Alloc


@jit
def mheap_alloc(rt, c, npage, sizeclass, acct, zeroed):
    """A span of npage pages for size class ``sizeclass`` (0 = large object), or 0.

    acct: charge it to heap_alloc/heap_objects as one large object. zeroed: clear it if dirty.
    Its machine code is a unit (see units.py): callers reach it by address.
    """
    return call_unit(rt.code[UNIT_MHEAP_ALLOC], UNIT_MHEAP_ALLOC, runtime_ref(rt), c, npage, sizeclass, acct, zeroed)


@jit
def mheap_alloc_unit(rt, c, npage, sizeclass, acct, zeroed):
    """The unit of :func:`mheap_alloc`."""
    purgecachedstats(rt, c)
    s = mheap_alloc_locked(rt, npage, sizeclass)
    if s != 0:
        nbytes = npage << rt.h[H_PAGE_SHIFT]
        rt.mstats[ST_HEAP_INUSE] += nbytes
        if acct:
            rt.mstats[ST_HEAP_OBJECTS] += 1
            rt.mstats[ST_HEAP_ALLOC] += nbytes
    if s != 0 and zeroed:
        start = span_base(rt, s)
        if load(rt, start) != 0:
            memclr(rt, start, span_bytes(rt, s))
    return s


@jit
def mheap_alloc_locked(rt, npage, sizeclass):
    spans = rt.spans
    s = 0
    for n in range(npage, rt.h[H_MAX_MHEAP_LIST]):
        if not mspanlist_is_empty(rt, FREE_HEAD0 + n):
            s = spans[FREE_HEAD0 + n, SP_NEXT]
            break
    if s == 0:
        s = mheap_allocl_large(rt, npage)
        if s == 0:
            if not mheap_grow(rt, npage):
                return 0
            s = mheap_allocl_large(rt, npage)
            if s == 0:
                return 0

    # have span s
    mspanlist_remove(rt, s)
    spans[s, SP_STATE] = MSPAN_IN_USE
    shift = rt.h[H_PAGE_SHIFT]
    rt.mstats[ST_HEAP_IDLE] -= spans[s, SP_NPAGES] << shift
    rt.mstats[ST_HEAP_RELEASED] -= spans[s, SP_NPRELEASED] << shift
    spans[s, SP_NPRELEASED] = 0

    if spans[s, SP_NPAGES] > npage:
        # trim the extra and put it back in the heap
        t = span_alloc(rt)
        _span_stats(rt)
        mspan_init(rt, t, spans[s, SP_START] + npage, spans[s, SP_NPAGES] - npage)
        spans[s, SP_NPAGES] = npage
        p = arena_page(rt, spans[t, SP_START])
        if p > 0:
            rt.spanmap[p - 1] = s
        rt.spanmap[p] = t
        rt.spanmap[p + spans[t, SP_NPAGES] - 1] = t
        store(rt, span_base(rt, t), load(rt, span_base(rt, s)))  # copy "needs zeroing"
        spans[t, SP_STATE] = MSPAN_IN_USE
        mheap_free_locked(rt, t)
        spans[t, SP_UNUSEDSINCE] = spans[s, SP_UNUSEDSINCE]  # keep its age

    spans[s, SP_UNUSEDSINCE] = 0
    spans[s, SP_SIZECLASS] = sizeclass
    if sizeclass == 0:
        spans[s, SP_ELEMSIZE] = span_bytes(rt, s)
    else:
        spans[s, SP_ELEMSIZE] = rt.class_to_size[sizeclass]
    spans[s, SP_TYPES_COMPRESSION] = MTYPES_EMPTY
    p = arena_page(rt, spans[s, SP_START])
    for n in range(npage):
        rt.spanmap[p + n] = s
    return s


@jit
def mheap_allocl_large(rt, npage):
    """The best fit on the large list: fewest pages, then lowest address."""
    return bestfit(rt, LARGE_HEAD, npage)


@jit
def bestfit(rt, head, npage):
    spans = rt.spans
    best = 0
    s = spans[head, SP_NEXT]
    while s != head:
        n = spans[s, SP_NPAGES]
        if n >= npage:
            if (
                best == 0
                or n < spans[best, SP_NPAGES]
                or (n == spans[best, SP_NPAGES] and spans[s, SP_START] < spans[best, SP_START])
            ):
                best = s
        s = spans[s, SP_NEXT]
    return best


@jit
def mheap_grow(rt, npage):
    """Get at least npage more pages (and at least 1 MB) from the OS into the heap.

    Under a policy with Go 1.19's scavenger, free spans worth the growth are released
    first where the retained heap would pass its goal; under a memory limit, the heap goal
    is recomputed after it (more mapped memory can lower it). Neither happens in the seed.
    """
    shift = rt.h[H_PAGE_SHIFT]
    round_pages = GROW_ROUND_BYTES >> shift
    if round_pages > 1:
        npage = (npage + round_pages - 1) & ~(round_pages - 1)
    ask = npage << shift
    if ask < HEAP_ALLOC_CHUNK:
        ask = HEAP_ALLOC_CHUNK
    if rt.h[H_SCAVENGE_RETAIN] >= 0:
        mheap_scavenge_top(rt, scavenge_need(rt, ask))
    v = mheap_sysalloc(rt, ask)
    if v == 0:
        if ask > (npage << shift):
            ask = npage << shift
            v = mheap_sysalloc(rt, ask)
        if v == 0:
            return False
    rt.mstats[ST_HEAP_SYS] += ask

    # a new span, "freed" so that it coalesces with free neighbours
    s = span_alloc(rt)
    _span_stats(rt)
    mspan_init(rt, s, v >> shift, ask >> shift)
    p = arena_page(rt, v >> shift)
    rt.spanmap[p] = s
    rt.spanmap[p + (ask >> shift) - 1] = s
    rt.spans[s, SP_STATE] = MSPAN_IN_USE
    mheap_free_locked(rt, s)
    if rt.h[H_MEMORY_LIMIT] >= 0:
        rt.mstats[ST_NEXT_GC] = heap_goal(rt)
    return True


# ================================================================ MHeap_Free


@jit
def mheap_free(rt, c, s, acct):
    """Return span s to the heap; acct: it was one large object counted in heap_alloc.

    Its machine code is a unit (see units.py): callers reach it by address.
    """
    call_unit(rt.code[UNIT_MHEAP_FREE], UNIT_MHEAP_FREE, runtime_ref(rt), c, s, acct)


@jit
def mheap_free_unit(rt, c, s, acct):
    """The unit of :func:`mheap_free`."""
    purgecachedstats(rt, c)
    nbytes = span_bytes(rt, s)
    rt.mstats[ST_HEAP_INUSE] -= nbytes
    if acct:
        rt.mstats[ST_HEAP_ALLOC] -= nbytes
        rt.mstats[ST_HEAP_OBJECTS] -= 1
    mheap_free_locked(rt, s)


@jit
def mheap_free_locked(rt, s):
    spans = rt.spans
    spans[s, SP_TYPES_COMPRESSION] = MTYPES_EMPTY
    spans[s, SP_TYPES_DATA] = 0
    rt.mstats[ST_HEAP_IDLE] += span_bytes(rt, s)
    spans[s, SP_STATE] = MSPAN_FREE
    mspanlist_remove(rt, s)
    spans[s, SP_UNUSEDSINCE] = nanotime(rt)
    spans[s, SP_NPRELEASED] = 0

    # coalesce with the left neighbour
    p = arena_page(rt, spans[s, SP_START])
    if p > 0:
        t = rt.spanmap[p - 1]
        if t != 0 and spans[t, SP_STATE] != MSPAN_IN_USE:
            ts = span_base(rt, t)
            store(rt, ts, load(rt, ts) | load(rt, span_base(rt, s)))
            spans[s, SP_START] = spans[t, SP_START]
            spans[s, SP_NPAGES] += spans[t, SP_NPAGES]
            spans[s, SP_NPRELEASED] = spans[t, SP_NPRELEASED]
            p -= spans[t, SP_NPAGES]
            rt.spanmap[p] = s
            mspanlist_remove(rt, t)
            span_free(rt, t)
            _span_stats(rt)
    # and with the right one
    q = p + spans[s, SP_NPAGES]
    if q < rt.spanmap.shape[0]:
        t = rt.spanmap[q]
        if t != 0 and spans[t, SP_STATE] != MSPAN_IN_USE:
            ss = span_base(rt, s)
            store(rt, ss, load(rt, ss) | load(rt, span_base(rt, t)))
            spans[s, SP_NPAGES] += spans[t, SP_NPAGES]
            spans[s, SP_NPRELEASED] += spans[t, SP_NPRELEASED]
            rt.spanmap[p + spans[s, SP_NPAGES] - 1] = s
            mspanlist_remove(rt, t)
            span_free(rt, t)
            _span_stats(rt)

    if spans[s, SP_NPAGES] < rt.h[H_MAX_MHEAP_LIST]:
        mspanlist_insert(rt, FREE_HEAD0 + spans[s, SP_NPAGES], s)
    else:
        mspanlist_insert(rt, LARGE_HEAD, s)


# ================================================================ scavenger


@jit
def release_span(rt, s):
    """SysUnused the whole free span s (again, even if partly released already); the bytes newly released."""
    spans = rt.spans
    released = (spans[s, SP_NPAGES] - spans[s, SP_NPRELEASED]) << rt.h[H_PAGE_SHIFT]
    rt.mstats[ST_HEAP_RELEASED] += released
    spans[s, SP_NPRELEASED] = spans[s, SP_NPAGES]
    sys_unused(rt, span_base(rt, s), span_bytes(rt, s))
    return released


@jit
def scavengelist(rt, head, now, limit):
    """Release (madvise DONTNEED) every span on the list idle for more than ``limit`` ns."""
    spans = rt.spans
    sumreleased = 0
    s = spans[head, SP_NEXT]
    while s != head:
        idle = now - spans[s, SP_UNUSEDSINCE]
        if idle < 0 or idle > limit:  # the seed compares unsigned
            sumreleased += release_span(rt, s)
        s = spans[s, SP_NEXT]
    return sumreleased


@jit
def mheap_next_release(rt, t0, limit):
    """The earliest time >= t0 at which mheap_scavenge(time, limit) would release a page (INT64_MAX: never).

    A free span not yet released is released at a time t once t - unusedsince > limit, or
    at once if t < unusedsince (the seed's unsigned compare). For Heap.advance_clock, to
    jump over the scavenger's idle rounds.
    """
    spans = rt.spans
    first = _INT64_MAX
    for n in range(MAX_MHEAP_LIST + 1):
        head = LARGE_HEAD if n == MAX_MHEAP_LIST else FREE_HEAD0 + n
        s = spans[head, SP_NEXT]
        while s != head:
            if spans[s, SP_NPRELEASED] < spans[s, SP_NPAGES]:
                u = spans[s, SP_UNUSEDSINCE]
                if t0 < u:
                    return t0
                t = _INT64_MAX if u > _INT64_MAX - limit - 1 else u + limit + 1
                if t < first:
                    first = t
            s = spans[s, SP_NEXT]
    return t0 if first < t0 else first


@jit
def mheap_scavenge(rt, now, limit):
    """scavenge(): every free list, then ``large``; the bytes newly released."""
    sumreleased = 0
    for n in range(rt.h[H_MAX_MHEAP_LIST]):
        sumreleased += scavengelist(rt, FREE_HEAD0 + n, now, limit)
    sumreleased += scavengelist(rt, LARGE_HEAD, now, limit)
    return sumreleased


@jit
def mheap_scavenge_top(rt, nbytes):
    """Release free spans from the top of the arena down until ``nbytes`` more are released (Go 1.19's order).

    Whole spans, as the seed's scavenger releases them, so it may release up to one span
    more than asked. The walk goes span by span through the span map: the last page of
    every span, free or in use, maps to it. Returns the bytes newly released.
    """
    if nbytes <= 0:
        return 0
    spans = rt.spans
    released = 0
    p = ((rt.h[H_ARENA_USED] - rt.h[H_ARENA_START]) >> rt.h[H_PAGE_SHIFT]) - 1
    while p >= 0 and released < nbytes:
        s = rt.spanmap[p]
        if spans[s, SP_STATE] == MSPAN_FREE and spans[s, SP_NPRELEASED] < spans[s, SP_NPAGES]:
            released += release_span(rt, s)
        p = arena_page(rt, spans[s, SP_START]) - 1
    return released


@jit
def mheap_init(rt):
    """MHeap_Init: empty lists; the span allocator's record size is the seed's sizeof(MSpan)."""
    for n in range(MAX_MHEAP_LIST):
        mspanlist_init(rt, FREE_HEAD0 + n)
    mspanlist_init(rt, LARGE_HEAD)
    rt.h[H_NSPAN] = 0
