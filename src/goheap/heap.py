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
import traceback
import warnings
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
    BIT_ALLOCATED,
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    FORCE_GC_PERIOD_NS,
    GC_STACK_SEGMENT_BYTES,
    MAX_GCPROC,
    MAX_MEM,
    MAX_SMALL_SIZE,
    MEM_PROFILE_RATE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PARFOR_BYTES,
    SCAVENGE_LIMIT_NS,
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
    return _atoi(value)


def _atoi(value: str | None) -> int:
    """The runtime's atoi: leading decimal digits only (no sign), accumulated in an int32 that wraps."""
    n = 0
    for ch in value or "":
        if not "0" <= ch <= "9":
            break
        n = (n * 10 + ord(ch) - ord("0")) & 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


@dataclass(frozen=True)
class HeapConfig:
    """How to build a heap. Every default is the seed's.

    gcpercent / gctrace: None reads GOGC / GOGCTRACE from the environment, as the seed does.
    nproc: collector procs (work.nproc), at most 8 (MaxGcproc) as the seed's gcprocs allows;
    with more than one, the procs' mark and sweep are interleaved deterministically (see
    ``goheap._runtime.gc.gchelper``) and gctrace shows their handoffs, steals and yields.
    virtual_clock: the runtime's clock is ``start_time_ns`` and moves only with
    :meth:`Heap.advance_clock` (deterministic pauses, scavenger and LastGC).
    force_gc_period_ns / scavenge_limit_ns: the scavenger's policy (2 and 5 minutes); it
    wakes every min(both)/2. scavenger_thread: run it on a daemon thread in real time
    (off by default; a collection can then happen between any two heap calls).
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
    force_gc_period_ns: int = FORCE_GC_PERIOD_NS
    scavenge_limit_ns: int = SCAVENGE_LIMIT_NS
    scavenger_thread: bool = False
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


def _check_config(config: HeapConfig) -> None:
    if isinstance(config.nproc, bool) or not isinstance(config.nproc, int) or config.nproc < 1:
        raise errors.ConfigError(f"nproc must be a positive int, not {config.nproc!r}")
    if config.gcpercent is not None and (isinstance(config.gcpercent, bool) or not isinstance(config.gcpercent, int)):
        raise errors.ConfigError(f"gcpercent must be an int or None, not {config.gcpercent!r}")
    if min(config.force_gc_period_ns, config.scavenge_limit_ns) < 2:
        raise errors.ConfigError("force_gc_period_ns and scavenge_limit_ns must be at least 2 ns (the tick is half the smaller)")
    if config.scavenger_thread and config.virtual_clock:
        raise errors.ConfigError("scavenger_thread runs in real time; it cannot drive a virtual clock")


class RootSet:
    """The heap's roots that Python manages: pointer handles and global regions.

    A *handle* holds one word, scanned conservatively: the block it points into (interior
    pointers too) stays alive. A *region* is memory you own, scanned at every collection
    like the seed's data and bss: conservatively (any word that points into a block keeps
    it alive) or, with a pointer bitmap, only in the words the bitmap names.
    """

    def __init__(self, heap: Heap):
        self._heap = heap
        self._free: list[int] = []
        self._regions: dict[int, object] = {}  # row -> the object whose memory it is (kept alive)
        self._rootptrs_used = 0

    # ------------------------------------------------------------ handles

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
        slots[k] = int(p)
        return k

    def set(self, handle: int, p: int) -> None:
        """Make the handle hold p instead."""
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = int(p)

    def get(self, handle: int) -> int:
        self._heap._check_open()
        return int(self._heap._arrays.rootslots[self._slot(handle)])

    def remove(self, handle: int) -> None:
        """Drop the handle: what it pointed to may be collected."""
        self._heap._check_open()
        self._heap._arrays.rootslots[self._slot(handle)] = 0
        self._free.append(handle)

    def clear(self) -> None:
        """Drop every handle (regions stay)."""
        h = self._heap
        h._check_open()
        n = int(h._arrays.h[L.H_NROOTSLOTS])
        h._arrays.rootslots[:n] = 0
        h._arrays.h[L.H_NROOTSLOTS] = 0
        self._free.clear()

    def __len__(self) -> int:
        self._heap._check_open()
        n = int(self._heap._arrays.h[L.H_NROOTSLOTS])
        return int(np.count_nonzero(self._heap._arrays.rootslots[:n]))

    def _slot(self, handle: int) -> int:
        self._heap._check_open()
        if not isinstance(handle, int) or not 0 <= handle < int(self._heap._arrays.h[L.H_NROOTSLOTS]) or handle in self._free:
            raise errors.HeapError(f"no root handle {handle!r}")
        return handle

    # ------------------------------------------------------------ regions

    def add_region(self, region, nbytes: int | None = None, *, pointer_bitmap=None) -> int:
        """Scan memory you own as a root at every collection; returns a handle for :meth:`remove_region`.

        region: a C-contiguous numpy array or other buffer (kept referenced until removed;
        do not resize it), or an int address inside this heap's arena (a nogc block, say)
        with ``nbytes``. The memory must be 8-byte aligned; its words are read as int64.
        pointer_bitmap: one flag per word (a sequence or array of bools); only words whose
        flag is set are scanned. Without it, every word is (conservative).
        """
        h = self._heap
        h._check_open()
        addr, size, owner = self._region_memory(region, nbytes)
        nwords = size // 8
        a = h._arrays
        rows = a.roots
        row = next((r for r in range(int(a.gcstats[L.GS_NROOTS])) if rows[r, L.RG_KIND] == L.ROOT_NONE), None)
        if row is None:
            row = int(a.gcstats[L.GS_NROOTS])
            if row >= rows.shape[0]:
                raise errors.OutOfMemory(f"all {rows.shape[0]} root regions are in use")
        ptr_start = nptrs = 0
        kind = L.ROOT_CONSERVATIVE
        if pointer_bitmap is not None:
            flags = np.asarray(pointer_bitmap, dtype=bool).ravel()
            if flags.shape[0] != nwords:
                raise errors.InvalidSize(f"pointer_bitmap has {flags.shape[0]} flags for a region of {nwords} words")
            words = np.flatnonzero(flags)
            ptr_start = self._alloc_rootptrs(words.shape[0])
            nptrs = words.shape[0]
            a.rootptrs[ptr_start : ptr_start + nptrs] = words
            kind = L.ROOT_PRECISE
        rows[row, L.RG_ADDR] = addr
        rows[row, L.RG_NBYTES] = nwords * 8
        rows[row, L.RG_PTR_START] = ptr_start
        rows[row, L.RG_NPTRS] = nptrs
        rows[row, L.RG_KIND] = kind
        a.gcstats[L.GS_NROOTS] = max(int(a.gcstats[L.GS_NROOTS]), row + 1)
        self._regions[row] = owner
        return row

    def remove_region(self, handle: int) -> None:
        """Stop scanning the region; what only it kept alive may be collected."""
        h = self._heap
        h._check_open()
        if handle not in self._regions:
            raise errors.HeapError(f"no root region {handle!r}")
        a = h._arrays
        a.roots[handle] = 0  # kind ROOT_NONE
        del self._regions[handle]
        n = int(a.gcstats[L.GS_NROOTS])
        while n > 0 and a.roots[n - 1, L.RG_KIND] == L.ROOT_NONE:
            n -= 1
        a.gcstats[L.GS_NROOTS] = n

    def regions(self) -> list[tuple[int, int, int]]:
        """(handle, address, nbytes) of every registered region."""
        a = self._heap._arrays
        return [(r, int(a.roots[r, L.RG_ADDR]), int(a.roots[r, L.RG_NBYTES])) for r in sorted(self._regions)]

    def _region_memory(self, region, nbytes):
        h = self._heap
        if isinstance(region, (int, np.integer)) and not isinstance(region, bool):
            addr = int(region)
            if nbytes is None or nbytes < 0:
                raise errors.InvalidSize("add_region(address, nbytes) needs the region's size")
            if addr < h.arena_start or addr + nbytes > h.arena_used:
                raise errors.AddressError(
                    f"region [{addr:#x}, {addr + nbytes:#x}) is not inside this heap's arena; pass a buffer instead"
                )
            owner = None
        else:
            arr = region if isinstance(region, np.ndarray) else np.frombuffer(region, dtype=np.uint8)
            if not arr.flags.c_contiguous:
                raise errors.AddressError("a root region must be C-contiguous memory")
            addr = int(arr.__array_interface__["data"][0])
            size = int(arr.nbytes)
            if nbytes is not None:
                if not 0 <= nbytes <= size:
                    raise errors.InvalidSize(f"nbytes {nbytes} is outside the buffer's {size} bytes")
                size = nbytes
            nbytes = size
            owner = region
        if addr % 8:
            raise errors.AddressError(f"root region at {addr:#x} is not 8-byte aligned")
        return addr, nbytes, owner

    def _alloc_rootptrs(self, n: int) -> int:
        a = self._heap._arrays
        cap = a.rootptrs.shape[0]
        if self._rootptrs_used + n > cap:
            # compact: move every live precise region's offsets to the front
            used = 0
            precise = [r for r in self._regions if a.roots[r, L.RG_KIND] == L.ROOT_PRECISE]
            for r in sorted(precise, key=lambda r: int(a.roots[r, L.RG_PTR_START])):
                start, k = int(a.roots[r, L.RG_PTR_START]), int(a.roots[r, L.RG_NPTRS])
                a.rootptrs[used : used + k] = a.rootptrs[start : start + k].copy()
                a.roots[r, L.RG_PTR_START] = used
                used += k
            self._rootptrs_used = used
            if used + n > cap:
                raise errors.OutOfMemory(f"root regions' pointer bitmaps need more than {cap} pointer words")
        start = self._rootptrs_used
        self._rootptrs_used += n
        return start


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
        _check_config(config)
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
        entry.load_units(arrays.code, race_mode=race_options is not None, nproc=config.nproc)
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
        h[L.H_NPROC] = min(config.nproc, MAX_GCPROC)
        h[L.H_CLOCK_VIRTUAL] = 1 if config.virtual_clock else 0
        h[L.H_NOW] = config.start_time_ns
        if config.go_process:
            h[L.H_GC_STACK_BYTES] = GC_STACK_SEGMENT_BYTES
            h[L.H_GC_PARFOR_BYTES] = PARFOR_BYTES
        map_limit = getattr(self._sysmem.backend, "map_limit", None)
        h[L.H_SYSMAP_LIMIT] = -1 if map_limit is None else map_limit
        self._local = threading.local()
        self._caches: list[int] = []
        self._lock = threading.RLock()  # the scavenger thread's rounds against close()
        self._finq_lock = threading.Lock()  # held by the thread running finalizers
        self._finalizers: dict[int, Callable[[int], object]] = {}
        self._types: list[TypeInfo | None] = [None]
        self._stacks: dict[tuple, int] = {(): 0}
        self._stack_frames: list[tuple] = [()]
        self._traced = 0
        self._scvg_k = 0
        self._scvg_tick_ns = min(config.force_gc_period_ns, config.scavenge_limit_ns) // 2
        self._next_scavenge = config.start_time_ns + self._scvg_tick_ns
        self._scvg_thread: threading.Thread | None = None
        self._scvg_stop = threading.Event()
        self.trace_stream = config.trace_stream
        self.roots = RootSet(self)
        self._closed = False
        # race mode: the detector replaces this heap's accessors by checking ones
        self.race: RaceDetector | None = RaceDetector(self, race_options) if race_options else None
        # mallocinit's smoke test: free(malloc(1)), before the collector is enabled
        c = self._cache()
        entry.free(self._handle, c, entry.mallocgc(self._handle, c, 1, 0, False, True))
        arrays.mstats[L.ST_ENABLEGC] = 1 if config.enable_gc else 0
        if config.scavenger_thread:
            self._scvg_thread = threading.Thread(target=self._scavenger_loop, name="goheap-scavenger", daemon=True)
            self._scvg_thread.start()

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

    def _after(self, keep: int = 0) -> None:
        """Print new gctrace lines and run queued finalizers (after any call that may collect).

        ``keep`` is a block the caller is about to hand out: it stays on this thread's shadow
        stack while the finalizers and their collections run, as a fresh pointer stays on
        the allocating goroutine's stack in the seed.
        """
        numgc = self._mstats_words[L.ST_NUMGC]
        gs = self._arrays.gcstats
        if numgc == self._numgc_seen and not gs[L.GS_NFINQ]:
            return
        self._numgc_seen = numgc
        gs = self._arrays.gcstats
        if gs[L.GS_NTRACE] != self._traced:
            self._print_traces()
        # a thread already running finalizers (this one, re-entered, or another) drains the queue
        if gs[L.GS_NFINQ] and not self._finq_lock.locked():
            if keep:
                c = self._cache()
                if int(entry.push_root(self._handle, c, keep)) < 0:
                    raise errors.OutOfMemory("the shadow stack is full")
                try:
                    self._run_finalizers()
                finally:
                    entry.pop_root(self._handle, c)
            else:
                self._run_finalizers()

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
            if size < type.size:
                raise errors.InvalidSize(f"size {size} is smaller than type {type.name} ({type.size} bytes)")
            tag = TYPEINFO_ARRAY if size > type.size else TYPEINFO_SINGLE_OBJECT
            v = int(entry.malloc_typed(self._handle, c, size, flag, type.word(tag)))
        else:
            v = self._alloc_fast(self._handle, c, size, flag, zeroed)
            if v.__class__ is not int:  # interpreted (NUMBA_DISABLE_JIT): a numpy integer
                v = int(v)
        if v < 0:
            self._raise(v, size)
        if self._mstats_words[L.ST_NUMGC] != self._numgc_seen:
            self._after(keep=v)
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
        if self._finalizers and self._finalizers.pop(p, None) is not None:
            self._unqueue(p)  # the compiled free dropped it from the table

    def _unqueue(self, p: int) -> None:
        """Drop p from the queue of ready finalizers, if it waits there."""
        a = self._arrays
        n = int(a.gcstats[L.GS_NFINQ])
        queue = a.finq[:n]
        hit = np.flatnonzero(queue == p)
        if hit.size:
            k = int(hit[0])
            queue[k : n - 1] = queue[k + 1 : n].copy()
            a.finq[n - 1] = 0
            a.gcstats[L.GS_NFINQ] = n - 1

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
        """runtime.SetFinalizer: call fn(p) once the block at p is found unreachable; None removes it.

        p must be the start of an allocated block the collector manages (not nogc). fn runs
        after the collection that found p unreachable, outside it (allocating and collecting
        are allowed); p survives that collection and is freed by a later one unless fn made
        it reachable again. A finalizer runs once: set it again to re-arm it. Raises
        FinalizerError if p already has one; an exception raised by fn is reported as a
        FinalizerWarning once its batch has run.
        """
        self._check_open()
        if fn is not None and not callable(fn):
            raise errors.FinalizerError(f"set_finalizer: {fn!r} is not callable")
        p = int(p)
        if int(entry.check_free(self._handle, p)) != 0 or not int(entry.block_bits(self._handle, p)) & BIT_ALLOCATED:
            raise errors.AddressError(f"set_finalizer: {p:#x} is not the start of an allocated, collected block")
        if fn is None:
            entry.remove_finalizer(self._handle, p)
            self._finalizers.pop(p, None)
            return
        code = int(entry.add_finalizer(self._handle, self._cache(), p))
        if code == 0:
            raise errors.FinalizerError(f"set_finalizer: the block at {p:#x} already has a finalizer")
        if code < 0:
            self._raise(code)
        self._finalizers[p] = fn

    def _run_finalizers(self) -> None:
        """runfinq: run the queued finalizers, newest FinBlock first; after each batch force a collection.

        The queue is taken whole before any finalizer runs, so one that allocates or collects
        starts a new batch. Exceptions are collected and reported as FinalizerWarnings once
        the batch and its collection are done; an exception that is not an Exception (a
        KeyboardInterrupt) puts the batch's unrun finalizers back in the queue and propagates.
        """
        a = self._arrays
        failures: list[tuple[int, object, BaseException]] = []
        if not self._finq_lock.acquire(blocking=False):
            return
        try:
            while a.gcstats[L.GS_NFINQ]:
                n = int(a.gcstats[L.GS_NFINQ])
                queue = [int(x) for x in a.finq[:n]]
                a.finq[:n] = 0
                a.gcstats[L.GS_NFINQ] = 0
                cap = L.FINBLOCK_CAP
                batch = [p for k in range((n - 1) // cap * cap, -1, -cap) for p in queue[k : k + cap]]
                for i, p in enumerate(batch):
                    fn = self._finalizers.pop(p, None)
                    if fn is None:
                        continue
                    try:
                        fn(p)
                    except Exception as exc:  # noqa: BLE001 - reported after the batch
                        failures.append((p, fn, exc))
                    except BaseException:
                        self._requeue(batch[i + 1 :])
                        raise
                entry.gc(self._handle, self._cache(), True)
                if a.gcstats[L.GS_NTRACE] != self._traced:
                    self._print_traces()
        finally:
            self._finq_lock.release()
        for p, fn, exc in failures:
            tb = "".join(traceback.format_exception(exc))
            warnings.warn(errors.FinalizerWarning(f"finalizer {fn!r} of the block at {p:#x} raised:\n{tb}"), stacklevel=3)

    def _requeue(self, ps: list[int]) -> None:
        a = self._arrays
        for p in ps:
            if p in self._finalizers:
                n = int(a.gcstats[L.GS_NFINQ])
                a.finq[n] = p
                a.gcstats[L.GS_NFINQ] = n + 1

    def free_os_memory(self) -> int:
        """debug.FreeOSMemory: collect, then release every free span to the OS; the bytes newly released."""
        self._check_open()
        entry.gc(self._handle, self._cache(), True)
        released = int(entry.scavenge(self._handle, INT64_MAX, 0))
        self._after()
        return released

    # ------------------------------------------------------------ time and the scavenger

    def now(self) -> int:
        self._check_open()
        return int(entry.nanotime(self._handle))

    def advance_clock(self, ns: int) -> None:
        """Move the virtual clock forward, running every scavenger round that falls due."""
        if not self.config.virtual_clock:
            raise errors.HeapError("advance_clock needs a heap built with virtual_clock=True")
        self._check_open()
        if ns < 0:
            raise errors.HeapError(f"the clock cannot go back ({ns} ns)")
        h = self._arrays.h
        target = int(h[L.H_NOW]) + int(ns)
        while self._next_scavenge <= target:
            h[L.H_NOW] = self._next_scavenge
            self.scavenger_tick()
            self._next_scavenge += self._scvg_tick_ns
        h[L.H_NOW] = target

    def scavenger_tick(self) -> int:
        """One round of the scavenger goroutine; the bytes it released.

        Forces a collection if none ran for force_gc_period_ns, then returns the free spans
        idle for more than scavenge_limit_ns to the OS (madvise DONTNEED). With gctrace on,
        prints the seed's ``scvg<k>:`` lines.
        """
        self._check_open()
        k = self._scvg_k
        self._scvg_k += 1
        now = self.now()
        st = self._arrays.mstats
        trace = self._arrays.h[L.H_GCTRACE] > 0
        stream = self.trace_stream or sys.stderr
        if now - int(st[L.ST_LAST_GC]) > self.config.force_gc_period_ns:
            entry.gc(self._handle, self._cache(), True)
            self._print_traces()
            if trace:
                stream.write(f"scvg{k}: GC forced\n")
            now = self.now()
        released = int(entry.scavenge(self._handle, now, self.config.scavenge_limit_ns))
        if trace:
            stream.write("".join(format_scvg(k, released, st)))
        self._after()
        return released

    def _scavenger_loop(self) -> None:
        """The scavenger goroutine on a real-time thread (HeapConfig.scavenger_thread)."""
        while not self._scvg_stop.wait(self._scvg_tick_ns / 1e9):
            with self._lock:
                if self._closed:
                    return
                self.scavenger_tick()

    # ------------------------------------------------------------ statistics

    def read_mem_stats(self) -> MemStats:
        """runtime.ReadMemStats: fold every cache's stats in (the world stopped), then snapshot."""
        self._check_open()
        entry.read_stats(self._handle)
        a = self._arrays
        return MemStats.from_arrays(a.mstats, a.pause_ns, a.by_size)

    def read_gc_stats(self, quantiles: int = 0) -> GCStats:
        """debug.ReadGCStats: last GC, count, total pause, pauses most recent first, and ``quantiles`` pause quantiles."""
        self._check_open()
        st = self._arrays.mstats
        return GCStats.from_ring(
            int(st[L.ST_LAST_GC]), int(st[L.ST_NUMGC]), int(st[L.ST_PAUSE_TOTAL_NS]), self._arrays.pause_ns, quantiles
        )

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
        self._scvg_stop.set()
        if getattr(self, "race", None) is not None:
            self.race.close()
        with self._lock:
            self._closed = True
            self._caches = []
        if self._scvg_thread is not None and self._scvg_thread is not threading.current_thread():
            self._scvg_thread.join()
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
