"""The scavenger (mheap.scavengelist / mheap_scavenge, Heap.scavenger_tick) and FreeOSMemory, with RSS checked."""

from __future__ import annotations

import ctypes
import io
import re
import time

import numpy as np
import pytest

import goheap
from goheap._runtime import layout as L

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]

S = 10**9
START = 1000 * S


def resident_pages(addr: int, nbytes: int) -> int:
    """How many of the pages of [addr, addr+nbytes) are in RSS (mincore)."""
    n = (nbytes + 4095) // 4096
    vec = (ctypes.c_ubyte * n)()
    assert _libc.mincore(addr, n * 4096, vec) == 0, ctypes.get_errno()
    return sum(v & 1 for v in vec)


def virtual_heap(out: io.StringIO, **kw) -> goheap.Heap:
    return goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=1, trace_stream=out, memprofilerate=0,
                       virtual_clock=True, start_time_ns=START, **kw)


@pytest.mark.nojit
def test_idle_spans_are_released_after_five_minutes():
    out = io.StringIO()
    with virtual_heap(out) as h:
        h.gc()
        p = h.alloc(8 << 20)
        h.view(p)[::4096] = 1  # touch every page
        assert resident_pages(p, 8 << 20) == 2048
        h.free(p)
        assert resident_pages(p, 8 << 20) == 2048  # free, but not yet given back
        h.advance_clock(300 * S)  # rounds at 60, 120, ... 300 s: idle for 300 s is not "more than 5 minutes"
        st = h.read_mem_stats()
        assert st.heap_released == 0 and resident_pages(p, 8 << 20) == 2048
        h.advance_clock(60 * S)  # the round at 360 s
        st = h.read_mem_stats()
        assert st.heap_released == st.heap_idle > 8 << 20  # the free span p merged into
        assert resident_pages(p, 8 << 20) == 0
        h.check()
        lines = out.getvalue().splitlines()
        assert f"scvg5: {st.heap_released >> 20:#x} MB released" in lines
        assert lines[-1] == (
            f"scvg5: inuse: {st.heap_inuse >> 20}, idle: {st.heap_idle >> 20}, sys: {st.heap_sys >> 20}, "
            f"released: {st.heap_released >> 20}, consumed: {(st.heap_sys - st.heap_released) >> 20} (MB)"
        )
        assert sum(1 for x in lines if x.startswith("scvg") and "inuse:" in x) == 6
        # reusing released pages: AllocLocked takes the whole span's released count off heap_released
        q = h.alloc(8 << 20)
        st = h.read_mem_stats()
        assert st.heap_released == 0
        assert not h.view(q, np.int64).any()  # released pages come back as zeros
        h.check()


def test_gc_forced_after_two_minutes_without_one():
    out = io.StringIO()
    with virtual_heap(out) as h:
        h.gc()
        n0 = h.read_mem_stats().num_gc
        h.advance_clock(600 * S)  # rounds k = 0..9 at 60 s each
        forced = [int(m.group(1)) for m in re.finditer(r"^scvg(\d+): GC forced$", out.getvalue(), re.M)]
        assert forced == [2, 5, 8]
        st = h.read_mem_stats()
        assert st.num_gc == n0 + 3
        assert st.last_gc == START + 540 * S
        # each forced collection's own gctrace line comes before its "GC forced" line
        text = out.getvalue()
        assert text.index("gc2(1)") < text.index("scvg2: GC forced")
        h.check()


def test_scavenger_policy_is_configurable():
    out = io.StringIO()
    with virtual_heap(out, force_gc_period_ns=10 * S, scavenge_limit_ns=20 * S) as h:
        p = h.alloc(1 << 20)
        h.free(p)
        h.advance_clock(26 * S)  # rounds every 5 s
        assert h.read_mem_stats().heap_released > 0
        assert "GC forced" in out.getvalue()


def test_free_os_memory_releases_everything_now():
    with goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=0) as h:
        keep = h.alloc(1 << 20)
        h.roots.add(keep)
        junk = h.alloc(4 << 20)
        h.view(junk)[::4096] = 7
        h.view(keep)[::4096] = 7
        released = h.free_os_memory()  # collects junk first
        st = h.read_mem_stats()
        assert released == st.heap_released == st.heap_idle >= 4 << 20
        assert resident_pages(junk, 4 << 20) == 0
        assert resident_pages(keep, 1 << 20) == 256  # in use: untouched
        assert h.free_os_memory() == 0  # nothing new to release
        h.check()


