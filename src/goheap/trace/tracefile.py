"""The goheap trace file: a compact, versioned record of allocation, free and GC events.

A :class:`Trace` is the result of importing a recorded Go program: a Go 1.3-1.21
``GODEBUG=allocfreetrace=1`` log (:mod:`goheap.trace.allocfreetrace`) or a Go 1.23+
execution trace recorded with ``GODEBUG=traceallocfree=1``
(:mod:`goheap.trace.exectrace`). It holds one row per event in parallel numpy columns,
string tables, and the recorded run's own view of its heap:

============  ========  ==============================================================
column        dtype     meaning
============  ========  ==============================================================
``kind``      uint8     :data:`KIND_ALLOC` (0), :data:`KIND_FREE` (1) or :data:`KIND_GC` (2)
``addr``      uint64    address of the block (0 for a GC point)
``size``      uint64    size of the block in bytes (0 for a GC point): as logged by
                        allocfreetrace; the slot size of its span's size class for an
                        execution trace
``type_id``   int32     index into ``types``; -1 = no type recorded
``func_id``   int32     index into ``funcs``: the first stack frame whose function is
                        not in package ``runtime``; -1 = none (runtime-internal
                        allocations, most frees, every GC point, every execution-trace
                        event: their allocations carry no stack)
``noscan``    uint8     1 for a block that holds no pointers. allocfreetrace logs a type
                        only for blocks with pointers, so there it is ``type_id < 0``;
                        an execution trace records it in the span class
``time_ns``   int64     nanoseconds since the trace began, on the recorded run's clock;
                        -1 throughout for an allocfreetrace log, which has no clock
``stack_id``  int32     index into the stack table: the full call stack of the event
                        (innermost first, the allocator's own frames dropped); -1 = none
============  ========  ==============================================================

``types`` and ``funcs`` are tuples of distinct strings in order of first appearance, so
``trace.types[trace.type_id[i]]`` is the Go type name of event ``i`` when ``type_id[i] >= 0``.
The stack table: ``frames`` is a tuple of ``(function, file, line)``, and stack ``k`` is
``frames[stack_frames[stack_offsets[k]:stack_offsets[k + 1]]]`` (:meth:`Trace.stack`).

The recorded run's own view, for comparison with a replay (execution traces only; empty
for allocfreetrace logs, where :class:`~goheap.trace.ReplayPlan` computes the live heap at
each ``tracegc`` from the events themselves):

``gc_end_ns``
    int64, one per GC point (row of kind ``gc``), in order: when that collection's mark
    phase ended (-1: not recorded). The GC point itself is at its start (``GCBegin``).
``heap_series``, ``goal_series``
    :data:`SERIES_DTYPE` records ``(time_ns, event, bytes)``: the runtime's HeapAlloc
    metric (``gcController.heapLive``) and heap-goal metric each time the trace recorded
    them; ``event`` is the number of rows before that moment.

``meta`` is a small read-only mapping (format version, source file name and format,
event counts, ...).

File format (version 3)
-----------------------
A trace file is a numpy ``.npz`` archive (a zip file, deflated at level 1: most of an
import's time would otherwise go to compressing) that loads with
``numpy.load(path, allow_pickle=False)``. Its members:

``kind``, ``addr``, ``size``, ``type_id``, ``func_id`` (required)
    The first five columns above, 1-D, all the same length, little-endian.
``noscan``, ``time_ns``, ``stack_id`` (optional)
    The other columns; when absent they are derived (``type_id < 0``, -1, -1).
``stack_frames`` int32, ``stack_offsets`` int64 (optional, together)
    The stack table; ``stack_offsets`` starts at 0, never decreases, and ends at
    ``len(stack_frames)``.
``gc_end_ns``, ``heap_series``, ``goal_series`` (optional)
    The recorded run's view, as above.
``strings``
    uint8 array: the UTF-8 encoding of a JSON object ``{"types": [...], "funcs": [...],
    "frames": [[function, file, line], ...]}`` (JSON rather than a numpy unicode array so
    that every string survives exactly; ``frames`` may be absent).
``meta``
    uint8 array: the UTF-8 encoding of a JSON object with at least ``"format":
    "goheap-trace"``, ``"version": 3``, ``"source"`` (the input's file name or ``null``),
    ``"events"`` (the number of rows) and ``"counts"`` (``{"alloc": n, "free": n, "gc":
    n}``). Importers add ``"source_format"`` (``"allocfreetrace"`` or ``"exectrace"``),
    ``"truncated"`` (whether the input ended mid-event) and what they know of the input
    (``log_bytes``, ``log_lines``; for execution traces ``go_version``, ``event_counts``
    per Go event kind, ``tiny_allocs``, ...). Readers ignore keys they do not know.

Some columns are stored so that they compress fast and small, and come back exactly:

* ``addr`` and ``time_ns`` (:data:`STEP_COLUMNS`) as *steps*, each entry minus the one
  before it (the first minus 0) in the column's own dtype, wrapping around, so
  ``numpy.cumsum(member.astype(dtype), dtype=dtype)`` gives the column back; ``time_ns``'s
  steps in the smallest signed integer dtype that holds them (int8 to int64);
* ``type_id``, ``func_id`` and ``stack_id`` (:data:`ID_COLUMNS`) in the smallest of int8,
  int16 and int32 that holds -1 and every id of their table;
* ``size`` (:data:`NARROW_COLUMNS`) in the smallest unsigned integer dtype that holds it.

A reader widens each to the dtype of the table above. The other members are stored as
they are.

Earlier versions load as they are: version 2 stored every column as it is, and version 1
(before the optional members existed) derives every optional member. :meth:`Trace.load` checks all of the above (members, dtypes, lengths,
id ranges, counts) and raises :class:`TraceFormatError` naming the file and the problem.
A file whose ``version`` is newer than :data:`FORMAT_VERSION` is refused.

Writing: :meth:`Trace.save` and :func:`write_trace_file` (which takes each member as a
stream of byte blocks, so a trace larger than memory can be written from files on disk)
share one writer. It streams every member into the zip archive block by block and writes
to a temporary file beside the target, renamed into place at the end, so a failed write
leaves nothing behind (and an existing file at the target untouched).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from goheap.atomicfile import PendingFiles
from goheap.trace.bounded import memory_budget, read_npy_member

from goheap.errors import HeapError as _ErrorBase

__all__ = [
    "COLUMNS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ID_COLUMNS",
    "KIND_ALLOC",
    "KIND_FREE",
    "KIND_GC",
    "KIND_NAMES",
    "NARROW_COLUMNS",
    "OPTIONAL_COLUMNS",
    "SERIES_DTYPE",
    "STEP_COLUMNS",
    "Trace",
    "TraceFormatError",
    "TraceTruncatedWarning",
    "kind_counts",
    "summary_text",
    "write_trace_file",
]

#: Event kinds, the values of the ``kind`` column.
KIND_ALLOC = 0
KIND_FREE = 1
KIND_GC = 2
#: Name of each kind, indexed by its value.
KIND_NAMES = ("alloc", "free", "gc")

#: Value of ``meta["format"]``.
FORMAT_NAME = "goheap-trace"
#: Newest file format version this module reads, and the one it writes.
FORMAT_VERSION = 3

#: The required event columns and their on-disk dtypes, in order.
COLUMNS: tuple[tuple[str, np.dtype], ...] = (
    ("kind", np.dtype("<u1")),
    ("addr", np.dtype("<u8")),
    ("size", np.dtype("<u8")),
    ("type_id", np.dtype("<i4")),
    ("func_id", np.dtype("<i4")),
)
#: The event columns a file may leave out (they are derived), and their dtypes.
OPTIONAL_COLUMNS: tuple[tuple[str, np.dtype], ...] = (
    ("noscan", np.dtype("<u1")),
    ("time_ns", np.dtype("<i8")),
    ("stack_id", np.dtype("<i4")),
)
#: One point of a recorded series: when, after how many rows, how many bytes.
SERIES_DTYPE = np.dtype([("time_ns", "<i8"), ("event", "<i8"), ("bytes", "<u8")])
#: The other optional members (tables beside the rows) and their dtypes.
TABLES: tuple[tuple[str, np.dtype], ...] = (
    ("stack_frames", np.dtype("<i4")),
    ("stack_offsets", np.dtype("<i8")),
    ("gc_end_ns", np.dtype("<i8")),
    ("heap_series", SERIES_DTYPE),
    ("goal_series", SERIES_DTYPE),
)
_DTYPES = dict(COLUMNS + OPTIONAL_COLUMNS + TABLES)
#: The columns a version 3 file stores as steps (see the module docstring).
STEP_COLUMNS = ("addr", "time_ns")
#: The columns of ids a version 3 file stores in the smallest dtype that holds them.
ID_COLUMNS = ("type_id", "func_id", "stack_id")
#: The columns a version 3 file stores in the smallest dtype that holds them, when the
#: writer is told their bounds.
NARROW_COLUMNS = ("size",)
_MEMBERS = frozenset(name for name, _ in COLUMNS) | {"strings", "meta"}
_COLUMN_NAMES = frozenset(name for name, _ in COLUMNS + OPTIONAL_COLUMNS)
#: The largest JSON member (meta, string tables) a trace file may hold.
MAX_JSON_BYTES = 1 << 28


class TraceFormatError(_ErrorBase, ValueError):
    """An input or trace file that does not follow its format.

    The message names the file and where (the 1-based line of a log, the byte offset of
    an execution trace) and what was expected there.
    """

    __module__ = "goheap.trace"


class TraceTruncatedWarning(UserWarning):
    """An input that ends in the middle of an event; the complete events were imported."""

    __module__ = "goheap.trace"


def _readonly(a: Any, dtype: np.dtype, name: str) -> np.ndarray:
    """``a`` as a read-only 1-D array of ``dtype``, copied unless it already is one."""
    if not isinstance(a, np.ndarray):
        a = np.array(a, dtype=dtype)  # exact for Python ints up to 2**64 - 1
    elif a.dtype != dtype:
        a = a.astype(dtype)
    elif a.flags.writeable or a.base is not None or not a.flags.c_contiguous:
        a = a.copy()
    if a.ndim != 1:
        raise ValueError(f"column {name!r} must be 1-D, got shape {a.shape}")
    a.flags.writeable = False
    return a


def _series(a: Any, name: str) -> np.ndarray:
    """A series as a read-only :data:`SERIES_DTYPE` array (from records or (n, 3) rows)."""
    if a is None:
        a = np.zeros(0, SERIES_DTYPE)
    elif not (isinstance(a, np.ndarray) and a.dtype == SERIES_DTYPE):
        rows = np.asarray(a, dtype=np.int64).reshape(-1, 3) if len(a) else np.zeros((0, 3), np.int64)
        out = np.zeros(len(rows), SERIES_DTYPE)
        out["time_ns"], out["event"], out["bytes"] = rows[:, 0], rows[:, 1], rows[:, 2]
        a = out
    return _readonly(a, SERIES_DTYPE, name)


# An optional member's default: None, which __post_init__ replaces (by an empty or a computed
# array). Typed Any so that the fields can say what a Trace holds once built: an array.
_ABSENT: Any = None


@dataclass(frozen=True, eq=False)
class Trace:
    """An immutable sequence of allocation, free and GC events (see the module docstring).

    The columns are read-only numpy arrays; ``types`` and ``funcs`` are tuples of strings,
    ``frames`` a tuple of ``(function, file, line)``; ``meta`` is a read-only mapping.
    Build one with :func:`goheap.trace.import_log`, :func:`goheap.trace.import_exectrace`,
    :meth:`Trace.load` or directly from arrays (they are copied and converted to the
    column dtypes; the optional columns and tables default as a version 1 file's do).
    """

    kind: np.ndarray
    addr: np.ndarray
    size: np.ndarray
    type_id: np.ndarray
    func_id: np.ndarray
    types: tuple[str, ...] = ()
    funcs: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    noscan: np.ndarray = _ABSENT
    time_ns: np.ndarray = _ABSENT
    stack_id: np.ndarray = _ABSENT
    frames: tuple[tuple[str, str, int], ...] = ()
    stack_frames: np.ndarray = _ABSENT
    stack_offsets: np.ndarray = _ABSENT
    gc_end_ns: np.ndarray = _ABSENT
    heap_series: np.ndarray = _ABSENT
    goal_series: np.ndarray = _ABSENT

    def __post_init__(self) -> None:
        n = None
        for name, dtype in COLUMNS:
            a = _readonly(getattr(self, name), dtype, name)
            object.__setattr__(self, name, a)
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError(f"column {name!r} has {len(a)} rows, expected {n}")
        n = int(n or 0)
        defaults = {
            "noscan": lambda: (self.type_id < 0).astype(np.uint8),
            "time_ns": lambda: np.full(n, -1, np.int64),
            "stack_id": lambda: np.full(n, -1, np.int32),
        }
        for name, dtype in OPTIONAL_COLUMNS:
            value = getattr(self, name)
            a = _readonly(defaults[name]() if value is None else value, dtype, name)
            if len(a) != n:
                raise ValueError(f"column {name!r} has {len(a)} rows, expected {n}")
            object.__setattr__(self, name, a)
        object.__setattr__(self, "types", tuple(str(s) for s in self.types))
        object.__setattr__(self, "funcs", tuple(str(s) for s in self.funcs))
        object.__setattr__(self, "frames", tuple((str(f), str(p), int(ln)) for f, p, ln in self.frames))
        frames = _readonly(np.zeros(0, np.int32) if self.stack_frames is None else self.stack_frames, _DTYPES["stack_frames"], "stack_frames")
        offsets = _readonly(np.zeros(1, np.int64) if self.stack_offsets is None else self.stack_offsets, _DTYPES["stack_offsets"], "stack_offsets")
        object.__setattr__(self, "stack_frames", frames)
        object.__setattr__(self, "stack_offsets", offsets)
        gc_end = np.full(0, -1, np.int64) if self.gc_end_ns is None else self.gc_end_ns
        object.__setattr__(self, "gc_end_ns", _readonly(gc_end, _DTYPES["gc_end_ns"], "gc_end_ns"))
        for name in ("heap_series", "goal_series"):
            object.__setattr__(self, name, _series(getattr(self, name), name))
        meta = dict(self.meta)
        meta.setdefault("format", FORMAT_NAME)
        meta.setdefault("version", FORMAT_VERSION)
        meta.setdefault("source", None)
        meta["events"] = n
        counts = self.counts()
        meta["counts"] = counts
        object.__setattr__(self, "meta", MappingProxyType(meta))
        problem = self._table_problem(counts["gc"])
        if problem:
            raise ValueError(problem)

    def _table_problem(self, n_gc: int) -> str | None:
        """What is inconsistent between the rows and the tables, or None."""
        off = self.stack_offsets
        if len(off) == 0 or off[0] != 0 or off[-1] != len(self.stack_frames) or np.any(np.diff(off) < 0):
            return (
                f"'stack_offsets' must start at 0, never decrease and end at len(stack_frames) "
                f"({len(self.stack_frames)})"
            )
        if len(self.stack_frames) and (self.stack_frames.min() < 0 or self.stack_frames.max() >= len(self.frames)):
            return f"'stack_frames' holds frame ids outside 0..{len(self.frames) - 1} (the size of the frame table)"
        n_stacks = len(off) - 1
        if len(self) and (int(self.stack_id.min()) < -1 or int(self.stack_id.max()) >= n_stacks):
            return f"column 'stack_id' holds ids outside -1..{n_stacks - 1} (the number of stacks)"
        if len(self) and int(self.noscan.max()) > 1:
            return "column 'noscan' holds values other than 0 and 1"
        if len(self.gc_end_ns) not in (0, n_gc):
            return f"'gc_end_ns' has {len(self.gc_end_ns)} entries, but the trace has {n_gc} GC points"
        for name in ("heap_series", "goal_series"):
            series = getattr(self, name)
            if len(series) and (series["event"].min() < 0 or series["event"].max() > len(self)):
                return f"{name!r} refers to events outside 0..{len(self)}"
        return None

    # -- sizes and counts -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.kind)

    def counts(self) -> dict[str, int]:
        """Number of events of each kind: ``{"alloc": n, "free": n, "gc": n}``."""
        return dict(zip(KIND_NAMES, kind_counts(self.kind).tolist(), strict=True))

    @property
    def n_alloc(self) -> int:
        """Number of allocation events."""
        return int(np.count_nonzero(self.kind == KIND_ALLOC))

    @property
    def n_free(self) -> int:
        """Number of free events."""
        return int(np.count_nonzero(self.kind == KIND_FREE))

    @property
    def n_gc(self) -> int:
        """Number of GC points."""
        return int(np.count_nonzero(self.kind == KIND_GC))

    @property
    def n_stacks(self) -> int:
        """Number of stacks in the stack table."""
        return len(self.stack_offsets) - 1

    @property
    def has_clock(self) -> bool:
        """Whether the events carry the recorded run's time (execution traces do)."""
        return bool(len(self)) and int(self.time_ns[-1]) >= 0

    def bytes_by_kind(self) -> dict[str, int]:
        """Total ``size`` of the alloc and free events: ``{"alloc": n, "free": n}``."""
        out = {}
        for k, name in ((KIND_ALLOC, "alloc"), (KIND_FREE, "free")):
            out[name] = int(self.size[self.kind == k].sum(dtype=np.uint64))
        return out

    def type_name(self, i: int) -> str | None:
        """Go type name of event ``i``, or None if no type was logged."""
        t = int(self.type_id[i])
        return self.types[t] if t >= 0 else None

    def func_name(self, i: int) -> str | None:
        """Allocating (first non-runtime) function of event ``i``, or None."""
        f = int(self.func_id[i])
        return self.funcs[f] if f >= 0 else None

    def stack(self, k: int) -> list[tuple[str, str, int]]:
        """Stack ``k`` of the stack table as ``(function, file, line)`` frames, innermost first."""
        ids = self.stack_frames[self.stack_offsets[k] : self.stack_offsets[k + 1]]
        return [self.frames[int(f)] for f in ids]

    def summary(self) -> str:
        """A one-paragraph, human-readable description of the trace."""
        return summary_text(self.meta, self.bytes_by_kind(), len(self.types), len(self.funcs))

    # -- equality ---------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        arrays = [n for n, _ in COLUMNS + OPTIONAL_COLUMNS + TABLES]
        return (
            all(
                getattr(self, n).dtype == getattr(other, n).dtype
                and np.array_equal(getattr(self, n), getattr(other, n))
                for n in arrays
            )
            and self.types == other.types
            and self.funcs == other.funcs
            and self.frames == other.frames
            and dict(self.meta) == dict(other.meta)
        )

    __hash__ = None  # type: ignore[assignment]

    # -- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace to ``path`` (format above) atomically; return the path.

        The name is used as given (numpy's habit of appending ``.npz`` is not followed).
        """
        members = {
            name: (len(getattr(self, name)), [memoryview(getattr(self, name)).cast("B")])
            for name, _ in COLUMNS + OPTIONAL_COLUMNS + TABLES
        }
        bounds = {}
        if len(self):
            steps = np.diff(self.time_ns, prepend=np.int64(0))
            bounds = {"size": (int(self.size.min()), int(self.size.max())), "time_ns": (int(steps.min()), int(steps.max()))}
        return write_trace_file(path, members, self.types, self.funcs, self.meta, frames=self.frames, bounds=bounds)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace file written by :meth:`save` (or a version 1 file), checking it thoroughly.

        Raises :class:`TraceFormatError` (naming the file) if it is not a valid trace
        file, and ``OSError`` if it cannot be read.
        """
        name = os.fspath(path)

        def bad(what: str) -> TraceFormatError:
            return TraceFormatError(f"{name}: not a valid goheap trace file: {what}")

        with open(path, "rb") as f:
            head = f.read(6)
            if head[:6] == b"\x93NUMPY":
                raise bad("expected a .npz archive, got a single .npy array")
            if head[:2] != b"PK":  # numpy would take anything else for a pickle
                raise bad("cannot read it as a .npz archive (it is not a zip file)")
            try:
                zf = zipfile.ZipFile(f)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
                raise bad(f"cannot read it as a .npz archive ({e})") from None
            with zf:
                present = {m[:-4] for m in zf.namelist() if m.endswith(".npy")}
                missing = sorted(_MEMBERS - present)
                if missing:
                    raise bad(f"missing member(s) {', '.join(missing)}")
                # every member is read in bounded memory, its size checked before it is
                # decompressed (see goheap.trace.bounded): the small JSON members first
                budget = memory_budget()
                label = f"{name}: not a valid goheap trace file"
                try:
                    meta = _json_member(read_npy_member(zf, "meta.npy", label, max_bytes=MAX_JSON_BYTES))
                    strings = _json_member(read_npy_member(zf, "strings.npy", label, max_bytes=MAX_JSON_BYTES))
                    events = meta.get("events") if isinstance(meta, dict) else None
                    if not isinstance(events, int) or isinstance(events, bool) or events < 0:
                        events = None
                    arrays = {}
                    for member in _DTYPES:
                        if f"{member}.npy" in zf.namelist():
                            rows = events if member in _COLUMN_NAMES else None
                            arrays[member] = read_npy_member(zf, f"{member}.npy", label, max_bytes=budget, rows=rows)
                            # a column stored narrow (version 3) is widened: count what it will take
                            budget -= max(arrays[member].nbytes, len(arrays[member]) * _DTYPES[member].itemsize)
                            if budget < 0:
                                raise bad(f"member {member!r} needs more memory than a trace may take here")
                except (ValueError, UnicodeDecodeError, RecursionError) as e:
                    if isinstance(e, TraceFormatError):
                        raise
                    what = "nested too deeply" if isinstance(e, RecursionError) else str(e)
                    raise bad(f"unreadable member ({what})") from None
        if not isinstance(meta, dict):
            raise bad("'meta' is not a JSON object")
        if meta.get("format") != FORMAT_NAME:
            raise bad(f"meta['format'] is {meta.get('format')!r}, expected {FORMAT_NAME!r}")
        version = meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad(f"meta['version'] is {version!r}, expected a positive integer")
        if version > FORMAT_VERSION:
            raise TraceFormatError(
                f"{name}: trace file format version {version} is newer than this goheap "
                f"reads (version {FORMAT_VERSION}); upgrade goheap"
            )
        arrays = _stored_columns(arrays, version)
        if not isinstance(strings, dict):
            raise bad("'strings' is not a JSON object")
        tables = {}
        for key in ("types", "funcs"):
            t = strings.get(key)
            if not isinstance(t, list) or not all(isinstance(s, str) for s in t):
                raise bad(f"strings[{key!r}] is not a list of strings")
            tables[key] = tuple(t)
        frames = strings.get("frames", [])
        if not isinstance(frames, list) or not all(
            isinstance(f, list) and len(f) == 3 and isinstance(f[0], str) and isinstance(f[1], str)
            and isinstance(f[2], int) and not isinstance(f[2], bool) for f in frames
        ):  # fmt: skip
            raise bad("strings['frames'] is not a list of [function, file, line]")
        for aname, a in arrays.items():
            dtype = _DTYPES[aname]
            if a.ndim != 1 or a.dtype != dtype:
                raise bad(f"{'column' if aname in _COLUMN_NAMES else 'member'} {aname!r} has dtype {a.dtype} and shape {a.shape}, expected a 1-D {dtype} array")
        n = len(arrays["kind"])
        for cname, _ in COLUMNS + OPTIONAL_COLUMNS:
            if cname in arrays and len(arrays[cname]) != n:
                raise bad(f"column {cname!r} has {len(arrays[cname])} rows, expected {n}")
        if ("stack_frames" in arrays) != ("stack_offsets" in arrays):
            raise bad("'stack_frames' and 'stack_offsets' come together")
        if n and int(arrays["kind"].max()) >= len(KIND_NAMES):
            raise bad(f"column 'kind' holds {int(arrays['kind'].max())}, expected 0, 1 or 2")
        for cname, key in (("type_id", "types"), ("func_id", "funcs")):
            a = arrays[cname]
            if n and (int(a.min()) < -1 or int(a.max()) >= len(tables[key])):
                raise bad(
                    f"column {cname!r} holds ids outside -1..{len(tables[key]) - 1} "
                    f"(the size of the {key!r} table)"
                )
        if meta.get("events", n) != n:
            raise bad(f"meta['events'] is {meta.get('events')!r}, but the columns have {n} rows")
        try:
            trace = cls(**arrays, types=tables["types"], funcs=tables["funcs"], frames=tuple(frames), meta=meta)
        except ValueError as e:
            raise bad(str(e)) from None
        if "counts" in meta and meta["counts"] != trace.counts():
            raise bad(f"meta['counts'] is {meta['counts']!r}, but the columns hold {trace.counts()}")
        return trace

    # -- construction helpers ---------------------------------------------------------

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Any],
        types: Sequence[str] = (),
        funcs: Sequence[str] = (),
        meta: Mapping[str, Any] | None = None,
        **tables: Any,
    ) -> Trace:
        """Build a trace from a mapping of column name to array-like (optional columns
        may be left out), and the other fields as keywords."""
        optional = {n: columns[n] for n, _ in OPTIONAL_COLUMNS if n in columns}
        return cls(
            **{n: columns[n] for n, _ in COLUMNS},
            **optional,
            types=tuple(types),
            funcs=tuple(funcs),
            meta=dict(meta or {}),
            **tables,
        )


