"""Import the output of a Go program run with ``GODEBUG=allocfreetrace=1``.

The log format
--------------
With ``allocfreetrace=1`` the Go runtime (1.3 to 1.21) writes one event to standard
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
when none was logged), its whole stack (index into a table of distinct stacks, each a list
of ``(function, file, line)`` frames with the allocator's own frames at the top, such as
``runtime.mallocgc`` and ``runtime.newobject``, dropped: a replay's heap profile charges
the stack, as Go's heap profiles do) and the *allocating function*, the first frame whose
function is not in package ``runtime`` (index into a second table, -1 when every frame is
in the runtime).
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
The parser reads line by line; a stack is looked up by its function names and code
positions (a tuple of strings) and parsed into frames only the first time it is seen. Events
are buffered in compact typed arrays of at most :data:`CHUNK_EVENTS` events. Memory never
grows with the size of the log: :func:`import_log` keeps 25 bytes per event (the
:class:`Trace` it returns), and :func:`import_log_to_file` (what ``goheap trace import``
runs) not even that: it spills each full chunk to temporary column files beside the output
and streams them into the trace file at the end, so its peak memory is one chunk plus the
string tables, whatever the length of the log.

The log can be a file, a pipe or ``"-"`` (standard input): gzip is recognised by peeking
at the first bytes, never by seeking.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import re
import sys
import tempfile
import warnings
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np

from goheap.trace.tracefile import (
    COLUMNS,
    FORMAT_NAME,
    FORMAT_VERSION,
    KIND_ALLOC,
    KIND_FREE,
    KIND_GC,
    KIND_NAMES,
    Trace,
    TraceFormatError,
    TraceTruncatedWarning,
    summary_text,
    write_trace_file,
)

__all__ = [
    "CHUNK_EVENTS",
    "ImportResult",
    "TraceFormatError",
    "TraceTruncatedWarning",
    "import_log",
    "import_log_to_file",
    "open_log",
    "parse_lines",
]

#: Events per numpy chunk while importing.
CHUNK_EVENTS = 1 << 18
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


#: The columns a log fills: the trace file's required ones and each event's stack.
_LOG_COLUMNS = (*COLUMNS, ("stack_id", np.dtype("<i4")))

#: Frames at the top of an allocation's stack that are the allocator itself, not its caller:
#: Go's heap profiles start at the function that asked for memory, and so does goheap's.
_ALLOCATOR_FRAMES = frozenset(
    "runtime." + f
    for f in "mallocgc newobject newarray makeslice makeslicecopy growslice makemap makemap_small "
    "makechan rawstring rawstringtmp rawbyteslice rawruneslice mallocgcTiny mallocgcSmallNoscan "
    "mallocgcSmallScanNoHeader mallocgcSmallScanHeader mallocgcLarge profilealloc".split()
)


class _StackTable:
    """The distinct stacks of a log as frames (function, file, line), deduplicated.

    A stack is keyed by its function names and ``file:line +0xPC`` lines (the arguments,
    frame and stack pointers that differ between calls from one place are left out).
    """

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {}
        self.func_of: list[str | None] = []  # each stack's first non-runtime function
        self.frame_ids: dict[tuple[str, str, int], int] = {}
        self.frames: list[tuple[str, str, int]] = []
        self.stack_frames: list[int] = []
        self.offsets: list[int] = [0]

    def add(self, key: tuple[str, ...]) -> int:
        """The id of the stack ``key`` (alternately a function and its ``file:line`` line)."""
        frames = []
        for i in range(0, len(key) - 1, 2):
            where = key[i + 1].split(" ", 1)[0]
            file, _, line = where.rpartition(":")
            frames.append((key[i], file, int(line) if line.isdigit() else 0))
        self.func_of.append(next((f for f, _, _ in frames if not f.startswith("runtime.")), None))
        top = 0
        while top < len(frames) - 1 and frames[top][0] in _ALLOCATOR_FRAMES:
            top += 1
        for frame in frames[top:]:
            fid = self.frame_ids.get(frame)
            if fid is None:
                fid = self.frame_ids[frame] = len(self.frames)
                self.frames.append(frame)
            self.stack_frames.append(fid)
        self.offsets.append(len(self.stack_frames))
        sid = self.ids[key] = len(self.ids)
        return sid

    def tables(self) -> dict[str, Any]:
        """The stack table as :class:`Trace` fields."""
        return {
            "frames": tuple(self.frames),
            "stack_frames": np.array(self.stack_frames, np.int32),
            "stack_offsets": np.array(self.offsets, np.int64),
        }


class _Columns:
    """Chunked column storage: typed ``array.array`` buffers flushed to numpy chunks.

    With ``spill_dir`` each flushed chunk is appended to one file per column in that
    directory instead of being kept, and only running totals stay in memory.
    """

    __slots__ = (
        "kind", "addr", "size", "type_id", "func_id", "stack_id", "chunks", "chunk_events",
        "spill_files", "n_events", "counts", "nbytes",
    )

    def __init__(self, chunk_events: int, spill_dir: str | None = None) -> None:
        self.chunk_events = chunk_events
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.spill_files: dict[str, IO[bytes]] | None = None
        if spill_dir is not None:
            self.spill_files = {
                name: open(os.path.join(spill_dir, f"{name}.bin"), "w+b")  # noqa: SIM115
                for name, _ in _LOG_COLUMNS
            }
        self.n_events = 0
        self.counts = np.zeros(len(KIND_NAMES), np.int64)
        self.nbytes = [0, 0]  # alloc, free (Python ints: sums can pass 2**64)
        self._new_buffers()

    def _new_buffers(self) -> None:
        self.kind = array("B")
        self.addr = array("Q")
        self.size = array("Q")
        self.type_id = array("i")
        self.func_id = array("i")
        self.stack_id = array("i")

    def flush(self) -> None:
        bufs = (self.kind, self.addr, self.size, self.type_id, self.func_id, self.stack_id)
        if len(bufs[0]):
            chunk = tuple(
                np.frombuffer(b, dtype=b.typecode).astype(dt)
                for b, (_, dt) in zip(bufs, _LOG_COLUMNS, strict=True)
            )
            self.n_events += len(chunk[0])
            if self.spill_files is None:
                self.chunks.append(chunk)
            else:
                kind, size = chunk[0], chunk[2]
                self.counts += np.bincount(kind, minlength=len(KIND_NAMES))
                for k in (KIND_ALLOC, KIND_FREE):
                    self.nbytes[k] += int(size[kind == k].sum(dtype=np.uint64))
                for (name, _), a in zip(_LOG_COLUMNS, chunk, strict=True):
                    self.spill_files[name].write(memoryview(a))
        self._new_buffers()

    def finish(self) -> dict[str, np.ndarray]:
        """All events as numpy columns (in-memory storage only)."""
        self.flush()
        out = {}
        for i, (name, dtype) in enumerate(_LOG_COLUMNS):
            parts = [c[i] for c in self.chunks]
            out[name] = np.concatenate(parts) if parts else np.empty(0, dtype)
        self.chunks = []
        for a in out.values():
            a.flags.writeable = False  # lets Trace take the arrays without copying
        return out

    def spilled(self, block_bytes: int = 1 << 20) -> dict[str, tuple[int, Iterable[bytes]]]:
        """Each spilled column as ``(rows, blocks)`` for :func:`write_trace_file`."""
        self.flush()
        assert self.spill_files is not None

        def blocks(f: IO[bytes]) -> Iterable[bytes]:
            f.seek(0)
            while block := f.read(block_bytes):
                yield block

        return {name: (self.n_events, blocks(f)) for name, f in self.spill_files.items()}

    def close(self) -> None:
        for f in (self.spill_files or {}).values():
            f.close()


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
    stacks = _StackTable()
    types, funcs, meta = _parse_into(
        cols, lines, stacks, source=source, progress=progress, stacklevel=_stacklevel + 1
    )
    return Trace(**cols.finish(), types=types, funcs=funcs, meta=meta, **stacks.tables())


def _parse_into(
    cols: _Columns,
    lines: Iterable[str],
    stacks: _StackTable,
    *,
    source: str,
    progress: Callable[[], Any] | None,
    stacklevel: int,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """Parse ``lines`` into ``cols``; return the type and function tables and the meta."""
    type_ids: dict[str, int] = {}
    func_ids: dict[str, int] = {}
    # Bound methods and constants as locals: this loop runs once per log line.
    k_append, a_append, s_append = cols.kind.append, cols.addr.append, cols.size.append
    t_append, f_append, st_append = cols.type_id.append, cols.func_id.append, cols.stack_id.append
    stack_ids, add_stack, func_of = stacks.ids, stacks.add, stacks.func_of
    alloc_match, free_match, gc_match = _ALLOC_RE.match, _FREE_RE.match, _GC_RE.match
    prefixes = _EVENT_PREFIXES
    chunk_size = cols.chunk_events
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
                st_append(-1)
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
                # ---- the stack: its functions and their file:line lines -----------------
                key: list[str] = []
                complete = False
                skip_file = False  # the file line of a "created by" frame
                for lineno, line in it:
                    c = line[0]
                    if c == "\t":
                        if skip_file:
                            skip_file = False
                        elif len(key) % 2:  # the file:line (+0xPC) of the last function
                            key.append(line[1 : line.find(" fp=")] if " fp=" in line else line[1:].rstrip())
                        continue
                    if c == "\n":
                        complete = True
                        break
                    if c == "c" and line.startswith("created by "):
                        skip_file = True
                        continue
                    if c == "t" and line.startswith(prefixes):
                        raise nested(lineno, line, start, "a stack frame or a blank line")
                    p = line.rfind("(")
                    if p <= 0:
                        continue  # "...additional frames elided..." or stray output
                    if not line.endswith("\n"):
                        break  # cut short at the end of the file
                    if len(key) % 2:
                        key.append("")  # a function whose file line is missing
                    key.append(line[:p])
                if not complete:
                    truncated_at, truncated_why = start, "in the event's stack"
                    break
                if len(key) % 2:
                    key.append("")
                stack_key = tuple(key)
                sid = stack_ids.get(stack_key)
                if sid is None:
                    sid = add_stack(stack_key)
                fname = func_of[sid]
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
                st_append(sid)
            # ---- bookkeeping per complete event ---------------------------------------
            n_events += 1
            n_in_chunk += 1
            if n_in_chunk == chunk_size:
                cols.flush()
                k_append, a_append, s_append = cols.kind.append, cols.addr.append, cols.size.append
                t_append, f_append, st_append = cols.type_id.append, cols.func_id.append, cols.stack_id.append
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
        where = "the log is empty" if lineno == 0 else f"in {lineno:,} lines"
        raise TraceFormatError(
            f"{source}: no allocfreetrace events found: {where} "
            "(expected lines like 'tracealloc(0xADDR, 0xSIZE[, TYPE])'; was the program "
            f"run with GODEBUG=allocfreetrace=1 and its stderr captured?){cut}"
        )
    if truncated_at is not None:
        warnings.warn(
            f"{source}:{truncated_at}: log truncated {truncated_why}; imported the "
            f"{n_events:,} complete events before it",
            TraceTruncatedWarning,
            stacklevel=stacklevel,
        )
    if progress is not None:
        progress()
    cols.flush()
    meta = {
        "source": source,
        "source_format": "allocfreetrace",
        "log_lines": lineno,
        "truncated": truncated_at is not None,
    }
    return tuple(type_ids), tuple(func_ids), meta


class _CountingReader(io.RawIOBase):
    """A raw binary stream over ``f`` that counts the bytes read through it."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return n  # type: ignore[no-any-return]


