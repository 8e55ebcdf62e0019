"""Allocation traces: import Go ``GODEBUG=allocfreetrace=1`` logs into compact trace files.

* :func:`import_log` parses a log (plain text or gzip) into a :class:`Trace`;
  :func:`parse_lines` is its streaming core over any iterable of lines.
* :class:`Trace` holds the events as numpy columns and saves/loads the versioned ``.npz``
  trace file format documented in :mod:`goheap.trace.tracefile`.
* The ``goheap trace`` command group lives in :mod:`goheap.trace.cli` (``trace_group``).
"""

from goheap.trace.allocfreetrace import CHUNK_EVENTS, import_log, open_log, parse_lines
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
    "KIND_ALLOC",
    "KIND_FREE",
    "KIND_GC",
    "KIND_NAMES",
    "Trace",
    "TraceFormatError",
    "TraceTruncatedWarning",
    "import_log",
    "open_log",
    "parse_lines",
]
