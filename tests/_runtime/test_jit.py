"""_jit: which sources key the compiled cache, where it goes, and the housekeeping of old caches."""

from __future__ import annotations

import os
import subprocess
import sys
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


def _cache_dir_in_a_fresh_process(env: dict[str, str], before: str = "") -> tuple[str, list[str]]:
    """(the cache directory, the warning lines on stderr) of a new interpreter importing goheap's jit."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "GOHEAP_CACHE_DIR")} | env
    env["NUMBA_DISABLE_JIT"] = "0"
    code = before + "from goheap._runtime import _jit; print(_jit.cache_dir())"
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip(), [line for line in out.stderr.splitlines() if "CacheWarning" in line]


def test_goheap_cache_dir_chooses_the_cache(tmp_path: Path):
    where, warned = _cache_dir_in_a_fresh_process({"GOHEAP_CACHE_DIR": str(tmp_path / "cache")})
    assert Path(where).parent == tmp_path / "cache" and Path(where).name.startswith("numba-")
    assert Path(where).is_dir() and warned == []


def test_an_unwritable_cache_dir_warns_once_and_falls_back(tmp_path: Path):
    unwritable = tmp_path / "a-file"
    unwritable.write_text("not a directory")
    where, warned = _cache_dir_in_a_fresh_process(
        {"GOHEAP_CACHE_DIR": str(unwritable / "cache"), "TMPDIR": str(tmp_path / "tmp")},
        before=f"import tempfile; tempfile.tempdir = {str(tmp_path / 'tmp')!r}; ",
    )
    assert Path(where).parent == tmp_path / "tmp" / f"goheap-{os.getuid()}"
    assert len(warned) == 1
    assert str(unwritable / "cache") in warned[0] and where in warned[0]


def test_no_writable_cache_dir_at_all_warns_and_caches_nothing(tmp_path: Path):
    unwritable = tmp_path / "a-file"
    unwritable.write_text("not a directory")
    where, warned = _cache_dir_in_a_fresh_process(
        {"GOHEAP_CACHE_DIR": str(unwritable / "cache")},
        before=f"import tempfile; tempfile.tempdir = {str(unwritable / 'tmp')!r}; ",
    )
    assert where == "None"
    assert len(warned) == 1 and "compiles the runtime again" in warned[0]
