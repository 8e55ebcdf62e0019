"""Benchmark: what the checked API costs, against the unchecked one it replaced, in one run.

Measures, on one heap:

* ``words``: ``h.store_word(p, 1, h.load_word(p, 2))`` from a Python loop, as shipped (the
  address checked against the bitmap's allocated bit and the block's size in one compiled
  call), and the same pair with the accessors as they were before (the shell's code of
  commit 651513a, verbatim below, over the same heap: mlookup, which also finds free slots,
  then the bounds in Python). Goal: checked within 1.3x of before.
* ``alloc+free``: ``h.free(h.alloc(16))``, as shipped and as before (the same old code).
  Goal: <= 1 us.
* ``scope``: ``s.alloc(16)`` in a handle scope (allocated and rooted in one compiled call),
  the scope emptied every 1000 allocations.
* ``nb``: ``goheap.nb.load``/``store`` in an ``@njit`` loop, unchecked, and
  ``goheap.nb.checked``'s in the same loop (what a mutator compiled for debugging pays).

Times are CPU time of the process, each figure the best of ``--repeat`` runs; the ratios
compare figures measured in this same run. This is not a test: nothing is asserted.

Usage::

    .venv/bin/python bench/bench_checked.py [--n N] [--repeat R]
"""

from __future__ import annotations

import argparse

import numba
from numba import types

import goheap
from goheap import errors, nb
from goheap._runtime import entry
from goheap._runtime import layout as L
from goheap._runtime._jit import entry_point
from goheap._runtime.constants import FLAG_NO_GC, FLAG_NO_POINTERS, FLAG_NO_PROFILING, MAX_SMALL_SIZE, PAGE_SIZE

from bench_malloc import best_of  # bench/ is the script's directory, first on sys.path


class AsBefore:
    """The shell's accessors, alloc and free as they were before they were checked (commit 651513a).

    The paths the benchmark takes are that commit's code, unchanged but for the names they
    reach the heap by; the ones it cannot take (sampling, collecting, finalizers) raise.
    """

    def __init__(self, heap: goheap.Heap):
        self._closed = False
        self._local = heap._local
        self._cache = heap._cache
        self._handle = heap._handle
        self._arrays = heap._arrays
        self._max_size = heap._max_size
        self._profile_rate = heap._profile_rate
        self._cache_words = heap._cache_words
        self._mstats_words = heap._mstats_words
        self._numgc_seen = heap._numgc_seen
        self._finalizers = heap._finalizers
        self._raise = heap._raise
        self._alloc_fast = entry_point(*entry.HOT["alloc"])
        self._free_fast = entry_point(*entry.HOT["free"])
        self._lookup_fast = entry_point(entry.lookup, (types.int64, types.int64, types.int64))

    def alloc(self, size, *, noscan=False, type=None, zeroed=True, noprofile=False, nogc=False):
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        if size.__class__ is not int:
            raise errors.InvalidSize(f"size must be an int, not {size!r}")
        if size < 0 or size > self._max_size:
            raise errors.InvalidSize(f"size {size} is negative or larger than the {self._max_size}-byte arena")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        flag = 0
        if noscan:
            flag = FLAG_NO_POINTERS
        if noprofile:
            flag |= FLAG_NO_PROFILING
        elif self._profile_rate > 0 and (
            size >= self._profile_rate
            or self._cache_words[c * L.LC_NSLOTS + L.LC_NEXT_SAMPLE] <= (2 * size + 8 if size <= MAX_SMALL_SIZE else size + PAGE_SIZE)
        ):
            raise AssertionError("the benchmark's heap does not profile")
        if nogc:
            flag |= FLAG_NO_GC
        v = self._alloc_fast(self._handle, c, size, flag, zeroed)
        if v < 0:
            self._raise(v, size)
        if self._mstats_words[L.ST_NUMGC] != self._numgc_seen:
            raise AssertionError("the benchmark's heap does not collect")
        return v

    def free(self, p):
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if p.__class__ is not int:
            raise errors.AddressError(f"address must be an int, not {p!r}")
        try:
            code = self._free_fast(self._handle, c, p)
        except OverflowError:
            raise errors.AddressError(f"address {p!r} is outside the heap") from None
        if code:
            self._raise(code)
        if self._finalizers and self._finalizers.pop(p, None) is not None:
            raise AssertionError("the benchmark sets no finalizer")

    def lookup(self, addr):
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if addr.__class__ is not int:
            raise errors.AddressError(f"address must be an int, not {addr!r}")
        try:
            base, size, _ = self._lookup_fast(self._handle, c, addr)
        except OverflowError:
            raise errors.AddressError(f"address {addr!r} is outside the heap") from None
        if base == 0:
            raise errors.AddressError(f"address {addr:#x} is not in an allocated block of this heap")
        return base, size

    def _word_index(self, p, i):
        base, size = self.lookup(p)
        addr = p + 8 * i
        if i < 0 or addr + 8 > base + size:
            raise errors.AddressError(f"word {i} of the block at {p:#x} is outside its {size} bytes")
        return (addr - int(self._arrays.h[L.H_BASE])) >> 3

    def store_ptr(self, p, i, q):
        k = self._word_index(p, i)
        self._arrays.mem[k] = q

    def load_ptr(self, p, i):
        k = self._word_index(p, i)
        return int(self._arrays.mem[k])


