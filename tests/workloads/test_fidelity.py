"""Fidelity: goheap's binary-trees against the real 2013 runtime's runs (../data/go-seed-runs).

The criteria of the project: the same number of collections (within one), the same
HeapSys, and live objects after each collection within 1%. Where live objects still
differ, the cause is listed in the Departures of the overview essay (the runtime's own
C frames below the program's, which the Go stack emulation leaves out); this test
bounds how often that happens, so that a regression shows.
"""

from __future__ import annotations

import io

import pytest

from goheap.workloads import run_workload
from goheap.workloads.seedrun import SeedRun, compare_runs, parse_run_name

RUNS = [
    "binarytrees-N10-gogc100default",
    "binarytrees-N10-gogc50",
    "binarytrees-N10-gogc200",
    "binarytrees-N14-gogc100default",
    "binarytrees-N14-gogc50",
    "binarytrees-N14-gogc200",
]


@pytest.fixture(scope="module", params=RUNS)
def comparison(request, seed_runs):
    ref = SeedRun.from_files(seed_runs / request.param)
    workload, args, gogc = parse_run_name(request.param)
    result = run_workload(
        workload,
        args,
        gcpercent=100 if gogc is None else int(gogc),
        gogc_in_environ=gogc is not None,
        gctrace=1,
        trace_stream=io.StringIO(),
        virtual_clock=True,
    )
    assert result.lines == ref.lines  # the program printed the same
    return compare_runs(ref, result.to_seed_run())


def test_same_number_of_collections(comparison):
    assert comparison.numgc_ok, comparison.numgc


def test_same_heap_sys(comparison):
    assert comparison.heap_sys_ok


def test_same_allocations(comparison):
    """Mallocs and TotalAlloc: the program's, the runtime's own blocks, type arrays and stack segments."""
    ref, ours = comparison.ref.memstats, comparison.ours.memstats
    for key in ("Mallocs", "TotalAlloc"):
        assert abs(ours[key] - ref[key]) <= ref[key] * 1e-3, key


def test_first_collections_match_exactly(comparison):
    a, b = comparison.ref.gcs[0], comparison.ours.gcs[0]
    assert (a.obj0, a.obj1, a.nmalloc, a.nfree) == (b.obj0, b.obj1, b.nmalloc, b.nfree)


def test_live_objects_after_each_collection(comparison):
    diffs = [rel for *_, rel in comparison.live_diffs()]
    within_1pct = sum(1 for d in diffs if abs(d) <= 0.01) / len(diffs)
    within_5pct = sum(1 for d in diffs if abs(d) <= 0.05) / len(diffs)
    assert within_1pct >= 0.6, f"only {within_1pct:.0%} of collections within 1%"
    assert within_5pct >= 0.75, f"only {within_5pct:.0%} of collections within 5%"
    assert sorted(abs(d) for d in diffs)[len(diffs) // 2] <= 0.01  # the median
