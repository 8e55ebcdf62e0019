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
