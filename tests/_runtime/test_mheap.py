"""The page heap (mheap.c): exact free lists, best fit, trimming, coalescing, growth, the
span map and lookups, and the heap_* statistics.

Spans are taken and given back with the runtime's own MHeap_Alloc / MHeap_Free (as large
objects, acct=1, so Heap.check() can account for them); a one-page "guard" span after a
span keeps it from coalescing with the free rest of the arena.
"""

from __future__ import annotations

import pytest
from heaptools import (
    View,
    mheap_alloc_at,
    mheap_free_at,
    mheap_grow_at,
    mheap_lookup_at,
    mheap_lookup_maybe_at,
    mheap_scavenge_at,
    small_heap,
)

import goheap
from goheap._runtime import layout as L
from goheap._runtime.constants import MSPAN_DEAD, MSPAN_FREE, MSPAN_IN_USE, PAGE_SIZE
from goheap._runtime.sysmem import FailingOS

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

MB = 1 << 20
INT64_MAX = (1 << 63) - 1


class Pages:
    """Takes spans from a heap's MHeap and gives them back, as the runtime does for large objects."""

    def __init__(self, heap: goheap.Heap):
        self.heap = heap
        self.c = heap.cache()
        self.view = View(heap)

    def alloc(self, npages: int, zeroed: bool = False) -> int:
        s = int(mheap_alloc_at(self.heap._handle, self.c, npages, 0, True, zeroed))
        assert s != 0, f"MHeap_Alloc({npages}) failed"
        return s

    def free(self, s: int) -> None:
        mheap_free_at(self.heap._handle, self.c, s, True)

    def isolated(self, npages: int) -> tuple[int, int]:
        """A span of npages followed by a one-page guard span: (span, guard)."""
        return self.alloc(npages), self.alloc(1)

    def start(self, s: int) -> int:
        return self.view.span(s).start


@pytest.fixture
def heap():
    with small_heap() as h:
        yield h
        h.check()


@pytest.fixture
def pages(heap):
    return Pages(heap)


# ---------------------------------------------------------------- free lists


def test_freed_spans_go_on_the_exact_list_or_large(heap, pages) -> None:
    v = pages.view
    spans = {n: pages.isolated(n)[0] for n in (1, 2, 7, 255, 256, 300)}
    for s in spans.values():
        pages.free(s)
    for n in (1, 2, 7, 255):
        assert [sp.id for sp in v.free_list(n)] == [spans[n]]
    assert {sp.id for sp in v.large_list()} >= {spans[256], spans[300]}
    assert all(sp.state == MSPAN_FREE for sp in v.free_spans())
    assert all(sp.npages >= 256 for sp in v.large_list())


def test_each_exact_list_is_lifo(heap, pages) -> None:
    a, _ = pages.isolated(5)
    b, _ = pages.isolated(5)
    c, _ = pages.isolated(5)
    sa, sb, sc = (pages.start(x) for x in (a, b, c))
    for s in (a, b, c):
        pages.free(s)
    assert [sp.start for sp in pages.view.free_list(5)] == [sc, sb, sa]
    assert pages.start(pages.alloc(5)) == sc  # the head: the one freed last
    assert pages.start(pages.alloc(5)) == sb


def test_smallest_nonempty_exact_list_at_least_npage_is_used(heap, pages) -> None:
    seven, _ = pages.isolated(7)
    five, _ = pages.isolated(5)
    s7, s5 = pages.start(seven), pages.start(five)
    pages.free(seven)
    pages.free(five)
    got = pages.alloc(3)
    assert pages.start(got) == s5
    assert [sp.start for sp in pages.view.free_list(2)] == [s5 + 3 * PAGE_SIZE]  # trimmed tail
    assert [sp.start for sp in pages.view.free_list(7)] == [s7]


