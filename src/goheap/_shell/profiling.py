"""Heap profiling from Python: call stacks interned as mprof buckets, and the heap profile.

See :mod:`goheap._runtime.mprof` for the sampling itself (mprof.goc).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

from .. import errors
from .._runtime import layout as L
from . import args
from .lifetime import RACE_FILE, SHELL_FILES
from .state import HeapState

if TYPE_CHECKING:
    from ..report import pprof

MAX_PROFILE_DEPTH = 32  # mprof.goc records at most 32 frames of a stack


def _python_stack(frame) -> tuple[tuple[str, str, int], ...]:
    """The Python call stack from ``frame`` outwards, innermost first, the shell's own frames left out.

    Functions are named module.qualname, like Go's package.Function.
    """
    out: list[tuple[str, str, int]] = []
    while frame is not None and len(out) < MAX_PROFILE_DEPTH:
        code = frame.f_code
        if code.co_filename not in _SKIPPED:
            module = frame.f_globals.get("__name__", "")
            name = f"{module}.{code.co_qualname}" if module else code.co_qualname
            out.append((name, code.co_filename, frame.f_lineno or 0))
        frame = frame.f_back
    return tuple(out)


# the shell's own frames (heap.py and its parts) and race mode's wrappers of the accessors
_SKIPPED = SHELL_FILES | {RACE_FILE}


class HeapProfiling(HeapState):
    """Heap's profiling methods (a mixin over the attributes Heap.__init__ sets: see HeapState)."""

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
            try:
                name, file, line = (tuple(f) + ("", 0))[:3]
            except TypeError:
                raise errors.InvalidValue(f"profile_bucket: a frame is a (function, file, line) tuple, not {f!r}") from None
            key.append((str(name), str(file), args.integer(line, "line number", 0)))
        self._check_open()
        return self._intern_stack(tuple(key))

    def _intern_stack(self, key: tuple) -> int:
        with self._lock:
            k = self._stacks.get(key)
            if k is None:
                k = len(self._stack_frames)
                # the runtime's own buckets fill the table from the top (see _runtime/mprof.py)
                if k >= self._arrays.prof.shape[0] - int(self._arrays.gcstats[L.GS_PROF_NDERIVED]):
                    return 0  # the bucket table is full: charge the unattributed bucket
                self._stacks[key] = k
                self._stack_frames.append(key)
                self._arrays.h[L.H_PROF_NSTACKS] = k + 1
            return k

    @contextlib.contextmanager
    def attributing_allocations(self, bucket: int):
        """Charge the sampled allocations of Python code in this block to ``bucket``.

        For code that models another program's call stack (a workload's ``main.main``)
        rather than its own Python stack. Nests; the previous attribution is restored on
        exit. Per thread, as a call stack is.
        """
        self._check_open()
        bucket = args.integer(bucket, "profile bucket", 0, int(self._arrays.prof.shape[0]) - 1)
        previous = getattr(self._local, "attributed_to", None)
        self._local.attributed_to = bucket
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
        rate = max(args.integer(rate, "the memory profile rate"), 0)
        with self._lock:
            self._check_open()
            old = int(self._arrays.h[L.H_MEMPROFILE_RATE])
            self._arrays.h[L.H_MEMPROFILE_RATE] = rate
            self._profile_rate = rate  # alloc's fast test of whether to find its stack
            return old

    @property
    def mem_profile_rate(self) -> int:
        """runtime.MemProfileRate: average bytes between sampled allocations (0: off)."""
        self._check_open()
        return int(self._arrays.h[L.H_MEMPROFILE_RATE])

    def heap_profile(self) -> list[pprof.HeapSample]:
        """runtime.MemProfile(inuseZero=true): one raw, unscaled record per sampled stack.

        As in Go the counts are those of the last collection: allocations and frees since
        then are folded in by the next one. Every bucket that has sampled an allocation is
        listed, in bucket order, including those whose objects are all freed.
        """
        from ..report.pprof import HeapSample

        self._check_open()
        n = int(self._arrays.gcstats[L.GS_PROF_NBUCKET])
        top = self._arrays.prof.shape[0]
        runtime_rows = np.arange(top - int(self._arrays.gcstats[L.GS_PROF_NDERIVED]), top)[::-1]
        rows = np.concatenate([np.arange(n), runtime_rows])
        prof = self._arrays.prof
        out = []
        for b in rows[np.flatnonzero(prof[rows, L.PB_ALLOCS] + prof[rows, L.PB_RECENT_ALLOCS])]:
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
        from ..report.pprof import RUNTIME_ORIGIN_FRAMES, Frame

        origin = int(self._arrays.prof[bucket, L.PB_ORIGIN])
        if origin:  # the runtime's own allocation, called from a program stack
            parent = int(self._arrays.prof[bucket, L.PB_PARENT]) - 1
            return RUNTIME_ORIGIN_FRAMES[origin] + self._profile_frames(parent)
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
        from ..report.pprof import write_heap_profile

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
                self.policy.trace_line(),
            ],
        )
