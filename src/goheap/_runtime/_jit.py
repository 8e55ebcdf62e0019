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

import functools
import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import numba

__all__ = ["entry_point", "jit", "jit_entry", "jit_inline", "source_hash"]

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


STALE_CACHE_S = 7 * 24 * 3600  # caches of other sources not written for this long are removed


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "goheap", f"numba-{numba.__version__}-{source_hash()}")


def _prune_stale_caches(current: str) -> None:
    """Remove goheap's caches of other sources (earlier versions) not written for a week.

    Each version of the compiled sources has its own cache directory; without this they
    would pile up with every upgrade. Recently used ones are kept, since several checkouts
    of different versions may run side by side. Errors are ignored: this is housekeeping.
    """
    parent = Path(current).parent
    now = time.time()
    for entry in parent.glob("numba-*"):
        try:
            if str(entry) != current and now - entry.stat().st_mtime > STALE_CACHE_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()
    if not os.path.isdir(numba.config.CACHE_DIR):
        _prune_stale_caches(numba.config.CACHE_DIR)


from numba.core import errors as _errors, types as _types
from numba.core.registry import CPUDispatcher as _CPUDispatcher


def _plain(typ):
    typ = _types.unliteral(typ)
    if isinstance(typ, _types.Integer) and (typ.signed or typ.bitwidth < 64):
        return _types.int64
    return typ


class _Dispatcher(_CPUDispatcher):
    def get_call_template(self, args, kws):
        plain = tuple(_plain(a) for a in args)
        if plain != tuple(args):
            try:
                return super().get_call_template(plain, kws)
            except _errors.TypingError:
                pass
        return super().get_call_template(args, kws)


def _njit(fn, **options):
    if numba.config.DISABLE_JIT:
        return fn
    disp = _Dispatcher(py_func=fn, locals={}, targetoptions={"nopython": True, **options})
    disp.enable_caching()
    return disp


def jit(fn):
    """Compile ``fn`` in nopython mode, cached on disk, holding the GIL (one runtime call is atomic)."""
    return _njit(fn, nogil=False)


def jit_inline(fn):
    """:func:`jit`, and inlined into each caller by numba itself.

    For the per-thread cache's alloc and free, the middle of mallocgc's and free's common
    path: LLVM will not inline them (their rare branches make them too big), and the calls
    cost about 15% of a small alloc+free.
    """
    return _njit(fn, nogil=False, inline="always")


_INTERPRETED_LOCK = threading.RLock()


def jit_entry(fn):
    """:func:`jit`, for the functions Python calls into (the shell's entry points, goheap.nb).

    Compiled, a call holds the GIL from start to end, so every runtime operation is atomic
    with respect to other threads (Departure 1 in malloc.py). Interpreted, Python may switch
    threads between any two bytecodes, so these calls take a process-wide lock instead.
    """
    if not numba.config.DISABLE_JIT:
        return jit(fn)

    @functools.wraps(fn)
    def locked(*args):
        with _INTERPRETED_LOCK:
            return fn(*args)

    return locked


def entry_point(dispatcher, signature):
    """The machine code of ``dispatcher`` for one signature, as a Python callable.

    Calling it skips the dispatcher's type resolution (about half the cost of a call from
    Python); the arguments must already have the signature's types. Interpreted, the
    function itself.
    """
    if numba.config.DISABLE_JIT:
        return dispatcher
    return dispatcher.compile(signature)
