"""The race detector's runtime (raceshadow.py, race.py): shadow mapped as the arena grows and paged
lazily, the FastTrack cells, clock overflow, thread slots, the access history."""

from __future__ import annotations

import gc
import threading

import numba
import numpy as np
import pytest

import goheap
from goheap import nb, race
from goheap._runtime import race as R
from goheap._runtime import raceshadow as S
from goheap._runtime import layout as L
from goheap._runtime.constants import MAX_MEM
from goheap.race import Mutex, RaceOptions
from heaptools import race_heap, rss_bytes


pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)



def cells(h: goheap.Heap, addr: int) -> tuple[int, int]:
    """(W, R) of the heap word at addr."""
    k = (addr - h.arena_start) >> 3
    sh = h._arrays.race_shadow
    return int(sh[2 * k]), int(sh[2 * k + 1])


def main_slot(h: goheap.Heap) -> int:
    return int(R.entry_slot(h._handle))


def test_an_ordinary_heap_has_no_race_memory() -> None:
    with goheap.Heap(arena_size=64 << 20) as h:
        a = h._arrays
        assert h.race is None and a.h[L.H_RACE] == 0
        for name in S.FIELDS:
            assert getattr(a, name).nbytes <= 8 * S.RH_NSLOTS_, name
        assert numba.config.DISABLE_JIT or type(h.runtime).__name__ == "Runtime"


