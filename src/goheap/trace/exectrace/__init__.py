"""Import Go execution traces (the "v2" format of Go 1.22+) recorded with ``GODEBUG=traceallocfree=1``.

Recording
---------
Go 1.23 removed ``GODEBUG=allocfreetrace=1``. Its successor is an *experiment* of the
execution tracer: run a program with ``GODEBUG=traceallocfree=1`` while it is traced
(``runtime/trace.Start``, or ``go test -trace=t.out``) and the trace also records every
heap span and object allocated and freed, and, when tracing starts, every span and object
that already exists. :func:`import_exectrace` reads such a trace (plain or gzip) into a
:class:`~goheap.trace.Trace`; :func:`import_exectrace_to_file` writes the trace file
directly, in bounded memory.

The format
----------
A 16-byte header ``go 1.NN trace`` (:mod:`.format`: versions 1.22, 1.23, 1.25 and 1.26,
written by Go 1.22 to 1.27), then *batches*: a byte 1 (an event batch) or 49 (an
experimental batch, followed by the experiment's number), then four unsigned LEB128
varints, the generation, the thread (M) that wrote it, a timestamp and the length of the
data that follows (at most 64 KB). A trace is cut into *generations* of about a second;
each holds its own string table, stack table, frequency (clock ticks per second; from
format 1.25 inside a *sync* batch, with a clock snapshot) and, for the AllocFree
experiment, its own type table. Format 1.26 ends each generation with one byte 52; before
it, a generation ends where a batch of the next begins.

Inside an event batch each event is a kind byte then its arguments (varints; how many is
fixed per kind). The first argument of every event is its time since the previous one in
the batch. Each thread writes its own batches, so the reader merges them by time
(:func:`.decode._merge`).

The AllocFree experiment (Go 1.23+) adds:

* an *info* batch (experimental, first byte 1): the heap's lowest page address, the page
  size (8 KB), the heap's minimum alignment (8 bytes) and the smallest goroutine stack;
* a *type table* per generation (experimental, first byte 0): for each type id its
  address, size, bytes of pointers and name;
* events: ``Span``/``SpanAlloc`` (id, npages, kind and class), ``SpanFree`` (id);
  ``HeapObject``/``HeapObjectAlloc`` (id, type id; 0 for no type), ``HeapObjectFree``
  (id); ``GoroutineStack``/``GoroutineStackAlloc`` (id, log2 of the size),
  ``GoroutineStackFree`` (id). A span's id is its page number from the heap's lowest
  page, an object's its offset from there in units of the alignment. The ``Span`` and
  ``HeapObject`` forms describe the heap as it stood when tracing began.

What becomes of the events
--------------------------
The trace records where each object is, not how big it is: its size is the slot size of
the size class of the span that holds it (Go's table for that version,
:mod:`goheap._runtime.gosizeclasses`), or the whole span for a large object (class 0), and
it holds pointers unless the span class says *noscan*. Each ``HeapObject`` and
``HeapObjectAlloc`` becomes an allocation row of that slot (at the slot's base address),
each ``HeapObjectFree`` a free row, with the type name from the generation's type table;
objects that existed when tracing began are allocations at the start. Two allocations are
not at their slot's base: an object with a malloc header (pointerful, > 512 bytes) is
reported 8 bytes in, and a *tiny* allocation (noscan, < 16 bytes) at its offset inside a
16-byte block of the tiny size class that several of them share, freed once for all.
goheap replays a tiny block as one 16-byte noscan allocation (the one at the block's
start) and counts the others (``meta["tiny_allocs"]``); a header object is its slot.

Each ``GCBegin`` becomes a GC row (``KIND_GC``), and its ``GCEnd`` time is kept
(``Trace.gc_end_ns``); the ``HeapAlloc`` and ``HeapGoal`` metric events become
``Trace.heap_series`` and ``Trace.goal_series``. Every row carries its time in
nanoseconds from the start of the trace. Goroutine stacks are counted only (goheap's heap
holds no stacks); allocation events carry no call stack, so the rows have none.

Frees come from the sweeper: an object is reported freed when its span is swept after
the collection that found it dead, so its death is known only to within a GC cycle. With
``goheap replay --mode free`` goheap frees it at that (late) moment; with ``--mode gc``
(the default) it becomes unreachable then and goheap's own collector frees it at its next
collection after that.

Bad input
---------
Everything read is checked: a batch longer than 64 KB, a varint longer than 64 bits, an
event kind the version does not have or that runs past its batch, an object in no known
span, a size class the version does not have, all raise
:class:`~goheap.trace.TraceFormatError` naming the byte offset (of the uncompressed
trace) and nothing is written. A trace cut short is imported up to its last complete
batch, with a :class:`~goheap.trace.TraceTruncatedWarning` naming the offset. A trace
without AllocFree events is an error that says how to record them.

Memory and speed: the reader holds one generation at a time (as Go's own reader does)
plus the table of live spans; rows written to a file wait in memory up to
:data:`~goheap.trace.spill.MEMORY_BYTES`, then go to files beside the output as each
generation is done. The work per byte and per event is compiled (:mod:`.decode`): framing
the batches, then one call per generation that decodes its events, merges them into one
order and turns them into rows in their final dtypes. Its working arrays are numpy's (in
huge pages), kept from one generation to the next. ``bench/bench_trace_import.py`` measures it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

import numpy as np

from goheap.trace.exectrace.reader import ExecTraceReader, is_exectrace
from goheap.trace.tracefile import Trace, write_trace_file

__all__ = ["import_exectrace", "import_exectrace_to_file", "is_exectrace"]


def import_exectrace(path: str | os.PathLike[str], *, progress: Callable[[int], Any] | None = None) -> Trace:
    """Read the execution trace at ``path`` (plain or gzip; ``"-"`` for stdin) into a Trace.

    ``progress(bytes_read)`` is called after each generation. Raises
    :class:`~goheap.trace.TraceFormatError`; warns :class:`~goheap.trace.TraceTruncatedWarning`.
    """
    reader = ExecTraceReader(path, progress=progress)
    try:
        meta = reader.read()
        rows: dict[str, Any] = reader.rows.arrays()  # Trace's columns, by name
        heap = reader.heap.arrays()
        goal = reader.goal.arrays()
    finally:
        reader.close()
    return Trace(
        **rows,
        func_id=np.full(len(rows["kind"]), -1, np.int32),
        types=tuple(reader.types),
        meta=meta,
        gc_end_ns=np.array(reader.gc_end_ns, np.int64),
        heap_series=_records(heap),
        goal_series=_records(goal),
    )


def import_exectrace_to_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Callable[[int], Any] | None = None,
):
    """Import the execution trace at ``path`` straight into the trace file ``out``.

    The rows wait in memory up to :data:`~goheap.trace.spill.MEMORY_BYTES`, then spill to
    a temporary directory beside ``out`` as each generation is read, so memory holds that
    and one generation, whatever the length of the trace. On any error
    nothing is written. Returns a :class:`~goheap.trace.ImportResult`.
    """
    from goheap.trace.allocfreetrace import ImportResult

    out = Path(out)
    directory = out.parent if str(out.parent) else Path(".")
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".import", dir=directory) as spill:
        reader = ExecTraceReader(path, spill_dir=spill, progress=progress)
        try:
            meta = reader.read()
            members = dict(reader.rows.members())
            members["func_id"] = (reader.rows.n, _constant_blocks(reader.rows.n, np.int32(-1)))
            members["gc_end_ns"] = (len(reader.gc_end_ns), [_int64_bytes(reader.gc_end_ns)])
            for name, series in (("heap_series", reader.heap), ("goal_series", reader.goal)):
                members[name] = (series.n, [_records(series.arrays()).tobytes()])
            write_trace_file(out, members, reader.types, (), meta, bounds=reader.bounds)
        finally:
            reader.close()
    nbytes = dict(reader.nbytes)
    return ImportResult(out, MappingProxyType({**meta, "format": "goheap-trace"}), nbytes, len(reader.types), 0)


def _constant_blocks(n: int, value: Any, block: int = 1 << 18) -> Any:
    """``n`` copies of ``value`` as byte blocks (a column with nothing to say)."""
    chunk = np.full(min(n, block), value)
    for start in range(0, n, block):
        yield chunk[: min(block, n - start)].data.cast("B")


def _records(columns: dict) -> Any:
    from goheap.trace.tracefile import SERIES_DTYPE

    out = np.zeros(len(columns["time_ns"]), SERIES_DTYPE)
    for name in SERIES_DTYPE.names or ():  # a structured dtype: its names are never None
        out[name] = columns[name]
    return out


def _int64_bytes(values: list[int]) -> bytes:
    return np.asarray(values, dtype="<i8").tobytes()
