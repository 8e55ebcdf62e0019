"""The heap bitmap (goheap._runtime.bitmap) against bit positions computed by hand from the seed's layout."""

from __future__ import annotations

import ctypes

import pytest

import goheap
from goheap._runtime import bitmap as B
from goheap._runtime import layout as L
from gcutil import ALLOCATED, BOUNDARY, MARKED, NOPTR, SPECIAL, bitmap_word_addr, bits_of


def raw_word(addr: int) -> int:
    return ctypes.c_uint64.from_address(addr).value


@pytest.fixture
def scratch(heap):
    """A 64 KB large block whose bitmap words a test may scribble on (it is never collected)."""
    p = heap.alloc(64 << 10, nogc=True)
    return heap, p


def test_layout_of_one_word(scratch):
    h, p = scratch
    # word offset 1000 from arena_start: bitmap word 1000 // 16 + 1 = 63 words below it, shift 8
    v = h.arena_start + 8 * 1000
    assert p <= v < p + (64 << 10)
    assert bitmap_word_addr(h, v) == h.arena_start - 8 * 63
    before = raw_word(h.arena_start - 8 * 63)
    B.markallocated(h.runtime, v, True)
    after = raw_word(h.arena_start - 8 * 63)
    assert after == (before & ~(0x0001_0001_0001_0001 << 8)) | (1 << 8) | (1 << (16 + 8))
    B.markfreed(h.runtime, v)
    assert raw_word(h.arena_start - 8 * 63) == (before & ~(0x0001_0001_0001_0001 << 8)) | (1 << (16 + 8))


@pytest.mark.nojit
def test_each_operation_touches_only_its_bits(scratch):
    h, p = scratch
    rt = h.runtime
    v = p + 4096  # page aligned, so its 16 words start a bitmap word
    B.unmarkspan(rt, v, 4096)
    for k in range(16):
        assert bits_of(h, v + 8 * k) == 0
    B.markallocated(rt, v + 8 * 3, False)
    B.markallocated(rt, v + 8 * 5, True)
    B.setblockspecial(rt, v + 8 * 5, True)
    B.set_marked(rt, v + 8 * 3)
    assert [bits_of(h, v + 8 * k) for k in range(7)] == [0, 0, 0, ALLOCATED | MARKED, 0, ALLOCATED | NOPTR | SPECIAL, 0]
    assert B.blockspecial(rt, v + 8 * 5) and not B.blockspecial(rt, v + 8 * 3)
    # markallocated rewrites all four bits: mark and special are cleared
    B.markallocated(rt, v + 8 * 3, True)
    B.markallocated(rt, v + 8 * 5, False)
    assert bits_of(h, v + 8 * 3) == ALLOCATED | NOPTR
    assert bits_of(h, v + 8 * 5) == ALLOCATED
    B.setblockspecial(rt, v + 8 * 5, True)
    B.markfreed(rt, v + 8 * 5)
    assert bits_of(h, v + 8 * 5) == BOUNDARY
    B.setblockspecial(rt, v + 8 * 3, True)
    B.setblockspecial(rt, v + 8 * 3, False)
    assert bits_of(h, v + 8 * 3) == ALLOCATED | NOPTR


def test_top_of_each_plane(scratch):
    """Shift 15 puts the special bit in bit 63, the sign bit of the int64 words."""
    h, p = scratch
    rt = h.runtime
    v = p + 4096 + 8 * 15
    B.unmarkspan(rt, p + 4096, 128)
    B.markallocated(rt, v, True)
    B.set_marked(rt, v)
    B.setblockspecial(rt, v, True)
    w = bitmap_word_addr(h, v)
    assert raw_word(w) == (1 << 15) | (1 << 31) | (1 << 47) | (1 << 63)
    assert B.blockspecial(rt, v)
    assert B.is_allocated(rt, v)
    B.clear_marked(rt, v)
    assert raw_word(w) == (1 << 15) | (1 << 31) | (1 << 63)


