"""The Python shell over one heap: :class:`Heap`, assembled from the parts in :mod:`goheap._shell`.

See :mod:`goheap._runtime.malloc` for how the runtime underneath works. A ``Heap`` owns
its reservation and all its metadata; nothing is shared between heaps, so any number can
coexist. Each Python thread that touches a heap gets its own MCache on first use.

Addresses are plain ints (real virtual addresses). The collector cannot see ints held by
Python: keep every object you need reachable from a root (``heap.roots``), from an
object that is, or from a shadow stack.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Callable

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
    GC_STACK_SEGMENT_BYTES,
    MAX_GCPROC,
    MAX_SMALL_SIZE,
    PAGE_SIZE,
    PARFOR_BYTES,
    TYPEINFO_ARRAY,
    TYPEINFO_SINGLE_OBJECT,
)
from ._runtime.gctrace import format_gctrace
from ._runtime.handle import forget_handle, handle_of
from ._runtime.mallocinit import build_runtime
from ._runtime.stats import GCStats, MemStats
from ._runtime.sysmem import SysMem
from ._shell.config import HeapConfig, TypeInfo, atoi, check_config, readgogc
from ._shell.finalizers import HeapFinalizers
from ._shell.profiling import HeapProfiling
from ._shell.roots import RootSet
from ._shell.scavenger import HeapScavenger
from .race import RaceDetector, RaceOptions

__all__ = ["Heap", "HeapConfig", "RootSet", "TypeInfo", "readgogc"]


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


class Heap(HeapProfiling, HeapFinalizers, HeapScavenger):
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
        check_config(config)
        gcpercent = config.gcpercent if config.gcpercent is not None else readgogc(os.environ.get("GOGC"))
        gctrace = config.gctrace if config.gctrace is not None else atoi(os.environ.get("GOGCTRACE"))
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
        self._idle_ms: list[_ThreadCache] = []  # caches of Ms the goroutines left (new_m / run_on_m)
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

    def new_m(self) -> int:
        """Start another M: a new MCache row (allocmcache, as mcommoninit gives each new M one).

        The calling thread keeps using its own until :meth:`run_on_m`; the new cache lives
        until the heap is closed.
        """
        self._check_open()
        c = int(entry.new_cache(self._handle))
        if c < 0:
            raise errors.OutOfMemory(f"more than {self.config.limits.max_threads} Ms use this heap")
        self._caches.append(c)
        self._idle_ms.append(_ThreadCache(self, c))
        return c

    def run_on_m(self, c: int) -> None:
        """From now on the calling thread's goroutine runs on the M whose cache is ``c`` (from
        :meth:`new_m`), as the seed's scheduler moves a goroutine when its M blocks in a
        system call. The M it leaves keeps its cache: its cached free objects and pending
        settype calls stay there until a collection takes them back.
        """
        self._check_open()
        if c not in self._caches:
            raise errors.HeapError(f"cache {c} is not one of this heap's Ms")
        self._cache()
        self._idle_ms.append(self._local.owner)
        self._local.cache = c
        self._local.owner = next(o for o in self._idle_ms if o.c == c)

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
        dogc: bool = True,
    ) -> int:
        """mallocgc: a block of at least ``size`` bytes; may collect first. Returns its address.

        noscan: it holds no pointers (never scanned). type: scan it precisely as this type.
        zeroed=False: its contents are undefined (for blocks the caller overwrites whole).
        noprofile: never sampled by the memory profiler.
        nogc: the collector never frees nor scans it (free it explicitly).
        dogc=False: never collects first, whatever the heap's size (the seed's runtime·malloc,
        which the runtime's own C code calls, passes dogc = 0).
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
            if dogc:
                v = int(entry.malloc_typed(self._handle, c, size, flag, type.word(tag)))
            else:
                v = int(entry.mallocgc(self._handle, c, size, flag, False, True))
                if v > 0:
                    entry.settype(self._handle, c, v, type.word(tag))
        elif not dogc:
            v = int(entry.mallocgc(self._handle, c, size, flag, False, zeroed))
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
