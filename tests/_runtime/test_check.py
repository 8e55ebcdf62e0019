"""Heap.check(): every invariant holds on a working heap, and each deliberately broken one is
named. The corruption is done on a copy of the state, so the heap itself stays valid."""

from __future__ import annotations

import numpy as np
import pytest
from heaptools import View, small_heap

import goheap
from goheap._runtime import layout as L
from goheap._runtime.check import check_heap
from goheap._runtime.constants import BIT_ALLOCATED, BIT_MARKED, PAGE_SIZE

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

C16 = 2
C48 = 4


@pytest.fixture(scope="module")
def heap():
    with small_heap(arena_size=4 << 20) as h:
        keep = [h.alloc(n) for n in (16, 16, 16, 48, 48, 3000, 50000)]
        h.free(h.alloc(16))
        big = h.alloc(20000 * 3)
        h.alloc(8)
        h.free(big)  # a free span between in-use ones
        h.keep = keep
        yield h


def _copy(heap: goheap.Heap) -> L.RuntimeArrays:
    """The state check() reads, copied; the unmapped part of the reservation stays zero."""
    a = heap._arrays
    base, start, used = (int(a.h[x]) for x in (L.H_BASE, L.H_ARENA_START, L.H_ARENA_USED))
    lo = (start - int(a.h[L.H_BITMAP_MAPPED]) - base) >> 3
    hi = (used - base) >> 3
    mem = np.zeros_like(a.mem)
    mem[lo:hi] = a.mem[lo:hi]
    names = ("h", "mstats", "spans", "spanmap", "fixalloc", "central_nfree", "cache_list", "cache_local", "gcstats")
    return a._replace(mem=mem, **{n: getattr(a, n).copy() for n in names})


def _word_index(a: L.RuntimeArrays, addr: int) -> int:
    return (addr - int(a.h[L.H_BASE])) >> 3


def _bit_index(a: L.RuntimeArrays, addr: int) -> tuple[int, int]:
    start, base = int(a.h[L.H_ARENA_START]), int(a.h[L.H_BASE])
    off = (addr - start) >> 3
    return ((start - base) >> 3) - (off >> 4) - 1, off & 15


def _broken(heap: goheap.Heap, match: str, corrupt) -> None:
    a = _copy(heap)
    check_heap(a)  # the copy is sound before it is broken
    corrupt(a, View(heap))
    with pytest.raises(goheap.HeapCorrupted, match=match):
        check_heap(a)
    heap.check()  # and the heap itself never was touched


def test_a_working_heap_passes(heap) -> None:
    heap.check()
    check_heap(_copy(heap))


def test_broken_free_list_prev_link(heap) -> None:
    def corrupt(a, v):
        (sp, *_) = v.free_spans()
        a.spans[sp.id, L.SP_PREV] = sp.id
    _broken(heap, r"mheap\.(free\[\d+\]|large): span \d+ has prev", corrupt)


def test_free_span_on_no_list(heap) -> None:
    def corrupt(a, v):
        sp = v.free_spans()[0]
        head = L.FREE_HEAD0 + sp.npages if sp.npages < 256 else L.LARGE_HEAD
        a.spans[head, L.SP_NEXT] = a.spans[sp.id, L.SP_NEXT]
        a.spans[int(a.spans[sp.id, L.SP_NEXT]), L.SP_PREV] = head
    _broken(heap, r"free span \d+ is on no free list", corrupt)


def test_object_link_leaving_its_span(heap) -> None:
    def corrupt(a, v):
        span = v.span_of(heap.keep[3])  # the 48-byte class span
        a.mem[_word_index(a, span.freelist)] = span.start + 5 * PAGE_SIZE
    _broken(heap, r"span \d+: free object 0x[0-9a-f]+ is outside its span", corrupt)


def test_free_list_cycle(heap) -> None:
    def corrupt(a, v):
        span = v.span_of(heap.keep[3])
        chain = v.chain(span.freelist)
        a.mem[_word_index(a, chain[-1])] = chain[0]
    _broken(heap, r"free list has a cycle at 0x", corrupt)


def test_span_map_entry_of_an_in_use_span(heap) -> None:
    def corrupt(a, v):
        p = heap.keep[6]  # the large object: 13 pages
        a.spanmap[((p - heap.arena_start) >> 12) + 5] = v.span_of(heap.keep[0]).id
    _broken(heap, r"span map: page 0x[0-9a-f]+ of in-use span \d+ maps to \d+", corrupt)


