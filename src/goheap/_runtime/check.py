"""Heap.check(): verify every invariant of a heap, read-only. See :mod:`goheap._runtime.malloc`.

Each check raises :class:`goheap.HeapCorrupted` naming the invariant and where it broke.
The walk is plain Python over the state arrays: thorough, not fast (it is for tests and
debugging; its cost grows with the number of spans and free objects).
"""

from __future__ import annotations

import numpy as np

from ..errors import HeapCorrupted
from . import layout as L
from .constants import (
    BIT_ALLOCATED,
    BIT_MARKED,
    BIT_SPECIAL,
    MSPAN_DEAD,
    MSPAN_FREE,
    MSPAN_IN_USE,
    MTYPES_BYTES,
    MTYPES_BYTES_SLOTS,
    MTYPES_WORDS,
)


def _fail(msg: str) -> None:
    raise HeapCorrupted(msg)


class _Reader:
    def __init__(self, a: L.RuntimeArrays):
        self.a = a
        self.base = int(a.h[L.H_BASE])
        self.arena_start = int(a.h[L.H_ARENA_START])
        self.arena_used = int(a.h[L.H_ARENA_USED])

    def word(self, addr: int) -> int:
        return int(self.a.mem[(addr - self.base) >> 3])

    def bitmap_words(self, addr: int, nbytes: int) -> np.ndarray:
        """The bitmap words describing [addr, addr+nbytes), page-aligned; the first word last."""
        top = ((self.arena_start - self.base) >> 3) - (((addr - self.arena_start) >> 3) >> 4) - 1
        return self.a.mem[top - (nbytes >> 7) + 1 : top + 1]

    def bits(self, addr: int) -> int:
        off = (addr - self.arena_start) >> 3
        w = int(self.a.mem[((self.arena_start - self.base) >> 3) - (off >> 4) - 1]) & ((1 << 64) - 1)
        return (w >> (off & 15)) & 0x0001_0001_0001_0001


def _walk_list(r: _Reader, head: int, what: str, limit: int) -> list[int]:
    spans = r.a.spans
    out = []
    prev = head
    s = int(spans[head, L.SP_NEXT])
    while s != head:
        if s <= 0 or s >= spans.shape[0]:
            _fail(f"{what}: link to invalid span row {s}")
        if int(spans[s, L.SP_PREV]) != prev:
            _fail(f"{what}: span {s} has prev {int(spans[s, L.SP_PREV])}, want {prev}")
        out.append(s)
        if len(out) > limit:
            _fail(f"{what}: list does not end (cycle)")
        prev = s
        s = int(spans[s, L.SP_NEXT])
    if int(spans[head, L.SP_PREV]) != prev:
        _fail(f"{what}: head's prev is {int(spans[head, L.SP_PREV])}, want {prev}")
    return out


def _chain(r: _Reader, first: int, lo: int, hi: int, size: int, what: str, limit: int) -> list[int]:
    out = []
    seen = set()
    p = first
    while p != 0:
        if p < lo or p >= hi or (p - lo) % size:
            _fail(f"{what}: free object {p:#x} is outside its span [{lo:#x}, {hi:#x}) or misaligned")
        if p in seen:
            _fail(f"{what}: free list has a cycle at {p:#x}")
        if r.bits(p) & BIT_ALLOCATED:
            _fail(f"{what}: free object {p:#x} is marked allocated in the bitmap")
        seen.add(p)
        out.append(p)
        if len(out) > limit:
            _fail(f"{what}: free list longer than the span")
        p = r.word(p)
    return out


