"""mallocinit and the seed's headline property: heap metadata allocated at run time, sized
from the arena, paged in lazily. RSS is read from /proc/self/statm after a warm-up heap has
compiled and paged in the code, so that only the heap under test moves it."""

from __future__ import annotations

import gc

import pytest
from heaptools import View, rss_bytes, small_heap

import goheap
from goheap._runtime import layout as L
from goheap._runtime.constants import MAX_MEM, PAGE_SHIFT
from goheap._runtime.mallocinit import check_arena_size, mheap_record_bytes

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

MB = 1 << 20


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    with goheap.Heap(gcpercent=-1) as h:
        for _ in range(3):
            h.free(h.alloc(512))
        h.read_mem_stats()
        h.check()
    gc.collect()


def _settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def test_a_128gb_heap_costs_little_rss() -> None:
    before = _settled_rss()
    h = goheap.Heap(gcpercent=-1)
    try:
        grown = rss_bytes() - before
        assert h.arena_end - h.arena_start == MAX_MEM
        assert grown < 16 * MB, f"building a 128 GB heap raised RSS by {grown >> 20} MB"
        # the seed's accounting still charges the full 256 MB MHeap record to Sys
        assert h.read_mem_stats().sys > 256 * MB
    finally:
        h.close()


def test_metadata_rss_grows_with_the_arena_used_not_with_the_maps() -> None:
    h = goheap.Heap(gcpercent=-1, memprofilerate=0)
    try:
        v = View(h)
        h.alloc(512)
        before = _settled_rss()
        used0 = h.arena_used
        for _ in range((64 * MB) // 512):
            h.alloc(512)
        used = h.arena_used - used0
        grown = rss_bytes() - before
        assert used >= 64 * MB
        metadata = grown - used  # every arena page of a carved span was written
        # bitmap: arena/16; span records: 128 B per span of >= 1 page; span map: 4 B per page
        bound = used // 16 + used // 32 + (used >> PAGE_SHIFT) * 4 + 4 * MB
        assert metadata < bound, f"{metadata >> 20} MB of metadata for {used >> 20} MB of arena"
        whole_maps = h._arrays.spanmap.nbytes + h._arrays.spans.nbytes
        assert whole_maps > 4 * 1024 * MB  # what paging everything in would cost
        assert v.h(L.H_BITMAP_MAPPED) == -(-((h.arena_used - h.arena_start) // 16) // 8192) * 8192
        h.check()
    finally:
        h.close()


def test_many_heaps_coexist_in_one_process() -> None:
    before = _settled_rss()
    heaps = [goheap.Heap(gcpercent=-1) for _ in range(6)]
    try:
        starts = sorted(h.arena_start for h in heaps)
        assert all(a + MAX_MEM <= b for a, b in zip(starts, starts[1:], strict=False))
        ps = [h.alloc(1000 * (k + 1)) for k, h in enumerate(heaps)]
        for k, (h, p) in enumerate(zip(heaps, ps, strict=True)):
            st = h.read_mem_stats()
            assert st.heap_objects == 1 and h.lookup(p)[0] == p, k
        assert rss_bytes() - before < 6 * 16 * MB
        heaps[2].close()
        for k, h in enumerate(heaps):
            if k != 2:
                h.free(ps[k])
                h.check()
    finally:
        for h in heaps:
            h.close()


def test_arena_size_must_be_whole_megabytes() -> None:
    for bad in (0, MB - 1, MB + 4096, -MB, 1.5 * MB, "1 MB"):
        with pytest.raises(goheap.InvalidSize, match="arena size"):
            check_arena_size(bad)
    check_arena_size(MB)
    assert mheap_record_bytes(MAX_MEM) == 268_476_544  # the seed's sizeof(MHeap)


def test_heaps_of_any_arena_size_start_alike() -> None:
    for arena in (MB, 64 * MB, 4096 * MB):
        with small_heap(arena_size=arena) as h:
            st = h.read_mem_stats()
            assert (st.heap_sys, st.heap_inuse, st.mallocs, st.frees) == (MB, 4096, 1, 1)  # free(malloc(1))
            assert st.total_alloc == 8 and st.heap_alloc == 0
            h.check()
