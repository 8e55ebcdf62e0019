"""binary-trees: the program's output, the Python-API version, heap invariants."""

from __future__ import annotations

import io

import pytest

from goheap.workloads import WorkloadError, binarytrees, run_workload
from goheap.workloads.goprocess import GoProcess


def expected_output(n: int) -> list[str]:
    """What binarytrees.go prints, computed from the tree sizes."""
    max_depth = max(n, 6)
    lines = [f"stretch tree of depth {max_depth + 1}\t check: {(1 << (max_depth + 2)) - 1}"]
    for d in range(4, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + 4)
        lines.append(f"{iterations}\t trees of depth {d}\t check: {iterations * ((1 << (d + 1)) - 1)}")
    lines.append(f"long lived tree of depth {max_depth}\t check: {(1 << (max_depth + 1)) - 1}")
    return lines


@pytest.mark.parametrize("n", [0, 6, 9])
def test_output_is_the_programs(n):
    result = run_workload("binarytrees", [str(n)] if n else [], gcpercent=100, gctrace=0, virtual_clock=True)
    assert result.lines == expected_output(n)
    assert result.memstats.num_gc >= 1
    assert result.stdout_lines()[len(result.lines)] == "# MemStats"


def test_python_api_version_prints_the_same():
    result = run_workload("binarytrees-py", ["6"], gcpercent=100, gctrace=0, virtual_clock=True)
    assert result.lines == expected_output(6)
    assert result.memstats.num_gc >= 1


def test_every_node_is_a_typed_16_byte_block_and_the_heap_stays_sound():
    with GoProcess(gcpercent=50, gctrace=1, trace_stream=io.StringIO(), virtual_clock=True) as proc:
        proc.start()
        before = proc.heap.read_mem_stats()
        checks = []
        binarytrees.run(proc.heap, 8, proc, lambda: checks.append(proc.heap.check()), lambda f: None)
        after = proc.heap.read_mem_stats()
        nodes = sum(int(line.rsplit(" ", 1)[1]) for line in proc.lines)  # every check count is a node count
        assert after.by_size[2].mallocs - before.by_size[2].mallocs == nodes
        assert len(checks) > 3
        proc.heap.check()


@pytest.mark.parametrize("args", [["x"], ["1", "2"], ["1.5"]])
def test_bad_arguments(args):
    with pytest.raises(WorkloadError, match="binarytrees"):
        run_workload("binarytrees", args)