def kind_counts(kind: np.ndarray) -> np.ndarray:
    """How many entries of a ``kind`` column are alloc, free and gc (int64, in that order)."""
    return np.array([np.count_nonzero(kind == k) for k in range(len(KIND_NAMES))], np.int64)


def summary_text(
    meta: Mapping[str, Any], nbytes: Mapping[str, int], n_types: int, n_funcs: int
) -> str:
    """The text of :meth:`Trace.summary` from a trace's ``meta`` (``counts``, ``events``,
    ``source``, ``truncated``), its :meth:`~Trace.bytes_by_kind` and the sizes of its
    string tables: what a streaming import prints without holding the trace."""
    c = meta["counts"]
    src = meta.get("source")
    head = f"{src}: " if src else ""
    text = (
        f"{head}{meta['events']:,} events: {c['alloc']:,} allocs ({_human(nbytes['alloc'])}), "
        f"{c['free']:,} frees ({_human(nbytes['free'])}), {c['gc']:,} GC points; "
        f"{n_types:,} distinct types, {n_funcs:,} distinct allocating functions."
    )
    if meta.get("source_format") == "exectrace":
        text = text.replace(" distinct allocating functions", " distinct allocating functions (an execution trace records no allocation stacks)")
        text += (
            f" Go {meta.get('go_version', '?')} execution trace of {meta.get('duration_ns', 0) / 1e9:.3f} s; "
            f"{meta.get('snapshot_objects', 0):,} objects alive when tracing began; "
            f"{meta.get('tiny_allocs', 0):,} tiny allocations folded into their 16-byte blocks."
        )
    if meta.get("truncated"):
        what = "trace" if meta.get("source_format") == "exectrace" else "log"
        text += f" The {what} was truncated: its last, incomplete event was dropped."
    return text


