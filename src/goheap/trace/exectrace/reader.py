"""Read a Go execution trace into goheap's rows, one generation at a time.

See :mod:`goheap.trace.exectrace` for the format. :func:`read_generations` frames the file
into batches and groups them into generations; :class:`_Importer` turns each generation
into rows (through the compiled loops of :mod:`.decode`) and appends them to a
:class:`~goheap.trace.spill.SpilledColumns`, keeping across generations only the span
table, the string tables and the GC cycles still open.
"""

from __future__ import annotations

import gzip
import os
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from goheap._runtime.gosizeclasses import go_size_classes
from goheap.trace.exectrace import format as F
from goheap.trace.spill import SpilledColumns
from goheap.trace.tracefile import (
    KIND_GC,
    KIND_NAMES,
    SERIES_DTYPE,
    TraceFormatError,
    TraceTruncatedWarning,
)

__all__ = ["ROW_DTYPES", "ExecTraceReader", "is_exectrace"]

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BLOCK = 1 << 20

#: The columns the reader writes for each row.
ROW_DTYPES = {
    "kind": np.dtype("<u1"),
    "addr": np.dtype("<u8"),
    "size": np.dtype("<u8"),
    "type_id": np.dtype("<i4"),
    "func_id": np.dtype("<i4"),
    "noscan": np.dtype("<u1"),
    "time_ns": np.dtype("<i8"),
}
_SERIES_DTYPES = {name: SERIES_DTYPE[name] for name in SERIES_DTYPE.names}

# Events the importer keeps (the rest are only counted).
_KEPT = (F.EV_SPAN, F.EV_SPAN_ALLOC, F.EV_SPAN_FREE, F.EV_HEAP_OBJECT, F.EV_HEAP_OBJECT_ALLOC,
         F.EV_HEAP_OBJECT_FREE, F.EV_GC_BEGIN, F.EV_GC_END, F.EV_HEAP_ALLOC, F.EV_HEAP_GOAL,
         F.EV_PROC_STATUS, F.EV_PROC_START, F.EV_PROC_STOP, F.EV_GO_SYSCALL_END_BLOCKED)  # fmt: skip
# At one timestamp, these sort before the rest (see _Importer._merge).
_FREES = (F.EV_SPAN_FREE, F.EV_HEAP_OBJECT_FREE)
_ALLOCFREE_KINDS = range(F.EXPERIMENTAL[0], F.EXPERIMENTAL[1])
_TINY_SIZE_CLASS = 2  # Go's TinySizeClass: the tiny allocator's 16-byte blocks
_TINY_SPAN_CLASS = _TINY_SIZE_CLASS << 1 | 1  # noscan


def is_exectrace(head: bytes) -> bool:
    """Whether ``head`` (the first 16 bytes, decompressed) is a Go execution trace's header."""
    return F.parse_header(head) is not None


# ================================================================ bytes in, batches out


class _Input:
    """The trace's bytes, read forwards in blocks (plain or gzip; a file, a pipe or stdin)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = "<stdin>" if os.fspath(path) == "-" else os.path.basename(os.fspath(path))
        if os.fspath(path) == "-":
            self._raw: IO[bytes] = sys.stdin.buffer
            self._owned = False
        else:
            self._raw = open(path, "rb")  # noqa: SIM115 - closed in close()
            self._owned = True
        self.raw_read = 0
        self._buf = b""
        self._pos = 0
        self.offset = 0  # of self._buf[self._pos] in the (uncompressed) trace
        self.eof = False
        first = self._raw.read(2)
        self.raw_read += len(first)
        self.compressed = first == _GZIP_MAGIC
        if self.compressed:
            self._stream: Any = _Chained(first, self._raw, self)
            self._stream = gzip.GzipFile(fileobj=self._stream, mode="rb")
        else:
            self._buf = first
            self._stream = self._raw

    def _fill(self, need: int) -> bool:
        """Make ``need`` bytes available at _pos if the input has them."""
        while len(self._buf) - self._pos < need and not self.eof:
            try:
                block = self._stream.read(_READ_BLOCK)
            except EOFError:
                block = b""
                self.cut_short = True
            except (zlib.error, gzip.BadGzipFile, OSError) as e:
                if isinstance(e, OSError) and not isinstance(e, gzip.BadGzipFile) and e.errno is not None:
                    raise
                raise TraceFormatError(f"{self.name}: corrupt gzip stream after byte {self.offset:,}: {e}") from None
            if not self.compressed:
                self.raw_read += len(block)
            if not block:
                self.eof = True
                break
            self._buf = self._buf[self._pos :] + block
            self._pos = 0
        return len(self._buf) - self._pos >= need

    cut_short = False

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, or None (nothing consumed) if the input ends first."""
        if not self._fill(n):
            return None
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        self.offset += n
        return out

    def at_end(self) -> bool:
        return not self._fill(1)

    def uvarint(self) -> int | None:
        """An unsigned LEB128 varint, or None if the input ends inside it."""
        value = shift = 0
        for _ in range(10):
            b = self.take(1)
            if b is None:
                return None
            c = b[0]
            value |= (c & 0x7F) << shift
            if c < 0x80:
                if value >= 1 << 64:
                    break
                return value
            shift += 7
        raise TraceFormatError(f"{self.name}: byte offset {self.offset - 1:,}: a varint longer than 64 bits")

    def close(self) -> None:
        if self._owned:
            self._raw.close()


