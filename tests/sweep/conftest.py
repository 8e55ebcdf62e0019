"""Shared fixtures of the sweep tests: small trace files, and one Dask cluster per module that asks for it."""

from __future__ import annotations

import pytest
from heaptools import program_trace

@pytest.fixture(scope="session")
def traces(tmp_path_factory):
    """Trace files: ``good`` (a small program), ``other`` (another seed), ``bad`` (its replay fails)."""
    d = tmp_path_factory.mktemp("traces")
    out = {}
    for name, trace in (("good", program_trace()), ("other", program_trace(seed=2)), ("bad", program_trace(2000, big=1 << 50))):
        path = d / f"{name}.trace.npz"
        trace.save(path)
        out[name] = path
    return out
