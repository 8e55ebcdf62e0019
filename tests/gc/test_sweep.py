"""Sweeping (goheap._runtime.gc.sweep): what it frees, where the memory goes, and every statistic."""

from __future__ import annotations

import numpy as np
import pytest

import goheap
from goheap._runtime import layout as L
from goheap._runtime.constants import MSPAN_FREE
from gcutil import is_live


def span_of(h: goheap.Heap, p: int) -> int:
    return int(h._arrays.spanmap[(p - h.arena_start) >> 12])


def freelist(h: goheap.Heap, s: int) -> list[int]:
    out = []
    p = int(h._arrays.spans[s, L.SP_FREELIST])
    while p:
        out.append(p)
        p = int(h._arrays.mem[(p - int(h._arrays.h[L.H_BASE])) >> 3])
    return out


@pytest.fixture
def quiet():
    """A heap that collects only when told to (GOGC=off until set_gc_percent), with no profiling."""
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=0, memprofilerate=0) as h:
        yield h


@pytest.mark.nojit
def test_stats_after_sweep(quiet):
    h = quiet
    small = [h.alloc(48) for _ in range(100)]
    large = [h.alloc(50_000) for _ in range(3)]
    for p in small[:40] + large[:1]:
        h.roots.add(p)
    h.set_gc_percent(100)
    before = h.read_mem_stats()
    h.gc()
    after = h.read_mem_stats()
    large_bytes = 13 * 4096  # 50_000 bytes round up to 13 pages
    assert after.frees - before.frees == 60 + 2
    c48 = next(i for i, b in enumerate(after.by_size) if b.size == 48)
    assert after.by_size[c48].frees - before.by_size[c48].frees == 60
    assert after.by_size[c48].mallocs == before.by_size[c48].mallocs == 100
    assert before.heap_alloc - after.heap_alloc == 60 * 48 + 2 * large_bytes
    assert before.alloc - after.alloc == 60 * 48 + 2 * large_bytes
    assert after.alloc == after.heap_alloc
    assert before.heap_objects - after.heap_objects == 62
    assert after.mallocs == before.mallocs
    assert after.num_gc == before.num_gc + 1
    h.check()


def test_freed_objects_go_to_their_span_in_address_order(quiet):
    h = quiet
    # class 41: five 4352-byte objects per 6-page span; allocate exactly one span's worth
    objs = sorted(h.alloc(4352) for _ in range(5))
    s = span_of(h, objs[0])
    assert all(span_of(h, p) == s for p in objs) and freelist(h, s) == []
    h.roots.add(objs[1])
    h.roots.add(objs[3])
    h.set_gc_percent(100)
    h.gc()
    assert freelist(h, s) == [objs[0], objs[2], objs[4]]
    assert int(h._arrays.spans[s, L.SP_REF]) == 2
    # freed blocks are marked "needs zeroing" in word 1, and come back zeroed
    assert int(h._arrays.mem[(objs[2] + 8 - int(h._arrays.h[L.H_BASE])) >> 3]) == 1
    h.check()


def test_empty_spans_and_dead_large_objects_return_to_the_heap(quiet):
    h = quiet
    objs = [h.alloc(4352) for _ in range(5)]
    big = h.alloc(1 << 20)
    h.set_gc_percent(100)
    before = h.read_mem_stats()
    h.gc()
    after = h.read_mem_stats()
    assert not any(is_live(h, p) for p in objs + [big])
    spans = h._arrays.spans
    for start in (min(objs), big):
        # a free span (possibly merged with free neighbours) covers the page
        page = start >> 12
        owners = [t for t in range(L.FIRST_SPAN, L.FIRST_SPAN + int(h._arrays.h[L.H_NSPAN]))
                  if int(spans[t, L.SP_STATE]) in (0, 1)
                  and int(spans[t, L.SP_START]) <= page < int(spans[t, L.SP_START] + spans[t, L.SP_NPAGES])]
        assert len(owners) == 1 and int(spans[owners[0], L.SP_STATE]) == MSPAN_FREE
    # everything was garbage (the start-up malloc(1)'s span too): every page is idle again
    assert before.heap_inuse == (6 + 256 + 1) * 4096
    assert after.heap_inuse == 0 and after.heap_idle == after.heap_sys
    # a freed large block is marked "needs zeroing" in its first word; a new one is zeroed
    assert int(h._arrays.mem[(big - int(h._arrays.h[L.H_BASE])) >> 3]) == 1
    again = h.alloc(1 << 20)
    assert not h.view(again, np.int64).any()
    h.check()


def _types_check(h, t_ids, nobj, size):
    types = [h.register_type(f"T{i}", size, [0]) for i in t_ids]
    objs = [h.alloc(size, type=types[i % len(types)]) for i in range(nobj)]
    s = span_of(h, objs[0])
    assert all(span_of(h, p) == s for p in objs)
    for p in objs[::2]:
        h.roots.add(p)
    h.set_gc_percent(100)
    h.gc()
    for i, p in enumerate(objs):
        assert h.type_of(p) == (types[i % len(types)] if i % 2 == 0 else None)
    h.check()
    return s


def test_sweep_clears_types_bytes_compression(quiet):
    s = _types_check(quiet, range(3), 10, 64)
    assert int(quiet._arrays.spans[s, L.SP_TYPES_COMPRESSION]) == 3  # MTypes_Bytes


def test_sweep_clears_types_words_compression(quiet):
    s = _types_check(quiet, range(9), 20, 64)  # more than 7 types: MTypes_Words
    assert int(quiet._arrays.spans[s, L.SP_TYPES_COMPRESSION]) == 2


def test_profiled_only_blocks_are_charged_to_the_profile_and_freed():
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=0, memprofilerate=1) as h:
        objs = [h.alloc(64) for _ in range(10)]
        h.roots.add(objs[0])
        prof = h._arrays.prof
        # counts so far (the start-up malloc(1) and free) are still "recent"; a GC makes them totals
        frees0 = int(prof[:, L.PB_FREES].sum() + prof[:, L.PB_RECENT_FREES].sum())
        bytes0 = int(prof[:, L.PB_FREE_BYTES].sum() + prof[:, L.PB_RECENT_FREE_BYTES].sum())
        h.set_gc_percent(100)
        h.gc()
        assert not any(is_live(h, p) for p in objs[1:])  # special, but without a finalizer: freed now
        assert int(prof[:, L.PB_FREES].sum()) - frees0 == 9
        assert int(prof[:, L.PB_FREE_BYTES].sum()) - bytes0 == 9 * 64
        h.check()
