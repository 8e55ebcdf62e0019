"""An input read forwards into one numpy buffer: what the compiled readers scan.

Both recorded formats (:mod:`goheap.trace.allocfreetrace`, :mod:`goheap.trace.exectrace`)
are read by compiled loops over a numpy array of bytes. :class:`ByteInput` fills that array
from a file, a pipe or standard input (``"-"``), plain or gzip (told by the gzip magic
bytes, never by seeking, so pipes work), a block at a time, straight into the array.
``buf[:filled]`` is valid and ``buf[i]`` is byte ``base + i`` of the (uncompressed)
input; :meth:`ByteInput.more` drops the bytes the reader no longer needs (before the
offset it says to keep) before it grows the array, so the array holds what the reader is
in the middle of (a generation, an event) and one block past it.

Standard input is read from its file descriptor, unbuffered (bytes a caller already read
through ``sys.stdin`` are not seen again). A read that may wait for data (standard
input, a pipe) first waits in :func:`goheap.interrupts.wait_readable`, so Ctrl-C always
stops it.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Callable
from typing import Any, Union, cast

import numpy as np

from ..interrupts import wait_readable

__all__ = ["READ_BLOCK", "ByteInput", "CorruptStream", "Stream"]

#: Bytes read at a time.
READ_BLOCK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


#: What ByteInput reads from besides a path: a binary stream with ``read`` and ``readinto``.
Stream = Union[io.RawIOBase, io.BufferedIOBase]


class CorruptStream(Exception):
    """A gzip stream that cannot be decompressed (the reader names the place)."""


class ByteInput:
    """The bytes of ``source``: a path, ``"-"`` for standard input, or a binary stream
    (see the module docstring).

    ``name`` is the file's name (``<stdin>`` for ``"-"``), ``compressed`` whether it is
    gzip, ``raw_read`` how many bytes of the file were read, ``cut_short`` whether the
    stream ended early (a gzip stream before its end: ``cut_reason`` says how). ``wrap``,
    if given, is applied to the decompressed stream (an object with ``readinto``) and what
    it returns is read instead (e.g. a bound on line lengths).
    """

    def __init__(self, source: str | os.PathLike[str] | Stream, *, wrap: Callable[[Any], Any] | None = None) -> None:
        if not isinstance(source, (str, os.PathLike)):
            self.name = "<stream>"
            self._raw: Stream = source
            self._owned = False
        elif os.fspath(source) == "-":
            self.name = "<stdin>"
            self._raw = _stdin()
            self._owned = False
        else:
            self.name = os.path.basename(os.fspath(source))
            self._raw = open(source, "rb")  # noqa: SIM115 - closed in close()
            self._owned = True
        self._wait_fd = _may_wait(self._raw)
        self.raw_read = 0
        self.buf = np.empty(2 * READ_BLOCK, np.uint8)
        self.filled = 0
        self.base = 0
        self.eof = False
        self.cut_short = False
        self.cut_reason = ""
        try:
            first = b""
            while len(first) < 2:  # an unbuffered read may return less
                self.wait()
                block = self._raw.read(2 - len(first))
                if not block:
                    break
                first += block
        except BaseException:
            self.close()
            raise
        self.raw_read += len(first)
        self.compressed = first == _GZIP_MAGIC
        self._stream: Any = _Chained(first, self._raw, self)
        if self.compressed:
            self._stream = _OneStep(gzip.GzipFile(fileobj=self._stream, mode="rb"))
        if wrap is not None:
            self._stream = wrap(self._stream)

    @property
    def end(self) -> int:
        """The offset just past the last byte read."""
        return self.base + self.filled

    def more(self, keep: int) -> bool:
        """Read another block, keeping the bytes from offset ``keep`` on (the ones before
        it may go). False at the end of the input. Raises :class:`CorruptStream`."""
        if self.eof:
            return False
        drop = min(keep, self.end) - self.base
        if drop > 0 and self.filled + READ_BLOCK > len(self.buf):
            self.buf[: self.filled - drop] = self.buf[drop : self.filled]
            self.filled -= drop
            self.base += drop
        if self.filled + READ_BLOCK > len(self.buf):
            grown = np.empty(2 * len(self.buf), np.uint8)
            grown[: self.filled] = self.buf[: self.filled]
            self.buf = grown
        try:
            n = self._stream.readinto(self.buf.data[self.filled : self.filled + READ_BLOCK])
        except EOFError as e:
            n = 0
            self.cut_short = True
            self.cut_reason = str(e)
        except (zlib.error, gzip.BadGzipFile, OSError) as e:
            if isinstance(e, OSError) and not isinstance(e, gzip.BadGzipFile) and e.errno is not None:
                raise
            raise CorruptStream(str(e)) from None
        if not n:
            self.eof = True
            return False
        self.filled += n
        return True

    def wait(self) -> None:
        """Before a read of the raw input: wait for data where a read could wait (see the module docstring)."""
        if self._wait_fd is not None:
            wait_readable(self._wait_fd)

    def close(self) -> None:
        if self._owned:
            self._raw.close()

    def __enter__(self) -> ByteInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stdin() -> Stream:
    """Standard input: its file descriptor, unbuffered, where it has one (else sys.stdin's
    buffer: a test runner's stand-in, say)."""
    try:
        fd = sys.stdin.buffer.fileno()
    except (AttributeError, OSError, ValueError):
        return cast(io.BufferedIOBase, sys.stdin.buffer)  # typed BinaryIO, which names no readinto
    return io.FileIO(fd, "rb", closefd=False)


def _may_wait(raw: Stream) -> int | None:
    """The file descriptor to wait on before reading ``raw``: an unbuffered input that is
    not a regular file (a pipe, a terminal, a socket); None for any other input."""
    if not isinstance(raw, io.FileIO):
        return None  # a buffered stream may hold data its descriptor no longer shows
    try:
        fd = raw.fileno()
        return None if stat.S_ISREG(os.fstat(fd).st_mode) else fd
    except (OSError, ValueError):
        return None


class _OneStep:
    """A gzip stream read one decompression step at a time (``readinto`` is its
    ``readinto1``): a stream cut short then loses no byte before the cut."""

    def __init__(self, stream: gzip.GzipFile) -> None:
        self._stream = stream

    def readinto(self, b: Any) -> int:
        return self._stream.readinto1(b)

    def close(self) -> None:
        self._stream.close()


class _Chained:
    """``first`` then the rest of ``raw``, counting the raw bytes read (gzip's input)."""

    def __init__(self, first: bytes, raw: Stream, owner: ByteInput) -> None:
        self._first = first
        self._raw = raw
        self._owner = owner

    def read(self, n: int = -1) -> bytes:
        if self._first:
            out, self._first = self._first, b""
            return out
        self._owner.wait()
        block = self._raw.read(n if n is not None and n >= 0 else READ_BLOCK) or b""
        self._owner.raw_read += len(block)
        return block

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._first:
            n = min(len(self._first), len(view))
            view[:n], self._first = self._first[:n], self._first[n:]
            return n
        self._owner.wait()
        n = self._raw.readinto(view) or 0
        self._owner.raw_read += n
        return n

    def seek(self, offset: int) -> int:
        """What a file object gzip reads from must have; never called, as gzip seeks only to rewind."""
        raise io.UnsupportedOperation("the input is read forwards only")
