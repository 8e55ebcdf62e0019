"""Read a Go execution trace into goheap's rows, one generation at a time.

See :mod:`goheap.trace.exectrace` for the format. :class:`_Input` reads the bytes into one
buffer, :func:`read_generations` frames them into batches (compiled:
:func:`.decode.frame_batches`) and groups them into generations, and
:class:`ExecTraceReader` turns each generation into rows in one compiled call
(:func:`.decode.generation_rows`) and appends them to a
:class:`~goheap.trace.spill.SpilledColumns`, keeping across generations only the span
table, the string tables and the GC cycles still open.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from goheap._runtime.gosizeclasses import go_size_classes
from goheap.trace.byteinput import ByteInput, CorruptStream
from goheap.trace.exectrace import format as F
from goheap.trace.spill import SpilledColumns
from goheap.trace.tracefile import (
    KIND_NAMES,
    SERIES_DTYPE,
    TraceFormatError,
    TraceTruncatedWarning,
)

__all__ = ["ROW_DTYPES", "ExecTraceReader", "is_exectrace"]

#: The columns the reader writes for each row (an execution trace has no ``func_id`` or
#: ``stack_id``: its allocations carry no stacks).
ROW_DTYPES: dict[str, np.dtype] = {
    "kind": np.dtype("<u1"),
    "addr": np.dtype("<u8"),
    "size": np.dtype("<u8"),
    "type_id": np.dtype("<i4"),
    "noscan": np.dtype("<u1"),
    "time_ns": np.dtype("<i8"),
}
_SERIES_DTYPES: dict[str, np.dtype] = {name: SERIES_DTYPE[name] for name in SERIES_DTYPE.names or ()}  # never None: a structured dtype

_TINY_SIZE_CLASS = 2  # Go's TinySizeClass: the tiny allocator's 16-byte blocks
_TINY_SPAN_CLASS = _TINY_SIZE_CLASS << 1 | 1  # noscan


def is_exectrace(head: bytes) -> bool:
    """Whether ``head`` (the first 16 bytes, decompressed) is a Go execution trace's header."""
    return F.parse_header(head) is not None


def _decode():
    """The compiled loops (numba is imported only when an execution trace is read)."""
    from goheap.trace.exectrace import decode

    return decode


# ================================================================ bytes in, batches out


