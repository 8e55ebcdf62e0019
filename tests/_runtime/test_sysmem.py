"""The OS layer (mem_linux.c): reservation at the hint address, the Sys accounting of each
primitive, the FailingOS test double, and arena exhaustion."""

from __future__ import annotations

import pytest
from heaptools import View, small_heap

import goheap
from goheap._runtime import layout as L
from goheap._runtime.constants import ARENA_HINT_BITMAP, MAX_MEM
from goheap._runtime.mallocinit import mheap_record_bytes
from goheap._runtime.sysmem import FailingOS, LinuxOS, SysMem, array_at

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

MB = 1 << 20


def _mapped_ranges() -> list[tuple[int, int]]:
    with open("/proc/self/maps") as f:
        return [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in f]


def _is_free(lo: int, hi: int) -> bool:
    return all(end <= lo or start >= hi for start, end in _mapped_ranges())


class _Recorder:
    def __init__(self):
        self.deltas: list[int] = []

    def __call__(self, delta: int) -> None:
        self.deltas.append(delta)


# ---------------------------------------------------------------- SysMem over a backend


def test_sys_alloc_and_sys_map_charge_sys_reserve_and_unused_do_not() -> None:
    os_ = FailingOS()
    sys = _Recorder()
    mem = SysMem(os_, on_sys=sys)
    base = mem.sys_reserve(0, 4 * MB, "test")
    assert sys.deltas == []  # SysReserve: not charged
    assert mem.sys_map(base, MB)
    assert sys.deltas == [MB]  # SysMap: charged
    words = array_at(base, MB)
    words[:] = 7
    mem.sys_unused(base, MB)
    assert sys.deltas == [MB]  # SysUnused: not charged...
    assert not words.any()  # ...and the pages read back as zero
    p = mem.sys_alloc(64 << 10, "a test block")
    assert sys.deltas == [MB, 64 << 10]  # SysAlloc: charged
    assert not array_at(p, 64 << 10).any()
    mem.sys_free(p, 64 << 10)
    assert sys.deltas == [MB, 64 << 10, -(64 << 10)]  # SysFree: uncharged
    assert [c[0] for c in os_.calls] == ["reserve", "map", "unused", "alloc", "free"]
    mem.release_all()
    assert os_.calls[-1] == ("free", base, 4 * MB)


