"""Race mode: Go's race detector (``go run -race``) over a goheap heap, and the synchronisation it understands.

Build a heap with ``Heap(race=True)`` (``goheap run --race``): every load and store made
through goheap (``Heap.load_word``/``store_word``/``load_ptr``/``store_ptr``, the root
handles of ``heap.roots``, and ``goheap.nb.load``/``store``/``load_byte``/``store_byte``
in compiled code) is checked against the accesses other threads made to the same 8-byte
word, and a pair not ordered by happens-before is reported as Go reports it::

    ==================
    WARNING: DATA RACE
    Write at 0x00c200001000 by goroutine 3:
      mymodule.worker()
          /home/me/mymodule.py:12

    Previous read at 0x00c200001000 by goroutine 2:
      mymodule.worker()
          /home/me/mymodule.py:11

    Heap block of size 16 at 0x00c200001000 allocated by goroutine 1:
      mymodule.main()
          /home/me/mymodule.py:20
      [size class 2 (16-byte blocks); the race is at offset 0]

    Goroutine 3 (running) created at:
      mymodule.main()
          /home/me/mymodule.py:22
    ==================

A goroutine is a Python thread; goroutine 1 is the thread that built the heap. Only the
primitives of this module create happens-before: :class:`Mutex`, :class:`RWMutex`,
:class:`Chan`, :class:`WaitGroup`, :class:`Thread` (start and join; :func:`go` starts
one), and the collector's stop-the-world, a full barrier. Python's own ``threading.Lock``,
``queue.Queue`` or ``Thread.join`` are invisible to the detector, as a C library's locks
are to Go's. The primitives work with or without race mode, and order accesses in every
race-mode heap at once.

Options, as GORACE's (read from the ``GORACE`` environment variable unless
``HeapConfig.race_options`` is given): ``halt_on_error=1`` raises :class:`goheap.RaceError`
at the first race, before the racing access is done; ``history_size=N`` (0..7) keeps
32K * 2^N accesses per goroutine to find previous accesses' stacks in; ``log_path=PREFIX``
writes reports to ``PREFIX.<pid>`` instead of stderr. Each race is reported once: a race
whose pair of stacks, or whose address, was reported already is not reported again.

What is checked, and what is not:

* Accesses through ``Heap.view()`` are not checked: a numpy view reads and writes memory
  directly. Use ``load_word``/``store_word``, the checked accessors, for shared data.
* The shadow has one cell per 8-byte word: byte accesses (``nb.load_byte``/``store_byte``)
  to different bytes of one word by two unsynchronised threads are reported as a race.
* ``free`` is a write of the whole block (of a large block's first 1 KB, as in
  ThreadSanitizer); any access after it is reported (use after free) until the block is
  allocated again. Blocks freed by the collector are not marked.
* Stacks: the Python frames of the access (captured only when an access changes the
  shadow, as an interned id). Compiled code has no Python frames: its accesses carry the
  frames declared with ``goheap.nb.race_func_enter``/``race_func_exit`` (Go's
  racefuncenter/racefuncexit) below the Python frames where the thread last called
  ``heap.cache()``.
* Threads are told apart by ``threading.get_ident()``. A thread that reaches the heap
  through the shell (a Heap method, ``heap.cache()`` included, or a primitive of this
  module) is known to have ended when it ends; one that only ever calls compiled code is
  not, and a later thread given the same ident by the OS would be taken for it (races
  between the two would be missed).

The detector itself (shadow, clocks, FastTrack) is compiled: :mod:`goheap._runtime.race`.
"""

from __future__ import annotations

import collections
import itertools
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from numba import types

from ._runtime import race as _race
from ._runtime._jit import entry_point
from ._runtime.layout import H_ARENA_START
from ._runtime.raceshadow import (
    FN_PYTHON_BASE,
    HI_INFO,
    KIND_FREE,
    KIND_READ,
    KIND_WRITE,
    RH_DROPPED,
    RH_HALT,
    RH_HANDLE,
    RH_LAST_REPORT,
    RH_NALLOCS,
    RH_NGOROUTINES,
    RH_NREPORTS,
    RH_NSLOTS,
    RH_RACES,
    RH_RESETS,
    RH_RS_LIVE,
    RH_SHADOW_ADDR,
    RH_SHADOW_WORDS,
    RH_META_ADDR,
    RH_META_MAPPED,
    RR_ADDR,
    RR_ALLOC,
    RR_BASE,
    RR_GLOBAL,
    RR_GOID,
    RR_KIND,
    RR_PREV_GOID,
    RR_PREV_KIND,
    RR_PREV_STACK,
    RR_SIZE,
    RR_SIZECLASS,
    RR_STACK,
    SLOT_RUNNING,
    SN_FN,
    SN_PARENT,
    STACK_PENDING,
    TS_GOID,
    TS_STATE,
    RaceSizes,
)
from ._runtime.sysmem import resident_bytes
from .errors import AddressError, HeapError, InvalidValue, RaceError