def test_large_list_best_fit_fewest_pages_then_lowest_address(heap, pages) -> None:
    heap_spans = [pages.isolated(n)[0] for n in (300, 260, 260, 400)]
    starts = [pages.start(s) for s in heap_spans]
    for s in reversed(heap_spans):  # LIFO: the lowest address ends up at the head
        pages.free(s)
    got = pages.alloc(256)
    assert pages.start(got) == starts[1]  # 260 pages, the lower of the two
    assert [sp.start for sp in pages.view.free_list(4)] == [starts[1] + 256 * PAGE_SIZE]
    got = pages.alloc(260)
    assert pages.start(got) == starts[2]
    got = pages.alloc(290)
    assert pages.start(got) == starts[0]
    assert [sp.start for sp in pages.view.free_list(10)] == [starts[0] + 290 * PAGE_SIZE]


# ---------------------------------------------------------------- trimming


def test_trim_keeps_the_needs_zeroing_mark_and_the_age_of_the_tail(heap, pages) -> None:
    a = heap._arrays
    a.h[L.H_CLOCK_VIRTUAL] = 1
    a.h[L.H_NOW] = 1_000
    s, _ = pages.isolated(20)
    start = pages.start(s)
    a.mem[(start - pages.view.h(L.H_BASE)) >> 3] = 1  # dirty, as a freed large object
    pages.free(s)
    assert pages.view.span(s).unusedsince == 1_000
    a.h[L.H_NOW] = 9_000
    t = pages.alloc(6, zeroed=True)
    assert pages.start(t) == start and pages.view.word(start) == 0  # cleared on request
    (tail,) = pages.view.free_list(14)
    assert tail.start == start + 6 * PAGE_SIZE
    assert pages.view.word(tail.start) == 1  # the mark went with the tail
    assert tail.unusedsince == 1_000  # and so did its age
    assert pages.view.span(t).unusedsince == 0


def test_dirty_span_is_cleared_only_when_zeroed_is_asked(heap, pages) -> None:
    s, _ = pages.isolated(3)
    start = pages.start(s)
    mem, base = heap._arrays.mem, pages.view.h(L.H_BASE)
    mem[(start - base) >> 3 : (start - base + 3 * PAGE_SIZE) >> 3] = 0x5A5A
    pages.free(s)
    t = pages.alloc(3, zeroed=False)  # word 0 is non-zero: dirty, but no clearing was asked for
    assert pages.start(t) == start and pages.view.word(start + 8) == 0x5A5A
    pages.free(t)
    assert pages.start(pages.alloc(3, zeroed=True)) == start
    assert not mem[(start - base) >> 3 : (start - base + 3 * PAGE_SIZE) >> 3].any()


# ---------------------------------------------------------------- coalescing


def test_free_coalesces_with_both_neighbours(heap, pages) -> None:
    v = pages.view
    a = pages.alloc(4)
    b = pages.alloc(6)
    c = pages.alloc(9)
    guard = pages.alloc(1)
    sa = pages.start(a)
    idle0 = v.st(L.ST_HEAP_IDLE)
    pages.free(a)
    pages.free(c)
    assert v.st(L.ST_HEAP_IDLE) == idle0 + 13 * PAGE_SIZE
    pages.free(b)  # merges left (a) and right (c)
    assert v.st(L.ST_HEAP_IDLE) == idle0 + 19 * PAGE_SIZE
    (merged,) = v.free_list(19)
    assert merged.start == sa and merged.npages == 19
    assert v.map_entry(sa) == merged.id == v.map_entry(sa + 18 * PAGE_SIZE)
    dead = [x for x in (a, b, c) if x != merged.id]
    assert all(v.span(x).state == MSPAN_DEAD for x in dead)  # the absorbed records go back to spanalloc
    assert v.free_list(4) == v.free_list(9) == []
    heap.check()
    pages.free(guard)  # and now the whole first megabyte but page 0 is one span again
    (whole,) = v.free_spans()
    assert (whole.start, whole.npages) == (sa, 255)
    assert [sp.id for sp in v.free_list(255)] == [whole.id]