def write_trace_file(
    path: str | os.PathLike[str],
    members: Mapping[str, tuple[int, Iterable[bytes | memoryview]]],
    types: Sequence[str],
    funcs: Sequence[str],
    meta: Mapping[str, Any],
    *,
    frames: Sequence[tuple[str, str, int]] = (),
    bounds: Mapping[str, tuple[int, int]] | None = None,
) -> Path:
    """Write a trace file (format above) from streamed members, atomically; return the path.

    ``members`` maps each array member (the columns of :data:`COLUMNS`, and any of the
    optional columns and tables) to ``(n, blocks)``: its number of entries and an
    iterable of byte blocks which, concatenated, are the ``n`` values in the member's
    on-disk dtype. Only one block is held at a time, so members can come from files on
    disk. ``meta`` must already hold ``events`` and ``counts`` (the row count is checked
    against every column written: a mismatch raises ``ValueError`` and writes nothing);
    ``format`` and ``version`` are filled in. ``bounds`` may give, for a column of
    :data:`NARROW_COLUMNS`, the least and greatest of its values and, for ``time_ns``, of
    its steps (each entry minus the one before; the first minus 0), so that it is stored
    narrower; a value outside them raises ``ValueError`` and writes nothing.
    """
    path = Path(path)
    meta = dict(meta)
    meta.setdefault("format", FORMAT_NAME)
    meta["version"] = FORMAT_VERSION
    meta.setdefault("source", None)
    required = {name for name, _ in COLUMNS}
    unknown = set(members) - set(_DTYPES)
    if not required <= set(members) or unknown:
        raise ValueError(
            f"members must include {sorted(required)} and only known ones, got {sorted(members)}"
        )
    columns = [n for n, _ in COLUMNS + OPTIONAL_COLUMNS if n in members]
    counts = {int(members[n][0]) for n in columns}
    n_stacks = int(members["stack_offsets"][0]) - 1 if "stack_offsets" in members else 0
    id_counts = {"type_id": len(types), "func_id": len(funcs), "stack_id": n_stacks}
    if len(counts) != 1 or counts != {meta.get("events")}:
        raise ValueError(f"columns have {sorted(counts)} rows; meta['events'] is {meta.get('events')!r}")
    tables: dict[str, Any] = {"types": list(types), "funcs": list(funcs)}
    if frames:
        tables["frames"] = [list(f) for f in frames]
    strings = json.dumps(tables).encode("utf-8")
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    with PendingFiles() as pending:
        with pending.writing(path) as tmp, open(tmp, "wb") as f, zipfile.ZipFile(
            f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        ) as zf:
            for name, dtype in COLUMNS + OPTIONAL_COLUMNS + TABLES:
                if name in members:
                    n, blocks = members[name]
                    stored, encoded = _encoded(name, dtype, blocks, id_counts.get(name, 0), (bounds or {}).get(name))
                    _write_member(zf, name, stored, int(n), encoded)
            for name, data in (("strings", strings), ("meta", meta_bytes)):
                _write_member(zf, name, np.dtype(np.uint8), len(data), [data])
        pending.commit()
    return path


