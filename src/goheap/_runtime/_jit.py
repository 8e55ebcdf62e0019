"""The one decorator compiled runtime functions use, and where their machine code is cached.

See :mod:`goheap._runtime.malloc` for the overview. Every function decorated here also
runs as plain Python when ``NUMBA_DISABLE_JIT=1`` (for debugging and coverage), so the
bodies stay inside the numba subset: ints, numpy arrays and the ``Runtime`` StructRef.

numba's on-disk cache is keyed by each function's own source file only, so a cached
function that calls into a module that has since changed would run stale code. goheap
therefore keeps its cache in a directory named after a hash of all its compiled sources
(unless ``NUMBA_CACHE_DIR`` is set): any change to any of them starts a fresh cache.
The compiled sources are every module of ``_runtime`` and every other module that
compiles functions (it uses ``@jit`` or numba directly); the Python shell, the CLI and
the reports are not, so editing them keeps the cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

__all__ = ["jit", "source_hash"]

_PACKAGE = Path(__file__).resolve().parents[1]


def _is_compiled_source(path: Path, text: bytes) -> bool:
    return path.parent.name == "_runtime" or b"@jit" in text or b"import numba" in text or b"from numba" in text


def source_hash() -> str:
    """A short hash of every compiled source of the goheap package (see the module docstring)."""
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*.py")):
        text = path.read_bytes()
        if _is_compiled_source(path, text):
            digest.update(str(path.relative_to(_PACKAGE)).encode())
            digest.update(text)
    return digest.hexdigest()[:16]


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "goheap", f"numba-{numba.__version__}-{source_hash()}")


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()


def jit(fn):
    """Compile ``fn`` in nopython mode, cached on disk, holding the GIL (one runtime call is atomic)."""
    return numba.njit(cache=True, nogil=False)(fn)
