"""Size classes (msize.c InitSizes): the computed table against the 61-class golden table.

The golden table is the one in the design fact sheet (go-runtime-2013.md §2.2), which was
cross-checked there against the seed's own msize.c compiled with gcc.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from heaptools import SEED_RUNS, small_heap

import goheap
from goheap._runtime.constants import MAX_SMALL_SIZE, NUM_SIZE_CLASSES
from goheap._runtime.handle import runtime_at
from goheap._runtime._jit import jit
from goheap._runtime.malloc import size_to_class
from goheap.cli import main

pytestmark = pytest.mark.nojit  # interpreted too: CI runs these with NUMBA_DISABLE_JIT=1 (-m nojit)

# class, bytes/object, pages, bytes/span, objects/span, tail waste, transfer count, request sizes
GOLDEN = [
    (1, 8, 1, 4096, 512, 0, 32, "1–8"),
    (2, 16, 1, 4096, 256, 0, 32, "9–16"),
    (3, 32, 1, 4096, 128, 0, 32, "17–32"),
    (4, 48, 1, 4096, 85, 16, 32, "33–48"),
    (5, 64, 1, 4096, 64, 0, 32, "49–64"),
    (6, 80, 1, 4096, 51, 16, 32, "65–80"),
    (7, 96, 1, 4096, 42, 64, 32, "81–96"),
    (8, 112, 1, 4096, 36, 64, 32, "97–112"),
    (9, 128, 1, 4096, 32, 0, 32, "113–128"),
    (10, 144, 1, 4096, 28, 64, 32, "129–144"),
    (11, 160, 1, 4096, 25, 96, 32, "145–160"),
    (12, 176, 1, 4096, 23, 48, 32, "161–176"),
    (13, 192, 1, 4096, 21, 64, 32, "177–192"),
    (14, 208, 1, 4096, 19, 144, 32, "193–208"),
    (15, 224, 1, 4096, 18, 64, 32, "209–224"),
    (16, 240, 1, 4096, 17, 16, 32, "225–240"),
    (17, 256, 1, 4096, 16, 0, 32, "241–256"),
    (18, 288, 1, 4096, 14, 64, 32, "257–288"),
    (19, 320, 1, 4096, 12, 256, 32, "289–320"),
    (20, 352, 1, 4096, 11, 224, 32, "321–352"),
    (21, 384, 1, 4096, 10, 256, 32, "353–384"),
    (22, 448, 1, 4096, 9, 64, 32, "385–448"),
    (23, 512, 1, 4096, 8, 0, 32, "449–512"),
    (24, 576, 1, 4096, 7, 64, 32, "513–576"),
    (25, 640, 1, 4096, 6, 256, 32, "577–640"),
    (26, 704, 2, 8192, 11, 448, 32, "641–704"),
    (27, 768, 1, 4096, 5, 256, 32, "705–768"),
    (28, 832, 2, 8192, 9, 704, 32, "769–832"),
    (29, 1024, 1, 4096, 4, 0, 32, "833–1024"),
    (30, 1152, 2, 8192, 7, 128, 32, "1025–1152"),
    (31, 1280, 1, 4096, 3, 256, 32, "1153–1280"),
    (32, 1408, 3, 12288, 8, 1024, 32, "1281–1408"),
    (33, 1536, 2, 8192, 5, 512, 32, "1409–1536"),
    (34, 1664, 3, 12288, 7, 640, 32, "1537–1664"),
    (35, 2048, 1, 4096, 2, 0, 32, "1665–2048"),
    (36, 2304, 3, 12288, 5, 768, 28, "2049–2304"),
    (37, 2560, 2, 8192, 3, 512, 25, "2305–2560"),
    (38, 3072, 3, 12288, 4, 0, 21, "2561–3072"),
    (39, 3328, 5, 20480, 6, 512, 19, "3073–3328"),
    (40, 4096, 1, 4096, 1, 0, 16, "3329–4096"),
    (41, 4352, 6, 24576, 5, 2816, 15, "4097–4352"),
    (42, 4608, 5, 20480, 4, 2048, 14, "4353–4608"),
    (43, 5120, 4, 16384, 3, 1024, 12, "4609–5120"),
    (44, 6144, 3, 12288, 2, 0, 10, "5121–6144"),
    (45, 6656, 5, 20480, 3, 512, 9, "6145–6656"),
    (46, 6912, 7, 28672, 4, 1024, 9, "6657–6912"),
    (47, 8192, 2, 8192, 1, 0, 8, "6913–8192"),
    (48, 8704, 7, 28672, 3, 2560, 7, "8193–8704"),
    (49, 10240, 5, 20480, 2, 0, 6, "8705–10240"),
    (50, 10496, 8, 32768, 3, 1280, 6, "10241–10496"),
    (51, 12288, 3, 12288, 1, 0, 5, "10497–12288"),
    (52, 14080, 7, 28672, 2, 512, 4, "12289–14080"),
    (53, 16384, 4, 16384, 1, 0, 4, "14081–16384"),
    (54, 17664, 9, 36864, 2, 1536, 3, "16385–17664"),
    (55, 20480, 5, 20480, 1, 0, 3, "17665–20480"),
    (56, 21248, 11, 45056, 2, 2560, 3, "20481–21248"),
    (57, 24576, 6, 24576, 1, 0, 2, "21249–24576"),
    (58, 24832, 13, 53248, 2, 3584, 2, "24577–24832"),
    (59, 28672, 7, 28672, 1, 0, 2, "24833–28672"),
    (60, 32768, 8, 32768, 1, 0, 2, "28673–32768"),
]

SIZES = [0] + [row[1] for row in GOLDEN]
NPAGES = [0] + [row[2] for row in GOLDEN]
TRANSFER = [0] + [row[6] for row in GOLDEN]


def request_range(row) -> range:
    lo, hi = (int(x) for x in row[7].split("\u2013"))
    return range(lo, hi + 1)


@jit
def _classes_of_all_sizes(handle, out):
    rt = runtime_at(handle)
    for size in range(1, out.shape[0]):
        out[size] = size_to_class(rt, size)


@pytest.fixture(scope="module")
def classes():
    return goheap.init_sizes()


def test_golden_table_is_the_fact_sheet_compact_arrays() -> None:
    # the fact sheet gives the table twice; the two must agree before anything is tested against them
    assert SIZES == [int(x) for x in (
        "0 8 16 32 48 64 80 96 112 128 144 160 176 192 208 224 240 256 288 320 352 384 448 512 576 640 704 768 "
        "832 1024 1152 1280 1408 1536 1664 2048 2304 2560 3072 3328 4096 4352 4608 5120 6144 6656 6912 8192 8704 "
        "10240 10496 12288 14080 16384 17664 20480 21248 24576 24832 28672 32768"
    ).split()]
    assert NPAGES == [int(x) for x in (
        "0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 2 1 2 1 2 1 3 2 3 1 3 2 3 5 1 6 5 4 3 5 7 2 7 5 8 3 7 4 9 5 11 6 13 7 8"
    ).split()]
    assert TRANSFER == [0] + [32] * 35 + [int(x) for x in "28 25 21 19 16 15 14 12 10 9 9 8 7 6 6 5 4 4 3 3 3 2 2 2 2".split()]
    assert [row[0] for row in GOLDEN] == list(range(1, NUM_SIZE_CLASSES))


def test_all_61_classes_match_the_golden_table(classes) -> None:
    assert len(classes.class_to_size) == NUM_SIZE_CLASSES == 61
    assert classes.class_to_size.tolist() == SIZES
    assert classes.class_to_allocnpages.tolist() == NPAGES
    assert classes.class_to_transfercount.tolist() == TRANSFER
    assert [row for row in classes.rows()] == [row[:7] for row in GOLDEN]


def test_size_to_class_of_every_request_size(classes) -> None:
    want = np.zeros(MAX_SMALL_SIZE + 1, dtype=np.int64)
    want[0] = 1  # mallocgc bumps 0 to 1; SizeToClass(0) is class 1 too
    for row in GOLDEN:
        r = request_range(row)
        assert r.start == (SIZES[row[0] - 1] + 1 if row[0] > 1 else 1)
        want[r.start : r.stop] = row[0]
    got = np.array([classes.size_to_class(n) for n in range(MAX_SMALL_SIZE + 1)])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"SizeToClass({int(bad[0])}) = {got[bad[0]]}, want {want[bad[0]]}"
    with pytest.raises(ValueError, match="32769"):
        classes.size_to_class(MAX_SMALL_SIZE + 1)


def test_compiled_size_to_class_matches_the_table(classes) -> None:
    with small_heap() as h:
        out = np.zeros(MAX_SMALL_SIZE + 1, dtype=np.int64)
        _classes_of_all_sizes(h._handle, out)
    want = np.array([classes.size_to_class(n) for n in range(MAX_SMALL_SIZE + 1)])
    want[0] = 0  # not computed: the compiled caller never asks for size 0
    assert np.array_equal(out, want)


def test_allocations_at_each_class_boundary_get_the_class_size() -> None:
    with small_heap() as h:
        for row in GOLDEN:
            r = request_range(row)
            for n in (r.start, r.stop - 1):
                p = h.alloc(n)
                assert h.lookup(p) == (p, row[1]), f"alloc({n})"
        assert h.lookup(h.alloc(0))[1] == 8
        p = h.alloc(MAX_SMALL_SIZE + 1)
        assert h.lookup(p) == (p, 9 * 4096)  # large: a span of its own, page-rounded
        h.check()


def test_span_tail_waste_is_at_most_an_eighth(classes) -> None:
    worst = max(classes.rows(), key=lambda r: r[5] / r[3])
    assert all(r[5] * 8 <= r[3] for r in classes.rows())
    assert worst[0] == 41 and round(100 * worst[5] / worst[3], 2) == 11.46


def test_sizes_equal_by_size_of_the_seed_runs(classes) -> None:
    runs = sorted(SEED_RUNS.glob("*.stdout")) if SEED_RUNS.is_dir() else []
    if not runs:
        pytest.skip(f"no seed runs at {SEED_RUNS}")
    for path in runs:
        sizes = {int(i): int(v) for i, v in re.findall(r"^BySize\[(\d+)\]\.Size=(\d+)$", path.read_text(), re.M)}
        assert sizes == dict(enumerate(SIZES)), path.name


def test_mem_stats_by_size_carries_the_class_sizes() -> None:
    with small_heap() as h:
        assert [b.size for b in h.read_mem_stats().by_size] == SIZES


def test_sizeclasses_command_prints_one_row_per_class() -> None:
    result = CliRunner().invoke(main, ["sizeclasses"])
    assert result.exit_code == 0, result.output
    title, header, *lines = result.output.splitlines()
    assert title == "size classes of policy seed: msize.c (61 classes, 4096-byte pages)"
    assert header.split() == ["class", "bytes/obj", "bytes/span", "objects", "tail", "waste", "max", "waste"]
    assert len(lines) == NUM_SIZE_CLASSES - 1
    # Go's generated-table columns: class, bytes/obj, bytes/span, objects, tail waste (then max waste)
    assert [tuple(int(x) for x in line.split()[:5]) for line in lines] == [(r[0], r[1], r[3], r[4], r[5]) for r in GOLDEN]
