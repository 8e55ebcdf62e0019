"""Size classes: msize.c ``InitSizes``, computed, not tabulated.

See :mod:`goheap._runtime.malloc` for the overview. The golden table lives in the tests;
``goheap sizeclasses`` prints it.

The candidate sizes step by an alignment that grows with the size (8, then 16, then
size/8, then 256). For each candidate the span is grown a page at a time until the tail
left over after the last whole object is at most 1/8 of the span. A candidate that needs
the same number of pages and fits the same number of objects as the previous class
replaces that class's size instead of making a new class. The process yields exactly
61 classes (class 0 meaning "large").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import MAX_SMALL_SIZE, NUM_SIZE_CLASSES, PAGE_SHIFT, PAGE_SIZE

__all__ = ["SizeClasses", "init_sizes"]

SMALL_LOOKUP_LIMIT = 1024  # size_to_class8 serves sizes up to here, size_to_class128 beyond
TRANSFER_BYTES = 64 << 10  # a transfer batch aims at 64 KB of objects, clamped to [2, 32] objects


@dataclass(frozen=True)
class SizeClasses:
    """The tables InitSizes produces, as int64 arrays indexed by class (length 61)."""

    class_to_size: np.ndarray
    class_to_allocnpages: np.ndarray
    class_to_transfercount: np.ndarray
    size_to_class8: np.ndarray  # index ceil(size/8), sizes 0..1024 (length 129)
    size_to_class128: np.ndarray  # index ceil((size-1024)/128), sizes 1024..32768 (length 249)

    def size_to_class(self, size: int) -> int:
        """SizeToClass: the class serving a request of ``size`` bytes (0 < size <= 32768)."""
        if not 0 <= size <= MAX_SMALL_SIZE:
            raise ValueError(f"size {size} is not a small-object size (0..{MAX_SMALL_SIZE})")
        if size > SMALL_LOOKUP_LIMIT - 8:
            return int(self.size_to_class128[(size - SMALL_LOOKUP_LIMIT + 127) >> 7])
        return int(self.size_to_class8[(size + 7) >> 3])

    def objects_per_span(self, sizeclass: int) -> int:
        return int(self.class_to_allocnpages[sizeclass]) * PAGE_SIZE // int(self.class_to_size[sizeclass])

    def rows(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """One row per small class: (class, bytes/object, pages, bytes/span, objects/span, tail waste, transfer count)."""
        out = []
        for c in range(1, NUM_SIZE_CLASSES):
            size = int(self.class_to_size[c])
            npages = int(self.class_to_allocnpages[c])
            span = npages << PAGE_SHIFT
            objs = span // size
            out.append((c, size, npages, span, objs, span - objs * size, int(self.class_to_transfercount[c])))
        return out


def _alignment_for(size: int, align: int) -> int:
    """The candidate step, recomputed each time the candidate size reaches a power of two."""
    if size & (size - 1):
        return align
    if size >= 2048:
        return 256
    if size >= 128:
        return size // 8
    if size >= 16:
        return 16
    return align


def init_sizes() -> SizeClasses:
    """Run InitSizes; raises RuntimeError if it does not produce NUM_SIZE_CLASSES classes."""
    class_to_size = [0]
    class_to_allocnpages = [0]
    align = 8
    size = align
    while size <= MAX_SMALL_SIZE:
        align = _alignment_for(size, align)
        allocsize = PAGE_SIZE
        while allocsize % size > allocsize // 8:  # the tail-waste rule: at most 1/8 of the span
            allocsize += PAGE_SIZE
        npages = allocsize >> PAGE_SHIFT
        previous = len(class_to_size) - 1  # the class made last; 0 until class 1 exists
        if (
            previous >= 1
            and class_to_allocnpages[previous] == npages
            and allocsize // size == allocsize // class_to_size[previous]
        ):
            class_to_size[previous] = size  # merge: same span, same object count
        else:
            class_to_size.append(size)
            class_to_allocnpages.append(npages)
        size += align
    if len(class_to_size) != NUM_SIZE_CLASSES:
        raise RuntimeError(f"InitSizes computed {len(class_to_size)} size classes, want {NUM_SIZE_CLASSES}")

    size_to_class8 = np.zeros(SMALL_LOOKUP_LIMIT // 8 + 1, dtype=np.int64)
    size_to_class128 = np.zeros((MAX_SMALL_SIZE - SMALL_LOOKUP_LIMIT) // 128 + 1, dtype=np.int64)
    nextsize = 0
    for c in range(1, NUM_SIZE_CLASSES):
        while nextsize < SMALL_LOOKUP_LIMIT and nextsize <= class_to_size[c]:
            size_to_class8[nextsize // 8] = c
            nextsize += 8
        if nextsize >= SMALL_LOOKUP_LIMIT:
            while nextsize <= class_to_size[c]:
                size_to_class128[(nextsize - SMALL_LOOKUP_LIMIT) // 128] = c
                nextsize += 128

    transfer = [0] + [min(max(TRANSFER_BYTES // s, 2), 32) for s in class_to_size[1:]]
    return SizeClasses(
        class_to_size=np.array(class_to_size, dtype=np.int64),
        class_to_allocnpages=np.array(class_to_allocnpages, dtype=np.int64),
        class_to_transfercount=np.array(transfer, dtype=np.int64),
        size_to_class8=size_to_class8,
        size_to_class128=size_to_class128,
    )
