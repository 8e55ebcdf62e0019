"""Marking (goheap._runtime.gc.mark): what keeps a block alive and what does not."""

from __future__ import annotations

import io

import numpy as np
import pytest

import goheap
from goheap._runtime import layout as L
from gcutil import is_live


def test_untyped_objects_are_scanned_conservatively(heap):
    a, b, c = heap.alloc(64), heap.alloc(64), heap.alloc(64)
    heap.store_ptr(a, 7, b)  # any word
    heap.store_ptr(b, 0, c + 63)  # interior, last byte
    heap.roots.add(a)
    heap.gc()
    assert is_live(heap, a) and is_live(heap, b) and is_live(heap, c)
    heap.store_ptr(b, 0, c + 64)  # one past the end: not c
    heap.gc()
    assert not is_live(heap, c)
    heap.check()


@pytest.mark.nojit
def test_typed_objects_are_scanned_precisely(heap):
    t = heap.register_type("T", 24, pointer_offsets=[8])
    p = heap.alloc(24, type=t)
    heap.roots.add(p)
    kept, ignored = heap.alloc(16), heap.alloc(16)
    heap.store_ptr(p, 1, kept)
    heap.store_ptr(p, 0, ignored)
    heap.store_ptr(p, 2, ignored)
    heap.gc()
    assert is_live(heap, kept) and not is_live(heap, ignored)
    heap.check()


def test_typed_arrays_scan_every_element(heap):
    t = heap.register_type("E", 16, pointer_offsets=[0])
    arr = heap.alloc_array(t, 10)
    heap.roots.add(arr)
    kept = [heap.alloc(16) for _ in range(10)]
    dropped = [heap.alloc(16) for _ in range(10)]
    for i in range(10):
        heap.store_ptr(arr, 2 * i, kept[i])
        heap.store_ptr(arr, 2 * i + 1, dropped[i])
    heap.gc()
    assert all(is_live(heap, k) for k in kept)
    assert not any(is_live(heap, d) for d in dropped)
    heap.check()


def test_large_typed_object(heap):
    t = heap.register_type("Big", 40000, pointer_offsets=[39992])
    p = heap.alloc(40000, type=t)
    heap.roots.add(p)
    kept, ignored = heap.alloc(16), heap.alloc(16)
    heap.store_ptr(p, 4999, kept)
    heap.store_ptr(p, 0, ignored)
    heap.gc()
    assert is_live(heap, kept) and not is_live(heap, ignored)


def test_noscan_object_retains_nothing(heap):
    p = heap.alloc(4096, noscan=True)
    heap.roots.add(p)
    victims = [heap.alloc(s) for s in (8, 16, 48, 512, 40000)]
    words = heap.view(p, np.int64)
    for i, v in enumerate(victims * 100):
        words[i] = v + (i % 8)  # starts and interior pointers
    heap.gc()
    assert is_live(heap, p)
    assert not any(is_live(heap, v) for v in victims)
    heap.check()


def test_interior_pointer_keeps_large_object(heap):
    big = heap.alloc(100_000)
    holder = heap.alloc(16)
    heap.store_ptr(holder, 1, big + 77_777)
    heap.roots.add(holder)
    heap.gc()
    assert is_live(heap, big)
    heap.store_ptr(holder, 1, big + 100_000 + 8192)  # past its pages: the next span, or none
    heap.gc()
    assert not is_live(heap, big)
    heap.check()


def test_pointers_into_tail_waste_are_ignored(heap):
    # class 41: 4352-byte objects, 5 in a 6-page span, 2816 bytes of tail waste
    objs = sorted(heap.alloc(4352) for _ in range(5))
    s0 = objs[0]
    assert objs == [s0 + 4352 * i for i in range(5)]
    tail = s0 + 5 * 4352
    r = heap.roots.add(tail + 2000)  # deep in the tail: no bitmap bit nearby, past the span's limit
    heap.gc()
    assert not any(is_live(heap, p) for p in objs)
    again = [heap.alloc(4352) for _ in range(5)]
    heap.roots.set(r, tail + 8)  # just past the tail's boundary bit
    heap.gc()
    assert not any(is_live(heap, p) for p in again)
    heap.check()


