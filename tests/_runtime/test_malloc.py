"""mallocgc, free, mlookup and settype (malloc.goc): the small and large paths, lazy zeroing,
the flags, interior pointers, the MTypes compression of span types, and MemStats."""

from __future__ import annotations

import re

import numpy as np
import pytest
from heaptools import SEED_RUNS, View, class_of, small_heap

import goheap
from goheap._runtime import layout as L
from goheap._runtime.constants import (
    BIT_ALLOCATED,
    BIT_BLOCK_BOUNDARY,
    BIT_NO_POINTERS,
    BIT_SPECIAL,
    MTYPES_BYTES,
    MTYPES_EMPTY,
    MTYPES_SINGLE,
    MTYPES_WORDS,
    PAGE_SIZE,
)

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

MB = 1 << 20

# runtime.MemStats of the seed (mem.go), in order
GO_FIELDS = [
    "Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys", "HeapIdle", "HeapInuse",
    "HeapReleased", "HeapObjects", "StackInuse", "StackSys", "MSpanInuse", "MSpanSys", "MCacheInuse", "MCacheSys",
    "BuckHashSys", "NextGC", "LastGC", "PauseTotalNs", "NumGC", "EnableGC", "DebugGC", "PauseNs", "BySize",
]


@pytest.fixture
def heap():
    with small_heap() as h:
        yield h
        h.check()


# ---------------------------------------------------------------- small and large


def test_small_object_comes_from_a_class_span(heap) -> None:
    v = View(heap)
    p = heap.alloc(100)
    span = v.span_of(p)
    assert span.sizeclass == class_of(heap, 100) and span.elemsize == 112
    assert span.start <= p < span.limit and (p - span.start) % 112 == 0
    assert v.bits(p) == BIT_ALLOCATED
    assert heap.lookup(p) == (p, 112)
    heap.free(p)
    assert v.bits(p) == BIT_BLOCK_BOUNDARY


def test_large_object_is_a_span_of_its_own(heap) -> None:
    v = View(heap)
    p = heap.alloc(40000)
    span = v.span_of(p)
    assert span.start == p and span.sizeclass == 0 and span.npages == 10 and span.elemsize == 10 * PAGE_SIZE
    assert v.bits(p) == BIT_ALLOCATED
    assert heap.lookup(p + 39999) == (p, 10 * PAGE_SIZE)
    st = heap.read_mem_stats()
    heap.free(p)
    after = heap.read_mem_stats()
    assert after.heap_alloc == st.heap_alloc - 10 * PAGE_SIZE and after.heap_objects == st.heap_objects - 1
    assert after.frees == st.frees + 1 and after.heap_inuse == st.heap_inuse - 10 * PAGE_SIZE
    assert v.word(p) == 1  # the freed span needs zeroing
    assert v.bits(p) == 0  # unmarkspan of its first page


def test_large_sizes_round_up_to_pages(heap) -> None:
    for size, npages in ((32769, 9), (36864, 9), (36865, 10), (MB, 256), (MB + 1, 257)):
        p = heap.alloc(size)
        assert heap.lookup(p) == (p, npages * PAGE_SIZE)
        heap.free(p)


def test_large_objects_are_not_counted_by_size(heap) -> None:
    before = heap.read_mem_stats()
    p = heap.alloc(50000)
    q = heap.alloc(50)
    st = heap.read_mem_stats()
    assert st.mallocs == before.mallocs + 2
    assert sum(b.mallocs for b in st.by_size) == sum(b.mallocs for b in before.by_size) + 1
    assert st.by_size[class_of(heap, 50)].mallocs == before.by_size[class_of(heap, 50)].mallocs + 1
    assert st.total_alloc == before.total_alloc + 13 * PAGE_SIZE + 64
    heap.free(p)
    heap.free(q)
    st = heap.read_mem_stats()
    assert st.by_size[class_of(heap, 50)].frees == before.by_size[class_of(heap, 50)].frees + 1


# ---------------------------------------------------------------- zeroing


def test_reused_small_and_large_blocks_come_back_zeroed(heap) -> None:
    for size in (24, 500, 4000, 32768, 100000):
        p = heap.alloc(size)
        heap.view(p)[:] = 0xAB
        heap.free(p)
        q = heap.alloc(size)
        assert q == p, size  # LIFO cache / the same free span
        assert not heap.view(q).any(), size


def test_zeroed_false_skips_the_clearing(heap) -> None:
    p = heap.alloc(4000)
    heap.view(p, "i8")[:] = 3
    heap.free(p)
    q = heap.alloc(4000, zeroed=False)
    assert q == p
    w = heap.view(q, "i8")
    assert w[0] == 0 and w[1] == 1 and (w[2:] == 3).all()  # link cleared; the needs-zeroing mark stays
    big = heap.alloc(100000)
    heap.view(big, "i8")[:] = 4
    heap.free(big)
    again = heap.alloc(100000, zeroed=False)
    w = heap.view(again, "i8")
    assert again == big and w[0] == 1 and (w[1:] == 4).all()


