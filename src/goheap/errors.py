"""goheap's exceptions.

Every misuse of a heap raises a subclass of :class:`HeapError` whose message names the
address, size or file line at fault. When one is raised the heap is unchanged: the check
runs before any state is touched, so ``Heap.check()`` still passes afterwards.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

__all__ = [
    "AddressError",
    "CacheWarning",
    "ConfigError",
    "DoubleFree",
    "FinalizerError",
    "FinalizerWarning",
    "HeapClosed",
    "HeapCorrupted",
    "HeapError",
    "InvalidFree",
    "InvalidSize",
    "InvalidValue",
    "OutOfMemory",
    "RaceError",
]


class HeapError(Exception):
    """Base class of every error goheap raises on purpose."""

    __module__ = "goheap"


class AddressError(HeapError, ValueError):
    """An address that is not inside the heap's arena, or not in an allocated block."""

    __module__ = "goheap"


class InvalidFree(AddressError):
    """free() of an address that is not the start of an allocated block."""

    __module__ = "goheap"


class DoubleFree(InvalidFree):
    """free() of a block that is already free."""

    __module__ = "goheap"


class InvalidSize(HeapError, ValueError):
    """A negative size, or one larger than the arena could ever hold."""

    __module__ = "goheap"


class InvalidValue(HeapError, ValueError, TypeError):
    """An argument the heap cannot take: a number that is not an int (a float, a bool, a
    string) or is out of range, or a TypeInfo this heap did not register.

    For numbers that are neither addresses (:class:`AddressError`) nor sizes
    (:class:`InvalidSize`): a word to store, a handle, a rate, a time, a stack slot. Both a
    ValueError and a TypeError, as the two cases are.
    """

    __module__ = "goheap"


class OutOfMemory(HeapError, MemoryError):
    """The arena reservation is exhausted (the seed's "out of memory" throw)."""

    __module__ = "goheap"


class HeapClosed(HeapError):
    """Any use of a heap after ``close()``."""

    __module__ = "goheap"


class HeapCorrupted(HeapError):
    """``Heap.check()`` found a broken invariant; the message names it."""

    __module__ = "goheap"


class ConfigError(HeapError, ValueError):
    """A HeapConfig value goheap cannot honour (a negative proc count, a virtual clock with a real-time thread)."""

    __module__ = "goheap"


class FinalizerError(HeapError):
    """set_finalizer misuse: a second finalizer for the same block, or a finalizer that is not callable."""

    __module__ = "goheap"


class CacheWarning(UserWarning):
    """goheap cannot write its compiled-code cache where it was told to; the message says which directory and what it did."""

    __module__ = "goheap"


class FinalizerWarning(RuntimeWarning):
    """A finalizer raised. The heap is intact; the exception is reported once its batch has run."""

    __module__ = "goheap"
class RaceError(HeapError):
    """Race mode with halt_on_error (GORACE="halt_on_error=1") found a data race; the message is the report.

    Raised before the racing access is done. From compiled code (``goheap.nb``) it is
    raised with the heap's handle and the race's place in the report queue; the race
    shell installs ``_resolve`` to turn those into the printed report.
    """

    __module__ = "goheap"
    _resolve: Callable[[int, int], str] | None = None  # set by goheap.race: (handle, queue row) -> report text

    def __init__(self, *args):
        resolve = RaceError._resolve
        if len(args) == 2 and all(isinstance(a, numbers.Integral) for a in args) and resolve is not None:
            args = (resolve(int(args[0]), int(args[1])),)
        HeapError.__init__(self, *args)