def _encoded(
    name: str, dtype: np.dtype, blocks: Iterable[bytes | memoryview], n_ids: int, bounds: tuple[int, int] | None
) -> tuple[np.dtype, Iterable[bytes | memoryview | np.ndarray]]:
    """The dtype a version 3 file stores member ``name`` in, and its blocks so encoded
    (see the module docstring; ``n_ids``: the size of an id column's table; ``bounds``:
    the least and greatest value of a NARROW_COLUMNS column, or step of a STEP_COLUMNS one)."""
    if name in ID_COLUMNS:
        stored = _narrowest(_SIGNED, -1, n_ids - 1)
        return stored, _fitted(name, _whole_items(blocks, dtype), stored, -1, n_ids - 1, "ids", f" (the size of its table, {n_ids})")
    if name in STEP_COLUMNS:
        items = _differences(_whole_items(blocks, dtype))
        if bounds is None or name == "addr":
            return dtype, items
        stored = _narrowest(_SIGNED, *bounds)
        return stored, _fitted(name, items, stored, *bounds, "steps", "")
    if name in NARROW_COLUMNS and bounds is not None:
        stored = _narrowest(_UNSIGNED, *bounds)
        return stored, _fitted(name, _whole_items(blocks, dtype), stored, *bounds, "values", "")
    return dtype, blocks


