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
A compiled scanner (:mod:`goheap.trace.logscan`) reads the log's bytes (Python's text mode
rules: UTF-8 with bad bytes replaced, ``\n``, ``\r\n`` or ``\r`` ending a line) and
writes each event's kind, address and size and two keys, one for its type's name and one
for its stack (each function and code position, the arguments and frame pointers that
differ between calls from one place left out), each key entered once in a table of
distinct keys. Python turns each new key into strings, and a stack into frames, once: a log
of millions of events has a few thousand distinct stacks. Events are written in chunks of
at most :data:`CHUNK_EVENTS`. Memory never grows with the size of the log: :func:`import_log`
keeps 26 bytes per event (the :class:`Trace` it returns), and :func:`import_log_to_file`
(what ``goheap trace import`` runs) not even that: it spills each full chunk to temporary
column files beside the output and streams them into the trace file at the end, so its
peak memory is one chunk, one event's bytes and the string tables, whatever the length of
the log. An event held whole must fit in :data:`MAX_EVENT_BYTES`.

The log can be a file, a pipe or ``"-"`` (standard input): gzip is recognised by its
first bytes, never by seeking.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

import numpy as np

from goheap.trace.bounded import LineGuard
from goheap.trace.byteinput import ByteInput, CorruptStream
from goheap.trace.tracefile import (
    COLUMNS,
    FORMAT_NAME,
    FORMAT_VERSION,
    KIND_ALLOC,
    KIND_FREE,
    KIND_NAMES,
    Trace,
    TraceFormatError,
    TraceTruncatedWarning,
    kind_counts,
    summary_text,
    write_trace_file,
)

