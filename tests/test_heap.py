"""The Python shell (heap.py): misuse raises a specific HeapError naming the address or size
and leaves the heap unchanged; closed heaps refuse everything; heaps are independent; many
threads share one heap, each with its own cache."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from heaptools import View, assert_unchanged, small_heap, snapshot

import goheap
from goheap._runtime import entry
from goheap._runtime.constants import MSPAN_FREE, PAGE_SIZE

MB = 1 << 20


@pytest.fixture
def heap():
    with small_heap() as h:
        yield h
        h.check()


def _refused(heap: goheap.Heap, exc: type[Exception], match: str, fn, *args) -> None:
    """fn(*args) raises exc with a message matching ``match``, and nothing changes.

    The caches' stats are folded in first (as ReadMemStats does), since a refused allocation
    may still purge them, as every MHeap_Alloc does; lookups count even when they fail.
    """
    heap.read_mem_stats()
    before = snapshot(heap, lookups=False)
    with pytest.raises(exc, match=match) as info:
        fn(*args)
    assert isinstance(info.value, goheap.HeapError)
    assert_unchanged(before, snapshot(heap, lookups=False))
    heap.check()


@pytest.mark.nojit
def test_error_classes() -> None:
    assert issubclass(goheap.DoubleFree, goheap.InvalidFree)
    assert issubclass(goheap.InvalidFree, goheap.AddressError)
    assert issubclass(goheap.AddressError, goheap.HeapError) and issubclass(goheap.AddressError, ValueError)
    assert issubclass(goheap.InvalidSize, goheap.HeapError) and issubclass(goheap.InvalidSize, ValueError)
    assert issubclass(goheap.OutOfMemory, goheap.HeapError) and issubclass(goheap.OutOfMemory, MemoryError)
    assert issubclass(goheap.HeapClosed, goheap.HeapError) and issubclass(goheap.HeapCorrupted, goheap.HeapError)


# ---------------------------------------------------------------- bad frees


@pytest.mark.nojit
def test_free_outside_the_heap(heap) -> None:
    heap.alloc(16)
    for addr in (heap.arena_start - 8, heap.arena_start - (1 << 20), heap.arena_used, heap.arena_used + 8,
                 heap.arena_end, 0x10, -4096):
        _refused(heap, goheap.AddressError, f"address {addr:#x} is outside the heap", heap.free, addr)
    for addr in (1 << 63, 1 << 64, -(1 << 70)):
        _refused(heap, goheap.AddressError, f"{addr:#x}", heap.free, addr)
    for bad in (1.5, "0xc000401000", None, [1]):
        _refused(heap, goheap.AddressError, "must be an int", heap.free, bad)
    with pytest.raises(goheap.AddressError) as info:
        heap.free(heap.arena_used)
    assert not isinstance(info.value, goheap.InvalidFree)


@pytest.mark.nojit
def test_free_of_an_interior_pointer(heap) -> None:
    p = heap.alloc(100)  # 112-byte class
    for off in (1, 8, 56, 111):
        _refused(heap, goheap.InvalidFree, f"address {p + off:#x} is inside a block", heap.free, p + off)
    big = heap.alloc(50000)
    for off in (8, PAGE_SIZE, 40000):
        _refused(heap, goheap.InvalidFree, f"address {big + off:#x} is inside a block", heap.free, big + off)
    heap.free(p)
    heap.free(big)


@pytest.mark.nojit
def test_free_in_the_tail_waste_of_a_span(heap) -> None:
    p = heap.alloc(48)  # 85 objects, a 16-byte tail
    limit = View(heap).span_of(p).limit
    for addr in (limit, limit + 8):
        _refused(heap, goheap.InvalidFree, f"address {addr:#x} is in the unused tail", heap.free, addr)
    heap.free(p)


@pytest.mark.nojit
def test_free_of_never_allocated_memory(heap) -> None:
    v = View(heap)
    free_span = v.free_spans()[-1]
    addr = free_span.start + 3 * PAGE_SIZE
    _refused(heap, goheap.InvalidFree, f"address {addr:#x} is not in an allocated block", heap.free, addr)


@pytest.mark.nojit
def test_double_free(heap) -> None:
    p = heap.alloc(64)
    q = heap.alloc(64)
    heap.free(p)
    _refused(heap, goheap.DoubleFree, f"address {p:#x} is already free", heap.free, p)
    big = heap.alloc(100000)
    heap.free(big)
    _refused(heap, goheap.DoubleFree, f"address {big:#x} is already free", heap.free, big)
    heap.free(q)
    tiny = heap.alloc(8)
    heap.free(tiny)
    _refused(heap, goheap.DoubleFree, f"address {tiny:#x}", heap.free, tiny)


@pytest.mark.nojit
def test_double_free_after_the_span_went_back_to_the_heap(heap) -> None:
    v = View(heap)
    ps = [heap.alloc(3000) for _ in range(4)]  # class 38: 4 objects in 3 pages, one span
    span = v.span_of(ps[0])
    assert span.start == ps[0] and {v.span_of(p).id for p in ps} == {span.id}
    other = int(entry.new_cache(heap._handle))  # freed into another cache, which then ends:
    for p in ps:
        assert int(entry.free(heap._handle, other, p)) == 0
    entry.release_cache(heap._handle, other)  # the objects go back, and the span to the heap
    assert v.span(span.id).state == MSPAN_FREE and v.word(span.start) == 1
    for p in ps:
        _refused(heap, goheap.DoubleFree, f"address {p:#x} is already free", heap.free, p)
    assert heap.lookup(heap.alloc(3000))[1] == 3072


@pytest.mark.nojit
def test_free_of_zero_is_ignored(heap) -> None:
    before = snapshot(heap)
    heap.free(0)
    assert_unchanged(before, snapshot(heap))


@pytest.mark.nojit
def test_word_access_outside_a_block(heap) -> None:
    p = heap.alloc(16)
    heap.store_ptr(p, 1, 42)
    assert heap.load_ptr(p, 1) == 42
    _refused(heap, goheap.AddressError, "word 2 of the block", heap.store_ptr, p, 2, 1)
    _refused(heap, goheap.AddressError, "word -1 of the block", heap.load_ptr, p, -1)
    _refused(heap, goheap.AddressError, f"{heap.arena_used:#x}", heap.view, heap.arena_used)


# ---------------------------------------------------------------- bad sizes


@pytest.mark.nojit
def test_negative_absurd_and_non_int_sizes(heap) -> None:
    for size in (-1, -(1 << 40), -(1 << 70)):
        _refused(heap, goheap.InvalidSize, f"size {size} is negative", heap.alloc, size)
    for size in (64 * MB + 1, 1 << 62, 1 << 64, 1 << 100):
        _refused(heap, goheap.InvalidSize, f"size {size} is negative or larger than the {64 * MB}-byte arena", heap.alloc, size)
    for size in (1.0, "16", None, True, np.float64(16)):
        _refused(heap, goheap.InvalidSize, "size must be an int", heap.alloc, size)
    _refused(heap, goheap.InvalidSize, "array length -1", heap.alloc_array, heap.register_type("T", 8), -1)
    assert heap.lookup(heap.alloc(np.int64(16)))[1] == 16  # numpy integers are ints


@pytest.mark.nojit
def test_out_of_memory_names_the_size(heap) -> None:
    heap.alloc(40 * MB)
    _refused(heap, goheap.OutOfMemory, f"cannot allocate a {30 * MB}-byte block", heap.alloc, 30 * MB)


# ---------------------------------------------------------------- a closed heap


def _calls(h: goheap.Heap, p: int):
    t = goheap.TypeInfo(1, "T", 8, ())
    return {
        "alloc": lambda: h.alloc(16),
        "alloc_array": lambda: h.alloc_array(t, 2),
        "free": lambda: h.free(p),
        "lookup": lambda: h.lookup(p),
        "store_ptr": lambda: h.store_ptr(p, 0, 1),
        "load_ptr": lambda: h.load_ptr(p, 0),
        "view": lambda: h.view(p),
        "register_type": lambda: h.register_type("U", 8),
        "type_of": lambda: h.type_of(p),
        "gc": h.gc,
        "set_gc_percent": lambda: h.set_gc_percent(50),
        "set_finalizer": lambda: h.set_finalizer(p, print),
        "free_os_memory": h.free_os_memory,
        "now": h.now,
        "advance_clock": lambda: h.advance_clock(10),
        "scavenger_tick": h.scavenger_tick,
        "read_mem_stats": h.read_mem_stats,
        "read_gc_stats": h.read_gc_stats,
        "check": h.check,
        "runtime": lambda: h.runtime,
        "cache": h.cache,
        "after_compiled": h.after_compiled,
        "arena_start": lambda: h.arena_start,
        "arena_used": lambda: h.arena_used,
        "arena_end": lambda: h.arena_end,
        "gctrace_rows": h.gctrace_rows,
        "stack_id": lambda: h.stack_id([]),
        "roots.add": lambda: h.roots.add(p),
        "roots.set": lambda: h.roots.set(0, p),
        "roots.get": lambda: h.roots.get(0),
        "roots.remove": lambda: h.roots.remove(0),
        "roots.clear": h.roots.clear,
        "len(roots)": lambda: len(h.roots),
    }


@pytest.mark.nojit
def test_every_call_after_close_raises_heap_closed() -> None:
    h = small_heap(virtual_clock=True)
    p = h.alloc(16)
    h.roots.add(p)
    calls = _calls(h, p)
    h.close()
    h.close()  # closing twice is fine
    assert h.closed and repr(h) == "<goheap.Heap closed>"
    for call in calls.values():
        with pytest.raises(goheap.HeapClosed, match="closed"):
            call()


@pytest.mark.nojit
def test_close_from_a_context_manager() -> None:
    with small_heap() as h:
        p = h.alloc(16)
    with pytest.raises(goheap.HeapClosed):
        h.lookup(p)


@pytest.mark.nojit
def test_failed_construction_leaks_nothing() -> None:
    with pytest.raises(goheap.InvalidSize, match="arena size 12345"):
        goheap.Heap(arena_size=12345)
    with pytest.raises(goheap.InvalidSize, match="arena size"):
        goheap.Heap(arena_size=1 << 50)


# ---------------------------------------------------------------- independent heaps


@pytest.mark.nojit
def test_heaps_are_independent() -> None:
    a, b = small_heap(), small_heap()
    try:
        sb = b.read_mem_stats()
        ps = [a.alloc(n) for n in (16, 1000, 100000)]
        sa = a.read_mem_stats()
        assert b.read_mem_stats() == sb  # nothing of a's shows in b
        assert sa.mallocs == sb.mallocs + 3
        with pytest.raises(goheap.AddressError):
            b.free(ps[0])  # a's address is outside b
        with pytest.raises(goheap.AddressError):
            b.lookup(ps[2])
        a.close()
        q = b.alloc(100000)  # b works on
        assert b.lookup(q + 5) == (q, 25 * PAGE_SIZE)
        b.free(q)
        b.check()
    finally:
        a.close()
        b.close()


@pytest.mark.nojit
def test_finalizer_is_dropped_when_its_block_is_freed() -> None:
    with small_heap(gcpercent=100) as h:
        ran = []
        p = h.alloc(64)
        h.set_finalizer(p, ran.append)
        h.free(p)
        q = h.alloc(64)
        assert q == p
        h.set_finalizer(q, ran.append)  # not "already has a finalizer"
        h.set_finalizer(q, None)
        h.free(q)
        h.gc()
        assert ran == []
        h.check()


# ---------------------------------------------------------------- threads


def _stress(h: goheap.Heap, nthreads: int, nops: int) -> list[int]:
    caches: list[int] = []
    errors: list[BaseException] = []
    together = threading.Barrier(nthreads)

    def work(seed: int) -> None:
        try:
            rng = random.Random(seed)
            c = h.cache()
            caches.append(c)
            together.wait()  # every thread holds its cache at once
            live: list[int] = []
            for _ in range(nops):
                if live and rng.random() < 0.5:
                    h.free(live.pop(rng.randrange(len(live))))
                else:
                    n = rng.choice((8, 16, 24, 48, 100, 500, 2000, 8000, 40000)) if rng.random() < 0.99 else 200000
                    live.append(h.alloc(n))
                    assert h.cache() == c
            for p in live:
                h.free(p)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return caches


@pytest.mark.nojit
def test_threads_each_get_a_cache() -> None:
    with small_heap(arena_size=256 * MB) as h:
        caches = _stress(h, 4, 2000)
        assert len(set(caches)) == 4 and h.cache() not in caches
        h.check()
        st = h.read_mem_stats()
        assert st.heap_objects == 0 and st.mallocs == st.frees


def test_eight_threads_of_100k_operations() -> None:
    with small_heap(arena_size=1 << 30) as h:
        caches = _stress(h, 8, 100_000)
        assert len(set(caches)) == 8
        h.check()
        st = h.read_mem_stats()
        assert st.heap_objects == 0 and st.mallocs == st.frees >= 8 * 50_000
