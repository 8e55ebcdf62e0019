"""Shared fixtures: where the reference data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SEED_RUNS = SHARED_DATA / "go-seed-runs" / "runs"


@pytest.fixture(scope="session")
def seed_runs() -> Path:
    """../shared/data/go-seed-runs/runs, or skip when the data is not beside the repository."""
    if not SEED_RUNS.is_dir():
        pytest.skip("../shared/data/go-seed-runs is not available")
    return SEED_RUNS


@pytest.fixture(scope="session", autouse=True)
def compiled_runtime() -> None:
    """Compile what an ordinary heap needs on every core before the first test (a no-op when
    the cache has it); the race detector and the interleaved collector compile when a test
    first builds such a heap."""
    from goheap._runtime.prepare import heap_jobs, prepare

    prepare(heap_jobs(race_mode=False, nproc=1))


ORACLE_RUNS = Path(__file__).resolve().parent / "data" / "oracle-runs"


@pytest.fixture(scope="session")
def oracle_runs() -> Path:
    """tests/data/oracle-runs: runs of the real 2013 runtime made with tools/oracle_runs.py."""
    return ORACLE_RUNS

