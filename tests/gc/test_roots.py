"""Roots (goheap._runtime.gc.roots): each kind keeps objects alive, and removing it lets them die."""

from __future__ import annotations

import threading

import numba
import numpy as np
import pytest

import goheap
from goheap import nb
from goheap._runtime import layout as L
from gcutil import is_live


@pytest.mark.nojit
def test_handle_keeps_alive_and_remove_lets_die(heap):
    p = heap.alloc(64)
    r = heap.roots.add(p)
    heap.gc()
    assert is_live(heap, p)
    assert heap.roots.get(r) == p and len(heap.roots) == 1
    heap.roots.remove(r)
    heap.gc()
    assert not is_live(heap, p)
    with pytest.raises(goheap.HeapError):
        heap.roots.get(r)
    heap.check()


def test_handle_set_moves_the_root_and_interior_pointers_count(heap):
    p, q0 = heap.alloc(64), heap.alloc(64)
    r = heap.roots.add(p + 40)  # interior: the whole block stays
    heap.gc()
    assert is_live(heap, p) and not is_live(heap, q0)
    q = heap.alloc(64)
    heap.roots.set(r, q)
    heap.gc()
    assert is_live(heap, q) and not is_live(heap, p)
    heap.roots.clear()
    heap.gc()
    assert not is_live(heap, q)
    heap.check()


@numba.njit(cache=True)
def _push_and_collect(rt, c, size):
    v = nb.alloc(rt, c, size)
    nb.push_root(rt, c, v)
    nb.gc(rt, c)
    return v


@numba.njit(cache=True)
def _pop_and_collect(rt, c):
    v = nb.pop_root(rt, c)
    nb.gc(rt, c)
    return v


@numba.njit(cache=True)
def _set_slot(rt, c, slot, v):
    return nb.set_root(rt, c, slot, v)


def test_shadow_stack_keeps_alive_and_pop_lets_die(heap):
    rt, c = heap.runtime, heap.cache()
    v = _push_and_collect(rt, c, 48)
    assert is_live(heap, v)
    assert nb.shadow_depth(rt, c) == 1
    assert _pop_and_collect(rt, c) == v
    assert not is_live(heap, v)
    assert nb.pop_root(rt, c) == 0  # popping an empty stack is harmless
    assert nb.shadow_depth(rt, c) == 0
    heap.check()


def test_each_thread_has_its_own_shadow_stack(heap):
    out = {}
    pushed, checked = threading.Event(), threading.Event()

    def worker():
        rt, c = heap.runtime, heap.cache()
        out["c"] = c
        out["v"] = _push_and_collect(rt, c, 100)
        pushed.set()
        checked.wait()  # alive until the main thread has looked: an ended thread's cache is given back

    t = threading.Thread(target=worker)
    t.start()
    pushed.wait()
    assert out["c"] != heap.cache()
    heap.gc()
    assert is_live(heap, out["v"])  # still on the other thread's stack
    nb.set_shadow_depth(heap.runtime, out["c"], 0)
    heap.gc()
    assert not is_live(heap, out["v"])
    checked.set()
    t.join()
    heap.check()


def test_shadow_stack_bounds(heap):
    rt, c = heap.runtime, heap.cache()
    depth = heap._arrays.shadow.shape[1]
    assert _set_slot(rt, c, depth, 1) == L.E_OUT_OF_MEMORY
    assert _set_slot(rt, c, -1, 1) == L.E_OUT_OF_MEMORY
    assert nb.shadow_depth(rt, c) == 0
    assert _set_slot(rt, c, 2, 0) == 0 and nb.shadow_depth(rt, c) == 3
    nb.set_shadow_depth(rt, c, 0)


def test_numpy_region_conservative(heap):
    arr = np.zeros(8, np.int64)
    p, q = heap.alloc(32), heap.alloc(32)
    arr[5] = p + 8
    g = heap.roots.add_region(arr)
    heap.gc()
    assert is_live(heap, p) and not is_live(heap, q)
    arr[5] = 0
    heap.gc()
    assert not is_live(heap, p)
    r = heap.alloc(32)
    arr[0] = r
    heap.roots.remove_region(g)
    heap.gc()
    assert not is_live(heap, r)  # the array still holds it, but is no longer a root
    heap.check()


@pytest.mark.nojit
def test_precise_region_scans_only_flagged_words(heap):
    arr = np.zeros(4, np.int64)
    p, q = heap.alloc(32), heap.alloc(32)
    arr[0] = p  # not flagged: ignored
    arr[1] = q
    g = heap.roots.add_region(arr, pointer_bitmap=[False, True, False, False])
    heap.gc()
    assert is_live(heap, q) and not is_live(heap, p)
    assert heap.roots.regions() == [(g, arr.ctypes.data, 32)]
    heap.roots.remove_region(g)
    assert heap.roots.regions() == []
    heap.gc()
    assert not is_live(heap, q)
    heap.check()