class _Chained:
    """``first`` then the rest of ``raw``, counting raw bytes read (gzip's input)."""

    def __init__(self, first: bytes, raw: IO[bytes], owner: _Input) -> None:
        self._first = first
        self._raw = raw
        self._owner = owner

    def read(self, n: int = -1) -> bytes:
        if self._first:
            out, self._first = self._first, b""
            return out
        block = self._raw.read(n if n is not None and n >= 0 else _READ_BLOCK)
        self._owner.raw_read += len(block)
        return block


@dataclass
class _Batch:
    gen: int
    m: int
    ts: int
    data: bytes
    offset: int  # of data[0] in the trace
    exp: int = 0


@dataclass
class _Generation:
    number: int
    events: list[_Batch] = field(default_factory=list)
    experimental: list[_Batch] = field(default_factory=list)
    sync: list[_Batch] = field(default_factory=list)
    other: int = 0  # strings, stacks and CPU-sample batches (not needed for the heap)
    complete: bool = True


_END_OF_GENERATION = object()


def _read_batch(inp: _Input, version: int) -> _Batch | object | None:
    """The next batch, _END_OF_GENERATION, or None at the end (raises, or sets cut_short)."""
    start = inp.offset
    head = inp.take(1)
    if head is None:
        return None
    kind = head[0]
    if kind == F.EV_END_OF_GENERATION and version >= 26:
        return _END_OF_GENERATION
    if kind != F.EV_EVENT_BATCH and not (kind == F.EV_EXPERIMENTAL_BATCH and version >= 23):
        raise TraceFormatError(
            f"{inp.name}: byte offset {start:,}: corrupt batch: expected a batch header "
            f"(byte {F.EV_EVENT_BATCH}), got byte {kind}"
        )
    exp = 0
    if kind == F.EV_EXPERIMENTAL_BATCH:
        e = inp.take(1)
        if e is None:
            inp.cut_short = True
            return None
        exp = e[0]
    fields = []
    for _ in range(4):
        v = inp.uvarint()
        if v is None:
            inp.cut_short = True
            return None
        fields.append(v)
    gen, m, ts, size = fields
    if size > F.MAX_BATCH_SIZE:
        raise TraceFormatError(
            f"{inp.name}: byte offset {start:,}: corrupt batch: {size:,} bytes long, "
            f"the format allows at most {F.MAX_BATCH_SIZE:,}"
        )
    if gen == 0:
        raise TraceFormatError(f"{inp.name}: byte offset {start:,}: corrupt batch: generation 0")
    offset = inp.offset
    data = inp.take(size)
    if data is None:
        inp.cut_short = True
        inp.cut_at = start
        return None
    return _Batch(gen, m, ts, data, offset, exp)


