"""One collection (goheap._runtime.gc.collect): GOGC, the trigger and pacing, and the GC statistics."""

from __future__ import annotations

import io

import pytest

import goheap
from goheap._runtime import layout as L
from goheap._runtime.stats import pause_quantiles


@pytest.mark.parametrize(
    "value,want",
    [
        (None, 100), ("", 100), ("off", -1), ("100", 100), ("50", 50), ("0", 0),
        ("-1", 0), ("abc", 0), ("50x", 50), (" 50", 0), ("OFF", 0), ("007", 7),
        ("99999999999", 1215752191),  # atoi accumulates in an int32: 99999999999 mod 2**32
        ("2147483648", -2147483648),
    ],
)
def test_readgogc(value, want):
    assert goheap.readgogc(value) == want


def test_gogc_from_the_environment(monkeypatch):
    monkeypatch.setenv("GOGC", "off")
    with goheap.Heap(arena_size=16 << 20, gctrace=0) as h:
        assert h.set_gc_percent(100) == -1
    monkeypatch.setenv("GOGC", "37x")
    with goheap.Heap(arena_size=16 << 20, gctrace=0) as h:
        assert h.set_gc_percent(100) == 37
    # the config wins over the environment
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=250) as h:
        assert h.set_gc_percent(100) == 250
    with pytest.raises(goheap.ConfigError):
        goheap.Heap(arena_size=16 << 20, gcpercent="100")


def test_gogc_off_disables_every_collection():
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=0) as h:
        for _ in range(2000):
            h.alloc(4096)
        assert h.gc() is False
        h.free_os_memory()
        assert h.read_mem_stats().num_gc == 0
        assert h.read_mem_stats().next_gc == 0
        h.check()


def test_first_collection_at_first_allocation():
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=100) as h:
        assert h.read_mem_stats().num_gc == 0  # start-up's malloc(1) runs before enablegc
        h.alloc(8)
        assert h.read_mem_stats().num_gc == 1  # next_gc starts at 0
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=100, enable_gc=False) as h:
        h.alloc(8)
        assert h.gc() is False and h.read_mem_stats().num_gc == 0


@pytest.mark.parametrize("percent", [100, 50, 37, 0, 300])
def test_pacing(percent):
    """next_gc = heap_alloc + heap_alloc * gcpercent / 100 after each collection; mallocgc collects
    when the lagging heap_alloc reaches it."""
    with goheap.Heap(arena_size=64 << 20, gctrace=1, trace_stream=io.StringIO(), gcpercent=percent) as h:
        r = h.roots.add(0)
        for i in range(6000):
            p = h.alloc(24 + i % 200)
            h.store_ptr(p, 0, h.roots.get(r))
            if i % 3 == 0:
                h.roots.set(r, p)  # a growing live list, and garbage
        rows = h.gctrace_rows()
        assert len(rows) > 3 and not rows[:, L.TR_FORCED].any()
        for prev, row in zip(rows, rows[1:]):
            goal = prev[L.TR_HEAP1] + prev[L.TR_HEAP1] * percent // 100
            assert row[L.TR_HEAP0] >= goal  # heap_alloc as the collection found it (all caches purged)
        st = h.read_mem_stats()
        assert st.next_gc == rows[-1][L.TR_HEAP1] + rows[-1][L.TR_HEAP1] * percent // 100
        h.gc()
        st = h.read_mem_stats()
        assert st.next_gc == st.heap_alloc + st.heap_alloc * percent // 100
        h.check()


@pytest.mark.nojit
def test_set_gc_percent():
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=100) as h:
        h.roots.add(h.alloc(1000))
        h.gc()
        next_gc = h.read_mem_stats().next_gc
        assert h.set_gc_percent(50) == 100
        assert h.read_mem_stats().next_gc == next_gc  # not recomputed until the next collection
        assert h.set_gc_percent(-7) == 50
        assert h.set_gc_percent(10) == -1  # any negative value is stored as -1
        h.gc()
        st = h.read_mem_stats()
        assert st.next_gc == st.heap_alloc + st.heap_alloc * 10 // 100


def test_gc_stats_ring_and_quantiles():
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=-1) as h:
        empty = h.read_gc_stats(4)
        assert (empty.num_gc, empty.pause, empty.pause_quantiles) == (0, (), (0, 0, 0, 0))
        h.set_gc_percent(100)
        for _ in range(300):
            h.gc()
        st = h.read_mem_stats()
        gs = h.read_gc_stats(5)
        assert gs.num_gc == st.num_gc == 300
        assert len(gs.pause) == 256
        # most recent first: GC k (0-based) wrote slot k % 256
        assert list(gs.pause) == [st.pause_ns[(299 - i) % 256] for i in range(256)]
        assert gs.last_gc == st.last_gc > 0
        rows = h.gctrace_rows()
        assert gs.pause_total_ns == st.pause_total_ns == int(rows[:, L.TR_PAUSE_NS].sum())
        assert [int(x) for x in rows[-256:, L.TR_PAUSE_NS][::-1]] == list(gs.pause)
        s = sorted(gs.pause)
        assert gs.pause_quantiles == (s[0], s[64], s[128], s[192], s[255])
        assert pause_quantiles((5,), 1) == (5,)
        assert pause_quantiles((3, 1, 2), 2) == (1, 3)


def test_virtual_clock_times_the_collections():
    with goheap.Heap(arena_size=16 << 20, gctrace=0, gcpercent=100, virtual_clock=True, start_time_ns=10**15) as h:
        h.gc()
        st = h.read_mem_stats()
        assert st.last_gc == 10**15 and st.pause_total_ns == 0 and st.pause_ns[0] == 0