def test_fresh_spans_from_dirty_pages_are_cleared_before_carving(heap) -> None:
    big = heap.alloc(3 * PAGE_SIZE * 11)
    heap.view(big)[:] = 0xEE
    heap.free(big)
    ps = [heap.alloc(2048) for _ in range(60)]  # class spans carved from those pages
    assert any(big <= p < big + 33 * PAGE_SIZE for p in ps)
    for p in ps:
        assert not heap.view(p).any()
        heap.free(p)


# ---------------------------------------------------------------- flags


def test_noscan_sets_the_no_pointers_bit(heap) -> None:
    v = View(heap)
    p = heap.alloc(64, noscan=True)
    q = heap.alloc(64)
    assert v.bits(p) == BIT_ALLOCATED | BIT_NO_POINTERS
    assert v.bits(q) == BIT_ALLOCATED
    big = heap.alloc(100000, noscan=True)
    assert v.bits(big) == BIT_ALLOCATED | BIT_NO_POINTERS


def test_nogc_blocks_are_not_marked_allocated_and_survive_collection() -> None:
    with small_heap(gcpercent=100) as h:
        v = View(h)
        p = h.alloc(64, nogc=True)
        big = h.alloc(50000, nogc=True)
        q = h.alloc(64)
        assert v.bits(p) == BIT_BLOCK_BOUNDARY and v.bits(big) == BIT_BLOCK_BOUNDARY
        h.view(p)[:] = 9
        h.gc()  # nothing is rooted: q is collected, the nogc blocks are not
        assert (h.view(p) == 9).all()
        assert v.bits(q) == BIT_BLOCK_BOUNDARY
        h.free(p)
        h.free(big)
        with pytest.raises(goheap.DoubleFree):
            h.free(p)
        h.check()


def test_noprofile_blocks_are_never_sampled() -> None:
    with small_heap(memprofilerate=1) as h:  # rate 1: every allocation is sampled...
        v = View(h)
        p = h.alloc(64)
        q = h.alloc(64, noprofile=True)  # ...except these
        big = h.alloc(50000, noprofile=True)
        assert v.bits(p) == BIT_ALLOCATED | BIT_SPECIAL
        assert v.bits(q) == BIT_ALLOCATED and v.bits(big) == BIT_ALLOCATED
        st = h.read_mem_stats()
        assert st.buck_hash_sys == 179999 * 8
        h.free(p)
        h.free(q)
        h.free(big)
        h.check()


def test_sampling_draws_a_mean_gap_of_memprofilerate() -> None:
    with small_heap(memprofilerate=4096) as h:
        v = View(h)
        ps = [h.alloc(64) for _ in range(4000)]
        sampled = sum(1 for p in ps if v.bits(p) & BIT_SPECIAL)
        assert 40 <= sampled <= 90  # 256000 bytes / 4096 = 62.5 expected
        for p in ps:
            h.free(p)
        h.check()


# ---------------------------------------------------------------- mlookup


def test_lookup_resolves_every_interior_pointer(heap) -> None:
    p = heap.alloc(48)
    for off in range(48):
        assert heap.lookup(p + off) == (p, 48)
    big = heap.alloc(40000)
    for off in (0, 1, 4095, 4096, 40959):
        assert heap.lookup(big + off) == (big, 40960)


def test_lookup_of_tail_waste_free_span_and_outside_fails(heap) -> None:
    v = View(heap)
    p = heap.alloc(48)  # 85 objects per page, 16 bytes of tail
    span = v.span_of(p)
    with pytest.raises(goheap.AddressError, match=f"{span.limit:#x}"):
        heap.lookup(span.limit)
    with pytest.raises(goheap.AddressError):
        heap.lookup(span.limit + 15)
    big = heap.alloc(40000)
    heap.free(big)
    with pytest.raises(goheap.AddressError):
        heap.lookup(big)
    for addr in (heap.arena_start - 8, heap.arena_used, heap.arena_end + 100, 0):
        with pytest.raises(goheap.AddressError, match=f"{addr:#x}"):
            heap.lookup(addr)
    # unlike the seed's mlookup, Heap.lookup reads the bitmap: a free slot of an in-use span is no block
    q = heap.alloc(48)
    heap.free(q)
    with pytest.raises(goheap.AddressError, match=f"{q + 3:#x} is not in an allocated block"):
        heap.lookup(q + 3)


def test_lookups_are_counted(heap) -> None:
    before = heap.read_mem_stats().lookups
    p = heap.alloc(16)
    heap.lookup(p)
    with pytest.raises(goheap.AddressError):
        heap.lookup(heap.arena_used + 64)
    assert heap.read_mem_stats().lookups == before + 2


# ---------------------------------------------------------------- settype and MTypes


def _types(heap, n: int, size: int = 48) -> list[goheap.TypeInfo]:
    return [heap.register_type(f"T{k}", size, (0,)) for k in range(n)]


