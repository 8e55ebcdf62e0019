"""The size-class tables of today's Go runtimes (Go 1.22 to 1.27), as data.

goheap's own classes are the seed's 61 (``sizeclasses.py``, computed by msize.c's
algorithm). The tables here are those of the Go releases whose execution traces goheap
reads (:mod:`goheap.trace.exectrace`) and whose allocators a policy may model: a trace
records the *size class* of each span, not the size of each object, so the slot size of an
object comes from the table of the Go version that wrote the trace.

Each table lists, for size classes 1..N in order, ``(bytes_per_obj, pages_per_span)`` with
pages of :data:`GO_PAGE_SIZE` bytes; class 0 (objects larger than 32 KB, each in a span of
its own) is not listed. Go generates its table with ``mksizeclasses.go`` (file
``sizeclasses.go``: ``src/runtime`` up to Go 1.24, ``src/internal/runtime/gc`` since);
the table has not changed from Go 1.22 to Go 1.27 (68 classes counting class 0, the
24-byte class included, 8 KB pages), so every version maps to the same tuple. The test
re-derives it with the generator's rules (tail waste at most 1/8 of the span, classes
merged when they fit as many objects in as many pages, sizes rounded up to fill the span).

Pure data and a lookup: nothing here is compiled.
"""

from __future__ import annotations

__all__ = ["GO_PAGE_SIZE", "GO_SIZE_CLASSES", "go_size_classes"]

#: Bytes in a page of a modern Go heap (``_PageShift = 13``).
GO_PAGE_SIZE = 8192

_GO_1_22_TO_1_27 = (
    (8, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1), (80, 1), (96, 1), (112, 1), (128, 1),
    (144, 1), (160, 1), (176, 1), (192, 1), (208, 1), (224, 1), (240, 1), (256, 1), (288, 1),
    (320, 1), (352, 1), (384, 1), (416, 1), (448, 1), (480, 1), (512, 1), (576, 1), (640, 1),
    (704, 1), (768, 1), (896, 1), (1024, 1), (1152, 1), (1280, 1), (1408, 2), (1536, 1), (1792, 2),
    (2048, 1), (2304, 2), (2688, 1), (3072, 3), (3200, 2), (3456, 3), (4096, 1), (4864, 3),
    (5376, 2), (6144, 3), (6528, 4), (6784, 5), (6912, 6), (8192, 1), (9472, 7), (9728, 6),
    (10240, 5), (10880, 4), (12288, 3), (13568, 5), (14336, 7), (16384, 2), (18432, 9), (19072, 7),
    (20480, 5), (21760, 8), (24576, 3), (27264, 10), (28672, 7), (32768, 4),
)  # fmt: skip

#: Go version ("1.NN") -> ``((bytes_per_obj, pages_per_span), ...)`` for classes 1..N.
GO_SIZE_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    version: _GO_1_22_TO_1_27 for version in ("1.22", "1.23", "1.24", "1.25", "1.26", "1.27")
}


def go_size_classes(version: str) -> tuple[tuple[int, int], ...]:
    """The size classes 1..N of Go ``version`` (``"1.27"``), as ``(bytes_per_obj, pages_per_span)``.

    Raises ValueError naming the version and the known ones.
    """
    table = GO_SIZE_CLASSES.get(version)
    if table is None:
        known = ", ".join(GO_SIZE_CLASSES)
        raise ValueError(f"no size-class table for Go {version!r}; goheap knows Go {known}")
    return table
