"""Per-thread caches (mcache.c): transfer batches, LIFO lists, nlist/nlistmin, the release
rules (a list of 256, a cache of 2 MB), lagging statistics, and one cache per thread."""

from __future__ import annotations

import gc
import threading

import pytest
from heaptools import View, class_of, small_heap

from goheap._runtime import entry
from goheap._runtime import layout as L

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

C16 = 2
C32K = 60


@pytest.fixture
def heap():
    with small_heap() as h:
        yield h
        h.check()


def test_first_allocation_takes_a_transfer_batch(heap) -> None:
    v, c = View(heap), heap.cache()
    p = heap.alloc(16)
    assert v.nlist(c, C16) == 31  # transfercount 32, one handed out
    # (class 1 holds the batch of mallocinit's smoke test, free(malloc(1)))
    assert v.local(c, L.LC_SIZE) == 31 * 16 + v.nlist(c, 1) * 8
    assert v.central_nfree(C16) == 256 - 32
    assert v.cache_list(c, C16) == [p + 16 * k for k in range(1, 32)]  # address order
    ps = [heap.alloc(16) for _ in range(31)]
    assert ps == [p + 16 * k for k in range(1, 32)]
    assert v.nlist(c, C16) == 0
    q = heap.alloc(16)  # the next batch, from the same span
    assert q == p + 32 * 16 and v.nlist(c, C16) == 31
    assert v.central_nfree(C16) == 256 - 64


def test_free_and_alloc_are_lifo(heap) -> None:
    v, c = View(heap), heap.cache()
    ps = [heap.alloc(100) for _ in range(5)]
    for p in ps:
        heap.free(p)
    assert v.cache_list(c, class_of(heap, 100))[:5] == ps[::-1]
    assert [heap.alloc(100) for _ in range(5)] == ps[::-1]


def test_nlistmin_is_the_low_water_mark(heap) -> None:
    v, c = View(heap), heap.cache()
    ps = [heap.alloc(16) for _ in range(10)]  # nlist 31 -> 22
    assert v.nlistmin(c, C16) == 0  # it started at 0 and has not been reset
    for p in ps:
        heap.free(p)
    assert (v.nlist(c, C16), v.nlistmin(c, C16)) == (32, 0)


def test_a_list_of_256_releases_one_transfer_batch(heap) -> None:
    v, c = View(heap), heap.cache()
    ps = [heap.alloc(16) for _ in range(300)]
    held = v.nlist(c, C16)
    for k, p in enumerate(ps):
        heap.free(p)
        if held + k + 1 < 256:
            assert v.nlist(c, C16) == held + k + 1
        elif held + k + 1 == 256:
            # the list reached 256: its first 32 entries (the last 32 freed) went to the MCentral
            assert v.nlist(c, C16) == 224
            released = ps[k - 31 : k + 1]
            assert not set(released) & set(v.cache_list(c, C16))
            spans = {v.span_of(q).id for q in released}
            on_spans = {q for s in spans for q in v.chain(v.span(s).freelist)}
            assert set(released) <= on_spans
            break
    else:
        pytest.fail("the list never reached 256")
    for p in ps[k + 1 :]:
        heap.free(p)


def test_a_cache_of_2mb_scavenges_every_list_by_nlistmin(heap) -> None:
    v, c = View(heap), heap.cache()
    small = [heap.alloc(16) for _ in range(20)]  # class 2: nlist 12, nlistmin 0
    big = [heap.alloc(32768) for _ in range(66)]  # class 60: nlist 0 at each step
    assert v.nlistmin(c, C32K) == 0
    for k, p in enumerate(big[:64]):
        heap.free(p)
    # the 64th free brought the cache to 2 MB + the small objects: every nlistmin was 0, so
    # nothing was released, and each nlistmin became its list's length
    assert v.nlist(c, C32K) == 64
    assert v.nlistmin(c, C32K) == 64 and v.nlistmin(c, C16) == v.nlist(c, C16) == 12
    heap.free(big[64])  # still >= 2 MB: release half of each low-water mark
    assert v.nlist(c, C32K) == 65 - 32 and v.nlistmin(c, C32K) == 33
    assert v.nlist(c, C16) == 12 - 6 and v.nlistmin(c, C16) == 6
    # class 1's 32 objects (mallocinit's) had nlistmin 0 then 32: half of them went too
    assert v.nlist(c, 1) == 16
    assert v.local(c, L.LC_SIZE) == 33 * 32768 + 6 * 16 + 16 * 8
    heap.free(big[65])
    for p in small:
        heap.free(p)


def test_objects_are_zeroed_lazily_through_word_one(heap) -> None:
    v = View(heap)
    p = heap.alloc(64)
    heap.view(p, "i8")[:] = 7
    heap.free(p)
    assert v.word(p + 8) == 1  # the needs-zeroing mark
    assert heap.alloc(64, zeroed=False) == p
    assert v.word(p) == 0 and v.word(p + 8) == 1 and v.word(p + 16) == 7  # only the link is cleared
    heap.free(p)
    assert heap.alloc(64) == p
    assert not heap.view(p, "i8").any()
    q = heap.alloc(8)
    heap.view(q, "i8")[:] = 5
    nxt = heap.alloc(8)
    heap.view(nxt, "i8")[:] = 9
    heap.free(q)
    assert v.word(q + 8) == 9  # 8-byte objects have no word 1: the neighbour is untouched
    assert heap.alloc(8) == q and v.word(q) == 0


# ---------------------------------------------------------------- lagging statistics


