"""GOGCTRACE output (goheap._runtime.gctrace): the seed's line, field by field."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import goheap
from goheap._runtime import layout as L
from goheap._runtime.gctrace import format_gctrace, format_scvg, parse_gctrace

LINE = re.compile(
    r"^gc(\d+)\((\d+)\): (\d+)\+(\d+)\+(\d+) ms, (\d+) -> (\d+) MB (\d+) -> (\d+) \((\d+)-(\d+)\) objects, "
    r"(\d+)\((\d+)\) handoff, (\d+)\((\d+)\) steal, (\d+)/(\d+)/(\d+) yields$"
)


@pytest.mark.nojit
def test_one_line_per_collection_with_the_seeds_fields():
    out = io.StringIO()
    with goheap.Heap(arena_size=64 << 20, gcpercent=-1, gctrace=1, trace_stream=out, memprofilerate=0) as h:
        live = [h.alloc(1 << 20) for _ in range(3)]  # 3 MB live
        for p in live:
            h.roots.add(p)
        for _ in range(1000):
            h.alloc(64)  # garbage
        h.set_gc_percent(100)
        before = h.read_mem_stats()
        h.gc()
        after = h.read_mem_stats()
        lines = out.getvalue().splitlines()
    assert len(lines) == 1
    m = LINE.match(lines[0])
    assert m, lines[0]
    f = [int(x) for x in m.groups()]
    assert f[0] == 1 and f[1] == 1  # numgc after the increment, nproc
    assert f[5] == before.heap_alloc >> 20 == 3 and f[6] == after.heap_alloc >> 20 == 3
    assert f[7] == before.mallocs - before.frees == 1003  # the start-up malloc(1) was freed
    assert f[8] == after.mallocs - after.frees == 3
    assert (f[9], f[10]) == (after.mallocs, after.frees)  # cumulative
    assert f[11:] == [0] * 7
    assert parse_gctrace(lines[0])["obj1"] == 3


def test_gogctrace_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("GOGCTRACE", "1")
    with goheap.Heap(arena_size=16 << 20, gcpercent=100) as h:
        h.gc()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and LINE.match(err[0])
    monkeypatch.setenv("GOGCTRACE", "0")
    with goheap.Heap(arena_size=16 << 20, gcpercent=100) as h:
        h.gc()
    assert capsys.readouterr().err == ""


def test_times_are_truncated_milliseconds():
    row = np.zeros(L.TR_NSLOTS, np.int64)
    row[L.TR_NUMGC], row[L.TR_NPROC] = 7, 2
    row[L.TR_MARK_NS], row[L.TR_SWEEP_NS], row[L.TR_OTHER_NS] = 1_999_999, 2_000_000, 999_999
    row[L.TR_HEAP0], row[L.TR_HEAP1] = (5 << 20) - 1, 5 << 20
    row[L.TR_OBJ0], row[L.TR_OBJ1], row[L.TR_NMALLOC], row[L.TR_NFREE] = 10, 4, 20, 16
    row[L.TR_NHANDOFF:L.TR_NSLEEP + 1] = [1, 2, 3, 4, 5, 6, 7]
    assert format_gctrace(row) == (
        "gc7(2): 1+2+0 ms, 4 -> 5 MB 10 -> 4 (20-16) objects, 1(2) handoff, 3(4) steal, 5/6/7 yields"
    )


def test_gctrace_2_forces_a_second_collection_after_each_automatic_one():
    out = io.StringIO()
    with goheap.Heap(arena_size=64 << 20, gcpercent=100, gctrace=2, trace_stream=out) as h:
        r = h.roots.add(0)
        for i in range(3000):
            p = h.alloc(100)
            h.store_ptr(p, 0, h.roots.get(r))
            h.roots.set(r, p)
        rows = h.gctrace_rows()
        forced = [int(x) for x in rows[:, L.TR_FORCED]]
        assert len(forced) >= 4 and forced[::2] == [0] * (len(forced) // 2) and forced[1::2] == [1] * (len(forced) // 2)
        n = len(rows)
        h.gc()  # an explicit (forced) collection gets no second one
        assert len(h.gctrace_rows()) == n + 1
        assert len(out.getvalue().splitlines()) == n + 1


def test_scvg_lines():
    st = np.zeros(L.ST_NSLOTS, np.int64)
    st[L.ST_HEAP_INUSE], st[L.ST_HEAP_IDLE], st[L.ST_HEAP_SYS], st[L.ST_HEAP_RELEASED] = 1 << 20, 30 << 20, 31 << 20, 26 << 20
    assert format_scvg(4, 26 << 20, st) == [
        "scvg4: 0x1a MB released\n",
        "scvg4: inuse: 1, idle: 30, sys: 31, released: 26, consumed: 5 (MB)\n",
    ]
    assert format_scvg(5, 0, st) == ["scvg5: inuse: 1, idle: 30, sys: 31, released: 26, consumed: 5 (MB)\n"]
    assert format_scvg(6, 4096, st)[0] == "scvg6: 0x0 MB released\n"  # %p of 0


# ---------------------------------------------------------------- today's Go's format


def _row(**fields) -> np.ndarray:
    row = np.zeros(L.TR_NSLOTS, np.int64)
    for name, value in fields.items():
        row[getattr(L, f"TR_{name.upper()}")] = value
    return row


@pytest.mark.nojit
@pytest.mark.parametrize(
    "ns, text",
    [(0, "0"), (999, "0"), (9_000, "0.009"), (20_000, "0.020"), (203_000, "0.20"), (2_950_000, "2.9"),
     (9_999_999, "9.9"), (10_000_000, "10"), (123_456_789, "123")],
)
def test_modern_times_as_go_prints_them(ns: int, text: str) -> None:
    from goheap._runtime.gctrace import _ms

    assert _ms(ns) == text


@pytest.mark.nojit
def test_modern_line_fields() -> None:
    from goheap._runtime.gctrace import format_gctrace_modern

    row = _row(numgc=3, nproc=2, mark_ns=2_100_000, sweep_ns=5_000, other_ns=27_000, heap0=5 << 20,
               heap1=(2 << 20) + 1, start_ns=1_069_000_000, goal=5 << 20, pause_ns=2_132_000,
               pause_total_ns=21_000_000, forced=1)
    assert format_gctrace_modern(row, start_ns=1_000_000_000) == (
        "gc 3 @0.069s 29%: 0.027+2.1+0.005 ms clock, 0.027+0/2.1/0+0.005 ms cpu, 5->5->2 MB, 5 MB goal, "
        "0 MB stacks, 0 MB globals, 2 P (forced)"
    )


@pytest.mark.nojit
def test_godebug_gctrace_is_read_when_gogctrace_is_not_set() -> None:
    from goheap._runtime.gctrace import gctrace_level_from_environment as level

    assert level({}) == 0
    assert level({"GODEBUG": "gctrace=1"}) == 1
    assert level({"GODEBUG": "madvdontneed=1, gctrace=2,x=y"}) == 2
    assert level({"GOGCTRACE": "1", "GODEBUG": "gctrace=2"}) == 1
    out = io.StringIO()
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"GODEBUG": "gctrace=1", "GOGCTRACE": ""}), goheap.Heap(
        arena_size=64 << 20, trace_stream=out, gctrace_format="modern", virtual_clock=True
    ) as h:
        h.gc()
    assert re.fullmatch(r"gc 1 @0\.000s 0%: 0\+0\+0 ms clock, 0\+0/0/0\+0 ms cpu, 0->0->0 MB, 0 MB goal, "
                        r"0 MB stacks, 0 MB globals, 1 P \(forced\)\n", out.getvalue()), out.getvalue()
    with pytest.raises(goheap.ConfigError, match="gctrace_format must be one of seed, modern"):
        goheap.Heap(arena_size=64 << 20, gctrace_format="go1.19")