def test_markspan_and_unmarkspan(scratch):
    h, p = scratch
    rt = h.runtime
    v = p + 8192
    B.unmarkspan(rt, v, 8192)
    B.markspan(rt, v, 48, 5, True)  # five 48-byte blocks and a boundary past the last
    starts = {v + 48 * i for i in range(6)}
    for a in range(v, v + 8192, 8):
        assert bits_of(h, a) == (BOUNDARY if a in starts else 0), hex(a - v)
    B.markspan(rt, v + 4096, 0, 0, True)  # a large object's span: one boundary at its start
    assert bits_of(h, v + 4096) == BOUNDARY
    # unmarkspan zeroes whole bitmap words: 128 bytes of heap per word
    B.unmarkspan(rt, v, 128)
    assert all(bits_of(h, a) == 0 for a in range(v, v + 128, 8))
    assert bits_of(h, v + 144) == BOUNDARY  # 3rd block, next bitmap word: untouched
    assert raw_word(bitmap_word_addr(h, v + 128)) != 0


def test_allocation_and_free_mark_the_bitmap(heap):
    p = heap.alloc(48)
    assert bits_of(heap, p) == ALLOCATED
    assert all(bits_of(heap, p + 8 * k) == 0 for k in range(1, 6))
    q = heap.alloc(48, noscan=True)
    assert bits_of(heap, q) == ALLOCATED | NOPTR
    heap.free(p)
    assert bits_of(heap, p) == BOUNDARY
    # the span was carved with a boundary at each block and one past the last (4096 = 85*48 + 16)
    s0 = p & ~4095
    assert heap.lookup(q) == (q, 48) and q - s0 < 4096  # q is in the same span
    with pytest.raises(goheap.AddressError, match=f"{p:#x}"):
        heap.lookup(p)  # a freed slot is not a block
    assert bits_of(heap, s0 + 85 * 48) == BOUNDARY
    for k in range(85):
        assert bits_of(heap, s0 + 48 * k) in (BOUNDARY, ALLOCATED, ALLOCATED | NOPTR)


def test_large_block_bits(heap):
    p = heap.alloc(40000)
    assert p % 4096 == 0
    assert bits_of(heap, p) == ALLOCATED
    heap.free(p)
    # free of a large block clears the bitmap words of its first page
    assert all(bits_of(heap, p + 8 * k) == 0 for k in range(512))
    heap.check()


def test_special_bit_follows_finalizer(heap):
    p = heap.alloc(32)
    heap.roots.add(p)
    heap.set_finalizer(p, lambda _: None)
    assert bits_of(heap, p) == ALLOCATED | SPECIAL
    heap.set_finalizer(p, None)  # the seed leaves the special bit alone
    assert bits_of(heap, p) == ALLOCATED | SPECIAL
    heap.gc()
    assert bits_of(heap, p) == ALLOCATED | SPECIAL  # reachable: marked, then unmarked by the sweep
    heap.check()


def _maps_entry(addr: int) -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return line.split()[1]
    return ""


def test_bitmap_is_mapped_in_8k_chunks_downward():
    with goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=0, memprofilerate=0) as h:
        h.gc()  # the collector's own first-time Sys (Workbufs, roots) is charged now, not below
        a = h._arrays
        used = h.arena_used - h.arena_start
        mapped = int(a.h[L.H_BITMAP_MAPPED])
        assert mapped == -(-used // 16 // 8192) * 8192
        assert _maps_entry(h.arena_start - 1).startswith("rw")
        assert _maps_entry(h.arena_start - mapped).startswith("rw")
        assert _maps_entry(h.arena_start - mapped - 1) == "---p"
        sys0 = h.read_mem_stats().sys
        h.alloc((5 << 20) + 4096, nogc=True)
        used2 = h.arena_used - h.arena_start
        mapped2 = int(a.h[L.H_BITMAP_MAPPED])
        assert used2 > used
        assert mapped2 == -(-used2 // 16 // 8192) * 8192 and mapped2 % 8192 == 0
        assert _maps_entry(h.arena_start - mapped2).startswith("rw")
        assert _maps_entry(h.arena_start - mapped2 - 1) == "---p"
        assert h.read_mem_stats().sys - sys0 == (used2 - used) + (mapped2 - mapped)