class _LogFile:
    """An open log (a path, or ``"-"`` for standard input): text lines plus byte counts.

    The input is only ever read forwards, so pipes and FIFOs work; gzip is detected by
    peeking at the first two bytes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if os.fspath(path) == "-":
            self._file: IO[bytes] = sys.stdin.buffer
            self._owned = False
        else:
            self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            self._owned = True
        try:
            self._counter = _CountingReader(self._file)
            self._buffered = io.BufferedReader(self._counter, 1 << 16)
            self.compressed = self._buffered.peek(2)[:2] == _GZIP_MAGIC
            self._gzip = (
                gzip.GzipFile(fileobj=self._buffered, mode="rb") if self.compressed else None
            )
            self.text = io.TextIOWrapper(
                self._gzip or self._buffered, encoding="utf-8", errors="replace", newline=None
            )
        except BaseException:
            self.close()
            raise

    def raw_pos(self) -> int:
        """Bytes of the file read so far (compressed bytes for a gzip file)."""
        return self._counter.count

    def log_pos(self) -> int:
        """Bytes of (uncompressed) log read so far; exact once the log has been read."""
        if self._gzip is not None:
            try:
                return self._gzip.tell()
            except (OSError, ValueError):
                return 0
        return self._counter.count - len(self._buffered.peek(0)) if not self._buffered.closed else 0

    def close(self) -> None:
        try:
            text = getattr(self, "text", None)
            if text is not None:
                text.detach()  # leave closing to us: stdin must stay open
        except ValueError:
            pass
        finally:
            if self._owned:
                self._file.close()

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


def _source_name(path: str | os.PathLike[str]) -> str:
    return "<stdin>" if os.fspath(path) == "-" else Path(path).name


def import_log(
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> Trace:
    """Import an allocfreetrace log (plain text or gzip) into a :class:`Trace`.

    ``path`` is a file (or pipe), or ``"-"`` for standard input. ``progress``, if given,
    is called with the number of bytes of the file read so far (compressed bytes for a
    gzip file, so compare with ``os.path.getsize(path)``) every few thousand events and
    once at the end. The trace's ``meta`` records the file's name (``source``), the
    uncompressed size of the log (``log_bytes``) and its line count.

    Raises :class:`TraceFormatError` for a malformed or empty log and ``OSError`` if the
    file cannot be read; warns :class:`TraceTruncatedWarning` for a log cut short.
    """
    with _LogFile(path) as log:
        tick = _ticker(log, progress)
        trace = parse_lines(
            log.text,
            source=_source_name(path),
            progress=tick,
            chunk_events=chunk_events,
            _stacklevel=3,
        )
        meta = dict(trace.meta)
        meta["log_bytes"] = log.log_pos()
        meta["compressed"] = log.compressed
    return dataclasses.replace(trace, meta=meta)


def _ticker(log: _LogFile, progress: ProgressCallback | None) -> Callable[[], Any] | None:
    if progress is None:
        return None
    raw_pos = log.raw_pos

    def tick() -> None:
        progress(raw_pos())

    return tick


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_log_to_file` wrote: the file, its meta and its totals."""

    path: Path
    meta: Mapping[str, Any]
    bytes_by_kind: Mapping[str, int]
    n_types: int
    n_funcs: int

    def summary(self) -> str:
        """The same text as :meth:`Trace.summary` of the trace written."""
        return summary_text(self.meta, self.bytes_by_kind, self.n_types, self.n_funcs)