def test_the_shadow_follows_the_arena() -> None:
    with race_heap(arena_size=1 << 30) as h:
        rh = h._arrays.race_h
        assert numba.config.DISABLE_JIT or type(h.runtime).__name__ == "RaceRuntime"
        assert rh[S.RH_SHADOW_WORDS] * 8 == h.arena_used - h.arena_start
        p = h.alloc(24 << 20)  # grows the arena by 24 MB
        assert rh[S.RH_SHADOW_WORDS] * 8 == h.arena_used - h.arena_start >= 24 << 20
        h.store_word(p, (24 << 20) // 8 - 1, 1)  # the last word's shadow is mapped
        assert cells(h, p + (24 << 20) - 8)[0] != 0


def test_the_shadow_is_paged_in_only_where_the_heap_is_touched() -> None:
    with race_heap(arena_size=1 << 30) as h:
        p = h.alloc(64 << 20, noscan=True)
        for i in range(0, (64 << 20) // 8, 4096):  # one word per 32 KB
            h.store_word(p, i, 1)
        st = h.race.stats()
        assert st["shadow_mapped"] >= 64 << 20
        assert st["shadow_resident"] <= 2 * 2048 * 4096  # a page of shadow per word touched, at most
        assert st["shadow_resident"] <= st["arena_resident"] + (64 << 10)


def test_a_128gb_race_heap_costs_little_rss() -> None:
    gc.collect()
    before = rss_bytes()
    h = goheap.Heap(gcpercent=-1, race=True, race_options=RaceOptions())
    try:
        grown = rss_bytes() - before
        assert h.arena_end - h.arena_start == MAX_MEM
        assert grown < 16 << 20, f"building a 128 GB race-mode heap raised RSS by {grown >> 20} MB"
        # the shadow is outside the Go heap's accounting, as ThreadSanitizer's is
        with goheap.Heap(gcpercent=-1) as plain:
            assert h.read_mem_stats().sys == plain.read_mem_stats().sys
    finally:
        h.close()


def test_same_epoch_accesses_return_at_once() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        assert R.entry_access(h._handle, p, S.KIND_WRITE) > 0  # recorded, stack pending
        assert R.entry_access(h._handle, p, S.KIND_WRITE) == 0
        assert R.entry_access(h._handle, p, S.KIND_READ) > 0
        assert R.entry_access(h._handle, p, S.KIND_READ) == 0
        t = main_slot(h)
        w, r = cells(h, p)
        assert w == r == (t << S.SLOT_SHIFT) | int(h._arrays.race_vc[t, t])


def test_free_marks_the_block_and_malloc_clears_it() -> None:
    with race_heap() as h:
        p = h.alloc(32)
        h.store_word(p, 1, 1)
        h.free(p)
        assert all(cells(h, p + 8 * i)[1] == S.FREED for i in range(4))
        q = h.alloc(32)
        assert q == p  # the cache hands the same block back
        assert all(cells(h, p + 8 * i) == (0, 0) for i in range(4))
        assert h.race.reports == []


def test_read_sets_are_released_by_the_next_write() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        h.store_word(p, 0, 1)
        ts = [race.go(h.load_word, p, 0) for _ in range(9)]  # 9 unordered reads: two nodes of 7
        for t in ts:
            t.join()
        assert cells(h, p)[1] >> S.SLOT_SHIFT == 255
        assert h._arrays.race_h[S.RH_RS_LIVE] == 2
        h.store_word(p, 0, 2)  # ordered after every read by the joins
        assert h._arrays.race_h[S.RH_RS_LIVE] == 0 and cells(h, p)[1] == 0
        assert h.race.reports == []


def test_a_clock_overflow_resets_the_detector_and_invents_nothing() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        mu = Mutex()
        h.store_word(p, 0, 1)
        t = main_slot(h)
        h._arrays.race_vc[t, t] = S.CLOCK_MAX
        mu.lock()
        mu.unlock()  # the release advances the clock past 2^24-1
        rh = h._arrays.race_h
        assert rh[S.RH_RESETS] == 1
        assert h._arrays.race_vc[t, t] == 1 and cells(h, p) == (0, 0)

        def locked_increment() -> None:
            with mu:
                h.store_word(p, 0, h.load_word(p, 0) + 1)

        for th in [race.go(locked_increment) for _ in range(4)]:
            th.join()
        assert h.race.reports == []
        th = threading.Thread(target=h.store_word, args=(p, 0, 9))  # still a race after the reset
        th.start()
        th.join()
        h.load_word(p, 0)
        assert len(h.race.reports) == 1


def test_slots_are_reused_once_255_threads_have_finished() -> None:
    with race_heap() as h:
        p = h.alloc(16)
        for i in range(300):
            t = race.go(lambda: h.store_word(p, 0, h.load_word(p, 0) + 1))
            t.join()
        rh = h._arrays.race_h
        assert rh[S.RH_NSLOTS] == S.MAX_THREADS
        assert rh[S.RH_NGOROUTINES] == 301
        assert h.load_word(p, 0) == 300
        assert h.race.reports == []


@numba.njit
def _write_words(rt, p, n):
    for i in range(n):
        nb.store(rt, p + 8 * i, i)


@pytest.mark.parametrize("history_size, restored", [(0, False), (1, True)])
def test_history_size_bounds_how_far_back_stacks_are_found(history_size: int, restored: bool) -> None:
    with race_heap(race_options=RaceOptions(history_size=history_size, log_path="stdout")) as h:
        p = h.alloc(8)
        big = h.alloc(48 << 10 << 3, noscan=True)  # 48K words

        def writer() -> None:
            h.store_word(p, 0, 1)
            _write_words(h.runtime, big, 48 << 10)  # 48K more history entries

        t = threading.Thread(target=writer)
        t.start()
        t.join()
        h.load_word(p, 0)
        [r] = h.race.reports
        assert bool(r.previous_stack) == restored
        assert ("[failed to restore the stack]" in r.text) != restored


def test_the_collector_joins_every_clock() -> None:
    with race_heap(gcpercent=100) as h:
        p = h.alloc(16)
        h.roots.add(p)
        started = threading.Event()
        go_on = threading.Event()

        def worker() -> None:
            h.store_word(p, 0, 1)
            started.set()
            go_on.wait()

        th = threading.Thread(target=worker)
        th.start()
        started.wait()
        a = h._arrays
        n = int(a.race_h[S.RH_NSLOTS])
        h.gc()
        vc = a.race_vc[:n, :n]
        running = a.race_thr[:n, S.TS_STATE] == S.SLOT_RUNNING
        own = vc[np.arange(n), np.arange(n)]
        # every running slot knows every other's clock, its own one tick further
        assert np.all(vc[running] >= own - 1)
        h.load_word(p, 0)
        go_on.set()
        th.join()
        assert h.race.reports == []
