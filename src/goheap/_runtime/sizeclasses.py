"""Size classes: msize.c ``InitSizes``, computed, not tabulated; and the lookup tables of any class table.

See :mod:`goheap._runtime.malloc` for the overview. The golden table lives in the tests;
``goheap sizeclasses`` prints it.

The candidate sizes step by an alignment that grows with the size (8, then 16, then
size/8, then 256). For each candidate the span is grown a page at a time until the tail
left over after the last whole object is at most 1/8 of the span. A candidate that needs
the same number of pages and fits the same number of objects as the previous class
replaces that class's size instead of making a new class. The process yields exactly
61 classes (class 0 meaning "large").

:func:`msize` is that algorithm with its numbers as parameters (page size, tail-waste
bound, where the alignment steps begin), plus the one pass Go's later generator
(``mksizeclasses.go``) added: stretching each class to the largest size that still fits
as many objects in its span. :func:`from_rows` builds the runtime's tables (lookups,
transfer counts) from any list of (bytes/obj, pages/span) rows: the seed's, Go's, or a
policy's own; ``goheap.policy`` validates such a list before it gets here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import MAX_SMALL_SIZE, NUM_SIZE_CLASSES, PAGE_SIZE

__all__ = ["SizeClasses", "from_rows", "init_sizes", "msize"]

SMALL_LOOKUP_LIMIT = 1024  # size_to_class8 serves sizes up to here, size_to_class128 beyond
LARGE_SIZE_DIV = 128  # the step of size_to_class128: class sizes past 1024 must be multiples of it
TRANSFER_BYTES = 64 << 10  # a transfer batch aims at 64 KB of objects, clamped to [2, 32] objects


@dataclass(frozen=True)
class SizeClasses:
    """The tables InitSizes produces, as int64 arrays indexed by class (length 61 for the seed's)."""

    class_to_size: np.ndarray
    class_to_allocnpages: np.ndarray
    class_to_transfercount: np.ndarray
    size_to_class8: np.ndarray  # index ceil(size/8), sizes 0..1024 (length 129)
    size_to_class128: np.ndarray  # index ceil((size-1024)/128), sizes 1024..32768 (length 249)
    page_size: int = PAGE_SIZE

    @property
    def num_classes(self) -> int:
        """NumSizeClasses: the small classes plus class 0."""
        return len(self.class_to_size)

    @property
    def max_small_size(self) -> int:
        """The largest small-object size: larger requests take the large-object path."""
        return int(self.class_to_size[-1])

    def size_to_class(self, size: int) -> int:
        """SizeToClass: the class serving a request of ``size`` bytes (0 < size <= max_small_size)."""
        if not 0 <= size <= self.max_small_size:
            raise ValueError(f"size {size} is not a small-object size (0..{self.max_small_size})")
        if size > SMALL_LOOKUP_LIMIT - 8:
            return int(self.size_to_class128[(size - SMALL_LOOKUP_LIMIT + 127) >> 7])
        return int(self.size_to_class8[(size + 7) >> 3])

    def objects_per_span(self, sizeclass: int) -> int:
        return int(self.class_to_allocnpages[sizeclass]) * self.page_size // int(self.class_to_size[sizeclass])

    def rows(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """One row per small class: (class, bytes/object, pages, bytes/span, objects/span, tail waste, transfer count)."""
        out = []
        for c in range(1, self.num_classes):
            size = int(self.class_to_size[c])
            npages = int(self.class_to_allocnpages[c])
            span = npages * self.page_size
            objs = span // size
            out.append((c, size, npages, span, objs, span - objs * size, int(self.class_to_transfercount[c])))
        return out


def _alignment_for(size: int, align: int, align16_from: int, eighth_from: int, align256_from: int) -> int:
    """The candidate step, recomputed each time the candidate size reaches a power of two."""
    if size & (size - 1):
        return align
    if size >= align256_from:
        return 256
    if size >= eighth_from:
        return size // 8
    if size >= align16_from:
        return 16
    return align


def msize(
    page_size: int = PAGE_SIZE,
    tail_waste_divisor: int = 8,
    align16_from: int = 16,
    eighth_from: int = 128,
    align256_from: int = 2048,
    stretch: bool = False,
    max_small_size: int = MAX_SMALL_SIZE,
) -> list[tuple[int, int]]:
    """InitSizes' classes 1..N as (bytes/obj, pages/span), with its numbers as parameters.

    The defaults are the seed's. tail_waste_divisor: a span grows until its tail is at
    most 1/divisor of it. align16_from, eighth_from, align256_from: the candidate sizes
    (powers of two) from which the step becomes 16, size/8 and 256. stretch: afterwards
    raise each class to the largest multiple of 128 that fits as many objects in its span
    (Go's generator since 1.8); sizes that would fall below the class stay.
    """
    classes: list[list[int]] = []
    align = 8
    size = align
    while size <= max_small_size:
        align = _alignment_for(size, align, align16_from, eighth_from, align256_from)
        allocsize = page_size
        while allocsize % size > allocsize // tail_waste_divisor:  # the tail-waste rule
            allocsize += page_size
        npages = allocsize // page_size
        if classes and classes[-1][1] == npages and allocsize // size == allocsize // classes[-1][0]:
            classes[-1][0] = size  # merge: same span, same object count
        else:
            classes.append([size, npages])
        size += align
    if stretch:
        for c in classes:
            span = c[1] * page_size
            c[0] = max(c[0], (span // (span // c[0])) & ~(LARGE_SIZE_DIV - 1))
    return [(s, n) for s, n in classes]


def from_rows(rows, page_size: int = PAGE_SIZE) -> SizeClasses:
    """The runtime's tables for classes 1..N given as (bytes/obj, pages/span) rows (validated by the caller).

    The lookups are filled as InitSizes fills them: each request size maps to the first
    class at least that large, through size_to_class8 up to 1024 and size_to_class128 beyond.
    Transfer counts are the seed's rule for every table: 64 KB of objects, clamped to 2..32.
    """
    class_to_size = [0] + [int(s) for s, _ in rows]
    class_to_allocnpages = [0] + [int(n) for _, n in rows]
    size_to_class8 = np.zeros(SMALL_LOOKUP_LIMIT // 8 + 1, dtype=np.int64)
    size_to_class128 = np.zeros((MAX_SMALL_SIZE - SMALL_LOOKUP_LIMIT) // LARGE_SIZE_DIV + 1, dtype=np.int64)
    nextsize = 0
    for c in range(1, len(class_to_size)):
        while nextsize < SMALL_LOOKUP_LIMIT and nextsize <= class_to_size[c]:
            size_to_class8[nextsize // 8] = c
            nextsize += 8
        if nextsize >= SMALL_LOOKUP_LIMIT:
            while nextsize <= class_to_size[c]:
                size_to_class128[(nextsize - SMALL_LOOKUP_LIMIT) // LARGE_SIZE_DIV] = c
                nextsize += LARGE_SIZE_DIV

    transfer = [0] + [min(max(TRANSFER_BYTES // s, 2), 32) for s in class_to_size[1:]]
    return SizeClasses(
        class_to_size=np.array(class_to_size, dtype=np.int64),
        class_to_allocnpages=np.array(class_to_allocnpages, dtype=np.int64),
        class_to_transfercount=np.array(transfer, dtype=np.int64),
        size_to_class8=size_to_class8,
        size_to_class128=size_to_class128,
        page_size=page_size,
    )


def init_sizes() -> SizeClasses:
    """Run InitSizes; raises RuntimeError if it does not produce NUM_SIZE_CLASSES classes."""
    rows = msize()
    if len(rows) + 1 != NUM_SIZE_CLASSES:
        raise RuntimeError(f"InitSizes computed {len(rows) + 1} size classes, want {NUM_SIZE_CLASSES}")
    return from_rows(rows)
