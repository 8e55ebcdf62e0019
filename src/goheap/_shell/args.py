"""Numbers given to the heap's public calls: ints only (numpy integers too, never a bool), in range.

Every public entry of the shell passes its numbers through these before it touches
anything, so a bad number is a goheap error naming it and the heap is left as it was:
:class:`~goheap.AddressError` for an address, :class:`~goheap.InvalidSize` for a size,
:class:`~goheap.InvalidValue` for any other number (a word to store, a handle, a rate, a
time, a count). The hot paths (Heap.alloc, free, lookup and the word accessors) test
``x.__class__ is int`` inline and come here only otherwise; the compiled call they make
then refuses an int beyond 64 bits (OverflowError, turned into the same errors).
"""

from __future__ import annotations

import numpy as np

from .. import errors

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def integer(value, what: str, lo: int = INT64_MIN, hi: int = INT64_MAX, error=errors.InvalidValue) -> int:
    """``value`` as an int, if it is one (a numpy integer too, a bool not) in lo..hi; else ``error``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise error(f"{what} must be an int, not {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise error(f"{what} {show(v) if error is errors.AddressError else v} is outside {lo}..{hi}")
    return v


def address(value, what: str = "address") -> int:
    """An address: an int in 0..2**63-1 (AddressError)."""
    return integer(value, what, 0, INT64_MAX, errors.AddressError)


def size(value, what: str = "size", lo: int = 0, hi: int = INT64_MAX) -> int:
    """A size or a count of bytes (InvalidSize)."""
    return integer(value, what, lo, hi, errors.InvalidSize)


def word(value, what: str = "the word to store") -> int:
    """A 64-bit word, signed (InvalidValue)."""
    return integer(value, what)


def show(addr) -> str:
    """An address as the errors print it: hex for an int, repr for anything else."""
    return f"{addr:#x}" if isinstance(addr, (int, np.integer)) and not isinstance(addr, bool) else repr(addr)