__all__ = [
    "CHUNK_EVENTS",
    "ImportResult",
    "MAX_EVENT_BYTES",
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
        self._frame_of: dict[tuple[str, str], int] = {}  # (function, file line's text) -> frame id

    def add(self, key: tuple[str, ...]) -> int:
        """The id of the stack ``key`` (alternately a function and its ``file:line`` line)."""
        funcs = key[0::2]
        top = 0
        while top < len(funcs) - 1 and funcs[top] in _ALLOCATOR_FRAMES:
            top += 1
        fids = []
        for frame in zip(funcs[top:], key[2 * top + 1 :: 2]):
            fid = self._frame_of.get(frame)
            if fid is None:
                file, _, line = frame[1].split(" ", 1)[0].rpartition(":")
                parsed = (frame[0], file, int(line) if line.isdecimal() else 0)
                fid = self.frame_ids.get(parsed)
                if fid is None:
                    fid = self.frame_ids[parsed] = len(self.frames)
                    self.frames.append(parsed)
                self._frame_of[frame] = fid
            fids.append(fid)
        self.func_of.append(next((f for f in funcs if not f.startswith("runtime.")), None))
        self.stack_frames.extend(fids)
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
    """The events' columns, a chunk of at most ``chunk_events`` at a time: :attr:`out` are
    the arrays the scanner fills (kind, address, size, type key, stack key); each full
    chunk becomes the trace's columns (keys turned into ids) and is kept, or with
    ``spill_dir`` appended to one file per column there, only running totals staying in
    memory.
    """

    def __init__(self, chunk_events: int, spill_dir: str | None = None) -> None:
        self.chunk_events = chunk_events
        self.out = (
            np.empty(chunk_events, np.uint8),
            np.empty(chunk_events, np.uint64),
            np.empty(chunk_events, np.uint64),
            np.empty(chunk_events, np.int32),
            np.empty(chunk_events, np.int32),
        )
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.spill_files: dict[str, IO[bytes]] | None = None
        if spill_dir is not None:
            self.spill_files = {}
            for name, _ in _LOG_COLUMNS:
                self.spill_files[name] = open(os.path.join(spill_dir, f"{name}.bin"), "w+b")  # noqa: SIM115
        self.n_events = 0
        self.counts = np.zeros(len(KIND_NAMES), np.int64)
        self.nbytes = [0, 0]  # alloc, free (Python ints: sums can pass 2**64)
        self.sizes: tuple[int, int] | None = None  # the least and greatest size spilled

    def flush(self, n: int, ids: _Ids) -> None:
        """The first ``n`` events of :attr:`out` become a chunk of the trace's columns."""
        if not n:
            return
        kind, addr, size, type_key, stack_key = (a[:n] for a in self.out)
        stack_id = ids.stack_of_key()[stack_key]
        chunk = (
            kind.copy(),
            addr.copy(),
            size.copy(),
            ids.type_of_key()[type_key],
            ids.func_of_stack()[stack_id],
            stack_id,
        )
        self.n_events += n
        if self.spill_files is None:
            self.chunks.append(chunk)
        else:
            self.counts += kind_counts(kind)
            for k in (KIND_ALLOC, KIND_FREE):
                self.nbytes[k] += int(size[kind == k].sum(dtype=np.uint64))
            low, high = int(size.min()), int(size.max())
            self.sizes = (low, high) if self.sizes is None else (min(low, self.sizes[0]), max(high, self.sizes[1]))
            for (name, _), a in zip(_LOG_COLUMNS, chunk, strict=True):
                self.spill_files[name].write(memoryview(a))

    def finish(self) -> dict[str, np.ndarray]:
        """All events as numpy columns (in-memory storage only)."""
        out = {}
        for i, (name, dtype) in enumerate(_LOG_COLUMNS):
            parts = [c[i] for c in self.chunks]
            out[name] = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty(0, dtype)
        self.chunks = []
        for a in out.values():
            a.flags.writeable = False  # lets Trace take the arrays without copying
        return out

    def spilled(self, block_bytes: int = 1 << 20) -> dict[str, tuple[int, Iterable[bytes]]]:
        """Each spilled column as ``(rows, blocks)`` for :func:`write_trace_file`."""
        assert self.spill_files is not None

        def blocks(f: IO[bytes]) -> Iterable[bytes]:
            f.seek(0)
            while block := f.read(block_bytes):
                yield block

        return {name: (self.n_events, blocks(f)) for name, f in self.spill_files.items()}

    def close(self) -> None:
        for f in (self.spill_files or {}).values():
            f.close()


class _Ids:
    """What the scanner's keys stand for: the type, stack and function tables of the trace.

    Each key the scanner enters (:mod:`goheap.trace.logscan`) is turned into strings once,
    in the order the keys were entered, which is the order their events completed, so the
    tables keep the order of first appearance. Two keys whose strings come out equal share
    one id.
    """

    def __init__(self, stacks: _StackTable) -> None:
        self.stacks = stacks
        self.type_ids: dict[str, int] = {}
        self.func_ids: dict[str, int] = {}
        self._key_type: list[int] = []  # per key: its type id, or -1
        self._key_stack: list[int] = []  # per key: its stack id, or -1
        self._stack_func: list[int] = []  # per stack: its function id, or -1
        self._arrays: tuple[np.ndarray, ...] | None = None
        self._segments: list[str] = []  # each stack segment's string (see logscan)

    def add_keys(self, keys: tuple, n_keys: int, segs: tuple, n_segs: int) -> None:
        """Turn the keys (and stack segments) entered since the last call into ids."""
        ls = _logscan()
        pool, off, length, _ = segs
        for k in range(len(self._segments), n_segs):
            segment = pool[off[k] : off[k] + length[k]].tobytes()
            text = segment[1:].decode("utf-8", errors="replace")
            self._segments.append(text.rstrip() if segment[0] == ls.SEG_FILE_LINE else text)
        pool, key_off, key_len, _ = keys
        for k in range(len(self._key_type), n_keys):
            key = pool[key_off[k] : key_off[k] + key_len[k]].tobytes()
            if key[0] == ls.KEY_TYPE:
                name = key[1:].decode("utf-8", errors="replace")
                tid = self.type_ids.get(name)
                if tid is None:
                    tid = self.type_ids[name] = len(self.type_ids)
                self._key_type.append(tid)
                self._key_stack.append(-1)
                continue
            strings = tuple(map(self._segments.__getitem__, np.frombuffer(key, "<i4", offset=1).tolist()))
            sid = self.stacks.ids.get(strings)
            if sid is None:
                sid = self.stacks.add(strings)
                fname = self.stacks.func_of[sid]
                fid = -1
                if fname is not None:
                    fid = self.func_ids.setdefault(fname, len(self.func_ids))
                self._stack_func.append(fid)
            self._key_type.append(-1)
            self._key_stack.append(sid)
        self._arrays = None

    def _lookups(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:  # each with -1 at the end, where a key of -1 lands
            self._arrays = tuple(np.array([*v, -1], np.int32) for v in (self._key_type, self._key_stack, self._stack_func))
        return self._arrays

    def type_of_key(self) -> np.ndarray:
        return self._lookups()[0]

    def stack_of_key(self) -> np.ndarray:
        return self._lookups()[1]

    def func_of_stack(self) -> np.ndarray:
        return self._lookups()[2]


def parse_lines(
    lines: Iterable[str],
    *,
    source: str = "<log>",
    progress: Callable[[], Any] | None = None,
    chunk_events: int = CHUNK_EVENTS,
    _stacklevel: int = 2,
) -> Trace:
    """Parse allocfreetrace log lines (each ending with its line break, as a text file
    gives them) into a :class:`Trace`.

    :func:`import_log` over an iterable of strings, e.g. an open text file: they are read
    as the lines of a log would be (a ``\r\n`` or ``\r`` is a line break). ``source``
    names the log in messages and in the trace's metadata. ``progress``, if given, is
    called with no argument about every :data:`PROGRESS_EVERY` events. Raises
    :class:`TraceFormatError`; warns :class:`TraceTruncatedWarning` (see the module
    docstring). An ``EOFError`` raised by ``lines`` (a gzip stream cut short) counts as
    truncation.
    """
    cols = _Columns(chunk_events)
    stacks = _StackTable()
    with ByteInput(_LinesStream(lines)) as log:
        types, funcs, meta = _scan(
            log, cols, stacks, source=source, progress=None if progress is None else (lambda _raw: progress()),
            stacklevel=_stacklevel + 1,
        )
    columns: dict[str, Any] = cols.finish()  # Trace's columns, by name
    return Trace(**columns, types=types, funcs=funcs, meta=meta, **stacks.tables())


class _LinesStream(io.RawIOBase):
    """The UTF-8 bytes of an iterable of strings, as a raw binary stream."""

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__()
        self._lines = iter(lines)
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        while not self._rest:
            line = next(self._lines, None)
            if line is None:
                return 0
            self._rest = line.encode("utf-8", errors="surrogatepass")
        n = min(len(view), len(self._rest))
        view[:n], self._rest = self._rest[:n], self._rest[n:]
        return n


#: An event the scanner must hold whole (its lines and stack) is at most this long.
MAX_EVENT_BYTES = 64 << 20

#: Where a truncated log was cut, by the scanner's CUT_* code name.
_CUTS = {
    "CUT_GC_LINE": "in the middle of a tracegc line",
    "CUT_GC": "in the tracegc event",
    "CUT_EVENT_LINE": "in the middle of an event line",
    "CUT_BEFORE_STACK": "after an event line, before its stack",
    "CUT_HEADER": "in the goroutine header",
    "CUT_STACK": "in the event's stack",
}


def _logscan():
    """The compiled scanner (numba): imported when a log is first read, so that the commands
    that read none (``goheap --help``, argument errors) do not load numba."""
    from goheap.trace import logscan

    return logscan


def _scan(
    log: ByteInput,
    cols: _Columns,
    stacks: _StackTable,
    *,
    source: str,
    progress: Callable[[int], Any] | None,
    stacklevel: int,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]:
    """Scan the log into ``cols``; return the type and function tables and the meta.

    ``progress(raw bytes read)`` is called about every :data:`PROGRESS_EVERY` events.
    """
    ls = _logscan()
    st = np.zeros(ls.N_STATE, np.int64)
    keys, segs = ls.new_keys(), ls.new_keys()
    ids = _Ids(stacks)
    since_progress = 0
    try:
        while True:
            events = int(st[ls.ST_EVENTS])
            stop_at = cols.chunk_events
            if progress is not None:
                stop_at = min(stop_at, events + PROGRESS_EVERY - since_progress)
            ls.scan_log(log.buf, log.filled, log.base, log.eof, st, *cols.out, stop_at, keys, segs)
            stop = int(st[ls.ST_STOP])
            ids.add_keys(keys, int(st[ls.ST_KEYS]), segs, int(st[ls.ST_SEGS]))
            since_progress += int(st[ls.ST_EVENTS]) - events
            if progress is not None and since_progress >= PROGRESS_EVERY:
                progress(log.raw_read)
                since_progress = 0
            if stop == ls.STOP_FULL:
                if st[ls.ST_EVENTS] == cols.chunk_events:
                    cols.flush(cols.chunk_events, ids)
                    st[ls.ST_EVENTS] = 0
            elif stop == ls.STOP_MORE:
                if log.end - st[ls.ST_POS] > MAX_EVENT_BYTES:
                    raise TraceFormatError(
                        f"{source}:{int(st[ls.ST_LINENO]) + 1}: an event (or a line) longer than "
                        f"{MAX_EVENT_BYTES >> 20} MiB starts here: not an allocfreetrace log"
                    )
                log.more(keep=int(st[ls.ST_POS]))
            elif stop == ls.STOP_KEYS:  # the table that is full, twice as large
                room = 2 * (log.end - int(st[ls.ST_POS]))
                if st[ls.ST_WHAT] == ls.FULL_KEYS:
                    keys = ls.grown_keys(keys, int(st[ls.ST_KEYS]), int(st[ls.ST_POOL]), room)
                else:
                    segs = ls.grown_keys(segs, int(st[ls.ST_SEGS]), int(st[ls.ST_SEG_POOL]), room)
            elif stop == ls.STOP_ERROR:
                raise _scan_error(log, st, source)
            else:
                break
    except CorruptStream as e:
        raise TraceFormatError(f"{source}:{int(st[ls.ST_LINENO]) + 1}: corrupt gzip stream: {e}") from None
    cols.flush(int(st[ls.ST_EVENTS]), ids)
    lineno = int(st[ls.ST_LINE])
    cut = int(st[ls.ST_WHAT])
    truncated_at: int | None = None
    truncated_why = ""
    if log.cut_short:
        truncated_at, truncated_why = lineno + 1, f"in a compressed stream cut short ({log.cut_reason})"
    elif cut != ls.CUT_NONE:
        at_line = cut in (ls.CUT_GC_LINE, ls.CUT_EVENT_LINE)
        truncated_at, truncated_why = (lineno if at_line else int(st[ls.ST_START])), next(why for name, why in _CUTS.items() if getattr(ls, name) == cut)
    if cols.n_events == 0:
        where = "the log is empty" if lineno == 0 else f"in {lineno:,} lines"
        raise TraceFormatError(
            f"{source}: no allocfreetrace events found: {where} "
            "(expected lines like 'tracealloc(0xADDR, 0xSIZE[, TYPE])'; was the program "
            "run with GODEBUG=allocfreetrace=1 and its stderr captured?)"
            + (f"; the log ends mid-event at line {truncated_at} ({truncated_why})" if truncated_at is not None else "")
        )
    if truncated_at is not None:
        warnings.warn(
            f"{source}:{truncated_at}: log truncated {truncated_why}; imported the "
            f"{cols.n_events:,} complete events before it",
            TraceTruncatedWarning,
            stacklevel=stacklevel,
        )
    if progress is not None:
        progress(log.raw_read)
    meta = {
        "source": source,
        "source_format": "allocfreetrace",
        "log_lines": lineno,
        "truncated": truncated_at is not None,
    }
    return tuple(ids.type_ids), tuple(ids.func_ids), meta


def _scan_error(log: ByteInput, st: np.ndarray, source: str) -> TraceFormatError:
    """The error the scanner stopped at, naming the line and quoting it."""
    ls = _logscan()
    what, lineno, start = int(st[ls.ST_WHAT]), int(st[ls.ST_LINE]), int(st[ls.ST_START])
    a, b = int(st[ls.ST_A]) - log.base, int(st[ls.ST_B]) - log.base
    text = log.buf[a:b].tobytes().decode("utf-8", errors="replace")
    if what == ls.ERR_MALFORMED:
        prefix = next(p for p in _GRAMMAR if text.startswith(p))
        kind, grammar = _GRAMMAR[prefix]
        return TraceFormatError(f"{source}:{lineno}: malformed {kind} line: expected {grammar}, got {_snippet(text)}")
    if what in (ls.ERR_NESTED_GC, ls.ERR_NESTED_STACK):
        expected = "'end tracegc'" if what == ls.ERR_NESTED_GC else "a stack frame or a blank line"
        return TraceFormatError(
            f"{source}:{lineno}: unexpected event line inside the event that starts at line "
            f"{start}: expected {expected}, got {_snippet(text)}"
        )
    if what == ls.ERR_NO_HEADER:
        return TraceFormatError(
            f"{source}:{lineno}: expected a goroutine header "
            f"'goroutine N [status]:' after the event line {start}, got {_snippet(text)}"
        )
    return TraceFormatError(
        f"{source}:{lineno}: {'address' if what == ls.ERR_ADDR_BITS else 'size'} {text} does not fit in 64 bits"
    )


def open_log(path: str | os.PathLike[str]) -> IO[str]:
    """Open a log for reading as text, decompressing it if it starts with gzip magic.

    Opened exactly as :func:`import_log` reads it (UTF-8, ``errors='replace'``, universal
    newlines, each line at most :data:`~goheap.trace.bounded.MAX_LINE_BYTES`); closing the
    returned file closes everything.
    """
    raw = open(path, "rb")  # noqa: SIM115 - closed with the text stream
    try:
        buffered = io.BufferedReader(raw, 1 << 16)
        stream: io.BufferedIOBase = buffered
        if buffered.peek(2)[:2] == _GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=buffered, mode="rb")
        guarded = io.BufferedReader(LineGuard(_Closing(stream, raw), _source_name(path)), 1 << 16)
        return io.TextIOWrapper(guarded, encoding="utf-8", errors="replace", newline=None)
    except BaseException:
        raw.close()
        raise


class _Closing(io.RawIOBase):
    """Reads ``stream``; closing it closes ``stream`` and then the file under it."""

    def __init__(self, stream: io.BufferedIOBase, file: IO[bytes]) -> None:
        super().__init__()
        self._stream, self._file = stream, file

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._stream.readinto(b)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                self._file.close()
        super().close()


def _source_name(path: str | os.PathLike[str]) -> str:
    return "<stdin>" if os.fspath(path) == "-" else Path(path).name


def _log_input(path: str | os.PathLike[str]) -> ByteInput:
    """The log's bytes, every line bounded (:class:`~goheap.trace.bounded.LineGuard`, after
    decompression: ``/dev/zero`` or a gzip bomb is refused after one long line, never held)."""
    return ByteInput(path, wrap=lambda stream: LineGuard(stream, _source_name(path)))


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
    cols = _Columns(chunk_events)
    stacks = _StackTable()
    with _log_input(path) as log:
        types, funcs, meta = _scan(log, cols, stacks, source=_source_name(path), progress=progress, stacklevel=3)
        meta["log_bytes"] = log.end
        meta["compressed"] = log.compressed
    columns: dict[str, Any] = cols.finish()  # Trace's columns, by name
    return Trace(**columns, types=types, funcs=funcs, meta=meta, **stacks.tables())


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

    The same import as :func:`import_log` (:meth:`Trace.load` of the file gives the same
    trace), but the events are never all in memory: full chunks of
    ``chunk_events`` events are spilled to a temporary directory beside ``out`` and
    streamed into the trace file at the end. Peak memory is therefore one chunk (about 60
    bytes an event) plus the type, function and stack tables, however long the log.

    Errors as :func:`import_log`; on any error (a malformed log included) nothing is
    written: ``out`` is left as it was and the temporary files are removed.
    """
    out = Path(out)
    directory = out.parent if str(out.parent) else Path(".")
    try:
        spill_dir = tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".import", dir=directory)
    except OSError as e:  # name the output, never the temporary directory
        raise OSError(e.errno, e.strerror, os.fspath(out)) from None
    with spill_dir as spill:
        cols = _Columns(chunk_events, spill_dir=spill)
        try:
            stacks = _StackTable()
            with _log_input(path) as log:
                types, funcs, meta = _scan(log, cols, stacks, source=_source_name(path), progress=progress, stacklevel=3)
                meta["log_bytes"] = log.end
                meta["compressed"] = log.compressed
            columns = cols.spilled()
            meta["events"] = cols.n_events
            meta["counts"] = {name: int(cols.counts[i]) for i, name in enumerate(KIND_NAMES)}
            tables = stacks.tables()
            for name in ("stack_frames", "stack_offsets"):
                columns[name] = (len(tables[name]), [tables[name].tobytes()])
            bounds = {"size": cols.sizes} if cols.sizes is not None else {}
            write_trace_file(out, columns, types, funcs, meta, frames=tables["frames"], bounds=bounds)
        except OSError as e:
            if e.filename is not None and os.fspath(e.filename).startswith(spill):
                raise OSError(e.errno, e.strerror, os.fspath(out)) from None
            raise
        finally:
            cols.close()
    full_meta = dict(meta)
    full_meta.setdefault("format", FORMAT_NAME)
    full_meta.setdefault("version", FORMAT_VERSION)
    nbytes = {"alloc": cols.nbytes[KIND_ALLOC], "free": cols.nbytes[KIND_FREE]}
    return ImportResult(out, MappingProxyType(full_meta), nbytes, len(types), len(funcs))