def test_free_os_memory_with_gogc_off_still_releases():
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=0) as h:
        p = h.alloc(2 << 20)
        h.free(p)
        assert h.free_os_memory() >= 2 << 20
        assert h.read_mem_stats().num_gc == 0


def test_background_scavenger_thread():
    out = io.StringIO()
    h = goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=1, trace_stream=out, memprofilerate=0,
                    scavenger_thread=True, force_gc_period_ns=S // 5, scavenge_limit_ns=3 * S // 10)
    try:
        p = h.alloc(2 << 20)
        h.free(p)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and h.read_mem_stats().heap_released == 0:
            time.sleep(0.05)
        assert h.read_mem_stats().heap_released > 0
        assert "GC forced" in out.getvalue()
    finally:
        h.close()
    assert not h._scvg_thread.is_alive()


def test_scavenger_config_errors():
    with pytest.raises(goheap.ConfigError):
        goheap.Heap(arena_size=16 << 20, virtual_clock=True, scavenger_thread=True)
    with pytest.raises(goheap.ConfigError):
        goheap.Heap(arena_size=16 << 20, scavenge_limit_ns=0)
    with goheap.Heap(arena_size=16 << 20, gctrace=0) as h:
        with pytest.raises(goheap.HeapError):
            h.advance_clock(S)  # needs a virtual clock
    with goheap.Heap(arena_size=16 << 20, gctrace=0, virtual_clock=True) as h:
        with pytest.raises(goheap.HeapError):
            h.advance_clock(-1)
        assert int(h._arrays.h[L.H_NOW]) == 0


# ---------------------------------------------------------------- advance_clock jumps over quiet rounds


def _quiet_heap(**kw) -> goheap.Heap:
    return goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=0, memprofilerate=0, virtual_clock=True,
                       start_time_ns=START, **kw)


def _state(h: goheap.Heap) -> tuple:
    st = h.read_mem_stats()
    gc = h.read_gc_stats()
    return (st.num_gc, st.last_gc, st.pause_total_ns, st.heap_released, st.heap_idle, st.heap_inuse,
            tuple(gc.pause), h._scvg_k, h.now(), h.gctrace_rows().tobytes())


def _busy_heap(h: goheap.Heap) -> None:
    """Some garbage and some live blocks, and a freed span that the scavenger will release later."""
    h.roots.add(h.alloc(4096))
    for _ in range(50):
        h.alloc(100)
    h.free(h.alloc(1 << 20))


@pytest.mark.parametrize(
    ("minutes", "policy"),
    [(0, "seed"), (1, "seed"), (7, "seed"), (61, "seed"), (24 * 60, "seed"), (7, "modern"), (61, "modern")],
)
def test_advance_clock_ends_where_running_every_round_ends(minutes, policy):
    """The jump over quiet rounds and repeated forced collections changes nothing but the time it takes
    (under the modern policy's retained-heap scavenger too)."""
    with _quiet_heap(policy=policy) as fast, _quiet_heap(policy=policy) as slow:
        _busy_heap(fast)
        _busy_heap(slow)
        ns = minutes * 60 * S + 12345
        fast.advance_clock(ns)
        target = slow.now() + ns
        while slow._next_scavenge <= target:  # every round, one by one
            slow._arrays.h[L.H_NOW] = slow._next_scavenge
            slow.scavenger_tick()
            slow._next_scavenge += slow._scvg_tick_ns
        slow._arrays.h[L.H_NOW] = target
        assert _state(fast) == _state(slow)
        fast.check()


def test_advance_clock_over_centuries_is_quick():
    with _quiet_heap() as h:
        _busy_heap(h)
        t0 = time.process_time()
        h.advance_clock(2**62)
        assert time.process_time() - t0 < 30
        st = h.read_mem_stats()
        period_rounds = (2 * 60 * S) // (60 * S) + 1  # forced every third one-minute round
        assert st.num_gc >= 2**62 // (period_rounds * 60 * S) - 2
        assert st.heap_released == st.heap_idle
        h.check()
        with pytest.raises(goheap.InvalidValue, match="2\\*\\*63"):
            h.advance_clock(2**62)
        for bad in (-1, 1.5, True, "1", 2**64):
            with pytest.raises(goheap.InvalidValue):
                h.advance_clock(bad)


def test_advance_clock_with_gc_off_jumps_too():
    with _quiet_heap(enable_gc=True) as h:
        h.set_gc_percent(-1)
        _busy_heap(h)
        h.advance_clock(10**18)
        assert h.read_mem_stats().num_gc == 0 and h._scvg_k == 10**18 // (60 * S)
