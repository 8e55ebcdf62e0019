"""The goheap trace file: a compact, versioned record of allocation, free and GC events.

A :class:`Trace` is the result of importing a Go ``GODEBUG=allocfreetrace=1`` log (see
:mod:`goheap.trace.allocfreetrace`). It holds one row per event in five parallel numpy
columns plus two string tables:

============  ========  ==============================================================
column        dtype     meaning
============  ========  ==============================================================
``kind``      uint8     :data:`KIND_ALLOC` (0), :data:`KIND_FREE` (1) or :data:`KIND_GC` (2)
``addr``      uint64    address of the block (0 for a GC point)
``size``      uint64    size of the block in bytes, as logged (0 for a GC point)
``type_id``   int32     index into ``types``; -1 = no type logged (a no-pointer
                        allocation, every free, every GC point)
``func_id``   int32     index into ``funcs``: the first stack frame whose function is
                        not in package ``runtime``; -1 = none (runtime-internal
                        allocations, most frees, every GC point)
============  ========  ==============================================================

``types`` and ``funcs`` are tuples of distinct strings in order of first appearance, so
``trace.types[trace.type_id[i]]`` is the Go type name of event ``i`` when ``type_id[i] >= 0``.
``meta`` is a small read-only mapping (format version, source file name, event counts, size
of the source log, ...).

File format (version 1)
-----------------------
A trace file is a numpy ``.npz`` archive (a zip file, written with
:func:`numpy.savez_compressed`) that loads with ``numpy.load(path, allow_pickle=False)``.
It holds exactly these members:

``kind``, ``addr``, ``size``, ``type_id``, ``func_id``
    The five columns above, 1-D, all the same length, with exactly the dtypes above
    (little-endian).
``strings``
    uint8 array: the UTF-8 encoding of a JSON object ``{"types": [...], "funcs": [...]}``
    (JSON rather than a numpy unicode array so that every string survives exactly).
``meta``
    uint8 array: the UTF-8 encoding of a JSON object with at least ``"format":
    "goheap-trace"``, ``"version": 1``, ``"source"`` (the log's file name or ``null``),
    ``"events"`` (the number of rows) and ``"counts"`` (``{"alloc": n, "free": n, "gc":
    n}``). The importer also stores ``"log_bytes"`` and ``"log_lines"`` (size of the
    uncompressed log) and ``"truncated"`` (whether the log ended mid-event). Readers
    ignore keys they do not know.

:meth:`Trace.load` checks all of the above (members, dtypes, lengths, id ranges, counts)
and raises :class:`TraceFormatError` naming the file and the problem. A file whose
``version`` is newer than :data:`FORMAT_VERSION` is refused.

Writing: :meth:`Trace.save` and :func:`write_trace_file` (which takes each column as a
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

try:  # pragma: no branch - goheap.errors is part of the package
    from goheap.errors import HeapError as _ErrorBase
except ImportError:  # pragma: no cover - only while goheap.errors is not yet in the tree
    _ErrorBase = Exception

__all__ = [
    "COLUMNS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "KIND_ALLOC",
    "KIND_FREE",
    "KIND_GC",
    "KIND_NAMES",
    "Trace",
    "TraceFormatError",
    "TraceTruncatedWarning",
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
FORMAT_VERSION = 1

#: The event columns and their on-disk dtypes, in order.
COLUMNS: tuple[tuple[str, np.dtype], ...] = (
    ("kind", np.dtype("<u1")),
    ("addr", np.dtype("<u8")),
    ("size", np.dtype("<u8")),
    ("type_id", np.dtype("<i4")),
    ("func_id", np.dtype("<i4")),
)
_MEMBERS = frozenset(name for name, _ in COLUMNS) | {"strings", "meta"}
#: The largest JSON member (meta, string tables) a trace file may hold.
MAX_JSON_BYTES = 1 << 28


class TraceFormatError(_ErrorBase, ValueError):
    """A log or trace file that does not follow its format.

    The message names the file (and, for logs, the 1-based line number) and what was
    expected there.
    """

    __module__ = "goheap.trace"


class TraceTruncatedWarning(UserWarning):
    """A log that ends in the middle of an event; the complete events were imported."""

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


@dataclass(frozen=True, eq=False)
class Trace:
    """An immutable sequence of allocation, free and GC events (see the module docstring).

    The columns are read-only numpy arrays; ``types`` and ``funcs`` are tuples of strings;
    ``meta`` is a read-only mapping. Build one with :func:`goheap.trace.import_log`,
    :meth:`Trace.load` or directly from arrays (they are copied and converted to the
    column dtypes).
    """

    kind: np.ndarray
    addr: np.ndarray
    size: np.ndarray
    type_id: np.ndarray
    func_id: np.ndarray
    types: tuple[str, ...] = ()
    funcs: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = None
        for name, dtype in COLUMNS:
            a = _readonly(getattr(self, name), dtype, name)
            object.__setattr__(self, name, a)
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError(f"column {name!r} has {len(a)} rows, expected {n}")
        object.__setattr__(self, "types", tuple(str(s) for s in self.types))
        object.__setattr__(self, "funcs", tuple(str(s) for s in self.funcs))
        meta = dict(self.meta)
        meta.setdefault("format", FORMAT_NAME)
        meta.setdefault("version", FORMAT_VERSION)
        meta.setdefault("source", None)
        meta["events"] = int(n or 0)
        meta["counts"] = self.counts()
        object.__setattr__(self, "meta", MappingProxyType(meta))

    # -- sizes and counts -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.kind)

    def counts(self) -> dict[str, int]:
        """Number of events of each kind: ``{"alloc": n, "free": n, "gc": n}``."""
        c = np.bincount(self.kind, minlength=len(KIND_NAMES))
        return {name: int(c[i]) for i, name in enumerate(KIND_NAMES)}

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

    def summary(self) -> str:
        """A one-paragraph, human-readable description of the trace."""
        return summary_text(self.meta, self.bytes_by_kind(), len(self.types), len(self.funcs))

    # -- equality ---------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (
            all(
                getattr(self, n).dtype == getattr(other, n).dtype
                and np.array_equal(getattr(self, n), getattr(other, n))
                for n, _ in COLUMNS
            )
            and self.types == other.types
            and self.funcs == other.funcs
            and dict(self.meta) == dict(other.meta)
        )

    __hash__ = None  # type: ignore[assignment]

    # -- files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the trace to ``path`` (format above) atomically; return the path.

        The name is used as given (numpy's habit of appending ``.npz`` is not followed).
        """
        columns = {name: (len(self), [memoryview(getattr(self, name))]) for name, _ in COLUMNS}
        return write_trace_file(path, columns, self.types, self.funcs, self.meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace file written by :meth:`save`, checking it thoroughly.

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
                    cols = {}
                    for n, _dtype in COLUMNS:
                        cols[n] = read_npy_member(zf, f"{n}.npy", label, max_bytes=budget, rows=events)
                        budget -= cols[n].nbytes
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
        if not isinstance(strings, dict):
            raise bad("'strings' is not a JSON object")
        tables = {}
        for key in ("types", "funcs"):
            t = strings.get(key)
            if not isinstance(t, list) or not all(isinstance(s, str) for s in t):
                raise bad(f"strings[{key!r}] is not a list of strings")
            tables[key] = tuple(t)
        n = None
        for cname, dtype in COLUMNS:
            a = cols[cname]
            if a.ndim != 1 or a.dtype != dtype:
                raise bad(
                    f"column {cname!r} has dtype {a.dtype} and shape {a.shape}, "
                    f"expected a 1-D {dtype} array"
                )
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise bad(f"column {cname!r} has {len(a)} rows, expected {n}")
        if n and int(cols["kind"].max()) >= len(KIND_NAMES):
            raise bad(f"column 'kind' holds {int(cols['kind'].max())}, expected 0, 1 or 2")
        for cname, key in (("type_id", "types"), ("func_id", "funcs")):
            a = cols[cname]
            if n and (int(a.min()) < -1 or int(a.max()) >= len(tables[key])):
                raise bad(
                    f"column {cname!r} holds ids outside -1..{len(tables[key]) - 1} "
                    f"(the size of the {key!r} table)"
                )
        if meta.get("events", n) != n:
            raise bad(f"meta['events'] is {meta.get('events')!r}, but the columns have {n} rows")
        trace = cls(**cols, types=tables["types"], funcs=tables["funcs"], meta=meta)
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
    ) -> Trace:
        """Build a trace from a mapping of column name to array-like."""
        return cls(
            **{n: columns[n] for n, _ in COLUMNS},
            types=tuple(types),
            funcs=tuple(funcs),
            meta=dict(meta or {}),
        )


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
    if meta.get("truncated"):
        text += " The log was truncated: its last, incomplete event was dropped."
    return text


