"""The Python shell over one heap: :class:`Heap` and :class:`HeapConfig`.

See :mod:`goheap._runtime.malloc` for how the runtime underneath works. A ``Heap`` owns
its reservation and all its metadata; nothing is shared between heaps, so any number can
coexist. Each Python thread that touches a heap gets its own MCache on first use.

Addresses are plain ints (real virtual addresses). The collector cannot see ints held by
Python: keep every object you need reachable from a root (``heap.roots``), from an
object that is, or from a shadow stack.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import numpy as np

from . import errors
from ._runtime import entry
from ._runtime import layout as L
from ._runtime.check import check_heap
from ._runtime._jit import entry_point
from ._runtime.constants import (
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    FORCE_GC_PERIOD_NS,
    GC_STACK_SEGMENT_BYTES,
    MAX_MEM,
    MAX_SMALL_SIZE,
    MEM_PROFILE_RATE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PARFOR_BYTES,
    SCAVENGE_LIMIT_NS,
    SCAVENGER_TICK_NS,
    TYPEINFO_ARRAY,
    TYPEINFO_SINGLE_OBJECT,
)
from ._runtime.gctrace import format_gctrace, format_scvg
from ._runtime.handle import forget_handle, handle_of
from ._runtime.mallocinit import Limits, build_runtime
from ._runtime.stats import GCStats, MemStats
from ._runtime.sysmem import OSBackend, SysMem
from .race import RaceDetector, RaceOptions

if TYPE_CHECKING:
    from .report import pprof

__all__ = ["Heap", "HeapConfig", "TypeInfo", "readgogc"]

INT64_MAX = (1 << 63) - 1
MAX_PROFILE_DEPTH = 32  # mprof.goc records at most 32 frames of a stack


def _python_stack(frame) -> tuple[tuple[str, str, int], ...]:
    """The Python call stack from ``frame`` outwards, innermost first, goheap.heap's own frames left out.

    Functions are named module.qualname, like Go's package.Function.
    """
    out = []
    while frame is not None and len(out) < MAX_PROFILE_DEPTH:
        code = frame.f_code
        if code.co_filename not in _SKIPPED:
            module = frame.f_globals.get("__name__", "")
            name = f"{module}.{code.co_qualname}" if module else code.co_qualname
            out.append((name, code.co_filename, frame.f_lineno or 0))
        frame = frame.f_back
    return tuple(out)


_HERE = _python_stack.__code__.co_filename
_SKIPPED = {_HERE, RaceDetector.__init__.__code__.co_filename}  # race mode wraps the accessors


def readgogc(value: str | None) -> int:
    """GOGC as the seed parses it: unset or empty 100, "off" -1, else the leading decimal digits (atoi)."""
    if value is None or value == "":
        return 100
    if value == "off":
        return -1
    digits = ""
    for ch in value:
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def _atoi(value: str | None) -> int:
    return readgogc(value) if value not in (None, "", "off") else 0


@dataclass(frozen=True)
class HeapConfig:
    """How to build a heap. Every default is the seed's.

    gcpercent / gctrace: None reads GOGC / GOGCTRACE from the environment, as the seed does.
    virtual_clock: the runtime's clock is ``start_time_ns`` and moves only with
    :meth:`Heap.advance_clock` (deterministic pauses, scavenger and LastGC).
    go_process: the runtime allocates its own blocks as a Go process's does: each
    collection runs on a heap-allocated stack segment, and the first one allocates its
    ParFor descriptors (see :mod:`goheap.workloads.goprocess` for the rest of a process).
    race: race mode (``go run -race``): shadow memory for the heap and data-race reports
    (:mod:`goheap.race`); race_options: GORACE's options, None reads the GORACE variable.
    """

    arena_size: int = MAX_MEM
    gcpercent: int | None = None
    gctrace: int | None = None
    trace_stream: TextIO | None = None
    memprofilerate: int = MEM_PROFILE_RATE
    nproc: int = 1
    virtual_clock: bool = False
    start_time_ns: int = 0
    enable_gc: bool = True
    go_process: bool = False
    os: OSBackend | None = None
    limits: Limits = field(default_factory=Limits)
    race: bool = False
    race_options: RaceOptions | None = None


@dataclass(frozen=True)
class TypeInfo:
    """A registered type: its size and the byte offsets of its pointer words."""

    id: int
    name: str
    size: int
    pointer_offsets: tuple[int, ...]

    def word(self, tag: int = TYPEINFO_SINGLE_OBJECT) -> int:
        """The settype word: id << 3 | TypeInfo tag."""
        return (self.id << L.TYPE_TAG_BITS) | tag


class RootSet:
    """Explicit roots: each handle holds one pointer (the object it points into stays alive)."""

    def __init__(self, heap: Heap):
        self._heap = heap
        self._free: list[int] = []

    def add(self, p: int) -> int:
        """Keep the block holding p alive; returns a handle for :meth:`remove` and :meth:`set`."""
        h = self._heap
        h._check_open()
        slots = h._arrays.rootslots
        if self._free:
            k = self._free.pop()
        else:
            k = int(h._arrays.h[L.H_NROOTSLOTS])
            if k >= slots.shape[0]:
                raise errors.OutOfMemory(f"all {slots.shape[0]} root handles are in use")
            h._arrays.h[L.H_NROOTSLOTS] = k + 1
        slots[k] = p
        return k

    def set(self, handle: int, p: int) -> None:
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = p

    def get(self, handle: int) -> int:
        self._heap._check_open()
        return int(self._heap._arrays.rootslots[self._slot(handle)])

    def remove(self, handle: int) -> None:
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = 0
        self._free.append(handle)

    def clear(self) -> None:
        self._heap._check_open()
        h = self._heap
        n = int(h._arrays.h[L.H_NROOTSLOTS])
        h._arrays.rootslots[:n] = 0
        h._arrays.h[L.H_NROOTSLOTS] = 0
        self._free.clear()

    def __len__(self) -> int:
        self._heap._check_open()
        n = int(self._heap._arrays.h[L.H_NROOTSLOTS])
        return int(np.count_nonzero(self._heap._arrays.rootslots[:n]))

    def _slot(self, handle: int) -> int:
        if not isinstance(handle, int) or not 0 <= handle < int(self._heap._arrays.h[L.H_NROOTSLOTS]) or handle in self._free:
            raise errors.HeapError(f"no root handle {handle!r}")
        return handle


_ERRORS = {
    L.E_NOT_IN_HEAP: (errors.AddressError, "address {arg:#x} is outside the heap"),
    L.E_NOT_ALLOCATED: (errors.InvalidFree, "address {arg:#x} is not in an allocated block"),
    L.E_INTERIOR: (errors.InvalidFree, "address {arg:#x} is inside a block, not at its start"),
    L.E_TAIL: (errors.InvalidFree, "address {arg:#x} is in the unused tail of a span, not in a block"),
    L.E_DOUBLE_FREE: (errors.DoubleFree, "address {arg:#x} is already free (double free)"),
    L.E_BAD_SIZE: (errors.InvalidSize, "size {arg} is negative or larger than the arena"),
    L.E_OUT_OF_MEMORY: (errors.OutOfMemory, "out of memory: cannot allocate a {arg}-byte block"),
}


def _checked_size(size) -> int:
    """A size given as something other than a plain int: numpy integers pass, nothing else."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, (bool, np.bool_)):
        return int(size)
    raise errors.InvalidSize(f"size must be an int, not {size!r}")