def test_span_types_start_empty_then_bytes(heap) -> None:
    v = View(heap)
    t1, t2 = _types(heap, 2)
    p = heap.alloc(48, type=t1)
    q = heap.alloc(48, type=t2)
    r = heap.alloc(48, type=t1)
    plain = heap.alloc(48)
    assert v.span_of(p).types_compression == MTYPES_EMPTY  # buffered until a flush
    assert heap.type_of(p) == t1  # type_of flushes
    span = v.span_of(p)
    assert span.types_compression == MTYPES_BYTES
    assert [heap.type_of(x) for x in (p, q, r, plain)] == [t1, t2, t1, None]
    data = span.types_data
    assert heap.lookup(data) == (data, 160)  # 8 slots of 8 bytes + 85 index bytes: 149 bytes
    assert v.bits(data) == BIT_ALLOCATED | BIT_NO_POINTERS


def test_more_than_seven_types_in_a_span_convert_to_words(heap) -> None:
    v = View(heap)
    types = _types(heap, 8)
    ps = [heap.alloc(48, type=t) for t in types[:7]]
    heap.type_of(ps[0])
    assert v.span_of(ps[0]).types_compression == MTYPES_BYTES
    ps.append(heap.alloc(48, type=types[7]))
    assert heap.type_of(ps[-1]) == types[7]
    span = v.span_of(ps[0])
    assert span.types_compression == MTYPES_WORDS
    assert heap.lookup(span.types_data)[1] == 704  # 85 words
    assert [heap.type_of(p) for p in ps] == types
    assert heap.type_of(heap.alloc(48)) is None


def test_a_large_object_type_is_single(heap) -> None:
    v = View(heap)
    (t,) = _types(heap, 1, size=64)
    p = heap.alloc(64 * 1000, type=t)  # an array: tagged Array
    assert heap.type_of(p) == t
    span = v.span_of(p)
    assert span.types_compression == MTYPES_SINGLE
    assert span.types_data == (t.id << 3) | 1


def test_settype_buffer_flushes_itself_when_full(heap) -> None:
    v = View(heap)
    (t,) = _types(heap, 1, size=16)
    ps = [heap.alloc(16, type=t) for _ in range(511)]
    assert v.local(heap.cache(), L.LC_SETTYPE_N) == 2 * 511
    assert v.span_of(ps[0]).types_compression == MTYPES_EMPTY
    ps.append(heap.alloc(16, type=t))  # the 512th pair fills the buffer
    assert v.local(heap.cache(), L.LC_SETTYPE_N) == 0
    assert v.span_of(ps[0]).types_compression == MTYPES_BYTES


# ---------------------------------------------------------------- MemStats


def test_mem_stats_snake_case_and_go_names(heap) -> None:
    st = heap.read_mem_stats()
    go = st.to_go()
    assert list(go) == GO_FIELDS
    assert go["HeapAlloc"] == st.heap_alloc and go["NumGC"] == st.num_gc and go["Sys"] == st.sys
    assert len(go["PauseNs"]) == 256 and len(go["BySize"]) == 61
    assert go["BySize"][2] == {"Size": 16, "Mallocs": st.by_size[2].mallocs, "Frees": st.by_size[2].frees}
    assert set(goheap.MemStats.field_names()) >= {
        "alloc", "total_alloc", "sys", "lookups", "mallocs", "frees", "heap_alloc", "heap_sys", "heap_idle",
        "heap_inuse", "heap_released", "heap_objects", "stack_inuse", "stack_sys", "mspan_inuse", "mspan_sys",
        "mcache_inuse", "mcache_sys", "buck_hash_sys", "next_gc", "last_gc", "pause_total_ns", "num_gc",
        "enable_gc", "debug_gc", "pause_ns", "by_size",
    }


def _keys(lines) -> list[str]:
    return list(dict.fromkeys(re.sub(r"\[.*", "", line.split("=")[0]) for line in lines if "=" in line))


def test_mem_stats_lines_have_the_keys_of_the_seed_runs() -> None:
    runs = sorted(SEED_RUNS.glob("*.stdout")) if SEED_RUNS.is_dir() else []
    if not runs:
        pytest.skip(f"no seed runs at {SEED_RUNS}")
    with small_heap(gcpercent=100) as h:
        h.gc()
        ours = h.read_mem_stats().go_lines()
    for path in runs:
        assert _keys(path.read_text().split("# MemStats\n", 1)[1].splitlines()) == GO_FIELDS, path.name
    assert _keys(ours) == GO_FIELDS
    assert "PauseNs[gc1]" in ours[GO_FIELDS.index("PauseNs")]


def test_mem_stats_count_what_was_done(heap) -> None:
    st0 = heap.read_mem_stats()
    ps = [heap.alloc(n) for n in (1, 16, 17, 1000, 40000)]
    heap.free(ps[1])
    st = heap.read_mem_stats()
    assert st.mallocs - st0.mallocs == 5 and st.frees - st0.frees == 1
    assert st.total_alloc - st0.total_alloc == 8 + 16 + 32 + 1024 + 40960
    assert st.heap_alloc - st0.heap_alloc == 8 + 32 + 1024 + 40960 == st.alloc - st0.alloc
    assert st.heap_objects - st0.heap_objects == 4
    assert st.heap_sys == st.heap_idle + st.heap_inuse
    assert st.enable_gc and not st.debug_gc
    np.testing.assert_array_equal([b.size for b in st.by_size][:4], [0, 8, 16, 32])