def test_cached_stats_lag_until_read_mem_stats(heap) -> None:
    v, c = View(heap), heap.cache()
    heap.read_mem_stats()
    base = {s: v.st(s) for s in (L.ST_HEAP_ALLOC, L.ST_HEAP_OBJECTS, L.ST_NMALLOC, L.ST_NFREE, L.ST_ALLOC, L.ST_TOTAL_ALLOC, L.ST_NLOOKUP)}
    by0 = heap._arrays.by_size[C16].copy()
    # the first 16-byte allocation takes a span: MHeap_Alloc purges the cache's deltas
    # first, then this allocation is counted in the cache
    p = heap.alloc(16)
    base = {s: v.st(s) for s in base}
    ps = [heap.alloc(16) for _ in range(5)]
    heap.free(ps[0])
    heap.lookup(p)
    assert {s: v.st(s) for s in base} == base  # nothing reached MStats
    assert v.local(c, L.LC_LOCAL_CACHEALLOC) == 5 * 16 and v.local(c, L.LC_LOCAL_OBJECTS) == 5
    assert v.local(c, L.LC_LOCAL_NMALLOC) == 6 and v.local(c, L.LC_LOCAL_NFREE) == 1
    assert v.local(c, L.LC_LOCAL_NLOOKUP) == 2  # the lookup, and the free's own mlookup (as the seed's)
    assert list(heap._arrays.cache_by_size[c, C16]) == [6, 1]
    st = heap.read_mem_stats()  # cachestats: every cache folded in
    assert st.heap_alloc == base[L.ST_HEAP_ALLOC] + 80 and st.heap_objects == base[L.ST_HEAP_OBJECTS] + 5
    assert st.mallocs == base[L.ST_NMALLOC] + 6 and st.frees == base[L.ST_NFREE] + 1
    assert st.lookups == base[L.ST_NLOOKUP] + 2
    assert st.alloc == st.heap_alloc  # after a purge they agree
    assert (st.by_size[C16].mallocs, st.by_size[C16].frees) == (by0[1] + 6, by0[2] + 1)
    assert v.local(c, L.LC_LOCAL_CACHEALLOC) == 0 and list(heap._arrays.cache_by_size[c, C16]) == [0, 0]


def test_the_gc_trigger_reads_the_lagging_heap_alloc() -> None:
    with small_heap(gcpercent=100) as h:
        v = View(h)
        first = h.alloc(16)  # next_gc starts at 0: the first allocation collects
        assert v.st(L.ST_NUMGC) == 1
        keep = h.roots.add(first)
        next_gc = v.st(L.ST_NEXT_GC)
        heap_alloc = v.st(L.ST_HEAP_ALLOC)
        assert next_gc == 2 * heap_alloc == 32
        # the GC gave every cached object back; the class's span still has 255 free objects.
        # Taking them all goes through the cache and the MCentral only: heap_alloc does not
        # move, so no collection, though 4 KB are handed out against a next_gc of 32 bytes
        for _ in range(255):
            h.alloc(16)
            assert v.st(L.ST_HEAP_ALLOC) == heap_alloc and v.st(L.ST_NUMGC) == 1
        h.alloc(16)  # a new span: MHeap_Alloc purges, heap_alloc jumps, the trigger fires
        assert v.st(L.ST_NUMGC) == 2
        h.roots.remove(keep)
        h.check()


# ---------------------------------------------------------------- several caches


def test_additional_caches_have_their_own_lists_and_stats(heap) -> None:
    v = View(heap)
    c1 = heap.cache()
    inuse = v.st(L.ST_MCACHE_INUSE)
    c2 = int(entry.new_cache(heap._handle))
    assert c2 != c1 and v.st(L.ST_MCACHE_INUSE) == inuse + 2024
    p = heap.alloc(16)
    q = int(entry.alloc(heap._handle, c2, 16, 0, True))
    assert q != p and v.nlist(c2, C16) == 31 and v.nlist(c1, C16) == 31
    assert v.local(c2, L.LC_LOCAL_CACHEALLOC) == 16
    assert int(entry.free(heap._handle, c2, p)) == 0  # any cache may free any object
    assert v.cache_list(c2, C16)[0] == p
    heap.check()
    entry.release_cache(heap._handle, c2)  # as when its thread ends
    assert v.nlist(c2, C16) == 0 and v.local(c2, L.LC_INUSE) == 0
    assert v.st(L.ST_MCACHE_INUSE) == inuse + 2024  # freemcache leaves MCacheInuse, as the seed's
    heap.check()
    heap.free(q)


def test_a_thread_gets_its_own_cache_and_gives_it_back_when_it_ends(heap) -> None:
    v = View(heap)
    main = heap.cache()
    seen: dict[str, int] = {}
    kept: list[int] = []

    def work() -> None:
        c = heap.cache()
        seen["cache"] = c
        ps = [heap.alloc(48) for _ in range(10)]
        for p in ps[:6]:
            heap.free(p)
        kept.extend(ps[6:])
        seen["nlist"] = v.nlist(c, 4)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    gc.collect()
    c = seen["cache"]
    assert c != main and seen["nlist"] == 32 - 10 + 6
    assert v.local(c, L.LC_INUSE) == 0 and c not in heap._caches
    assert v.nlist(c, 4) == 0  # its free objects went back to the MCentral
    st = heap.read_mem_stats()
    assert st.by_size[4].mallocs >= 10 and st.by_size[4].frees >= 6  # its counts were kept
    assert st.heap_objects >= 4
    for p in kept:
        heap.free(p)