def test_coalescing_ors_the_needs_zeroing_marks_and_sums_released_pages(heap, pages) -> None:
    v = pages.view
    a, b, guard = pages.alloc(4), pages.alloc(6), pages.alloc(1)
    sa, sb = pages.start(a), pages.start(b)
    pages.free(a)
    released = mheap_scavenge_at(heap._handle, INT64_MAX, 0)  # a (and the arena's free rest) released
    assert released >= 4 * PAGE_SIZE and v.word(sa) == 0
    assert v.span(a).npreleased == 4
    heap._arrays.mem[(sb - v.h(L.H_BASE)) >> 3] = 1  # b dirty
    pages.free(b)
    (merged,) = v.free_list(10)
    assert merged.start == sa and v.word(sa) == 1
    assert merged.npreleased == 4  # the seed assigns the left neighbour's count
    assert v.st(L.ST_HEAP_RELEASED) == released
    # reusing it: all of its released pages stop counting, even those of the trimmed tail
    t = pages.alloc(2, zeroed=True)
    assert pages.start(t) == sa
    assert v.st(L.ST_HEAP_RELEASED) == released - 4 * PAGE_SIZE
    (tail,) = v.free_list(8)
    assert tail.npreleased == 0
    pages.free(guard)


# ---------------------------------------------------------------- growth


def _fill_free_space(pages: Pages) -> None:
    """Take every free span, so that the next allocation must grow the arena."""
    for sp in pages.view.free_spans():
        pages.alloc(sp.npages)
    assert pages.view.free_spans() == []


def test_growth_is_at_least_1mb(heap, pages) -> None:
    _fill_free_space(pages)
    sys0, used0 = pages.view.st(L.ST_HEAP_SYS), heap.arena_used
    s = pages.alloc(10)
    assert heap.arena_used - used0 == MB
    assert pages.view.st(L.ST_HEAP_SYS) - sys0 == MB
    assert pages.start(s) == used0  # carved from the start of the new memory
    assert [sp.npages for sp in pages.view.free_spans()] == [256 - 10]


def test_growth_rounds_to_64k(heap, pages) -> None:
    _fill_free_space(pages)
    for npages, want in ((300, 304), (257, 272), (320, 320), (321, 336)):
        used0 = heap.arena_used
        pages.alloc(npages)
        assert heap.arena_used - used0 == want * PAGE_SIZE, npages
        _fill_free_space(pages)


def test_grow_adds_a_free_span_that_coalesces_with_the_free_end(heap, pages) -> None:
    (last,) = pages.view.large_list() or pages.view.free_list(255)
    assert mheap_grow_at(heap._handle, 1)
    (merged,) = pages.view.large_list()
    assert merged.start == last.start and merged.npages == last.npages + 256


