"""GCBench: the program's output (timings aside) and a sound heap."""

from __future__ import annotations

import re

from goheap.workloads import gcbench, run_workload


def test_output_is_the_programs():
    result = run_workload("gcbench", gcpercent=100, gctrace=0, virtual_clock=True)
    expected = [
        "Garbage Collector Test",
        " Stretching memory with a binary tree of depth 18",
        " Creating a long-lived binary tree of depth 16",
        " Creating a long-lived array of 500000 doubles",
    ]
    for d in range(4, 17, 2):
        expected += [f"Creating {gcbench.num_iters(d)} trees of depth {d}", "\tTop down construction took # msec", "\tBottom up construction took # msec"]
    expected.append("Completed in # msec")
    assert [re.sub(r"took \d+ msec|in \d+ msec", lambda m: m.group(0).split()[0] + " # msec", line) for line in result.lines] == expected
    ms = result.memstats
    # the 4 MB array is one large block: HeapAlloc at the end holds it and the long-lived tree
    assert ms.heap_alloc > 8 * 500000 + 32 * (gcbench.tree_size(16))
    assert ms.num_gc > 10
    # every tree's nodes but the roots of the top-down and long-lived trees (stack variables)
    nodes = gcbench.tree_size(18) + gcbench.tree_size(16) - 1
    nodes += sum(gcbench.num_iters(d) * (2 * gcbench.tree_size(d) - 1) for d in range(4, 17, 2))
    assert nodes == gcbench.heap_nodes() == 15289049
    # class 3 (32 B) also holds five of the runtime's own blocks: three maps' headers, the
    # zoneinfo path, fmt's first buffer (as in the oracle runs: 15289054)
    assert ms.by_size[3].mallocs - 5 == nodes


def test_num_iters_is_the_programs():
    assert [gcbench.num_iters(d) for d in range(4, 17, 2)] == [33824, 8256, 2052, 512, 128, 32, 8]
