"""Benchmark: mark and sweep throughput of the collector on one core.

A compiled mutator (``@numba.njit`` over :mod:`goheap.nb`) builds a heap of linked
objects of 16 to 64 bytes: ``--live`` MB of them reachable (``--chains`` singly linked
lists whose heads sit in shadow-stack slots; each node's word 0 is its successor, the
other words hold data) and as many bytes again of unreachable objects allocated between
them. With GOGC=off while it builds, one forced collection (nproc = 1) then runs, and its
gctrace times give:

* ``mark``: MB of live heap marked per second (live bytes = HeapAlloc after the
  collection, over the mark phase's time t2 - t1);
* ``sweep``: MB of spans swept per second (HeapInuse before the collection, over the
  sweep phase's time t3 - t2), and objects swept per second.

For reference, in the same run: ``numpy sum`` reads the same number of bytes as the live
heap (the heap's own memory, as int64) with ``np.sum``, the speed of a plain streaming
pass over that much memory. Each figure is the best of ``--repeat`` collections; the
heap is rebuilt for each.

Usage::

    .venv/bin/python bench/bench_gc.py [--live MB] [--repeat N] [--chains N] [--nproc N]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import goheap
from goheap import nb
from goheap._runtime import layout as L

SIZES = np.array([16, 32, 48, 64], np.int64)


@numba.njit(cache=True)
def build(rt, c, live_bytes, chains, sizes):
    """``chains`` linked lists holding ``live_bytes`` in total, with as much garbage in between."""
    for k in range(chains):
        nb.set_root(rt, c, k, 0)
    allocated = 0
    i = 0
    while allocated < live_bytes:
        size = sizes[i % sizes.shape[0]]
        k = i % chains
        v = nb.alloc(rt, c, size)
        nb.store(rt, v, nb.get_root(rt, c, k))
        for w in range(1, size // 8):
            nb.store(rt, v + 8 * w, i * 31 + w)  # data, not pointers
        nb.set_root(rt, c, k, v)
        allocated += size
        g = nb.alloc(rt, c, sizes[(i + 1) % sizes.shape[0]])  # garbage
        nb.store(rt, g, v)
        i += 1
    return i


def measure(live_mb: int, chains: int, nproc: int):
    with goheap.Heap(arena_size=4 << 30, gcpercent=-1, gctrace=0, memprofilerate=0, nproc=nproc) as h:
        rt, c = h.runtime, h.cache()
        t = time.perf_counter()
        nobj = build(rt, c, live_mb << 20, chains, SIZES)
        t_build = time.perf_counter() - t
        h.set_gc_percent(100)
        before = h.read_mem_stats()
        h.gc()
        after = h.read_mem_stats()
        row = h.gctrace_rows()[-1]
        mark_s = int(row[L.TR_MARK_NS]) / 1e9
        sweep_s = int(row[L.TR_SWEEP_NS]) / 1e9
        live = after.heap_alloc
        assert after.heap_objects == nobj, (after.heap_objects, nobj)
        # the same number of bytes as the live heap, read by numpy from the heap's own memory
        base = int(h._arrays.h[L.H_BASE])
        words = h._arrays.mem[(h.arena_start - base) // 8 : (h.arena_start - base + live) // 8]
        t = time.perf_counter()
        words.sum()
        numpy_s = time.perf_counter() - t
        return dict(
            counters=[int(x) for x in row[L.TR_NHANDOFF : L.TR_NSLEEP + 1]],
            nobj=nobj, live=live, inuse=before.heap_inuse, swept_objects=before.heap_objects,
            build_s=t_build, mark_s=mark_s, sweep_s=sweep_s, numpy_s=numpy_s,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=int, default=256, help="MB of live heap (default 256)")
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--nproc", type=int, default=1, help="collector procs (>1: the interleaved simulation, still one core)")
    args = ap.parse_args()
    print(f"goheap {goheap.__version__}, numba {numba.__version__}, numpy {np.__version__}; nproc {args.nproc}")
    runs = [measure(args.live, args.chains, args.nproc) for _ in range(args.repeat)]
    best = {k: min(r[k] for r in runs) for k in ("build_s", "mark_s", "sweep_s", "numpy_s")}
    r = runs[0]
    mb = 1 << 20
    print(f"live heap: {r['live'] / mb:.1f} MB in {r['nobj']:,} objects of 16-64 B; "
          f"{r['inuse'] / mb:.1f} MB of spans with {r['swept_objects']:,} objects before the collection")
    print(f"build (compiled mutator): {best['build_s']:.3f} s")
    print(f"mark:        {r['live'] / mb / best['mark_s']:8.0f} MB/s of live heap   ({best['mark_s'] * 1e3:.1f} ms, "
          f"{r['nobj'] / best['mark_s'] / 1e6:.1f} M objects/s)")
    print(f"sweep:       {r['inuse'] / mb / best['sweep_s']:8.0f} MB/s of spans         ({best['sweep_s'] * 1e3:.1f} ms, "
          f"{r['swept_objects'] / best['sweep_s'] / 1e6:.1f} M objects/s)")
    print(f"numpy sum:   {r['live'] / mb / best['numpy_s']:8.0f} MB/s over the same bytes ({best['numpy_s'] * 1e3:.1f} ms)")
    print(f"mark / numpy sum time: {best['mark_s'] / best['numpy_s']:.1f}x")
    if args.nproc > 1:
        h, hc, st, sc, py, oy, sl = r["counters"]
        print(f"gctrace counters: {h}({hc}) handoff, {st}({sc}) steal, {py}/{oy}/{sl} yields")


if __name__ == "__main__":
    main()
