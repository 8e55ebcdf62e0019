"""Fidelity beyond the shared runs: goheap's workloads against runs of the real 2013 runtime.

tests/data/oracle-runs holds runs of the seed's runtime built from the Go history
(tools/oracle_runs.py): binary-trees at N = 12, 16, 18, GCBench and churn, each at GOGC
25, 50, 100, 200 and 400. On every one goheap must collect as often (within one), end with
the same HeapSys, make the same number of allocations (within the handful the real
runtime itself varies by from run to run) and keep the same live objects after its
collections (median difference within 1%).

The quick runs (binary-trees at N = 12) are unmarked; the others are marked ``slow`` (all
of them run in CI: the whole grid takes about two minutes).
"""

from __future__ import annotations

import io
import re
import statistics

import pytest

from goheap.workloads import run_workload
from goheap.workloads.seedrun import SeedRun, compare_runs, parse_run_name

QUICK = ["binarytrees-N12-gogc25", "binarytrees-N12-gogc50", "binarytrees-N12-gogc100", "binarytrees-N12-gogc200", "binarytrees-N12-gogc400"]
SLOW = [f"{w}-gogc{g}" for w in ("binarytrees-N16", "binarytrees-N18", "gcbench", "churn") for g in (25, 50, 100, 200, 400)]
RUNS = [pytest.param(r) for r in QUICK] + [pytest.param(r, marks=pytest.mark.slow) for r in SLOW]
# The real runtime's own run-to-run variation in Mallocs: the map of syscall's environment
# grows or not with its random hash seed (one block), the scavenger's M starts a little
# earlier or later, span type arrays come and go with the collections around them.
MALLOCS_HANDFUL = 8
_TIMES = re.compile(r"took \d+ msec|in \d+ msec")


@pytest.fixture(scope="module", params=RUNS)
def comparison(request, oracle_runs):
    ref = SeedRun.from_files(oracle_runs / request.param)
    workload, args, gogc = parse_run_name(request.param)
    result = run_workload(
        workload,
        args,
        gcpercent=int(gogc),
        gogc_in_environ=True,
        gctrace=1,
        trace_stream=io.StringIO(),
        virtual_clock=True,
    )
    assert [_TIMES.sub("", line) for line in result.lines] == [_TIMES.sub("", line) for line in ref.lines]
    return compare_runs(ref, result.to_seed_run())


def test_same_number_of_collections(comparison):
    assert comparison.numgc_ok, comparison.numgc


def test_same_heap_sys(comparison):
    ref, ours = comparison.ref.memstats["HeapSys"], comparison.ours.memstats["HeapSys"]
    assert ref == ours


def test_same_allocations(comparison):
    ref, ours = comparison.ref.memstats["Mallocs"], comparison.ours.memstats["Mallocs"]
    assert abs(ours - ref) <= MALLOCS_HANDFUL, (ref, ours)


def test_live_objects_after_the_collections(comparison):
    diffs = [abs(rel) for *_, rel in comparison.live_diffs()]
    assert statistics.median(diffs) <= 0.01, f"median live-object difference {statistics.median(diffs):.2%}"