def test_pointers_to_free_slots_are_ignored(heap):
    p, q = heap.alloc(32), heap.alloc(32)
    heap.roots.add(p)
    heap.free(q)
    heap.store_ptr(p, 0, q)  # dangling
    heap.store_ptr(p, 1, q + 16)
    heap.gc()
    assert not is_live(heap, q)
    heap.check()


def test_pointers_outside_the_arena_are_ignored(heap):
    p = heap.alloc(64)
    heap.roots.add(p)
    for i, w in enumerate((-1, 1, heap.arena_start - 8, heap.arena_used, heap.arena_used + 4096, 2**62)):
        heap.store_ptr(p, i, w)
    heap.gc()
    heap.check()


def test_mark_counts(heap):
    keep = [heap.alloc(32) for _ in range(100)]
    for i in range(99):
        heap.store_ptr(keep[i], 0, keep[i + 1])
    heap.roots.add(keep[0])
    noscan = heap.alloc(64, noscan=True)
    heap.roots.add(noscan)
    heap.gc()
    gs = heap._arrays.gcstats
    assert int(gs[L.GS_MARKED]) == 101
    # every marked block with pointers is scanned once: 100 of 32 bytes
    assert int(gs[L.GS_SCANNED_BYTES]) == 100 * 32


# ---------------------------------------------------------------- several collector procs


def _tree(h: goheap.Heap, n: int) -> list[int]:
    """A binary tree of n 32-byte nodes (children in words 0 and 1), rooted; plus garbage."""
    nodes = [h.alloc(32) for _ in range(n)]
    for i in range(1, n):
        h.store_ptr(nodes[(i - 1) // 2], (i - 1) % 2, nodes[i])
    h.roots.add(nodes[0])
    for _ in range(n // 2):
        h.alloc(48)
    return nodes


def _run(nproc: int, n: int = 3000):
    out = io.StringIO()
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=1, trace_stream=out, nproc=nproc) as h:
        nodes = _tree(h, n)  # no collection while it is built
        h.set_gc_percent(100)
        h.gc()
        live = [is_live(h, p) for p in nodes]
        stats = h.read_mem_stats()
        h.check()
        rows = h.gctrace_rows()
    return live, stats, rows, out.getvalue()


def test_nproc_1_counters_stay_zero():
    live, stats, rows, text = _run(1)
    assert all(live)
    assert (rows[:, L.TR_NHANDOFF:L.TR_NSLEEP + 1] == 0).all()
    assert text.rstrip().endswith("0(0) handoff, 0(0) steal, 0/0/0 yields")


@pytest.mark.nojit
def test_several_procs_mark_the_same_and_are_deterministic():
    live1, stats1, _, _ = _run(1)
    live4, stats4, rows4, text4 = _run(4)
    again, _, rows4b, text4b = _run(4)
    assert live1 == live4 == again
    assert (stats1.heap_alloc, stats1.heap_objects, stats1.frees) == (stats4.heap_alloc, stats4.heap_objects, stats4.frees)
    assert (rows4[:, L.TR_NUMGC:L.TR_NPROC + 1] == rows4b[:, L.TR_NUMGC:L.TR_NPROC + 1]).all()
    assert (rows4[:, L.TR_NHANDOFF:L.TR_NSLEEP + 1] == rows4b[:, L.TR_NHANDOFF:L.TR_NSLEEP + 1]).all()
    last = rows4[-1]
    assert last[L.TR_NPROC] == 4 and "gc1(4)" in text4
    # a wide tree gives a waiting helper work: handoffs of half a buffer each
    assert last[L.TR_NHANDOFF] > 0 and last[L.TR_NHANDOFFCNT] >= 2 * last[L.TR_NHANDOFF]
    # helpers start late and wait in getfull: yields are counted
    assert last[L.TR_NPROCYIELD] > 0


def test_nproc_is_clamped_to_maxgcproc_and_validated():
    with goheap.Heap(arena_size=16 << 20, nproc=64, gctrace=0) as h:
        h.gc()
        assert int(h.gctrace_rows()[-1][L.TR_NPROC]) == 8
        h.check()
    with pytest.raises(goheap.ConfigError):
        goheap.Heap(arena_size=16 << 20, nproc=0)
