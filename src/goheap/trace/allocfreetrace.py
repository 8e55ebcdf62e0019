"""Import the output of a Go program run with ``GODEBUG=allocfreetrace=1``.

The log format
--------------
With ``allocfreetrace=1`` the Go runtime (1.3 to 1.20) writes one event to standard
error for every heap allocation, every block freed by the sweeper, and every garbage
collection. Each event is written while the runtime holds its trace lock, so events never
interleave with each other (other output of the program may still appear between them)::

    tracealloc(0xc000024000, 0x10, *runtime.p)        <- address, size, type (optional)
    goroutine 1 [running]:                            <- goroutine header
    runtime.mallocgc(0x10, 0x48f5e0, 0x1)             <- frame: function(args)
    \t/usr/lib/go-1.19/src/runtime/malloc.go:1131 +0x7b1 fp=0x... sp=0x... pc=0x...
    main.bottomUp(0x0?)                               <- first non-runtime frame
    \t/tmp/gobt/main.go:14 +0x9b fp=0x... sp=0x... pc=0x...
    ...
                                                      <- blank line ends the event
    tracefree(0xc000102000, 0x8)                      <- address, size
    goroutine 0 [idle]:
    runtime.(*sweepLocked).sweep(0x0?, 0x0)
    \t/usr/lib/go-1.19/src/runtime/mgcsweep.go:577 +0x97e fp=...
    ...

    tracegc()                                         <- a garbage collection
                                                      <- then the stacks of all other
    goroutine 5 [garbage collection]:                    goroutines, separated by
    ...                                                  blank lines, up to
    end tracegc                                       <- this line
                                                      <- and a blank line

``tracealloc`` names the type only for allocations that contain pointers; an allocation
without a type is a no-pointer ("noscan") object. A type name is everything after the
second ``", "`` up to the final ``")"`` and may itself contain spaces, commas and
brackets (``map[string]int``, ``struct { a int; b *T }``). Stack frames come in pairs: a
function line (``pkg.func(args)``, ``pkg.(*T).method(...)`` for inlined frames) and a
tab-indented ``file:line`` line; a stack may also hold ``created by pkg.func`` and
``...additional frames elided...`` lines.

What is kept
------------
For every complete event: its kind, address, size, type (index into a string table, -1
when none was logged) and the *allocating function*, the first frame whose function is not
in package ``runtime`` (index into a second table, -1 when every frame is in the runtime).
Frees get a function too when their stack has a non-runtime frame: that is the function
whose allocation made the runtime sweep the freed block. GC points are kept as events of
kind ``gc`` with address, size, type and function all 0/-1. The result is a
:class:`~goheap.trace.tracefile.Trace`.

Robustness
----------
* Plain text and gzip input are told apart by the gzip magic bytes, not the file name.
  Bytes that are not valid UTF-8 are replaced (``errors='replace'``).
* Lines outside an event that do not start an event (program output) are ignored.
* A line that starts like an event (``tracealloc(``, ``tracefree(``, ``tracegc(``) but
  does not follow the grammar, an event line not followed by a goroutine header, or an
  event line inside another event's stack raises :class:`TraceFormatError` naming the file,
  the 1-based line and what was expected. Nothing is returned or written.
* A log that ends mid-event (an event line without its stack, a stack without its closing
  blank line, a GC without ``end tracegc``, a gzip stream cut short) keeps every complete
  event and warns with :class:`TraceTruncatedWarning`, naming the file and line.
* A log with no event at all raises :class:`TraceFormatError`.

Speed and memory
----------------
The parser reads line by line and only looks at a stack's function lines until the first
non-runtime frame; the rest of the stack is skipped with one comparison per line. Events
are buffered in compact typed arrays and moved to numpy chunks of :data:`CHUNK_EVENTS`
events, so memory grows with the number of events (25 bytes each), never with the size of
the log.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import warnings
import zlib
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from goheap.trace.tracefile import (
    COLUMNS,
    KIND_ALLOC,
    KIND_FREE,
    KIND_GC,
    Trace,
    TraceFormatError,
    TraceTruncatedWarning,
)

__all__ = [
    "CHUNK_EVENTS",
    "TraceFormatError",
    "TraceTruncatedWarning",
    "import_log",
    "open_log",
    "parse_lines",
]

#: Events per numpy chunk while importing.
CHUNK_EVENTS = 1 << 20
#: The progress callback is called about every this many events (and once at the end).
PROGRESS_EVERY = 4096

_GZIP_MAGIC = b"\x1f\x8b"
_HEX = r"0[xX][0-9a-fA-F]+"
_ALLOC_RE = re.compile(rf"tracealloc\(({_HEX}), ({_HEX})(?:, (.+))?\)[ \t\r\n]*\Z", re.S)
_FREE_RE = re.compile(rf"tracefree\(({_HEX}), ({_HEX})(?:, (.+))?\)[ \t\r\n]*\Z", re.S)
_GC_RE = re.compile(r"tracegc\(\)[ \t\r\n]*\Z")
_EVENT_PREFIXES = ("tracealloc(", "tracefree(", "tracegc(")
_GRAMMAR = {
    "tracealloc(": ("tracealloc", "'tracealloc(0xADDR, 0xSIZE[, TYPE])'"),
    "tracefree(": ("tracefree", "'tracefree(0xADDR, 0xSIZE)'"),
    "tracegc(": ("tracegc", "'tracegc()'"),
}

ProgressCallback = Callable[[int], Any]


def _snippet(line: str, limit: int = 80) -> str:
    s = line.rstrip("\r\n")
    if len(s) > limit:
        s = s[: limit - 3] + "..."
    return repr(s)


class _Columns:
    """Chunked column storage: typed ``array.array`` buffers flushed to numpy chunks."""

    __slots__ = ("kind", "addr", "size", "type_id", "func_id", "chunks", "chunk_events")

    def __init__(self, chunk_events: int) -> None:
        self.chunk_events = chunk_events
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self._new_buffers()

    def _new_buffers(self) -> None:
        self.kind = array("B")
        self.addr = array("Q")
        self.size = array("Q")
        self.type_id = array("i")
        self.func_id = array("i")

    def flush(self) -> None:
        bufs = (self.kind, self.addr, self.size, self.type_id, self.func_id)
        if len(bufs[0]):
            self.chunks.append(
                tuple(
                    np.frombuffer(b, dtype=b.typecode).astype(dt)
                    for b, (_, dt) in zip(bufs, COLUMNS, strict=True)
                )
            )
        self._new_buffers()

    def finish(self) -> dict[str, np.ndarray]:
        self.flush()
        out = {}
        for i, (name, dtype) in enumerate(COLUMNS):
            parts = [c[i] for c in self.chunks]
            out[name] = np.concatenate(parts) if parts else np.empty(0, dtype)
        self.chunks = []
        for a in out.values():
            a.flags.writeable = False  # lets Trace take the arrays without copying
        return out


def parse_lines(
    lines: Iterable[str],
    *,
    source: str = "<log>",
    progress: Callable[[], Any] | None = None,
    chunk_events: int = CHUNK_EVENTS,
    _stacklevel: int = 2,
) -> Trace:
    """Parse allocfreetrace log lines (with their ``\\n``) into a :class:`Trace`.

    This is the streaming core of :func:`import_log`; ``lines`` can be any iterable of
    strings, e.g. an open text file. ``source`` names the log in messages and in the
    trace's metadata. ``progress``, if given, is called with no argument about every
    :data:`PROGRESS_EVERY` events. Raises :class:`TraceFormatError`; warns
    :class:`TraceTruncatedWarning` (see the module docstring). An ``EOFError`` raised by
    ``lines`` (a gzip stream cut short) counts as truncation.
    """
    cols = _Columns(chunk_events)
    type_ids: dict[str, int] = {}
    func_ids: dict[str, int] = {}
    # Bound methods and constants as locals: this loop runs once per log line.
    k_append, a_append, s_append = cols.kind.append, cols.addr.append, cols.size.append
    t_append, f_append = cols.type_id.append, cols.func_id.append
    alloc_match, free_match, gc_match = _ALLOC_RE.match, _FREE_RE.match, _GC_RE.match
    prefixes = _EVENT_PREFIXES
    n_events = 0
    n_in_chunk = 0
    lineno = 0
    truncated_at: int | None = None  # line of the incomplete event, if any
    truncated_why = ""

    def malformed(n: int, line: str) -> TraceFormatError:
        for prefix, (what, grammar) in _GRAMMAR.items():
            if line.startswith(prefix):
                break
        return TraceFormatError(
            f"{source}:{n}: malformed {what} line: expected {grammar}, got {_snippet(line)}"
        )

    def nested(n: int, line: str, start: int, expected: str) -> TraceFormatError:
        return TraceFormatError(
            f"{source}:{n}: unexpected event line inside the event that starts at line "
            f"{start}: expected {expected}, got {_snippet(line)}"
        )

    it = enumerate(lines, 1)
    try:
        for lineno, line in it:
            if line[0] != "t" or not line.startswith(prefixes):
                continue  # blank line or program output between events
            start = lineno
            # ---- the event line --------------------------------------------------------
            if line.startswith("tracegc("):
                if gc_match(line) is None:
                    if not line.endswith("\n"):  # last line of the file, cut short
                        truncated_at, truncated_why = lineno, "in the middle of a tracegc line"
                        break
                    raise malformed(lineno, line)
                # A GC: skip the other goroutines' stacks up to "end tracegc".
                for lineno, line in it:
                    c = line[0]
                    if c == "e" and line.startswith("end tracegc"):
                        break
                    if c == "t" and line.startswith(prefixes):
                        raise nested(lineno, line, start, "'end tracegc'")
                else:
                    truncated_at, truncated_why = start, "in the tracegc event"
                    break
                k_append(KIND_GC)
                a_append(0)
                s_append(0)
                t_append(-1)
                f_append(-1)
            else:
                if line[5] == "a":
                    kind = KIND_ALLOC
                    m = alloc_match(line)
                else:
                    kind = KIND_FREE
                    m = free_match(line)
                if m is None:
                    if not line.endswith("\n"):
                        truncated_at, truncated_why = lineno, "in the middle of an event line"
                        break
                    raise malformed(lineno, line)
                addr = int(m[1], 16)
                size = int(m[2], 16)
                tname = m[3]
                # ---- the goroutine header ----------------------------------------------
                for lineno, line in it:
                    break
                else:
                    truncated_at, truncated_why = start, "after an event line, before its stack"
                    break
                if not line.startswith("goroutine "):
                    if not line.endswith("\n") and "goroutine ".startswith(line):
                        truncated_at, truncated_why = start, "in the goroutine header"
                        break
                    raise TraceFormatError(
                        f"{source}:{lineno}: expected a goroutine header "
                        f"'goroutine N [status]:' after the event line {start}, "
                        f"got {_snippet(line)}"
                    )
                # ---- the stack: find the first non-runtime function --------------------
                fname = None
                complete = False
                for lineno, line in it:
                    c = line[0]
                    if c == "\t":
                        continue  # file:line of a frame
                    if c == "\n":
                        complete = True  # a stack of runtime frames only
                        break
                    if c == "r" and line.startswith("runtime."):
                        continue
                    if c == "c" and line.startswith("created by "):
                        continue
                    if c == "t" and line.startswith(prefixes):
                        raise nested(lineno, line, start, "a stack frame or a blank line")
                    p = line.rfind("(")
                    if p <= 0:
                        continue  # "...additional frames elided..." or stray output
                    if not line.endswith("\n"):
                        break  # cut short at the end of the file
                    fname = line[:p]
                    # Skip the rest of the stack.
                    for lineno, line in it:
                        if line == "\n":
                            complete = True
                            break
                        if line[0] == "t" and line.startswith(prefixes):
                            raise nested(lineno, line, start, "a stack frame or a blank line")
                    break
                if not complete:
                    truncated_at, truncated_why = start, "in the event's stack"
                    break
                # Complete: only now enter its strings in the tables.
                if tname is None:
                    tid = -1
                else:
                    tid = type_ids.get(tname)
                    if tid is None:
                        tid = type_ids[tname] = len(type_ids)
                if fname is None:
                    fid = -1
                else:
                    fid = func_ids.get(fname)
                    if fid is None:
                        fid = func_ids[fname] = len(func_ids)
                k_append(kind)
                a_append(addr)
                s_append(size)
                t_append(tid)
                f_append(fid)
            # ---- bookkeeping per complete event ---------------------------------------
            n_events += 1
            n_in_chunk += 1
            if n_in_chunk == chunk_events:
                cols.flush()
                k_append, a_append, s_append = cols.kind.append, cols.addr.append, cols.size.append
                t_append, f_append = cols.type_id.append, cols.func_id.append
                n_in_chunk = 0
            if progress is not None and n_events % PROGRESS_EVERY == 0:
                progress()
    except EOFError as e:
        truncated_at = lineno + 1
        truncated_why = f"in a compressed stream cut short ({e})"
    except (zlib.error, gzip.BadGzipFile) as e:
        raise TraceFormatError(f"{source}:{lineno + 1}: corrupt gzip stream: {e}") from None

    if n_events == 0:
        cut = (
            f"; the log ends mid-event at line {truncated_at} ({truncated_why})"
            if truncated_at is not None
            else ""
        )
        raise TraceFormatError(
            f"{source}: no allocfreetrace events found in {lineno:,} lines "
            "(expected lines like 'tracealloc(0xADDR, 0xSIZE[, TYPE])'; was the program "
            f"run with GODEBUG=allocfreetrace=1 and its stderr captured?){cut}"
        )
    if truncated_at is not None:
        warnings.warn(
            f"{source}:{truncated_at}: log truncated {truncated_why}; imported the "
            f"{n_events:,} complete events before it",
            TraceTruncatedWarning,
            stacklevel=_stacklevel,
        )
    if progress is not None:
        progress()
    columns = cols.finish()
    meta = {
        "source": source,
        "log_lines": lineno,
        "truncated": truncated_at is not None,
    }
    return Trace(
        **columns,
        types=tuple(type_ids),
        funcs=tuple(func_ids),
        meta=meta,
    )


class _LogFile:
    """An open log: text lines plus byte positions for progress and speed figures."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            magic = self.raw.read(2)
            self.raw.seek(0)
            self.compressed = magic == _GZIP_MAGIC
            self.binary: IO[bytes] = (
                gzip.GzipFile(fileobj=self.raw, mode="rb") if self.compressed else self.raw
            )
            self.text = io.TextIOWrapper(
                self.binary, encoding="utf-8", errors="replace", newline=None
            )
        except BaseException:
            self.raw.close()
            raise

    def raw_pos(self) -> int:
        """Bytes of the file read so far (compressed bytes for a gzip file)."""
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def log_pos(self) -> int:
        """Bytes of (uncompressed) log read so far."""
        try:
            return self.binary.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        try:
            self.text.close()
        finally:
            self.raw.close()

    def __enter__(self) -> _LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_log(path: str | os.PathLike[str]) -> IO[str]:
    """Open a log for reading as text, decompressing it if it starts with gzip magic.

    Opened exactly as :func:`import_log` reads it (UTF-8, ``errors='replace'``, universal
    newlines); closing the returned file closes everything.
    """
    with open(path, "rb") as f:
        compressed = f.read(2) == _GZIP_MAGIC
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=None)
    return open(path, encoding="utf-8", errors="replace", newline=None)  # noqa: SIM115