@numba.njit(cache=True)
def _words_unchecked(rt, p, n):
    s = 0
    for i in range(n):
        nb.store(rt, p + 8, i)
        s += nb.load(rt, p + 16)
    return s


@numba.njit(cache=True)
def _words_checked(rt, p, n):
    s = 0
    for i in range(n):
        nb.checked.store(rt, p + 8, i)
        s += nb.checked.load(rt, p + 16)
    return s


def per_op(repeat: int, n: int, fn) -> float:
    """Microseconds per iteration of fn(n), after one warm-up run."""
    fn(min(n, 1000))
    return best_of(repeat, lambda: fn(n)) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300_000, help="iterations per Python run")
    ap.add_argument("--compiled-n", type=int, default=20_000_000, help="iterations per compiled run")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    with goheap.Heap(arena_size=1 << 30, gcpercent=-1, memprofilerate=0) as h, h.scope() as s:
        p = s.alloc(64)
        old = AsBefore(h)

        def words(load, store):
            def run(n):
                for _ in range(n):
                    store(p, 1, load(p, 2))

            return run

        def alloc_free(alloc, free):
            def run(n):
                for _ in range(n):
                    free(alloc(16))

            return run

        def scoped(n):
            with h.scope() as inner:
                for k in range(n):
                    inner.alloc(16)
                    if k % 1000 == 999:
                        inner.__exit__(None, None, None)
                        inner.__enter__()

        rt = h.runtime
        results = {}
        for _ in range(2):  # interleaved twice: each figure is the better of the two rounds
            for name, fn in [
                ("words checked", words(h.load_word, h.store_word)),
                ("words before", words(old.load_ptr, old.store_ptr)),
                ("alloc+free checked", alloc_free(h.alloc, h.free)),
                ("alloc+free before", alloc_free(old.alloc, old.free)),
                ("scope alloc", scoped),
            ]:
                results[name] = min(results.get(name, float("inf")), per_op(args.repeat, args.n, fn))
            for name, loop in [("nb unchecked", _words_unchecked), ("nb checked", _words_checked)]:
                us = per_op(args.repeat, args.compiled_n, lambda n, loop=loop: loop(rt, p, n))
                results[name] = min(results.get(name, float("inf")), us)

    r = results
    print(f"python  load_word+store_word, checked:   {r['words checked']:7.3f} us/pair")
    print(f"python  load_word+store_word, before:    {r['words before']:7.3f} us/pair")
    print(f"        ratio checked / before:          {r['words checked'] / r['words before']:7.2f}   (goal <= 1.3)")
    print(f"python  alloc(16)+free, checked:         {r['alloc+free checked']:7.3f} us/pair   (goal <= 1 us)")
    print(f"python  alloc(16)+free, before:          {r['alloc+free before']:7.3f} us/pair")
    print(f"        ratio checked / before:          {r['alloc+free checked'] / r['alloc+free before']:7.2f}")
    print(f"python  scope.alloc(16):                 {r['scope alloc']:7.3f} us/op")
    print(f"njit    nb.load+nb.store, unchecked:     {r['nb unchecked'] * 1e3:7.2f} ns/pair")
    print(f"njit    nb.checked.load+store:           {r['nb checked'] * 1e3:7.2f} ns/pair")
    print(f"        ratio checked / unchecked:       {r['nb checked'] / r['nb unchecked']:7.2f}")


if __name__ == "__main__":
    main()
