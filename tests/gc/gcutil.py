"""Helpers shared by the collector's tests (importable: conftest puts this directory on sys.path)."""

from __future__ import annotations

import ctypes

import numpy as np

import goheap


def bitmap_word_addr(h: goheap.Heap, addr: int) -> int:
    """Address of the bitmap word describing heap word ``addr``: (off // 16 + 1) words below arena_start."""
    off = (int(addr) - h.arena_start) // 8
    return h.arena_start - 8 * (off // 16 + 1)


def bits_of(h: goheap.Heap, addr: int) -> int:
    """The four bitmap bits of heap word ``addr``, computed by hand from the seed's layout.

    The bitmap word for word offset ``off`` is the (off // 16)-th 8-byte word counting
    down from just below arena_start; within it the word's bits are at off % 16 of each
    16-bit plane: 1 allocated, 1 << 16 no-pointers/boundary, 1 << 32 marked, 1 << 48 special.
    """
    off = (int(addr) - h.arena_start) // 8
    word = ctypes.c_uint64.from_address(bitmap_word_addr(h, addr)).value
    return (word >> (off % 16)) & 0x0001_0001_0001_0001


ALLOCATED = 1
NOPTR = BOUNDARY = 1 << 16
MARKED = 1 << 32
SPECIAL = 1 << 48


def is_live(h: goheap.Heap, p: int) -> bool:
    """Whether the block at p is allocated (as the bitmap says)."""
    return bool(bits_of(h, p) & ALLOCATED)


def word_view(h: goheap.Heap, p: int) -> np.ndarray:
    return h.view(p, np.int64)
