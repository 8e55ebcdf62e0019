"""Tell the two kinds of recorded Go program apart by their content.

An allocfreetrace log is text (``tracealloc(...)`` lines among the program's stderr); a Go
execution trace starts with the 16-byte header ``go 1.NN trace``. Either may be gzipped
(told by the gzip magic bytes, not the file name). Standard input cannot be peeked
without consuming it, so ``"-"`` is read as a log unless :data:`STDIN_FORMAT_ENV` says
``exectrace``.
"""

from __future__ import annotations

import gzip
import os
import zlib

from goheap.trace.exectrace.format import HEADER_SIZE, parse_header

__all__ = ["FORMATS", "STDIN_FORMAT_ENV", "detect_format"]

#: The formats goheap imports.
FORMATS = ("allocfreetrace", "exectrace")
#: Environment variable naming the format of standard input (default: allocfreetrace).
STDIN_FORMAT_ENV = "GOHEAP_TRACE_FORMAT"


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"exectrace"`` if the file (plain or gzip) starts with a Go execution trace's
    header, else ``"allocfreetrace"`` (whose reader says so if it is not a log either).

    Raises OSError if the file cannot be read.
    """
    if os.fspath(path) == "-":
        return "exectrace" if os.environ.get(STDIN_FORMAT_ENV) == "exectrace" else "allocfreetrace"
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(HEADER_SIZE)
        except (OSError, EOFError, zlib.error):
            return "allocfreetrace"  # its reader reports the broken stream
    return "exectrace" if parse_header(head) is not None else "allocfreetrace"