def import_log(
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> Trace:
    """Import an allocfreetrace log (plain text or gzip) into a :class:`Trace`.

    ``progress``, if given, is called with the number of bytes of the file read so far
    (compressed bytes for a gzip file, so compare with ``os.path.getsize(path)``) every
    few thousand events and once at the end. The trace's ``meta`` records the file's name
    (``source``), the uncompressed size of the log (``log_bytes``) and its line count.

    Raises :class:`TraceFormatError` for a malformed or empty log and ``OSError`` if the
    file cannot be read; warns :class:`TraceTruncatedWarning` for a log cut short.
    """
    path = Path(path)
    with _LogFile(path) as log:
        tick = None
        if progress is not None:
            raw_pos = log.raw_pos

            def tick() -> None:
                progress(raw_pos())

        trace = parse_lines(
            log.text,
            source=path.name,
            progress=tick,
            chunk_events=chunk_events,
            _stacklevel=3,
        )
        log_bytes = log.log_pos()
    meta = dict(trace.meta)
    meta["log_bytes"] = log_bytes
    meta["compressed"] = log.compressed
    return Trace(
        kind=trace.kind,
        addr=trace.addr,
        size=trace.size,
        type_id=trace.type_id,
        func_id=trace.func_id,
        types=trace.types,
        funcs=trace.funcs,
        meta=meta,
    )