def test_bitmap_grows_in_8k_chunks_with_arena_used(heap, pages) -> None:
    v = pages.view
    for npages in (300, 1000, 3000):
        pages.alloc(npages)
        need = (heap.arena_used - heap.arena_start) // 16
        assert v.h(L.H_BITMAP_MAPPED) == -(-need // 8192) * 8192


def test_grow_falling_back_to_a_small_request_fails_the_allocation() -> None:
    # mallocinit maps 1 MB of arena and 64 KB of bitmap; allow the bitmap of one more MB and
    # 64 KB of arena: asking for 1 MB fails, the fallback of exactly 16 pages succeeds.
    limit = MB + (MB // 16) + (MB // 16) + (64 << 10)
    with small_heap(os=FailingOS(map_limit=limit)) as h:
        pages = Pages(h)
        _fill_free_space(pages)
        sys0 = pages.view.st(L.ST_HEAP_SYS)
        assert mheap_alloc_at(h._handle, pages.c, 10, 0, True, False) == 0  # the seed's quirk: nil
        assert pages.view.st(L.ST_HEAP_SYS) == sys0 + (64 << 10)
        (fresh,) = pages.view.free_list(16)  # the new span sits on an exact list...
        assert pages.start(pages.alloc(10)) == fresh.start  # ...and serves the next request
        h.check()


# ---------------------------------------------------------------- the span map and lookups


def test_in_use_span_owns_every_map_entry(heap, pages) -> None:
    s = pages.alloc(40)
    start = pages.start(s)
    for k in range(40):
        assert pages.view.map_entry(start + k * PAGE_SIZE) == s
        assert mheap_lookup_at(heap._handle, start + k * PAGE_SIZE + 123) == s
        assert mheap_lookup_maybe_at(heap._handle, start + k * PAGE_SIZE + 4095) == s


def test_lookup_maybe_rejects_free_stale_and_outside_addresses(heap, pages) -> None:
    a, b = pages.alloc(8), pages.alloc(8)
    guard = pages.alloc(1)
    sa, sb = pages.start(a), pages.start(b)
    pages.free(b)
    pages.free(a)  # a absorbs b: b's interior map entries are stale now
    assert pages.view.map_entry(sb + 3 * PAGE_SIZE) == b
    assert pages.view.span(b).state == MSPAN_DEAD
    for addr in (sa, sa + 5 * PAGE_SIZE, sb, sb + 3 * PAGE_SIZE, sb + 7 * PAGE_SIZE):
        assert mheap_lookup_maybe_at(heap._handle, addr) == 0, hex(addr)
    assert mheap_lookup_maybe_at(heap._handle, heap.arena_start - 8) == 0
    assert mheap_lookup_maybe_at(heap._handle, heap.arena_used) == 0
    assert mheap_lookup_maybe_at(heap._handle, pages.start(guard)) == guard
    # the merged span is trimmed with a recycled record: b's, which now describes other pages
    assert pages.alloc(3) == a
    tail = pages.view.span(b)
    assert (tail.state, tail.start, tail.npages) == (MSPAN_FREE, sa + 3 * PAGE_SIZE, 13)
    assert pages.view.map_entry(sa + 5 * PAGE_SIZE) == a  # stale: a has only 3 pages now
    assert mheap_lookup_maybe_at(heap._handle, sa + 5 * PAGE_SIZE) == 0
    assert mheap_lookup_maybe_at(heap._handle, sa + 2 * PAGE_SIZE) == a


# ---------------------------------------------------------------- statistics


def test_heap_stats_follow_alloc_and_free(heap, pages) -> None:
    v = pages.view
    idle, inuse, sys_, alloc, objects = (v.st(x) for x in (L.ST_HEAP_IDLE, L.ST_HEAP_INUSE, L.ST_HEAP_SYS, L.ST_HEAP_ALLOC, L.ST_HEAP_OBJECTS))
    s = pages.alloc(17)
    assert v.st(L.ST_HEAP_INUSE) == inuse + 17 * PAGE_SIZE
    assert v.st(L.ST_HEAP_IDLE) == idle - 17 * PAGE_SIZE
    assert v.st(L.ST_HEAP_SYS) == sys_ == v.st(L.ST_HEAP_IDLE) + v.st(L.ST_HEAP_INUSE)
    assert v.st(L.ST_HEAP_ALLOC) == alloc + 17 * PAGE_SIZE  # acct=1: counted at once, not lagging
    assert v.st(L.ST_HEAP_OBJECTS) == objects + 1
    pages.free(s)
    assert (v.st(L.ST_HEAP_IDLE), v.st(L.ST_HEAP_INUSE), v.st(L.ST_HEAP_ALLOC), v.st(L.ST_HEAP_OBJECTS)) == (idle, inuse, alloc, objects)


def test_mspan_stats_track_the_span_records(heap, pages) -> None:
    v = pages.view
    live = len(v.live_spans())
    assert v.st(L.ST_MSPAN_INUSE) == live * 104 and v.st(L.ST_MSPAN_SYS) == 128 << 10
    s = pages.alloc(3)  # trims: one more record
    assert v.st(L.ST_MSPAN_INUSE) == (live + 1) * 104
    pages.free(s)  # merges back: one fewer
    assert v.st(L.ST_MSPAN_INUSE) == live * 104


def test_scavenge_releases_spans_idle_longer_than_the_limit(heap, pages) -> None:
    v = pages.view
    a = heap._arrays
    a.h[L.H_CLOCK_VIRTUAL] = 1
    a.h[L.H_NOW] = 10_000
    old, _ = pages.isolated(5)
    a.h[L.H_NOW] = 20_000
    young, _ = pages.isolated(7)
    mem, base = a.mem, v.h(L.H_BASE)
    so, sy = pages.start(old), pages.start(young)
    mem[(so - base) >> 3] = 1
    mem[(sy - base) >> 3] = 1
    a.h[L.H_NOW] = 10_000
    pages.free(old)
    a.h[L.H_NOW] = 20_000
    pages.free(young)
    sys0, released0 = v.st(L.ST_SYS), v.st(L.ST_HEAP_RELEASED)
    got = mheap_scavenge_at(heap._handle, 25_000, 10_000)  # only spans idle more than 10 us
    assert got >= 5 * PAGE_SIZE
    assert v.span(old).npreleased == 5 and v.word(so) == 0  # MADV_DONTNEED: reads back as zero
    assert v.span(young).npreleased == 0 and v.word(sy) == 1
    assert v.st(L.ST_HEAP_RELEASED) == released0 + got
    assert v.st(L.ST_SYS) == sys0  # SysUnused does not lower Sys
    assert mheap_scavenge_at(heap._handle, 25_000, 10_000) == 0  # nothing new to release
    assert v.st(L.ST_HEAP_RELEASED) == released0 + got
    s = pages.alloc(5)
    assert pages.start(s) == so
    assert v.st(L.ST_HEAP_RELEASED) == released0 + got - 5 * PAGE_SIZE


def test_heap_alloc_purges_the_calling_cache_stats(heap, pages) -> None:
    v = pages.view
    c = pages.c
    heap.alloc(16)  # counted in the cache, not yet in MStats
    assert v.local(c, L.LC_LOCAL_CACHEALLOC) == 16 and v.local(c, L.LC_LOCAL_NMALLOC) == 1
    before = v.st(L.ST_HEAP_ALLOC)
    s = pages.alloc(2)
    assert v.local(c, L.LC_LOCAL_CACHEALLOC) == 0 and v.local(c, L.LC_LOCAL_NMALLOC) == 0
    assert v.st(L.ST_HEAP_ALLOC) == before + 16 + 2 * PAGE_SIZE
    heap.alloc(16)
    pages.free(s)  # MHeap_Free purges too
    assert v.local(c, L.LC_LOCAL_CACHEALLOC) == 0
    assert v.st(L.ST_HEAP_ALLOC) == before + 32


def test_span_records_are_recycled_lifo(heap, pages) -> None:
    v = pages.view
    nspan = v.h(L.H_NSPAN)
    a = pages.alloc(3)
    b = pages.alloc(3)
    guard = pages.alloc(1)
    nspan1 = v.h(L.H_NSPAN)
    pages.free(b)
    pages.free(a)  # a absorbs b: b's record is dead and first on spanalloc's list
    assert v.span(b).state == MSPAN_DEAD
    assert pages.alloc(2) == a  # the merged span itself...
    assert v.h(L.H_NSPAN) == nspan1 and nspan1 > nspan  # ...trimmed with b's recycled record
    assert {sp.id for sp in v.free_list(4)} == {b}
    assert v.span(guard).state == MSPAN_IN_USE
