"""Finalizers (goheap._runtime.gc.finalizers and Heap.set_finalizer): when they run, what they may do."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import goheap
from goheap import nb
from goheap._runtime import layout as L
from gcutil import SPECIAL, bits_of, is_live


@pytest.mark.nojit
def test_runs_after_the_collection_that_found_it_unreachable(heap):
    p = heap.alloc(64)
    r = heap.roots.add(p)
    calls = []

    def fin(x):
        # outside the stop-the-world: the finalizer may allocate and collect
        assert int(heap._arrays.h[L.H_IN_GC]) == 0
        heap.alloc(100)
        calls.append(x)

    heap.set_finalizer(p, fin)
    heap.gc()
    assert calls == []
    heap.roots.remove(r)
    n0 = heap.read_mem_stats().num_gc
    heap.gc()
    assert calls == [p]
    # the collection, then the finalizer runner's forced one, which freed p
    assert heap.read_mem_stats().num_gc == n0 + 2
    assert not is_live(heap, p)
    heap.gc()
    assert calls == [p]  # once only
    heap.check()


def test_none_removes_it(heap):
    p = heap.alloc(64)
    calls = []
    heap.set_finalizer(p, calls.append)
    heap.set_finalizer(p, None)
    heap.set_finalizer(p, None)  # removing twice is fine, as in the seed
    n0 = heap.read_mem_stats().num_gc
    heap.gc()
    assert calls == [] and not is_live(heap, p)
    assert heap.read_mem_stats().num_gc == n0 + 1  # no batch, no extra collection
    heap.check()


def test_misuse(heap):
    p = heap.alloc(64)
    heap.roots.add(p)
    heap.set_finalizer(p, print)
    with pytest.raises(goheap.FinalizerError):
        heap.set_finalizer(p, print)
    assert issubclass(goheap.FinalizerError, goheap.HeapError)
    with pytest.raises(goheap.FinalizerError):
        heap.set_finalizer(p, 42)
    with pytest.raises(goheap.AddressError):
        heap.set_finalizer(p + 8, print)  # not a block start
    q = heap.alloc(64)
    heap.free(q)
    with pytest.raises(goheap.AddressError):
        heap.set_finalizer(q, print)  # a free slot
    with pytest.raises(goheap.AddressError):
        heap.set_finalizer(heap.alloc(64, nogc=True), print)  # never collected: would never run
    with pytest.raises(goheap.AddressError):
        heap.set_finalizer(12345, print)
    heap.check()


@pytest.mark.nojit
def test_resurrection_keeps_the_object(heap):
    holder = heap.alloc(16)
    heap.roots.add(holder)
    p = heap.alloc(256)
    cookie = np.arange(32, dtype=np.int64) * 0x1234567
    heap.view(p, np.int64)[:] = cookie
    heap.set_finalizer(p, lambda x: heap.store_ptr(holder, 0, x))
    for _ in range(4):
        heap.gc()
        heap.check()
    assert heap.load_ptr(holder, 0) == p and is_live(heap, p)
    assert (heap.view(p, np.int64) == cookie).all()
    assert bits_of(heap, p) & SPECIAL  # the seed leaves the special bit set
    heap.store_ptr(holder, 0, 0)
    heap.gc()  # special, but no finalizer any more: freed
    assert not is_live(heap, p)
    heap.check()


def test_rearming_runs_it_again(heap):
    p = heap.alloc(64)
    calls = []

    def fin(x):
        calls.append(x)
        if len(calls) < 3:
            heap.set_finalizer(x, fin)

    heap.set_finalizer(p, fin)
    heap.gc()  # each batch's forced collection finds p unreachable again
    assert calls == [p, p, p]
    assert not is_live(heap, p)
    heap.check()


def test_exception_is_a_warning_after_the_batch(heap):
    ps = [heap.alloc(64) for _ in range(3)]
    calls = []

    def bad(x):
        calls.append(x)
        raise ValueError("boom")

    heap.set_finalizer(ps[0], bad)
    heap.set_finalizer(ps[1], calls.append)
    heap.set_finalizer(ps[2], bad)
    with pytest.warns(goheap.FinalizerWarning, match="boom") as record:
        heap.gc()
    assert sorted(calls) == sorted(ps)  # every finalizer of the batch ran
    assert len(record) == 2
    assert not any(is_live(heap, p) for p in ps)
    heap.check()


def test_keyboard_interrupt_requeues_the_rest(heap):
    ps = [heap.alloc(64) for _ in range(3)]
    calls = []

    def fin(x):
        calls.append(x)
        if len(calls) == 1:
            raise KeyboardInterrupt

    for p in ps:
        heap.set_finalizer(p, fin)
    with pytest.raises(KeyboardInterrupt):
        heap.gc()
    assert len(calls) == 1 and int(heap._arrays.gcstats[L.GS_NFINQ]) == 2
    heap.check()
    heap.gc()
    assert sorted(calls) == sorted(ps)
    assert not any(is_live(heap, p) for p in ps)
    heap.check()


def test_free_forgets_the_finalizer(heap):
    p = heap.alloc(64)
    calls = []
    heap.set_finalizer(p, calls.append)
    heap.free(p)
    assert int(heap._arrays.gcstats[L.GS_NFIN]) == 0
    q = heap.alloc(64)
    heap.set_finalizer(q, calls.append)  # possibly the same address: no "already set"
    heap.gc()
    assert calls == [q]
    heap.check()


def test_table_arrays_are_heap_blocks_grown_as_the_seed(heap):
    heap.gc()
    m0 = heap.read_mem_stats()
    p = heap.alloc(64)
    heap.roots.add(p)
    heap.set_finalizer(p, print)
    m1 = heap.read_mem_stats()
    # the first finalizer in a shard allocates its key array (27 words) and value array (27 Fins)
    assert m1.mallocs - m0.mallocs == 1 + 2
    assert m1.heap_alloc - m0.heap_alloc == 64 + 224 + 448  # 216 and 432 bytes rounded to their classes
    # same shard until 3/4 full (20 keys): then x3, the old arrays freed
    shard = (p >> 3) % 17
    heap.set_gc_percent(-1)  # keep the unrooted objects while we pick some
    objs = [heap.alloc(64) for _ in range(2000)]
    same = [q for q in objs if (q >> 3) % 17 == shard][:20]
    assert len(same) == 20
    for q in same:
        heap.roots.add(q)
    before = heap.read_mem_stats()
    for q in same:
        heap.set_finalizer(q, print)
    after = heap.read_mem_stats()
    assert int(heap._arrays.fintab[shard, L.FT_MAX]) == 81
    assert after.mallocs - before.mallocs == 2 and after.frees - before.frees == 2
    heap.check()


def test_each_collection_looks_up_every_finalizer_object(heap):
    objs = [heap.alloc(32) for _ in range(5)]
    for p in objs:
        heap.roots.add(p)
        heap.set_finalizer(p, print)
    l0 = heap.read_mem_stats().lookups
    heap.gc()
    heap.gc()
    assert heap.read_mem_stats().lookups - l0 == 2 * 5  # addfinroots' mlookup
    heap.check()


@numba.njit(cache=True)
def _collect(rt, c):
    nb.gc(rt, c)


def test_newest_finblock_runs_first_and_finblocks_are_recycled(heap):
    order = []
    heap.set_gc_percent(-1)
    objs = [heap.alloc(32) for _ in range(200)]
    for p in objs:
        heap.set_finalizer(p, order.append)
    heap.set_gc_percent(100)
    _collect(heap.runtime, heap.cache())  # queue them, without running them
    n = int(heap._arrays.gcstats[L.GS_NFINQ])
    assert n == 200 and int(heap._arrays.gcstats[L.GS_NFINBLOCKS]) == 2
    queue = [int(x) for x in heap._arrays.finq[:n]]
    heap.after_compiled()
    assert order == queue[169:] + queue[:169]
    heap.check()
    # the second round reuses the two FinBlocks: no more Sys for them
    heap.set_gc_percent(-1)
    objs = [heap.alloc(32) for _ in range(200)]
    for p in objs:
        heap.set_finalizer(p, order.append)
    heap.set_gc_percent(100)
    _collect(heap.runtime, heap.cache())
    assert int(heap._arrays.gcstats[L.GS_NFINBLOCKS]) == 2
    heap.after_compiled()
    heap.check()


def test_a_new_block_survives_the_finalizers_run_by_its_allocation(heap):
    p = heap.alloc(64)
    r = heap.roots.add(p)
    calls = []
    heap.set_finalizer(p, calls.append)
    heap.set_gc_percent(0)
    heap.gc()  # next_gc = heap_alloc: the next allocation collects
    heap.roots.remove(r)
    q = heap.alloc(64)  # collects, finds p unreachable; p's finalizer and collection run before alloc returns
    assert calls == [p] and not is_live(heap, p)
    assert is_live(heap, q)  # held on the shadow stack meanwhile, as on the allocating goroutine's stack
    heap.check()


def test_finalizer_limit():
    with goheap.Heap(arena_size=16 << 20, gctrace=0, limits=goheap.Limits(finalizers=3)) as h:
        objs = [h.alloc(16) for _ in range(4)]
        for p in objs:
            h.roots.add(p)
        for p in objs[:3]:
            h.set_finalizer(p, print)
        with pytest.raises(goheap.OutOfMemory):
            h.set_finalizer(objs[3], print)
        h.set_finalizer(objs[0], None)
        h.set_finalizer(objs[3], print)
        h.check()


def test_free_of_a_queued_object_drops_its_finalizer(heap):
    p, q = heap.alloc(64), heap.alloc(64)
    calls = []
    heap.set_finalizer(p, calls.append)
    heap.set_finalizer(q, calls.append)
    _collect(heap.runtime, heap.cache())  # both queued, not run
    assert int(heap._arrays.gcstats[L.GS_NFINQ]) == 2
    heap.free(p)
    assert int(heap._arrays.gcstats[L.GS_NFINQ]) == 1
    heap.check()
    heap.after_compiled()
    assert calls == [q]
    heap.check()