def check_heap(a: L.RuntimeArrays, finalizers: dict | None = None) -> None:
    """Raise HeapCorrupted on the first broken invariant."""
    r = _Reader(a)
    h, st, spans, smap = a.h, a.mstats, a.spans, a.spanmap
    arena_start = int(h[L.H_ARENA_START])
    arena_used = int(h[L.H_ARENA_USED])
    # the policy's page size and classes, as the runtime reads them
    page_shift = int(h[L.H_PAGE_SHIFT])
    page_size = 1 << page_shift
    max_mheap_list = int(h[L.H_MAX_MHEAP_LIST])
    nclasses = len(a.class_to_size)
    if page_size < 4096 or max_mheap_list != (1 << 20) >> page_shift:
        _fail(f"heap: page shift {page_shift} and {max_mheap_list} exact free lists disagree")
    first_page = arena_start >> page_shift
    used_pages = (arena_used - arena_start) >> page_shift
    nspan = int(h[L.H_NSPAN])
    rows = range(L.FIRST_SPAN, L.FIRST_SPAN + nspan)

    # ---- spans tile the used arena exactly; the map agrees with them
    live = []
    for s in rows:
        state = int(spans[s, L.SP_STATE])
        if state == MSPAN_DEAD:
            continue
        if state not in (MSPAN_IN_USE, MSPAN_FREE):
            _fail(f"span {s}: invalid state {state}")
        start, npages = int(spans[s, L.SP_START]), int(spans[s, L.SP_NPAGES])
        if npages <= 0 or start < first_page or start + npages > first_page + used_pages:
            _fail(f"span {s}: pages [{start:#x}, +{npages}) are outside the used arena")
        live.append((start, npages, s, state))
    live.sort()
    expect = first_page
    for start, npages, s, state in live:
        if start != expect:
            what = "overlaps the previous span" if start < expect else f"leaves pages [{expect:#x}, {start:#x}) in no span"
            _fail(f"span {s} at page {start:#x} {what}")
        expect = start + npages
        p = start - first_page
        if state == MSPAN_IN_USE:
            bad = np.flatnonzero(smap[p : p + npages] != s)
            if bad.size:
                _fail(f"span map: page {start + int(bad[0]):#x} of in-use span {s} maps to {int(smap[p + bad[0]])}")
        elif int(smap[p]) != s or int(smap[p + npages - 1]) != s:
            _fail(f"span map: free span {s} does not own its first and last pages")
    if expect != first_page + used_pages:
        _fail(f"pages [{expect:#x}, {first_page + used_pages:#x}) of the used arena are in no span")

    # ---- page heap free lists
    free_spans = set()
    idle = released = 0
    for n in range(1, max_mheap_list):
        for s in _walk_list(r, L.FREE_HEAD0 + n, f"mheap.free[{n}]", nspan):
            if int(spans[s, L.SP_STATE]) != MSPAN_FREE or int(spans[s, L.SP_NPAGES]) != n:
                _fail(f"mheap.free[{n}]: span {s} is not a free span of {n} pages")
            free_spans.add(s)
    for s in _walk_list(r, L.LARGE_HEAD, "mheap.large", nspan):
        if int(spans[s, L.SP_STATE]) != MSPAN_FREE or int(spans[s, L.SP_NPAGES]) < max_mheap_list:
            _fail(f"mheap.large: span {s} is not a free span of at least {max_mheap_list} pages")
        free_spans.add(s)
    inuse = 0
    for start, npages, s, state in live:
        if state == MSPAN_FREE:
            if s not in free_spans:
                _fail(f"free span {s} is on no free list")
            idle += npages * page_size
            released += int(spans[s, L.SP_NPRELEASED]) * page_size
            if not 0 <= int(spans[s, L.SP_NPRELEASED]) <= npages:
                _fail(f"free span {s}: npreleased {int(spans[s, L.SP_NPRELEASED])} of {npages} pages")
        else:
            inuse += npages * page_size
    if int(st[L.ST_HEAP_IDLE]) != idle:
        _fail(f"stats: heap_idle is {int(st[L.ST_HEAP_IDLE])}, free spans hold {idle}")
    if int(st[L.ST_HEAP_INUSE]) != inuse:
        _fail(f"stats: heap_inuse is {int(st[L.ST_HEAP_INUSE])}, in-use spans hold {inuse}")
    if int(st[L.ST_HEAP_SYS]) != idle + inuse:
        _fail(f"stats: heap_sys {int(st[L.ST_HEAP_SYS])} != heap_idle + heap_inuse {idle + inuse}")
    if int(st[L.ST_HEAP_RELEASED]) != released:
        _fail(f"stats: heap_released is {int(st[L.ST_HEAP_RELEASED])}, free spans released {released}")

    # ---- caches
    ncaches = a.cache_list.shape[0]
    cached: dict[int, int] = {}  # span -> objects sitting in caches
    cached_objects: list[int] = []
    cached_bytes = 0
    for c in range(ncaches):
        if not a.cache_local[c, L.LC_INUSE]:
            continue
        total = 0
        for cl in range(1, nclasses):
            size = int(a.class_to_size[cl])
            n = 0
            seen = set()
            p = int(a.cache_list[c, cl, L.L_LIST])
            while p:
                if p in seen:
                    _fail(f"mcache {c} class {cl}: list has a cycle at {p:#x}")
                seen.add(p)
                s = int(smap[(p - arena_start) >> page_shift]) if arena_start <= p < arena_used else 0
                if s == 0 or int(spans[s, L.SP_SIZECLASS]) != cl or int(spans[s, L.SP_STATE]) != MSPAN_IN_USE:
                    _fail(f"mcache {c} class {cl}: object {p:#x} is not in an in-use span of that class")
                if r.bits(p) & BIT_ALLOCATED:
                    _fail(f"mcache {c} class {cl}: cached object {p:#x} is marked allocated")
                cached[s] = cached.get(s, 0) + 1
                cached_objects.append(p)
                n += 1
                p = r.word(p)
            if n != int(a.cache_list[c, cl, L.L_NLIST]):
                _fail(f"mcache {c} class {cl}: nlist is {int(a.cache_list[c, cl, L.L_NLIST])}, list holds {n}")
            total += n * size
        if total != int(a.cache_local[c, L.LC_SIZE]):
            _fail(f"mcache {c}: size is {int(a.cache_local[c, L.LC_SIZE])}, its lists hold {total} bytes")
        cached_bytes += total

    # ---- central lists and small spans
    live_bytes = 0
    live_objects = 0
    on_central = set()
    free_objects = set(cached_objects)
    for cl in range(1, nclasses):
        size = int(a.class_to_size[cl])
        nfree = 0
        for head, nonempty in ((L.NONEMPTY_HEAD0 + cl, True), (L.EMPTY_HEAD0 + cl, False)):
            what = f"mcentral[{cl}].{'nonempty' if nonempty else 'empty'}"
            for s in _walk_list(r, head, what, nspan):
                if int(spans[s, L.SP_STATE]) != MSPAN_IN_USE or int(spans[s, L.SP_SIZECLASS]) != cl:
                    _fail(f"{what}: span {s} is not an in-use span of class {cl}")
                if (int(spans[s, L.SP_FREELIST]) != 0) != nonempty:
                    _fail(f"{what}: span {s} has {'no ' if nonempty else ''}free objects")
                on_central.add(s)
        for start, npages, s, state in live:
            if state != MSPAN_IN_USE or int(spans[s, L.SP_SIZECLASS]) != cl:
                continue
            if s not in on_central:
                _fail(f"span {s} of class {cl} is on neither central list")
            lo = start << page_shift
            cap = (npages << page_shift) // size
            if int(spans[s, L.SP_LIMIT]) != lo + cap * size:
                _fail(f"span {s}: limit {int(spans[s, L.SP_LIMIT]):#x}, want {lo + cap * size:#x}")
            free = _chain(r, int(spans[s, L.SP_FREELIST]), lo, lo + cap * size, size, f"span {s}", cap)
            ref = int(spans[s, L.SP_REF])
            if ref + len(free) != cap:
                _fail(f"span {s}: ref {ref} + {len(free)} free objects != {cap} objects per span")
            nfree += len(free)
            handed_out = ref - cached.get(s, 0)
            if handed_out < 0:
                _fail(f"span {s}: more objects in caches than handed out")
            live_objects += handed_out
            live_bytes += handed_out * size
            _check_free_untyped(r, s, free, lo, size)
            free_objects.update(free)
            allocated = sum(1 for k in range(cap) if r.bits(lo + k * size) & BIT_ALLOCATED)
            if allocated > handed_out:
                _fail(f"span {s}: {allocated} objects marked allocated, only {handed_out} handed out")
            if any(r.bits(lo + k * size) & BIT_MARKED for k in range(cap)):
                _fail(f"span {s}: a mark bit survived the sweep")
        if nfree != int(a.central_nfree[cl]):
            _fail(f"mcentral[{cl}]: nfree is {int(a.central_nfree[cl])}, its spans hold {nfree} free objects")

    for p in cached_objects:
        s = int(smap[(p - arena_start) >> page_shift])
        _check_free_untyped(r, s, [p], int(spans[s, L.SP_START]) << page_shift, int(spans[s, L.SP_ELEMSIZE]))
    _check_pending_settypes(r, a, free_objects)

    # ---- large objects
    for start, npages, s, state in live:
        if state == MSPAN_IN_USE and int(spans[s, L.SP_SIZECLASS]) == 0:
            live_objects += 1
            live_bytes += npages * page_size
            if int(spans[s, L.SP_ELEMSIZE]) != npages * page_size:
                _fail(f"large span {s}: elemsize {int(spans[s, L.SP_ELEMSIZE])}, want {npages * page_size}")

    # ---- the bitmap: no bits in free spans; a large object's only at its first word
    # (free() trusts an allocated bit to mean "the start of an allocated block")
    first_word_bits = np.int64(0x0001_0001_0001_0001)
    for start, npages, s, state in live:
        large = state == MSPAN_IN_USE and int(spans[s, L.SP_SIZECLASS]) == 0
        if state == MSPAN_FREE or large:
            words = r.bitmap_words(start << page_shift, npages << page_shift)
            if state == MSPAN_FREE and words.any():
                _fail(f"bitmap: free span {s} at {start << page_shift:#x} has bits set")
            if large and (words[:-1].any() or words[-1] & ~first_word_bits):
                _fail(f"bitmap: large object {start << page_shift:#x} has bits beyond its first word")

    # ---- the lagging stats, with every cache's deltas added back
    lag_alloc = int(a.cache_local[:, L.LC_LOCAL_CACHEALLOC].sum())
    lag_objects = int(a.cache_local[:, L.LC_LOCAL_OBJECTS].sum())
    if int(st[L.ST_HEAP_ALLOC]) + lag_alloc != live_bytes:
        _fail(f"stats: heap_alloc {int(st[L.ST_HEAP_ALLOC])} + cached deltas {lag_alloc} != {live_bytes} bytes in live blocks")
    if int(st[L.ST_HEAP_OBJECTS]) + lag_objects != live_objects:
        _fail(f"stats: heap_objects {int(st[L.ST_HEAP_OBJECTS])} + cached deltas {lag_objects} != {live_objects} live blocks")
    if int(a.fixalloc[L.FA_SPAN, L.FA_INUSE]) != len(live) * int(a.fixalloc[L.FA_SPAN, L.FA_SIZE]):
        _fail(f"spanalloc: inuse {int(a.fixalloc[L.FA_SPAN, L.FA_INUSE])} does not match {len(live)} live spans")

    # ---- the collector's leftovers: no mark bit on a large block either, no queued work
    for start, npages, s, state in live:
        if state == MSPAN_IN_USE and int(spans[s, L.SP_SIZECLASS]) == 0 and r.bits(start << page_shift) & BIT_MARKED:
            _fail(f"large span {s}: a mark bit survived the sweep")
    if int(a.gcstats[L.GS_WORKBUF_FULL]) != 0 and not int(h[L.H_IN_GC]):
        _fail("work.full still holds a Workbuf after the collection")

    _check_finalizers(r, a, finalizers)