def test_nogc_block_is_a_root_only_when_registered(heap):
    holder = heap.alloc(64, nogc=True)  # never scanned by the collector on its own
    p = heap.alloc(48)
    heap.store_ptr(holder, 2, p)
    r = heap.roots.add(holder)  # a root pointing at a nogc block does not make it scanned
    heap.gc()
    assert not is_live(heap, p)
    p = heap.alloc(48)
    heap.store_ptr(holder, 2, p)
    g = heap.roots.add_region(holder, 64)
    heap.gc()
    assert is_live(heap, p)
    heap.roots.remove_region(g)
    heap.roots.remove(r)
    heap.gc()
    assert not is_live(heap, p)
    heap.free(holder)
    heap.check()


def test_region_rows_are_reused_and_bitmaps_compacted(heap):
    arrs = [np.zeros(4, np.int64) for _ in range(3)]
    gs = [heap.roots.add_region(a, pointer_bitmap=[True] * 4) for a in arrs]
    heap.roots.remove_region(gs[0])
    g = heap.roots.add_region(arrs[0])
    assert g == gs[0]
    # fill the pointer-word table so that the next add has to compact it
    heap.roots._rootptrs_used = heap._arrays.rootptrs.shape[0] - 2
    p = heap.alloc(32)
    arrs[2][3] = p
    big = np.zeros(4, np.int64)
    heap.roots.add_region(big, pointer_bitmap=[True] * 4)
    heap.gc()
    assert is_live(heap, p)  # region 2's offsets survived the compaction


def test_region_errors(heap):
    with pytest.raises(goheap.InvalidSize):
        heap.roots.add_region(np.zeros(4, np.int64), pointer_bitmap=[True])
    with pytest.raises(goheap.AddressError):
        heap.roots.add_region(np.zeros(8, np.int64)[::2])
    with pytest.raises(goheap.AddressError):
        heap.roots.add_region(np.zeros(9, np.uint8)[1:])
    with pytest.raises(goheap.AddressError):
        heap.roots.add_region(12345678, 64)
    with pytest.raises(goheap.InvalidSize):
        heap.roots.add_region(heap.arena_start)
    with pytest.raises(goheap.HeapError):
        heap.roots.remove_region(99)
    heap.check()


def test_finalizer_object_contents_are_roots(heap):
    p = heap.alloc(64)
    q = heap.alloc(64)
    heap.store_ptr(p, 3, q)
    seen = []
    heap.set_finalizer(p, lambda x: seen.append((x, is_live(heap, x), is_live(heap, q))))
    heap.gc()
    # the collection found p unreachable: p kept for its finalizer, and what p points to with it
    assert seen == [(p, True, True)]
    # the finalizer batch's own collection then freed both
    assert not is_live(heap, p) and not is_live(heap, q)
    heap.check()


@numba.njit(cache=True)
def _two_collections(rt, c):
    nb.gc(rt, c)
    nb.gc(rt, c)


@pytest.mark.nojit
def test_queued_finalizer_keeps_its_object(heap):
    p = heap.alloc(64)
    q = heap.alloc(64)
    heap.store_ptr(p, 0, q)
    ran = []
    heap.set_finalizer(p, ran.append)
    _two_collections(heap.runtime, heap.cache())  # finalizers wait for after_compiled()
    assert ran == []
    assert int(heap._arrays.gcstats[L.GS_NFINQ]) == 1
    assert is_live(heap, p) and is_live(heap, q)  # the FinBlock root keeps p, p keeps q
    heap.check()
    heap.after_compiled()
    assert ran == [p]
    assert not is_live(heap, p) and not is_live(heap, q)
    heap.check()


def test_span_type_arrays_are_roots(heap):
    t = heap.register_type("node", 32, [0, 16])
    u = heap.register_type("leaf", 32, [8])
    objs = [heap.alloc(32, type=t if i % 2 else u) for i in range(6)]
    for p in objs:
        heap.roots.add(p)
    heap.gc()
    s = int(heap._arrays.spanmap[(objs[0] - heap.arena_start) >> 12])
    assert int(heap._arrays.spans[s, L.SP_TYPES_COMPRESSION]) == 3  # MTypes_Bytes
    data = int(heap._arrays.spans[s, L.SP_TYPES_DATA])
    heap.gc()
    heap.gc()
    assert is_live(heap, data)  # reachable only through span.types.data
    assert [heap.type_of(p) for p in objs] == [t if i % 2 else u for i in range(6)]
    heap.roots.clear()
    heap.gc()  # the objects die, their span goes back to the heap and forgets its type array ...
    assert int(heap._arrays.spans[s, L.SP_TYPES_COMPRESSION]) == 0
    heap.gc()  # ... which is then garbage
    assert not is_live(heap, data)
    heap.check()