def test_overlapping_spans(heap) -> None:
    def grow_into_the_next(a, v):
        a.spans[v.span_of(heap.keep[0]).id, L.SP_NPAGES] += 1
    # the span's own map entries are checked before its neighbour's start: that is what fails
    _broken(heap, r"span map: page 0x[0-9a-f]+ of in-use span \d+ maps to", grow_into_the_next)

    def start_inside_the_previous(a, v):
        second = v.live_spans()[1]
        a.spans[second.id, L.SP_START] -= 1  # now it claims the first span's page too
        a.spans[second.id, L.SP_NPAGES] += 1
    _broken(heap, r"span \d+ at page 0x[0-9a-f]+ overlaps the previous span", start_inside_the_previous)

    def past_the_end(a, v):
        last = v.live_spans()[-1]
        a.spans[last.id, L.SP_NPAGES] += 1
    _broken(heap, r"outside the used arena", past_the_end)


@pytest.mark.parametrize(
    ("slot", "name"),
    [(L.ST_HEAP_IDLE, "heap_idle"), (L.ST_HEAP_INUSE, "heap_inuse"), (L.ST_HEAP_RELEASED, "heap_released"),
     (L.ST_HEAP_ALLOC, "heap_alloc"), (L.ST_HEAP_OBJECTS, "heap_objects")],
)
def test_a_wrong_stat(heap, slot, name) -> None:
    def corrupt(a, v):
        a.mstats[slot] += 4096
    _broken(heap, rf"stats: {name}", corrupt)


def test_cache_nlist_and_size(heap) -> None:
    c = heap.cache()

    def nlist(a, v):
        a.cache_list[c, C16, L.L_NLIST] += 1
    _broken(heap, rf"mcache {c} class {C16}: nlist is", nlist)

    def size(a, v):
        a.cache_local[c, L.LC_SIZE] -= 16
    _broken(heap, rf"mcache {c}: size is", size)


def test_cached_object_marked_allocated(heap) -> None:
    c = heap.cache()

    def corrupt(a, v):
        p = v.cache_list(c, C16)[0]
        i, shift = _bit_index(a, p)
        a.mem[i] |= np.int64(BIT_ALLOCATED) << shift
    _broken(heap, r"cached object 0x[0-9a-f]+ is marked allocated", corrupt)


def test_central_nfree(heap) -> None:
    def corrupt(a, v):
        a.central_nfree[C48] += 1
    _broken(heap, rf"mcentral\[{C48}\]: nfree is", corrupt)


def test_span_ref(heap) -> None:
    def corrupt(a, v):
        a.spans[v.span_of(heap.keep[3]).id, L.SP_REF] += 1
    _broken(heap, r"span \d+: ref \d+ \+ \d+ free objects != 85", corrupt)


def test_mark_bit_left_after_a_sweep(heap) -> None:
    def corrupt(a, v):
        i, shift = _bit_index(a, heap.keep[4])
        a.mem[i] |= np.int64(BIT_MARKED) << shift
    _broken(heap, r"a mark bit survived the sweep", corrupt)


def test_spanalloc_inuse(heap) -> None:
    def corrupt(a, v):
        a.fixalloc[L.FA_SPAN, L.FA_INUSE] += 104
    a = _copy(heap)
    a = a._replace(fixalloc=a.fixalloc.copy())
    corrupt(a, None)
    with pytest.raises(goheap.HeapCorrupted, match=r"spanalloc: inuse \d+ does not match"):
        check_heap(a)


def test_span_on_the_wrong_central_list(heap) -> None:
    def corrupt(a, v):
        s = v.span_of(heap.keep[3]).id
        head = L.NONEMPTY_HEAD0 + C48
        a.spans[head, L.SP_NEXT] = head
        a.spans[head, L.SP_PREV] = head
        a.spans[s, L.SP_NEXT] = a.spans[s, L.SP_PREV] = 0
    _broken(heap, rf"span \d+ of class {C48} is on neither central list", corrupt)


def test_bits_in_a_free_span(heap) -> None:
    def corrupt(a, v):
        sp = v.free_spans()[0]
        i, shift = _bit_index(a, sp.start + 3 * PAGE_SIZE + 64)
        a.mem[i] |= np.int64(BIT_ALLOCATED) << shift
    _broken(heap, r"bitmap: free span \d+ at 0x[0-9a-f]+ has bits set", corrupt)


def test_bits_inside_a_large_object(heap) -> None:
    def corrupt(a, v):
        i, shift = _bit_index(a, heap.keep[6] + 8)  # the second word: same bitmap word, shift 1
        a.mem[i] |= np.int64(BIT_ALLOCATED) << shift
    _broken(heap, rf"bitmap: large object {heap.keep[6]:#x} has bits beyond its first word", corrupt)

    def further(a, v):
        i, shift = _bit_index(a, heap.keep[6] + 5 * PAGE_SIZE)
        a.mem[i] |= np.int64(BIT_MARKED) << shift
    _broken(heap, rf"bitmap: large object {heap.keep[6]:#x}", further)