def _check_free_untyped(r: _Reader, s: int, free: list[int], lo: int, size: int) -> None:
    """No free object of small span s has a type record (the next block in its slot may be untyped)."""
    compression = int(r.a.spans[s, L.SP_TYPES_COMPRESSION])
    data = int(r.a.spans[s, L.SP_TYPES_DATA])
    for p in free:
        i = (p - lo) // size
        if compression == MTYPES_WORDS:
            typ = r.word(data + 8 * i)
        elif compression == MTYPES_BYTES:
            typ = int(r.a.mem8[data + MTYPES_BYTES_SLOTS * 8 + i - r.base])
        else:
            return
        if typ:
            _fail(f"span {s}: free object {p:#x} still has a type record ({typ:#x})")


def _check_pending_settypes(r: _Reader, a: L.RuntimeArrays, free_objects: set[int]) -> None:
    """The buffered settype calls are counted, and none names a free object (a freed block's are cancelled)."""
    total = 0
    for c in range(a.cache_local.shape[0]):
        if not a.cache_local[c, L.LC_INUSE]:
            continue
        n = int(a.cache_local[c, L.LC_SETTYPE_N])
        total += n // 2
        for k in range(0, n, 2):
            v = int(a.settype_buf[c, k])
            if v in free_objects:
                _fail(f"mcache {c}: a pending settype names {v:#x}, a free object")
    if total != int(a.h[L.H_SETTYPE_PENDING]):
        _fail(f"settype: {int(a.h[L.H_SETTYPE_PENDING])} calls counted pending, the caches hold {total}")


