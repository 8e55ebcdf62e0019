"""churn: an exact port of ../data/go-seed-runs/programs/churn.go.

Two million ``make([]byte, size)`` with sizes drawn from the program's own 64-bit LCG
(Knuth's MMIX constants): 70% small (8-256 B), 25% medium (256 B-32 KB), 5% large
(32 KB-1 MB). Each slice is a no-pointer block (FlagNoPointers, zeroed, as makeslice
of a pointer-free element type allocates it); its first and last bytes are written; its
header (array, len, cap) is stored into a random slot of ``ring``, a ``[][]byte`` of
10000 slots: one large block of 240000 bytes typed as an array of ``[]byte`` (makeslice
of a pointerful element: settype Array), scanned precisely. A slice overwritten in the
ring becomes garbage.

Roots: main's frame (0x160 bytes + return PC, as 6g compiled it) holds ``ring`` and the
outgoing area of its calls: ``between`` (no frame of its own) and ``runtime.makeslice``,
whose result words still hold the previous slice while the next one is allocated (as on
the Go stack of 2013). Below main, each ``runtime.makeslice`` runs the runtime's C frames
(:func:`~goheap.workloads.gostack.runtime_makeslice`). The run is dominated by zeroing the
large blocks, as in Go.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import nb
from .._runtime._jit import jit
from .._runtime.layout import runtime_ref
from .gostack import NON_POINTER, PRINTF_WRITES, enter, library_call, runtime_makeslice, slot, words
from ..heap import Heap

__all__ = ["N_ALLOCS", "N_SLOTS", "run"]

N_SLOTS = 10000
N_ALLOCS = 2000000
LCG_SEED = 0x2545F4914F6CDD1D
LCG_MUL = 6364136223846793005
LCG_ADD = 1442695040888963407
SLICE_HEADER = 24  # array pointer, len, cap
GO_FILE = "churn.go"  # for the memory profile's call stacks

MAIN_WORDS = 0x160 // 8 + 1
MAIN_RING = 0x40  # ring's array pointer, length, capacity
MAIN_SIZE = 0x90  # size
SLICE_TYPE = 0x473FE8  # makeslice's first argument: the type []byte (a static address)
# the stack words below main's sp written by its first Printf (tools/oracle_trace.py calls)
FIRST_PRINTF_WRITES = words(
    "1-63,65-80,82-83,86-91,93,95,98-100,122,125-145,147-163,165-169,171-178,180,183-189,194,200,202-214,"
    "217-224,227-232,238-242,244,247,250-259,261-264,266,271,273-275,278-282"
)

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
    ring = nb.stack_load(rt, c, slot(main, MAIN_WORDS, MAIN_RING))
    sp = slot(main, MAIN_WORDS, 0)
    for _ in range(n):
        i = counters[ST_I]
        r = _next(lcg) % np.uint32(100)
        # between(lo, hi): two 32-bit arguments in the first outgoing word, a leaf without a frame
        if r < 70:
            lo, hi = 8, 256
            counters[ST_SMALL] += 1
        elif r < 95:
            lo, hi = 256, 32768
            counters[ST_MEDIUM] += 1
        else:
            lo, hi = 32768, 1048576
            counters[ST_LARGE] += 1
        nb.stack_store(rt, c, sp, lo | (hi << 32))
        nb.stack_store(rt, c, sp + 1, NON_POINTER)
        size = _between(lcg, lo, hi)
        nb.stack_store(rt, c, sp - 1, size)
        # b := make([]byte, size): runtime.makeslice(type, len, cap); the result (array, len,
        # cap) in the words after cap
        nb.stack_store(rt, c, sp, SLICE_TYPE)
        nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_SIZE), size)
        nb.stack_store(rt, c, sp - 2, size)
        b = runtime_makeslice(rt, c, size, size, sp, bucket)
        nb.store_byte(rt, b, i & 0xFF)
        nb.store_byte(rt, b + size - 1, (i >> 8) & 0xFF)
        counters[ST_BYTES] += size
        cell = ring + SLICE_HEADER * np.int64(_next(lcg) % np.uint32(N_SLOTS))
        nb.store(rt, cell, b)
        nb.store(rt, cell + 8, size)
        nb.store(rt, cell + 16, size)
        counters[ST_I] = i + 1


@jit
def ring_summary(rt, c, main):
    """(live, live bytes, checksum) of the ring, with the Go program's uint64 arithmetic."""
    rt = runtime_ref(rt)  # no reference counting below this call
    ring = nb.stack_load(rt, c, slot(main, MAIN_WORDS, MAIN_RING))
    live = 0
    live_bytes = np.uint64(0)
    total = np.uint64(0)
    for k in range(N_SLOTS):
        cell = ring + SLICE_HEADER * k
        b = nb.load(rt, cell)
        if b != 0:
            n = nb.load(rt, cell + 8)
            live += 1
            live_bytes += np.uint64(n)
            first = np.uint64(nb.load_byte(rt, b))
            last = np.uint64(nb.load_byte(rt, b + n - 1))
            total = total * np.uint64(31) + first + (last << np.uint64(8)) + np.uint64(n)
    return live, live_bytes, total


@jit
def _set_ring(rt, c, main, ring):
    """ring := make([][]byte, nSlots): the result words, then main's slots."""
    rt = runtime_ref(rt)
    sp = slot(main, MAIN_WORDS, 0)
    for k in range(3):
        word = ring if k == 0 else N_SLOTS
        nb.stack_store(rt, c, sp - 3 - k, word)
        nb.stack_store(rt, c, slot(main, MAIN_WORDS, MAIN_RING + 8 * k), word)


def run(heap: Heap, args: tuple[()], go, tick: Callable[[], None], progress: Callable[[float], None]) -> None:
    slice_type = heap.register_type("[]uint8", SLICE_HEADER, (0,))
    rt, c = heap.runtime, heap.cache()
    main = enter(rt, c, MAIN_WORDS)
    with heap.attributing_allocations(heap.profile_bucket([("main.main", GO_FILE, 30), "runtime.main"])):
        ring = heap.alloc_array(slice_type, N_SLOTS)  # make([][]byte, nSlots)
    _set_ring(rt, c, main, ring)
    make_bucket = heap.profile_bucket([("main.main", GO_FILE, 47), "runtime.main"])

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
    library_call(rt, c, slot(main, MAIN_WORDS, 0), 5, FIRST_PRINTF_WRITES)
    go.printf(
        "allocs=%d small=%d medium=%d large=%d bytes_requested=%d\n",
        N_ALLOCS, counters[ST_SMALL], counters[ST_MEDIUM], counters[ST_LARGE], counters[ST_BYTES],
    )
    library_call(rt, c, slot(main, MAIN_WORDS, 0), 3, PRINTF_WRITES)
    go.printf("ring_live=%d ring_live_bytes=%d ring_checksum=%d\n", live, int(live_bytes), int(checksum))
    nb.stack_release(rt, c, main)