_SIGNED = (np.dtype("<i1"), np.dtype("<i2"), np.dtype("<i4"), np.dtype("<i8"))
_UNSIGNED = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"), np.dtype("<u8"))


def _narrowest(dtypes: tuple[np.dtype, ...], low: int, high: int) -> np.dtype:
    return next(d for d in dtypes if np.iinfo(d).min <= low and high <= np.iinfo(d).max)


def _whole_items(blocks: Iterable[bytes | memoryview], dtype: np.dtype) -> Iterable[np.ndarray]:
    """The blocks as arrays of ``dtype`` (an item cut between two blocks is joined; bytes
    left over at the end are dropped, and the writer's count finds them missing)."""
    rest = b""
    for block in blocks:
        data: Any = memoryview(block).cast("B")
        if rest:
            data = rest + bytes(data)
        cut = len(data) - len(data) % dtype.itemsize
        rest = bytes(data[cut:])
        if cut:
            yield np.frombuffer(data[:cut], dtype)


def _differences(items: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    """Each entry minus the one before (the first minus 0), wrapping around."""
    before = None
    for a in items:
        d = np.empty_like(a)
        np.subtract(a[1:], a[:-1], out=d[1:])
        d[0] = a[0] if before is None else np.subtract(a[:1], before)[0]
        before = a[-1:].copy()
        yield d


def _fitted(name: str, items: Iterable[np.ndarray], stored: np.dtype, low: int, high: int, what: str, why: str) -> Iterable[np.ndarray]:
    """The arrays in ``stored``; a value outside ``low..high`` is an error (nothing is written)."""
    for a in items:
        if int(a.min()) < low or int(a.max()) > high:
            raise ValueError(f"column {name!r} holds {what} outside {low}..{high}{why}")
        yield a.astype(stored)


def _stored_columns(arrays: dict[str, np.ndarray], version: int) -> dict[str, np.ndarray]:
    """The columns from the members of a version ``version`` file (a member in a dtype
    the format does not allow is left as it is, for the caller to report)."""
    if version < 3:
        return arrays
    out = dict(arrays)
    for name, a in arrays.items():
        if a.ndim != 1 or name not in _COLUMN_NAMES:
            continue
        column = _DTYPES[name]
        allowed = _SIGNED if name in ID_COLUMNS or name == "time_ns" else _UNSIGNED if name in NARROW_COLUMNS else (column,)
        if a.dtype in allowed and (a.dtype.itemsize <= column.itemsize):
            a = a.astype(column)
            out[name] = np.cumsum(a, dtype=column) if name in STEP_COLUMNS else a
    return out


def _write_member(
    zf: zipfile.ZipFile, name: str, dtype: np.dtype, n: int, blocks: Iterable[bytes | memoryview | np.ndarray]
) -> None:
    """One ``NAME.npy`` member: a version 1.0 .npy header for a 1-D array, then the blocks."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n,)}
    )
    expected = n * dtype.itemsize
    written = 0
    with zf.open(f"{name}.npy", "w", force_zip64=True) as m:
        m.write(header.getvalue())
        for block in blocks:
            view = block.data if isinstance(block, np.ndarray) else memoryview(block)  # an array's .data is its memoryview
            m.write(view)
            written += view.nbytes
    if written != expected:
        raise ValueError(f"column {name!r}: got {written} bytes, expected {expected} ({n} rows)")


def _json_member(a: np.ndarray) -> Any:
    if a.dtype != np.uint8 or a.ndim != 1:
        raise ValueError(f"expected a 1-D uint8 array of JSON text, got {a.dtype} {a.shape}")
    return json.loads(a.tobytes().decode("utf-8"))


def _human(n: int) -> str:
    """``n`` bytes in binary units with 1 decimal, e.g. ``'3.2 MiB'``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024.0
        if value < 1024 or unit == "PiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