def _check_finalizers(r: _Reader, a: L.RuntimeArrays, finalizers: dict | None) -> None:
    """Each shard's counts match its key array; every key and queued object is an allocated special block."""
    nlive = 0
    for t in range(L.FINTAB_SHARDS):
        key, mx = int(a.fintab[t, L.FT_KEY]), int(a.fintab[t, L.FT_MAX])
        if mx == 0:
            continue
        keys = [r.word(key + 8 * i) for i in range(mx)]
        dead = sum(1 for k in keys if k == -1)
        live = [k for k in keys if k not in (0, -1)]
        if len(live) + dead != int(a.fintab[t, L.FT_NKEY]) or dead != int(a.fintab[t, L.FT_NDEAD]):
            _fail(f"finalizer shard {t}: nkey {int(a.fintab[t, L.FT_NKEY])}, ndead {int(a.fintab[t, L.FT_NDEAD])}, "
                  f"its keys hold {len(live)} live and {dead} deleted")
        if len(live) + dead > mx // 2 + mx // 4:
            _fail(f"finalizer shard {t}: {len(live) + dead} of {mx} slots used, more than 3/4")
        for k in live:
            if (k >> 3) % L.FINTAB_SHARDS != t:
                _fail(f"finalizer shard {t}: key {k:#x} belongs to shard {(k >> 3) % L.FINTAB_SHARDS}")
            if not r.arena_start <= k < r.arena_used or r.bits(k) & (BIT_ALLOCATED | BIT_SPECIAL) != BIT_ALLOCATED | BIT_SPECIAL:
                _fail(f"finalizer of {k:#x}: not the start of an allocated block with its special bit")
            if finalizers is not None and k not in finalizers:
                _fail(f"finalizer of {k:#x}: in the table but no function is registered")
        nlive += len(live)
    if nlive != int(a.gcstats[L.GS_NFIN]):
        _fail(f"finalizer table: {nlive} live keys, the count says {int(a.gcstats[L.GS_NFIN])}")
    for k in range(int(a.gcstats[L.GS_NFINQ])):
        p = int(a.finq[k])
        if not r.arena_start <= p < r.arena_used or r.bits(p) & (BIT_ALLOCATED | BIT_SPECIAL) != BIT_ALLOCATED | BIT_SPECIAL:
            _fail(f"queued finalizer of {p:#x}: not an allocated block with its special bit")
