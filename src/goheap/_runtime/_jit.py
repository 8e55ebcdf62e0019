"""The decorators compiled runtime functions use, and where their machine code is cached.

See :mod:`goheap._runtime.malloc` for the overview. Every function decorated here also
runs as plain Python when ``NUMBA_DISABLE_JIT=1`` (for debugging and coverage), so the
bodies stay inside the numba subset: ints, numpy arrays and the ``Runtime`` StructRef.

*One specialisation per function.* numba compiles a function anew for every combination
of argument types it is called with, literal values included (``f(rt, 0)`` and
``f(rt, 1)`` would be two), and each copy is typed, optimised and linked into its callers.
Calls between goheap's compiled functions are typed with plain types instead: literals
as their type, every integer of 64 bits or less (int32 span ids from the span map, uint32
shadow cells) as int64. This halved the first run's compiling.

*No Python wrappers for internal functions.* numba gives every compiled function two
wrappers, one Python can call and one C can, and optimises them with it; most of goheap's
functions are only ever called from compiled code, and the wrappers cost a fifth of the
compiling. Those (``jit``, ``jit_inline``) are compiled without them; when Python calls one
after all (a test, a workload's entry), the call goes to a twin compiled with them.

*The cache.* numba's on-disk cache is keyed by each function's own source file only, so a
cached function that calls into a module that has since changed would run stale code.
goheap therefore keeps its cache in a directory named after a hash of all its compiled
sources: any change to any of them starts a fresh cache. The compiled sources are every
module of ``_runtime`` and every other module that compiles functions (it uses ``@jit`` or
numba directly); the Python shell, the CLI and the reports are not, so editing them keeps
the cache. The directory is ``$GOHEAP_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/goheap``,
else ``~/.cache/goheap`` (or numba's own ``$NUMBA_CACHE_DIR``, when that is set). If it
cannot be written (a read-only home, a container), goheap warns once, naming it, and uses
one under the system's temporary directory instead; if none can be written it compiles
without caching.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
from numba.core import errors as numba_errors
from numba.core import types
from numba.core.caching import FunctionCache
from numba.core.registry import CPUDispatcher

from ..errors import CacheWarning

__all__ = ["cache_dir", "checked_from_python", "entry_point", "jit", "jit_entry", "jit_inline", "source_hash"]

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


def _cache_base() -> Path:
    """Where goheap keeps its caches (see the module docstring)."""
    chosen = os.environ.get("GOHEAP_CACHE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "goheap"


def _fallback_base() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"goheap-{uid}"


def _unwritable(path: Path) -> str | None:
    """Why nothing can be written in ``path`` (created if need be), or None if it can."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _prune_stale_caches(current: Path) -> None:
    """Remove goheap's caches of other sources (earlier versions) not written for a week.

    Each version of the compiled sources has its own cache directory; without this they
    would pile up with every upgrade. Recently used ones are kept, since several checkouts
    of different versions may run side by side. Errors are ignored: this is housekeeping.
    """
    current = Path(current)
    now = time.time()
    for entry in current.parent.glob("numba-*"):
        try:
            if entry != current and now - entry.stat().st_mtime > STALE_CACHE_S:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def _choose_cache_dir() -> str | None:
    """The cache directory for this process (warning once if the chosen one cannot be written); None: no caching."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return numba.config.CACHE_DIR
    name = f"numba-{numba.__version__}-{source_hash()}"
    preferred = _cache_base() / name
    fresh = not preferred.is_dir()
    why = _unwritable(preferred)
    if why is None:
        if fresh:
            _prune_stale_caches(preferred)
        return str(preferred)
    fallback = _fallback_base() / name
    if fallback != preferred and _unwritable(fallback) is None:
        _warn(f"cannot write the compiled-code cache in {preferred} ({why}); using {fallback} "
              "(set GOHEAP_CACHE_DIR to a writable directory to keep it)")
        return str(fallback)
    _warn(f"cannot write the compiled-code cache in {preferred} ({why}) nor in {fallback}: every run "
          "compiles the runtime again (set GOHEAP_CACHE_DIR to a writable directory)")
    return None


def _warn(message: str) -> None:
    # attributed to goheap itself: the line of this module that noticed would tell the user nothing
    warnings.warn_explicit(message, CacheWarning, "goheap", 0, module="goheap")


_CACHE_DIR = None if numba.config.DISABLE_JIT else _choose_cache_dir()
if _CACHE_DIR is not None:
    numba.config.CACHE_DIR = _CACHE_DIR


def cache_dir() -> str | None:
    """The directory this process caches compiled code in; None when nothing is cached."""
    return _CACHE_DIR


def _plain(typ):
    """The type a call between compiled functions is typed with (see the module docstring)."""
    typ = types.unliteral(typ)
    if isinstance(typ, types.Integer) and (typ.signed or typ.bitwidth < 64):  # type: ignore[attr-defined]  # set by Integer.__init__, not declared
        return types.int64
    return typ


class _Dispatcher(CPUDispatcher):
    """numba's dispatcher, typing calls from compiled code with plain argument types."""

    _cache: FunctionCache  # set by enable_caching (numba declares it nowhere)

    def get_call_template(self, args, kws):
        plain = tuple(_plain(a) for a in args)
        if plain != tuple(args):
            try:
                return super().get_call_template(plain, kws)
            except numba_errors.TypingError:
                pass  # a function that needs its literal arguments gets them
        return super().get_call_template(args, kws)