def _checked_address(addr) -> int:
    if isinstance(addr, (int, np.integer)) and not isinstance(addr, (bool, np.bool_)):
        return int(addr)
    raise errors.AddressError(f"address must be an int, not {addr!r}")


def _show_address(addr) -> str:
    return f"{addr:#x}" if isinstance(addr, int) else repr(addr)


class _ThreadCache:
    """Owned by one thread's slot of ``Heap._local``: gives the thread's MCache back when the thread ends."""

    __slots__ = ("c", "heap")

    def __init__(self, heap: Heap, c: int):
        self.heap = weakref.ref(heap)
        self.c = c

    def __del__(self):
        heap = self.heap()
        if heap is not None:
            heap._release_cache(self.c)


class Heap:
    """One Go heap of 2013: allocate, free, collect, inspect.

    >>> with Heap(arena_size=64 << 20) as h:
    ...     p = h.alloc(16)
    ...     h.lookup(p + 3) == (p, 16)
    True
    """

    __module__ = "goheap"

    def __init__(self, config: HeapConfig | None = None, **overrides):
        config = config or HeapConfig()
        if overrides:
            config = HeapConfig(**{**config.__dict__, **overrides})
        self.config = config
        self._closed = True
        gcpercent = config.gcpercent if config.gcpercent is not None else readgogc(os.environ.get("GOGC"))
        gctrace = config.gctrace if config.gctrace is not None else _atoi(os.environ.get("GOGCTRACE"))
        self._sysmem = SysMem(config.os)
        race_options = None
        if config.race:
            race_options = config.race_options or RaceOptions.from_gorace(os.environ.get("GORACE"))
        try:
            arrays = build_runtime(self._sysmem, config.arena_size, config.limits, race_options and race_options.sizes())
            L.check_arrays(arrays)
        except BaseException:
            self._sysmem.release_all()
            raise
        self._arrays = arrays
        self._rt = L.as_runtime(arrays, race=race_options is not None)
        self._handle = handle_of(self._rt)
        self._alloc_fast = entry_point(*entry.HOT["alloc"])
        self._free_fast = entry_point(*entry.HOT["free"])
        self._lookup_fast = entry_point(*entry.HOT["lookup"])
        self._mstats_words = memoryview(arrays.mstats)
        self._cache_words = memoryview(arrays.cache_local.reshape(-1))
        self._numgc_seen = 0
        self._max_size = config.arena_size
        self._profile_rate = config.memprofilerate
        h = arrays.h
        h[L.H_GCPERCENT] = -1 if gcpercent < 0 else gcpercent
        h[L.H_GCTRACE] = gctrace
        h[L.H_MEMPROFILE_RATE] = config.memprofilerate
        h[L.H_NPROC] = config.nproc
        h[L.H_CLOCK_VIRTUAL] = 1 if config.virtual_clock else 0
        h[L.H_NOW] = config.start_time_ns
        if config.go_process:
            h[L.H_GC_STACK_BYTES] = GC_STACK_SEGMENT_BYTES
            h[L.H_GC_PARFOR_BYTES] = PARFOR_BYTES
        map_limit = getattr(self._sysmem.backend, "map_limit", None)
        h[L.H_SYSMAP_LIMIT] = -1 if map_limit is None else map_limit
        self._local = threading.local()
        self._caches: list[int] = []
        self._lock = threading.Lock()
        self._finalizers: dict[int, Callable[[int], object]] = {}
        self._types: list[TypeInfo | None] = [None]
        self._stacks: dict[tuple, int] = {(): 0}
        self._stack_frames: list[tuple] = [()]
        self._traced = 0
        self._scvg_k = 0
        self._next_scavenge = config.start_time_ns + SCAVENGER_TICK_NS
        self.trace_stream = config.trace_stream
        self.roots = RootSet(self)
        self._closed = False
        # race mode: the detector replaces this heap's accessors by checking ones
        self.race: RaceDetector | None = RaceDetector(self, race_options) if race_options else None
        # mallocinit's smoke test: free(malloc(1)), before the collector is enabled
        c = self._cache()
        entry.free(self._handle, c, entry.mallocgc(self._handle, c, 1, 0, False, True))
        arrays.mstats[L.ST_ENABLEGC] = 1 if config.enable_gc else 0

    # ------------------------------------------------------------ plumbing

    def _check_open(self) -> None:
        if self._closed:
            raise errors.HeapClosed("the heap is closed")

    def _cache(self) -> int:
        """This thread's MCache row, allocated on first use and released when the thread ends."""
        try:
            return self._local.cache
        except AttributeError:
            pass
        self._check_open()
        c = int(entry.new_cache(self._handle))
        if c < 0:
            raise errors.OutOfMemory(f"more than {self.config.limits.max_threads} threads use this heap")
        self._local.cache = c
        self._local.owner = _ThreadCache(self, c)
        self._caches.append(c)
        if self.race is not None:
            self.race._thread_started()
        return c

    def _release_cache(self, c: int) -> None:
        if self._closed:
            return
        entry.release_cache(self._handle, c)
        self._caches.remove(c)

    def _raise(self, code: int, arg: int | None = None) -> None:
        """Raise the HeapError for a compiled entry point's error code (detail in h[H_ERR_ARG])."""
        exc, msg = _ERRORS.get(code, (errors.HeapCorrupted, "runtime error {code}"))
        if arg is None:
            arg = int(self._arrays.h[L.H_ERR_ARG])
        raise exc(msg.format(arg=arg, code=code))

    def _after(self) -> None:
        """Print new gctrace lines and run queued finalizers (after any call that may collect)."""
        numgc = self._mstats_words[L.ST_NUMGC]
        if numgc == self._numgc_seen:
            return
        self._numgc_seen = numgc
        gs = self._arrays.gcstats
        if gs[L.GS_NTRACE] != self._traced:
            self._print_traces()
        if gs[L.GS_NFINQ] and not self._in_finalizers:
            self._run_finalizers()

    _in_finalizers = False

    def _print_traces(self) -> None:
        gs = self._arrays.gcstats
        log = self._arrays.gctrace_log
        n = int(gs[L.GS_NTRACE])
        if self._arrays.h[L.H_GCTRACE] > 0:
            stream = self.trace_stream or sys.stderr
            for k in range(max(self._traced, n - log.shape[0]), n):
                stream.write(format_gctrace(log[k % log.shape[0]]) + "\n")
        self._traced = n

    def gctrace_rows(self) -> np.ndarray:
        """The gctrace rows still held (one per collection, newest last; see layout.TR_*)."""
        self._check_open()
        log = self._arrays.gctrace_log
        n = int(self._arrays.gcstats[L.GS_NTRACE])
        if n <= log.shape[0]:
            return log[:n].copy()
        k = n % log.shape[0]
        return np.concatenate([log[k:], log[:k]])

    # ------------------------------------------------------------ allocation

    def alloc(
        self,
        size: int,
        *,
        noscan: bool = False,
        type: TypeInfo | None = None,
        zeroed: bool = True,
        noprofile: bool = False,
        nogc: bool = False,
    ) -> int:
        """mallocgc: a block of at least ``size`` bytes; may collect first. Returns its address.

        noscan: it holds no pointers (never scanned). type: scan it precisely as this type.
        zeroed=False: its contents are undefined (for blocks the caller overwrites whole).
        noprofile: never sampled by the memory profiler.
        nogc: the collector never frees nor scans it (free it explicitly).
        """
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        if size.__class__ is not int:
            size = _checked_size(size)
        if size < 0 or size > self._max_size:
            raise errors.InvalidSize(f"size {size} is negative or larger than the {self._max_size}-byte arena")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        flag = 0
        if noscan:
            flag = FLAG_NO_POINTERS
        if noprofile:
            flag |= FLAG_NO_PROFILING
        elif self._profile_rate > 0 and (
            size >= self._profile_rate
            # mallocgc samples when next_sample <= the rounded size: at most 2*size+8 when small
            or self._cache_words[c * L.LC_NSLOTS + L.LC_NEXT_SAMPLE] <= (2 * size + 8 if size <= MAX_SMALL_SIZE else size + PAGE_SIZE)
        ):
            self._charge_stack()  # this allocation may be sampled: find its call stack
        if nogc:
            flag |= FLAG_NO_GC
        if type is not None:
            if noscan:
                raise errors.HeapError("a typed block cannot be noscan")
            tag = TYPEINFO_ARRAY if size > type.size else TYPEINFO_SINGLE_OBJECT
            v = int(entry.malloc_typed(self._handle, c, size, flag, type.word(tag)))
        else:
            v = self._alloc_fast(self._handle, c, size, flag, zeroed)
        if v < 0:
            self._raise(v, size)
        if self._mstats_words[L.ST_NUMGC] != self._numgc_seen:
            self._after()
        return v

    def alloc_array(self, type: TypeInfo, n: int) -> int:
        """makeslice: n elements of ``type``, scanned precisely."""
        self._check_open()
        if n < 0:
            raise errors.InvalidSize(f"array length {n} is negative")
        return self.alloc(type.size * n, type=type)

    def _charge_stack(self) -> None:
        """Charge the allocation about to be made to the profile bucket of the caller's stack.

        Called by :meth:`alloc` only when the allocation may be sampled (the compiled
        sampler, mallocgc step 9, decides); the stack is the attributed bucket, if any, or
        the Python stack of alloc's caller.
        """
        bucket = getattr(self._local, "attributed_to", None)
        if bucket is None:
            bucket = self._intern_stack(_python_stack(sys._getframe(1)))
        self._arrays.h[L.H_PROF_STACK] = bucket

    def stack_id(self, frames) -> int:
        """The profile bucket id of a call stack (innermost last, as traceback gives it)."""
        self._check_open()
        return self._intern_stack(tuple((f.name, f.filename, f.lineno) for f in reversed(list(frames)[-MAX_PROFILE_DEPTH:])))

    def profile_bucket(self, stack) -> int:
        """The profile bucket of a call stack given innermost first, as Go records it.

        Each frame is a :class:`goheap.report.pprof.Frame` or a ``(function, file, line)``
        tuple (file and line optional). Compiled mutators charge their allocations to it
        with :func:`goheap.nb.set_profile_bucket`; Python code with
        :meth:`attributing_allocations`. The same stack always gets the same id.
        """
        key = []
        for f in list(stack)[:MAX_PROFILE_DEPTH]:
            if isinstance(f, str):
                f = (f,)
            elif hasattr(f, "function"):
                f = (f.function, f.filename, f.line)
            name, file, line = (tuple(f) + ("", 0))[:3]
            key.append((str(name), str(file), int(line)))
        return self._intern_stack(tuple(key))

    def _intern_stack(self, key: tuple) -> int:
        k = self._stacks.get(key)
        if k is None:
            k = len(self._stack_frames)
            if k >= self._arrays.prof.shape[0]:
                return 0  # the bucket table is full: charge the unattributed bucket
            self._stacks[key] = k
            self._stack_frames.append(key)
        return k

    @contextlib.contextmanager
    def attributing_allocations(self, bucket: int):
        """Charge the sampled allocations of Python code in this block to ``bucket``.

        For code that models another program's call stack (a workload's ``main.main``)
        rather than its own Python stack. Nests; the previous attribution is restored on
        exit. Per thread, as a call stack is.
        """
        previous = getattr(self._local, "attributed_to", None)
        self._local.attributed_to = int(bucket)
        try:
            yield bucket
        finally:
            self._local.attributed_to = previous

    def set_mem_profile_rate(self, rate: int) -> int:
        """runtime.MemProfileRate = rate; returns the old rate.

        One allocation is sampled per ``rate`` bytes on average; 0 (or less) turns sampling
        off, 1 samples every allocation. As in Go, each cache keeps the countdown it drew
        with the old rate until it runs out.
        """
        self._check_open()
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
            raise TypeError(f"the memory profile rate must be an int, not {rate!r}")
        old = int(self._arrays.h[L.H_MEMPROFILE_RATE])
        self._arrays.h[L.H_MEMPROFILE_RATE] = max(int(rate), 0)
        self._profile_rate = max(int(rate), 0)  # alloc's fast test of whether to find its stack
        return old

    @property
    def mem_profile_rate(self) -> int:
        """runtime.MemProfileRate: average bytes between sampled allocations (0: off)."""
        return int(self._arrays.h[L.H_MEMPROFILE_RATE])

    def heap_profile(self) -> list[pprof.HeapSample]:
        """runtime.MemProfile(inuseZero=true): one raw, unscaled record per sampled stack.

        As in Go the counts are those of the last collection: allocations and frees since
        then are folded in by the next one. Every bucket that has sampled an allocation is
        listed, in bucket order, including those whose objects are all freed.
        """
        from .report.pprof import HeapSample

        self._check_open()
        n = int(self._arrays.gcstats[L.GS_PROF_NBUCKET])
        prof = self._arrays.prof[:n]
        out = []
        for b in np.flatnonzero(prof[:, L.PB_ALLOCS] + prof[:, L.PB_RECENT_ALLOCS]):
            row = [int(x) for x in prof[b]]
            out.append(
                HeapSample(
                    self._profile_frames(int(b)),
                    row[L.PB_ALLOCS],
                    row[L.PB_ALLOC_BYTES],
                    row[L.PB_ALLOCS] - row[L.PB_FREES],
                    row[L.PB_ALLOC_BYTES] - row[L.PB_FREE_BYTES],
                )
            )
        return out

    def _profile_frames(self, bucket: int) -> tuple[pprof.Frame, ...]:
        from .report.pprof import Frame

        key = self._stack_frames[bucket] if bucket < len(self._stack_frames) else None
        if not key:
            name = "(unattributed)" if bucket == 0 or key is not None else f"(profile bucket {bucket})"
            return (Frame(name),)
        return tuple(Frame(name, file, line) for name, file, line in key)

    def write_heap_profile(self, path) -> None:
        """pprof.WriteHeapProfile: the heap profile as gzipped profile.proto, for ``go tool pprof``.

        Values are scaled for sampling as pprof scales Go's heap profiles (see
        :func:`goheap.report.pprof.scale_heap_sample`); inuse_* as of the last collection.
        That is the scaling today's pprof applies to the seed's own profiles (text headed
        ``@ heap/<2*MemProfileRate>``), so the numbers are those ``go tool pprof`` shows for
        a 2013 Go binary. It assumes Poisson sampling, while the seed always samples a block
        of MemProfileRate bytes or more: objects of about that size come out overestimated
        (churn's 32 KB-1 MB slices by about 17% at the default rate).
        """
        from .report.pprof import write_heap_profile

        samples = self.heap_profile()
        rate = self.mem_profile_rate
        st = self._arrays.mstats
        write_heap_profile(
            path,
            samples,
            rate=rate,
            time_nanos=time.time_ns(),
            comments=[
                f"goheap heap profile: MemProfileRate={rate}, as of collection {int(st[L.ST_NUMGC])}",
            ],
        )

    def free(self, p: int) -> None:
        """runtime.free: give back the block starting at p (0 is ignored).

        A finalizer set on the block is dropped with it (the seed frees only blocks that
        cannot have one).
        """
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if p.__class__ is not int:
            p = _checked_address(p)
        try:
            code = self._free_fast(self._handle, c, p)
        except OverflowError:
            raise errors.AddressError(f"address {_show_address(p)} is outside the heap") from None
        if code:
            self._raise(code)
        if self._finalizers and p in self._finalizers:
            del self._finalizers[p]
            entry.fintab_delete(self._handle, p)

    def lookup(self, addr: int) -> tuple[int, int]:
        """mlookup: (base, size) of the block holding addr; interior pointers allowed."""
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if addr.__class__ is not int:
            addr = _checked_address(addr)
        try:
            base, size, _ = self._lookup_fast(self._handle, c, addr)
        except OverflowError:
            raise errors.AddressError(f"address {_show_address(addr)} is outside the heap") from None
        if base == 0:
            raise errors.AddressError(f"address {addr:#x} is not in an allocated block of this heap")
        return base, size

    # ------------------------------------------------------------ words and views

    def _word_index(self, p: int, i: int) -> int:
        base, size = self.lookup(p)
        addr = p + 8 * i
        if i < 0 or addr + 8 > base + size:
            raise errors.AddressError(f"word {i} of the block at {p:#x} is outside its {size} bytes")
        return (addr - int(self._arrays.h[L.H_BASE])) >> 3

    def store_ptr(self, p: int, i: int, q: int) -> None:
        """Store q in word i of the block at p."""
        k = self._word_index(p, i)
        self._arrays.mem[k] = q

    def load_ptr(self, p: int, i: int) -> int:
        """Word i of the block at p."""
        k = self._word_index(p, i)
        return int(self._arrays.mem[k])

    store_word = store_ptr
    load_word = load_ptr

    def view(self, p: int, dtype=np.uint8) -> np.ndarray:
        """The whole block holding p, as a writable numpy array (no copy)."""
        base, size = self.lookup(p)
        start = base - int(self._arrays.h[L.H_BASE])
        return self._arrays.mem8[start : start + size].view(dtype)

    # ------------------------------------------------------------ types

    def register_type(self, name: str, size: int, pointer_offsets=()) -> TypeInfo:
        """A type for precise scanning: ``size`` bytes, pointers at the given byte offsets."""
        self._check_open()
        offs = tuple(int(o) for o in pointer_offsets)
        if size <= 0 or any(o % 8 or not 0 <= o <= size - 8 for o in offs):
            raise errors.InvalidSize(f"type {name}: pointer offsets {offs} must be word-aligned inside {size} bytes")
        a = self._arrays
        tid = int(a.h[L.H_NTYPES])
        start = int(a.h[L.H_NTYPEPTRS])
        if tid >= a.typedesc.shape[0] or start + len(offs) > a.typeptrs.shape[0]:
            raise errors.OutOfMemory("the type table is full")
        a.typeptrs[start : start + len(offs)] = [o // 8 for o in offs]
        a.typedesc[tid] = (size, start, len(offs), 0)
        a.h[L.H_NTYPES] = tid + 1
        a.h[L.H_NTYPEPTRS] = start + len(offs)
        t = TypeInfo(tid, name, size, offs)
        self._types.append(t)
        return t

    def type_of(self, p: int) -> TypeInfo | None:
        """The type recorded for the block at p, if any (flushing pending settype calls)."""
        self._check_open()
        entry.flush_types(self._handle, self._cache())
        w = int(entry.type_of(self._handle, int(p)))
        return self._types[w >> L.TYPE_TAG_BITS] if w else None

    # ------------------------------------------------------------ collection

    def gc(self) -> bool:
        """runtime.GC: a full collection now (unless GOGC=off). Runs due finalizers after it."""
        self._check_open()
        ran = bool(entry.gc(self._handle, self._cache(), True))
        self._after()
        return ran

    def enable_gc(self, enabled: bool = True) -> None:
        """Set mstats.enablegc (MemStats.EnableGC). Until it is set no allocation collects.

        The seed sets it at the end of schedinit, after the runtime's own start-up
        allocations; ``HeapConfig(enable_gc=False)`` builds a heap in that early state.
        """
        self._check_open()
        self._arrays.mstats[L.ST_ENABLEGC] = 1 if enabled else 0

    def set_gc_percent(self, percent: int) -> int:
        """debug.SetGCPercent: returns the old value; negative disables collection (-1)."""
        self._check_open()
        old = int(self._arrays.h[L.H_GCPERCENT])
        self._arrays.h[L.H_GCPERCENT] = -1 if percent < 0 else int(percent)
        return old

    def set_finalizer(self, p: int, fn: Callable[[int], object] | None) -> None:
        """runtime.SetFinalizer: run fn(p) once p is found unreachable; None removes it."""
        self._check_open()
        base, _ = self.lookup(p)
        if base != p:
            raise errors.AddressError(f"set_finalizer: {p:#x} is not the start of an allocated block")
        if fn is None:
            self._finalizers.pop(p, None)
            entry.fintab_delete(self._handle, p)
            return
        if p in self._finalizers:
            raise errors.HeapError(f"set_finalizer: the block at {p:#x} already has a finalizer")
        if not entry.fintab_add(self._handle, p):
            raise errors.OutOfMemory("the finalizer table is full")
        self._finalizers[p] = fn

    def _run_finalizers(self) -> None:
        """runfinq: run every queued finalizer, then force a collection, as the seed's goroutine does."""
        self._in_finalizers = True
        try:
            while self._arrays.gcstats[L.GS_NFINQ]:
                n = int(self._arrays.gcstats[L.GS_NFINQ])
                batch = [int(x) for x in self._arrays.finq[:n]]
                self._arrays.gcstats[L.GS_NFINQ] = 0
                for p in batch:
                    fn = self._finalizers.pop(p, None)
                    if fn is not None:
                        fn(p)
                self._arrays.finq[:n] = 0
                entry.gc(self._handle, self._cache(), True)
                if self._arrays.gcstats[L.GS_NTRACE] != self._traced:
                    self._print_traces()
        finally:
            self._in_finalizers = False

    def free_os_memory(self) -> int:
        """debug.FreeOSMemory: collect, then release every free span to the OS; bytes newly released."""
        self.gc()
        return int(entry.scavenge(self._handle, INT64_MAX, 0))

    # ------------------------------------------------------------ time and the scavenger

    def now(self) -> int:
        self._check_open()
        return int(entry.nanotime(self._handle))

    def advance_clock(self, ns: int) -> None:
        """Move the virtual clock forward, running every scavenger tick that falls due."""
        self._check_open()
        if not self.config.virtual_clock:
            raise errors.HeapError("advance_clock needs a heap built with virtual_clock=True")
        h = self._arrays.h
        target = int(h[L.H_NOW]) + int(ns)
        while self._next_scavenge <= target:
            h[L.H_NOW] = self._next_scavenge
            self.scavenger_tick()
            self._next_scavenge += SCAVENGER_TICK_NS
        h[L.H_NOW] = target

    def scavenger_tick(self) -> int:
        """One round of the scavenger goroutine: force a GC if none ran for 2 minutes, release idle spans."""
        self._check_open()
        k = self._scvg_k
        self._scvg_k += 1
        now = self.now()
        st = self._arrays.mstats
        trace = self._arrays.h[L.H_GCTRACE] > 0
        stream = self.trace_stream or sys.stderr
        if now - int(st[L.ST_LAST_GC]) > FORCE_GC_PERIOD_NS:
            self.gc()
            if trace:
                stream.write(f"scvg{k}: GC forced\n")
            now = self.now()
        released = int(entry.scavenge(self._handle, now, SCAVENGE_LIMIT_NS))
        if trace:
            stream.write("".join(format_scvg(k, released, st)))
        return released

    # ------------------------------------------------------------ statistics

    def read_mem_stats(self) -> MemStats:
        """runtime.ReadMemStats: fold every cache's stats in (the world stopped), then snapshot."""
        self._check_open()
        entry.read_stats(self._handle)
        a = self._arrays
        return MemStats.from_arrays(a.mstats, a.pause_ns, a.by_size)

    def read_gc_stats(self) -> GCStats:
        """debug.ReadGCStats: last GC, count, total pause, pauses most recent first."""
        self._check_open()
        st = self._arrays.mstats
        n = int(st[L.ST_NUMGC])
        ring = self._arrays.pause_ns
        pauses = tuple(int(ring[(n - 1 - i) % len(ring)]) for i in range(min(n, len(ring))))
        return GCStats(int(st[L.ST_LAST_GC]), n, int(st[L.ST_PAUSE_TOTAL_NS]), pauses)

    def check(self) -> None:
        """Verify every invariant of the heap; raises HeapCorrupted naming the first one broken."""
        self._check_open()
        check_heap(self._arrays, self._finalizers)

    # ------------------------------------------------------------ life cycle

    @property
    def runtime(self):
        """The compiled runtime, for :mod:`goheap.nb` mutators (valid until close)."""
        self._check_open()
        return self._rt

    def cache(self) -> int:
        """This thread's cache row, for :mod:`goheap.nb` mutators."""
        self._check_open()
        return self._cache()

    def after_compiled(self) -> None:
        """Call after a compiled mutator returns: prints gctrace lines and runs finalizers (and races found)."""
        self._check_open()
        self._after()
        if self.race is not None:
            self.race.flush()

    @property
    def arena_start(self) -> int:
        self._check_open()
        return int(self._arrays.h[L.H_ARENA_START])

    @property
    def arena_used(self) -> int:
        self._check_open()
        return int(self._arrays.h[L.H_ARENA_USED])

    @property
    def arena_end(self) -> int:
        self._check_open()
        return int(self._arrays.h[L.H_ARENA_END])

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Unmap the arena and all metadata. Any later call raises HeapClosed."""
        if self._closed:
            return
        if getattr(self, "race", None) is not None:
            self.race.close()
        self._closed = True
        self._caches = []
        forget_handle(self._handle)
        self._rt = None
        self._arrays = None
        self._sysmem.release_all()

    def __enter__(self) -> Heap:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        if self._closed:
            return "<goheap.Heap closed>"
        return f"<goheap.Heap arena={self.arena_start:#x}+{self.config.arena_size:#x} used={self.arena_used - self.arena_start}>"
