"""The model of a 2013 Go process: its blocks reproduce the oracle's start-up, M switch and fmt buffers."""

from __future__ import annotations

import io
from collections import Counter

import pytest

from goheap._runtime import layout as L
from goheap.workloads.goprocess import (
    PACKAGE_INITS,
    PROGRAMS,
    Fate,
    GoProcess,
    grown_cap,
    printf_pieces,
    println_pieces,
)

ORACLE_START = (11, 13, 14, 1)  # gc1: live objects before and after, mallocs, frees


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_start_reproduces_the_first_collection(program):
    """Every oracle run starts with 'gc1(1): ... 11 -> 13 (14-1) objects', on about 200 KB."""
    with GoProcess(program, gcpercent=100, gctrace=1, trace_stream=io.StringIO(), virtual_clock=True) as proc:
        proc.start()
        rows = proc.heap.gctrace_rows()
        assert len(rows) == 1
        row = rows[0]
        assert (row[L.TR_OBJ0], row[L.TR_OBJ1], row[L.TR_NMALLOC], row[L.TR_NFREE]) == ORACLE_START
        assert 195_000 < row[L.TR_HEAP1] < 215_000
        proc.heap.check()


def test_the_program_runs_on_a_second_m():
    """MCacheInuse counts two MCaches in every oracle run: m0's and the scavenger's new M's."""
    with GoProcess(gcpercent=100, gctrace=0, virtual_clock=True) as proc:
        c0 = proc.cache
        proc.start()
        assert proc.cache != c0
        ms = proc.heap.read_mem_stats()
        one = ms.mcache_inuse // 2
        assert ms.mcache_inuse == 2 * one > 0


def test_garbage_is_collected_and_the_rest_survives():
    with GoProcess(gcpercent=100, gctrace=0, virtual_clock=True) as proc:
        proc.start()
        before = proc.heap.read_mem_stats()
        proc.heap.gc()
        after = proc.heap.read_mem_stats()
        garbage = sum(1 for b in proc.package_inits if b.fate is Fate.GARBAGE)
        # fmt.init's temporary and the collection's own stack segment are gone; nothing else
        assert garbage == 1
        assert after.frees - before.frees == garbage + 1
        proc.exit()
        proc.heap.check()


def test_every_program_initializes_the_same_packages():
    inits = [Counter(PROGRAMS[p].init_order) for p in PROGRAMS]
    assert all(i == inits[0] for i in inits) and set(inits[0]) == set(PACKAGE_INITS)


@pytest.mark.parametrize(
    "prints, buffers",
    [
        # binary-trees' first line: "stretch tree of depth " (22 bytes), then the number outgrows it
        ([("printf", "stretch tree of depth %d\t check: %d\n", 11, 4095)], [22, 44]),
        # GCBench: Println's 22 bytes and newline, then a 47-byte literal
        ([("println", "Garbage Collector Test"), ("printf", " Stretching memory with a binary tree of depth %d\n", 18)], [22, 44, 88]),
        # churn's first line: each piece doubles the buffer
        ([("printf", "allocs=%d small=%d medium=%d large=%d bytes_requested=%d\n", 2000000, 1400072, 499799, 100129, 62581553905)], [7, 14, 28, 56, 112]),
    ],
)
def test_fmt_buffer_grows_as_the_oracles(prints, buffers):
    """The buffers fmt's printer allocates, as the oracle's trace shows them (tools/oracle_trace.py allocs)."""
    sizes = []
    cap = 0
    for kind, *args in prints:
        pieces = printf_pieces(args[0], tuple(args[1:])) if kind == "printf" else println_pieces(tuple(args))
        length = 0
        for piece in pieces:
            need = length + len(piece)
            if need > cap:
                cap = grown_cap(length, cap, need)
                sizes.append(cap)
            length = need
    assert sizes == buffers


def test_printing_allocates_the_printer_once():
    with GoProcess(gcpercent=100, gctrace=0, virtual_clock=True) as proc:
        proc.start()
        m0 = proc.heap.read_mem_stats().mallocs
        assert proc.printf("stretch tree of depth %d\t check: %d\n", 11, 4095) == "stretch tree of depth 11\t check: 4095"
        m1 = proc.heap.read_mem_stats().mallocs
        proc.printf("%d\t trees of depth %d\t check: %d\n", 1024, 4, 31744)
        m2 = proc.heap.read_mem_stats().mallocs
        # two itabs, the printer, two buffers; then nothing
        assert (m1 - m0, m2 - m1) == (5, 0)
        assert proc.lines == ["stretch tree of depth 11\t check: 4095", "1024\t trees of depth 4\t check: 31744"]
        proc.heap.check()


def test_unknown_program():
    with pytest.raises(ValueError, match="no traced Go program"):
        GoProcess("hello")