def read_generations(inp: _Input, version: int) -> Iterator[_Generation]:
    """The generations of the trace after its header, each with its batches sorted by role.

    A generation ends at an EndOfGeneration byte (format 1.26) or where the next one's
    first batch begins (earlier formats). The last one is marked incomplete if the input
    ends inside a batch or, for format 1.26, before its EndOfGeneration.
    """
    gen: _Generation | None = None
    while True:
        start = inp.offset
        b = _read_batch(inp, version)
        if b is None:
            if gen is not None:
                gen.complete = not inp.cut_short and version < 26
                yield gen
            return
        if b is _END_OF_GENERATION:
            if gen is None:
                raise TraceFormatError(f"{inp.name}: byte offset {start:,}: corrupt trace: an end of generation without one")
            yield gen
            gen = None
            continue
        assert isinstance(b, _Batch)
        if gen is None:
            gen = _Generation(b.gen)
        elif b.gen != gen.number:
            if version < 26 and b.gen == gen.number + 1:
                yield gen
                gen = _Generation(b.gen)
            else:
                raise TraceFormatError(
                    f"{inp.name}: byte offset {start:,}: corrupt trace: a batch of generation {b.gen} "
                    f"inside generation {gen.number}"
                )
        if b.exp:
            gen.experimental.append(b)
        elif not b.data:
            gen.events.append(b)
        else:
            first = b.data[0]
            if first in (F.EV_STRINGS, F.EV_STACKS, F.EV_CPU_SAMPLES):
                gen.other += 1
            elif (first == F.EV_FREQUENCY and version < 25) or (first == F.EV_SYNC and version >= 25):
                gen.sync.append(b)
            else:
                gen.events.append(b)


def _uvarints(data: bytes, pos: int, n: int, where: Callable[[int], str]) -> tuple[list[int], int]:
    """``n`` varints of ``data`` from ``pos``, and the position after them."""
    out = []
    for _ in range(n):
        value = shift = 0
        while True:
            if pos >= len(data):
                raise TraceFormatError(f"{where(pos)}: a varint runs past the end of its batch")
            c = data[pos]
            pos += 1
            value |= (c & 0x7F) << shift
            if c < 0x80:
                break
            shift += 7
            if shift > 63:
                raise TraceFormatError(f"{where(pos)}: a varint longer than 64 bits")
        out.append(value)
    return out, pos


# ================================================================ generations in, rows out


@dataclass
class _HeapInfo:
    """The AllocFree experiment's info batch: how ids map to addresses."""

    min_addr: int
    page_size: int
    align: int
    fixed_stack: int


