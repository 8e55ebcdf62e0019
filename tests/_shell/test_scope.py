"""Handle scopes and Refs (goheap._shell.scope): Python's roots, taken in the same step as the allocation."""

from __future__ import annotations

import gc
import threading

import pytest

import goheap

MB = 1 << 20


@pytest.fixture
def heap():
    with goheap.Heap(arena_size=64 * MB, gcpercent=100, memprofilerate=0) as h:
        yield h
        h.check()


def live(h: goheap.Heap, p: int) -> bool:
    try:
        return h.lookup(p)[0] == p
    except goheap.AddressError:
        return False


def test_a_scopes_blocks_live_until_it_exits(heap):
    t = heap.register_type("Pair", 16, (0, 8))
    with heap.scope() as s:
        a = s.alloc(16, type=t)
        b = s.alloc_array(t, 3)
        c = s.add(heap.alloc(24))
        heap.gc()
        assert all(live(heap, x) for x in (a, b, c))
        assert heap.type_of(a) == t
    heap.gc()
    assert not any(live(heap, x) for x in (a, b, c))


def test_scopes_nest_like_calls(heap):
    with heap.scope() as outer:
        a = outer.alloc(32)
        with heap.scope() as inner:
            b = inner.alloc(32)
            heap.store_word(b, 0, a)
        heap.gc()
        assert live(heap, a) and not live(heap, b)
    heap.gc()
    assert not live(heap, a)


def test_a_scope_belongs_to_its_thread_and_its_with_block(heap):
    s = heap.scope()
    with pytest.raises(goheap.HeapError, match="inside its with block"):
        s.alloc(16)
    with s:
        errors = []
        th = threading.Thread(target=lambda: errors.append(pytest.raises(goheap.HeapError, s.alloc, 16)))
        th.start()
        th.join()
        assert "thread that entered it" in str(errors[0].value)
        with pytest.raises(goheap.HeapError, match="already entered"):
            s.__enter__()


def test_a_full_stack_refuses_before_allocating():
    with goheap.Heap(arena_size=64 * MB, limits=goheap.Limits(shadow_depth=4)) as h, h.scope() as s:
        for _ in range(4):
            s.alloc(16)
        before = h.read_mem_stats().mallocs
        with pytest.raises(goheap.OutOfMemory, match="shadow stack is full"):
            s.alloc(16)
        with pytest.raises(goheap.OutOfMemory, match="shadow stack is full"):
            s.add(h.alloc(16))
        assert h.read_mem_stats().mallocs == before + 1  # only the plain alloc
        h.check()


def test_a_ref_roots_its_block_while_it_lives(heap):
    with heap.scope() as s:
        p = s.alloc(48)
        r = heap.ref(p + 8)  # an interior pointer roots the block too
    heap.gc()
    assert live(heap, p) and r.addr == p + 8 and not r.released
    r.release()
    r.release()
    assert r.released
    heap.gc()
    assert not live(heap, p)
    with heap.scope() as s:
        q = s.alloc(48)
        r = heap.ref(q)
    del r
    gc.collect()
    heap.gc()
    assert not live(heap, q)
    with heap.scope() as s, heap.ref(s.alloc(16)) as r2:
        pass
    assert r2.released


def test_refs_are_not_plain_handles(heap):
    with heap.scope() as s:
        p = s.alloc(16)
    r = heap.ref(p)
    k = heap.roots.add(p)
    with pytest.raises(goheap.HeapError, match="belongs to a Ref"):
        heap.roots.remove(r._handle)
    heap.roots.clear()  # the plain handle goes, the Ref's stays
    with pytest.raises(goheap.InvalidValue):
        heap.roots.get(k)
    heap.gc()
    assert live(heap, p)
    del r
    heap.roots.add(0)  # a new handle reuses the collected Ref's
    heap.gc()
    assert not live(heap, p)
    with pytest.raises(goheap.AddressError):
        heap.ref(p)  # freed: no block to hold


def test_scopes_and_refs_after_close_do_nothing():
    h = goheap.Heap(arena_size=64 * MB)
    s = h.scope().__enter__()
    r = h.ref(s.alloc(16))
    h.close()
    s.__exit__(None, None, None)
    r.release()
    del r
    with pytest.raises(goheap.HeapClosed):
        h.scope()
