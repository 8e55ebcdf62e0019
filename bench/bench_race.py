"""Benchmark: what race mode costs, in time and memory, against race mode off in the same run.

Each figure runs the same code on an ordinary heap and on a race-mode heap
(``Heap(race=True)``) and prints both and their ratio (goal: at most 10x):

* ``compiled alloc+free``: a 16-byte ``nb.alloc`` + ``nb.free`` in one ``@numba.njit`` loop
  (racemalloc, racefree);
* ``compiled load+store``: ``nb.store(a, nb.load(a) + 1)`` over a 1024-word block
  (raceread, racewrite: after the first pass, every access is in the thread's epoch);
* ``compiled load+store, 2 threads``: the same loop run in turn by two threads ordered
  by a Mutex, so every pass finds the other thread's epoch in each word;
* ``binarytrees N``: the workload (``goheap run --race binarytrees N``), allocation and
  pointer stores from compiled code, collections included;
* ``python alloc+free``, ``python load_word+store_word``: the Python API;
* ``Mutex lock+unlock``: goheap.race's Mutex with no race-mode heap open, and with one.

Memory: after binarytrees, the race shadow resident (mincore) per heap word resident
(goal: at most 8 bytes, one 64-bit cell pair per word), and everything race mode
keeps resident (shadow, meta shadow, histories, clocks, allocation records, read sets)
against the arena resident.

Times are process CPU time, each the best of ``--repeat`` runs. Not a test: nothing is
asserted.

Usage::

    .venv/bin/python bench/bench_race.py [--n DEPTH] [--repeat R]
"""

from __future__ import annotations

import argparse
import io
import threading
import time

import numba

import goheap
from goheap import nb
from goheap.race import Mutex, RaceOptions
from goheap.workloads import run_workload

QUIET = RaceOptions(log_path="stdout")


@numba.njit(cache=True)
def _alloc_free(rt, c, n):
    s = 0
    for _ in range(n):
        p = nb.alloc(rt, c, 16)
        s += p & 15
        nb.free(rt, c, p)
    return s


@numba.njit(cache=True)
def _load_store(rt, p, nwords, n):
    for _ in range(n):
        for k in range(nwords):
            a = p + 8 * k
            nb.store(rt, a, nb.load(rt, a) + 1)


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def heap(race: bool) -> goheap.Heap:
    return goheap.Heap(arena_size=1 << 30, race=race, race_options=QUIET if race else None)


def compiled_alloc_free(race: bool, n: int, repeat: int) -> float:
    with heap(race) as h:
        rt, c = h.runtime, h.cache()
        _alloc_free(rt, c, 1000)
        return best_of(repeat, lambda: _alloc_free(rt, c, n)) / n * 1e9


def compiled_load_store(race: bool, n: int, repeat: int) -> float:
    with heap(race) as h:
        rt = h.runtime
        p = h.alloc(8 * 1024, noscan=True)
        _load_store(rt, p, 1024, 2)
        return best_of(repeat, lambda: _load_store(rt, p, 1024, n)) / (n * 1024) * 1e9


def compiled_load_store_two_threads(race: bool, n: int, repeat: int) -> float:
    """ns per load+store pair, two threads alternating passes under a Mutex (wall-clock time)."""
    with heap(race) as h:
        rt = h.runtime
        p = h.alloc(8 * 1024, noscan=True)
        h.roots.add(p)
        mu = Mutex()

        def worker(passes: int) -> None:
            h.cache()
            for _ in range(passes):
                with mu:
                    _load_store(rt, p, 1024, 1)

        def run() -> None:
            ts = [threading.Thread(target=worker, args=(n // 2,)) for _ in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        run()
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        if race:
            assert not h.race.reports, "the Mutex orders the passes: no race"
        return best / (n * 1024) * 1e9


def binarytrees(race: bool, depth: int, repeat: int) -> tuple[float, dict | None]:
    stats: list[dict] = []

    def on_exit(h: goheap.Heap) -> None:
        if h.race is not None:
            stats.append(h.race.stats())

    config = {"race": True, "race_options": QUIET} if race else {}

    def run() -> None:
        run_workload("binarytrees", [str(depth)], gcpercent=100, gctrace=0, trace_stream=io.StringIO(), on_exit=on_exit, **config)

    run_workload("binarytrees", ["8"], gcpercent=100, gctrace=0, trace_stream=io.StringIO(), **config)
    return best_of(repeat, run), (stats[-1] if stats else None)


def python_alloc_free(race: bool, n: int, repeat: int) -> float:
    with heap(race) as h:
        alloc, free = h.alloc, h.free

        def pairs() -> None:
            for _ in range(n):
                free(alloc(16))

        pairs()
        return best_of(repeat, pairs) / n * 1e6


def python_load_store(race: bool, n: int, repeat: int) -> float:
    with heap(race) as h:
        p = h.alloc(8 * 1024)
        load, store = h.load_word, h.store_word

        def pairs() -> None:
            for i in range(n):
                k = i & 1023
                store(p, k, load(p, k) + 1)

        pairs()
        return best_of(repeat, pairs) / n * 1e6


def mutex(race: bool, n: int, repeat: int) -> float:
    mu = Mutex()

    def pairs() -> None:
        for _ in range(n):
            mu.lock()
            mu.unlock()

    if not race:
        pairs()
        return best_of(repeat, pairs) / n * 1e6
    with heap(True):
        pairs()
        return best_of(repeat, pairs) / n * 1e6


def row(name: str, unit: str, off: float, on: float) -> None:
    print(f"{name:40s} off {off:9.3f} {unit:6s} on {on:9.3f} {unit:6s} ratio {on / off:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=14, help="binarytrees depth")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    r = args.repeat
    print("race mode off vs on (goal: on <= 10x off; shadow <= 8 bytes per heap word touched)")
    row("compiled alloc+free 16 B", "ns", compiled_alloc_free(False, 2_000_000, r), compiled_alloc_free(True, 2_000_000, r))
    row("compiled load+store", "ns", compiled_load_store(False, 4000, r), compiled_load_store(True, 4000, r))
    row("compiled load+store, 2 threads", "ns", compiled_load_store_two_threads(False, 400, r),
        compiled_load_store_two_threads(True, 400, r))
    off, _ = binarytrees(False, args.n, r)
    on, st = binarytrees(True, args.n, r)
    row(f"binarytrees {args.n}", "s", off, on)
    row("python h.alloc(16) + h.free(p)", "us", python_alloc_free(False, 100_000, r), python_alloc_free(True, 100_000, r))
    row("python load_word + store_word", "us", python_load_store(False, 100_000, r), python_load_store(True, 100_000, r))
    row("Mutex lock+unlock (no race heap / one)", "us", mutex(False, 100_000, r), mutex(True, 100_000, r))
    assert st is not None
    words = st["arena_resident"] / 8
    extra = sum(v for k, v in st.items() if k.endswith("_resident") and k != "arena_resident")
    print(f"binarytrees {args.n} memory: arena resident {st['arena_resident'] >> 10} KB, "
          f"shadow resident {st['shadow_resident'] >> 10} KB = {st['shadow_resident'] / words:.2f} bytes per heap word; "
          f"all race memory {extra >> 10} KB = {extra / st['arena_resident']:.2f}x the arena resident "
          f"(meta {st['meta_resident'] >> 10} KB, histories {st['history_resident'] >> 10} KB, "
          f"allocation records {st['alloc_records_resident'] >> 10} KB)")


if __name__ == "__main__":
    main()
