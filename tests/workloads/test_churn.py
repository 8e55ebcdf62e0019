"""churn: the program's output is the Go program's, byte for byte (it does not depend on the runtime)."""

from __future__ import annotations

import pytest

from goheap.workloads import churn, run_workload

# What churn.go prints: its LCG and counters only, so any Go version prints the same
# (these lines are Go 1.19's, `go build churn.go && ./churn`).
GO_OUTPUT = [
    "allocs=2000000 small=1400072 medium=499799 large=100129 bytes_requested=62581553905",
    "ring_live=10000 ring_live_bytes=312841051 ring_checksum=16485153510597492845",
]


@pytest.mark.slow
def test_output_is_the_go_programs():
    result = run_workload("churn", gcpercent=100, gctrace=0, virtual_clock=True)
    assert result.lines == GO_OUTPUT
    ms = result.memstats
    assert ms.mallocs >= churn.N_ALLOCS and ms.num_gc > 10
    # the ring (10000 slice headers) and every slice it holds are live at the end
    assert ms.heap_alloc >= 312841051


def test_lcg_matches_the_programs_first_draws():
    import numpy as np

    state = np.array([churn.LCG_SEED], np.uint64)
    s = churn.LCG_SEED
    for _ in range(5):
        s = (s * churn.LCG_MUL + churn.LCG_ADD) % (1 << 64)
        assert churn._next(state) == s >> 32