__all__ = [
    "Chan",
    "ChanClosed",
    "Frame",
    "Mutex",
    "RWMutex",
    "RaceDetector",
    "RaceOptions",
    "RaceReport",
    "Thread",
    "WaitGroup",
    "go",
]

MAX_STACK_DEPTH = 32
SEPARATOR = "=================="
_KIND_NAMES = {KIND_READ: "read", KIND_WRITE: "write", KIND_FREE: "write"}


# ================================================================ options


@dataclass(frozen=True)
class RaceOptions:
    """GORACE's options (https://go.dev/doc/articles/race_detector#Options), those goheap honours.

    halt_on_error: raise :class:`goheap.RaceError` at the first race (Go exits with status
    66). history_size: 0..7, each goroutine's access history holds 32K * 2^history_size
    accesses. log_path: None (or "stderr") prints reports on stderr, "stdout" on stdout,
    anything else is a prefix: reports go to ``<log_path>.<pid>``. exitcode: the status
    ``goheap run --race`` exits with when races were found.
    """

    halt_on_error: bool = False
    history_size: int = 1
    log_path: str | None = None
    exitcode: int = 66

    def __post_init__(self) -> None:
        if not isinstance(self.history_size, int) or not 0 <= self.history_size <= 7:
            raise ValueError(f"history_size must be 0..7, not {self.history_size!r}")

    @classmethod
    def from_gorace(cls, value: str | None) -> RaceOptions:
        """Parse a GORACE string ("halt_on_error=1 history_size=2 log_path=/tmp/race").

        Unknown options are ignored, as by Go; a malformed value raises ValueError.
        """
        fields: dict[str, Any] = {}
        for item in (value or "").split():
            name, sep, text = item.partition("=")
            if not sep:
                raise ValueError(f"GORACE: {item!r} is not name=value")
            if name in ("halt_on_error", "history_size", "exitcode"):
                try:
                    number = int(text)
                except ValueError:
                    raise ValueError(f"GORACE: {name}={text!r} is not an integer") from None
                fields[name] = bool(number) if name == "halt_on_error" else number
            elif name == "log_path":
                fields[name] = text or None
        return cls(**fields)

    def sizes(self) -> RaceSizes:
        return RaceSizes(history_size=self.history_size)


# ================================================================ reports


@dataclass(frozen=True)
class Frame:
    """One frame of a reported stack: function (module.qualname), file and line."""

    function: str
    file: str = ""
    line: int = 0


@dataclass(frozen=True)
class RaceReport:
    """One race as reported: ``text`` is what was printed, the rest says the same as data."""

    text: str
    address: int
    kind: str  # "read", "write" or "free": the access that found the race
    goroutine: int
    stack: tuple[Frame, ...]
    previous_kind: str  # "read", "write" or "free"
    previous_goroutine: int  # 0: unknown
    previous_stack: tuple[Frame, ...]  # () when the history had moved on
    block: tuple[int, int, int] | None  # (base, size, size class) of the heap block, if any
    global_handle: int | None = None  # the root handle, for a race on a global


class ChanClosed(HeapError, RuntimeError):
    """A send on (or close of) a closed :class:`Chan` (Go panics)."""

    __module__ = "goheap.race"


# ================================================================ the registry of race-mode heaps
#
# Threads and locks belong to the process, heaps do not: a Mutex unlocked by one thread
# and locked by another orders their accesses in every heap in race mode. The primitives
# therefore act on every open detector; with none open they cost one empty loop.

_ACTIVE: tuple[RaceDetector, ...] = ()
_BY_HANDLE: dict[int, RaceDetector] = {}
_REGISTRY_LOCK = threading.RLock()  # a heap collected by the cyclic GC may close inside _register
_serials = itertools.count(1)


def _register(d: RaceDetector) -> None:
    global _ACTIVE
    with _REGISTRY_LOCK:
        _ACTIVE = (*_ACTIVE, d)
        _BY_HANDLE[d._handle] = d


def _unregister(d: RaceDetector) -> None:
    global _ACTIVE
    with _REGISTRY_LOCK:
        _ACTIVE = tuple(x for x in _ACTIVE if x is not d)
        if _BY_HANDLE.get(d._handle) is d:
            del _BY_HANDLE[d._handle]


def _resolve_compiled_race(handle: int, row: int) -> str:
    d = _BY_HANDLE.get(handle)
    if d is None:
        return f"data race (report {row} of a heap that is gone)"
    return d._text_of_queued(row)