class _InternalCache(FunctionCache):
    """The cache of an internal function: its entries are told apart from its twin's (same source, other flags)."""

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), "internal")


class _InternalDispatcher(_Dispatcher):
    """A function for compiled callers only: compiled without the Python and C wrappers.

    Called from Python, it hands the call to a twin compiled with them (see the module docstring).
    """

    _python_options: dict[str, Any]  # the options of the twin

    def __call__(self, *args, **kws):
        twin = self.__dict__.get("_twin")
        if twin is None:
            twin = self._twin = _dispatcher(self.py_func, self._python_options)
        return twin(*args, **kws)


_WRAPPERS_OFF = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}


def _dispatcher(fn, options: dict, internal: bool = False):
    # forceinline is set either way: numba passes it on to callees compiled with their caller
    options = {"nopython": True, "forceinline": False, **options}
    if internal:
        internal_disp = _InternalDispatcher(py_func=fn, locals={}, targetoptions={**options, **_WRAPPERS_OFF})
        internal_disp._python_options = options
        if _CACHE_DIR is not None:
            internal_disp._cache = _InternalCache(fn)
        return internal_disp
    disp = _Dispatcher(py_func=fn, locals={}, targetoptions=options)
    if _CACHE_DIR is not None:
        disp.enable_caching()
    return disp


def _njit(fn, internal: bool = True, **options):
    if numba.config.DISABLE_JIT:
        return fn
    return _dispatcher(fn, options, internal)


def jit(fn):
    """Compile ``fn`` in nopython mode, cached on disk, holding the GIL (one runtime call is atomic).

    For functions compiled code calls (see the module docstring); Python's calls work, through a twin.
    """
    return _njit(fn, nogil=False)


def jit_inline(fn):
    """:func:`jit`, and always inlined into its callers (LLVM's alwaysinline).

    For the steps of mallocgc's and free's common path (the per-thread cache's alloc and
    free, mallocgc itself, goheap.nb's allocators): LLVM will not inline them on its own
    (their rare branches make them too big), and each call costs a few ns of every
    allocation, about 15% of a small alloc+free.
    """
    return _njit(fn, nogil=False, forceinline=True)


_INTERPRETED_LOCK = threading.RLock()


def jit_entry(fn=None, *, inline: bool = False):
    """:func:`jit`, for the functions Python calls into (the shell's entry points, goheap.nb).

    Compiled, a call holds the GIL from start to end, so every runtime operation is atomic
    with respect to other threads (Departure 1 in malloc.py). Interpreted, Python may switch
    threads between any two bytecodes, so these calls take a process-wide lock instead.
    ``@jit_entry(inline=True)``: also always inlined into compiled callers (:func:`jit_inline`).
    """
    if fn is None:
        return functools.partial(jit_entry, inline=inline)
    if not numba.config.DISABLE_JIT:
        return _njit(fn, internal=False, nogil=False, forceinline=inline)

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


class _CheckedFromPython(_Dispatcher):
    """A compiled function that, called from Python rather than from compiled code, runs a checked twin.

    Compiled callers type it as any dispatcher and call its fast machine code directly;
    only a call from the interpreter goes through ``__call__``, to ``python_call``.
    """

    python_call: Callable[..., Any]  # set by checked_from_python

    def __call__(self, *args, **kwargs):
        return self.python_call(*args, **kwargs)

    def __reduce__(self):
        return _by_name, (self.py_func.__module__, self.py_func.__name__)


def _by_name(module: str, name: str):
    """The module-level function ``module.name`` (how a checked dispatcher is pickled)."""
    return getattr(importlib.import_module(module), name)


def checked_from_python(dispatcher, python_call) -> None:
    """Make calls of ``dispatcher`` from Python run ``python_call`` instead; compiled callers are unaffected.

    Interpreted (NUMBA_DISABLE_JIT) nothing changes: compiled callers are Python callers there.
    """
    if numba.config.DISABLE_JIT:
        return
    dispatcher.__class__ = _CheckedFromPython
    dispatcher.python_call = python_call
