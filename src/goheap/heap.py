"""The Python shell over one heap: :class:`Heap`, assembled from the parts in :mod:`goheap._shell`.

See :mod:`goheap._runtime.malloc` for how the runtime underneath works. A ``Heap`` owns
its reservation and all its metadata; nothing is shared between heaps, so any number can
coexist. Each Python thread that touches a heap gets its own MCache on first use.

Addresses are plain ints (real virtual addresses). The collector cannot see ints held by
Python: keep every object you need reachable from a root, or from an object that is. The
roots Python code holds are handle scopes (``with heap.scope() as s: p = s.alloc(16)``,
allocated and rooted in one step) and :class:`~goheap.Ref` objects (``heap.ref(p)``); see
:mod:`goheap._shell.scope`. ``heap.roots`` has raw handles and root regions.

Every public call checks its arguments before it touches anything (ints only, in range,
addresses inside allocated blocks: see :mod:`goheap._shell.args`), so misuse is a goheap
error and the heap stays intact. Threads may share a heap: each compiled call holds the
GIL, the Python-side tables (roots, finalizers, types, profile buckets) are changed under
the heap's lock, and close() waits for the calls other threads are making (see
:mod:`goheap._shell.lifetime`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TextIO

import numpy as np

from . import errors
from ._runtime import entry
from ._runtime import layout as L
from ._runtime.check import check_heap
from ._runtime._jit import entry_point
from ._runtime.prepare import heap_jobs, prepare
from ._runtime.constants import (
    FLAG_NO_GC,
    FLAG_NO_POINTERS,
    FLAG_NO_PROFILING,
    GC_STACK_SEGMENT_BYTES,
    MAX_GCPROC,
    PARFOR_BYTES,
    TYPEINFO_ARRAY,
    TYPEINFO_SINGLE_OBJECT,
)
from ._runtime.gctrace import format_gctrace, format_gctrace_modern, gctrace_level_from_environment
from ._runtime.handle import forget_handle, handle_of
from ._runtime.mallocinit import build_runtime, check_arena_size
from ._runtime.stats import GCStats, MemStats
from ._runtime.sysmem import SysMem, array_at
from ._shell import args, lifetime
from ._shell.config import HeapConfig, TypeInfo, build_config, readgogc
from ._shell.finalizers import HeapFinalizers
from ._shell.profiling import HeapProfiling
from ._shell.roots import RootSet
from ._shell.scavenger import HeapScavenger
from ._shell.scope import Ref, Scope
from .race import RaceDetector, RaceOptions, skip_file

__all__ = ["Heap", "HeapConfig", "Ref", "RootSet", "Scope", "TypeInfo", "readgogc"]


for _path in lifetime.SHELL_FILES:  # race reports show the program's frames, not the shell's
    skip_file(_path)
del _path

_ERRORS = {
    L.E_NOT_IN_HEAP: (errors.AddressError, "address {arg:#x} is outside the heap"),
    L.E_NOT_ALLOCATED: (errors.InvalidFree, "address {arg:#x} is not in an allocated block"),
    L.E_INTERIOR: (errors.InvalidFree, "address {arg:#x} is inside a block, not at its start"),
    L.E_TAIL: (errors.InvalidFree, "address {arg:#x} is in the unused tail of a span, not in a block"),
    L.E_DOUBLE_FREE: (errors.DoubleFree, "address {arg:#x} is already free (double free)"),
    L.E_BAD_SIZE: (errors.InvalidSize, "size {arg} is negative or larger than the arena"),
    L.E_OUT_OF_MEMORY: (errors.OutOfMemory, "out of memory: cannot allocate a {arg}-byte block"),
    L.E_STACK_FULL: (errors.OutOfMemory, "the thread's shadow stack is full ({arg} slots, Limits.shadow_depth)"),
}

# the checked accessors' errors (lookup, load_word/store_word, view): the address is the arg
_ACCESS_ERRORS = {
    L.E_NOT_IN_HEAP: "address {arg:#x} is outside the heap",
    L.E_NOT_ALLOCATED: "address {arg:#x} is not in an allocated block of this heap",
    L.E_UNALIGNED: "address {arg:#x} is not word-aligned",
    L.E_OUTSIDE_BLOCK: "word {i} of the block at {arg:#x} is outside its {size} bytes",
}


class _ThreadCache:
    """Owned by one thread's slot of ``Heap._local``: gives the thread's MCache back when the thread ends."""

    __slots__ = ("_heap", "c")

    def __init__(self, heap: Heap, c: int):
        self._heap = weakref.ref(heap)
        self.c = c

    def __del__(self):
        heap = self._heap()
        if heap is not None:
            heap._release_cache(self.c)


class Heap(HeapProfiling, HeapFinalizers, HeapScavenger):
    """One Go heap of 2013: allocate, free, collect, inspect.

    >>> with Heap(arena_size=64 << 20) as h:
    ...     with h.scope() as s:
    ...         p = s.alloc(16)
    ...         h.lookup(p + 3) == (p, 16)
    True
    """

    __module__ = "goheap"

    def __init__(self, config: HeapConfig | None = None, **overrides):
        self._closed = self._closing = self._released = True  # until it is built
        config, self.policy = build_config(config, overrides)
        self.config = config
        gcpercent = config.gcpercent if config.gcpercent is not None else readgogc(os.environ.get("GOGC"))
        gctrace = config.gctrace if config.gctrace is not None else gctrace_level_from_environment(os.environ)
        self._sysmem = SysMem(config.os)
        race_options = None
        if config.race:
            race_options = config.race_options or RaceOptions.from_gorace(os.environ.get("GORACE"))
        check_arena_size(config.arena_size)
        prepare(heap_jobs(race_mode=race_options is not None, nproc=config.nproc))  # the first run's compiling
        try:
            arrays = build_runtime(
                self._sysmem, config.arena_size, config.limits, race_options.sizes() if race_options is not None else None, self.policy.size_classes.build()
            )
            L.check_arrays(arrays)
        except MemoryError as exc:
            self._sysmem.release_all()
            if isinstance(exc, errors.HeapError):
                raise
            raise errors.OutOfMemory(f"cannot allocate the heap's metadata for these Limits: {exc}") from None
        except BaseException:
            self._sysmem.release_all()
            raise
        self._arrays = arrays
        entry.load_units(arrays.code, race_mode=race_options is not None, nproc=config.nproc)
        self._mem = arrays.mem  # the word accessors' array
        self._arena_start = int(arrays.h[L.H_ARENA_START])
        self._arena8 = array_at(self._arena_start, config.arena_size, np.uint8)  # views' base: see close()
        self._rt = L.as_runtime(arrays, race=race_options is not None)
        self._handle = handle_of(self._rt)
        self._alloc_fast = entry_point(*entry.HOT["alloc"])
        self._free_fast = entry_point(*entry.HOT["free"])
        self._lookup_fast = entry_point(*entry.HOT["lookup"])
        self._word_fast = entry_point(*entry.HOT["word_index"])
        self._mstats_words = arrays.mstats.data  # a memoryview of the array
        self._cache_words = arrays.cache_local.reshape(-1).data
        self._numgc_seen = 0
        self._max_size = int(config.arena_size)
        self._max_small_size = self.policy.size_classes.max_small_size
        self._page_size = self.policy.page_size
        # a small request rounds up to at most growth x size + 8 bytes (2 for the seed's classes)
        sizes = [s for s, _ in self.policy.size_classes.rows]
        self._class_growth = max([2] + [-(-b // (a + 1)) for a, b in zip(sizes, sizes[1:])])
        self._profile_rate = config.memprofilerate
        h = arrays.h
        h[L.H_GCPERCENT] = -1 if gcpercent < 0 else gcpercent
        self._set_pacer(-1 if gcpercent < 0 else gcpercent, self.policy.pacer.memory_limit)
        retain = self.policy.scavenger.retain_extra_percent
        h[L.H_SCAVENGE_RETAIN] = -1 if retain is None else retain
        h[L.H_GCTRACE] = gctrace
        h[L.H_MEMPROFILE_RATE] = config.memprofilerate
        h[L.H_NPROC] = min(config.nproc, MAX_GCPROC)
        h[L.H_CLOCK_VIRTUAL] = 1 if config.virtual_clock else 0
        h[L.H_NOW] = config.start_time_ns
        h[L.H_START_NS] = config.start_time_ns if config.virtual_clock else time.time_ns()
        if config.go_process:
            h[L.H_GC_STACK_BYTES] = GC_STACK_SEGMENT_BYTES
            h[L.H_GC_PARFOR_BYTES] = PARFOR_BYTES
        map_limit = getattr(self._sysmem.backend, "map_limit", None)
        h[L.H_SYSMAP_LIMIT] = -1 if map_limit is None else map_limit
        self._local = threading.local()
        self._caches: list[int] = []
        self._idle_ms: list[_ThreadCache] = []  # caches of Ms the goroutines left (new_m / run_on_m)
        self._lock = threading.RLock()  # the Python-side tables, and close()
        self._finq_lock = threading.Lock()  # held by the thread running finalizers
        self._finalizers: dict[int, Callable[[int], object]] = {}
        self._types: list[TypeInfo | None] = [None]
        self._stacks: dict[tuple, int] = {(): 0}
        self._stack_frames: list[tuple] = [()]
        self._traced = 0
        self._policy_traced = False
        self._scvg_k = 0
        self._scvg_tick_ns = self.policy.scavenger.tick_ns
        self._next_scavenge = config.start_time_ns + self._scvg_tick_ns
        self._scvg_thread: threading.Thread | None = None
        self._scvg_stop = threading.Event()
        self.trace_stream = config.trace_stream
        self.roots = RootSet(self)
        self.race: RaceDetector | None = None
        self._closed = self._closing = self._released = False
        # race mode: the detector replaces this heap's accessors by checking ones
        self.race = RaceDetector(self, race_options) if race_options else None
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
        with self._lock:
            self._check_open()
            c = int(entry.new_cache(self._handle))
            if c < 0:
                raise errors.OutOfMemory(f"more than {self.config.limits.max_threads} threads use this heap (Limits.max_threads)")
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
        with self._lock:
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

    def _raise_access(self, code: int, addr: int, i: int = 0) -> None:
        """Raise the AddressError of a checked accessor's error code."""
        msg = _ACCESS_ERRORS.get(int(code), "address {arg:#x}: runtime error " + str(int(code)))
        size = 0
        if code == L.E_OUTSIDE_BLOCK:
            _, size, _ = self._lookup_fast(self._handle, self._cache(), addr)
        raise errors.AddressError(msg.format(arg=addr, i=i, size=size))

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

    def _trace_stream(self) -> TextIO:
        """Where gctrace and scavenger lines go; the first line names the policy, unless it is the seed's."""
        stream = self.trace_stream or sys.stderr
        if not self._policy_traced:
            self._policy_traced = True
            if not self.policy.is_seed:
                stream.write(self.policy.trace_line() + "\n")
        return stream

    def _print_traces(self) -> None:
        with self._lock:
            gs = self._arrays.gcstats
            log = self._arrays.gctrace_log
            n = int(gs[L.GS_NTRACE])
            if self._arrays.h[L.H_GCTRACE] > 0 and n > self._traced:
                stream = self._trace_stream()
                start_ns = int(self._arrays.h[L.H_START_NS])
                modern = self.config.gctrace_format == "modern"
                for k in range(max(self._traced, n - log.shape[0]), n):
                    row = log[k % log.shape[0]]
                    stream.write((format_gctrace_modern(row, start_ns) if modern else format_gctrace(row)) + "\n")
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

        noscan: it holds no pointers (never scanned). type: scan it precisely as this type
        (one registered with this heap). zeroed=False: its contents are undefined (for blocks
        the caller overwrites whole). noprofile: never sampled by the memory profiler.
        nogc: the collector never frees nor scans it (free it explicitly).
        dogc=False: never collects first, whatever the heap's size (the seed's runtime·malloc,
        which the runtime's own C code calls, passes dogc = 0).

        Nothing roots the block: a collection (this thread's next allocation, or any other
        thread's) may free it unless it is made reachable first. Allocate in a scope
        (:meth:`scope`) to have it rooted from the start.
        """
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        if size.__class__ is not int:
            size = args.size(size)
        if size < 0 or size > self._max_size:
            raise errors.InvalidSize(f"size {size} is negative or larger than the {self._max_size}-byte arena")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        # _alloc_flag, inlined by hand: a call costs a sixth of this path
        flag = FLAG_NO_POINTERS if noscan else 0
        if noprofile:
            flag |= FLAG_NO_PROFILING
        elif self._profile_rate > 0 and (
            size >= self._profile_rate
            # mallocgc samples when next_sample <= the rounded size: at most growth*size+8 when small
            or self._cache_words[c * L.LC_NSLOTS + L.LC_NEXT_SAMPLE]
            <= (self._class_growth * size + 8 if size <= self._max_small_size else size + self._page_size)
        ):
            self._charge_stack()
        if nogc:
            flag |= FLAG_NO_GC
        if type is not None:
            word = self._type_word(type, size, noscan)
            if dogc:
                v = int(entry.malloc_typed(self._handle, c, size, flag, word))
            else:
                v = int(entry.mallocgc(self._handle, c, size, flag, False, True))
                if v > 0:
                    entry.settype(self._handle, c, v, word)
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

    def _alloc_flag(self, c: int, size: int, noscan, noprofile, nogc) -> int:
        """mallocgc's flag word for alloc's options; finds the caller's stack if the block may be sampled."""
        flag = FLAG_NO_POINTERS if noscan else 0
        if noprofile:
            flag |= FLAG_NO_PROFILING
        elif self._profile_rate > 0 and (
            size >= self._profile_rate
            # mallocgc samples when next_sample <= the rounded size: at most growth*size+8 when small
            or self._cache_words[c * L.LC_NSLOTS + L.LC_NEXT_SAMPLE]
            <= (self._class_growth * size + 8 if size <= self._max_small_size else size + self._page_size)
        ):
            self._charge_stack()  # this allocation may be sampled: find its call stack
        if nogc:
            flag |= FLAG_NO_GC
        return flag

    def _type_word(self, type: TypeInfo, size: int, noscan) -> int:
        """The settype word of a block of ``size`` bytes of a registered type."""
        if type.__class__ is not TypeInfo or not 0 < type.id < len(self._types) or self._types[type.id] is not type:
            self._type_size(type)  # not one of this heap's own TypeInfos: is it a copy of one?
        if noscan:
            raise errors.HeapError("a typed block cannot be noscan")
        if size < type.size:
            raise errors.InvalidSize(f"size {size} is smaller than type {type.name} ({type.size} bytes)")
        return type.word(TYPEINFO_ARRAY if size > type.size else TYPEINFO_SINGLE_OBJECT)

    def _type_size(self, type: TypeInfo) -> int:
        """The size of a type registered with this heap (InvalidValue for any other)."""
        try:
            registered = self._types[type.id] if type.id > 0 else None
        except (AttributeError, IndexError, TypeError):
            registered = None
        if registered is None or (registered is not type and registered != type):  # equal: a copy of it
            raise errors.InvalidValue(f"{type!r} is not a type registered with this heap (use register_type)")
        return type.size

    def _alloc_rooted(
        self, c: int, size: int, *, noscan=False, type=None, zeroed=True, noprofile=False, nogc=False
    ) -> int:
        """Scope.alloc: :meth:`alloc`, and the block pushed on thread row c's shadow stack in the same compiled call."""
        self._check_open()
        size = args.size(size, hi=self._max_size)
        flag = self._alloc_flag(c, size, noscan, noprofile, nogc)
        typ = 0 if type is None else self._type_word(type, size, noscan)
        v = int(entry.alloc_rooted(self._handle, c, size, flag, zeroed, typ))
        if v < 0:
            self._raise(v, size if v != L.E_STACK_FULL else None)
        if self._mstats_words[L.ST_NUMGC] != self._numgc_seen:
            self._after()
        return v

    def alloc_array(self, type: TypeInfo, n: int) -> int:
        """makeslice: n elements of ``type``, scanned precisely."""
        self._check_open()
        n = args.size(n, "array length")
        return self.alloc(self._type_size(type) * n, type=type)

    def free(self, p: int) -> None:
        """runtime.free: give back the block starting at p (0 is ignored).

        A finalizer set on the block is dropped with it (the seed frees only blocks that
        cannot have one), and so is its type: the next block in its place is scanned as its
        own allocation says.
        """
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if p.__class__ is not int:
            p = args.address(p)
        try:
            code = self._free_fast(self._handle, c, p)
        except OverflowError:
            raise errors.AddressError(f"address {args.show(p)} is outside the heap") from None
        if code:
            self._raise(code)
        if self._finalizers and self._finalizers.pop(p, None) is not None:
            self._unqueue(p)  # the compiled free dropped it from the table

    def lookup(self, addr: int) -> tuple[int, int]:
        """mlookup: (base, size) of the allocated block holding addr; interior pointers allowed.

        AddressError if addr is not inside an allocated block (a freed one included).
        """
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if addr.__class__ is not int:
            addr = args.address(addr)
        try:
            base, size, err = self._lookup_fast(self._handle, c, addr)
        except OverflowError:
            raise errors.AddressError(f"address {args.show(addr)} is outside the heap") from None
        if err:
            self._raise_access(err, addr)
        return base, size

    # ------------------------------------------------------------ words and views

    def _word_index(self, p: int, i: int) -> int:
        """The index in mem of word i of the block at p, checked (see load_word)."""
        if self._closed:
            raise errors.HeapClosed("the heap is closed")
        try:
            c = self._local.cache
        except AttributeError:
            c = self._cache()
        if p.__class__ is not int:
            p = args.address(p)
        if i.__class__ is not int:
            i = args.integer(i, "word index", error=errors.AddressError)
        try:
            k = self._word_fast(self._handle, c, p, i)
        except OverflowError:
            raise errors.AddressError(f"word {i} of the block at {args.show(p)} is outside the heap") from None
        if k < 0:
            self._raise_access(k, p, i)
        return k

    def load_word(self, p: int, i: int) -> int:
        """Word i (8 bytes, signed) of the block at p.

        p must be word-aligned and inside an allocated block (interior pointers allowed),
        and word i, counted from p, inside the same block: AddressError otherwise.
        """
        return int(self._mem[self._word_index(p, i)])

    def store_word(self, p: int, i: int, q: int) -> None:
        """Store q, an int of 64 bits (signed), in word i of the block at p (checked as in load_word)."""
        if q.__class__ is not int:
            q = args.word(q)
        k = self._word_index(p, i)
        try:
            self._mem[k] = q
        except OverflowError:
            raise errors.InvalidValue(f"the word to store, {q}, does not fit in 64 bits") from None

    load_ptr = load_word
    store_ptr = store_word
    _word_value = staticmethod(args.word)  # race mode's store checks its word with it

    def view(self, p: int, dtype=np.uint8) -> np.ndarray:
        """The whole allocated block holding p, as a writable numpy array of ``dtype`` (no copy).

        A view kept past close() no longer reaches the heap's memory (see close()).
        """
        base, size = self.lookup(p)
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise errors.InvalidValue(f"view: {dtype!r} is not a numpy dtype: {exc}") from None
        if dt.hasobject or dt.itemsize == 0 or size % dt.itemsize:
            raise errors.InvalidValue(f"view: a {size}-byte block is not an array of {dt}")
        start = base - self._arena_start
        return self._arena8[start : start + size].view(dt)

    # ------------------------------------------------------------ handle scopes and references

    def scope(self) -> Scope:
        """A handle scope: ``with heap.scope() as s: p = s.alloc(16)``; see :class:`goheap.Scope`."""
        self._check_open()
        return Scope(self)

    def ref(self, p: int) -> Ref:
        """A root for the allocated block holding p that lasts as long as the returned :class:`goheap.Ref`."""
        self.lookup(p)
        with self._lock:
            self._check_open()
            return Ref(self, self.roots._add_ref(int(p)), int(p))

    # ------------------------------------------------------------ types

    def register_type(self, name: str, size: int, pointer_offsets=()) -> TypeInfo:
        """A type for precise scanning: ``size`` bytes, pointers at the given byte offsets."""
        if not isinstance(name, str):
            raise errors.InvalidValue(f"a type's name is a str, not {name!r}")
        size = args.size(size, f"type {name}: size", 1, self._max_size)
        try:
            offs = tuple(args.size(o, f"type {name}: pointer offset") for o in pointer_offsets)
        except TypeError:
            raise errors.InvalidValue(f"type {name}: pointer_offsets must be a sequence of ints") from None
        if any(o % 8 or o > size - 8 for o in offs):
            raise errors.InvalidSize(f"type {name}: pointer offsets {offs} must be word-aligned inside {size} bytes")
        with self._lock:
            self._check_open()
            a = self._arrays
            tid = int(a.h[L.H_NTYPES])
            start = int(a.h[L.H_NTYPEPTRS])
            if tid >= a.typedesc.shape[0] or start + len(offs) > a.typeptrs.shape[0]:
                raise errors.OutOfMemory("the type table is full (Limits.types, Limits.type_pointer_words)")
            a.typeptrs[start : start + len(offs)] = [o // 8 for o in offs]
            a.typedesc[tid] = (size, start, len(offs), 0)
            a.h[L.H_NTYPEPTRS] = start + len(offs)
            a.h[L.H_NTYPES] = tid + 1  # last: the collector reads rows below it
            t = TypeInfo(tid, name, size, offs)
            self._types.append(t)
            return t

    def type_of(self, p: int) -> TypeInfo | None:
        """The type recorded for the block at p, if any (flushing pending settype calls)."""
        p = args.address(p)
        self._check_open()
        entry.flush_types(self._handle, self._cache())
        w = int(entry.type_of(self._handle, p))
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
        """debug.SetGCPercent: returns the old value; negative disables collection (-1).

        percent is an int32, as the seed's gcpercent. As in the seed, next_gc moves at the
        next collection; under a policy with a minimum heap or a memory limit (Go >= 1.5's
        pacers) it is recomputed at once, as Go does.
        """
        percent = args.integer(percent, "GC percent", args.INT32_MIN, args.INT32_MAX)
        self._check_open()
        old = int(self._arrays.h[L.H_GCPERCENT])
        new = -1 if percent < 0 else percent
        self._arrays.h[L.H_GCPERCENT] = new
        self._set_pacer(new, self.policy.pacer.memory_limit)
        return old

    def set_memory_limit(self, limit: int | str | None) -> int | None:
        """debug.SetMemoryLimit: a soft limit on the runtime's memory; returns the previous one.

        limit: bytes, or a GOMEMLIMIT-style string ("64MiB"); "off" or None removes it.
        None is returned where there was no limit (Go returns MaxInt64). The heap goal is
        recomputed at once, as Go's SetMemoryLimit does (see ``goheap._runtime.pacer``).
        """
        self._check_open()
        old = self.policy.pacer.memory_limit
        self.policy = self.policy.resolve(memory_limit="off" if limit is None else limit)
        self._set_pacer(int(self._arrays.h[L.H_GCPERCENT]), self.policy.pacer.memory_limit)
        return old

    def _set_pacer(self, gcpercent: int, memory_limit: int | None) -> None:
        """The pacer's numbers into the runtime: the heap minimum at this GOGC, the memory limit.

        A policy with either (Go >= 1.5's pacers) has next_gc recomputed now, as Go's
        gcControllerCommit does; the seed's waits for the next collection.
        """
        h = self._arrays.h
        h[L.H_MIN_HEAP] = self.policy.pacer.min_heap * gcpercent // 100 if gcpercent > 0 else 0
        h[L.H_MEMORY_LIMIT] = -1 if memory_limit is None else memory_limit
        if self.policy.pacer.min_heap or memory_limit is not None:
            entry.commit_pacer(self._handle)

    # ------------------------------------------------------------ statistics

    def read_mem_stats(self) -> MemStats:
        """runtime.ReadMemStats: fold every cache's stats in (the world stopped), then snapshot."""
        self._check_open()
        entry.read_stats(self._handle)
        a = self._arrays
        return MemStats.from_arrays(a.mstats, a.pause_ns, a.by_size)

    def read_gc_stats(self, quantiles: int = 0) -> GCStats:
        """debug.ReadGCStats: last GC, count, total pause, pauses most recent first, and ``quantiles`` pause quantiles."""
        quantiles = args.integer(quantiles, "quantiles", 0, 1 << 20)
        self._check_open()
        st = self._arrays.mstats
        return GCStats.from_ring(
            int(st[L.ST_LAST_GC]), int(st[L.ST_NUMGC]), int(st[L.ST_PAUSE_TOTAL_NS]), self._arrays.pause_ns, quantiles
        )

    def check(self) -> None:
        """Verify every invariant of the heap; raises HeapCorrupted naming the first one broken.

        It reads the whole heap: call it when no other thread is changing it.
        """
        self._check_open()
        check_heap(self._arrays, self._finalizers)

    # ------------------------------------------------------------ life cycle

    @property
    def runtime(self):
        """The compiled runtime, for :mod:`goheap.nb` mutators (valid until close; see close())."""
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
        """Unmap the arena and all metadata. Any later call raises HeapClosed; closing again does nothing.

        Threads: a call another thread is making finishes first (close() waits for it), and
        one it starts later raises HeapClosed. Finalizers: one may not close its own heap
        (HeapError: the call that runs it would go on using the memory). Views and runtimes:
        numpy arrays from :meth:`view` and the compiled runtime from :attr:`runtime` may
        outlive the heap; while any does, its memory is given back to the OS but stays
        mapped, so that a stale view reads zeros instead of reaching a later heap, and is
        unmapped once the last of them is gone. See :mod:`goheap._shell.lifetime`.
        """
        self._close(sys._getframe(1))

    def _close(self, caller) -> None:
        if self._released:
            return
        lifetime.refuse_reentrant_close(self, caller)
        with self._lock:
            if self._closing:
                return  # another thread is closing it
            self._closing = self._closed = True
            self._arrays.h[L.H_CLOSED] = 1  # goheap.nb's checked functions refuse the runtime from now on
        try:
            self._scvg_stop.set()
            if self._scvg_thread is not None and self._scvg_thread is not threading.current_thread():
                self._scvg_thread.join()
            if self.race is not None:
                self.race.close()
            lifetime.wait_for_other_threads(self)
        except BaseException:
            self._closing = False  # interrupted while waiting: close() may be called again
            raise
        with self._lock:
            self._released = True
            self._caches = []
            forget_handle(self._handle)
            exports = [weakref.ref(self._arena8.base)]
            if self._rt is not self._arrays:  # compiled: the Runtime proxy (interpreted, the arrays themselves)
                exports.append(weakref.ref(self._rt))
            arena_used = int(self._arrays.h[L.H_ARENA_USED])
            # released: every use of these follows a check of _closed, which the checker cannot see
            self._rt = self._arrays = self._mem = self._arena8 = None  # type: ignore[assignment]
            self._mstats_words = self._cache_words = None  # type: ignore[assignment]
            lifetime.release_when_unreachable(self._sysmem, self._arena_start, arena_used, exports)

    def __enter__(self) -> Heap:
        return self

    def __exit__(self, *exc) -> None:
        self._close(sys._getframe(1))

    def __del__(self):
        try:
            self._close(None)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        if self._closed:
            return "<goheap.Heap closed>"
        return f"<goheap.Heap arena={self.arena_start:#x}+{self.config.arena_size:#x} used={self.arena_used - self.arena_start}>"
