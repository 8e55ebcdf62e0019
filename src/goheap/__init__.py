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

from ._runtime.mallocinit import Limits
from ._runtime.sizeclasses import SizeClasses, init_sizes
from ._runtime.stats import GCStats, MemStats, SizeClassStats
from .errors import (
    AddressError,
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
from .heap import Heap, HeapConfig, Ref, Scope, TypeInfo, readgogc
from .policy import Pacer, Policy, PolicyError, Scavenger, SizeClassTable
from . import inspect, race
from .race import RaceOptions
from .inspect import HeapSnapshot, History, PageMapSnapshot, PageState, Span, SpanState

__all__ = [
    "AddressError",
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

for _name in (
    "GCStats", "MemStats", "SizeClassStats", "SizeClasses", "TypeInfo", "HeapConfig", "Limits",
    "HeapSnapshot", "History", "PageMapSnapshot", "PageState", "Span", "SpanState", "init_sizes", "readgogc",
    "RaceOptions", "Pacer", "Scavenger", "SizeClassTable",
):
    globals()[_name].__module__ = "goheap"
del _name
