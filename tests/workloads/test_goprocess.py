"""The model of a 2013 Go process: its blocks reproduce the seed runs' start-up."""

from __future__ import annotations

import io
import pytest

from goheap._runtime import layout as L
from goheap.workloads.goprocess import RUNTIME_BLOCKS, BlockKind, GoProcess, Phase
from goheap.workloads.seedrun import SeedRun


def test_blocks_are_the_seed_runs_unexplained_ones(seed_runs):
    """Class by class, a process that runs no program allocates what BySize counts beyond the
    program's own blocks in the seed runs (its tree nodes, span type arrays and per-collection
    stack segments): the runtime's blocks, the finalizer table's arrays for the three
    os.File finalizers, mallocinit's smoke test and the two ParFor descriptors."""
    for path in sorted(seed_runs.glob("binarytrees-*.stdout")):
        with GoProcess(gogc_in_environ="default" not in path.name, gctrace=0, virtual_clock=True) as proc:
            proc.start()
            proc.exit()
            ours = proc.heap.read_mem_stats()
        run = SeedRun.from_files(path.with_suffix(""))
        for i, (size, mallocs, frees) in enumerate(run.by_size):
            if i in (2, 19, 44):  # tree nodes, span type arrays, per-collection stack segments
                continue
            assert ours.by_size[i].mallocs == mallocs, f"{path.name}: class {i} ({size} B)"
        program = sum(run.by_size[i][1] for i in (2, 19, 44))
        ours_small = sum(b.mallocs for i, b in enumerate(ours.by_size) if i not in (2, 19, 44))
        ours_44 = ours.by_size[44].mallocs
        # the large blocks (not in BySize): the symbol table
        assert run.memstats["Mallocs"] - program - sum(m for i, (_, m, _) in enumerate(run.by_size) if i not in (2, 19, 44)) == ours.mallocs - ours_small - ours_44 - ours.by_size[2].mallocs - ours.by_size[19].mallocs


def test_start_reproduces_the_first_collection():
    """Every seed run starts with 'gc1(1): ... 11 -> 13 (14-1) objects'."""
    with GoProcess(gcpercent=100, gctrace=1, trace_stream=io.StringIO(), virtual_clock=True) as proc:
        proc.start()
        rows = proc.heap.gctrace_rows()
        assert len(rows) == 1
        row = rows[0]
        assert (row[L.TR_OBJ0], row[L.TR_OBJ1], row[L.TR_NMALLOC], row[L.TR_NFREE]) == (11, 13, 14, 1)
        # about 200 KB live after it: this paces the second collection
        assert 195_000 < row[L.TR_HEAP1] < 215_000
        proc.heap.check()


def test_garbage_block_is_collected_and_the_rest_survive():
    with GoProcess(gcpercent=100, gctrace=0, virtual_clock=True) as proc:
        proc.start()
        before = proc.heap.read_mem_stats()
        proc.heap.gc()
        after = proc.heap.read_mem_stats()
        garbage = sum(1 for b in RUNTIME_BLOCKS if b.kind is BlockKind.GARBAGE)
        # the garbage block and the first collection's stack segment are gone; nothing else
        assert after.frees - before.frees == garbage + 1
        proc.exit()
        proc.heap.check()


def test_phases_are_ordered():
    phases = [b.phase for b in RUNTIME_BLOCKS]
    order = [Phase.BOOT, Phase.INIT, Phase.EXIT]
    assert phases == sorted(phases, key=order.index)
    assert RUNTIME_BLOCKS[next(i for i, b in enumerate(RUNTIME_BLOCKS) if b.phase is Phase.INIT)].kind is BlockKind.OBJECT


@pytest.mark.parametrize("kind", list(BlockKind))
def test_every_kind_is_used(kind):
    assert any(b.kind is kind for b in RUNTIME_BLOCKS)
