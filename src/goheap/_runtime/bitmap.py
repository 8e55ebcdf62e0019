"""The heap bitmap: the allocation half of mgc0.c (markallocated, markfreed, markspan, unmarkspan, special bits).

See :mod:`goheap._runtime.malloc` for the overview and :mod:`goheap._runtime.gc` for how the
collector reads it.

Four bits describe each 8-byte heap word. They live in four 16-bit planes of one 64-bit
bitmap word, which covers 16 heap words; the bitmap grows downward from arena_start, so
the bitmap word for heap word ``off`` sits ``off // 16 + 1`` words below arena_start and
the word's bits are at ``shift = off % 16`` in each plane. Only the first word of a block
carries state:

============ ================ =====================================================
allocated    bit 16           meaning
============ ================ =====================================================
1            no-pointers      start of an allocated block (bit 32 mark, bit 48 special)
0            1                block boundary: start of a free block, or just past the
                              last object of a span with a tail
0            0                not a block start
============ ================ =====================================================

Every word value is an int64 (the top plane's bit 15 is the sign bit).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .constants import BIT_ALLOCATED, BIT_BLOCK_BOUNDARY, BIT_MARKED, BIT_MASK, BIT_NO_POINTERS, BIT_SPECIAL
from .layout import H_ARENA_START, H_BASE

# int64 constants, so shifts wrap the same way compiled and interpreted
_ALLOCATED = np.int64(BIT_ALLOCATED)
_BOUNDARY = np.int64(BIT_BLOCK_BOUNDARY)
_NOPTR = np.int64(BIT_NO_POINTERS)
_MARKED = np.int64(BIT_MARKED)
_SPECIAL = np.int64(BIT_SPECIAL)
_MASK = np.int64(BIT_MASK)


@jit
def bitmap_index(rt, addr):
    """Index in rt.mem of the bitmap word describing heap word ``addr``."""
    off = (addr - rt.h[H_ARENA_START]) >> 3
    return ((rt.h[H_ARENA_START] - rt.h[H_BASE]) >> 3) - (off >> 4) - 1


@jit
def bitmap_shift(rt, addr):
    return ((addr - rt.h[H_ARENA_START]) >> 3) & 15


@jit
def get_bits(rt, addr):
    """The four bits of ``addr``'s word, shifted down to plane position 0 (as BIT_* values)."""
    return (rt.mem[bitmap_index(rt, addr)] >> bitmap_shift(rt, addr)) & _MASK


@jit
def _set_bits(rt, addr, bits):
    i = bitmap_index(rt, addr)
    shift = bitmap_shift(rt, addr)
    rt.mem[i] = (rt.mem[i] & ~(_MASK << shift)) | (bits << shift)


@jit
def markallocated(rt, v, noptr):
    """The block at v is allocated (and, with noptr, holds no pointers); clears mark and special."""
    bits = _ALLOCATED
    if noptr:
        bits |= _NOPTR
    _set_bits(rt, v, bits)


@jit
def markfreed(rt, v):
    """The block at v is free: boundary bit only."""
    _set_bits(rt, v, _BOUNDARY)


@jit
def markspan(rt, v, size, n, leftover):
    """Boundary bits at the n objects of size ``size`` from v, and one past the last if leftover."""
    if leftover:
        n += 1
    p = v
    for _ in range(n):
        _set_bits(rt, p, _BOUNDARY)
        p += size


@jit
def unmarkspan(rt, v, nbytes):
    """Zero the bitmap words covering [v, v+nbytes); both multiples of 128 bytes."""
    i = bitmap_index(rt, v)
    nwords = nbytes >> 7
    for k in range(nwords):
        rt.mem[i - k] = 0


@jit
def is_allocated(rt, v):
    return (get_bits(rt, v) & _ALLOCATED) != 0


@jit
def blockspecial(rt, v):
    return (get_bits(rt, v) & _SPECIAL) != 0


@jit
def setblockspecial(rt, v, special):
    i = bitmap_index(rt, v)
    bit = _SPECIAL << bitmap_shift(rt, v)
    if special:
        rt.mem[i] |= bit
    else:
        rt.mem[i] &= ~bit


@jit
def set_marked(rt, v):
    i = bitmap_index(rt, v)
    rt.mem[i] |= _MARKED << bitmap_shift(rt, v)


@jit
def clear_marked(rt, v):
    i = bitmap_index(rt, v)
    rt.mem[i] &= ~(_MARKED << bitmap_shift(rt, v))