class _Input(ByteInput):
    """The trace's bytes (see :class:`~goheap.trace.byteinput.ByteInput`), and how far the
    reader got: ``offset``, the end of the last batch framed (or of the input);
    ``cut_short`` says the input ended inside a batch (or a gzip stream ended early), and
    ``cut_at`` is the offset of a batch whose data was cut short.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.offset = 0
        self.cut_at: int | None = None

    def more(self, keep: int) -> bool:
        try:
            return super().more(keep)
        except CorruptStream as e:
            raise TraceFormatError(f"{self.name}: corrupt gzip stream after byte {self.end:,}: {e}") from None

    def take(self, n: int) -> bytes | None:
        """The next ``n`` bytes from ``offset`` (the header), or None if the input ends first."""
        while self.end - self.offset < n:
            if not self.more(self.offset):
                return None
        start = self.offset - self.base
        self.offset += n
        return self.buf[start : start + n].tobytes()


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
    """One generation: its batches' rows (:func:`.decode.frame_batches`) whose data lies in
    ``buf`` (``buf[i]`` is byte ``base + i``; valid until the next generation is read)."""

    number: int
    buf: np.ndarray
    base: int
    table: np.ndarray
    events: np.ndarray = field(default_factory=lambda: np.zeros((0, 8), np.uint64))  # event batches' rows
    experimental: list[_Batch] = field(default_factory=list)
    sync: list[_Batch] = field(default_factory=list)
    other: int = 0  # strings, stacks and CPU-sample batches (not needed for the heap)
    complete: bool = True

    def batch(self, row: np.ndarray) -> _Batch:
        """The batch of ``row``, its data copied."""
        d = _decode()
        data = int(row[d.BATCH_DATA])
        start = data - self.base
        return _Batch(
            int(row[d.BATCH_GEN]), int(row[d.BATCH_M]), int(row[d.BATCH_TS]),
            self.buf[start : start + int(row[d.BATCH_LEN])].tobytes(), data, int(row[d.BATCH_EXP]),
        )  # fmt: skip

    def batches(self) -> list[_Batch]:
        """Every batch of the generation, in file order, its data copied."""
        return [self.batch(row) for row in self.table]


def _generation(inp: _Input, version: int, number: int, table: np.ndarray, complete: bool) -> _Generation:
    """The generation of these batch rows, its batches sorted by role."""
    d = _decode()
    gen = _Generation(number, inp.buf, inp.base, table, complete=complete)
    exp = table[:, d.BATCH_EXP] != 0
    first = table[:, d.BATCH_FIRST]
    other = ~exp & np.isin(first, (F.EV_STRINGS, F.EV_STACKS, F.EV_CPU_SAMPLES))
    sync_kind = F.EV_FREQUENCY if version < 25 else F.EV_SYNC
    sync = ~exp & (first == sync_kind)
    gen.events = table[~exp & ~other & ~sync]
    gen.other = int(other.sum())
    gen.sync = [gen.batch(row) for row in table[sync]]
    gen.experimental = [gen.batch(row) for row in table[exp]]
    return gen


def read_generations(inp: _Input, version: int) -> Iterator[_Generation]:
    """The generations of the trace after its header (``inp.offset``), one at a time.

    A generation ends at an EndOfGeneration byte (format 1.26) or where the next one's
    first batch begins (earlier formats). The last one is marked incomplete if the input
    ends inside a batch or, for format 1.26, before its EndOfGeneration. A corrupt batch
    header raises TraceFormatError naming its offset.
    """
    d = _decode()
    table = np.empty((256, 8), np.uint64)
    st = np.zeros(4, np.uint64)
    at = inp.offset  # the next batch's offset
    start = at  # where the generation being framed begins
    n = 0
    while True:
        n = d.frame_batches(inp.buf, at - inp.base, inp.filled, inp.base, version, table, n, st)
        stop, where, value = int(st[d.ST_STOP]), inp.base + int(st[d.ST_WHERE]), int(st[d.ST_VALUE])
        number = int(st[d.ST_GEN])
        if stop == d.FRAME_FULL:
            at = int(table[n - 1, d.BATCH_DATA] + table[n - 1, d.BATCH_LEN])
            table = np.concatenate([table, np.empty_like(table)])
            continue
        at = inp.offset = where
        if stop == d.FRAME_MORE:
            if inp.more(keep=start):
                continue
            if at < inp.base + inp.filled:  # the input ends inside a batch
                inp.cut_short = True
                if value:  # inside its data: the header was read
                    inp.cut_at = at
                    inp.offset = inp.base + value - 1
                else:
                    inp.offset = inp.base + inp.filled
            if n:
                yield _generation(inp, version, number, table[:n].copy(), not inp.cut_short and version < 26)
            return
        if stop == d.FRAME_END_OF_GENERATION:
            if not n:
                raise TraceFormatError(f"{inp.name}: byte offset {where - 1:,}: corrupt trace: an end of generation without one")
            yield _generation(inp, version, number, table[:n].copy(), True)
        elif stop == d.FRAME_NEXT_GENERATION:
            if version < 26 and value == number + 1:
                yield _generation(inp, version, number, table[:n].copy(), True)
            else:
                raise TraceFormatError(
                    f"{inp.name}: byte offset {where:,}: corrupt trace: a batch of generation {value} "
                    f"inside generation {number}"
                )
        elif stop == d.FRAME_BAD_KIND:
            raise TraceFormatError(
                f"{inp.name}: byte offset {where:,}: corrupt batch: expected a batch header "
                f"(byte {F.EV_EVENT_BATCH}), got byte {value}"
            )
        elif stop == d.FRAME_BAD_VARINT:
            raise TraceFormatError(f"{inp.name}: byte offset {where:,}: a varint longer than 64 bits")
        elif stop == d.FRAME_TOO_LONG:
            raise TraceFormatError(
                f"{inp.name}: byte offset {where:,}: corrupt batch: {value:,} bytes long, "
                f"the format allows at most {F.MAX_BATCH_SIZE:,}"
            )
        else:
            raise TraceFormatError(f"{inp.name}: byte offset {where:,}: corrupt batch: generation 0")
        n = 0
        st[d.ST_GEN] = 0
        start = at


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
        self.info: _HeapInfo | None = None
        self.ns_per_tick: float | None = None
        self.t0: int | None = None
        self.generations = 0
        self.truncated_at: int | None = None
        self.truncated_why = ""
        self._counters = np.zeros(_decode().N_COUNTERS, np.int64)  # decode.C_*: what generation_rows carries over
        self._spans: np.ndarray | None = None  # the live spans (decode.new_table)
        self._tiny: np.ndarray | None = None  # the live 16-byte tiny blocks
        self._scratch: tuple = ()  # generation_rows' working arrays, reused (decode.new_scratch)

    @property
    def bounds(self) -> dict[str, tuple[int, int]]:
        """What the rows so far hold, for :func:`~goheap.trace.tracefile.write_trace_file`:
        their least and greatest size, and step of their time."""
        d = _decode()
        return {"size": (0, int(self._counters[d.C_MAX_SIZE])), "time_ns": (0, int(self._counters[d.C_MAX_TIME_STEP]))}

    @property
    def nbytes(self) -> dict[str, int]:
        """Bytes allocated and freed by the rows so far."""
        d = _decode()
        return {"alloc": int(self._counters[d.C_ALLOC_BYTES]), "free": int(self._counters[d.C_FREE_BYTES])}

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
            d = _decode()
            self._nargs, self._timed = F.event_tables(version)
            self._keep = np.zeros(256, np.uint8)
            self._keep[list(d.KEPT)] = 1
            self._is_free = np.zeros(256, np.uint8)
            self._is_free[list(d.FREES)] = 1
            table = go_size_classes(f"1.{version}")
            self._class_size = np.array([0] + [s for s, _ in table], np.int64)
            self._spans = d.new_table()
            self._tiny = d.new_table()
            self._scratch = d.new_scratch(0)
            for gen in read_generations(inp, version):
                if not gen.complete or inp.cut_short:
                    self.truncated_at = inp.cut_at if inp.cut_at is not None else inp.offset
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
        d = _decode()
        c = self._counters
        return {
            "source": self.name,
            "source_format": "exectrace",
            "go_version": F.go_versions(self.version),
            "trace_version": f"1.{self.version}",
            "log_bytes": trace_bytes,
            "compressed": compressed,
            "truncated": self.truncated_at is not None,
            "generations": self.generations,
            "duration_ns": int(c[d.C_LAST_NS]),
            "event_counts": event_counts,
            "tiny_allocs": int(c[d.C_TINY]),
            "snapshot_objects": int(c[d.C_SNAPSHOT]),
            "nonheap_span_events": int(c[d.C_NONHEAP_SPANS]),
            "dropped_objects": int(c[d.C_DROPPED]),
            "min_heap_addr": self.info.min_addr,
            "page_size": self.info.page_size,
            "events": self.rows.n,
            "counts": {name: int(c[d.C_ALLOCS + i]) for i, name in enumerate(KIND_NAMES)},
        }

    # ------------------------------------------------------------ one generation

    def _generation(self, gen: _Generation) -> None:
        self.generations += 1
        self._sync(gen)
        types = self._experimental(gen)
        if not len(gen.events):
            return
        d = _decode()
        rows = gen.events
        bstart = (rows[:, d.BATCH_DATA] - np.uint64(gen.base)).astype(np.int64)
        bend = bstart + rows[:, d.BATCH_LEN].astype(np.int64)
        bts = (rows[:, d.BATCH_TS] & np.uint64((1 << 63) - 1)).astype(np.int64)
        bm, n_m = _first_appearance((rows[:, d.BATCH_M] & np.uint64((1 << 62) - 1)).astype(np.int64))
        t0 = self.t0 if self.t0 is not None else int(rows[:, d.BATCH_TS].min())
        info = self.info or _HeapInfo(0, 1, 1, 0)
        type_ids = np.array(sorted(types), np.int64)
        type_gids = np.array([types[t] for t in type_ids.tolist()], np.int32)
        out = {name: np.empty(d.rows_bound(bstart, bend), dtype) for name, dtype in ROW_DTYPES.items()}
        err = np.zeros(3, np.int64)
        room = d.scratch_bound(bstart, bend)
        while True:
            if len(self._scratch[0]) < room:
                self._scratch = d.new_scratch(room)
            counts = np.zeros_like(self.counts)
            (n, gc_rows, gc_ends, heap, goal, self._spans, self._tiny) = d.generation_rows(
                gen.buf, bstart, bend, bts, bm, n_m, self._nargs, self._timed, self._keep, self._is_free, counts,
                self.ns_per_tick is not None, self.info is not None, float(t0), self.ns_per_tick or 0.0, info.min_addr,
                info.align, info.page_size, self._class_size, _TINY_SPAN_CLASS, type_ids, type_gids, not gen.complete,
                self._spans, self._tiny, self._scratch, tuple(out.values()), self._counters, err,
            )  # fmt: skip
            if err[0] != d.ERR_SCRATCH_FULL:
                break
            room = 2 * len(self._scratch[0])
            err[:] = 0
        self.counts += counts
        if err[0] != d.ERR_NONE:
            self._fail(gen, err)
        self.t0 = t0
        row0 = self.rows.n
        for a in out.values():
            a.resize(n, refcheck=False)  # the memory past n goes back without a copy
        self.rows.append(**out)
        for row, seq in gc_rows.tolist():
            self._open_gcs[seq] = len(self.gc_end_ns)
            self.gc_end_ns.append(-1)
        for end_ns, seq in gc_ends.tolist():
            g = self._open_gcs.pop(seq - 1, None)  # the GC's events are numbered: its end is one past its start
            if g is not None:
                self.gc_end_ns[g] = end_ns
        for series, points in ((self.heap, heap), (self.goal, goal)):
            series.append(time_ns=points[:, 0].astype(np.int64), event=points[:, 1].astype(np.int64) + row0, bytes=points[:, 2])

    def _fail(self, gen: _Generation, err: np.ndarray) -> None:
        """Raise the TraceFormatError that generation_rows' ``err`` describes."""
        d = _decode()
        code, where, value = (int(x) for x in err)
        offset = gen.base + where
        what = {
            d.ERR_KIND: f"corrupt batch: event kind {value} is not a timed event of format 1.{self.version}",
            d.ERR_VARINT: f"corrupt batch: an argument of a {_kind_name(value)} event is a varint longer than 64 bits",
            d.ERR_SHORT: f"corrupt batch: a {_kind_name(value)} event runs past the end of its batch",
            d.ERR_NO_INFO: "allocation events without the AllocFree experiment's info batch (the heap's base "
            "address and page size)",
            d.ERR_NO_SPAN: f"corrupt trace: a heap object at {_addr(self.info, value)} lies in no span the trace described",
            d.ERR_BIG_SPAN: f"corrupt trace: a span of {value:,} pages",
            d.ERR_BAD_CLASS: f"corrupt trace: size class {value}, which Go {F.go_versions(self.version)} does not have",
            d.ERR_BAD_ID: f"corrupt trace: an id ({value:#x}) past any heap address",
            d.ERR_TAIL: f"corrupt trace: a heap object at {_addr(self.info, value)} lies past its span's last slot",
        }
        if code == d.ERR_OUT_SHORT:
            raise AssertionError("generation_rows was given row arrays shorter than rows_bound")
        if code == d.ERR_NO_FREQUENCY:
            first = int(gen.events[0, d.BATCH_DATA])
            raise TraceFormatError(
                f"{self.name}: byte offset {first:,}: generation {gen.number} has no frequency "
                "event: the trace's clock cannot be read"
            )
        raise TraceFormatError(f"{self.name}: byte offset {offset:,}: {what[code]}")

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
                d = _decode()
                err = np.zeros(3, np.int64)
                entries = d.type_table(np.frombuffer(b.data, np.uint8), err)
                for tid, pos, length in entries.tolist():
                    name = b.data[pos : pos + length].decode("utf-8", errors="replace")
                    g = self._type_ids.get(name)
                    if g is None:
                        g = self._type_ids[name] = len(self.types)
                        self.types.append(name)
                    if tid >= 0:  # an id no event can name is not kept
                        types[tid] = g
                if err[0] == d.TYPES_SHORT:
                    raise TraceFormatError(f"{where(int(err[1]))}: a varint runs past the end of its batch")
                if err[0] == d.TYPES_VARINT:
                    raise TraceFormatError(f"{where(int(err[1]))}: a varint longer than 64 bits")
                if err[0] == d.TYPES_NAME:
                    (length,), _ = _uvarints(b.data, int(err[2]), 1, where)
                    raise TraceFormatError(f"{where(int(err[1]))}: corrupt type table: a name of {length:,} bytes")
            else:
                raise TraceFormatError(f"{where(0)}: corrupt AllocFree batch: unknown kind {b.data[0]}")
        return types



def _first_appearance(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's index among the distinct values in order of first appearance, and
    how many there are."""
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(distinct), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(distinct))
    return rank[inverse], len(distinct)


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
