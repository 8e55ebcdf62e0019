"""goheap: the Go runtime's memory allocator and garbage collector as of February 2013.

A re-implementation, in Python with numba, of the ``src/pkg/runtime`` allocator and
collector at Go commit 8a6ff3ab ("runtime: allocate heap metadata at run time"), over
real virtual memory. The overview essay is the docstring of ``goheap._runtime.malloc``.

    >>> import goheap
    >>> with goheap.Heap(arena_size=64 << 20) as h, h.scope() as s:
    ...     p = s.alloc(16)
    ...     h.lookup(p)
    (..., 16)
"""

from __future__ import annotations

import contextlib
import gc as _gc
import importlib

from .errors import (
    AddressError,
    CacheWarning,
    ConfigError,
    DoubleFree,
    FinalizerError,
    FinalizerWarning,
    HeapClosed,
    HeapCorrupted,
    HeapError,
    InvalidFree,
    InvalidSize,
    InvalidValue,
    OutOfMemory,
    RaceError,
)

__all__ = [
    "AddressError",
    "CacheWarning",
    "ConfigError",
    "DoubleFree",
    "FinalizerError",
    "FinalizerWarning",
    "GCStats",
    "Heap",
    "HeapClosed",
    "HeapConfig",
    "HeapCorrupted",
    "HeapError",
    "HeapSnapshot",
    "History",
    "InvalidFree",
    "InvalidSize",
    "InvalidValue",
    "Limits",
    "MemStats",
    "OutOfMemory",
    "Pacer",
    "PageMapSnapshot",
    "PageState",
    "Policy",
    "PolicyError",
    "RaceError",
    "RaceOptions",
    "Ref",
    "Scavenger",
    "Scope",
    "SizeClassStats",
    "SizeClassTable",
    "SizeClasses",
    "Span",
    "SpanState",
    "TypeInfo",
    "init_sizes",
    "inspect",
    "race",
    "readgogc",
]

__version__ = "0.1.0"

# Everything else is imported on first use (PEP 562), so that ``import goheap`` and the
# commands that need no compiled runtime (``goheap --help``, ``goheap sizeclasses``,
# ``goheap trace import``) do not load numba and the runtime. Each name: its module.
_LAZY = {
    "GCStats": "._runtime.stats",
    "Heap": ".heap",
    "HeapConfig": ".heap",
    "HeapSnapshot": ".inspect",
    "History": ".inspect",
    "Limits": "._runtime.mallocinit",
    "MemStats": "._runtime.stats",
    "PageMapSnapshot": ".inspect",
    "PageState": ".inspect",
    "Pacer": ".policy",
    "Policy": ".policy",
    "PolicyError": ".policy",
    "RaceOptions": ".race",
    "Ref": ".heap",
    "Scavenger": ".policy",
    "Scope": ".heap",
    "SizeClassStats": "._runtime.stats",
    "SizeClasses": "._runtime.sizeclasses",
    "SizeClassTable": ".policy",
    "Span": ".inspect",
    "SpanState": ".inspect",
    "TypeInfo": ".heap",
    "init_sizes": "._runtime.sizeclasses",
    "inspect": None,  # submodules
    "race": None,
    "readgogc": ".heap",
}


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'goheap' has no attribute {name!r}") from None
    with _importing():
        if module is None:
            value = importlib.import_module(f".{name}", __name__)
        else:
            value = getattr(importlib.import_module(module, __name__), name)
            value.__module__ = "goheap"
    globals()[name] = value
    return value


@contextlib.contextmanager
def _importing():
    """Python's cycle collector paused while the compiled runtime (numba, LLVM) is imported.

    It would walk numba's growing object graph again and again (about a sixth of the
    import's CPU); nothing an import makes is garbage.
    """
    collecting = _gc.isenabled()
    _gc.disable()
    try:
        yield
    finally:
        if collecting:
            _gc.enable()


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
