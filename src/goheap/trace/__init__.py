"""Allocation traces: import recorded Go programs, and replay them on goheap.

* :func:`import_log` parses a log (plain text or gzip) into a :class:`Trace`;
  :func:`parse_lines` is its streaming core over any iterable of lines;
  :func:`import_log_to_file` writes the trace file directly, in memory that does not grow
  with the log (what ``goheap trace import`` runs). See :mod:`goheap.trace.allocfreetrace`.
* :func:`import_exectrace` reads a Go 1.23+ execution trace recorded with
  ``GODEBUG=traceallocfree=1`` (:mod:`goheap.trace.exectrace`);
  :func:`import_exectrace_to_file` writes the trace file in bounded memory;
  :func:`detect_format` tells the two kinds of input apart by content.
* :class:`Trace` holds the events as numpy columns and saves/loads the versioned ``.npz``
  trace file format documented in :mod:`goheap.trace.tracefile`.
* :func:`replay` replays a trace's allocations on a goheap heap and compares the two runs
  (:class:`ReplayResult`); :class:`ReplayPlan` is its checked pre-pass;
  :func:`heap_profile_rate` picks the sampling rate of a replay's heap profile. See
  :mod:`goheap.trace.replay`.
* The ``goheap trace`` command group and ``goheap replay`` live in :mod:`goheap.trace.cli`.
"""

import importlib
import sys
import types

from goheap.trace.allocfreetrace import (
    CHUNK_EVENTS,
    ImportResult,
    import_log,
    import_log_to_file,
    open_log,
    parse_lines,
)
from goheap.trace.detect import detect_format
from goheap.trace.exectrace import import_exectrace, import_exectrace_to_file
from goheap.trace.tracefile import (
    FORMAT_VERSION,
    KIND_ALLOC,
    KIND_FREE,
    KIND_GC,
    KIND_NAMES,
    Trace,
    TraceFormatError,
    TraceTruncatedWarning,
)

__all__ = [
    "CHUNK_EVENTS",
    "FORMAT_VERSION",
    "GCPoint",
    "GoheapGC",
    "ImportResult",
    "KIND_ALLOC",
    "KIND_FREE",
    "KIND_GC",
    "KIND_NAMES",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "Trace",
    "TraceFormatError",
    "TraceOverlapError",
    "TraceTruncatedWarning",
    "detect_format",
    "heap_profile_rate",
    "import_exectrace",
    "import_exectrace_to_file",
    "import_log",
    "import_log_to_file",
    "open_log",
    "parse_lines",
    "replay",
]

# The replay loads the compiled runtime (numba): imported on first use (PEP 562), so that
# reading and importing traces does not.
_REPLAY_NAMES = ("GCPoint", "GoheapGC", "ReplayError", "ReplayPlan", "ReplayResult", "TraceOverlapError", "heap_profile_rate")


def __getattr__(name: str):
    if name not in _REPLAY_NAMES:
        raise AttributeError(f"module 'goheap.trace' has no attribute {name!r}")
    value = getattr(importlib.import_module("goheap.trace.replay"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """``goheap.trace.replay`` is the function, as when the package imported it eagerly.

    The import system binds each submodule as an attribute of its package when it is first
    imported; this keeps the name for the function however the module gets imported.
    """

    @property
    def replay(self):
        from goheap.trace.replay import replay

        return replay

    @replay.setter
    def replay(self, value) -> None:
        pass


sys.modules[__name__].__class__ = _Package
