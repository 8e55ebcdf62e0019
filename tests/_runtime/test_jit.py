"""_jit: which sources key the compiled cache, and the housekeeping of old caches."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from goheap._runtime import _jit

pytestmark = pytest.mark.nojit


def test_only_compiled_sources_key_the_cache():
    package = _jit._PACKAGE
    compiled = {str(p.relative_to(package)) for p in package.rglob("*.py") if _jit._is_compiled_source(p, p.read_bytes())}
    assert "_runtime/mheap.py" in compiled and "workloads/binarytrees.py" in compiled
    assert "cli.py" not in compiled and "heap.py" not in compiled and "report/html.py" not in compiled


def test_stale_caches_of_other_sources_are_pruned(tmp_path: Path):
    current = tmp_path / "numba-0-current"
    old = tmp_path / "numba-0-old"
    recent = tmp_path / "numba-0-recent"
    other = tmp_path / "unrelated"
    for d in (old, recent, other):
        d.mkdir()
        (d / "f.nbi").write_text("x")
    week_ago = time.time() - _jit.STALE_CACHE_S - 60
    os.utime(old, (week_ago, week_ago))
    os.utime(other, (week_ago, week_ago))
    _jit._prune_stale_caches(str(current))
    assert not old.exists()
    assert recent.exists() and other.exists()  # recently written, or not one of ours
