"""Reading untrusted files in bounded memory: logs line by line, trace archives member by member.

A log or a trace file may be hostile or broken: ``/dev/zero``, a 2 MB gzip holding one
2 GB line, an ``.npz`` whose member claims 2**40 rows or inflates a few MB into GB. Each
reader here checks what it is about to hold *before* holding it, and raises
:class:`~goheap.trace.tracefile.TraceFormatError` naming the file and the byte offset:

* :class:`LineGuard` passes a byte stream through and stops at the first line longer
  than :data:`MAX_LINE_BYTES` (a Go stack line is at most a few KB; a type name a few
  hundred bytes), so a text reader above it never holds more than one such line.
  Decompression is streamed below it (gzip decompresses as much as is read), so a
  compressed bomb is stopped after at most one long line of it.
* :func:`read_npy_member` reads one ``NAME.npy`` member of a zip archive: its header
  first, checked against the size the zip directory declares and against the largest
  array the caller accepts, then exactly that many bytes, streamed into the array.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import numpy as np

__all__ = ["MAX_LINE_BYTES", "LineGuard", "memory_budget", "read_npy_member"]

#: The longest line a log may have.
MAX_LINE_BYTES = 1 << 20


def _error(message: str) -> Exception:
    from .tracefile import TraceFormatError  # tracefile imports this module

    return TraceFormatError(message)


class LineGuard(io.RawIOBase):
    """A raw stream over ``f`` that raises once a line grows past ``limit`` bytes (see the module docstring)."""

    def __init__(self, f: Any, source: str, limit: int = MAX_LINE_BYTES) -> None:
        super().__init__()
        self._f = f
        self._source = source
        self._limit = limit
        self._offset = 0  # bytes passed through
        self._line_start = 0  # offset of the current line's first byte
        self._lineno = 1

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._f, "close", None)
            if close is not None:
                close()
        super().close()

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)
        if not n:
            return 0
        raw = memoryview(b)[:n].tobytes()
        first = raw.find(b"\n")
        if first < 0:
            if self._offset + n - self._line_start > self._limit:
                self._too_long()
        else:
            if self._offset + first - self._line_start > self._limit:
                self._too_long()
            if n > self._limit:  # only a chunk longer than the limit can hide a long line inside
                self._check_inner(raw, first)
            self._lineno += raw.count(b"\n")
            self._line_start = self._offset + raw.rfind(b"\n") + 1
        self._offset += n
        return n

    def _check_inner(self, raw: bytes, first: int) -> None:
        start = first + 1
        while (end := raw.find(b"\n", start)) >= 0:
            if end - start > self._limit:
                self._lineno += raw.count(b"\n", 0, start)
                self._line_start = self._offset + start
                self._too_long()
            start = end + 1

    def _too_long(self) -> None:
        raise _error(
            f"{self._source}:{self._lineno}: the line starting at byte {self._line_start:,} is longer "
            f"than {self._limit:,} bytes: not an allocfreetrace log (is it binary data?)"
        )


def memory_budget() -> int:
    """The bytes one trace may take in memory: the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 1 << 36


def read_npy_member(
    zf: zipfile.ZipFile, member: str, name: str, *, max_bytes: int, rows: int | None = None
) -> np.ndarray:
    """The 1-D array in ``member`` of the archive ``zf`` (file ``name``), read in bounded memory.

    Refuses (TraceFormatError naming the file, the member and its offset) a member whose
    header is not a 1-D array, whose header disagrees with the size the zip directory
    declares or with ``rows`` (the row count the trace's meta announces, when given), or
    which holds more than ``max_bytes`` of data.
    """
    info = zf.getinfo(member)
    where = f"{name}: member {member!r} (at byte {info.header_offset:,})"
    with zf.open(info) as f:
        assert isinstance(f, zipfile.ZipExtFile)  # what open(member, "r") returns: it has readinto
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, found = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, found = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise _error(f"{where}: not a .npy array ({e})") from None
        if len(shape) != 1 or fortran or found.hasobject:
            raise _error(f"{where}: expected a 1-D array of numbers, got dtype {found} and shape {shape}")
        if rows is not None and int(shape[0]) != rows:
            raise _error(f"{where}: holds {int(shape[0]):,} rows but meta['events'] is {rows!r}")
        nbytes = int(shape[0]) * found.itemsize
        header = f.tell()
        if header + nbytes != info.file_size:
            raise _error(
                f"{where}: its header claims {int(shape[0]):,} rows ({nbytes:,} bytes) but the "
                f"archive declares {info.file_size - header:,} bytes of data"
            )
        if nbytes > max_bytes:
            raise _error(
                f"{where}: claims {int(shape[0]):,} rows ({nbytes:,} bytes), more than a trace "
                f"may hold here ({max_bytes:,} bytes)"
            )
        out = np.empty(int(shape[0]), found)
        view = out.data.cast("B")
        got = 0
        try:
            while got < nbytes:
                k = f.readinto(view[got : got + (1 << 22)])
                if not k:
                    break
                got += k
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise _error(f"{where}: unreadable at data byte {got:,} ({e})") from None
        if got != nbytes:
            raise _error(f"{where}: ends after {got:,} of its {nbytes:,} data bytes")
    return out