def test_failing_os_refuses_to_map_past_its_limit() -> None:
    mem = SysMem(FailingOS(map_limit=MB), on_sys=_Recorder())
    base = mem.sys_reserve(0, 4 * MB, "test")
    assert mem.sys_map(base, MB // 2)
    assert mem.sys_map(base + MB // 2, MB // 2)
    assert not mem.sys_map(base + MB, 4096)
    assert mem.on_sys.deltas == [MB // 2, MB // 2]  # a refused SysMap is not charged
    mem.release_all()


def test_sys_alloc_failure_is_out_of_memory_naming_the_size() -> None:
    class NoMemory(LinuxOS):
        def alloc(self, nbytes: int) -> int:
            return 0

    with pytest.raises(goheap.OutOfMemory, match="cannot allocate 12345 bytes for the test") as exc:
        SysMem(NoMemory()).sys_alloc(12345, "the test")
    assert isinstance(exc.value, MemoryError)


# ---------------------------------------------------------------- the heap's reservation


def test_default_arena_is_reserved_at_the_seed_hint_when_free() -> None:
    bitmap = MAX_MEM // 16
    free = _is_free(ARENA_HINT_BITMAP, ARENA_HINT_BITMAP + bitmap + MAX_MEM)
    os_ = FailingOS()
    with goheap.Heap(os=os_, gcpercent=-1) as h:
        assert os_.calls[0] == ("reserve", ARENA_HINT_BITMAP, bitmap + MAX_MEM)
        if free:
            assert h.arena_start == 0xC200000000  # bitmap [0xc000000000, 0xc200000000), then the arena
            assert h.arena_end == 0xE200000000
            assert h.alloc(16) >> 32 == 0xC2
        else:
            assert h.arena_start != 0xC200000000
        assert h.arena_end - h.arena_start == MAX_MEM


def test_reservation_falls_back_to_any_address_when_the_hint_is_taken() -> None:
    os_ = FailingOS(ignore_hint=True)
    with small_heap(os=os_) as h:
        assert os_.calls[0] == ("reserve", ARENA_HINT_BITMAP, (64 * MB) // 16 + 64 * MB)
        assert h.arena_start != ARENA_HINT_BITMAP + (64 * MB) // 16
        v = View(h)
        assert v.h(L.H_ARENA_START) - v.h(L.H_BASE) == (64 * MB) // 16  # the bitmap sits right below
        p = h.alloc(100)
        assert h.lookup(p) == (p, 112)
        h.check()


def test_second_heap_cannot_have_the_hint_and_still_works() -> None:
    with small_heap() as a, small_heap() as b:
        assert a.arena_start != b.arena_start
        assert not (a.arena_start < b.arena_end and b.arena_start < a.arena_end)
        pa, pb = a.alloc(64), b.alloc(64)
        a.free(pa)
        b.free(pb)
        a.check()
        b.check()


# ---------------------------------------------------------------- Sys accounting of a heap


def test_sys_at_start_is_the_seed_mallocinit_charge() -> None:
    with small_heap() as h:
        st = h.read_mem_stats()
        # the MHeap record, the first 1 MB of arena and its 64 KB of bitmap, one FixAlloc chunk
        # each for spans and caches, and the first allspans array (64 KB of pointers)
        assert st.sys == mheap_record_bytes(64 * MB) + MB + (MB // 16) + 2 * (128 << 10) + (64 << 10)
        assert st.heap_sys == MB


def test_arena_growth_charges_sys_for_arena_and_bitmap_only() -> None:
    with small_heap() as h:
        v = View(h)
        sys0, used0, bits0 = v.st(L.ST_SYS), h.arena_used - h.arena_start, v.h(L.H_BITMAP_MAPPED)
        p = h.alloc(3 * MB)  # no free span that large: the arena grows by exactly 3 MB
        grown = h.arena_used - h.arena_start - used0
        assert grown == 3 * MB
        assert v.h(L.H_BITMAP_MAPPED) == (used0 + grown) // 16  # a multiple of 8 KB here
        assert v.st(L.ST_SYS) - sys0 == grown + (v.h(L.H_BITMAP_MAPPED) - bits0)
        assert v.st(L.ST_HEAP_SYS) == MB + 3 * MB
        h.free(p)
        sys1 = v.st(L.ST_SYS)
        released = h.free_os_memory()  # SysUnused: HeapReleased grows, Sys does not move
        assert released >= 3 * MB
        st = h.read_mem_stats()
        assert st.sys == sys1 and st.heap_released == released
        h.check()


def test_bitmap_is_mapped_below_the_arena_in_8k_chunks() -> None:
    with small_heap() as h:
        v = View(h)
        start = h.arena_start
        assert v.h(L.H_BITMAP_MAPPED) == 65536
        mem = h._arrays.mem
        base = v.h(L.H_BASE)
        # the last mapped bitmap word is readable, and zero below the live spans' bits
        assert mem[(start - 65536 - base) >> 3] == 0
        h.alloc(MB + 4096)  # grows by 1 MB + 64 KB: bitmap for 2 MB + 64 KB of arena
        assert v.h(L.H_BITMAP_MAPPED) == -(-((h.arena_used - start) // 16) // 8192) * 8192
        assert v.h(L.H_BITMAP_MAPPED) % 8192 == 0


# ---------------------------------------------------------------- exhaustion


def _assert_oom_and_intact(h: goheap.Heap, size: int) -> None:
    before = h.read_mem_stats()
    used = h.arena_used
    with pytest.raises(goheap.OutOfMemory, match=rf"\b{size}-byte block") as exc:
        h.alloc(size)
    assert isinstance(exc.value, MemoryError)
    h.check()
    after = h.read_mem_stats()
    assert (after.heap_alloc, after.heap_objects, after.mallocs, after.heap_inuse) == (
        before.heap_alloc, before.heap_objects, before.mallocs, before.heap_inuse)
    assert h.arena_used == used


def test_arena_exhausted_is_out_of_memory_and_the_heap_is_intact() -> None:
    with small_heap(arena_size=4 * MB) as h:
        big = h.alloc(2 * MB)
        h.alloc(100)
        _assert_oom_and_intact(h, 3 * MB)  # 3 MB of the 4 are in use or mapped
        _assert_oom_and_intact(h, 4 * MB)
        assert h.lookup(h.alloc(1000))[1] == 1024  # small objects still come from the free pages
        h.free(big)
        h.check()
        assert h.alloc(2 * MB) == big  # and the freed pages serve a large one again


def test_small_allocations_exhaust_the_arena_cleanly() -> None:
    with small_heap(arena_size=2 * MB) as h:
        n = 0
        with pytest.raises(goheap.OutOfMemory, match="4096-byte block"):
            while True:
                h.alloc(4096)
                n += 1
        assert n > 400  # 2 MB of 4 KB objects, minus the page the smoke test left in class 1
        h.check()


def test_refused_sys_map_is_out_of_memory_and_charges_nothing() -> None:
    os_ = FailingOS(map_limit=MB + (MB // 16))  # exactly what mallocinit maps: no growth at all
    with small_heap(os=os_) as h:
        v = View(h)
        sys0 = v.st(L.ST_SYS)
        _assert_oom_and_intact(h, 2 * MB)
        assert v.st(L.ST_SYS) == sys0
        assert v.h(L.H_SYS_MAPPED) == MB + MB // 16
        p = h.alloc(512 << 10)  # fits in the first megabyte
        h.free(p)
        h.check()


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))


def test_close_unmaps_the_reservation_and_every_metadata_array() -> None:
    os_ = FailingOS()
    h = small_heap(os=os_)
    h.alloc(3 * MB)
    base = View(h).h(L.H_BASE)
    nreserved = sum(1 for c in os_.calls if c[0] == "reserve")
    nmetadata = sum(1 for c in os_.calls if c[0] == "alloc")
    before = _vm_size()
    h.close()
    after = _vm_size()
    freed = [(a, n) for kind, a, n in os_.calls if kind == "free"]
    assert len(freed) == nreserved + nmetadata
    assert (base, (64 * MB) // 16 + 64 * MB) in freed
    total = sum(n for _, n in freed)
    assert before - after >= total - 4 * MB  # the address space is given back (allowing for Python's own)
    assert h.closed