def write_trace_file(
    path: str | os.PathLike[str],
    columns: Mapping[str, tuple[int, Iterable[bytes | memoryview]]],
    types: Sequence[str],
    funcs: Sequence[str],
    meta: Mapping[str, Any],
) -> Path:
    """Write a trace file (format above) from streamed columns, atomically; return the path.

    ``columns`` maps each column name of :data:`COLUMNS` to ``(n, blocks)``: its number of
    rows and an iterable of byte blocks which, concatenated, are the ``n`` values in the
    column's on-disk dtype. Only one block is held at a time, so the columns can come from
    files on disk. ``meta`` must already hold ``events`` and ``counts`` (they are checked
    against the rows written: a mismatch raises ``ValueError`` and writes nothing);
    ``format`` and ``version`` are filled in.
    """
    path = Path(path)
    meta = dict(meta)
    meta.setdefault("format", FORMAT_NAME)
    meta.setdefault("version", FORMAT_VERSION)
    meta.setdefault("source", None)
    if set(columns) != {name for name, _ in COLUMNS}:
        raise ValueError(f"columns must be exactly {[n for n, _ in COLUMNS]}, got {sorted(columns)}")
    counts = {int(n) for n, _ in columns.values()}
    if len(counts) != 1 or counts != {meta.get("events")}:
        raise ValueError(f"columns have {sorted(counts)} rows; meta['events'] is {meta.get('events')!r}")
    strings = json.dumps({"types": list(types), "funcs": list(funcs)}).encode("utf-8")
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    with PendingFiles() as pending:
        with pending.writing(path) as tmp, open(tmp, "wb") as f, zipfile.ZipFile(
            f, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True
        ) as zf:
            for name, dtype in COLUMNS:
                n, blocks = columns[name]
                _write_member(zf, name, dtype, int(n), blocks)
            for name, data in (("strings", strings), ("meta", meta_bytes)):
                _write_member(zf, name, np.dtype(np.uint8), len(data), [data])
        pending.commit()
    return path


def _write_member(
    zf: zipfile.ZipFile, name: str, dtype: np.dtype, n: int, blocks: Iterable[bytes | memoryview]
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
            m.write(block)
            written += memoryview(block).nbytes
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
