"""churn: an exact port of ../data/go-seed-runs/programs/churn.go.

Two million ``make([]byte, size)`` with sizes drawn from the program's own 64-bit LCG
(Knuth's MMIX constants): 70% small (8-256 B), 25% medium (256 B-32 KB), 5% large
(32 KB-1 MB). Each slice is a no-pointer block (FlagNoPointers, zeroed, as makeslice
of a pointer-free element type allocates it); its first and last bytes are written; its
header (array, len, cap) is stored into a random slot of ``ring``, a ``[][]byte`` of
10000 slots: one large block of 240000 bytes typed as an array of ``[]byte`` (makeslice
of a pointerful element: settype Array), scanned precisely. A slice overwritten in the
ring becomes garbage.

Roots: main's frame holds ``ring`` and the outgoing area of its last ``makeslice`` call,
whose result words still hold the previous slice while the next one is allocated (as on
the Go stack of 2013). The run is dominated by zeroing the large blocks, as in Go.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import runtime_ref
from .gostack import RETURN_PC
from ..heap import Heap

__all__ = ["N_ALLOCS", "N_SLOTS", "run"]

N_SLOTS = 10000
N_ALLOCS = 2000000
LCG_SEED = 0x2545F4914F6CDD1D
LCG_MUL = 6364136223846793005
LCG_ADD = 1442695040888963407
SLICE_HEADER = 24  # array pointer, len, cap
GO_FILE = "churn.go"  # for the memory profile's call stacks

MAIN_FRAME = 10
MAIN_RING = 1  # ring's array pointer (len and cap follow)
MAIN_OUT = 4  # makeslice's outgoing area: type, len, cap, then the result (array, len, cap)

# counters kept by the compiled loop between chunks
ST_LCG, ST_I, ST_SMALL, ST_MEDIUM, ST_LARGE, ST_BYTES = range(6)


@jit
def _next(state):
    """next(): advance the LCG (state is a one-element uint64 array); 32 pseudo-random bits."""
    s = state[0] * np.uint64(LCG_MUL) + np.uint64(LCG_ADD)
    state[0] = s
    return np.uint32(s >> np.uint64(32))


@jit
def _between(state, lo, hi):
    """between(lo, hi): a value in [lo, hi], in uint32 arithmetic as the Go program computes it."""
    return np.int64(np.uint32(lo) + _next(state) % np.uint32(hi - lo + 1))


@jit
def churn_loop(rt, c, main, counters, lcg, n, bucket):
    """n iterations of the allocation loop; counters and the LCG state carry over between calls.

    bucket: the profile bucket of ``b := make([]byte, size)``.
    """
    rt = runtime_ref(rt)  # no reference counting below this call
    ring = nb.stack_load(rt, c, main + MAIN_RING)
    out = main + MAIN_OUT
    nb.set_profile_bucket(rt, bucket)
    for _ in range(n):
        i = counters[ST_I]
        r = _next(lcg) % np.uint32(100)
        if r < 70:
            size = _between(lcg, 8, 256)
            counters[ST_SMALL] += 1
        elif r < 95:
            size = _between(lcg, 256, 32768)
            counters[ST_MEDIUM] += 1
        else:
            size = _between(lcg, 32768, 1048576)
            counters[ST_LARGE] += 1
        # b := make([]byte, size): runtime.makeslice(type, len, cap)
        nb.stack_store(rt, c, out, RETURN_PC)
        nb.stack_store(rt, c, out + 1, size)
        nb.stack_store(rt, c, out + 2, size)
        b = nb.alloc_noscan(rt, c, size)
        nb.stack_store(rt, c, out + 3, b)
        nb.stack_store(rt, c, out + 4, size)
        nb.stack_store(rt, c, out + 5, size)
        nb.store_byte(rt, b, i & 0xFF)
        nb.store_byte(rt, b + size - 1, (i >> 8) & 0xFF)
        counters[ST_BYTES] += size
        slot = ring + SLICE_HEADER * np.int64(_next(lcg) % np.uint32(N_SLOTS))
        nb.store(rt, slot, b)
        nb.store(rt, slot + 8, size)
        nb.store(rt, slot + 16, size)
        counters[ST_I] = i + 1


@jit
def ring_summary(rt, c, main):
    """(live, live bytes, checksum) of the ring, with the Go program's uint64 arithmetic."""
    rt = runtime_ref(rt)  # no reference counting below this call
    ring = nb.stack_load(rt, c, main + MAIN_RING)
    live = 0
    live_bytes = np.uint64(0)
    total = np.uint64(0)
    for k in range(N_SLOTS):
        slot = ring + SLICE_HEADER * k
        b = nb.load(rt, slot)
        if b != 0:
            n = nb.load(rt, slot + 8)
            live += 1
            live_bytes += np.uint64(n)
            first = np.uint64(nb.load_byte(rt, b))
            last = np.uint64(nb.load_byte(rt, b + n - 1))
            total = total * np.uint64(31) + first + (last << np.uint64(8)) + np.uint64(n)
    return live, live_bytes, total


def run(heap: Heap, args: tuple[()], emit: Callable[[str], None], tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    slice_type = heap.register_type("[]uint8", SLICE_HEADER, (0,))
    rt, c = heap.runtime, heap.cache()
    main = nb.stack_reserve(rt, c, MAIN_FRAME)
    nb.stack_store(rt, c, main, RETURN_PC)
    with heap.attributing_allocations(heap.profile_bucket([("main.main", GO_FILE, 30), "runtime.main"])):
        ring = heap.alloc_array(slice_type, N_SLOTS)  # make([][]byte, nSlots)
    make_bucket = heap.profile_bucket([("main.main", GO_FILE, 47), "runtime.main"])
    nb.stack_store(rt, c, main + MAIN_RING, ring)
    nb.stack_store(rt, c, main + MAIN_RING + 1, N_SLOTS)
    nb.stack_store(rt, c, main + MAIN_RING + 2, N_SLOTS)

    counters = np.zeros(6, np.int64)
    lcg = np.array([LCG_SEED], np.uint64)
    chunk = 1 << 15
    done = 0
    while done < N_ALLOCS:
        k = min(chunk, N_ALLOCS - done)
        churn_loop(rt, c, main, counters, lcg, k, make_bucket)
        tick()
        done += k
        progress(done / N_ALLOCS)

    live, live_bytes, checksum = ring_summary(rt, c, main)
    emit(
        f"allocs={N_ALLOCS} small={counters[ST_SMALL]} medium={counters[ST_MEDIUM]} "
        f"large={counters[ST_LARGE]} bytes_requested={counters[ST_BYTES]}"
    )
    emit(f"ring_live={live} ring_live_bytes={int(live_bytes)} ring_checksum={int(checksum)}")
    nb.stack_release(rt, c, main)