class ExecTraceReader:
    """Reads one execution trace (see the module docstring) into ``rows``, ``heap`` and ``goal``.

    ``spill_dir``: where the row and series columns spill (None: kept in memory).
    ``progress(raw_bytes_read)``: called after each generation.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        spill_dir: str | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> None:
        self.path = path
        self.progress = progress
        self.rows = SpilledColumns(ROW_DTYPES, spill_dir)
        self.heap = SpilledColumns(_SERIES_DTYPES, _subdir(spill_dir, "heap"))
        self.goal = SpilledColumns(_SERIES_DTYPES, _subdir(spill_dir, "goal"))
        self.types: list[str] = []
        self._type_ids: dict[str, int] = {}
        self.gc_end_ns: list[int] = []
        self._open_gcs: dict[int, int] = {}  # GC seq -> its GC row's index in gc_end_ns
        self.counts = np.zeros(256, np.int64)
        self.counters = np.zeros(9, np.int64)
        self.info: _HeapInfo | None = None
        self.ns_per_tick: float | None = None
        self.t0: int | None = None
        self.last_ns = 0
        self.last_row_ns = 0
        self.generations = 0
        self.truncated_at: int | None = None
        self.truncated_why = ""
        self.nbytes = {"alloc": 0, "free": 0}
        self.kind_counts = np.zeros(len(KIND_NAMES), np.int64)
        self._keys = np.full(1 << 10, -1, np.int64)
        self._npages = np.zeros(1 << 10, np.int64)
        self._kindclass = np.zeros(1 << 10, np.int64)
        self._tstate = np.zeros(2, np.int64)
        self._tiny = [np.full(1 << 10, -1, np.int64), np.zeros(1 << 10, np.int64), np.zeros(1 << 10, np.int64)]
        self._tiny_state = np.zeros(2, np.int64)

    def close(self) -> None:
        for c in (self.rows, self.heap, self.goal):
            c.close()

    # ------------------------------------------------------------ the whole file

    def read(self) -> dict[str, Any]:
        """Read the trace; returns the meta of what was read. Raises TraceFormatError."""
        inp = _Input(self.path)
        self.name = inp.name
        try:
            head = inp.take(F.HEADER_SIZE) or b""
            version = F.parse_header(head)
            if version is None:
                raise TraceFormatError(f"{inp.name}: not a Go execution trace (no 'go 1.NN trace' header)")
            if version not in F.SUPPORTED_VERSIONS:
                known = ", ".join(f"1.{v}" for v in F.SUPPORTED_VERSIONS)
                raise TraceFormatError(
                    f"{inp.name}: trace format version go 1.{version} is not supported; goheap reads "
                    f"the formats {known} (written by Go 1.22 to 1.27)"
                )
            self.version = version
            from goheap.trace.exectrace import decode  # numba: only for execution traces

            self._decode = decode
            self._nargs, self._timed = F.event_tables(version)
            self._keep = np.zeros(256, np.uint8)
            self._keep[list(_KEPT)] = 1
            self._is_free = np.zeros(256, np.uint8)
            self._is_free[list(_FREES)] = 1
            table = go_size_classes(f"1.{version}")
            self._class_size = np.array([0] + [s for s, _ in table], np.int64)
            for gen in read_generations(inp, version):
                if not gen.complete or inp.cut_short:
                    self.truncated_at = getattr(inp, "cut_at", inp.offset)
                    self.truncated_why = (
                        "inside a batch" if inp.cut_short else "before the end of its last generation"
                    )
                self._generation(gen)
                if self.progress is not None:
                    self.progress(inp.raw_read)
            if inp.cut_short and self.truncated_at is None:
                self.truncated_at = inp.offset
                self.truncated_why = "inside a batch header"
            trace_bytes = inp.offset
            compressed = inp.compressed
        finally:
            inp.close()
        return self._meta(trace_bytes, compressed)

    def _meta(self, trace_bytes: int, compressed: bool) -> dict[str, Any]:
        allocfree = int(self.counts[F.EXPERIMENTAL[0] : F.EXPERIMENTAL[1]].sum())
        if self.info is None or allocfree == 0:
            hint = (
                "Go 1.22 cannot record them: record with Go 1.23 or later and GODEBUG=traceallocfree=1"
                if self.version == 22
                else "record the program with GODEBUG=traceallocfree=1 (e.g. GODEBUG=traceallocfree=1 go test "
                "-trace=t.out ./pkg)"
            )
            raise TraceFormatError(
                f"{self.name}: this execution trace (Go {F.go_versions(self.version)}) has no allocation events "
                f"(the AllocFree experiment): {hint}"
            )
        if self.truncated_at is not None:
            warnings.warn(
                f"{self.name}: byte offset {self.truncated_at:,}: trace truncated {self.truncated_why}; imported "
                f"the {self.rows.n:,} complete events before it",
                TraceTruncatedWarning,
                stacklevel=4,
            )
        event_counts = {F.EVENTS[k].name: int(c) for k, c in enumerate(self.counts) if c and k in F.EVENTS}
        return {
            "source": self.name,
            "source_format": "exectrace",
            "go_version": F.go_versions(self.version),
            "trace_version": f"1.{self.version}",
            "log_bytes": trace_bytes,
            "compressed": compressed,
            "truncated": self.truncated_at is not None,
            "generations": self.generations,
            "duration_ns": self.last_ns,
            "event_counts": event_counts,
            "tiny_allocs": int(self.counters[1]),
            "snapshot_objects": int(self.counters[6]),
            "nonheap_span_events": int(self.counters[7]),
            "dropped_objects": int(self.counters[8]),
            "min_heap_addr": self.info.min_addr,
            "page_size": self.info.page_size,
            "events": self.rows.n,
            "counts": {name: int(self.kind_counts[i]) for i, name in enumerate(KIND_NAMES)},
        }

    # ------------------------------------------------------------ one generation

    def _generation(self, gen: _Generation) -> None:
        self.generations += 1
        self._sync(gen)
        types = self._experimental(gen)
        if not gen.events:
            return
        decoded = self._decode_batches(gen)
        if self.ns_per_tick is None:
            raise TraceFormatError(
                f"{self.name}: byte offset {gen.events[0].offset:,}: generation {gen.number} has no frequency "
                "event: the trace's clock cannot be read"
            )
        ts, kind, args, pos, batch, batch_m, where = decoded
        if self.t0 is None:
            self.t0 = min(b.ts for b in gen.events)
        if self.info is None:
            heap_events = np.isin(kind, list(_ALLOCFREE_KINDS))
            if heap_events.any():
                raise TraceFormatError(
                    f"{self.name}: byte offset {where(int(pos[np.argmax(heap_events)])):,}: allocation events "
                    "without the AllocFree experiment's info batch (the heap's base address and page size)"
                )
            return  # no heap events (yet): nothing to import
        order = self._merge(ts, kind, args, batch, batch_m)
        self._rows(gen, ts, kind, args, pos, order, types, where)

    def _sync(self, gen: _Generation) -> None:
        for b in gen.sync:
            where = _where(self.name, b.offset)
            if self.version >= 25:
                pos = 1  # the Sync byte
                while pos < len(b.data):
                    k = b.data[pos]
                    if k == F.EV_FREQUENCY:
                        (freq,), pos = _uvarints(b.data, pos + 1, 1, where)
                        self._set_frequency(freq, where(pos))
                    elif k == F.EV_CLOCK_SNAPSHOT:
                        _, pos = _uvarints(b.data, pos + 1, 4, where)
                    else:
                        raise TraceFormatError(f"{where(pos)}: corrupt sync batch: unexpected event kind {k}")
            else:
                (freq,), _ = _uvarints(b.data, 1, 1, where)
                self._set_frequency(freq, where(1))

    def _set_frequency(self, freq: int, where: str) -> None:
        if freq == 0:
            raise TraceFormatError(f"{where}: a trace clock frequency of 0")
        self.ns_per_tick = 1e9 / freq

    def _experimental(self, gen: _Generation) -> dict[int, int]:
        """Read the AllocFree batches: the info (once), and this generation's type table
        (its ids -> indices into self.types)."""
        types: dict[int, int] = {}
        for b in gen.experimental:
            if b.exp != F.EXPERIMENT_ALLOCFREE or not b.data:
                continue
            where = _where(self.name, b.offset)
            if b.data[0] == F.ALLOCFREE_INFO_BATCH:
                (min_addr, page_size, align, fixed_stack), _ = _uvarints(b.data, 1, 4, where)
                for what, v, low, high in (("page size", page_size, 512, 1 << 24), ("heap alignment", align, 1, 1 << 16)):
                    if v < low or v > high or v & (v - 1):
                        raise TraceFormatError(f"{where(1)}: corrupt AllocFree info: a {what} of {v}")
                if min_addr >= 1 << 62:
                    raise TraceFormatError(f"{where(1)}: corrupt AllocFree info: a heap base of {min_addr:#x}")
                self.info = _HeapInfo(min_addr, page_size, align, fixed_stack)
            elif b.data[0] == F.ALLOCFREE_TYPES_BATCH:
                pos = 1
                while pos < len(b.data):
                    (tid, _addr, _size, _ptrbytes, length), pos = _uvarints(b.data, pos, 5, where)
                    if length > F.MAX_STRING_SIZE or pos + length > len(b.data):
                        raise TraceFormatError(f"{where(pos)}: corrupt type table: a name of {length:,} bytes")
                    name = b.data[pos : pos + length].decode("utf-8", errors="replace")
                    pos += length
                    g = self._type_ids.get(name)
                    if g is None:
                        g = self._type_ids[name] = len(self.types)
                        self.types.append(name)
                    types[tid] = g
            else:
                raise TraceFormatError(f"{where(0)}: corrupt AllocFree batch: unknown kind {b.data[0]}")
        return types

    def _decode_batches(self, gen: _Generation):
        batches = gen.events
        buf = np.frombuffer(b"".join(b.data for b in batches), np.uint8)
        lengths = np.array([len(b.data) for b in batches], np.int64)
        bend = np.cumsum(lengths)
        bstart = bend - lengths
        bts = np.array([b.ts & ((1 << 63) - 1) for b in batches], np.int64)
        offsets = np.array([b.offset for b in batches], np.int64)

        def where(p: int) -> int:
            b = int(np.searchsorted(bstart, p, side="right")) - 1
            return int(offsets[b] + p - bstart[b])

        cap = max(16, len(buf) // 3)  # most events take 5 to 8 bytes
        out_ts = np.zeros(cap, np.uint64)
        out_kind = np.zeros(cap, np.uint8)
        out_args = np.zeros((cap, 3), np.uint64)
        out_pos = np.zeros(cap, np.int64)
        out_batch = np.zeros(cap, np.int64)
        st = np.zeros(4, np.int64)
        st[1] = -1
        err = np.zeros(3, np.int64)
        d = self._decode
        while True:
            d.decode_events(buf, bstart, bend, bts, self._nargs, self._timed, self._keep, st, self.counts,
                            out_ts, out_kind, out_args, out_pos, out_batch, err)  # fmt: skip
            if err[0] != d.ERR_FULL:
                break
            cap *= 2
            out_ts = _grown(out_ts, cap)
            out_kind = _grown(out_kind, cap)
            out_args = _grown(out_args, cap)
            out_pos = _grown(out_pos, cap)
            out_batch = _grown(out_batch, cap)
        n = int(st[2])
        if err[0] != d.ERR_NONE:
            code, p, k = (int(x) for x in err)
            what = {
                d.ERR_KIND: f"event kind {k} is not a timed event of format 1.{self.version}",
                d.ERR_VARINT: f"an argument of a {_kind_name(k)} event is a varint longer than 64 bits",
                d.ERR_SHORT: f"a {_kind_name(k)} event runs past the end of its batch",
            }[code]
            raise TraceFormatError(f"{self.name}: byte offset {where(p):,}: corrupt batch: {what}")
        batch_m = np.array([b.m & ((1 << 62) - 1) for b in batches], np.int64)
        return out_ts[:n], out_kind[:n], out_args[:n], out_pos[:n], out_batch[:n], batch_m, where

    def _merge(self, ts, kind, args, batch, batch_m) -> np.ndarray:
        """The events of all threads in one order, as Go's own reader orders them.

        Each thread (M) writes its events in order into its own batches, but their
        timestamps are not enough to merge them: a thread that writes faster than the
        clock ticks (64 ns on amd64) bumps each event's time by one tick, so a burst (a
        sweep reporting thousands of frees) runs ahead of the clock, and the next batch
        starts behind where the last one ended. What orders events that touch the same
        memory is the P: allocating and sweeping need one, and each P passes from thread to
        thread with a sequence number (ProcStatus/ProcStart). So: each P's events, run by
        run in sequence order, each run in its thread's order; then the Ps (and the
        events of threads without a P) merged by time, frees first at one time.
        """
        d = self._decode
        key, group = d.proc_runs(kind, args, batch, batch_m, F.EV_PROC_STATUS, F.EV_PROC_START,
                                 F.EV_PROC_STOP, F.EV_GO_SYSCALL_END_BLOCKED)  # fmt: skip
        by_run = np.argsort(key, kind="stable")
        return d.merge_runs(ts, kind, by_run, group, self._is_free)

    def _rows(self, gen, ts, kind, args, pos, order, types, where) -> None:
        d = self._decode
        n = len(order)
        info = self.info
        out_kind = np.empty(n, np.uint8)
        out_addr = np.empty(n, np.int64)
        out_size = np.empty(n, np.int64)
        out_type = np.empty(n, np.int64)
        out_noscan = np.empty(n, np.int64)
        out_src = np.empty(n, np.int64)
        gc_seq = np.empty(n, np.int64)
        heap_rows = np.empty((n, 2), np.int64)
        goal_rows = np.empty((n, 2), np.int64)
        end_rows = np.empty((n, 2), np.int64)
        counters = self.counters
        counters[0] = 0
        counters[2:6] = 0
        err = np.zeros(3, np.int64)
        align, page_size = info.align, info.page_size
        while True:
            err[0] = 0
            d.slots_of_events(
                kind, args, order, self._keys, self._npages, self._kindclass, self._tstate, *self._tiny,
                self._tiny_state, align, page_size, self._class_size, _TINY_SPAN_CLASS, not gen.complete, out_kind, out_addr, out_size, out_type, out_noscan,
                out_src, gc_seq, heap_rows, goal_rows, end_rows, counters, err,
            )  # fmt: skip
            if err[0] == -1:
                capacity = self._keys.shape[0] * (2 if 4 * self._tstate[0] > self._keys.shape[0] else 1)
                self._keys, self._npages, self._kindclass = d.span_table_rehash(
                    self._keys, self._npages, self._kindclass, capacity
                )
                self._tstate[1] = 0
            elif err[0] == -2:
                capacity = self._tiny[0].shape[0] * (2 if 4 * self._tiny_state[0] > self._tiny[0].shape[0] else 1)
                self._tiny = list(d.span_table_rehash(*self._tiny, capacity))
                self._tiny_state[1] = 0
            else:
                break
        if err[0]:
            code, j, value = (int(x) for x in err)
            what = {
                d.ERR_NO_SPAN: f"a heap object at {_addr(info, value)} lies in no span the trace described",
                d.ERR_BIG_SPAN: f"a span of {value:,} pages",
                d.ERR_BAD_CLASS: f"size class {value}, which Go {F.go_versions(self.version)} does not have",
                d.ERR_BAD_ID: f"an id ({value:#x}) past any heap address",
                d.ERR_TAIL: f"a heap object at {_addr(info, value)} lies past its span's last slot",
            }[code]
            raise TraceFormatError(f"{self.name}: byte offset {where(int(pos[j])):,}: corrupt trace: {what}")
        m = int(counters[2])
        src = out_src[:m]
        time_ns = _LazyTimes(self, ts)
        kinds = out_kind[:m]
        row0 = self.rows.n
        local = out_type[:m]
        type_id = np.full(m, -1, np.int32)
        if types:
            ids = np.array(sorted(types), np.int64)
            mapped = np.array([types[i] for i in ids.tolist()], np.int32)
            at = np.clip(np.searchsorted(ids, local), 0, len(ids) - 1)
            known = (ids[at] == local) & (local != 0)
            type_id[known] = mapped[at[known]]
        gc_rows = np.flatnonzero(kinds == KIND_GC)
        for r in gc_rows.tolist():
            self._open_gcs[int(gc_seq[r])] = len(self.gc_end_ns)
            self.gc_end_ns.append(-1)
        for j, seq in end_rows[: int(counters[5])].tolist():
            g = self._open_gcs.pop(seq - 1, None)  # the GC's events are numbered: its end is one past its start
            if g is not None:
                self.gc_end_ns[g] = int(time_ns[j])
        addr = (out_addr[:m] + info.min_addr).astype(np.uint64) if m else np.zeros(0, np.uint64)
        addr[kinds == KIND_GC] = 0
        # The rows' times never go back: a thread's burst of events runs ahead of the clock
        # (see _merge), and the next P's events, though later, can carry earlier times.
        row_ns = np.maximum.accumulate(np.maximum(time_ns[src], self.last_row_ns)) if m else time_ns[:0]
        if m:
            self.last_row_ns = int(row_ns[-1])
        self.rows.append(
            kind=kinds,
            addr=addr,
            size=out_size[:m],
            type_id=type_id,
            func_id=np.full(m, -1, np.int32),
            noscan=out_noscan[:m],
            time_ns=row_ns,
        )
        self.kind_counts += np.bincount(kinds, minlength=len(KIND_NAMES))
        for k, name in ((0, "alloc"), (1, "free")):
            self.nbytes[name] += int(out_size[:m][kinds == k].sum())
        for series, rows, count in ((self.heap, heap_rows, counters[3]), (self.goal, goal_rows, counters[4])):
            r = rows[: int(count)]
            series.append(time_ns=time_ns[r[:, 0]], event=r[:, 1] + row0, bytes=args[r[:, 0], 0])
        if len(ts):
            self.last_ns = max(self.last_ns, int(self._ns(ts.max(keepdims=True))[0]))

    def _ns(self, ts: np.ndarray) -> np.ndarray:
        rel = np.asarray(ts).astype(np.float64) - float(self.t0)
        return np.maximum(np.round(rel * self.ns_per_tick), 0).astype(np.int64)


class _LazyTimes:
    """The events' times in ns, computed only for the events asked for."""

    def __init__(self, reader: ExecTraceReader, ts: np.ndarray) -> None:
        self._reader = reader
        self._ts = ts

    def __getitem__(self, index):
        return self._reader._ns(self._ts[index])


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + a.shape[1:], a.dtype)
    out[: len(a)] = a
    return out


def _subdir(spill_dir: str | None, name: str) -> str | None:
    if spill_dir is None:
        return None
    path = os.path.join(spill_dir, name)
    os.makedirs(path, exist_ok=True)
    return path


def _where(name: str, base: int) -> Callable[[int], str]:
    return lambda p: f"{name}: byte offset {base + p:,}"


def _kind_name(k: int) -> str:
    return F.EVENTS[k].name if k in F.EVENTS else f"kind-{k}"


def _addr(info: _HeapInfo | None, offset: int) -> str:
    return f"{(info.min_addr if info else 0) + offset:#x}"