RaceError._resolve = staticmethod(_resolve_compiled_race)


class _SyncVar:
    """A sync object's vector clock, one row per race-mode heap (allocated on first use)."""

    __slots__ = ("rows", "__weakref__")

    def __init__(self) -> None:
        self.rows: dict[int, int] = {}


def _acquire(var: _SyncVar) -> None:
    for d in _ACTIVE:
        d._acquire(var)


def _release(var: _SyncVar) -> None:
    for d in _ACTIVE:
        d._release(var)


# ================================================================ the detector of one heap

_I64 = types.int64
_SKIP_FILES = {__file__, threading.__file__}


def skip_file(path: str) -> None:
    """Leave the frames of this file out of race reports' stacks (goheap's shell registers its own)."""
    _SKIP_FILES.add(path)


class _ThreadEnd:
    """Held in a detector's thread-local slot: tells the detector when its thread ends."""

    __slots__ = ("detector", "ident")

    def __init__(self, detector: RaceDetector, ident: int):
        self.detector = weakref.ref(detector)
        self.ident = ident

    def __del__(self):
        d = self.detector()
        if d is not None:
            try:
                d._thread_end(self.ident)
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass


class RaceDetector:
    """The race detector of one heap (``heap.race``): its reports, options and counters.

    Built by :class:`goheap.Heap` when ``race=True``; it wraps the heap's accessors so that
    heaps without race mode pay nothing.
    """

    __module__ = "goheap.race"

    def __init__(self, heap, options: RaceOptions):  # heap: goheap.Heap (a layer above)
        self.options = options
        self._heap = weakref.ref(heap)
        self._handle = heap._handle
        self._serial = next(_serials)
        if int(_race.entry_thread_self()) != threading.get_ident():
            raise HeapError("race mode: compiled code cannot tell threads apart on this platform (pthread_self)")
        a = heap._arrays
        self._arrays = a
        self._rh = a.race_h
        self._hist = a.race_hist
        self._thr = a.race_thr
        self._queue = a.race_reports
        self._nodes = a.race_nodes
        self._rootslot_addr = a.rootslots.ctypes.data
        self._rh[RH_HANDLE] = self._handle
        self._rh[RH_HALT] = 1 if options.halt_on_error else 0
        self._access = entry_point(_race.entry_access, (_I64, _I64, _I64))
        self._access_global = entry_point(_race.entry_access_global, (_I64, _I64, _I64, _I64))
        self._set_stack = entry_point(_race.entry_set_stack, (_I64, _I64))
        self._acquire_row = entry_point(_race.entry_acquire, (_I64, _I64))
        self._release_row = entry_point(_race.entry_release, (_I64, _I64))
        self._lock = threading.RLock()  # the shell's own tables (stacks, rows, reports)
        self._tls = threading.local()
        self._stack_ids: dict[tuple, int] = {(): 0}
        self._stacks: list[tuple] = [()]
        self._codes: dict[int, tuple[Any, str]] = {}  # id(code) -> (code, module name)
        self._functions: list[Frame] = [Frame("?")]
        self._sync_free: list[int] = []
        self._sync_next = 0
        self._creations: dict[int, tuple[int, int]] = {}  # goroutine -> (creator goroutine, stack)
        self._seen_pairs: set[tuple[int, int]] = set()
        self._seen_addresses: set[int] = set()
        self._queued_texts: dict[int, str] = {}
        self.reports: list[RaceReport] = []
        self._log: TextIO | None = None
        self._closed = False
        _register(self)
        self._install(heap)

    # ------------------------------------------------------------ wrapping the heap's accessors

    def _install(self, heap) -> None:
        """Replace the heap's accessors by checking ones (instance attributes: other heaps keep theirs)."""
        handle = self._handle
        access = self._access
        set_stack = self._set_stack
        stack_id = self._stack_id
        after = self._after_access
        mem = heap._arrays.mem
        word_index = heap._word_index
        word_value = heap._word_value
        alloc, alloc_rooted, free, cache = heap.alloc, heap._alloc_rooted, heap.free, heap.cache
        queue_count = self._rh

        def checked_alloc(size, **options):
            old = set_stack(handle, stack_id(sys._getframe(1)))
            try:
                return alloc(size, **options)
            finally:
                set_stack(handle, old)

        def checked_alloc_rooted(c, size, **options):  # Scope.alloc's
            old = set_stack(handle, stack_id(sys._getframe(1)))
            try:
                return alloc_rooted(c, size, **options)
            finally:
                set_stack(handle, old)

        def checked_free(p):
            old = set_stack(handle, stack_id(sys._getframe(1)))
            try:
                free(p)
            finally:
                set_stack(handle, old)
            if queue_count[RH_NREPORTS]:
                self._drain(None, halt=True)

        def refused(p, i, kind, frame):
            """The heap refused an access: a use after free is still reported (the free is the previous access)."""
            if p.__class__ is int and i.__class__ is int and 0 <= p + 8 * i < 1 << 63:
                r = access(handle, p + 8 * i, kind)
                if r:
                    after(r, frame)

        def load(p, i):
            try:
                k = word_index(p, i)
            except AddressError:
                refused(p, i, KIND_READ, sys._getframe(1))
                raise
            r = access(handle, p + 8 * i, KIND_READ)
            if r:
                after(r, sys._getframe(1))
            return int(mem[k])

        def store(p, i, q):
            if q.__class__ is not int:
                q = word_value(q)
            try:
                k = word_index(p, i)
            except AddressError:
                refused(p, i, KIND_WRITE, sys._getframe(1))
                raise
            r = access(handle, p + 8 * i, KIND_WRITE)
            if r:
                after(r, sys._getframe(1))
            try:
                mem[k] = q
            except OverflowError:
                raise InvalidValue(f"the word to store, {q}, does not fit in 64 bits") from None

        def cache_here():
            c = cache()
            self._enter_compiled(sys._getframe(1))
            return c

        load.__doc__ = heap.load_word.__doc__
        store.__doc__ = heap.store_word.__doc__
        heap.alloc = checked_alloc
        heap._alloc_rooted = checked_alloc_rooted
        heap.free = checked_free
        heap.load_ptr = heap.load_word = load
        heap.store_ptr = heap.store_word = store
        heap.cache = cache_here

        roots = heap.roots
        add, set_, get, remove = roots.add, roots.set, roots.get, roots.remove

        def root_access(k, kind, frame):
            roots._heap._check_open()
            roots._slot(k)
            r = self._access_global(handle, k, self._rootslot_addr + 8 * k, kind)
            if r:
                after(r, frame)

        def root_add(p):
            k = add(p)
            _race.entry_global_fresh(handle, k)
            root_access(k, KIND_WRITE, sys._getframe(1))
            return k

        def root_set(k, p):
            root_access(k, KIND_WRITE, sys._getframe(1))
            set_(k, p)

        def root_get(k):
            root_access(k, KIND_READ, sys._getframe(1))
            return get(k)

        def root_remove(k):
            root_access(k, KIND_WRITE, sys._getframe(1))
            remove(k)

        roots.add, roots.set, roots.get, roots.remove = root_add, root_set, root_get, root_remove

    def _after_access(self, r: int, frame) -> None:
        """A checked access was recorded with its stack pending, or found a race: fill in, report."""
        sid = self._stack_id(frame)
        row = (r >> 2) - 1
        if row >= 0:
            hist = self._hist
            hist[row, HI_INFO] = (sid << 32) | (int(hist[row, HI_INFO]) & 0xFFFFFFFF)
        if r & _race.RACED:
            self._drain(sid, halt=True)

    def _enter_compiled(self, frame) -> None:
        """The thread is about to run compiled code: its accesses carry these Python frames."""
        node = int(_race.entry_node(self._handle, self._stack_id(frame), FN_PYTHON_BASE))
        if node:
            self._set_stack(self._handle, -node)

    # ------------------------------------------------------------ threads

    def _thread_started(self) -> None:
        """The calling thread reaches this heap for the first time (Heap._cache): give it a slot."""
        if getattr(self._tls, "end", None) is None:
            ident = threading.get_ident()
            self._tls.end = _ThreadEnd(self, ident)
            _race.entry_slot(self._handle)

    def _thread_end(self, ident: int) -> None:
        if not self._closed:
            _race.entry_thread_end(self._handle, ident)

    def _goroutine(self) -> int:
        """The calling thread's goroutine number."""
        self._thread_started()
        slot = int(_race.entry_slot(self._handle))
        return int(self._thr[slot, TS_GOID]) if slot >= 0 else 0

    # ------------------------------------------------------------ sync objects

    def _row(self, var: _SyncVar) -> int:
        row = var.rows.get(self._serial)
        if row is None:
            with self._lock:
                if self._sync_free:
                    row = self._sync_free.pop()
                else:
                    row = self._sync_next
                    if row >= self._arrays.race_sync.shape[0]:
                        raise HeapError(f"race mode: all {row} sync objects are in use")
                    self._sync_next = row + 1
            _race.entry_sync_clear(self._handle, row)
            var.rows[self._serial] = row
            weakref.finalize(var, _free_row, weakref.ref(self), row)
        return row

    def _free_row(self, row: int) -> None:
        with self._lock:
            self._sync_free.append(row)

    def _acquire(self, var: _SyncVar) -> None:
        if self._closed:
            return
        self._thread_started()
        self._acquire_row(self._handle, self._row(var))

    def _release(self, var: _SyncVar) -> None:
        if self._closed:
            return
        self._thread_started()
        self._release_row(self._handle, self._row(var))

    # ------------------------------------------------------------ stacks

    def _stack_id(self, frame) -> int:
        """The interned id of the Python stack from ``frame`` out (goheap's own frames left out).

        The key is (id(code), instruction offset) pairs: hashing a code object hashes its
        constants, nested code objects included, which for a module's code costs microseconds.
        ``_codes`` keeps every code object seen alive, so that its id stays its own.
        """
        parts: list[int] = []
        codes = self._codes
        skip = _SKIP_FILES
        n = 0
        while frame is not None and n < MAX_STACK_DEPTH:
            code = frame.f_code
            if code.co_filename not in skip:
                c = id(code)
                if c not in codes:
                    codes[c] = (code, frame.f_globals.get("__name__", ""))
                parts.append(c)
                parts.append(frame.f_lasti)
                n += 1
            frame = frame.f_back
        key = tuple(parts)
        sid = self._stack_ids.get(key)
        if sid is None:
            with self._lock:
                sid = self._stack_ids.get(key)
                if sid is None:
                    sid = len(self._stacks)
                    self._stacks.append(key)
                    self._stack_ids[key] = sid
        return sid

    def _python_frames(self, sid: int) -> tuple[Frame, ...]:
        key = self._stacks[sid] if 0 <= sid < len(self._stacks) else ()
        out = []
        for j in range(0, len(key), 2):
            code, module = self._codes[key[j]]
            lasti = key[j + 1]
            name = f"{module}.{code.co_qualname}" if module else code.co_qualname
            out.append(Frame(name, code.co_filename, _line_of(code, lasti)))
        return tuple(out)

    def _frames(self, value: int) -> tuple[Frame, ...] | None:
        """The frames of a stack value (see raceshadow: > 0 Python, < 0 compiled node); None: unknown."""
        if value > 0 and value != STACK_PENDING:
            return self._python_frames(value)
        out: list[Frame] = []
        node = -value
        while node > 0:
            parent = int(self._nodes[node, SN_PARENT])
            fn = int(self._nodes[node, SN_FN])
            if fn == FN_PYTHON_BASE:
                out.append(Frame("<compiled code>"))
                if parent > 0:
                    out.extend(self._python_frames(parent))
                break
            out.append(self._functions[fn] if fn < len(self._functions) else Frame(f"<compiled function {fn}>"))
            node = -parent
        return tuple(out) if out else None

    def function(self, name: str, file: str = "", line: int = 0) -> int:
        """An id for compiled function ``name``, for ``goheap.nb.race_func_enter(rt, id)``."""
        with self._lock:
            self._functions.append(Frame(name, file, line))
            return len(self._functions) - 1

    # ------------------------------------------------------------ reports

    def _drain(self, sid: int | None, halt: bool = False) -> list[RaceReport]:
        """Take the queued races, print the new ones; raise RaceError for the first new one under halt_on_error."""
        with self._lock:
            n = int(self._rh[RH_NREPORTS])
            if n == 0:
                return []
            rows = self._queue[:n].copy()
            self._rh[RH_NREPORTS] = 0
            self._rh[RH_LAST_REPORT] = 0
            new = []
            self._queued_texts = {}
            for i, row in enumerate(rows):
                report, fresh = self._report(row, sid)
                self._queued_texts[i] = report.text
                if fresh:
                    new.append(report)
        for report in new:
            self._write(report.text)
        if halt and new and self.options.halt_on_error:
            raise RaceError(new[0].text)
        return new

    def _text_of_queued(self, row: int) -> str:
        """The report of queue row ``row``, for a RaceError raised in compiled code."""
        self._drain(None)
        return self._queued_texts.get(row, "data race (see the race reports)")

    def _report(self, row: np.ndarray, sid: int | None) -> tuple[RaceReport, bool]:
        stack_value = int(row[RR_STACK])
        if stack_value == STACK_PENDING:
            stack_value = sid or 0
        prev_value = int(row[RR_PREV_STACK])
        addr = int(row[RR_ADDR])
        kind = int(row[RR_KIND])
        prev_kind = int(row[RR_PREV_KIND])
        goid = int(row[RR_GOID])
        prev_goid = int(row[RR_PREV_GOID])
        gk = int(row[RR_GLOBAL])
        base = int(row[RR_BASE])
        stack = self._frames(stack_value)
        prev_stack = self._frames(prev_value) if prev_value else None
        if kind == KIND_FREE:
            stack = (Frame(_free_frame(stack_value)), *(stack or ()))
        if prev_kind == KIND_FREE and prev_value:
            prev_stack = (Frame(_free_frame(prev_value)), *(prev_stack or ()))

        lines = [SEPARATOR, "WARNING: DATA RACE"]
        lines.append(f"{_KIND_NAMES[kind].capitalize()} at {_addr(addr)} by goroutine {goid}:")
        lines += _stack_lines(stack, "  <compiled code: no frames (see goheap.nb.race_func_enter)>")
        lines.append("")
        who = f"goroutine {prev_goid}" if prev_goid else "an unknown goroutine"
        lines.append(f"Previous {_KIND_NAMES[prev_kind]} at {_addr(addr & ~7)} by {who}:")
        lines += _stack_lines(prev_stack, "  [failed to restore the stack]")
        block = None
        if gk:
            lines.append("")
            lines.append(f"Location is global 'roots[{gk - 1}]' of size 8 at {_addr(self._rootslot_addr + 8 * (gk - 1))}")
        elif base:
            size = int(row[RR_SIZE])
            sizeclass = int(row[RR_SIZECLASS])
            block = (base, size, sizeclass)
            alloc = int(row[RR_ALLOC])
            lines.append("")
            if alloc:
                alloc_goid = alloc >> 40
                alloc_stack = self._frames(_race.event_stack(alloc))
                lines.append(f"Heap block of size {size} at {_addr(base)} allocated by goroutine {alloc_goid}:")
                lines += _stack_lines(alloc_stack, "  [failed to restore the stack]")
            else:
                lines.append(f"Heap block of size {size} at {_addr(base)}:")
                lines.append("  [its allocation is no longer recorded]")
            what = f"size class {sizeclass} ({size}-byte blocks)" if sizeclass else f"a large block ({size >> 12} pages)"
            lines.append(f"  [{what}; the race is at offset {addr - base}]")
        for g in dict.fromkeys((goid, prev_goid)):
            creation = self._creations.get(g)
            if g and creation is not None:
                state = "running" if self._running(g) else "finished"
                lines.append("")
                lines.append(f"Goroutine {g} ({state}) created at:")
                lines += _stack_lines(self._frames(creation[1]), "  [failed to restore the stack]")
        lines.append(SEPARATOR)
        report = RaceReport(
            text="\n".join(lines) + "\n",
            address=addr,
            kind="free" if kind == KIND_FREE else _KIND_NAMES[kind],
            goroutine=goid,
            stack=stack or (),
            previous_kind="free" if prev_kind == KIND_FREE else _KIND_NAMES[prev_kind],
            previous_goroutine=prev_goid,
            previous_stack=prev_stack or (),
            block=block,
            global_handle=gk - 1 if gk else None,
        )
        pair = (stack_value, prev_value)
        word = addr & ~7
        fresh = pair not in self._seen_pairs and word not in self._seen_addresses
        self._seen_pairs.add(pair)
        self._seen_addresses.add(word)
        if fresh:
            self.reports.append(report)
        return report, fresh

    def _running(self, goid: int) -> bool:
        n = int(self._rh[RH_NSLOTS])
        rows = self._thr[:n]
        return bool(np.any((rows[:, TS_GOID] == goid) & (rows[:, TS_STATE] == SLOT_RUNNING)))

    def _write(self, text: str) -> None:
        path = self.options.log_path
        if path in (None, "stderr"):
            stream = sys.stderr
        elif path == "stdout":
            stream = sys.stdout
        else:
            if self._log is None:
                self._log = open(f"{path}.{os.getpid()}", "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            stream = self._log
        stream.write(text)
        stream.flush()

    def flush(self) -> list[RaceReport]:
        """Print the races compiled code has found since the last call; returns the new reports."""
        return self._drain(None)

    # ------------------------------------------------------------ thread creation (Thread)

    def _fork(self, frame) -> tuple[int, int, int, _SyncVar]:
        """A thread is being started here: (sync row the child acquires, creator goroutine, creation stack)."""
        var = _SyncVar()
        row = self._row(var)
        self._thread_started()
        self._release_row(self._handle, row)
        return row, self._goroutine(), self._stack_id(frame), var

    def _begin(self, fork) -> None:
        row, creator, sid, _var = fork
        self._thread_started()
        goid = self._goroutine()
        self._creations[goid] = (creator, sid)
        self._acquire_row(self._handle, row)

    # ------------------------------------------------------------ figures

    @property
    def races(self) -> int:
        """Races found, reported or not (duplicates included)."""
        return int(self._rh[RH_RACES])

    def stats(self) -> dict[str, int]:
        """Counters and the memory race mode uses (resident bytes, measured with mincore)."""
        a = self._arrays
        rh = self._rh
        words = int(rh[RH_SHADOW_WORDS])
        arena = a.h[H_ARENA_START]
        return {
            "races": int(rh[RH_RACES]),
            "reported": len(self.reports),
            "dropped": int(rh[RH_DROPPED]),
            "goroutines": int(rh[RH_NGOROUTINES]),
            "slots": int(rh[RH_NSLOTS]),
            "resets": int(rh[RH_RESETS]),
            "read_set_nodes": int(rh[RH_RS_LIVE]),
            "allocation_records": int(rh[RH_NALLOCS]),
            "sync_objects": self._sync_next - len(self._sync_free),
            "arena_resident": resident_bytes(int(arena), words * 8),
            "shadow_mapped": words * 8,
            "shadow_resident": resident_bytes(int(rh[RH_SHADOW_ADDR]), words * 8),
            "meta_resident": resident_bytes(int(rh[RH_META_ADDR]), int(rh[RH_META_MAPPED])),
            "read_sets_resident": resident_bytes(a.race_rs.ctypes.data, a.race_rs.nbytes),
            "history_resident": resident_bytes(a.race_hist.ctypes.data, a.race_hist.nbytes),
            "alloc_records_resident": resident_bytes(a.race_allocs.ctypes.data, a.race_allocs.nbytes),
            "clocks_resident": resident_bytes(a.race_vc.ctypes.data, a.race_vc.nbytes)
            + resident_bytes(a.race_sync.ctypes.data, a.race_sync.nbytes),
        }

    def close(self) -> None:
        """The heap is closing: print what is queued, stop taking part in synchronisation."""
        if self._closed:
            return
        try:
            self._drain(None)
        finally:
            self._closed = True
            _unregister(self)
            if self._log is not None:
                self._log.close()
                self._log = None

    def __repr__(self) -> str:
        return f"<goheap.race.RaceDetector races={self.races} reported={len(self.reports)}>"


def _free_row(detector_ref, row: int) -> None:
    d = detector_ref()
    if d is not None and not d._closed:
        d._free_row(row)


def _free_frame(stack_value: int) -> str:
    return "goheap.Heap.free" if stack_value > 0 else "goheap.nb.free"


def _line_of(code, lasti: int) -> int:
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return line
    return code.co_firstlineno


def _addr(addr: int) -> str:
    return f"0x{addr:012x}"


def _stack_lines(frames, missing: str) -> list[str]:
    if not frames:
        return [missing]
    out = []
    for f in frames:
        out.append(f"  {f.function}()")
        if f.file:
            out.append(f"      {f.file}:{f.line}")
    return out


# ================================================================ synchronisation


class Mutex:
    """sync.Mutex: unlock happens before the next lock. Also a context manager."""

    __module__ = "goheap.race"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync = _SyncVar()

    def lock(self) -> None:
        self._lock.acquire()
        _acquire(self._sync)

    def try_lock(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        _acquire(self._sync)
        return True

    def unlock(self) -> None:
        if not self._lock.locked():
            raise RuntimeError("sync: unlock of unlocked mutex")
        _release(self._sync)
        self._lock.release()

    def __enter__(self) -> Mutex:
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()


class RWMutex:
    """sync.RWMutex: writers exclude everyone; unlock happens before every later lock and rlock,
    and every runlock before the next lock. ``with rw:`` writes, ``with rw.reader():`` reads."""

    __module__ = "goheap.race"

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._write_sync = _SyncVar()
        self._read_sync = _SyncVar()

    def lock(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
            _acquire(self._write_sync)
            _acquire(self._read_sync)

    def unlock(self) -> None:
        with self._cond:
            if not self._writer:
                raise RuntimeError("sync: Unlock of unlocked RWMutex")
            _release(self._write_sync)
            self._writer = False
            self._cond.notify_all()

    def rlock(self) -> None:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
            _acquire(self._write_sync)

    def runlock(self) -> None:
        with self._cond:
            if self._readers <= 0:
                raise RuntimeError("sync: RUnlock of unlocked RWMutex")
            _release(self._read_sync)
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    def __enter__(self) -> RWMutex:
        self.lock()
        return self

    def __exit__(self, *exc) -> None:
        self.unlock()

    def reader(self):
        """A context manager holding the read lock."""
        return _ReadLocked(self)


class _ReadLocked:
    __slots__ = ("rw",)

    def __init__(self, rw: RWMutex):
        self.rw = rw

    def __enter__(self) -> RWMutex:
        self.rw.rlock()
        return self.rw

    def __exit__(self, *exc) -> None:
        self.rw.runlock()


class Chan:
    """A Go channel of ``capacity`` (0: unbuffered). A send happens before the receive that takes
    it; with capacity C, the k-th receive happens before the (k+C)-th send completes; on an
    unbuffered channel the receive also happens before the send completes; close happens
    before a receive that returns because the channel is closed.

    ``send(v)``; ``recv()`` (None once closed and empty), ``recv_ok()`` ((value, ok) as
    ``v, ok := <-ch``), iteration until closed, ``close()``.
    """

    __module__ = "goheap.race"

    def __init__(self, capacity: int = 0) -> None:
        if capacity < 0:
            raise ValueError("makechan: size out of range")
        self.cap = capacity
        self._cond = threading.Condition(threading.Lock())
        self._buf: collections.deque = collections.deque()
        self._closed = False
        self._slots = [_SyncVar() for _ in range(max(capacity, 1))]  # Go's chanbuf(c, i) sync points
        self._close_sync = _SyncVar()
        self._sendx = 0
        self._recvx = 0
        self._tickets = 0
        self._taken = 0

    def send(self, value) -> None:
        with self._cond:
            if self._closed:
                raise ChanClosed("send on closed channel")
            if self.cap > 0:
                while len(self._buf) >= self.cap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    raise ChanClosed("send on closed channel")
                slot = self._slots[self._sendx]
                self._sendx = (self._sendx + 1) % self.cap
                _acquire(slot)
                _release(slot)
                self._buf.append(value)
                self._cond.notify_all()
                return
            ticket = self._tickets
            self._tickets += 1
            _release(self._slots[0])
            self._buf.append((ticket, value))
            self._cond.notify_all()
            while self._taken <= ticket:
                if self._closed:
                    self._buf = collections.deque(x for x in self._buf if x[0] != ticket)
                    raise ChanClosed("send on closed channel")
                self._cond.wait()
            _acquire(self._slots[0])

    def recv_ok(self) -> tuple[Any, bool]:
        with self._cond:
            while not self._buf and not self._closed:
                self._cond.wait()
            if not self._buf:
                _acquire(self._close_sync)
                return None, False
            if self.cap > 0:
                value = self._buf.popleft()
                slot = self._slots[self._recvx]
                self._recvx = (self._recvx + 1) % self.cap
            else:
                ticket, value = self._buf.popleft()
                self._taken = ticket + 1
                slot = self._slots[0]
            _acquire(slot)
            _release(slot)
            self._cond.notify_all()
            return value, True

    def recv(self):
        return self.recv_ok()[0]

    def close(self) -> None:
        with self._cond:
            if self._closed:
                raise ChanClosed("close of closed channel")
            _release(self._close_sync)
            self._closed = True
            self._cond.notify_all()

    def __iter__(self):
        while True:
            value, ok = self.recv_ok()
            if not ok:
                return
            yield value

    def __len__(self) -> int:
        with self._cond:
            return len(self._buf) if self.cap > 0 else 0


class WaitGroup:
    """sync.WaitGroup: every done() happens before wait() returns."""

    __module__ = "goheap.race"

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._count = 0
        self._sync = _SyncVar()

    def add(self, delta: int = 1) -> None:
        with self._cond:
            if delta < 0:
                _release(self._sync)
            self._count += delta
            if self._count < 0:
                self._count -= delta
                raise ValueError("sync: negative WaitGroup counter")
            if self._count == 0:
                self._cond.notify_all()

    def done(self) -> None:
        self.add(-1)

    def wait(self) -> None:
        with self._cond:
            while self._count > 0:
                self._cond.wait()
            _acquire(self._sync)


class Thread(threading.Thread):
    """threading.Thread as a goroutine: start() happens before the thread's first step, and its
    last step before a join() that sees it finished."""

    __module__ = "goheap.race"

    def start(self) -> None:
        frame = sys._getframe(1)
        forks = [(d, d._fork(frame)) for d in _ACTIVE]
        joins: list[tuple[RaceDetector, _SyncVar]] = []
        self._race_joins = joins
        self._race_joined = False
        run = self.run

        def run_as_goroutine():
            for d, fork in forks:
                if not d._closed:
                    d._begin(fork)
            forks.clear()  # the fork points' sync rows go back
            try:
                run()
            finally:
                var = _SyncVar()
                for d in _ACTIVE:
                    d._release(var)
                    joins.append((d, var))

        self.run = run_as_goroutine  # type: ignore[method-assign]  # Thread.start runs self.run: this thread runs the wrapper
        super().start()

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if not self.is_alive() and not self._race_joined:
            self._race_joined = True
            for d, var in self._race_joins:
                d._acquire(var)
            self._race_joins.clear()


def go(fn, *args, **kwargs) -> Thread:
    """Start fn(*args, **kwargs) in a new :class:`Thread` (a ``go`` statement) and return it."""
    t = Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    t.start()
    return t
