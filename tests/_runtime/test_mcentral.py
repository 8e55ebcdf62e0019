"""The central free lists (mcentral.c): carving spans in address order, transfer batches from
one span, the nonempty/empty lists, nfree, and spans going back to the heap."""

from __future__ import annotations

import pytest
from heaptools import View, mcentral_alloc_list_at, mcentral_free_list_at, objects_per_span, small_heap

from goheap._runtime import layout as L
from goheap._runtime.constants import BIT_BLOCK_BOUNDARY, MSPAN_FREE, MSPAN_IN_USE, PAGE_SIZE

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

C16 = 2  # the 16-byte class
C48 = 4  # 48 bytes: 85 objects and a 16-byte tail per page
C32K = 60  # 32768 bytes: one object per 8-page span, transfer count 2


@pytest.fixture
def heap():
    with small_heap() as h:
        yield h
        h.check()


def _batch(heap, sizeclass: int, n: int) -> list[int]:
    count, first = mcentral_alloc_list_at(heap._handle, heap.cache(), sizeclass, n)
    objs = View(heap).chain(first)
    assert len(objs) == count
    return objs


def _give_back(heap, sizeclass: int, objs: list[int]) -> None:
    """Link objs into a nil-terminated chain and return it with MCentral_FreeList."""
    mem, base = heap._arrays.mem, int(heap._arrays.h[L.H_BASE])
    for p, q in zip(objs, objs[1:] + [0], strict=True):
        mem[(p - base) >> 3] = q
    mcentral_free_list_at(heap._handle, heap.cache(), sizeclass, objs[0])


def test_grow_carves_a_span_in_address_order(heap) -> None:
    v = View(heap)
    objs = _batch(heap, C48, 10)
    (span,) = v.nonempty(C48)
    assert objs == [span.start + 48 * k for k in range(10)]
    assert v.chain(span.freelist) == [span.start + 48 * k for k in range(10, 85)]
    assert span.limit == span.start + 85 * 48 and span.ref == 10
    assert v.central_nfree(C48) == 75
    # boundary bits at every object start, and one past the last object (a 16-byte tail)
    for k in range(86):
        assert v.bits(span.start + 48 * k) == BIT_BLOCK_BOUNDARY, k
    assert v.bits(span.start + 24) == 0
    _give_back(heap, C48, objs)


def test_a_batch_comes_from_one_span_and_may_be_short(heap) -> None:
    v = View(heap)
    first = _batch(heap, C32K, 2)
    assert len(first) == 1  # transfercount 2, but one object per span
    (span,) = v.empty(C32K)  # handed out completely: on the empty list
    assert span.start == first[0] and v.nonempty(C32K) == []
    second = _batch(heap, C32K, 2)
    assert len(second) == 1 and second[0] != first[0]
    assert len(v.empty(C32K)) == 2
    _give_back(heap, C32K, first)
    _give_back(heap, C32K, second)


def test_batches_drain_the_first_nonempty_span_then_move_it_to_empty(heap) -> None:
    v = View(heap)
    n = objects_per_span(heap, C16)
    assert n == 256
    batches = [_batch(heap, C16, 32) for _ in range(8)]
    (span,) = v.empty(C16)
    assert span.ref == 256 and span.freelist == 0
    assert v.central_nfree(C16) == 0
    assert [p for b in batches for p in b] == [span.start + 16 * k for k in range(256)]
    nxt = _batch(heap, C16, 32)  # a second span
    assert len(v.nonempty(C16)) == 1 and nxt[0] == span.start + 4096  # the next page of the arena
    for b in batches + [nxt]:
        _give_back(heap, C16, b)


def test_first_free_object_moves_a_span_back_to_nonempty(heap) -> None:
    v = View(heap)
    objs = [p for _ in range(8) for p in _batch(heap, C16, 32)]
    keep = _batch(heap, C16, 1)  # another span, so the first is not the only one
    assert len(v.empty(C16)) == 1
    _give_back(heap, C16, objs[5:6])
    (span,) = [sp for sp in v.nonempty(C16) if sp.start == objs[0]]
    assert span.freelist == objs[5] and span.ref == 255
    assert v.nonempty(C16)[0].start == objs[0]  # inserted at the head
    assert v.central_nfree(C16) == 1 + 255  # the one returned, and the second span's 255
    _give_back(heap, C16, objs[:5] + objs[6:])
    _give_back(heap, C16, keep)


def test_span_with_no_objects_out_goes_back_to_the_heap_dirty(heap) -> None:
    v = View(heap)
    objs = _batch(heap, C48, 20)
    (span,) = v.nonempty(C48)
    inuse = v.st(L.ST_HEAP_INUSE)
    _give_back(heap, C48, objs)
    assert v.nonempty(C48) == v.empty(C48) == []
    assert v.central_nfree(C48) == 0
    back = v.span(span.id)  # free, and merged with the free rest of the arena on its right
    assert back.state == MSPAN_FREE and back.start == span.start and back.npages > 1
    assert v.word(span.start) == 1  # needs zeroing
    assert all(v.bits(span.start + 8 * k) == 0 for k in range(PAGE_SIZE // 8))  # unmarkspan
    assert v.st(L.ST_HEAP_INUSE) == inuse - PAGE_SIZE
    again = _batch(heap, C48, 3)  # reused: MHeap_Alloc clears it, Grow carves it afresh
    assert again == [span.start, span.start + 48, span.start + 96]
    assert v.word(span.start + 3 * 48 + 8) == 0 and v.span_of(span.start).state == MSPAN_IN_USE
    _give_back(heap, C48, again)


def test_multi_page_class_spans(heap) -> None:
    v = View(heap)
    c1408 = 32  # 3 pages, 8 objects, 1024-byte tail
    objs = _batch(heap, c1408, 32)
    assert len(objs) == 8
    (span,) = v.empty(c1408)
    assert span.npages == 3 and span.limit == span.start + 8 * 1408
    assert v.bits(span.start + 8 * 1408) == BIT_BLOCK_BOUNDARY  # the tail starts a "free block"
    for k in range(3):
        assert v.map_entry(span.start + k * PAGE_SIZE) == span.id
    _give_back(heap, c1408, objs)