def import_log_to_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> ImportResult:
    """Import an allocfreetrace log straight into the trace file ``out``, in bounded memory.

    The same import as :func:`import_log` followed by :meth:`Trace.save`, byte for byte
    the same file, but the events are never all in memory: full chunks of
    ``chunk_events`` events are spilled to a temporary directory beside ``out`` and
    streamed into the trace file at the end. Peak memory is therefore one chunk (25
    bytes an event) plus the type and function tables, however long the log.

    Errors as :func:`import_log`; on any error (a malformed log included) nothing is
    written: ``out`` is left as it was and the temporary files are removed.
    """
    out = Path(out)
    directory = out.parent if str(out.parent) else Path(".")
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".import", dir=directory) as spill:
        cols = _Columns(chunk_events, spill_dir=spill)
        try:
            stacks = _StackTable()
            with _LogFile(path) as log:
                types, funcs, meta = _parse_into(
                    cols,
                    log.text,
                    stacks,
                    source=_source_name(path),
                    progress=_ticker(log, progress),
                    stacklevel=3,
                )
                meta["log_bytes"] = log.log_pos()
                meta["compressed"] = log.compressed
            columns = cols.spilled()
            meta["events"] = cols.n_events
            meta["counts"] = {name: int(cols.counts[i]) for i, name in enumerate(KIND_NAMES)}
            tables = stacks.tables()
            for name in ("stack_frames", "stack_offsets"):
                columns[name] = (len(tables[name]), [tables[name].tobytes()])
            write_trace_file(out, columns, types, funcs, meta, frames=tables["frames"])
        finally:
            cols.close()
    full_meta = dict(meta)
    full_meta.setdefault("format", FORMAT_NAME)
    full_meta.setdefault("version", FORMAT_VERSION)
    nbytes = {"alloc": cols.nbytes[KIND_ALLOC], "free": cols.nbytes[KIND_FREE]}
    return ImportResult(out, MappingProxyType(full_meta), nbytes, len(types), len(funcs))
